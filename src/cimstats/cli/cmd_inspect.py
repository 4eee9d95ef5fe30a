"""``cimstats inspect FILE``: print the codebook of a survey file, optionally save it."""

from __future__ import annotations

import argparse

from cimstats.cli._output import say


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="print the codebook of a survey file (labels, missing codes, counts)",
        description=(
            "Read a survey file (.sav, .zsav, .por, .dta, .sas7bdat, .xpt, .csv, .parquet) and print one "
            "block per variable: name, label, type, value labels, declared missing codes, numbers of valid, "
            "declared-missing and system-missing cells, and the range or most frequent categories."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the survey file to describe")
    p.add_argument("--out", metavar="PATH",
                   help="also write the codebook to PATH (.csv, .xlsx or .html)")
    p.add_argument("--variables", nargs="+", metavar="NAME",
                   help="describe only these variables (default: all)")
    p.add_argument("--format", dest="file_format", metavar="FORMAT",
                   help="file format when the extension does not tell (sav, zsav, por, dta, sas7bdat, xpt, csv, parquet)")
    p.add_argument("--encoding", metavar="NAME",
                   help="character encoding of the file's text (default: the one the file declares)")
    p.add_argument("--dates-as-numbers", action="store_true",
                   help="show dates and times as the numbers the file stores (for dates out of range)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cimstats.io import format_codebook, read_survey, write_codebook
    from cimstats.io.formats import FORMAT_NAMES

    cols = list(dict.fromkeys(args.variables)) if args.variables else None
    survey = read_survey(args.file, format=args.file_format, encoding=args.encoding, columns=cols,
                         convert_dates=not args.dates_as_numbers)
    cb = survey.codebook()
    src = survey.source
    n_codes = int(survey.missing.notna().sum().sum()) if len(survey.missing.columns) else 0
    head = [
        f"{Path(args.file).name}: {FORMAT_NAMES.get(src.format, src.format)} file, "
        f"{survey.shape[0]} rows x {survey.shape[1]} variables, {n_codes} cells with declared missing codes",
    ]
    if src.file_label:
        head.append(f"file label: {src.file_label}")
    if src.encoding:
        head.append(f"encoding: {src.encoding}")
    for note in src.notes:
        head.append(f"note: {note}")
    say("\n".join(head) + "\n")
    say(format_codebook(cb))
    if args.out:
        write_codebook(cb, args.out, title=f"Codebook of {Path(args.file).name}")
        say(f"\ncodebook written to {args.out}")
    return 0


#: library arguments whose option has another name (error messages name the option)
API_FLAGS = {"format": "--format", "columns": "--variables", "convert_dates": "--dates-as-numbers"}
