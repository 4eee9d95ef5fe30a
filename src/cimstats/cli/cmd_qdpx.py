"""``cimstats qdpx``: inspect a REFI-QDA project (.qdpx) and export its tables as CSV."""

from __future__ import annotations

from pathlib import Path

from cimstats.cli._output import say


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "qdpx",
        help="read a REFI-QDA project (.qdpx) and export codes, codings and a code-to-theme mapping template",
        description="Read a .qdpx export from NVivo, ATLAS.ti, MAXQDA or other QDA software, print a summary and, "
        "with --out, write codes.csv, codings.csv, sources.csv, cases.csv and mapping_template.csv (text that a "
        "spreadsheet would read as a formula gets a leading apostrophe).",
    )
    p.add_argument("path", help="the .qdpx file")
    p.add_argument("--out", help="folder for the CSV tables (created if absent)")
    p.add_argument("--positions", choices=["auto", "codepoint", "utf16"], default="auto",
                   help="how selection positions count characters (default: auto)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cimstats._files import atomic_write
    from cimstats._sheets import spreadsheet_safe_frame
    from cimstats.integrate import mapping_template, read_qdpx

    proj = read_qdpx(args.path, positions=args.positions)
    say(proj.summary())
    if len(proj.report):
        say(proj.report.summary())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        # code names, quotes and case variables come from the project: opened in a spreadsheet they stay text
        for name, df in (("codes", proj.codes), ("codings", proj.codings), ("sources", proj.sources),
                         ("cases", proj.case_variable_table()), ("mapping_template", mapping_template(proj))):
            atomic_write(out / f"{name}.csv", spreadsheet_safe_frame(df).to_csv(index=False))
        say(f"Wrote codes.csv, codings.csv, sources.csv, cases.csv and mapping_template.csv to {out}.")
    return 0
