"""Speed of cimstats.glmm against lme4::glmer and statsmodels' BinomialBayesMixedGLM, measured in one run.

Usage::

    python benchmarks/glmm_speed.py [--repeat 3] [--skip-statsmodels] [--statsmodels-cap 600] [--skip-demo]

Scenarios (each prints seconds and ratios measured in this run):

1. Bernoulli random intercept, 50,000 rows in 5,000 clusters,
   ``y ~ x1 + x2 + (1 | cluster)`` (Laplace): targets "at least as fast as glmer"
   and "at least 20x faster than statsmodels' BinomialBayesMixedGLM" (variational
   Bayes, ``fit_vb``, with a sparse random-effects design, run in a subprocess that is
   stopped after ``--statsmodels-cap`` seconds; the ratio is then a lower bound);
2. the same model by adaptive Gauss-Hermite quadrature (``nagq=10`` / ``nAGQ = 10``);
3. the demo study's alter-level illness-work model, network members within patients
   within practices, ``illness_work ~ tie_type * dep_c + (1 | patient_id) + (1 | practice_id)``.

glmer is run through ``Rscript`` in a subprocess (when R and lme4 are present); only
the ``glmer()`` call is timed inside R (best of ``--repeat``), as cimstats' ``glmm()`` call
is timed here (formula processing and standard errors included in both). Wall-clock
and CPU seconds are both reported: on a shared machine wall-clock times are noisy, and the
CPU-time ratio is the steadier comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import cimstats  # noqa: E402

RSCRIPT = shutil.which("Rscript")
TMP = Path(tempfile.mkdtemp(prefix="glmm_bench_"))
DEMO = Path(__file__).resolve().parents[1] / "tests" / "reference" / "data" / "glmm_demo_alters.csv"


def bernoulli(seed=1, n_rows=50_000, n_clusters=5_000):
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), n_rows // n_clusters)
    x1 = rng.normal(size=n_rows)
    x2 = rng.binomial(1, 0.4, n_rows)
    eta = -0.5 + 0.6 * x1 - 0.4 * x2 + rng.normal(0, 1.0, n_clusters)[cluster]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "cluster": [f"k{c}" for c in cluster]})


def best_of(fn, repeat):
    """Best wall-clock and CPU seconds over ``repeat`` runs, and the last result."""
    times, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return (min(times), min(cpus)), out


def time_glmer(df, formula, nagq, repeat):
    if RSCRIPT is None:
        return None, None
    path = TMP / "data.csv"
    df.to_csv(path, index=False)
    code = f"""
suppressPackageStartupMessages(library(lme4))
d <- read.csv("{path}", stringsAsFactors = TRUE)
best <- Inf
cpu <- Inf
for (i in seq_len({repeat})) {{
  st <- system.time(m <- glmer({formula}, data = d, family = binomial, nAGQ = {nagq}))
  best <- min(best, st[["elapsed"]])
  cpu <- min(cpu, st[["user.self"]] + st[["sys.self"]])
}}
cat(jsonlite::toJSON(list(seconds = best, cpu = cpu, fixef = unname(fixef(m)), loglik = as.numeric(logLik(m))),
                     digits = NA, auto_unbox = TRUE))
"""
    res = subprocess.run([RSCRIPT, "-e", code], capture_output=True, text=True)
    if res.returncode != 0:
        print("  glmer failed:", res.stderr.strip().splitlines()[-1:] or res.stderr)
        return None, None
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return (float(out["seconds"]), float(out["cpu"])), out


_SM_CODE = """
import json, sys, time, warnings
import numpy as np, pandas as pd, scipy.sparse as sp
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
df = pd.read_csv(sys.argv[1])
codes, levels = pd.factorize(df["cluster"])
n, G = len(df), len(levels)
Z = sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, G))  # sparse: a dense Z would need n*G floats
X = np.column_stack([np.ones(n), df["x1"], df["x2"]])
warnings.simplefilter("ignore")
t, c = time.perf_counter(), time.process_time()
res = BinomialBayesMixedGLM(df["y"].to_numpy(), X, exog_vc=Z, ident=np.zeros(G, dtype=int)).fit_vb()
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c,
                  "fe_mean": np.asarray(res.fe_mean).tolist()}))
