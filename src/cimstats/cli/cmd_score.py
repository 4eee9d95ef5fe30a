"""``cimstats score``: score a questionnaire instrument from a data file."""

from __future__ import annotations

import argparse
from pathlib import Path

from cimstats.errors import CimstatsError
from cimstats.cli._output import say


def read_table(path: str):
    """Read a CSV, TSV, Parquet or Excel file, or a survey file through ``cimstats.read_survey``."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise CimstatsError(f"Data file '{path}' does not exist; give the path of a CSV, Parquet, Excel, "
                            "SPSS, Stata or SAS file.")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(p)
    if suffix in (".tsv", ".tab"):
        return pd.read_csv(p, sep="\t")
    if suffix == ".parquet":
        return pd.read_parquet(p)
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(p)
    try:
        from cimstats.io import read_survey
    except ImportError:  # pragma: no cover - io readers not installed
        raise CimstatsError(f"Data file '{path}' has the suffix '{suffix}', which needs the survey readers; "
                            "convert it to CSV or Parquet first.") from None
    return read_survey(p).data


def write_table(df, path: str) -> None:
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        df.to_parquet(p, index=False)
    else:
        df.to_csv(p, index=False)


def _run(args) -> int:
    from cimstats.measures.scales import list_instruments, load_instrument, score_scale

    if args.list:
        say(list_instruments()[["id", "n_items", "scores"]].to_string(index=False))
        return 0
    if not args.data or not args.instrument:
        raise CimstatsError("`cimstats score` needs a data file and --instrument (or --list to see the "
                            "shipped instruments).")
    ins = load_instrument(args.instrument)
    data = read_table(args.data)
    items = {}
    for m in args.map or []:
        if "=" not in m:
            raise CimstatsError(f"--map '{m}' is not of the form ITEM=COLUMN; write e.g. --map semcd_1=Q12a.")
        k, v = m.split("=", 1)
        items[k.strip()] = v.strip()
    scores = [s.strip() for s in args.scores.split(",")] if args.scores else None
    res = score_scale(data, ins, items=items, scores=scores, out_of_range=args.out_of_range)
    keep = [c.strip() for c in args.keep.split(",")] if args.keep else []
    missing = [c for c in keep if c not in data.columns]
    if missing:
        raise CimstatsError(f"--keep lists {', '.join(missing)}, not columns of '{args.data}'.")
    import pandas as pd

    out = pd.concat([data[keep].reset_index(drop=True), res.wide().reset_index(drop=True)], axis=1)
    say(res.summary())
    if args.out:
        write_table(out, args.out)
        say(f"wrote {len(out)} rows to {args.out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("score", help="score a questionnaire instrument (scale scores with missing rules)",
                              description="Score a questionnaire instrument from a data file; writes scores with "
                                          "the number of valid items and the status (complete, prorated, "
                                          "missing) per person.")
    p.add_argument("data", nargs="?", help="data file (CSV, Parquet, Excel, or a survey file)")
    p.add_argument("--instrument", help="shipped instrument id (see --list) or a YAML instrument file")
    p.add_argument("--map", action="append", metavar="ITEM=COLUMN", help="data column of an instrument item")
    p.add_argument("--scores", help="comma-separated scores to compute (default: all)")
    p.add_argument("--keep", help="comma-separated id columns copied to the output (e.g. patient_id,wave)")
    p.add_argument("--out-of-range", choices=["error", "report"], default="error",
                   help="responses outside the declared range: stop (error) or set aside and report")
    p.add_argument("--out", help="output file (.csv or .parquet)")
    p.add_argument("--list", action="store_true", help="list the shipped instruments and exit")
    p.set_defaults(func=_run)


#: library arguments whose option has another name (error messages name the option)
API_FLAGS = {"items": "--map"}
