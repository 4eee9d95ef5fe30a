"""Speed of cimstats.describe / cimstats.glm with a survey design against R's svymean / svyglm, measured in one run.

Usage::

    python benchmarks/survey_speed.py [--repeat 3] [--rows 200000]

Scenarios (each prints seconds and the ratio R / cimstats measured in this run):

1. NHANES (survey's ``nhanes`` data, 8,591 rows; strata SDMVSTRA, PSUs SDMVPSU nested, weights
   WTMEC2YR): the weighted mean of HI_CHOL (missing values left out) and the quasibinomial model
   ``HI_CHOL ~ factor(race) + agecat + RIAGENDR``;
2. a simulated stratified two-stage-like sample, ``--rows`` rows in 100 strata with 20 PSUs each
   (PSU numbers restart within strata, so ``nest=True``): means of three variables and the
   quasibinomial model ``y ~ x1 + x2 + x3 + g`` (``g`` a four-level factor).

R is run through ``Rscript`` in a subprocess (when R and survey are present); the design object is
built once outside the timing and only the ``svymean()`` / ``svyglm()`` calls are timed (best of
``--repeat``). cimstats' calls are timed whole, including the check of the design against the data,
which cimstats repeats on every call. Wall-clock and CPU seconds are both reported; on a shared
machine the CPU-time ratio is the steadier comparison. The estimates and standard errors of both
programs are compared as well.
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
TMP = Path(tempfile.mkdtemp(prefix="survey_bench_"))
NHANES = Path(__file__).resolve().parents[1] / "tests" / "reference" / "data" / "survey" / "nhanes.csv"


def simulated(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stratum = rng.integers(0, 100, rows)
    psu = rng.integers(0, 20, rows)
    psu_effect = rng.normal(0, 0.5, (100, 20))[stratum, psu]
    x1, x2, x3 = rng.normal(size=rows), rng.normal(size=rows), rng.binomial(1, 0.3, rows)
    g = rng.choice(list("abcd"), rows)
    eta = -0.3 + 0.5 * x1 - 0.2 * x2 + 0.4 * x3 + psu_effect
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    w = rng.uniform(50, 500, rows) * (1 + stratum / 100)
    return pd.DataFrame({"stratum": stratum + 1, "psu": psu + 1, "w": w, "y": y, "x1": x1, "x2": x2, "x3": x3,
                         "g": g})


def best_of(fn, repeat):
    """Best wall-clock and CPU seconds over ``repeat`` runs, and the last result."""
    times, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return (min(times), min(cpus)), out


def time_r(path: Path, design: str, mean_formula: str, glm_formula: str, repeat: int):
    """Time svymean and svyglm in R on the CSV at ``path``; returns seconds and the numbers."""
    if RSCRIPT is None:
        return None
    code = f"""
suppressPackageStartupMessages(library(survey))
d <- read.csv("{path}", stringsAsFactors = FALSE)
des <- {design}
tm <- function(expr) {{
  best <- Inf; cpu <- Inf
  for (i in seq_len({repeat})) {{
    st <- system.time(val <- eval.parent(substitute(expr)))
    best <- min(best, st[["elapsed"]]); cpu <- min(cpu, st[["user.self"]] + st[["sys.self"]])
  }}
  list(seconds = best, cpu = cpu, value = val)
}}
m <- tm(svymean({mean_formula}, des, na.rm = TRUE))
g <- tm(svyglm({glm_formula}, design = des, family = quasibinomial()))
cat(jsonlite::toJSON(list(mean = list(seconds = m$seconds, cpu = m$cpu, estimate = unname(coef(m$value)),
                                       se = unname(SE(m$value))),
                          glm = list(seconds = g$seconds, cpu = g$cpu, estimate = unname(coef(g$value)),
                                     se = unname(sqrt(diag(vcov(g$value)))))),
                     digits = NA, auto_unbox = FALSE))
"""
    res = subprocess.run([RSCRIPT, "-e", code], capture_output=True, text=True)
    if res.returncode != 0:
        print("  R failed:", res.stderr.strip().splitlines()[-1:] or res.stderr)
        return None
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {k: {kk: (v[0] if kk in ("seconds", "cpu") else np.asarray(v, dtype=float)) for kk, v in d.items()}
            for k, d in out.items()}


def report(what, ours, theirs, est, se):
    print(f"  {what}: cimstats {ours[0]:.3f} s wall, {ours[1]:.3f} s CPU", end="")
    if theirs is None:
        print("   (R not available)")
        return
    print(f";  R {theirs['seconds']:.3f} s wall, {theirs['cpu']:.3f} s CPU;  ratio R/cimstats = "
          f"{theirs['seconds'] / ours[0]:.2f} (wall), {theirs['cpu'] / max(ours[1], 1e-9):.2f} (CPU)")
    e = np.max(np.abs(np.asarray(est) / theirs["estimate"] - 1))
    s = np.max(np.abs(np.asarray(se) / theirs["se"] - 1))
    print(f"    max relative difference vs R: estimates {e:.1e}, standard errors {s:.1e}")


def scenario(title, data, design, r_design, variables, mean_formula, formula, r_formula, repeat):
    print(title)
    path = TMP / "data.csv"
    data.to_csv(path, index=False)
    r = time_r(path, r_design, mean_formula, r_formula, repeat)
    t_mean, out = best_of(lambda: cimstats.describe(data, variables, design=design, statistics="mean"), repeat)
    report("weighted means (svymean)", t_mean, None if r is None else r["mean"], out.table["estimate"],
           out.table["std_error"])
    t_glm, fit = best_of(lambda: cimstats.glm(formula, data, family="quasibinomial", design=design), repeat)
    report("quasibinomial model (svyglm)", t_glm, None if r is None else r["glm"], fit.params, fit.std_errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows", type=int, default=200_000)
    args = ap.parse_args()
    nh = pd.read_csv(NHANES)
    scenario(f"1. NHANES, {len(nh):,} rows, {nh['SDMVSTRA'].nunique()} strata",
             nh, cimstats.SurveyDesign(weights="WTMEC2YR", strata="SDMVSTRA", cluster="SDMVPSU", nest=True),
             "svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = d)",
             ["HI_CHOL"], "~HI_CHOL", "HI_CHOL ~ C(race) + agecat + RIAGENDR",
             "HI_CHOL ~ factor(race) + agecat + RIAGENDR", args.repeat)
    sim = simulated(args.rows)
    scenario(f"2. Simulated, {len(sim):,} rows, 100 strata x 20 PSUs", sim,
             cimstats.SurveyDesign(weights="w", strata="stratum", cluster="psu", nest=True),
             "svydesign(id = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = d)",
             ["x1", "x2", "x3"], "~x1 + x2 + x3", "y ~ x1 + x2 + x3 + g", "y ~ x1 + x2 + x3 + g", args.repeat)


if __name__ == "__main__":
    main()