"""


def time_statsmodels_vb(df, cap):
    """statsmodels' variational-Bayes fit in a subprocess, stopped after ``cap`` seconds."""
    path = TMP / "sm.csv"
    df.to_csv(path, index=False)
    try:
        res = subprocess.run([sys.executable, "-c", _SM_CODE, str(path)], capture_output=True, text=True,
                             timeout=cap)
    except subprocess.TimeoutExpired:
        return None, None
    if res.returncode != 0:
        print("  statsmodels failed:", res.stderr.strip().splitlines()[-1:])
        return None, None
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return (float(out["seconds"]), float(out["cpu"])), out


def report(ours, other, name):
    """Print the peer's wall-clock and CPU seconds and the ratios peer / cimstats (above 1: cimstats faster)."""
    if other is None:
        print(f"  {name}: not available")
        return
    print(f"  {name}: {other[0]:.2f} s wall, {other[1]:.2f} s CPU   ratio {name}/cimstats = "
          f"{other[0] / ours[0]:.2f}x wall, {other[1] / ours[1]:.2f}x CPU")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-statsmodels", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--statsmodels-cap", type=float, default=600.0,
                    help="seconds after which the statsmodels fit is stopped (the ratio is then a lower bound)")
    args = ap.parse_args()
    warnings.simplefilter("ignore", cimstats.errors.SingularFitWarning)

    df = bernoulli()
    f = "y ~ x1 + x2 + (1 | cluster)"
    print(f"1. Bernoulli random intercept, {len(df):,} rows in {df['cluster'].nunique():,} clusters: {f}")
    t_ours, m = best_of(lambda: cimstats.glmm(f, df, family="binomial"), args.repeat)
    print(f"  cimstats.glmm (Laplace): {t_ours[0]:.2f} s wall, {t_ours[1]:.2f} s CPU   "
          f"fixed effects {np.round(m.beta, 4).tolist()}")
    t_r, out = time_glmer(df, f, 1, args.repeat)
    report(t_ours, t_r, "glmer")
    if out is not None:
        print(f"    max relative difference in fixed effects vs glmer: "
              f"{np.max(np.abs(m.beta / np.asarray(out['fixef']) - 1)):.2e}; "
              f"loglik cimstats {m.loglik:.4f}, glmer {out['loglik']:.4f}")
    if not args.skip_statsmodels:
        t_sm, vb = time_statsmodels_vb(df, args.statsmodels_cap)
        name = "statsmodels BinomialBayesMixedGLM.fit_vb"
        if t_sm is None:
            print(f"  {name}: stopped after {args.statsmodels_cap:.0f} s without finishing   ratio "
                  f"{name}/cimstats > {args.statsmodels_cap / t_ours[0]:.1f}x wall")
        else:
            report(t_ours, t_sm, name)
            print(f"    (statsmodels posterior means of the fixed effects: {np.round(vb['fe_mean'], 4).tolist()})")

    print("2. Same model, adaptive Gauss-Hermite quadrature, 10 points")
    t_ours, m = best_of(lambda: cimstats.glmm(f, df, family="binomial", nagq=10), args.repeat)
    print(f"  cimstats.glmm (nagq=10): {t_ours[0]:.2f} s wall, {t_ours[1]:.2f} s CPU")
    t_r, _ = time_glmer(df, f, 10, args.repeat)
    report(t_ours, t_r, "glmer")

    if not args.skip_demo and DEMO.exists():
        d = pd.read_csv(DEMO)
        f3 = "illness_work ~ tie_type * dep_c + (1 | patient_id) + (1 | practice_id)"
        print(f"3. Demo alter-level model, {len(d):,} alters, {d['patient_id'].nunique():,} patients, "
              f"{d['practice_id'].nunique()} practices: {f3}")
        t_ours, m = best_of(lambda: cimstats.glmm(f3, d, family="binomial"), 1)
        print(f"  cimstats.glmm (Laplace): {t_ours[0]:.2f} s wall, {t_ours[1]:.2f} s CPU")
        t_r, _ = time_glmer(d, f3, 1, 1)
        report(t_ours, t_r, "glmer")


if __name__ == "__main__":
    main()
