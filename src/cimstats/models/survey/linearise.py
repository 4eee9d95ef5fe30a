"""Taylor-linearisation variances under a survey design (numbers only).

An estimate computed from weighted sums (a mean, a total, the coefficients
of a design-weighted GLM) is, to first order, a weighted total of one
*influence value* per respondent. Its design-based variance is the variance
of that total under the sampling design: the influence values are summed
within primary sampling units (PSUs), and the PSU totals vary around their
stratum mean,

    V = sum_h (1 - f_h) n_h / (n_h - 1) sum_i (t_hi - mean_h t)(t_hi - mean_h t)'

with ``n_h`` PSUs sampled in stratum ``h`` and sampling fraction ``f_h``
(zero without an fpc). With an fpc at every stage, each later stage adds
its own term within the units of the stage before, scaled by the earlier
stage's sampling fraction. This is R's ``survey:::svyrecvar`` (with its
``onestage``/``multistage`` recursion); the functions here take the arrays
of a :class:`~cimstats.models.survey.design.BoundDesign` and return numbers.

Estimates in a subset of the sample (a domain, or the rows without missing
values) keep the design's PSU counts: a PSU with no row in the subset
contributes a total of zero, as it does in ``survey``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .design import BoundDesign, SurveyDesignError

__all__ = ["design_variance", "weighted_mean", "weighted_total", "weighted_quantile", "quantile_woodruff",
           "t_quantile"]


def t_quantile(level: float, df: float) -> float:
    """Two-sided critical value: t with ``df`` degrees of freedom, normal when ``df`` is infinite."""
    a = 0.5 + level / 2
    return float(stats.norm.ppf(a) if not np.isfinite(df) else stats.t.ppf(a, df))


def _rowsum(x: np.ndarray, codes: np.ndarray, m: int) -> np.ndarray:
    out = np.empty((m, x.shape[1]))
    for j in range(x.shape[1]):
        out[:, j] = np.bincount(codes, weights=x[:, j], minlength=m)
    return out


def _onestage(x, strata, clusters, nPSU, popsize, lonely: str, stage: int, labels) -> np.ndarray:
    """One stage of ``svyrecvar``: between-unit variance summed over strata (rows of the subset only)."""
    p = x.shape[1]
    if x.shape[0] == 0:
        return np.zeros((p, p))
    hs, h_first, h_inv = np.unique(strata, return_index=True, return_inverse=True)
    H = len(hs)
    nh = nPSU[h_first]
    if popsize is None:
        f = np.ones(H)
    else:
        pop = popsize[h_first]
        f = np.where(np.isinf(pop), 1.0, (pop - nh) / np.where(np.isinf(pop), 1.0, pop))
    scale = np.where(nh > 1, f * nh / np.maximum(nh - 1, 1), f)
    cs, c_first, c_inv = np.unique(clusters, return_index=True, return_inverse=True)
    T = _rowsum(x, c_inv, len(cs))
    psu_h = h_inv[c_first]
    nsub = np.bincount(psu_h, minlength=H).astype(float)
    lone = nh <= 1
    negligible = f < 1e-7                      # every unit sampled: no variance from this stratum
    if lonely == "fail":
        bad = np.flatnonzero(lone & ~negligible)
        if bad.size:
            name = labels(stage, hs[bad[0]])
            raise SurveyDesignError(
                f"{name} has a single PSU at sampling stage {stage + 1} ({bad.size} such stratum(s) in the rows "
                f"used), so its variance cannot be estimated; pass lonely_psu='adjust', 'average', 'certainty' or "
                f"'remove' to SurveyDesign, or merge the stratum with a similar one.")
    denom = np.maximum(nh, nsub)               # PSUs without rows in the subset count as zero totals
    sums = _rowsum(T, psu_h, H)
    means = sums / denom[:, None]
    centre = ~(lone & (lonely == "adjust"))
    D = T - np.where(centre[psu_h][:, None], means[psu_h], 0.0)
    use = ~negligible & ~(lone & (lonely == "average"))
    s = np.where(use, scale, 0.0)
    V = (D * s[psu_h][:, None]).T @ D
    pad = np.where(centre, denom - nsub, 0.0) * s
    if pad.any():
        V = V + (means * pad[:, None]).T @ means
    if lonely == "average":
        n_na = int((lone & ~negligible).sum())
        if n_na:
            V = V * H / (H - n_na) if H > n_na else V * np.nan
    return V


def _multistage(x, rows: np.ndarray, d: BoundDesign, stage: int) -> np.ndarray:
    pop = None if d.popsize is None else d.popsize[stage][rows]
    V = _onestage(x[rows], d.strata[stage][rows], d.ids[stage][rows], d.sampsize[stage][rows], pop,
                  d.lonely_psu, stage, d.stratum_label)
    if d.popsize is not None and stage + 1 < len(d.ids):
        units = d.ids[stage][rows]
        order = np.argsort(units, kind="stable")
        sorted_units = units[order]
        bounds = np.flatnonzero(np.diff(sorted_units)) + 1
        for grp in np.split(order, bounds):
            idx = rows[grp]
            frac = d.sampsize[stage][idx[0]] / d.popsize[stage][idx[0]]
            V = V + _multistage(x, idx, d, stage + 1) * frac
    return V


def design_variance(x: np.ndarray, design: BoundDesign, rows: np.ndarray | None = None) -> np.ndarray:
    """Design-based covariance matrix of the totals of the influence values ``x``.

    Parameters
    ----------
    x : (n, p) array
        One row of influence values per row of the design's data.
    design : BoundDesign
    rows : boolean (n,) array, optional
        The rows in the subset (domain, complete cases); others contribute nothing.

    Returns
    -------
    (p, p) array
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    idx = np.arange(design.n) if rows is None else np.flatnonzero(rows)
    return _multistage(x, idx, design, 0)


