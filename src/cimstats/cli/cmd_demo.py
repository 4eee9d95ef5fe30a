"""``cimstats demo``: write the synthetic demo study's files."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="write the synthetic six-country demo study (raw SPSS/Stata files, themes, planted truth)",
        description=(
            "Generate the synthetic six-country diabetes personal-network study and write each country's "
            "raw SPSS/Stata files, the theme codebook and coded excerpts, the planted truth (JSON), the "
            "schema and a summary into OUT. Nothing is left behind if the run stops early."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must be new or empty)")
    p.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default: the fixed demo seed)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it already has files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cimstats.datasets import DEFAULT_SEED, write_demo_files

    seed = DEFAULT_SEED if args.seed is None else args.seed
    res = write_demo_files(args.out, seed=seed, overwrite=args.overwrite)
    print(res.text, end="")
    print(f"Written to {res.out_dir}")
    return 0
