"""Time the mediation bootstrap: cimstats vs pingouin (and lavaan when Rscript is present).

5,000 resamples of a single-mediator model (X -> M -> Y) with n = 2,000.
lavaan is slow, so it runs fewer resamples (``--lavaan-boot``, default 200) timed inside R,
and its time is scaled linearly to 5,000; the output says so.

Usage:  python benchmarks/mediation_boot.py [--repeat 3] [--no-lavaan]
"""

from __future__ import annotations

import argparse
import os
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

N, B = 2000, 5000


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N)
    m = 0.5 * x + rng.normal(size=N)
    y = 0.4 * m + 0.2 * x + rng.normal(size=N)
    return pd.DataFrame({"x": x, "m": m, "y": y})


def best(fn, repeat):
    """Best wall time over ``repeat`` runs (and the CPU time of that run, which a busy machine inflates less)."""
    times = []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t, time.process_time() - c))
    return min(times)


def lavaan_seconds(df, n_boot):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.csv")
        df.to_csv(path, index=False)
        code = f"""
suppressPackageStartupMessages(library(lavaan))
d <- read.csv("{path}")
model <- "m ~ a*x\n y ~ cp*x + b*m\n ind := a*b"
set.seed(1)
t0 <- proc.time()[["elapsed"]]
fit <- sem(model, data = d, se = "bootstrap", bootstrap = {n_boot})
cat(proc.time()[["elapsed"]] - t0, "\\n")
"""
        out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            print("lavaan failed:", out.stderr.strip().splitlines()[-1:] )
            return None
        return float(out.stdout.strip().split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-lavaan", action="store_true")
    ap.add_argument("--lavaan-boot", type=int, default=200)
    args = ap.parse_args()
    df = data()
    cimstats.mediation(df, x="x", m="m", y="y", n_boot=50, seed=1)  # warm imports

    t_pct = best(lambda: cimstats.mediation(df, x="x", m="m", y="y", n_boot=B, seed=1,
                                            sensitivity=False), args.repeat)
    t_bca = best(lambda: cimstats.mediation(df, x="x", m="m", y="y", n_boot=B, seed=1, ci="bca",
                                            sensitivity=False), args.repeat)
    t_full = best(lambda: cimstats.mediation(df, x="x", m="m", y="y", n_boot=B, seed=1), args.repeat)
    print(f"n = {N}, {B} resamples, single mediator; wall s (CPU s); load average {os.getloadavg()[0]:.1f}")
    print(f"cimstats percentile:                    {t_pct[0]:8.3f} s ({t_pct[1]:.3f})")
    print(f"cimstats BCa (with jackknife):          {t_bca[0]:8.3f} s ({t_bca[1]:.3f})")
    print(f"cimstats percentile + sensitivity:      {t_full[0]:8.3f} s ({t_full[1]:.3f})")

    import pingouin

    t_pg = best(lambda: pingouin.mediation_analysis(data=df, x="x", m="m", y="y", n_boot=B, seed=1), 1)
    print(f"pingouin.mediation_analysis:            {t_pg[0]:8.3f} s ({t_pg[1]:.3f})   "
          f"ratio pingouin/cimstats wall = {t_pg[0] / t_pct[0]:.1f}, CPU = {t_pg[1] / t_pct[1]:.1f}")
    t_pct = t_pct[0]

    if not args.no_lavaan:
        secs = lavaan_seconds(df, args.lavaan_boot)
        if secs is None:
            print("lavaan: Rscript or lavaan not available; skipped")
        else:
            scaled = secs * B / args.lavaan_boot
            print(f"lavaan se='bootstrap' ({args.lavaan_boot} resamples, timed in R, scaled x{B / args.lavaan_boot:g}): "
                  f"{scaled:8.1f} s   ratio lavaan/cimstats = {scaled / t_pct:6.0f}")


if __name__ == "__main__":
    main()