def weighted_mean(Y: np.ndarray, design: BoundDesign, rows: np.ndarray):
    """Weighted means of the columns of ``Y`` over ``rows``, with their covariance (R's ``svymean``)."""
    Y = np.asarray(Y, dtype=float).reshape(design.n, -1)
    w = np.where(rows, design.weights, 0.0)
    psum = w.sum()
    Yz = np.where(rows[:, None], Y, 0.0)
    mean = (Yz * w[:, None]).sum(axis=0) / psum
    infl = (Yz - mean) * (w / psum)[:, None]
    return mean, design_variance(infl, design, rows)


def weighted_total(Y: np.ndarray, design: BoundDesign, rows: np.ndarray):
    """Weighted totals of the columns of ``Y`` over ``rows``, with their covariance (R's ``svytotal``)."""
    Y = np.asarray(Y, dtype=float).reshape(design.n, -1)
    w = np.where(rows, design.weights, 0.0)
    infl = np.where(rows[:, None], Y, 0.0) * w[:, None]
    return infl.sum(axis=0), design_variance(infl, design, rows)


def weighted_quantile(y: np.ndarray, w: np.ndarray, p: float) -> float:
    """The weighted quantile by ``survey``'s default rule (``qrule_math``: the smallest value whose
    cumulative weight share reaches ``p``)."""
    keep = w != 0
    y, w = y[keep], w[keep]
    order = np.argsort(y, kind="stable")
    ys = y[order]
    # running sums in extended precision, each rounded to double, as R's cumsum() and sum() do: with equal
    # weights the cumulative share can hit p exactly, and the rule then takes the lower value
    run = np.cumsum(w[order].astype(np.longdouble))
    cumw = run.astype(float)
    total = float(run[-1])
    hit = np.flatnonzero(cumw <= p * total)
    pos = int(hit[-1]) if hit.size else 0
    nxt = pos if pos == len(ys) - 1 else pos + 1
    wlow = p - cumw[pos] / total
    return float(ys[pos] if wlow == 0 else ys[nxt])


def quantile_woodruff(y: np.ndarray, design: BoundDesign, rows: np.ndarray, p: float, level: float):
    """A quantile with Woodruff's confidence interval, as R's ``svyquantile`` with its defaults.

    The interval for the proportion of the population at or below the
    estimated quantile (a design-based Wald interval with the design's
    degrees of freedom) is turned back into values of ``y`` by the same
    quantile rule; the standard error is the interval's width divided by
    twice the critical value.

    Returns
    -------
    (estimate, std_error, ci_lower, ci_upper, df)
    """
    w = np.where(rows, design.weights, 0.0)
    yr, wr = y[rows], w[rows]
    q = weighted_quantile(yr, wr, p)
    df = design.degrees_of_freedom(rows)
    ind = np.where(rows, (np.where(rows, y, np.inf) <= q).astype(float), 0.0)
    m, v = weighted_mean(ind, design, rows)
    crit = t_quantile(level, df if df > 0 else np.nan)
    se_p = float(np.sqrt(v[0, 0]))
    lo_p, hi_p = m[0] - crit * se_p, m[0] + crit * se_p
    lower = np.nan if (np.isnan(lo_p) or lo_p < 0) else weighted_quantile(yr, wr, lo_p)
    upper = np.nan if (np.isnan(hi_p) or hi_p > 1) else weighted_quantile(yr, wr, hi_p)
    return q, (upper - lower) / (2 * crit), lower, upper, df
