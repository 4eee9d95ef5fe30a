"""``cimstats joint``: build a joint display from a results table, a theme codebook and coded excerpts."""

from __future__ import annotations

from cimstats.cli._output import say

#: display kinds that need the results table (--mechanisms) and those that need excerpts and cases
_NEEDS_RESULTS = ("side_by_side", "statistics_by_theme", "convergence")
_NEEDS_CASES = ("themes_by_group", "case_oriented")
_SUFFIXES = (".docx", ".xlsx", ".html", ".htm", ".tex", ".md", ".txt", ".csv")


def register(subparsers) -> None:
    from cimstats.integrate import DISPLAY_KINDS

    p = subparsers.add_parser(
        "joint",
        help="build a joint display (side-by-side, statistics by theme, themes by group, convergence, case-oriented)",
        description=("Build a joint display and write it as .docx, .xlsx, .html, .tex, .md, .txt or .csv (by suffix). "
                     "The results table follows the schema of cimstats.integrate.results_schema(): columns "
                     "hypothesis_id, mechanism and verdict, and optionally statement, estimate, ci_lower, ci_upper, "
                     "p_value, p_adjusted, model, n, theme_ids, element, theme_direction."),
    )
    p.add_argument("--kind", required=True, choices=DISPLAY_KINDS, metavar="KIND",
                   help=f"display kind: {', '.join(DISPLAY_KINDS)}")
    p.add_argument("--mechanisms", metavar="CSV",
                   help="results table (CSV, one row per hypothesis); needed by side_by_side, statistics_by_theme "
                        "and convergence")
    p.add_argument("--codebook", metavar="FILE", help="theme codebook (YAML or CSV)")
    p.add_argument("--excerpts", metavar="CSV", help="coded excerpts (CSV: case_id, theme_id, text; optional coder)")
    p.add_argument("--cases", metavar="CSV",
                   help="case table (CSV, one row per interviewed case); needed by themes_by_group and case_oriented")
    p.add_argument("--id", default="patient_id", metavar="COLUMN", help="case id column of --cases (default patient_id)")
    p.add_argument("--group-by", metavar="COLUMN", help="grouping column of --cases for --kind themes_by_group")
    p.add_argument("--profile", nargs="*", metavar="COLUMN", help="columns of --cases shown by --kind case_oriented")
    p.add_argument("--reviews", metavar="FILE",
                   help="review file (CSV or YAML: hypothesis_id, theme_id, decision, reviewer, date, reason) that "
                        "confirms or overrides the suggested meta-inferences")
    p.add_argument("--names", nargs="*", metavar="NAME", default=None,
                   help="names to replace with [name] in quotes (pseudonymisation)")
    p.add_argument("--max-quote-chars", type=int, default=200, metavar="N",
                   help="shorten quotes to at most N characters at a word boundary (default 200)")
    p.add_argument("--threshold", type=int, default=5, metavar="N",
                   help="small-cell threshold: counts from 1 to N-1 are suppressed (default 5)")
    p.add_argument("--style", default="default", metavar="PRESET",
                   help="number-format preset: default, apa, ama, bmj, lancet, ascii")
    p.add_argument("--title", metavar="TEXT", help="table title (default: by kind)")
    p.add_argument("--out", required=True, action="append", metavar="FILE",
                   help="output file; repeat for several formats (suffix picks the format)")
    p.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd

    from cimstats.errors import CimstatsError
    from cimstats.integrate import CodebookError, joint_display, read_excerpts, read_theme_codebook

    kind = args.kind
    if kind in _NEEDS_RESULTS and not args.mechanisms:
        raise CodebookError(f"--kind {kind} needs the mechanism table (the results table): add --mechanisms FILE.csv.")
    if kind in _NEEDS_CASES and not (args.excerpts and args.cases):
        missing = " and ".join(f for f, v in (("--excerpts", args.excerpts), ("--cases", args.cases)) if not v)
        raise CodebookError(f"--kind {kind} needs coded excerpts and a case table: add {missing}.")
    if kind == "themes_by_group" and not args.group_by:
        raise CodebookError("--kind themes_by_group needs --group-by COLUMN (a column of --cases).")
    if args.max_quote_chars < 10:
        raise CodebookError(f"--max-quote-chars is {args.max_quote_chars}; give a whole number of at least 10.")
    if args.threshold < 1:
        raise CodebookError(f"--threshold is {args.threshold}; give a whole number of at least 1.")
    bad = [o for o in args.out if not o.lower().endswith(_SUFFIXES)]
    if bad:
        raise CodebookError(f"--out {bad[0]!r} has no known suffix; use one of {', '.join(_SUFFIXES)}.")

    def read_csv(flag, path, **kw):
        try:
            return pd.read_csv(path, **kw)
        except FileNotFoundError:
            raise CodebookError(f"{flag} {path!r} does not exist; check the path.") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise CodebookError(f"{flag} {path!r} is not a readable CSV ({str(exc).splitlines()[0]}).") from None

    def flagged(flag, fn, *a):
        try:
            return fn(*a)
        except CimstatsError as exc:
            raise type(exc)(f"{flag}: {exc}", **({"report": exc.report} if getattr(exc, "report", None) else {})) \
                from None

    results = read_csv("--mechanisms", args.mechanisms) if args.mechanisms else None
    codebook = flagged("--codebook", read_theme_codebook, args.codebook) if args.codebook else None
    excerpts = flagged("--excerpts", read_excerpts, args.excerpts) if args.excerpts else None
    cases = read_csv("--cases", args.cases, dtype={args.id: str}) if args.cases else None
    if cases is not None and args.id not in cases.columns:
        raise CodebookError(f"--id {args.id!r} is not a column of --cases; available: {', '.join(map(str, cases.columns))}.")
    if cases is not None and args.group_by and args.group_by not in cases.columns:
        raise CodebookError(f"--group-by {args.group_by!r} is not a column of --cases; available: "
                            f"{', '.join(map(str, cases.columns))}.")
    bad = [c for c in (args.profile or []) if cases is not None and c not in cases.columns]
    if bad:
        raise CodebookError(f"--profile names {', '.join(map(repr, bad))}, not column(s) of --cases.")
    if results is not None:
        from cimstats.integrate import validate_mechanism_table

        flagged("--mechanisms", validate_mechanism_table, results)
    reviews = None
    if args.reviews:
        from cimstats.integrate import read_reviews

        reviews = flagged("--reviews", read_reviews, args.reviews)
    jd = joint_display(results, kind=kind, codebook=codebook, excerpts=excerpts, cases=cases, id=args.id,
                       group_by=args.group_by, profile=args.profile, threshold=args.threshold,
                       number_format=args.style, title=args.title, names=args.names or None,
                       max_quote_chars=args.max_quote_chars, reviews=reviews)
    for out in args.out:
        jd.render(out)
        say(f"Wrote {out}.")
    pending = 0 if jd.meta_inferences is None else int((jd.meta_inferences["status"] == "suggested, needs review").sum())
    if pending:
        say(f"{pending} meta-inference(s) are suggested and need review: confirm or override them with --reviews.")
    if jd.excerpt_note:
        say(f"Note: {jd.excerpt_note}")
    return 0
