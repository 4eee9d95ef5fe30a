"""``cimstats dictionary check DIR`` and ``cimstats dictionary draft FILE... --out DIR``."""

from __future__ import annotations

import sys

from cimstats.cli._output import say


def register(subparsers) -> None:
    p = subparsers.add_parser("dictionary", help="check or draft a data dictionary",
                              description="Check a data dictionary without reading data, or draft one from source files.")
    sub = p.add_subparsers(dest="dictionary_command", metavar="ACTION")
    c = sub.add_parser("check", help="check every table and rule of a dictionary folder (with --with-data, the data too)")
    c.add_argument("folder", metavar="DIR")
    c.add_argument("--data-dir", metavar="DIR", help="also look for the study files here")
    c.add_argument("--csv", metavar="FILE", help="write the problems as CSV (code, severity, file, row, column, message, remedy)")
    c.add_argument("--with-data", action="store_true",
                   help="also harmonise the study files in memory (nothing written) and report what harmonisation "
                        "would report, with the same severities as `cimstats harmonise` and `cimstats run`")
    c.add_argument("--accept", metavar="CODES", default="",
                   help="comma-separated harmonisation codes to accept as notes (e.g. H206), as a plan's accept: list")
    c.add_argument("--plan", metavar="PLAN",
                   help="also accept the codes of this analysis plan's accept: list, so that the check reports "
                        "what `cimstats run PLAN` will")
    c.set_defaults(func=check)
    d = sub.add_parser("draft", help="draft variables, categories and mappings tables from source files' metadata")
    d.add_argument("files", nargs="+", metavar="FILE")
    d.add_argument("--out", required=True, metavar="DIR", help="folder to write the drafted CSV tables into")
    d.add_argument("--study-ids", metavar="IDS", help="comma-separated study ids, one per file (default: file names)")
    d.add_argument("--overwrite", action="store_true", help="replace tables already in DIR")
    d.set_defaults(func=draft)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def check(args) -> int:
    from cimstats.dictionary import check_dictionary

    accept = [c for c in (x.strip() for x in args.accept.split(",")) if c]
    if getattr(args, "plan", None):
        from cimstats.pipeline.plan import plan_accept_codes

        accept += [c for c in plan_accept_codes(args.plan) if c not in accept]
    if args.with_data:
        from cimstats.dictionary import harmonise

        rep = harmonise(None, args.folder, data_dir=args.data_dir, accept=accept).report.issues
    else:
        rep = check_dictionary(args.folder, data_dir=args.data_dir)
    if args.csv:
        from cimstats._sheets import spreadsheet_safe_frame

        spreadsheet_safe_frame(rep.to_frame()).to_csv(args.csv, index=False)  # names quoted from the tables stay text
    text = rep.summary()
    if not args.with_data and not len(rep):
        text = ("No problems found in the dictionary tables and rules. Problems that need the data (codes not "
                "covered, values out of range, swapped codes) are found with --with-data or when harmonising.")
    say(text, file=sys.stderr if rep.has_errors else sys.stdout)
    return 1 if rep.has_errors else 0


def draft(args) -> int:
    from cimstats.dictionary.draft import draft_dictionary, write_draft

    ids = [s.strip() for s in args.study_ids.split(",")] if args.study_ids else None
    tables = draft_dictionary(args.files, study_ids=ids)
    paths = write_draft(tables, args.out, overwrite=args.overwrite)
    say(f"Drafted {len(tables['variables'])} variables, {len(tables['categories'])} categories and "
          f"{len(tables['mappings'])} mappings into {', '.join(str(p) for p in paths)}; review them before use.")
    return 0
