"""``cimstats run``: run an analysis plan into an output folder, re-running only what changed."""

from __future__ import annotations

import argparse

from cimstats.cli._output import say


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: new, empty, or the folder of an earlier run (its cache is reused)")
    p.add_argument("--dry-run", action="store_true", help="check the plan and list the steps; run nothing")
    p.add_argument("--force", action="store_true", help="re-run every step even when its cached result is fresh")
    p.add_argument("--quiet", action="store_true", help="no progress lines and no summary")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the repeated fits (bootstraps) on an existing Dask cluster, e.g. tcp://host:8786; "
                        "the results are the same as on this machine")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run an analysis plan (YAML): harmonise, score, test mechanisms, joint displays, report",
        description=(
            "Check an analysis plan (every problem reported at once, before any work starts), then run its "
            "steps into OUT. Each step is cached by the hash of its inputs, so a second run re-runs only the "
            "steps whose files or plan sections changed. OUT gets report.html (one self-contained page) and "
            "manifest.json (input hashes, package versions, seeds, timings, the plan)."
        ),
    )
    p.add_argument("plan", metavar="PLAN", help="the analysis plan (YAML file)")
    add_run_options(p)
    p.set_defaults(func=run)


def execute(plan, args: argparse.Namespace, *, seed: int | None = None) -> int:
    from cimstats.pipeline import run as run_plan

    progress = False if args.quiet else None  # default: progress lines only on a terminal
    res = run_plan(plan, out=args.out, dry_run=args.dry_run, force=args.force, seed=seed, progress=progress,
                   scheduler=getattr(args, "scheduler", None))
    if not args.quiet:
        say(res.summary(), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    return execute(args.plan, args)
