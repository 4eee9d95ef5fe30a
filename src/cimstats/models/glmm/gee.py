"""The ``gee`` verb: population-averaged (marginal) models by generalised estimating equations.

The formula goes through the same front end as ``glmm`` (factors, interactions,
``offset()``); the cluster is named by one ``(1 | cluster)`` term or by
``groups=``. Estimation is statsmodels' ``GEE``; this module only adapts the
design and turns the fit into a frozen :class:`GeeResult`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from ...errors import ConvergenceWarning, MissingDataWarning, ModelSpecificationError
from .._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame, not_available
from .._wald import (WaldFixedEffects, exponentiate_table, publication_table, ratio_label, ratio_summary_columns,
                     resolve_level, summary_table)
from ..formula import RandomTerm, parse_formula
from ..mixed.fit import _as_frame, _check_rank
from .family import make_family
from .fit import _check_response, _prepare, offset_values

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
        qic=qic[0], qicu=qic[1], score_norm=float(getattr(res, "score_norm", np.nan)),
        _frame=frame, _family=fam, _offset=off, _offset_exprs=tuple(offset_exprs))
    if result.n_dropped:
        txt = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        warnings.warn(f"{result.n_dropped} row(s) with missing values in model variables were set aside ({txt}); "
                      f"{result.nobs} rows used.", MissingDataWarning, stacklevel=2)
    if not result.converged:
        warnings.warn(f"The estimating equations of {formula!r} did not converge in {maxiter} iterations; "
                      f"raise `maxiter` or rescale predictors.", ConvergenceWarning, stacklevel=2)
    return result


@dataclass(frozen=True)
class GeeResult(WaldFixedEffects, FittedResult):
    """A fitted GEE model (read-only): marginal effects with robust standard errors.

    ``working_correlation`` is the estimated exchangeable correlation (0 for
    independence); ``nobs``, ``n_dropped`` and ``dropped`` (also
    ``dropped_by_column``) count the rows used and set aside; ``n_clusters``
    the clusters. A result read back with :func:`cimstats.load_result`
    answers everything but ``predict``, which needs the data and says so.
    """

    kind: ClassVar[str] = "gee"

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
    score_norm: float = np.nan
    _frame: object = field(default=None, repr=False)     # the data; None on a loaded result
    _family: object = field(default=None, repr=False)
    _offset: np.ndarray = field(default=None, repr=False)
    _offset_exprs: tuple = field(default=(), repr=False)

    def _wald_parts(self):
        return self.fixed_names, self.beta, self.vcov_matrix

    def tidy(self, *args, level: float = 0.95, exponentiate: bool = False, conf_level=None) -> pd.DataFrame:
        """Marginal effects: term, estimate, std_error, statistic (Wald z), df (inf), p_value, ci_lower, ci_upper.

        Parameters
        ----------
        level : float, keyword only
            Coverage of the Wald intervals (default 0.95). The older
            ``tidy(0.9)`` and ``tidy(conf_level=0.9)`` still work for one
            release, with a ``DeprecationWarning``.
        exponentiate : bool
            ``True`` gives population-averaged odds ratios (logit) or rate
            ratios (log link) with intervals from the exponentiated limits and
            a delta-method ``std_error``.
        """
        t = self._wald(resolve_level(args, level, conf_level, "GeeResult"))
        return exponentiate_table(t, self.link) if exponentiate else t

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows set aside for missing values: one row per variable (``variable``, ``n_missing``)."""
        return dropped_frame(self.dropped_by_column)

    @property
    def optimizer(self) -> OptimizerSummary:
        """How the estimating equations were solved (iterations, final norm of the estimating function)."""
        return OptimizerSummary(
            method="GEE: iteratively reweighted estimating equations (statsmodels)", start=(),
            final=tuple(float(b) for b in self.beta), iterations=int(self.iterations),
            evaluations=int(self.iterations), gradient_norm=float(self.score_norm), converged=bool(self.converged),
            message="converged" if self.converged else f"not converged after {self.iterations} iterations")

    def predict(self, newdata: pd.DataFrame | None = None, *, type: str = "response") -> np.ndarray:
        """Population-averaged predictions on the response (default) or link scale."""
        if self._frame is None:
            raise not_available("predict()", "GEE")
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

    def summary(self) -> ResultSummary:
        """The printable summary: header and the marginal effects (with odds or rate ratios).

        Returns
        -------
        ResultSummary
            ``str()`` gives text; ``to_html()``, ``to_latex()`` and
            ``to_markdown()`` the other formats.
        """
        title = (f"Generalised estimating equations ({self.family}, {self.link} link), {self.cov_struct} working "
                 f"correlation ({self.working_correlation:.4f}), {self.cov_type} standard errors")
        lines = [f"Formula: {self.formula}",
                 f"Observations: {self.nobs} used, {self.n_dropped} set aside"
                 + (f" ({', '.join(f'{k}: {v}' for k, v in self.dropped_by_column.items())} missing)"
                    if self.n_dropped and self.dropped_by_column else "")
                 + f"; clusters ({self.cluster}): {self.n_clusters}",
                 f"QIC {self.qic:.2f}  QICu {self.qicu:.2f}  converged: {'yes' if self.converged else 'NO'}"]
        fixed = summary_table("Marginal (population-averaged) effects, Wald z",
                              *ratio_summary_columns(self.tidy(), self.link))
        notes = [f"Estimating equations: {'converged' if self.converged else 'NOT converged'} after "
                 f"{self.iterations} iterations, final norm of the estimating function {self.score_norm:.2g}."]
        return ResultSummary(title=title, lines=tuple(lines), tables=(fixed,), notes=tuple(notes))

    def to_table_spec(self, *, level: float = 0.95, title: str | None = None, number=None,
                      number_format=None):
        """The marginal effects (with odds or rate ratios) as one publication table.

        Columns: Term, Estimate on the link scale, SE, CI, the odds or rate
        ratio with its CI (logit and log links), p. Render it with
        :func:`cimstats.render.render`.

        Parameters
        ----------
        level : float
            Coverage of the intervals.
        title : str, optional
        number : str or int, optional
            Table number in the caption.
        number_format : cimstats.render.NumberFormat, optional
            How numbers are written (default two decimals).
        """
        t = self._wald(level)
        ratio = ratio_label(self.link)
        se = {"robust": "robust (sandwich)", "naive": "model-based", "bias_reduced": "bias-reduced sandwich"}
        notes = [f"Population-averaged estimates by generalised estimating equations on the {self.link} scale"
                 + (f" and as {ratio}s" if ratio else "") + f"; {se.get(self.cov_type, self.cov_type)} standard "
                 f"errors, Wald z-tests and intervals; {self.cov_struct} working correlation "
                 f"({self.working_correlation:.3f}).",
                 f"n = {self.nobs} observations in {self.n_clusters} clusters ({self.cluster})"
                 + (f"; {self.n_dropped} set aside for missing values ("
                    + ", ".join(f"{k}: {v}" for k, v in self.dropped_by_column.items()) + ")"
                    if self.n_dropped else "") + "."]
        response = self.formula.split("~", 1)[0].strip()
        return publication_table(t, level=level, ratios=exponentiate_table(t, self.link) if ratio else None,
                                 ratio_name=ratio, title=title or f"Marginal model (GEE) of {response}",
                                 notes=notes, number=number, number_format=number_format)

    def __repr__(self) -> str:
        return (f"GeeResult({self.formula!r}, {self.family}/{self.link}, {self.cov_struct}, nobs={self.nobs}, "
                f"clusters={self.n_clusters})")

    # ---- saving ---------------------------------------------------------------------
    def _state(self) -> dict:
        return {"formula": self.formula, "family": self.family, "link": self.link, "cov_struct": self.cov_struct,
                "cov_type": self.cov_type, "cluster": self.cluster, "fixed_names": list(self.fixed_names),
                "beta": np.asarray(self.beta, dtype=float), "vcov": np.asarray(self.vcov_matrix, dtype=float),
                "naive_vcov": np.asarray(self.naive_vcov, dtype=float),
                "working_correlation": float(self.working_correlation), "nobs": int(self.nobs),
                "n_dropped": int(self.n_dropped), "dropped_by_column": dict(self.dropped_by_column),
                "n_clusters": int(self.n_clusters), "converged": bool(self.converged),
                "iterations": int(self.iterations), "qic": float(self.qic), "qicu": float(self.qicu),
                "score_norm": float(self.score_norm)}

    @classmethod
    def _from_state(cls, state: dict) -> "GeeResult":
        return cls(formula=state["formula"], family=state["family"], link=state["link"],
                   cov_struct=state["cov_struct"], cov_type=state["cov_type"], cluster=state["cluster"],
                   fixed_names=tuple(state["fixed_names"]), beta=np.asarray(state["beta"], dtype=float),
                   vcov_matrix=np.asarray(state["vcov"], dtype=float),
                   naive_vcov=np.asarray(state["naive_vcov"], dtype=float),
                   working_correlation=float(state["working_correlation"]), nobs=int(state["nobs"]),
                   n_dropped=int(state["n_dropped"]), dropped_by_column=dict(state["dropped_by_column"]),
                   n_clusters=int(state["n_clusters"]), converged=bool(state["converged"]),
                   iterations=int(state["iterations"]), qic=float(state["qic"]), qicu=float(state["qicu"]),
                   score_norm=float(state["score_norm"]), _frame=None,
                   _family=make_family(state["family"], state["link"]))
