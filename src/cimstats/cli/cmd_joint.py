"""``cimstats joint``: build a joint display from a mechanism table, a theme codebook and coded excerpts."""

from __future__ import annotations

from cimstats.cli._output import say


def register(subparsers) -> None:
    from cimstats.integrate import DISPLAY_KINDS

    p = subparsers.add_parser(
        "joint",
        help="build a joint display (side-by-side, statistics by theme, themes by group, convergence, case-oriented)",
        description="Build a joint display and write it as .docx, .xlsx, .html, .tex, .md or .txt (by suffix).",
    )
    p.add_argument("--kind", required=True, choices=DISPLAY_KINDS)
    p.add_argument("--mechanisms", help="mechanism table (CSV; one row per hypothesis)")
    p.add_argument("--codebook", help="theme codebook (YAML or CSV)")
    p.add_argument("--excerpts", help="coded excerpts (CSV: case_id, theme_id, text)")
    p.add_argument("--cases", help="case table (CSV, one row per interviewed case)")
    p.add_argument("--id", default="patient_id", help="case id column of --cases (default patient_id)")
    p.add_argument("--group-by", help="grouping column of --cases for --kind themes_by_group")
    p.add_argument("--profile", nargs="*", help="columns of --cases shown by --kind case_oriented")
    p.add_argument("--threshold", type=int, default=5, help="small-cell threshold (default 5)")
    p.add_argument("--style", default="default", help="number-format preset: default, apa, ama, bmj, lancet, ascii")
    p.add_argument("--title")
    p.add_argument("--out", required=True, action="append",
                   help="output file; repeat for several formats (suffix picks the format)")
    p.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd

    from cimstats.integrate import joint_display, read_theme_codebook, read_excerpts

    results = pd.read_csv(args.mechanisms) if args.mechanisms else None
    codebook = read_theme_codebook(args.codebook) if args.codebook else None
    excerpts = read_excerpts(args.excerpts) if args.excerpts else None
    cases = pd.read_csv(args.cases, dtype={args.id: str}) if args.cases else None
    jd = joint_display(results, kind=args.kind, codebook=codebook, excerpts=excerpts, cases=cases, id=args.id,
                       group_by=args.group_by, profile=args.profile, threshold=args.threshold,
                       number_format=args.style, title=args.title)
    for out in args.out:
        jd.render(out)
        say(f"Wrote {out}.")
    return 0
