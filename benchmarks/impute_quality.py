"""Quality of cimstats.impute: bias and interval coverage by simulation, against complete-case analysis.

Usage::

    python benchmarks/impute_quality.py [--reps 1000] [--m 20] [--iterations 10] [--n 200] [--seed 1]
                                        [--method pmm|norm] [--mechanisms MCAR,MAR]

Each replication draws n = 200 rows of ``x ~ N(0, 1)``, ``z = 0.5 x + e``,
``y = 1 + 0.5 x + 0.5 z + e`` (e ~ N(0, 1)) and deletes values of x and z:

* MCAR: 30% of x and 20% of z, completely at random;
* MAR: x missing with probability ``logistic(-1 + 1.2 y)`` and z with
  ``logistic(-1.5 + 0.8 y)`` (about 35% and 25%), i.e. depending on the observed outcome,
  where complete-case analysis is biased.

Estimands: the slope of x in ``y ~ x + z`` (true 0.5) and the mean of x (true 0).
Multiple imputation (``cimstats.impute`` with its defaults, predictive mean matching,
pooled with Rubin's rules through ``Imputations.fit``) is compared with complete-case
analysis. Printed per mechanism, estimand and method: bias, bias as a share of the mean
standard error, empirical SE, mean SE, coverage of the 95% interval and its mean width.
Targets for multiple imputation: coverage within 93-97% and |bias| < 10% of the SE.
``--method norm`` imputes x and z by Bayesian linear regression instead of predictive mean
matching: under the strong MAR mechanism (fraction of missing information about 0.55) the
donors of predictive mean matching are sparse where most values are missing, which biases
it towards the centre, as is known of mice's pmm; ``norm`` shows what the chained equations
give without that limitation.

Predictive mean matching follows mice's type-1 matching (``matchtype = 1``):
the observed cases are predicted with the least-squares coefficients and the
missing ones with the posterior draw, each missing case taking one of the 5
nearest donors at random (``kernels.pmm``; the same ``.norm.draw``, with ridge
1e-5).

Measured (1,000 replications per mechanism, n = 200, m = 20, 10 iterations,
seed 1; Monte Carlo error of a 95% coverage +-0.014; pmm 467 s, norm 184 s):

=========  ========  ======  ==========  ========  =========================
method     design    term    bias / SE   coverage  complete cases: bias / SE,
                                                   coverage
=========  ========  ======  ==========  ========  =========================
pmm        MCAR      x       -0.07       0.931     -0.06, 0.952
pmm        MCAR      mean_x  -0.04       0.941     -0.01, 0.950
pmm        MAR       x       -0.30       0.914     -0.96, 0.834
pmm        MAR       mean_x  -0.48       0.885     -3.69, 0.041
norm       MCAR      x       -0.07       0.946     -0.06, 0.952
norm       MCAR      mean_x  -0.03       0.947     -0.01, 0.950
norm       MAR       x       -0.07       0.953     -0.96, 0.834
norm       MAR       mean_x  +0.04       0.963     -3.69, 0.041
=========  ========  ======  ==========  ========  =========================

``norm`` meets both targets (coverage 93-97%, |bias| < 10% of the SE) in all
four cells. Under this strong MAR mechanism (fraction of missing information
about 0.55), pmm is biased towards the centre (0.3-0.5 SE) and under-covers,
far less than complete-case analysis but outside the targets; mice's own pmm
shows the same bias on this design (measured in R with 100 replications:
-0.49 and -0.62 SE, coverage 0.95 and 0.85). The donors of predictive mean
matching are sparse where most values are missing: with few rows and a high
fraction of missing information, impute continuous variables with ``norm``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import cimstats  # noqa: E402


class OLS:
    """A least-squares fit with what pooling reads (params, cov_params(), df_resid)."""

    def __init__(self, y, X, names):
        XtX_inv = np.linalg.inv(X.T @ X)
        beta = XtX_inv @ (X.T @ y)
        resid = y - X @ beta
        self.df_resid = float(len(y) - X.shape[1])
        s2 = float(resid @ resid) / self.df_resid
        self.params = pd.Series(beta, index=names)
        self._cov = pd.DataFrame(s2 * XtX_inv, index=names, columns=names)

    def cov_params(self):
        return self._cov


def slope(data):
    X = np.column_stack([np.ones(len(data)), data["x"], data["z"]])
    return OLS(data["y"].to_numpy(float), X, ["(Intercept)", "x", "z"])


def mean_x(data):
    return OLS(data["x"].to_numpy(float), np.ones((len(data), 1)), ["mean_x"])


TRUTH = {"x": 0.5, "mean_x": 0.0}


def simulate(rng, n, mechanism):
    x = rng.normal(size=n)
    z = 0.5 * x + rng.normal(size=n)
    y = 1 + 0.5 * x + 0.5 * z + rng.normal(size=n)
    d = pd.DataFrame({"x": x, "z": z, "y": y})
    if mechanism == "MCAR":
        mx, mz = rng.random(n) < 0.30, rng.random(n) < 0.20
    else:
        mx = rng.random(n) < 1 / (1 + np.exp(-(-1 + 1.2 * y)))
        mz = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.8 * y)))
    d.loc[mx, "x"] = np.nan
    d.loc[mz, "z"] = np.nan
    return d


def complete_case(d, verb, term):
    cc = d.dropna()
    f = verb(cc)
    est = float(f.params[term])
    se = float(np.sqrt(f.cov_params().loc[term, term]))
    q = stats.t.ppf(0.975, f.df_resid)
    return est, se, est - q * se, est + q * se


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--method", default="pmm", choices=["pmm", "norm"], help="method for x and z")
    ap.add_argument("--mechanisms", default="MCAR,MAR")
    a = ap.parse_args()
    rows = []
    started = time.perf_counter()
    for mechanism in a.mechanisms.split(","):
        rng = np.random.default_rng([a.seed, 0 if mechanism == "MCAR" else 1])
        for r in range(a.reps):
            d = simulate(rng, a.n, mechanism)
            imp = cimstats.impute(d, m=a.m, seed=int(rng.integers(2**31)), iterations=a.iterations,
                                  method={"x": a.method, "z": a.method})
            for verb, term in ((slope, "x"), (mean_x, "mean_x")):
                t = imp.fit(verb).tidy().set_index("term").loc[term]
                rows.append((mechanism, term, "multiple imputation", t["estimate"], t["std_error"], t["ci_lower"],
                             t["ci_upper"], t["fmi"]))
                rows.append((mechanism, term, "complete cases", *complete_case(d, verb, term), np.nan))
    res = pd.DataFrame(rows, columns=["mechanism", "estimand", "method", "estimate", "se", "lo", "hi", "fmi"])
    res["truth"] = res["estimand"].map(TRUTH)
    res["covered"] = (res["lo"] <= res["truth"]) & (res["truth"] <= res["hi"])
    out = res.groupby(["mechanism", "estimand", "method"], sort=False).apply(lambda g: pd.Series({
        "bias": g["estimate"].mean() - g["truth"].iloc[0],
        "bias_over_se": (g["estimate"].mean() - g["truth"].iloc[0]) / g["se"].mean(),
        "empirical_se": g["estimate"].std(ddof=1), "mean_se": g["se"].mean(),
        "coverage": g["covered"].mean(), "mean_width": (g["hi"] - g["lo"]).mean(), "mean_fmi": g["fmi"].mean(),
    }), include_groups=False) if _has_include_groups() else res.groupby(
        ["mechanism", "estimand", "method"], sort=False)[["estimate", "truth", "se", "covered", "hi", "lo", "fmi"]].apply(
        lambda g: pd.Series({
            "bias": g["estimate"].mean() - g["truth"].iloc[0],
            "bias_over_se": (g["estimate"].mean() - g["truth"].iloc[0]) / g["se"].mean(),
            "empirical_se": g["estimate"].std(ddof=1), "mean_se": g["se"].mean(),
            "coverage": g["covered"].mean(), "mean_width": (g["hi"] - g["lo"]).mean(), "mean_fmi": g["fmi"].mean()}))
    pd.set_option("display.width", 160)
    print(f"{a.reps} replications per mechanism, n = {a.n}, m = {a.m}, iterations = {a.iterations}, "
          f"method {a.method}, "
          f"{time.perf_counter() - started:.0f} s")
    print(out.round(4).to_string())
    mi = out.xs("multiple imputation", level="method")
    ok = mi["coverage"].between(0.93, 0.97) & (mi["bias_over_se"].abs() < 0.10)
    print("\nmultiple imputation within targets (coverage 93-97%, |bias| < 10% of SE):")
    print(ok.to_string())
    mc = 1.96 * np.sqrt(0.95 * 0.05 / a.reps)
    print(f"(Monte Carlo error of a 95% coverage with {a.reps} replications: +-{mc:.3f})")


def _has_include_groups():
    import inspect

    return "include_groups" in inspect.signature(pd.core.groupby.DataFrameGroupBy.apply).parameters


if __name__ == "__main__":
    main()
