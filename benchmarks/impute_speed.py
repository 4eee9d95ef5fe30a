"""Speed of cimstats.impute against R's mice, measured in one run.

Usage::

    python benchmarks/impute_speed.py [--rows 10000] [--m 20] [--iterations 10] [--skip-r]

The data: 10,000 rows in 200 clusters, 30 variables: 22 numbers, 3 two-category
variables, 2 unordered categories (4 levels), 2 ordered categories (4 levels)
and the cluster id; 10% of the cells of 25 of them missing completely at random.

Timed (wall-clock and CPU seconds):

1. ``cimstats.impute(data, m=20, cluster="cluster", iterations=10)`` (cluster means in
   every conditional model);
2. the same without ``cluster=`` (single-level, the closest to mice's defaults);
3. ``mice(data, m = 20, maxit = 10)`` in R through ``Rscript`` with its default methods
   (pmm, logreg, polyreg, polr) and the cluster id left out of the predictors
   (mice's multilevel methods for every variable type need packages not installed here,
   so the comparison is with single-level mice). Only the ``mice()`` call is timed in R.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import cimstats  # noqa: E402

RSCRIPT = shutil.which("Rscript")


def make_data(n_rows=10_000, n_clusters=200, seed=1):
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), n_rows // n_clusters)
    u = rng.normal(size=n_clusters)[cluster]
    f = rng.normal(size=n_rows) + 0.5 * u
    cols = {"cluster": cluster}
    for k in range(22):
        cols[f"x{k + 1}"] = np.round(0.6 * f + 0.3 * u + rng.normal(size=n_rows), 4)
    for k in range(3):
        cols[f"b{k + 1}"] = (f + rng.normal(size=n_rows) > 0).astype(float)
    for k in range(2):
        cols[f"c{k + 1}"] = pd.Categorical(np.array(["a", "b", "c", "d"])[
            np.digitize(rng.normal(size=n_rows) + 0.3 * f, [-1, 0, 1])])
    for k in range(2):
        cols[f"o{k + 1}"] = pd.Categorical(np.digitize(f + rng.normal(size=n_rows), [-1, 0, 1]) + 1, ordered=True)
    d = pd.DataFrame(cols)
    for c in list(d.columns[1:26]):
        d.loc[rng.random(n_rows) < 0.10, c] = np.nan
    return d


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


R_CODE = r"""
suppressPackageStartupMessages(library(mice))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
for (v in c("c1", "c2")) d[[v]] <- factor(d[[v]])
for (v in c("o1", "o2")) d[[v]] <- factor(d[[v]], ordered = TRUE)
for (v in c("b1", "b2", "b3")) d[[v]] <- factor(d[[v]])
pred <- make.predictorMatrix(d)
pred[, "cluster"] <- 0
w <- proc.time()
imp <- mice(d, m = as.integer(args[2]), maxit = as.integer(args[3]), predictorMatrix = pred, printFlag = FALSE,
            seed = 1)
t <- proc.time() - w
cat(sprintf('{"wall": %.3f, "cpu": %.3f, "mice": "%s", "R": "%s"}\n', t[["elapsed"]],
            t[["user.self"]] + t[["sys.self"]], as.character(packageVersion("mice")), R.version.string))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--skip-r", action="store_true")
    a = ap.parse_args()
    d = make_data(a.rows)
    print(f"data: {len(d)} rows x {d.shape[1]} variables, {int(d.isna().sum().sum())} missing cells; "
          f"m = {a.m}, iterations = {a.iterations}")
    w1, c1, imp = timed(lambda: cimstats.impute(d, m=a.m, cluster="cluster", seed=1, iterations=a.iterations))
    print(f"cimstats.impute, cluster means : {w1:8.1f} s wall  {c1:8.1f} s CPU")
    w2, c2, _ = timed(lambda: cimstats.impute(d.drop(columns="cluster"), m=a.m, seed=1, iterations=a.iterations))
    print(f"cimstats.impute, single level  : {w2:8.1f} s wall  {c2:8.1f} s CPU")
    if a.skip_r or RSCRIPT is None:
        print("mice: not run (no Rscript or --skip-r)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        d.to_csv(csv, index=False)
        script = Path(tmp) / "mice_speed.R"
        script.write_text(R_CODE)
        done = subprocess.run([RSCRIPT, str(script), str(csv), str(a.m), str(a.iterations)], capture_output=True,
                              text=True)
    if done.returncode != 0:
        print("mice failed:", done.stderr[-1500:])
        return
    r = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"mice {r['mice']} (single level)  : {r['wall']:8.1f} s wall  {r['cpu']:8.1f} s CPU   ({r['R']})")
    print(f"ratio mice / cimstats single level: {r['wall'] / w2:.2f} wall, {r['cpu'] / c2:.2f} CPU")
    print(f"ratio mice / cimstats clustered   : {r['wall'] / w1:.2f} wall, {r['cpu'] / c1:.2f} CPU")


if __name__ == "__main__":
    main()
