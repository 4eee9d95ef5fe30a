"""Overhead of read_survey over plain pyreadstat on a generated large labelled .sav file.

Run: ``python benchmarks/io_read.py [n_rows] [n_vars]`` (defaults 200000 x 20).
Prints the median of three timings for each reader and the ratio
read_survey / pyreadstat (1.0 = no overhead). read_survey does more than
pyreadstat: it records every declared-missing cell's code and builds metadata,
so the fair peer is pyreadstat with ``user_missing=True``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from cimstats.io import iter_survey, read_survey


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


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    n_rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    n_vars = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.sav"
        make_file(path, n_rows, n_vars)
        size = path.stat().st_size / 1e6
        t_plain = timed(lambda: pyreadstat.read_sav(str(path)))
        t_user = timed(lambda: pyreadstat.read_sav(str(path), user_missing=True))
        t_ours = timed(lambda: read_survey(path))
        t_chunks = timed(lambda: sum(len(c) for c in iter_survey(path, chunksize=50_000)), repeat=1)
    print(f"file: {n_rows} rows x {n_vars + 1} variables, {size:.1f} MB (.sav, declared codes 99 and -9)")
    print(f"pyreadstat.read_sav (codes -> NaN, no record):   {t_plain:7.3f} s")
    print(f"pyreadstat.read_sav(user_missing=True):          {t_user:7.3f} s")
    print(f"cimstats.read_survey (codes recorded, metadata):  {t_ours:7.3f} s")
    print(f"cimstats.iter_survey(chunksize=50000), all chunks: {t_chunks:7.3f} s")
    print(f"ratio read_survey / pyreadstat(user_missing=True): {t_ours / t_user:5.2f}")
    print(f"ratio read_survey / pyreadstat(default):           {t_ours / t_plain:5.2f}")


if __name__ == "__main__":
    main()
