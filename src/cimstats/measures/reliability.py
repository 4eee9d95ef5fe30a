"""Internal-consistency reliability: Cronbach's alpha, McDonald's omega, item statistics.

Kernels (:func:`alpha_from_cov`, :func:`one_factor_ml`) take matrices and
return numbers; :func:`alpha` and :func:`omega` take the item table and return
frozen result objects. :func:`omega` fits its one-factor CFA with cimstats'
SEM core.

Validated against: psych::alpha (R) on committed item data, to 1e-6
(``tests/reference/measures.R`` -> ``tests/reference/measures.json``); the
one-factor loadings against stats::factanal; omega against semTools,
lavaan and psych (``tests/reference/sem.R``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cimstats.errors import EstimationError, MissingDataWarning, ScaleError
from cimstats.measures.scales import load_instrument
from cimstats.measures.scales.scoring import _prepare
from cimstats.models.sem import sem
from cimstats.render.notebook import notebook_html

__all__ = ["alpha", "omega", "scale_reliability", "AlphaResult", "OmegaResult", "alpha_from_cov", "one_factor_ml"]


def alpha_from_cov(C: np.ndarray) -> dict:
    """Kernel: alpha statistics from an item covariance matrix (as psych's internal ``alpha.1``).

    Returns a dict with ``raw_alpha, std_alpha, g6_smc, average_r, s_n, Q, var_r, median_r``;
    ``Q`` is Duhachek's asymptotic variance times n (``ase = sqrt(Q / n)``).
    """
    C = np.asarray(C, dtype=float)
    k = C.shape[0]
    d = np.sqrt(np.diag(C))
    R = C / np.outer(d, d)
    sumC, trC = C.sum(), np.trace(C)
    raw = (1 - trC / sumC) * (k / (k - 1))
    sumR = R.sum()
    std = (1 - k / sumR) * (k / (k - 1))
    smc = 1 - 1 / np.diag(np.linalg.pinv(R))
    g6 = 1 - (k - smc.sum()) / sumR
    av_r = (sumR - k) / (k * (k - 1))
    low = R[np.tril_indices(k, -1)]
    var_r = float(np.var(low, ddof=1)) if low.size > 1 else np.nan
    med_r = float(np.median(low))
    sn = k * av_r / (1 - av_r)
    CC = C @ C
    Q = (2 * k**2 / ((k - 1) ** 2 * sumC**3)) * (sumC * (np.trace(CC) + trC**2) - 2 * trC * CC.sum())
    return {"raw_alpha": raw, "std_alpha": std, "g6_smc": g6, "average_r": av_r, "s_n": sn, "Q": Q,
            "var_r": var_r, "median_r": med_r}


def one_factor_ml(R: np.ndarray, *, lower: float = 0.005, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, dict]:
    """Kernel: maximum-likelihood one-factor model of a correlation matrix.

    Minimises the ML discrepancy over the uniquenesses, with loadings from the
    leading eigenvector of ``Psi^-1/2 R Psi^-1/2`` (the approach of
    ``stats::factanal``; uniquenesses bounded below by ``lower``).

    Returns
    -------
    loadings, uniquenesses : ndarray
    info : dict with ``converged, iterations, objective, gradient_norm``
    """
    R = np.asarray(R, dtype=float)
    p = R.shape[0]

    def fit(psi):
        s = 1 / np.sqrt(psi)
        M = R * np.outer(s, s)
        e, v = np.linalg.eigh(M)
        return e, v

    def obj(psi):
        e, _ = fit(psi)
        rest = e[:-1]  # all but the largest
        return -(np.sum(np.log(rest) - rest) - 1 + p)

    def loads(psi):
        e, v = fit(psi)
        lam = np.sqrt(psi) * v[:, -1] * np.sqrt(max(e[-1] - 1, 0.0))
        return lam if lam.sum() >= 0 else -lam

    def grad(psi):
        lam = loads(psi)
        g = np.outer(lam, lam) + np.diag(psi) - R
        return np.diag(g) / psi**2

    # start as stats::factanal: (1 - 0.5 q / p) / diag(R^-1), q = 1 factor
    start = np.clip((1 - 0.5 / p) / np.diag(np.linalg.pinv(R)), lower, 1.0)
    res = optimize.minimize(obj, start, jac=grad, method="L-BFGS-B", bounds=[(lower, 1.0)] * p,
                            options={"ftol": tol, "gtol": 1e-12, "maxiter": 2000})
    psi = res.x
    lam = loads(psi)
    uniq = 1 - lam**2
    proj = grad(psi)
    free = (psi > lower + 1e-8) & (psi < 1 - 1e-8)
    info = {"converged": bool(res.success), "iterations": int(res.nit), "objective": float(res.fun),
            "gradient_norm": float(np.linalg.norm(proj[free])) if free.any() else 0.0,
            "start": start.tolist(), "final": psi.tolist()}
    return lam, uniq, info


def _item_matrix(data, items, reverse, argname="data"):
    if hasattr(data, "data") and isinstance(getattr(data, "data"), pd.DataFrame):
        data = data.data
    if isinstance(data, np.ndarray):
        data = pd.DataFrame(data, columns=[f"V{i + 1}" for i in range(data.shape[1])])
    if not isinstance(data, pd.DataFrame):
        raise ScaleError(f"`{argname}` is a {type(data).__name__}; expected a DataFrame of item responses.")
    cols = list(items) if items is not None else list(data.columns)
    absent = [c for c in cols if c not in data.columns]
    if absent:
        raise ScaleError(f"`items=` lists {', '.join(map(repr, absent))}, not columns of `{argname}`; "
                         f"available: {', '.join(map(str, data.columns[:12]))}.")
    if len(cols) < 2:
        raise ScaleError(f"`items=` gives {len(cols)} item(s); reliability needs at least two items.")
    X = data[cols].apply(pd.to_numeric, errors="coerce")
    nonnum = X.isna() & data[cols].notna()
    if nonnum.any().any():
        c = nonnum.any().idxmax()
        raise ScaleError(f"Column '{c}' holds non-numeric values; expected numeric item responses: recode "
                         "them first.")
    x = X.to_numpy(dtype=float, na_value=np.nan, copy=True)
    reverse = list(reverse or [])
    for r in reverse:
        if r not in cols:
            raise ScaleError(f"`reverse=` lists '{r}', which is not one of the items {', '.join(cols)}.")
    if len(set(reverse)) != len(reverse):
        raise ScaleError("`reverse=` lists an item twice; list each reverse-keyed item once.")
    if reverse:
        adjust = np.nanmax(x) + np.nanmin(x)  # as psych::alpha: overall min + max of the items
        for r in reverse:
            j = cols.index(r)
            x[:, j] = adjust - x[:, j]
    return x, [c + ("-" if c in reverse else "") for c in cols]


def _pairwise_cov(x: np.ndarray) -> np.ndarray:
    df = pd.DataFrame(x)
    C = df.cov(min_periods=2).to_numpy()
    if np.isnan(C).any():
        raise ScaleError("Some pairs of items are never answered together, so their covariance is "
                         "undefined; drop one item of each such pair.")
    return C


def _pairwise_cor_vec(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        ok = ~np.isnan(t) & ~np.isnan(x[:, j])
        out[j] = np.corrcoef(t[ok], x[ok, j])[0, 1]
    return out


@dataclass(frozen=True)
class AlphaResult:
    """Cronbach's alpha with psych::alpha's companions.

    Attributes
    ----------
    total : dict
        ``raw_alpha, std_alpha, g6_smc, average_r, s_n, ase, mean, sd, median_r``.
    ci : dict
        Feldt interval ``lower, upper`` (as psych's ``alpha.ci``) and Duhachek's
        ``duhachek_lower, duhachek_upper`` (alpha +/- z * ase).
    alpha_drop : DataFrame
        One row per item: statistics with that item deleted (``raw_alpha, std_alpha,
        g6_smc, average_r, s_n, alpha_se, var_r, median_r``).
    item_stats : DataFrame
        One row per item: ``n, raw_r, std_r, r_cor, r_drop, mean, sd``; ``r_drop`` is
        the item-rest correlation.
    nobs, n_complete : int
        Rows used (pairwise) and rows with every item answered.
    """

    items: tuple[str, ...]
    total: dict
    ci: dict
    alpha_drop: pd.DataFrame
    item_stats: pd.DataFrame
    nobs: int
    n_complete: int
    conf_level: float = 0.95
    n_dropped: dict = field(default_factory=dict)

    @property
    def alpha(self) -> float:
        return float(self.total["raw_alpha"])

    def tidy(self) -> pd.DataFrame:
        """Rows ``raw_alpha`` (Feldt CI) and ``std_alpha`` in the shared tidy columns."""
        rows = [{"term": "raw_alpha", "estimate": self.total["raw_alpha"], "std_error": self.total["ase"],
                 "statistic": np.nan, "df": np.nan, "p_value": np.nan,
                 "ci_lower": self.ci["lower"], "ci_upper": self.ci["upper"]},
                {"term": "std_alpha", "estimate": self.total["std_alpha"], "std_error": np.nan,
                 "statistic": np.nan, "df": np.nan, "p_value": np.nan, "ci_lower": np.nan, "ci_upper": np.nan}]
        return pd.DataFrame(rows)

    def glance(self) -> pd.DataFrame:
        return pd.DataFrame([{**{k: v for k, v in self.total.items()}, "n_items": len(self.items),
                              "nobs": self.nobs, "n_complete": self.n_complete}])

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        return notebook_html(lines[0], lines=lines[1:12] + ([f"{len(lines) - 12} more lines in summary()."]
                                                            if len(lines) > 12 else []))

    def summary(self) -> str:
        t = self.total
        lines = [f"Reliability of {len(self.items)} items ({self.nobs} rows, {self.n_complete} complete)",
                 f"  raw alpha {t['raw_alpha']:.3f} (Feldt {self.conf_level:.0%} CI {self.ci['lower']:.3f} to "
                 f"{self.ci['upper']:.3f}); standardized {t['std_alpha']:.3f}; G6 {t['g6_smc']:.3f}; "
                 f"average r {t['average_r']:.3f}",
                 "  item-rest correlation and alpha if deleted:"]
        for it, r, a in zip(self.items, self.item_stats["r_drop"], self.alpha_drop["raw_alpha"]):
            lines.append(f"    {it:<20} r.drop={r:.3f}  alpha if deleted={a:.3f}")
        return "\n".join(lines)


def alpha(data, *, items: Sequence[str] | None = None, reverse: Sequence[str] | None = None,
          conf_level: float = 0.95) -> AlphaResult:
    """Cronbach's alpha, standardized alpha, item-rest correlations and alpha-if-deleted.

    Parameters
    ----------
    data : DataFrame, Survey or ndarray
        One row per person, one column per item.
    items : list of str, optional
        Item columns (default: every column).
    reverse : list of str, optional
        Items to reverse as ``(overall min + overall max) - x`` before analysis,
        as ``psych::alpha(keys=)`` does. Prefer scoring with reverse keys applied.
    conf_level : float
        Level of the Feldt interval.

    Returns
    -------
    AlphaResult

    Notes
    -----
    Covariances use pairwise-complete observations (psych's default ``use =
    "pairwise"``). ``alpha = k/(k-1) (1 - tr(C)/sum(C))``; standardized alpha uses
    the correlation matrix. Feldt interval: ``1 - (1 - alpha) F_{q}(n - 1, (n - 1)(k - 1))``
    with ``n`` the number of rows. ``r_drop`` correlates each item with the sum of
    the others; ``raw_r`` correlates it with the person's mean item score.

    Validated against: psych::alpha (tests/reference/measures.json), ``psych::alpha(x)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cimstats import reliability
    >>> rng = np.random.default_rng(1)
    >>> f = rng.normal(size=300)
    >>> d = pd.DataFrame({f"q{j}": f + rng.normal(size=300) for j in range(4)})
    >>> res = reliability.alpha(d)
    >>> 0.7 < res.alpha < 0.85  # population alpha 0.8
    True
    >>> res.item_stats.columns.tolist()
    ['n', 'raw_r', 'std_r', 'r_cor', 'r_drop', 'mean', 'sd']
    """
    x, names = _item_matrix(data, items, reverse)
    n, k = x.shape
    C = _pairwise_cov(x)
    if np.any(np.diag(C) <= 0):
        bad = [names[j] for j in np.flatnonzero(np.diag(C) <= 0)]
        raise ScaleError(f"Item(s) {', '.join(bad)} have no variance; drop them before computing alpha.")
    tot = alpha_from_cov(C)
    d = np.sqrt(np.diag(C))
    R = C / np.outer(d, d)
    if k > 2:
        drops = [alpha_from_cov(C[np.ix_(keep, keep)]) for keep in
                 ([j for j in range(k) if j != i] for i in range(k))]
        ad = pd.DataFrame({"raw_alpha": [t["raw_alpha"] for t in drops],
                           "std_alpha": [t["std_alpha"] for t in drops],
                           "g6_smc": [t["g6_smc"] for t in drops],
                           "average_r": [t["average_r"] for t in drops],
                           "s_n": [t["s_n"] for t in drops],
                           "alpha_se": [np.sqrt(t["Q"] / n) for t in drops],
                           "var_r": [t["var_r"] for t in drops],
                           "median_r": [t["median_r"] for t in drops]}, index=names)
    else:
        r12 = R[0, 1]
        smc1 = 1 - 1 / np.diag(np.linalg.pinv(R))[0]
        ad = pd.DataFrame({"raw_alpha": [C[0, 1] / C[1, 1], C[0, 1] / C[0, 0]], "std_alpha": [r12, r12],
                           "g6_smc": [smc1, smc1], "average_r": [r12, r12], "s_n": [r12 / (1 - r12)] * 2,
                           "alpha_se": [np.nan] * 2, "var_r": [0.0] * 2, "median_r": [r12] * 2}, index=names)
    total_score = np.nanmean(np.where(np.isnan(x).all(axis=1, keepdims=True), 0, x), axis=1)
    total_score[np.isnan(x).all(axis=1)] = np.nan
    Vt = R.sum()
    std_r = R.sum(axis=0) / np.sqrt(Vt)
    RC = R.copy()
    np.fill_diagonal(RC, 1 - 1 / np.diag(np.linalg.pinv(R)))
    with np.errstate(invalid="ignore"):  # NaN, as in psych, when the items correlate negatively
        r_cor = RC.sum(axis=0) / np.sqrt(RC.sum())
    r_drop = np.empty(k)
    for i in range(k):
        keep = [j for j in range(k) if j != i]
        v_drop = C[np.ix_(keep, keep)].sum()
        c_drop = C[:, i].sum() - C[i, i]
        r_drop[i] = c_drop / np.sqrt(C[i, i] * v_drop)
    item_stats = pd.DataFrame({"n": (~np.isnan(x)).sum(axis=0), "raw_r": _pairwise_cor_vec(total_score, x),
                               "std_r": std_r, "r_cor": r_cor, "r_drop": r_drop,
                               "mean": np.nanmean(x, axis=0), "sd": np.nanstd(x, axis=0, ddof=1)}, index=names)
    ase = float(np.sqrt(tot["Q"] / n))
    a = tot["raw_alpha"]
    p = 1 - conf_level
    df1, df2 = n - 1, (n - 1) * (k - 1)
    z = stats.norm.ppf(1 - p / 2)
    ci = {"lower": 1 - (1 - a) * stats.f.ppf(1 - p / 2, df1, df2),
          "upper": 1 - (1 - a) * stats.f.ppf(p / 2, df1, df2),
          "duhachek_lower": a - z * ase, "duhachek_upper": a + z * ase}
    ts = total_score[~np.isnan(total_score)]
    total = {"raw_alpha": a, "std_alpha": tot["std_alpha"], "g6_smc": tot["g6_smc"],
             "average_r": tot["average_r"], "s_n": tot["s_n"], "ase": ase, "mean": float(ts.mean()),
             "sd": float(ts.std(ddof=1)), "median_r": tot["median_r"]}
    n_complete = int((~np.isnan(x)).all(axis=1).sum())
    return AlphaResult(items=tuple(names), total=total, ci=ci, alpha_drop=ad, item_stats=item_stats,
                       nobs=n, n_complete=n_complete, conf_level=conf_level,
                       n_dropped={"incomplete rows (used pairwise)": n - n_complete})


@dataclass(frozen=True)
class OmegaResult:
    """McDonald's omega from a one-factor CFA fitted by cimstats' SEM core.

    Attributes
    ----------
    omega_total : float
        Model-based omega ``(sum l)^2 / ((sum l)^2 + sum theta)``: the share of
        the sum score's model-implied variance due to the common factor
        (semTools ``compRelSEM(obs.var = FALSE)``).
    omega_observed : float
        ``(sum l)^2 / var(sum score)`` with the observed (under FIML: EM)
        variance of the sum score in the denominator (semTools
        ``compRelSEM()``, its default). With ``standardized=True`` this is
        psych's ``omega_h`` of a one-factor ``omega(fm = "ml")``.
    omega_psych : float
        ``1 - sum theta / var(sum score)`` (psych's ``omega.tot``; with
        ``standardized=True`` it equals ``psych::omega(nfactors = 1, fm = "ml")``).
    std_error, ci_lower, ci_upper : float
        Delta-method standard error and Wald interval of ``omega_total``.
    loadings : DataFrame
        ``loading, residual_variance, std_loading`` per item (index: item names).
    fit : SEMResult
        The one-factor CFA (``std_lv=True``) with ``omega`` as a defined
        parameter; its ``fit_measures()`` tell whether one factor fits.
    optimizer : dict
        How the CFA converged (``method, iterations, gradient_norm, converged``
        ...: the fit's ``optimizer.to_dict()``).
    """

    items: tuple[str, ...]
    omega_total: float
    omega_observed: float
    omega_psych: float
    std_error: float
    ci_lower: float
    ci_upper: float
    loadings: pd.DataFrame
    fit: object
    optimizer: dict
    nobs: int
    n_dropped: int
    standardized: bool
    conf_level: float

    def tidy(self) -> pd.DataFrame:
        """``omega_total`` (with SE and interval), ``omega_observed``, ``omega_psych``, loadings."""
        t = self.fit.tidy(level=self.conf_level)
        rows = [{"term": "omega_total", "estimate": self.omega_total, "std_error": self.std_error,
                 "statistic": np.nan, "df": np.nan, "p_value": np.nan, "ci_lower": self.ci_lower,
                 "ci_upper": self.ci_upper},
                {"term": "omega_observed", "estimate": self.omega_observed},
                {"term": "omega_psych", "estimate": self.omega_psych}]
        load = t[t["op"] == "=~"]
        for item, (_, r) in zip(self.items, load.iterrows()):
            rows.append({"term": f"loading[{item}]", "estimate": r["estimate"], "std_error": r["std_error"],
                         "statistic": r["statistic"], "df": np.nan, "p_value": r["p_value"],
                         "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"]})
        df = pd.DataFrame(rows)
        return df[["term", "estimate", "std_error", "statistic", "df", "p_value", "ci_lower", "ci_upper"]]

    def glance(self) -> pd.DataFrame:
        f = self.fit.fit_measures()
        return pd.DataFrame([{"omega_total": self.omega_total, "omega_observed": self.omega_observed,
                              "omega_psych": self.omega_psych, "nobs": self.nobs, "n_dropped": self.n_dropped,
                              "n_items": len(self.items), "chisq": f["chisq"], "df": f["df"],
                              "cfi": f["cfi"], "rmsea": f["rmsea"], "converged": self.optimizer["converged"]}])

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        return notebook_html(lines[0], lines=lines[1:12] + ([f"{len(lines) - 12} more lines in summary()."]
                                                            if len(lines) > 12 else []))

    def summary(self) -> str:
        f = self.fit.fit_measures()
        scale = "standardized items" if self.standardized else "raw items"
        return (f"McDonald's omega (one-factor CFA on {scale}, {len(self.items)} items, {self.nobs} rows): "
                f"omega_total = {self.omega_total:.3f} (SE {self.std_error:.3f}, "
                f"{100 * self.conf_level:.0f}% CI {self.ci_lower:.3f} to {self.ci_upper:.3f}), "
                f"omega_observed = {self.omega_observed:.3f}; one-factor fit: chisq = {f['chisq']:.2f}, "
                f"df = {f['df']:.0f}, CFI = {f['cfi']:.3f}, RMSEA = {f['rmsea']:.3f}; "
                f"converged={self.optimizer['converged']}")


def omega(data, *, items: Sequence[str] | None = None, reverse: Sequence[str] | None = None,
          missing: str = "fiml", standardized: bool = False, conf_level: float = 0.95) -> OmegaResult:
    """McDonald's omega from a one-factor confirmatory factor analysis.

    The one-factor model ``item_j = l_j f + e_j`` (``Var f = 1``) is fitted by
    maximum likelihood with cimstats' SEM core (:func:`cimstats.sem`), with
    ``omega`` as a defined parameter so that it gets a delta-method standard
    error.

    Parameters
    ----------
    data : DataFrame, Survey or ndarray
    items, reverse : see :func:`alpha`.
    missing : {"fiml", "listwise"}
        ``"fiml"`` (default) uses every answered item of every row (rows with
        no answer at all are counted in ``n_dropped``); ``"listwise"`` uses
        complete rows only.
    standardized : bool
        Fit the model to z-scored items (the reliability of a sum of
        standardized items; comparable to psych's and ``factanal``-based
        omegas). The default describes the sum of the raw items, as
        :func:`cimstats.score_scale` computes it.
    conf_level : float
        Level of the Wald interval of ``omega_total``.

    Returns
    -------
    OmegaResult
        ``omega_total`` (model-based), ``omega_observed`` (observed variance of
        the sum score), ``omega_psych``, their loadings and the fitted CFA.

    Raises
    ------
    ScaleError
        Fewer than three items, absent or non-numeric columns.

    Notes
    -----
    ``omega_total = (sum l)^2 / ((sum l)^2 + sum theta)``,
    ``omega_observed = (sum l)^2 / 1'S1`` (``S`` the sample covariance matrix,
    under FIML its EM estimate), ``omega_psych = 1 - sum theta / 1'S1``.

    Validated against: semTools::compRelSEM (both denominators), lavaan
    (delta-method SE of a defined omega), psych::omega(nfactors = 1, fm = "ml")
    and stats::factanal (``standardized=True``), tests/reference/sem.R.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cimstats import reliability
    >>> rng = np.random.default_rng(2)
    >>> f = rng.normal(size=500)
    >>> d = pd.DataFrame({f"q{j}": 0.8 * f + 0.6 * rng.normal(size=500) for j in range(5)})
    >>> res = reliability.omega(d)
    >>> 0.85 < res.omega_total < 0.95 and res.ci_lower < res.omega_total < res.ci_upper
    True
    """
    import warnings

    # the CFA is fitted by the SEM core (imported here: the measures stage does not depend on
    # the models stage at import time)

    x, names = _item_matrix(data, items, reverse)
    k = x.shape[1]
    if k < 3:
        raise ScaleError(f"`items=` gives {k} items; a one-factor model needs at least three.")
    if missing not in ("fiml", "listwise"):
        raise ScaleError(f"`missing=` is '{missing}'; use 'fiml' (all answers) or 'listwise' (complete rows).")
    cols = [f"i{j + 1}" for j in range(k)]
    df = pd.DataFrame(x, columns=cols)
    if standardized:
        df = (df - df.mean()) / df.std(ddof=0)
    lam = [f"l{j + 1}" for j in range(k)]
    th = [f"e{j + 1}" for j in range(k)]
    model = ("f =~ " + " + ".join(f"{l}*{c}" for l, c in zip(lam, cols)) + "\n"
             + "\n".join(f"{c} ~~ {t}*{c}" for c, t in zip(cols, th)) + "\n"
             + f"omega := ({' + '.join(lam)})^2 / (({' + '.join(lam)})^2 + {' + '.join(th)})")

    with warnings.catch_warnings():
        # rows set aside are reported in n_dropped; convergence and admissibility warnings pass
        warnings.simplefilter("ignore", category=MissingDataWarning)
        fit = sem(model, df, std_lv=True, missing=missing)
    t = fit.tidy(level=conf_level)
    om = t[t["op"] == ":="].iloc[0]
    load = t[t["op"] == "=~"]
    resid = t[(t["op"] == "~~") & (t["lhs"] == t["rhs"]) & t["lhs"].isin(cols)]
    lsum = float(load["estimate"].sum())
    S = fit._h1[0]["S"]  # observed (under FIML: EM) covariance matrix of the items
    total_var = float(S.sum())
    theta = float(resid["estimate"].sum())
    return OmegaResult(
        items=tuple(names), omega_total=float(om["estimate"]), omega_observed=lsum ** 2 / total_var,
        omega_psych=1.0 - theta / total_var, std_error=float(om["std_error"]),
        ci_lower=float(om["ci_lower"]), ci_upper=float(om["ci_upper"]),
        loadings=pd.DataFrame({"loading": load["estimate"].to_numpy(),
                               "residual_variance": resid["estimate"].to_numpy(),
                               "std_loading": load["std_all"].to_numpy()}, index=list(names)),
        fit=fit, optimizer=fit.optimizer.to_dict(), nobs=fit.nobs, n_dropped=fit.n_dropped,
        standardized=standardized, conf_level=conf_level)


def scale_reliability(data, instrument, *, items=None, scores: Sequence[str] | None = None) -> pd.DataFrame:
    """Alpha, its Feldt interval, standardized alpha and omega for each (sub)scale of an instrument.

    Reverse-keyed items are reversed with their declared range (``min + max - x``)
    before the analysis, so the table describes the scores as ``score_scale``
    computes them.

    Parameters
    ----------
    data : DataFrame or Survey
    instrument : str, path or Instrument
        See :func:`cimstats.score_scale`.
    items : mapping, optional
        Instrument item id -> column of ``data``.
    scores : sequence of str, optional
        Scores to describe (default: every score computed from two or more items).

    Returns
    -------
    DataFrame
        One row per score: ``score, n_items, nobs, n_complete, raw_alpha, ci_lower,
        ci_upper, std_alpha, omega_total`` (omega needs three or more items).

    Raises
    ------
    ScaleError
        Columns absent, or responses outside an item's declared range.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cimstats import reliability
    >>> rng = np.random.default_rng(3)
    >>> f = rng.normal(size=200)
    >>> d = pd.DataFrame({f"semcd_{j}": np.clip(np.round(5.5 + 2 * f + rng.normal(size=200)), 1, 10)
    ...                   for j in range(1, 7)})
    >>> reliability.scale_reliability(d, "semcd6")[["score", "n_items", "nobs"]]
       score  n_items  nobs
    0  semcd        6   200
    """

    ins = load_instrument(instrument)
    wanted = [s for s in ins.scores if s.items and len(s.items) >= 2 and (scores is None or s.id in scores)]
    if scores is not None:
        bad = [s for s in scores if s not in ins.score_ids]
        if bad:
            raise ScaleError(f"`scores=` names {', '.join(map(repr, bad))}, not a score of '{ins.id}'.")
    # checks columns and ranges exactly as scoring does (raises on problems), without scoring
    _prepare(data, ins, items=items, scores=[s.id for s in wanted])
    if hasattr(data, "data") and isinstance(getattr(data, "data"), pd.DataFrame):
        data = data.data
    colmap = {i: (items or {}).get(i, i) for i in ins.item_ids}
    rows = []
    for sc in wanted:
        keyed = pd.DataFrame({i: pd.to_numeric(data[colmap[i]], errors="coerce") for i in sc.items})
        for i in sc.items:
            if i in ins.reverse:
                it = ins.item(i)
                keyed[i] = it.min + it.max - keyed[i]
        a = alpha(keyed)
        om = np.nan
        if len(sc.items) >= 3:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                om = omega(keyed).omega_total
        rows.append({"score": sc.id, "n_items": len(sc.items), "nobs": a.nobs, "n_complete": a.n_complete,
                     "raw_alpha": a.alpha, "ci_lower": a.ci["lower"], "ci_upper": a.ci["upper"],
                     "std_alpha": a.total["std_alpha"], "omega_total": om})
    return pd.DataFrame(rows, columns=["score", "n_items", "nobs", "n_complete", "raw_alpha", "ci_lower",
                                       "ci_upper", "std_alpha", "omega_total"])
