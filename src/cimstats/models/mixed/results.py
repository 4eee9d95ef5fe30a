"""Result object of a linear mixed-model fit (frozen): the result contract, saving and loading."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import ModelSpecificationError
from .._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame, not_available
from .._wald import (WaldFixedEffects, fit_notes, dropped_phrase, publication_table, random_rows, resolve_level,
                     summary_table)
from ._threads import _blas_single_thread
from .core import theta_layout
from .simulate import sdcor_vector
from .inference import bootstrap_varcomp, contest_f, profile_varcomp, satterthwaite

__all__ = ["LmmResult"]


@dataclass(frozen=True)
class LmmResult(WaldFixedEffects, FittedResult):
    """A fitted linear mixed model.

    Attributes
    ----------
    formula : str
    reml : bool
    nobs, n_dropped : int
        Rows used and rows set aside for missing values; ``dropped`` (and the
        older ``dropped_by_column``) gives the count per variable.
    theta : ndarray
        Relative covariance factor (lme4's ``getME(m, "theta")``).
    sigma : float
        Residual standard deviation.
    criterion : float
        REML criterion (REML fits) or deviance (ML fits) at the optimum.
    optimizer : OptimizerSummary

    A result read back with :func:`cimstats.load_result` answers everything
    but what needs the data (``predict``, ``fitted``, ``residuals``,
    ``term_tests``, ``varcomp_ci``), which says so.
    """

    kind: ClassVar[str] = "lmm"

    formula: str
    reml: bool
    nobs: int
    n_dropped: int
    dropped_by_column: dict
    theta: np.ndarray
    sigma: float
    criterion: float
    optimizer: OptimizerSummary
    df_method: str
    fixed_names: tuple
    _beta: np.ndarray
    _vcov: np.ndarray
    _bs: tuple
    _groups: tuple        # (grouping label as lme4 prints it, term names, number of levels, k) per block
    _frame: object        # the data; None on a loaded result
    _blocks: tuple
    _core: object
    _ev: dict

    # ------------------------------------------------------------------ build
    @classmethod
    def _from_fit(cls, *, frame, blocks, core, theta, beta, bs, ev, reml, opt, df_method, nre):
        n, p = frame.X.shape
        s2 = ev["pwrss"] / (n - p if reml else n)
        sigma = float(np.sqrt(s2))
        vcov = s2 * np.linalg.inv(ev["RXtRX"])
        return cls(formula=frame.spec.text, reml=reml, nobs=n, n_dropped=frame.n_dropped,
                   dropped_by_column=dict(frame.dropped_by_column), theta=np.array(theta), sigma=sigma,
                   criterion=float(ev["deviance"]), optimizer=opt, df_method=df_method,
                   fixed_names=tuple(frame.fixed_names), _beta=np.array(beta), _vcov=vcov,
                   _bs=tuple(bs), _groups=tuple((b.group, tuple(b.term_names), int(b.nlevels), int(b.k))
                                                for b in blocks),
                   _frame=frame, _blocks=tuple(blocks), _core=core,
                   _ev={k: ev[k] for k in ("ldL2", "ldRX2", "pwrss")})

    @property
    def _loaded(self) -> bool:
        return self._core is None

    def _need_data(self, what: str) -> None:
        if self._loaded:
            raise not_available(what, "linear mixed model")

    # ------------------------------------------------------------ basic stats
    @property
    def npar(self) -> int:
        """Number of estimated parameters (fixed effects, theta, residual sd)."""
        return len(self._beta) + len(self.theta) + 1

    @property
    def loglik(self) -> float:
        """Log-likelihood (REML log-likelihood for REML fits, as R's logLik)."""
        return -self.criterion / 2.0

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.npar

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the REML criterion for REML fits)."""
        return self.criterion

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows set aside for missing values: one row per variable (``variable``, ``n_missing``)."""
        return dropped_frame(self.dropped_by_column)

    def _wald_parts(self):
        return self.fixed_names, self._beta, self._vcov

    def _wald_df(self):
        return self.df.to_numpy()

    @cached_property
    def df(self) -> pd.Series:
        """Denominator degrees of freedom of each fixed effect's t-test."""
        if self.df_method == "asymptotic":
            return pd.Series(np.inf, index=list(self.fixed_names), name="df")
        with _blas_single_thread():
            d, _, _ = satterthwaite(self._core, self.theta, self.sigma, self.reml, np.eye(len(self._beta)))
        return pd.Series(d, index=list(self.fixed_names), name="df")

    def tidy(self, *args, level: float = 0.95, conf_level=None) -> pd.DataFrame:
        """Fixed effects, one row per coefficient.

        Parameters
        ----------
        level : float, keyword only
            Coverage of the confidence intervals (default 0.95). The older
            ``tidy(0.9)`` and ``tidy(conf_level=0.9)`` still work for one
            release, with a ``DeprecationWarning``.

        Returns
        -------
        pandas.DataFrame
            term, estimate, std_error, statistic (t), df (Satterthwaite or inf),
            p_value, ci_lower, ci_upper (t quantiles with the term's df).
        """
        return self._wald(resolve_level(args, level, conf_level, "LmmResult"))

    @property
    def ngroups(self) -> dict:
        """Number of levels per grouping factor (lme4's ``ngrps``)."""
        out = {}
        for g in self._groups:
            out.setdefault(g[0], g[2])
        return out

    def glance(self) -> pd.DataFrame:
        """One row of fit statistics.

        Columns: nobs, n_dropped, ngroups_<factor> (one per grouping factor,
        ':' written as '_'), sigma, loglik, aic, bic, deviance (ML fits) or
        reml_criterion (REML fits), method, converged, singular, iterations,
        gradient_norm.
        """
        row = {"nobs": self.nobs, "n_dropped": self.n_dropped}
        for g, k in self.ngroups.items():
            row["ngroups_" + g.replace(":", "_")] = k
        row.update({"sigma": self.sigma, "loglik": self.loglik, "aic": self.aic, "bic": self.bic,
                    ("reml_criterion" if self.reml else "deviance"): self.criterion,
                    "method": "REML" if self.reml else "ML", "converged": self.optimizer.converged,
                    "singular": self.singular, "iterations": self.optimizer.iterations,
                    "gradient_norm": self.optimizer.gradient_norm})
        return pd.DataFrame([row])

    # ---------------------------------------------------------- random part
    def _group_labels(self) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for g in self._groups:
            k = seen.get(g[0], 0)
            out.append(g[0] if k == 0 else f"{g[0]}.{k}")
            seen[g[0]] = k + 1
        return out

    def _T_blocks(self, theta) -> list[np.ndarray]:
        """Relative covariance factor (k x k, lower triangular) per random-effect term."""
        out, i = [], 0
        for g in self._groups:
            r, c = theta_layout(g[3])
            T = np.zeros((g[3], g[3]))
            T[r, c] = theta[i: i + len(r)]
            out.append(T)
            i += len(r)
        return out

    def _covs(self, theta=None, sigma=None):
        theta = self.theta if theta is None else theta
        sigma = self.sigma if sigma is None else sigma
        return [sigma ** 2 * (T @ T.T) for T in self._T_blocks(theta)]

    def _sdcor_vector(self, theta, sigma) -> np.ndarray:
        return np.array(sdcor_vector(self._T_blocks(theta), sigma))

    def varcorr(self) -> pd.DataFrame:
        """Variances, covariances and correlations of the random effects.

        Returns
        -------
        pandas.DataFrame
            group, term1, term2 (empty for variances), vcov (variance or
            covariance), sdcor (standard deviation or correlation); the last
            row is the residual. Same layout as R's ``as.data.frame(VarCorr(m))``.
        """
        rows = []
        for label, g, S in zip(self._group_labels(), self._groups, self._covs()):
            names = g[1]
            sd = np.sqrt(np.diag(S))
            for i, t in enumerate(names):
                rows.append((label, t, "", S[i, i], sd[i]))
            k = len(sd)
            for j in range(k):
                for i in range(j + 1, k):
                    cor = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                    rows.append((label, names[j], names[i], S[i, j], cor))
        rows.append(("Residual", "", "", self.sigma ** 2, self.sigma))
        return pd.DataFrame(rows, columns=["group", "term1", "term2", "vcov", "sdcor"])

    @property
    def singular(self) -> bool:
        return bool(self.singular_detail)

    @cached_property
    def singular_detail(self) -> str:
        """Which components sit on the boundary (empty when none)."""
        parts = []
        for label, g, T in zip(self._group_labels(), self._groups, self._T_blocks(self.theta)):
            names, k = g[1], g[3]
            for i, t in enumerate(names):
                if T[i, i] >= 1e-4:
                    continue
                if i > 0 and np.any(np.abs(T[i, :i]) >= 1e-4):  # the term's effect is not zero: it is
                    # (nearly) a linear combination of the terms before it
                    if k == 2:
                        parts.append(f"the correlation of {names[0]} and {t} for {label!r} is "
                                     f"estimated as (nearly) {'+' if T[1, 0] > 0 else '-'}1")
                    else:
                        parts.append(f"the random effect of {t} for {label!r} is (nearly) a linear combination "
                                     f"of those of {', '.join(names[:i])} (singular covariance matrix)")
                else:
                    parts.append(f"the variance of {t} for {label!r} is estimated as (nearly) zero")
        return "; ".join(parts)

    @cached_property
    def _condvar(self) -> list[np.ndarray]:
        # a loaded result holds these arrays (saved with the result)
        with _blas_single_thread():
            fac, _, Ts = self._core.factor(self.theta)
            blocks = fac.inv_diag_blocks()
        return [self.sigma ** 2 * np.matmul(np.matmul(T[None], B), T.T[None]) for T, B in zip(Ts, blocks)]

    @cached_property
    def _levels(self) -> tuple:
        # level labels per block (a loaded result holds them)
        return tuple(tuple(b.levels) for b in self._blocks)

    def ranef(self, condvar: bool = True) -> pd.DataFrame:
        """Conditional modes of the random effects (BLUPs) with their conditional SDs.

        Returns
        -------
        pandas.DataFrame
            group, term, level, condval, condsd (as R's
            ``as.data.frame(ranef(m, condVar = TRUE))``).
        """
        frames = []
        cv = self._condvar if condvar else [None] * len(self._groups)
        for g, levels, u, V in zip(self._groups, self._levels, self._bs, cv):
            for i, t in enumerate(g[1]):
                frames.append(pd.DataFrame({
                    "group": g[0], "term": t, "level": list(levels), "condval": u[:, i],
                    "condsd": np.sqrt(V[:, i, i]) if V is not None else np.nan}))
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------ prediction
    def _random_part(self, Zcodes) -> np.ndarray:
        total = 0.0
        for (Z, codes), u in zip(Zcodes, self._bs):
            ok = codes >= 0
            contrib = np.zeros(len(codes))
            contrib[ok] = np.einsum("ij,ij->i", Z[ok], u[codes[ok]])
            total = total + contrib
        return total

    def fitted(self) -> np.ndarray:
        """Fitted values including the random effects, for the rows used."""
        self._need_data("fitted()")
        return self._frame.X @ self._beta + self._random_part([(b.Z, b.codes) for b in self._blocks])

    def residuals(self) -> np.ndarray:
        """Observed minus fitted values, for the rows used."""
        self._need_data("residuals()")
        return self._frame.y - self.fitted()

    def predict(self, newdata: pd.DataFrame | None = None, *, include_random: bool = True) -> np.ndarray:
        """Predictions on the response scale.

        Parameters
        ----------
        newdata : DataFrame, optional
            Defaults to the rows used in the fit. Groups not seen in the fit get
            a random effect of zero (population-level prediction).
        include_random : bool
            ``False`` gives the fixed-effects-only prediction (R's ``re.form = NA``).
        """
        self._need_data("predict()")
        if newdata is None:
            fixed = self._frame.X @ self._beta
            return fixed + self._random_part([(b.Z, b.codes) for b in self._blocks]) if include_random else fixed
        X = self._frame.new_fixed_matrix(newdata)
        fixed = X @ self._beta
        if not include_random:
            return fixed
        order = [next(i for i, r in enumerate(self._frame.random) if r is b) for b in self._blocks]
        zc = self._frame.new_random_blocks(newdata)
        return fixed + np.nan_to_num(self._random_part([zc[i] for i in order]))

    @cached_property
    def _icc(self) -> pd.DataFrame:
        # a loaded result holds this table (nesting is read from the data's level codes)
        comps = []
        for b, S in zip(self._blocks, self._covs()):
            if "(Intercept)" in b.term_names:
                i = b.term_names.index("(Intercept)")
                comps.append((b, S[i, i]))
        total = sum(v for _, v in comps) + self.sigma ** 2
        rows = []
        for b, v in comps:
            nested_in = [v2 for b2, v2 in comps if b2 is not b and _is_nested(b.codes, b2.codes)]
            rows.append({"group": b.group, "variance": v, "vpc": v / total,
                         "icc": (v + sum(nested_in)) / total})
        rows.append({"group": "Residual", "variance": self.sigma ** 2, "vpc": self.sigma ** 2 / total,
                     "icc": np.nan})
        return pd.DataFrame(rows)

    def icc(self) -> pd.DataFrame:
        """Variance partition and intraclass correlations of random intercepts.

        Returns
        -------
        pandas.DataFrame
            group, variance, vpc (share of the total variance at this level),
            icc (correlation between two observations sharing this group and
            every group it is nested in). Random slopes are evaluated at x = 0
            (their variance is not included).
        """
        return self._icc.copy()

    # ------------------------------------------------------------- inference
    def term_tests(self) -> pd.DataFrame:
        """Joint F-test of each fixed-effect term (all its columns at once).

        A factor with several categories is tested as a whole (does ``tie_type``
        matter?). Denominator df by Satterthwaite's method as lmerTest's
        ``contest(m, L, joint = TRUE)``; for terms not contained in an
        interaction this equals lmerTest's type III ``anova(m)``.

        Returns
        -------
        pandas.DataFrame
            term, statistic (F), numdf, df (denominator), p_value.
        """
        self._need_data("term_tests()")
        terms: dict[str, list[int]] = {}
        for j, (name, recipe) in enumerate(self._frame._columns):
            if not recipe:
                continue  # intercept
            terms.setdefault(":".join(v for v, _ in recipe), []).append(j)
        p = len(self._beta)
        rows = []
        with _blas_single_thread():
            _, A, J = satterthwaite(self._core, self.theta, self.sigma, self.reml, np.eye(p))
            for term, cols in terms.items():
                L = np.eye(p)[cols]
                if self.df_method == "asymptotic":
                    b = L @ self._beta
                    F = float(b @ np.linalg.solve(L @ self._vcov @ L.T, b) / len(cols))
                    rows.append((term, F, len(cols), np.inf, float(stats.chi2.sf(F * len(cols), len(cols)))))
                else:
                    F, q, ddf, pv = contest_f(self._core, self.theta, self.sigma, self.reml, self._beta, L,
                                              _cache=(A, J))
                    rows.append((term, F, q, ddf, pv))
        return pd.DataFrame(rows, columns=["term", "statistic", "numdf", "df", "p_value"])

    def varcomp_ci(self, *, method: str = "profile", level: float = 0.95, nsim: int = 500,
                   seed=None, client=None, checkpoint=None, progress=None) -> pd.DataFrame:
        """Confidence intervals for the standard deviations (and correlations) of the random effects.

        Parameters
        ----------
        method : {"profile", "bootstrap"}
            Profile likelihood (as lme4's ``confint(m, method = "profile")``;
            scalar random-effect terms) or parametric bootstrap (percentile
            intervals from ``nsim`` simulated refits; any model).
        level : float
        nsim, seed : bootstrap settings.
        client, checkpoint, progress : where and how the bootstrap refits run
            (see :mod:`cimstats._parallel`); they never change the intervals.

        Returns
        -------
        pandas.DataFrame
            group, term1, term2, estimate, ci_lower, ci_upper, method.
        """
        self._need_data("varcomp_ci()")
        if method == "profile":
            return profile_varcomp(self, level=level)
        if method == "bootstrap":
            return bootstrap_varcomp(self, nsim=nsim, level=level, seed=seed, client=client, checkpoint=checkpoint,
                                     progress=progress)
        raise ModelSpecificationError(f"`method` is {method!r}; expected 'profile' or 'bootstrap'.")

    # ---------------------------------------------------------------- output
    def summary(self) -> ResultSummary:
        """The printable summary: header, random effects, fixed effects, optimiser.

        Returns
        -------
        ResultSummary
            ``str()`` gives text; ``to_html()``, ``to_latex()`` and
            ``to_markdown()`` the other formats.
        """
        satt = self.df_method == "satterthwaite"
        title = (f"Linear mixed model fit by {'REML' if self.reml else 'maximum likelihood'}"
                 f" ({'Satterthwaite t-tests' if satt else 'asymptotic z-tests'})")
        lines = [f"Formula: {self.formula}",
                 f"{'REML criterion' if self.reml else 'Deviance'}: {self.criterion:.4f}   logLik: "
                 f"{self.loglik:.4f}   AIC: {self.aic:.4f}   BIC: {self.bic:.4f}",
                 dropped_phrase(self.nobs, self.n_dropped, self.dropped_by_column),
                 "Groups: " + ", ".join(f"{g} {k}" for g, k in self.ngroups.items())]
        random = summary_table("Random effects", self.varcorr(), [
            ("group", "Group", "text"), ("term1", "Term 1", "text"), ("term2", "Term 2", "text"),
            ("vcov", "Variance/Cov", "number"), ("sdcor", "SD/Corr", "number")])
        pct = "95%"
        cols = [("term", "Term", "text"), ("estimate", "Estimate", "number"), ("std_error", "Std. Error", "number")]
        if satt:
            cols += [("statistic", "t value", "number"), ("df", "df", "df"), ("p_value", "Pr(>|t|)", "p_value")]
        else:
            cols += [("statistic", "z value", "number"), ("p_value", "Pr(>|z|)", "p_value")]
        cols += [("ci_lower", f"{pct} CI lower", "number"), ("ci_upper", f"{pct} CI upper", "number")]
        fixed = summary_table("Fixed effects", self.tidy(), cols)
        notes = fit_notes(self.optimizer, self.singular, self.singular_detail)
        return ResultSummary(title=title, lines=tuple(lines), tables=(random, fixed), notes=notes)

    def to_table_spec(self, *, level: float = 0.95, title: str | None = None, number=None,
                      number_format=None):
        """The fixed effects and variance components as one publication table.

        Two row groups: "Fixed effects" (Term, Estimate, SE, CI, df, p) and the
        random effects' standard deviations and correlations. Render it with
        :func:`cimstats.render.render` (Word, Excel, HTML, LaTeX, Markdown, text).

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
        satt = self.df_method == "satterthwaite"
        response = self.formula.split("~", 1)[0].strip()
        notes = [f"{'REML' if self.reml else 'Maximum-likelihood'} estimates; "
                 + ("t-tests with Satterthwaite degrees of freedom." if satt else "Wald z-tests."),
                 f"n = {self.nobs} observations; groups: "
                 + ", ".join(f"{g} {k}" for g, k in self.ngroups.items())
                 + (f"; {self.n_dropped} set aside for missing values ("
                    + ", ".join(f"{k}: {v}" for k, v in self.dropped_by_column.items()) + ")"
                    if self.n_dropped else "") + "."]
        if self.singular:
            notes.append(f"Singular fit: {self.singular_detail}.")
        return publication_table(self._wald(level), level=level, show_df=satt,
                                 title=title or f"Linear mixed model of {response}",
                                 random=random_rows(self.varcorr()), notes=notes, number=number,
                                 number_format=number_format)

    def __repr__(self) -> str:
        return (f"LmmResult({self.formula!r}, {'REML' if self.reml else 'ML'}, nobs={self.nobs}, "
                f"n_dropped={self.n_dropped}, loglik={self.loglik:.4f})")

    # ------------------------------------------------------------- saving
    def _state(self) -> dict:
        return {"formula": self.formula, "reml": bool(self.reml), "nobs": int(self.nobs),
                "n_dropped": int(self.n_dropped), "dropped_by_column": dict(self.dropped_by_column),
                "theta": np.asarray(self.theta, dtype=float), "sigma": float(self.sigma),
                "criterion": float(self.criterion), "optimizer": self.optimizer.to_dict(),
                "df_method": self.df_method, "fixed_names": list(self.fixed_names),
                "beta": np.asarray(self._beta, dtype=float), "vcov": np.asarray(self._vcov, dtype=float),
                "df": self.df.to_numpy(dtype=float),
                "groups": [[g[0], list(g[1]), g[2], g[3]] for g in self._groups],
                "levels": [list(v) for v in self._levels],
                "modes": [np.asarray(u, dtype=float) for u in self._bs],
                "condvar": [np.asarray(v, dtype=float) for v in self._condvar],
                "singular_detail": self.singular_detail, "icc": self._icc}

    @classmethod
    def _from_state(cls, state: dict) -> "LmmResult":
        groups = tuple((str(g[0]), tuple(str(t) for t in g[1]), int(g[2]), int(g[3])) for g in state["groups"])
        obj = cls(formula=state["formula"], reml=bool(state["reml"]), nobs=int(state["nobs"]),
                  n_dropped=int(state["n_dropped"]), dropped_by_column=dict(state["dropped_by_column"]),
                  theta=np.asarray(state["theta"], dtype=float), sigma=float(state["sigma"]),
                  criterion=float(state["criterion"]), optimizer=OptimizerSummary.from_dict(state["optimizer"]),
                  df_method=state["df_method"], fixed_names=tuple(state["fixed_names"]),
                  _beta=np.asarray(state["beta"], dtype=float), _vcov=np.asarray(state["vcov"], dtype=float),
                  _bs=tuple(_matrix(u, g[2], g[3]) for u, g in zip(state["modes"], groups)), _groups=groups,
                  _frame=None, _blocks=None, _core=None, _ev=None)
        cached = obj.__dict__  # the values a fitted result computes from its data, as saved
        cached["df"] = pd.Series(np.asarray(state["df"], dtype=float), index=list(obj.fixed_names), name="df")
        cached["_levels"] = tuple(tuple(v) for v in state["levels"])
        cached["_condvar"] = [np.asarray(v, dtype=float).reshape(g[2], g[3], g[3])
                              for v, g in zip(state["condvar"], groups)]
        cached["singular_detail"] = str(state["singular_detail"])
        cached["_icc"] = state["icc"]
        return obj


def _matrix(values, rows: int, cols: int) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(rows, cols)


def _is_nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """True when each level of ``inner`` lies within one level of ``outer``."""
    if len(np.unique(inner)) < len(np.unique(outer)):
        return False
    pairs = np.unique(np.column_stack([inner, outer]), axis=0)
    return len(pairs) == len(np.unique(inner))

