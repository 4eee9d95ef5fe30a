"""Mixed models near the boundary of the parameter space: cimstats against lme4 on seeded simulations.

Usage::

    python benchmarks/boundary_sweep.py [--seeds 50] [--designs NAME ...] [--json OUT]
    python benchmarks/boundary_sweep.py --seeds 4 --write-reference tests/reference/corpus_boundary.json

Designs whose true variance components are near zero or whose correlations are near +/-1,
where an optimiser can stop on the boundary (a zero variance, a correlation of +/-1) while
the optimum lies inside, or the reverse:

- ``intercept_tiny``: random intercept with SD 0.05 (residual SD 1), 25 groups of 6;
- ``slope_corr_high``: random intercept and slope, correlation drawn from 0.95-1.0;
- ``slope_corr_neg_small``: a small slope SD (0.08) with correlation drawn from -1.0 to -0.95;
- ``crossed_zero``: crossed random intercepts, one with SD 0.7 and one with SD 0.03;
- ``bernoulli_small``: Bernoulli random-intercept model (logit, Laplace) with SD 0.15.

Every data set is fitted with cimstats (REML for the linear models) and, when ``Rscript``
with lme4 is on the PATH, with ``lmer``/``glmer`` in the same run: the data sets are
written to a temporary folder and one R process fits them all, each twice (bobyqa and
nloptwrap at tight tolerances, glmer's inner loop converged with ``tolPwrss = 1e-13``),
keeping the lower criterion. The report gives per design how often cimstats' criterion
(REML criterion, or -2 log-likelihood) is worse than R's by more than 1e-6, and how many
of those fits cimstats reported as converged: a converged fit at a worse point is a defect.
Without R, only cimstats' own results (criterion, boundary flags, convergence) are shown.

``--write-reference`` stores R's criteria for the first ``--seeds`` seeds of every design
(with a checksum of each simulated outcome and the R and lme4 versions);
``tests/test_boundary_sweep.py`` fits those data sets again without R.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import cimstats  # noqa: E402

RSCRIPT = shutil.which("Rscript")
WORSE = 1e-6


def _normal_lmm(rng, g, z, sd, rho, resid=1.0):
    """Random intercept (and slope when ``z`` is given) with SDs ``sd`` and correlation ``rho``."""
    n_g = g.max() + 1
    if z is None:
        u = rng.normal(0.0, sd[0], n_g)[g]
    else:
        cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
        # a correlation of exactly 1 gives a singular covariance: draw by its Cholesky-like root
        w, v = np.linalg.eigh(cov)
        b = rng.normal(size=(n_g, 2)) @ (v * np.sqrt(np.clip(w, 0, None))).T
        u = b[g, 0] + b[g, 1] * z
    return u + rng.normal(0.0, resid, g.size)


def intercept_tiny(seed):
    rng = np.random.default_rng([1, seed])
    g = np.repeat(np.arange(25), 6)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + _normal_lmm(rng, g, None, (0.05,), 0.0)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _slope(seed, key, sd_slope, lo, hi):
    rng = np.random.default_rng([key, seed])
    rho = rng.uniform(lo, hi)
    g = np.repeat(np.arange(18), 8)
    t = np.tile(np.arange(8.0), 18)
    y = 2.0 + 0.3 * t + _normal_lmm(rng, g, t, (1.0, sd_slope), rho)
    return pd.DataFrame({"y": y, "t": t, "g": g})


def slope_corr_high(seed):
    return _slope(seed, 2, 0.25, 0.95, 1.0)


def slope_corr_neg_small(seed):
    return _slope(seed, 3, 0.08, -1.0, -0.95)


def crossed_zero(seed):
    rng = np.random.default_rng([4, seed])
    a = np.repeat(np.arange(12), 16)
    b = np.tile(np.repeat(np.arange(8), 2), 12)
    x = rng.normal(size=a.size)
    y = 0.5 * x + rng.normal(0, 0.7, 12)[a] + rng.normal(0, 0.03, 8)[b] + rng.normal(size=a.size)
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


def bernoulli_small(seed):
    rng = np.random.default_rng([5, seed])
    g = np.repeat(np.arange(40), 6)
    x = rng.normal(size=g.size)
    eta = -0.3 + 0.6 * x + rng.normal(0, 0.15, 40)[g]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "g": g})


DESIGNS = {
    "intercept_tiny": (intercept_tiny, "y ~ x + (1 | g)", "gaussian"),
    "slope_corr_high": (slope_corr_high, "y ~ t + (t | g)", "gaussian"),
    "slope_corr_neg_small": (slope_corr_neg_small, "y ~ t + (t | g)", "gaussian"),
    "crossed_zero": (crossed_zero, "y ~ x + (1 | a) + (1 | b)", "gaussian"),
    "bernoulli_small": (bernoulli_small, "y ~ x + (1 | g)", "binomial"),
}


def simulate(design: str, seed: int) -> pd.DataFrame:
    return DESIGNS[design][0](seed)


def fit_cimstats(design: str, data: pd.DataFrame) -> dict:
    """cimstats' criterion (REML criterion, or -2 log-likelihood), convergence and boundary flags."""
    _, formula, family = DESIGNS[design]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "gaussian":
            m = cimstats.lmm(formula, data)
            g = m.glance().iloc[0]
            return {"criterion": float(m.criterion), "converged": bool(g["converged"]),
                    "singular": bool(m.singular), "theta": [float(v) for v in m.theta]}
        m = cimstats.glmm(formula, data, family=family)
        return {"criterion": -2.0 * float(m.loglik), "converged": bool(m.converged),
                "singular": bool(m.singular), "theta": [float(v) for v in m.theta]}


