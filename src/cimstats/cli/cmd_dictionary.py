"""``cimstats dictionary check DIR`` and ``cimstats dictionary draft FILE... --out DIR``."""

from __future__ import annotations

import sys

from cimstats.cli._output import say


def register(subparsers) -> None:
    p = subparsers.add_parser("dictionary", help="check or draft a data dictionary",
                              description="Check a data dictionary without reading data, or draft one from source files.")
    sub = p.add_subparsers(dest="dictionary_command", metavar="ACTION")
    c = sub.add_parser("check", help="check every table and rule of a dictionary folder (with --with-data, the data too)")
    c.add_argument("folder", metavar="DIR", help="folder holding studies, variables, categories and mappings (CSV or Excel)")
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
    d = sub.add_parser("draft", help="draft variables, categories and mappings tables from source files' metadata",
                       description="Draft a dictionary from source files. With two or more files, variables are matched "
                                   "across studies to one target per concept (names, labels, value labels, levels), with "
                                   "a proposed rule, a confidence and the evidence for each match; the review table "
                                   "draft_review.csv lists them beside the tables.")
    d.add_argument("files", nargs="+", metavar="FILE",
                   help="source files (.sav, .dta, .csv, .parquet...), one per study; the first file's study comes first")
    d.add_argument("--out", required=True, metavar="DIR", help="folder to write the drafted CSV tables into")
    d.add_argument("--study-ids", metavar="IDS", help="comma-separated study ids, one per file (default: file names)")
    d.add_argument("--translations", metavar="YAML",
                   help="YAML file mapping words or phrases of the studies' languages to one language "
                        "(e.g. 'geslacht: sex'), applied to names, labels and value labels before matching")
    d.add_argument("--min-confidence", metavar="LEVEL", default="low",
                   help="lowest match accepted: low (score 0.45, default), medium (0.65), high (0.85) or a number "
                        "above 0 and at most 1; weaker candidates stay study-specific targets")
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
    from pathlib import Path

    from cimstats.dictionary.draft import REVIEW_FILE, draft_dictionary, write_draft
    from cimstats.dictionary.schema import TABLES
    from cimstats.dictionary.matching import read_translations, threshold_of
    from cimstats.errors import DictionaryError

    ids = [s.strip() for s in args.study_ids.split(",")] if args.study_ids else None
    if ids is not None and len(ids) != len(args.files):
        raise DictionaryError(f"--study-ids gives {len(ids)} ids for {len(args.files)} files; give one id per FILE, "
                              "comma-separated, in the same order.")
    if ids is not None and (len(set(ids)) != len(ids) or "" in ids):
        raise DictionaryError(f"--study-ids '{args.study_ids}' has an empty or repeated id; give one distinct id per FILE.")
    seen = {}
    for i, f in enumerate(args.files):
        key = Path(f).resolve()
        if key in seen:
            raise DictionaryError(f"FILE '{f}' is given twice (arguments {seen[key] + 1} and {i + 1}); give each file once.")
        seen[key] = i
    min_conf = threshold_of(args.min_confidence, argument="--min-confidence")
    translations = read_translations(args.translations, argument="--translations") if args.translations else None
    out = Path(args.out)
    existing = [n for n in [f"{t}.csv" for t in TABLES] + [REVIEW_FILE] if (out / n).exists()]
    if existing and not args.overwrite:
        raise DictionaryError(f"--out folder '{out}' already has {', '.join(existing)}; choose another folder or pass "
                              "--overwrite to replace them.")
    tables = draft_dictionary(args.files, study_ids=ids, translations=translations, min_confidence=min_conf)
    paths = write_draft(tables, out, overwrite=args.overwrite)
    rv = tables.review
    matched = rv[rv["role"] == "matched"]
    text = (f"Drafted {len(tables['variables'])} variables, {len(tables['categories'])} categories and "
            f"{len(tables['mappings'])} mappings into {', '.join(str(p) for p in paths)}; review them before use.")
    if len(args.files) > 1:
        counts = matched["confidence"].value_counts()
        text += (f" {len(matched)} variable(s) matched across studies (" +
                 ", ".join(f"{counts.get(c, 0)} {c}" for c in ("high", "medium", "low")) +
                 f" confidence); {int((rv['role'] == 'study-specific').sum())} stay study-specific; see {REVIEW_FILE}.")
    say(text)
    return 0
