"""The ``gee`` verb: population-averaged (marginal) models by generalised estimating equations.

The formula goes through the same front end as ``glmm`` (factors, interactions,
``offset()``); the cluster is named by one ``(1 | cluster)`` term or by
``groups=``. Estimation is statsmodels' ``GEE``; this module only adapts the
design and turns the fit into a frozen :class:`GeeResult`.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import ConvergenceWarning, MissingDataWarning, ModelSpecificationError
from ..formula import RandomTerm, parse_formula
from ..mixed.fit import _as_frame, _check_rank
from .family import make_family
from .fit import _check_response, _prepare, offset_values
from .results import WaldFixedEffects

__all__ = ["gee", "GeeResult"]

_COV_STRUCTS = ("exchangeable", "independence")
_COV_TYPES = ("robust", "naive", "bias_reduced")


def _sm_family(fam):
    import statsmodels.api as sm

    links = {"logit": sm.families.links.Logit, "probit": sm.families.links.Probit,
             "cloglog": sm.families.links.CLogLog, "log": sm.families.links.Log,
             "identity": sm.families.links.Identity}
    link = links[fam.link.name]()
    return sm.families.Binomial(link=link) if fam.name == "binomial" else sm.families.Poisson(link=link)


def gee(formula, data=None, *, family: str = "binomial", link: str | None = None, groups: str | None = None,
        cov_struct: str = "exchangeable", cov_type: str = "robust", offset=None, maxiter: int = 60):
    """Fit a population-averaged model by generalised estimating equations (GEE).

    GEE estimates marginal effects: how the outcome's mean differs between
    people (or network members) with different covariate values, averaged over
    clusters, with standard errors that stay valid when the working correlation
    is wrong (robust "sandwich" standard errors). Report it beside ``glmm``,
    whose effects are conditional on the cluster.

    Parameters
    ----------
    formula : str
        ``outcome ~ predictors`` in the same syntax as ``glmm``; the cluster is
        given by one term ``(1 | cluster)`` or by ``groups=``. Poisson offsets
        may be written ``offset(log(exposure))``.
    data : pandas.DataFrame or cimstats.Survey
    family : {"binomial", "poisson"}
        Binary (0/1) outcomes or counts.
    link : str, optional
        As for ``glmm`` (default logit for binomial, log for Poisson).
    groups : str, optional
        Column identifying the clusters (instead of a ``(1 | cluster)`` term).
    cov_struct : {"exchangeable", "independence"}
        Working correlation within clusters.
    cov_type : {"robust", "naive", "bias_reduced"}
        Robust sandwich standard errors (default), model-based ("naive"), or
        the Mancl-DeRouen bias-reduced sandwich for few clusters.
    offset : str or array-like, optional
        Offset on the link scale (a column, expression or values).
    maxiter : int
        Maximum number of GEE iterations.

    Returns
    -------
    GeeResult
        ``tidy(exponentiate=...)`` (term, estimate, std_error, statistic,
        df, p_value, ci_lower, ci_upper), ``glance()``, ``summary()``,
        ``predict()``, ``working_correlation``.

    Raises
    ------
    ModelSpecificationError
        Unknown family, link, ``cov_struct`` or ``cov_type``; no cluster or more
        than one; random slopes; a non-binary binomial outcome (GEE takes 0/1
        outcomes, not ``cbind()`` totals); negative or non-integer counts.

    Warns
    -----
    MissingDataWarning
        Rows with missing model variables were set aside (counted per column).
    ConvergenceWarning
        The estimating equations did not converge in ``maxiter`` iterations.

    Notes
    -----
    Liang and Zeger (1986). For an exchangeable working correlation the
    common within-cluster correlation is estimated by moments; with
    ``cov_struct="independence"`` the point estimates equal an ordinary GLM's.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cimstats
    >>> rng = np.random.default_rng(5)
    >>> g = np.repeat(np.arange(80), 6)
    >>> x = rng.normal(size=g.size)
    >>> eta = -0.3 + 0.7 * x + rng.normal(0, 0.8, 80)[g]
    >>> d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g})
    >>> m = cimstats.gee("y ~ x + (1 | g)", d, family="binomial")
    >>> m.tidy()["term"].tolist()
    ['(Intercept)', 'x']
    >>> int(m.glance()["n_clusters"].iloc[0])
    80
    """
    import statsmodels.api as sm

    if isinstance(formula, pd.DataFrame) or (not isinstance(formula, str) and hasattr(formula, "data")):
        formula, data = data, formula
    if data is None:
        raise ModelSpecificationError("`data` is missing; expected a DataFrame with the model's columns.")
    fam = make_family(family, link)
    if cov_struct not in _COV_STRUCTS:
        raise ModelSpecificationError(
            f"`cov_struct` is {cov_struct!r}; expected one of {list(_COV_STRUCTS)}."
        )
    if cov_type not in _COV_TYPES:
        raise ModelSpecificationError(f"`cov_type` is {cov_type!r}; expected one of {list(_COV_TYPES)}.")
    if not isinstance(formula, str) or "~" not in formula:
        raise ModelSpecificationError(
            f"`formula` is {formula!r}; expected a string such as 'y ~ x + (1 | cluster)'."
        )
    spec = parse_formula(formula, glm_terms=True)
    if spec.cbind:
        raise ModelSpecificationError(
            f"The response of {formula!r} uses cbind(); gee() takes one row per binary outcome, so expand the "
            f"successes and failures into 0/1 rows (or use glmm())."
        )
    df = _as_frame(data)
    if groups is not None:
        if spec.random:
            raise ModelSpecificationError(
                f"`groups` is {groups!r} but the formula already names a cluster with a (1 | ...) term; give one."
            )
        if not isinstance(groups, str):
            raise ModelSpecificationError(f"`groups` is {groups!r}; expected the name of the cluster column.")
        if groups not in df.columns:
            cols = ", ".join(map(str, list(df.columns)[:12]))
            raise ModelSpecificationError(
                f"`groups` is {groups!r}, which is not a column of `data`; expected the name of the cluster "
                f"column, one of: {cols}{' ...' if df.shape[1] > 12 else ''}."
            )
        # the cluster joins the parsed formula as a random intercept term (1 | groups)
        spec = replace(spec, random=(RandomTerm((), True, groups, (groups,), f"(1 | {groups})"),))
    frame, label, m, off, offset_exprs, n_pre, extra_missing, pos, _ = _prepare(spec, df, fam, None, offset)
    if len(frame.random) != 1 or frame.random[0].k != 1 or frame.random[0].term_names != ("(Intercept)",):
        raise ModelSpecificationError(
            f"The formula {formula!r} {'has no cluster' if not frame.random else 'has several or non-intercept random terms'}; "
            f"gee() needs exactly one cluster, written (1 | cluster) or given as `groups=`."
        )
    y = np.asarray(frame.y, dtype=float)
    _check_response(frame, y, m, fam, label)
    if fam.name == "binomial" and np.any((y != 0) & (y != 1)):
        raise ModelSpecificationError(
            f"The outcome {label!r} has values other than 0 and 1; gee() with family='binomial' needs a 0/1 outcome."
        )
    _check_rank(frame.X, frame.fixed_names)
    blk = frame.random[0]
    cs = sm.cov_struct.Exchangeable() if cov_struct == "exchangeable" else sm.cov_struct.Independence()
    model = sm.GEE(y, np.asarray(frame.X, dtype=float), groups=blk.codes, family=_sm_family(fam),
                   cov_struct=cs, offset=off if np.any(off != 0) else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(maxiter=maxiter, cov_type=cov_type)
    not_converged = any("converge" in str(w.message).lower() for w in caught)
    dep = float(np.atleast_1d(model.cov_struct.dep_params)[0]) if cov_struct == "exchangeable" else 0.0
    try:
        qic = tuple(float(v) for v in res.qic(scale=1.0))
    except Exception:  # QIC needs a likelihood; not available for every family and link
        qic = (np.nan, np.nan)
    dropped = dict(frame.dropped_by_column)
    dropped.update(extra_missing)
    result = GeeResult(
        formula=formula, family=fam.name, link=fam.link.name, cov_struct=cov_struct, cov_type=cov_type,
        cluster=blk.group, fixed_names=tuple(frame.fixed_names), beta=np.asarray(res.params, dtype=float),
        vcov_matrix=np.asarray(res.cov_params(), dtype=float),
        naive_vcov=np.asarray(res.cov_naive, dtype=float), working_correlation=dep,
        nobs=int(frame.nobs), n_dropped=int(frame.n_dropped + n_pre), dropped_by_column=dropped,
        n_clusters=int(blk.nlevels), converged=not not_converged, iterations=len(res.fit_history["params"]) - 1,
        qic=qic[0], qicu=qic[1], _frame=frame, _family=fam, _offset=off, _offset_exprs=tuple(offset_exprs))
    if result.n_dropped:
        txt = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        warnings.warn(f"{result.n_dropped} row(s) with missing values in model variables were set aside ({txt}); "
                      f"{result.nobs} rows used.", MissingDataWarning, stacklevel=2)
    if not result.converged:
        warnings.warn(f"The estimating equations of {formula!r} did not converge in {maxiter} iterations; "
                      f"raise `maxiter` or rescale predictors.", ConvergenceWarning, stacklevel=2)
    return result


@dataclass(frozen=True)
class GeeResult(WaldFixedEffects):
    """A fitted GEE model (read-only): marginal effects with robust standard errors.

    ``working_correlation`` is the estimated exchangeable correlation (0 for
    independence); ``nobs``, ``n_dropped`` and ``dropped_by_column`` count the
    rows used and set aside; ``n_clusters`` the clusters.
    """

    formula: str
    family: str
    link: str
    cov_struct: str
    cov_type: str
    cluster: str
    fixed_names: tuple
    beta: np.ndarray = field(repr=False)
    vcov_matrix: np.ndarray = field(repr=False)
    naive_vcov: np.ndarray = field(repr=False)
    working_correlation: float = 0.0
    nobs: int = 0
    n_dropped: int = 0
    dropped_by_column: dict = field(default_factory=dict)
    n_clusters: int = 0
    converged: bool = True
    iterations: int = 0
    qic: float = np.nan
    qicu: float = np.nan
    _frame: object = field(default=None, repr=False)
    _family: object = field(default=None, repr=False)
    _offset: np.ndarray = field(default=None, repr=False)
    _offset_exprs: tuple = field(default=(), repr=False)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals on the link scale (normal quantiles)."""
        if not 0 < level < 1:
            raise ModelSpecificationError(f"`level` is {level!r}; expected a number between 0 and 1.")
        q = stats.norm.ppf(0.5 + level / 2)
        est, se = self.params, self.std_errors
        return pd.DataFrame({"ci_lower": est - q * se, "ci_upper": est + q * se})

    def tidy(self, conf_level: float = 0.95, *, exponentiate: bool = False) -> pd.DataFrame:
        """Marginal effects: term, estimate, std_error, statistic (Wald z), df (inf), p_value, ci_lower, ci_upper.

        ``exponentiate=True`` gives population-averaged odds ratios (logit) or
        rate ratios (log link) with intervals from the exponentiated limits and
        a delta-method ``std_error``.
        """
        return self._wald_table(conf_level, exponentiate)

    def predict(self, newdata: pd.DataFrame | None = None, *, type: str = "response") -> np.ndarray:
        """Population-averaged predictions on the response (default) or link scale."""
        if type not in ("link", "response"):
            raise ModelSpecificationError(f"`type` is {type!r}; expected 'link' or 'response'.")
        if newdata is None:
            eta = self._frame.X @ self.beta + self._offset
        else:
            eta = self._frame.new_fixed_matrix(newdata) @ self.beta + offset_values(
                self._offset_exprs, newdata, self.formula)
        return eta if type == "link" else self._family.link.inverse(eta)

    def glance(self) -> pd.DataFrame:
        """One row: nobs, n_dropped, n_clusters, family, link, cov_struct, cov_type,
        working_correlation, qic, qicu, converged, iterations."""
        return pd.DataFrame([{"nobs": self.nobs, "n_dropped": self.n_dropped, "n_clusters": self.n_clusters,
                              "family": self.family, "link": self.link, "cov_struct": self.cov_struct,
                              "cov_type": self.cov_type, "working_correlation": self.working_correlation,
                              "qic": self.qic, "qicu": self.qicu, "converged": self.converged,
                              "iterations": self.iterations}])

    def summary(self) -> "GeeSummary":
        return GeeSummary(self)

    def __repr__(self) -> str:
        return (f"GeeResult({self.formula!r}, {self.family}/{self.link}, {self.cov_struct}, nobs={self.nobs}, "
                f"clusters={self.n_clusters})")

    def _repr_html_(self) -> str:
        return self.summary().to_html()


