"""Result object of a generalised linear model fit, with or without a survey design (frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import ModelSpecificationError
from .._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame, not_available
from ...render.spec import TableSpec

__all__ = ["GlmResult"]


@dataclass(frozen=True, eq=False)
class GlmResult(FittedResult):
    """A fitted generalised linear model (read-only); made by :func:`cimstats.glm`.

    ``params``, ``std_errors``, ``pvalues`` and ``conf_int(level)`` are the
    coefficients on the link scale; with a survey design the standard errors
    are design-based (Taylor linearisation) and the tests use t with the
    design's degrees of freedom, as R's ``svyglm``. ``nobs`` and ``dropped``
    count the rows used and set aside for missing values.
    """

    kind = "glm"

    formula: str
    family: str
    link: str
    terms: tuple
    beta: np.ndarray = field(repr=False)
    vcov_matrix: np.ndarray = field(repr=False)
    df: float
    df_residual: float
    dispersion: float
    deviance: float
    null_deviance: float
    loglik: float
    aic: float
    bic: float
    nobs: int
    n_dropped: int
    dropped_by_column: dict = field(repr=False)
    optimizer: OptimizerSummary = field(repr=False)
    design: dict | None = field(default=None, repr=False)
    design_text: str = ""
    n_strata: int = 0
    n_psu: int = 0
    design_df: float = float("nan")
    response: str = ""
    _frame: object = field(default=None, repr=False)
    _frame_rows: object = field(default=None, repr=False)   # rows of the model frame used (None: all)
    _loaded: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ estimates
    @property
    def params(self) -> pd.Series:
        return pd.Series(self.beta, index=list(self.terms), name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov_matrix)), index=list(self.terms), name="std_error")

    @property
    def statistic_name(self) -> str:
        return "z" if np.isinf(self.df) else "t"

    @property
    def pvalues(self) -> pd.Series:
        stat = self.params / self.std_errors
        p = 2 * (stats.norm.sf(np.abs(stat)) if np.isinf(self.df) else stats.t.sf(np.abs(stat), self.df))
        return pd.Series(p, index=list(self.terms), name="p_value")

    def _critical(self, level: float) -> float:
        if not 0 < level < 1:
            raise ModelSpecificationError(f"`level` is {level!r}; expected a number between 0 and 1, such as 0.95.")
        a = 0.5 + level / 2
        return float(stats.norm.ppf(a) if np.isinf(self.df) else stats.t.ppf(a, self.df))

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals on the link scale (t with ``df``, normal when the tests are z)."""
        q = self._critical(level)
        est, se = self.params, self.std_errors
        return pd.DataFrame({"ci_lower": est - q * se, "ci_upper": est + q * se})

    @property
    def is_survey(self) -> bool:
        return self.design is not None

    def tidy(self, *, level: float = 0.95, exponentiate: bool = False) -> pd.DataFrame:
        """One row per coefficient.

        Parameters
        ----------
        level : float
            Confidence level of the intervals.
        exponentiate : bool
            ``True`` gives odds ratios (logit link) or rate ratios (log link):
            estimate and limits exponentiated, ``std_error`` by the delta method.

        Returns
        -------
        pandas.DataFrame
            term, estimate, std_error, statistic (t or z), df (inf for z),
            p_value, ci_lower, ci_upper.
        """
        ci = self.conf_int(level)
        est, se = self.params.to_numpy(), self.std_errors.to_numpy()
        out = pd.DataFrame({"term": pd.Series(list(self.terms), dtype=object), "estimate": est, "std_error": se,
                            "statistic": est / se, "df": np.full(len(est), float(self.df)),
                            "p_value": self.pvalues.to_numpy(), "ci_lower": ci["ci_lower"].to_numpy(),
                            "ci_upper": ci["ci_upper"].to_numpy()})
        if exponentiate:
            if self.link not in ("logit", "log"):
                raise ModelSpecificationError(
                    f"`exponentiate=True` gives odds or rate ratios only for logit and log links; this model uses "
                    f"the {self.link} link, so report the estimates as they are.")
            out["estimate"] = np.exp(est)
            out["std_error"] = np.exp(est) * se
            out["ci_lower"] = np.exp(out["ci_lower"])
            out["ci_upper"] = np.exp(out["ci_upper"])
        return out

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the coefficients (design-based with a survey design)."""
        names = list(self.terms)
        return pd.DataFrame(np.array(self.vcov_matrix, dtype=float), index=names, columns=names)

    @property
    def dropped(self) -> pd.DataFrame:
        return dropped_frame(self.dropped_by_column)

    def glance(self) -> pd.DataFrame:
        """One row: nobs, n_dropped, family, link, df_residual, deviance, null_deviance, dispersion,
        loglik, aic, bic (NaN with a survey design or a quasi family), design_df, n_strata, n_psu,
        converged, iterations."""
        row = {"nobs": int(self.nobs), "n_dropped": int(self.n_dropped), "family": self.family, "link": self.link,
               "df_residual": float(self.df_residual), "deviance": float(self.deviance),
               "null_deviance": float(self.null_deviance), "dispersion": float(self.dispersion),
               "loglik": float(self.loglik), "aic": float(self.aic), "bic": float(self.bic),
               "design_df": float(self.design_df), "n_strata": int(self.n_strata), "n_psu": int(self.n_psu),
               "converged": bool(self.optimizer.converged), "iterations": int(self.optimizer.iterations)}
        return pd.DataFrame([row])

    # ------------------------------------------------------------------ tables
    def to_table_spec(self, *, level: float = 0.95, exponentiate: bool = False, title: str | None = None,
                      **kw) -> TableSpec:
        """The coefficients as one publication table (estimate, SE, statistic, p, interval)."""
        t = self.tidy(level=level, exponentiate=exponentiate).drop(columns=["df"])
        pct = f"{100 * level:g}%"
        what = ("Odds ratio" if self.link == "logit" else "Rate ratio") if exponentiate else "Estimate"
        labels = {"term": "Term", "estimate": what, "std_error": "SE", "statistic": self.statistic_name,
                  "p_value": "p", "ci_lower": f"{pct} CI lower", "ci_upper": f"{pct} CI upper"}
        notes = [self._method_note()]
        return TableSpec.from_frame(t, title=title or f"Generalised linear model of {self.response}",
                                    kinds={"p_value": "p_value", "estimate": "estimate"}, header_labels=labels,
                                    notes=tuple(notes), **kw)

    def _method_note(self) -> str:
        if self.is_survey:
            return (f"Design-based standard errors (Taylor linearisation; {self.design_text}); t tests with "
                    f"{self.df:g} degrees of freedom.")
        if np.isinf(self.df):
            return "Model-based standard errors; Wald z tests."
        return f"Model-based standard errors (dispersion {self.dispersion:.4g}); t tests with {self.df:g} degrees of freedom."

    def summary(self) -> ResultSummary:
        """Header (formula, rows, design, deviance) and the coefficient table."""
        fam = f"{self.family}, {self.link} link"
        title = (f"Survey-weighted generalised linear model ({fam})" if self.is_survey
                 else f"Generalised linear model ({fam}), fitted by IRLS")
        lines = [f"Formula: {self.formula}",
                 f"Observations: {self.nobs} used, {self.n_dropped} set aside for missing values"]
        if self.is_survey:
            lines.append(f"Design: {self.design_text}; {self.n_strata} strata, {self.n_psu} PSUs, "
                         f"design df {self.design_df:g}")
        dev = f"Deviance {self.deviance:.4f} on {self.df_residual:g} residual df (null {self.null_deviance:.4f})"
        if np.isfinite(self.aic):
            dev += f"  AIC {self.aic:.2f}"
        lines.append(dev)
        notes = [f"IRLS: {'converged' if self.optimizer.converged else 'NOT converged'} in "
                 f"{self.optimizer.iterations} iterations (max |score| {self.optimizer.gradient_norm:.2g})."]
        return ResultSummary(title=title, lines=tuple(lines), tables=(self.to_table_spec(),), notes=tuple(notes))

    def __repr__(self) -> str:
        return str(self.summary())

    # ------------------------------------------------------------------ predictions
    def predict(self, newdata: pd.DataFrame | None = None, *, type: str = "response") -> np.ndarray:
        """Predictions on the response scale (``type="response"``) or the link scale (``"link"``).

        Needs the data the model was fitted to (not available on a loaded result).
        """
        if self._frame is None:
            raise not_available("predict()", "glm")
        if type not in ("response", "link"):
            raise ModelSpecificationError(f"`type` is {type!r}; expected 'response' or 'link'.")
        if newdata is None:
            X = self._frame.X if self._frame_rows is None else self._frame.X[self._frame_rows]
        else:
            X = self._frame.new_fixed_matrix(newdata)
        eta = X @ self.beta
        if type == "link":
            return eta
        if self.link == "logit":
            return 1.0 / (1.0 + np.exp(-eta))
        if self.link == "log":
            return np.exp(eta)
        return eta

    # ------------------------------------------------------------------ saving
    _FIELDS = ("formula", "family", "link", "terms", "beta", "vcov_matrix", "df", "df_residual", "dispersion",
               "deviance", "null_deviance", "loglik", "aic", "bic", "nobs", "n_dropped", "dropped_by_column",
               "design", "design_text", "n_strata", "n_psu", "design_df", "response")

    def _state(self) -> dict:
        state = {k: getattr(self, k) for k in self._FIELDS}
        state["terms"] = list(self.terms)
        state["optimizer"] = self.optimizer.to_dict()
        return state

    @classmethod
    def _from_state(cls, state: dict) -> "GlmResult":
        kw = {k: state[k] for k in cls._FIELDS}
        kw["terms"] = tuple(kw["terms"])
        kw["beta"] = np.asarray(kw["beta"], dtype=float)
        kw["vcov_matrix"] = np.asarray(kw["vcov_matrix"], dtype=float).reshape(len(kw["terms"]), len(kw["terms"]))
        kw["dropped_by_column"] = dict(kw["dropped_by_column"] or {})
        for k in ("df", "df_residual", "dispersion", "deviance", "null_deviance", "loglik", "aic", "bic",
                  "design_df"):
            kw[k] = float(kw[k])
        for k in ("nobs", "n_dropped", "n_strata", "n_psu"):
            kw[k] = int(kw[k])
        return cls(**kw, optimizer=OptimizerSummary.from_dict(state["optimizer"]), _frame=None, _loaded=True)