R_CODE = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
man <- read.csv(args[1], stringsAsFactors = FALSE)
lctrl <- list(lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10)),
              lmerControl(optimizer = "nloptwrap", optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12,
                          ftol_rel = 1e-15, xtol_rel = 1e-12, maxeval = 1e5)))
gctrl <- list(glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13, optCtrl = list(maxfun = 1e5, rhoend = 1e-10)),
              glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13, optCtrl = list(ftol_abs = 1e-14,
                           xtol_abs = 1e-12, ftol_rel = 1e-15, xtol_rel = 1e-12, maxeval = 1e5)))
crit <- numeric(nrow(man)); sing <- logical(nrow(man)); secs <- numeric(nrow(man))
for (i in seq_len(nrow(man))) {
  d <- read.csv(man$file[i])
  f <- as.formula(man$formula[i])
  t0 <- proc.time()[["elapsed"]]
  fits <- suppressMessages(suppressWarnings(if (man$family[i] == "gaussian")
    lapply(lctrl, function(ct) lmer(f, data = d, REML = TRUE, control = ct)) else
    lapply(gctrl, function(ct) glmer(f, data = d, family = binomial, control = ct))))
  secs[i] <- proc.time()[["elapsed"]] - t0
  cr <- sapply(fits, function(m) if (man$family[i] == "gaussian") unname(REMLcrit(m)) else -2 * as.numeric(logLik(m)))
  crit[i] <- min(cr)
  sing[i] <- isSingular(fits[[which.min(cr)]])
}
write.csv(data.frame(id = man$id, r_criterion = crit, r_singular = sing, r_seconds = secs), args[2], row.names = FALSE)
writeLines(c(R.version.string, as.character(packageVersion("lme4"))), args[3])
"""


def fit_r(jobs: list[tuple[str, int, pd.DataFrame]]) -> tuple[pd.DataFrame, dict]:
    """Fit every data set with lme4 in one R process; R's criteria by job id, and the versions."""
    tmp = Path(tempfile.mkdtemp(prefix="boundary_sweep_"))
    rows = []
    for i, (design, seed, data) in enumerate(jobs):
        path = tmp / f"d{i}.csv"
        data.to_csv(path, index=False, float_format="%.17g")
        _, formula, family = DESIGNS[design]
        rows.append({"id": i, "file": str(path), "formula": formula, "family": family})
    pd.DataFrame(rows).to_csv(tmp / "manifest.csv", index=False)
    (tmp / "fit.R").write_text(R_CODE)
    done = subprocess.run([RSCRIPT, str(tmp / "fit.R"), str(tmp / "manifest.csv"), str(tmp / "r.csv"),
                           str(tmp / "versions.txt")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"R could not fit the sweep: {done.stderr[-2000:]}")
    r_version, lme4_version = (tmp / "versions.txt").read_text().splitlines()[:2]
    out = pd.read_csv(tmp / "r.csv")
    shutil.rmtree(tmp, ignore_errors=True)
    return out, {"R": r_version, "lme4": lme4_version}


def sweep(designs, seeds: int, use_r: bool = True) -> tuple[pd.DataFrame, dict]:
    jobs, rows = [], []
    for design in designs:
        for seed in range(seeds):
            data = simulate(design, seed)
            t0 = time.perf_counter()
            res = fit_cimstats(design, data)
            rows.append({"design": design, "seed": seed, "y_sum": float(data["y"].sum()),
                         "seconds": time.perf_counter() - t0, **res})
            jobs.append((design, seed, data))
    table = pd.DataFrame(rows)
    versions: dict = {}
    if use_r and RSCRIPT:
        r, versions = fit_r(jobs)
        table = pd.concat([table, r.drop(columns="id")], axis=1)
        table["diff"] = table["criterion"] - table["r_criterion"]
        table["worse"] = table["diff"] > WORSE
        table["converged_worse"] = table["worse"] & table["converged"]
    return table, versions


def summary(table: pd.DataFrame) -> pd.DataFrame:
    agg = {"fits": ("seed", "size"), "cimstats_singular": ("singular", "sum"),
           "not_converged": ("converged", lambda c: int((~c).sum())), "cimstats_s": ("seconds", "sum")}
    if "diff" in table:
        agg.update(r_singular=("r_singular", "sum"), worse_than_r=("worse", "sum"),
                   converged_but_worse=("converged_worse", "sum"), largest_gap=("diff", "max"),
                   r_s=("r_seconds", "sum"))
    return table.groupby("design", sort=False).agg(**agg).reset_index()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=50, help="seeds per design (default 50: 250 data sets)")
    ap.add_argument("--designs", nargs="*", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--no-r", action="store_true", help="fit with cimstats only")
    ap.add_argument("--json", type=Path, help="write every fit's numbers to this file")
    ap.add_argument("--write-reference", type=Path,
                    help="store R's criteria for these seeds (for tests/test_boundary_sweep.py)")
    args = ap.parse_args(argv)
    if args.write_reference and not RSCRIPT:
        ap.error("--write-reference needs Rscript with lme4")
    table, versions = sweep(args.designs, args.seeds, use_r=not args.no_r)
    pd.set_option("display.width", 160)
    print(f"{len(table)} data sets; R: {versions or 'not run'}")
    print(summary(table).to_string(index=False))
    if "converged_worse" in table and table["converged_worse"].any():
        print("\nconverged fits at a worse point than lme4's:")
        print(table.loc[table["converged_worse"], ["design", "seed", "criterion", "r_criterion", "diff",
                                                   "theta"]].to_string(index=False))
    if args.json:
        args.json.write_text(table.to_json(orient="records", indent=1))
    if args.write_reference:
        ref = {"about": "R's REML criteria (linear) and -2 log-likelihoods (Bernoulli, Laplace) for the seeded "
                        "data sets of benchmarks/boundary_sweep.py, written by its --write-reference option",
               "versions": versions, "tolerance": WORSE,
               "fits": table[["design", "seed", "y_sum", "r_criterion", "r_singular"]].to_dict("records")}
        args.write_reference.write_text(json.dumps(ref, indent=1) + "\n")
        print(f"wrote {args.write_reference}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
