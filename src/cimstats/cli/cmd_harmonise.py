"""``cimstats harmonise``: apply a data dictionary to its studies and write the stacked data and the report.

Exit status: 0 when the report has no errors; 1 when it has errors but the
data were written (without ``--strict``); 2 when nothing was written
(``--strict`` with errors, or the dictionary folder is unreadable). The data
file and the report are written to temporary files first and renamed only
when both are complete, so a failed run never leaves a partial output.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cimstats.cli._output import say


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "harmonise", help="harmonise studies with a data dictionary",
        description="Apply the rules of a data dictionary (studies, variables, categories, mappings) to each study "
                    "file and write one stacked, labelled data file plus a report of every target x study. Exit "
                    "status: 0 when the report has no error; 1 when the files were written but the report lists "
                    "errors (read the report before using the data); 2 when nothing was written (--strict with "
                    "errors, or a dictionary or file that cannot be read).")
    p.add_argument("--dictionary", required=True, metavar="DIR", help="folder with the dictionary tables")
    p.add_argument("--data-dir", metavar="DIR", help="folder where the study files are looked for first")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="output data file (.parquet, .sav, .zsav, .dta, .csv); with several tables in the dictionary, "
                        "one file per table named FILE-stem_TABLE.ext")
    p.add_argument("--report", metavar="FILE",
                   help="report file (.xlsx, .html or .csv; default: OUT's name with _report.xlsx)")
    p.add_argument("--strict", action="store_true", help="write nothing and exit 2 when the report has any error")
    p.add_argument("--accept", metavar="CODES", default="",
                   help="comma-separated harmonisation codes to accept as notes, e.g. H206 (as a plan's accept: list)")
    p.add_argument("--quiet", action="store_true", help="print only problems")
    p.set_defaults(func=run)


def run(args) -> int:
    from cimstats.dictionary import harmonise, read_dictionary
    from cimstats._files import inside, publish, temp_beside
    from cimstats.errors import HarmonisationError, SurveyWriteError
    from cimstats.io import write_survey

    out = Path(args.out)
    report_path = Path(args.report) if args.report else out.with_name(f"{out.stem}_report.xlsx")
    if not out.parent.exists():
        raise SurveyWriteError(f"The folder of --out '{out}' does not exist; create it first.")
    d = read_dictionary(args.dictionary, strict=False)
    try:
        accept = [c for c in (x.strip() for x in args.accept.split(",")) if c]
        res = harmonise(None, d, data_dir=args.data_dir, strict=args.strict, accept=accept)
    except HarmonisationError as exc:
        say(exc.report.summary(), file=sys.stderr)
        say(f"cimstats: {len(exc.report.errors)} error(s) in strict mode; nothing was written.", file=sys.stderr)
        return 2
    targets = {}
    for tb in res.surveys:
        name = f"{out.stem}_{tb}{out.suffix}"
        inside(out.parent, name, error=SurveyWriteError)  # table names are checked (D019); files stay beside --out
        targets[tb] = out if len(res.surveys) == 1 else out.parent / name
    tmps: list[Path] = []
    try:
        staged = []
        for tb, final in targets.items():
            tmp = temp_beside(final, error=SurveyWriteError)
            tmps.append(tmp)
            write_survey(res.surveys[tb], tmp, format=_fmt(final))
            staged.append((tmp, final))
        rep_tmp = temp_beside(report_path, error=SurveyWriteError)
        tmps.append(rep_tmp)
        extra = _write_report(res.report, rep_tmp, report_path)
        tmps.extend(extra)
        staged.append((rep_tmp, report_path))
        staged.extend((e, e.with_name(e.name.replace(rep_tmp.stem, report_path.stem))) for e in extra)
        for tmp, final in staged:  # everything is complete: now put each file in place
            publish(tmp, final)
    finally:
        for t in tmps:
            if t.exists():
                t.unlink()
    rep = res.report
    if not args.quiet:
        for tb, final in targets.items():
            s = res.surveys[tb]
            say(f"Wrote {final} ({s.shape[0]} rows x {s.shape[1]} variables).")
        say(f"Wrote the report {report_path} ({len(res.rows)} studies).")
    if len(rep.issues) or not args.quiet:
        say(rep.summary(), file=sys.stderr if rep.has_errors else sys.stdout)
    if rep.has_errors:
        say(f"cimstats: the files were written, but the report lists {len(rep.issues.errors)} error(s); "
            f"fix them (or accept named codes with --accept) before using the data.", file=sys.stderr)
        return 1
    return 0


def _fmt(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def _write_report(report, tmp: Path, final: Path) -> list[Path]:
    suffix = final.suffix.lower()
    if suffix == ".xlsx":
        report.to_excel(tmp)
        return []
    if suffix in (".html", ".htm"):
        report.to_html(tmp)
        return []
    paths = report.to_csv(tmp)
    return [p for p in paths if p != tmp]