class GeeSummary:
    """Text, HTML and LaTeX summary of a :class:`GeeResult`."""

    def __init__(self, model: GeeResult):
        self.model = m = model
        self.header = [
            f"Generalised estimating equations ({m.family}, {m.link} link), {m.cov_struct} working correlation"
            f" ({m.working_correlation:.4f}), {m.cov_type} standard errors",
            f"Formula: {m.formula}",
            f"Observations: {m.nobs} used, {m.n_dropped} set aside; clusters ({m.cluster}): {m.n_clusters}",
            f"QIC {m.qic:.2f}  QICu {m.qicu:.2f}  converged: {'yes' if m.converged else 'NO'}",
        ]
        t = m.tidy().drop(columns=["df"])
        if m.link in ("logit", "log"):
            e = m.tidy(exponentiate=True)
            lab = "odds_ratio" if m.link == "logit" else "rate_ratio"
            t[lab] = e["estimate"]
            t[f"{lab}_lower"] = e["ci_lower"]
            t[f"{lab}_upper"] = e["ci_upper"]
        self.fixed = t

    def __str__(self) -> str:
        return "\n".join(self.header + ["", "Marginal (population-averaged) effects, Wald z:",
                                        self.fixed.to_string(index=False, float_format=lambda v: f"{v:.4g}")])

    __repr__ = __str__

    def to_html(self) -> str:
        head = "".join(f"<p>{html.escape(h)}</p>" for h in self.header)
        return (f"<div class='cimstats-gee'>{head}<h4>Marginal effects</h4>"
                + self.fixed.to_html(index=False, float_format=lambda v: f"{v:.4g}") + "</div>")

    def to_latex(self) -> str:
        notes = "\n".join("% " + h.replace("%", r"\%") for h in self.header)
        return notes + "\n" + self.fixed.to_latex(index=False, float_format="%.4g")
