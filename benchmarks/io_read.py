"""Overhead of read_survey over plain pyreadstat on a generated large labelled .sav file.

Run: ``python benchmarks/io_read.py [n_rows] [n_vars]`` (defaults 200000 x 20).
Prints the best of three interleaved timings for each reader and writer and the ratios
read_survey / pyreadstat and write_survey / pyreadstat (1.0 = no overhead). read_survey does more than
pyreadstat: it records every declared-missing cell's code and builds metadata,
so the fair peer is pyreadstat with ``user_missing=True``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from cimstats.io import iter_survey, read_survey, write_survey


def make_file(path: Path, n_rows: int, n_vars: int) -> None:
    rng = np.random.default_rng(2024)
    cols = {}
    labels, missing = {}, {}
    for j in range(n_vars):
        name = f"q{j + 1}"
        values = rng.integers(1, 6, size=n_rows).astype(float)
        roll = rng.random(n_rows)
        values[roll < 0.05] = 99.0  # refused
        values[(roll >= 0.05) & (roll < 0.08)] = -9.0  # not asked
        values[(roll >= 0.08) & (roll < 0.10)] = np.nan
        cols[name] = values
        labels[name] = {1.0: "Never", 2.0: "Rarely", 3.0: "Sometimes", 4.0: "Often", 5.0: "Always",
                        99.0: "Refused", -9.0: "Not asked"}
        missing[name] = [99.0, {"lo": -99.0, "hi": -1.0}] if j % 2 else [99.0, -9.0]
    cols["town"] = rng.choice(["Leeds", "Oslo", "Sofia", "Athens", "Utrecht"], size=n_rows)
    df = pd.DataFrame(cols)
    pyreadstat.write_sav(df, str(path), variable_value_labels=labels, missing_ranges=missing)


def timed_together(fns: dict, repeat: int = 3) -> dict:
    """Best-of-``repeat`` time of each function, run in turn (A, B, C, A, B, C, ...).

    Interleaving and taking the minimum keeps the ratios fair when other
    processes share the machine.
    """
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main() -> None:
    n_rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    n_vars = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.sav"
        make_file(path, n_rows, n_vars)
        size = path.stat().st_size / 1e6
        survey = read_survey(path)
        raw, meta = pyreadstat.read_sav(str(path), user_missing=True)
        out = Path(tmp) / "out.sav"
        t = timed_together({
            "plain": lambda: pyreadstat.read_sav(str(path)),
            "user": lambda: pyreadstat.read_sav(str(path), user_missing=True),
            "ours": lambda: read_survey(path),
            "chunks": lambda: sum(len(c) for c in iter_survey(path, chunksize=50_000)),
            "write_plain": lambda: pyreadstat.write_sav(
                raw, str(out), variable_value_labels=meta.variable_value_labels, missing_ranges=meta.missing_ranges),
            "write_ours": lambda: write_survey(survey, out),
        })
        t_plain, t_user, t_ours, t_chunks = t["plain"], t["user"], t["ours"], t["chunks"]
        t_write_plain, t_write_ours = t["write_plain"], t["write_ours"]
    print(f"file: {n_rows} rows x {n_vars + 1} variables, {size:.1f} MB (.sav, declared codes 99 and -9)")
    print(f"pyreadstat.read_sav (codes -> NaN, no record):   {t_plain:7.3f} s")
    print(f"pyreadstat.read_sav(user_missing=True):          {t_user:7.3f} s")
    print(f"cimstats.read_survey (codes recorded, metadata):  {t_ours:7.3f} s")
    print(f"cimstats.iter_survey(chunksize=50000), all chunks: {t_chunks:7.3f} s")
    print(f"ratio read_survey / pyreadstat(user_missing=True): {t_ours / t_user:5.2f}")
    print(f"ratio read_survey / pyreadstat(default):           {t_ours / t_plain:5.2f}")
    print(f"pyreadstat.write_sav (labels, missing ranges):   {t_write_plain:7.3f} s")
    print(f"cimstats.write_survey (codes restored, atomic):    {t_write_ours:7.3f} s")
    print(f"ratio write_survey / pyreadstat.write_sav:         {t_write_ours / t_write_plain:5.2f}")


if __name__ == "__main__":
    main()
