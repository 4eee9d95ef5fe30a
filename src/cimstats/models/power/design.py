"""The designs a power simulation draws data from, and the chunk tasks that fit them.

Every function here is a numeric kernel: it draws data from a stated design
with the generator it is given, fits the model with the package's own verbs,
and returns numbers (one row per replication). The result object is in
:mod:`cimstats.models.power.result`.

Designs
-------
``two_level`` : an outcome ``y`` for ``cluster_size`` members in each of
    ``n_clusters`` clusters, ``y = b0 + effect * x + u_j + e_ij``.
    Continuous outcomes have total variance 1 and intra-cluster correlation
    ``icc`` (``var(u) = icc``, ``var(e) = 1 - icc``), so ``effect`` is in
    standard deviations of the outcome per standard deviation of ``x`` (or
    between the two arms for a 0/1 exposure). Binary outcomes use the logit
    link with ``b0 = logit(prevalence)``, ``icc`` on the latent scale
    (``var(u) = icc / (1 - icc) * pi^2 / 3``) and ``effect`` as a log odds ratio.
    The exposure ``x`` varies between members (``exposure_level=1``) or
    between clusters only (``exposure_level=2``); ``binary_exposure=True``
    makes it a 0/1 arm, half of the units (clusters, for level 2) in each.
    ``missing`` sets that share of outcomes missing completely at random.
``mediation`` : ``x -> m -> y`` with paths ``a`` and ``b`` and direct path
    ``c_prime`` (standardised as above; ``m`` and ``y`` have intra-cluster
    correlations ``icc``); an optional moderator ``w`` (standard normal, at the
    exposure's level) changes path ``a`` by ``a_moderation`` per standard
    deviation. The indirect effect ``a*b`` (or the index of moderated mediation
    ``a_moderation*b``) is tested with a Monte Carlo confidence interval from
    the two multilevel regressions (``m ~ x (+ w + x:w) + (1|cluster)`` and
    ``y ~ m + x (+ w) + (1|cluster)``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import CimstatsError
from cimstats.models.glmm.fit import glmm
from cimstats.models.mixed.fit import lmm

__all__ = ["simulate_two_level", "simulate_mediation", "two_level_chunk", "mediation_chunk", "pilot_chunk",
           "analytic_cluster_power"]

#: draws for each Monte Carlo confidence interval of an indirect effect
MC_DRAWS = 2000
_LOGISTIC_VAR = math.pi ** 2 / 3


def _exposure(rng, n_clusters, cluster_size, level, binary):
    n = n_clusters * cluster_size
    if level == 2:
        if binary:
            arm = np.zeros(n_clusters)
            arm[rng.permutation(n_clusters)[: n_clusters // 2]] = 1.0
        else:
            arm = rng.standard_normal(n_clusters)
        return np.repeat(arm, cluster_size)
    if binary:
        x = np.zeros(n)
        x[rng.permutation(n)[: n // 2]] = 1.0
        return x
    return rng.standard_normal(n)


def simulate_two_level(rng, d: dict, n_clusters: int, cluster_size: int) -> pd.DataFrame:
    """One data set from the ``two_level`` design (columns ``cluster``, ``x``, ``y``)."""
    n = n_clusters * cluster_size
    g = np.repeat(np.arange(n_clusters), cluster_size)
    x = _exposure(rng, n_clusters, cluster_size, d["exposure_level"], d["binary_exposure"])
    icc = d["icc"]
    if d["outcome"] == "binary":
        tau2 = icc / (1 - icc) * _LOGISTIC_VAR
        u = rng.normal(0.0, math.sqrt(tau2), n_clusters)[g]
        b0 = math.log(d["prevalence"] / (1 - d["prevalence"]))
        eta = b0 + d["effect"] * x + u
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        u = rng.normal(0.0, math.sqrt(icc), n_clusters)[g]
        y = d["effect"] * x + u + rng.normal(0.0, math.sqrt(1 - icc), n)
    if d["missing"] > 0:
        y[rng.random(n) < d["missing"]] = np.nan
    return pd.DataFrame({"cluster": g, "x": x, "y": y})


def simulate_mediation(rng, d: dict, n_clusters: int, cluster_size: int) -> pd.DataFrame:
    """One data set from the ``mediation`` design (columns ``cluster``, ``x``, ``w``, ``m``, ``y``)."""
    n = n_clusters * cluster_size
    g = np.repeat(np.arange(n_clusters), cluster_size)
    x = _exposure(rng, n_clusters, cluster_size, d["exposure_level"], d["binary_exposure"])
    w = _exposure(rng, n_clusters, cluster_size, d["exposure_level"], False)
    icc = d["icc"]
    um = rng.normal(0.0, math.sqrt(icc), n_clusters)[g]
    uy = rng.normal(0.0, math.sqrt(icc), n_clusters)[g]
    m = d["a"] * x + d["a_moderation"] * x * w + um + rng.normal(0.0, math.sqrt(1 - icc), n)
    y = d["b"] * m + d["c_prime"] * x + uy + rng.normal(0.0, math.sqrt(1 - icc), n)
    if d["missing"] > 0:
        y[rng.random(n) < d["missing"]] = np.nan
        m[rng.random(n) < d["missing"]] = np.nan
    return pd.DataFrame({"cluster": g, "x": x, "w": w, "m": m, "y": y})


def _row(term_row, alpha):
    est = float(term_row["estimate"])
    p = float(term_row["p_value"])
    return [float(p < alpha) if np.isfinite(p) else np.nan, est, 1.0]


def _quiet_fit(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _cells(d):
    return [(int(j), int(m)) for j in d["n_clusters"] for m in d["cluster_size"]]


def two_level_chunk(d: dict, seeds, alpha: float):
    """Fit each replication of the ``two_level`` design: (significant, estimate, converged) per row."""
    cells = _cells(d)
    out = []
    for s in seeds:
        idx = int(s.spawn_key[-1])
        j, m = cells[idx // d["nsim"]]
        rng = np.random.default_rng(s)
        data = simulate_two_level(rng, d, j, m)
        try:
            if d["outcome"] == "binary":
                fit = _quiet_fit(glmm, "y ~ x + (1 | cluster)", data, family="binomial")
            else:
                fit = _quiet_fit(lmm, "y ~ x + (1 | cluster)", data, reml=True)
            row = _row(fit.tidy().set_index("term").loc["x"], alpha)
            row[2] = float(fit.optimizer.converged)
        except CimstatsError:
            row = [np.nan, np.nan, 0.0]
        out.append(row)
    return np.array(out, dtype=float)


def _mc_interval(rng, est, se, level):
    draws = rng.normal(est[0], se[0], MC_DRAWS) * rng.normal(est[1], se[1], MC_DRAWS)
    a = (1 - level) / 2
    return np.quantile(draws, [a, 1 - a])


def mediation_chunk(d: dict, seeds, alpha: float):
    """Fit each replication of the ``mediation`` design: (CI excludes 0, estimate, converged) per row."""
    cells = _cells(d)
    moderated = d["a_moderation"] != 0 or d["test"] == "index"
    a_term = "x:w" if d["test"] == "index" else "x"
    out = []
    for s in seeds:
        idx = int(s.spawn_key[-1])
        j, m = cells[idx // d["nsim"]]
        rng = np.random.default_rng(s)
        data = simulate_mediation(rng, d, j, m)
        try:
            fm = _quiet_fit(lmm, "m ~ x * w + (1 | cluster)" if moderated else "m ~ x + (1 | cluster)", data)
            fy = _quiet_fit(lmm, "y ~ m + x + w + (1 | cluster)" if moderated else "y ~ m + x + (1 | cluster)",
                            data)
            tm, ty = fm.tidy().set_index("term"), fy.tidy().set_index("term")
            est = (float(tm.loc[a_term, "estimate"]), float(ty.loc["m", "estimate"]))
            se = (float(tm.loc[a_term, "std_error"]), float(ty.loc["m", "std_error"]))
            lo, hi = _mc_interval(rng, est, se, 1 - alpha)
            out.append([float(lo > 0 or hi < 0), est[0] * est[1],
                        float(fm.optimizer.converged and fy.optimizer.converged)])
        except CimstatsError:
            out.append([np.nan, np.nan, 0.0])
    return np.array(out, dtype=float)


def pilot_chunk(d: dict, seeds, alpha: float):
    """Simulate from a fitted pilot model on resampled clusters, refit, test the term."""
    cells = _cells(d)
    data0: pd.DataFrame = d["data"]
    groups = d["cluster_rows"]
    out = []
    for s in seeds:
        idx = int(s.spawn_key[-1])
        j, m = cells[idx // d["nsim"]]
        rng = np.random.default_rng(s)
        picked = rng.integers(0, len(groups), j)
        rows, new_ids = [], []
        for k, c in enumerate(picked):
            members = groups[c]
            take = members if m == 0 else members[rng.integers(0, len(members), m)]
            rows.append(take)
            new_ids.append(np.full(len(take), k))
        rows = np.concatenate(rows)
        data = data0.iloc[rows].reset_index(drop=True)
        X = d["fixed_matrix"][rows]
        Z = d["random_matrix"][rows]
        codes = np.concatenate(new_ids)
        u = rng.multivariate_normal(np.zeros(Z.shape[1]), d["re_cov"], size=j, method="cholesky")
        eta = X @ d["beta"] + np.einsum("ij,ij->i", Z, u[codes])
        if d["family"] == "gaussian":
            y = eta + rng.normal(0.0, d["sigma"], len(eta))
        elif d["family"] == "binomial":
            y = (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))).astype(float)
        else:
            y = rng.poisson(np.exp(eta)).astype(float)
        data[d["response"]] = y
        data[d["group"]] = codes
        try:
            if d["family"] == "gaussian":
                fit = _quiet_fit(lmm, d["formula"], data, reml=d["reml"])
            else:
                fit = _quiet_fit(glmm, d["formula"], data, family=d["family"])
            row = _row(fit.tidy().set_index("term").loc[d["term"]], alpha)
            row[2] = float(fit.optimizer.converged)
        except CimstatsError:
            row = [np.nan, np.nan, 0.0]
        out.append(row)
    return np.array(out, dtype=float)


def analytic_cluster_power(effect: float, icc: float, n_clusters: int, cluster_size: int, alpha: float = 0.05) -> float:
    """Power of the two-sided t-test of a cluster-level 0/1 exposure in a balanced two-level design.

    The variance of the difference between arms is
    ``4 * (icc + (1 - icc) / m) / J`` for ``J`` clusters of ``m`` members and
    an outcome of total variance 1, that is ``4 / (J m)`` times the design
    effect ``1 + (m - 1) icc``; the test has ``J - 2`` degrees of freedom and
    the power is taken from the noncentral t distribution.

    Examples
    --------
    >>> round(analytic_cluster_power(0.5, 0.1, 20, 10), 3)
    0.68
    """
    se = math.sqrt(4 * (icc + (1 - icc) / cluster_size) / n_clusters)
    df = n_clusters - 2
    q = stats.t.ppf(1 - alpha / 2, df)
    ncp = effect / se
    return float(stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp))
