"""``cimstats demo``: the whole main job on the synthetic demo study, through the shipped analysis plan."""

from __future__ import annotations

import argparse

from cimstats.cli.cmd_run import add_run_options, execute


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole analysis on the synthetic six-country demo study (raw files to report.html)",
        description=(
            "Write the demo study's six countries' raw SPSS/Stata files, harmonise them with the shipped data "
            "dictionary, score the scales and ego-network measures, test the three network mechanisms, build the "
            "joint displays, tables and figures, and write report.html and manifest.json into OUT. This runs the "
            "shipped analysis plan (see cimstats.pipeline.demo_plan_path()) with the same steps as "
            "`cimstats run`; a second run into the same folder reuses every unchanged step."
        ),
    )
    add_run_options(p)
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the demo study (default: the plan's fixed seed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return execute("demo", args, seed=args.seed)
