"""Result object of a linear mixed-model fit (frozen), and its summary rendering."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import ModelSpecificationError
from ..formula import ModelFrame, RandomBlock
from ._threads import _blas_single_thread
from .core import PLSCore
from .inference import bootstrap_varcomp, contest_f, profile_varcomp, satterthwaite
from .optimize import OptimizerSummary

__all__ = ["LmmResult", "MixedSummary"]


@dataclass(frozen=True)
class LmmResult:
    """A fitted linear mixed model.

    Attributes
    ----------
    formula : str
    reml : bool
    nobs, n_dropped : int
        Rows used and rows set aside for missing values; ``dropped_by_column``
        gives the count per column.
    theta : ndarray
        Relative covariance factor (lme4's ``getME(m, "theta")``).
    sigma : float
        Residual standard deviation.
    criterion : float
        REML criterion (REML fits) or deviance (ML fits) at the optimum.
    optimizer : OptimizerSummary
    """

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
    _beta: np.ndarray = field(repr=False)
    _vcov: np.ndarray = field(repr=False)
    _bs: tuple = field(repr=False)
    _frame: ModelFrame = field(repr=False)
    _blocks: tuple = field(repr=False)
    _core: PLSCore = field(repr=False)
    _ev: dict = field(repr=False)

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
                   _bs=tuple(bs), _frame=frame, _blocks=tuple(blocks), _core=core,
                   _ev={k: ev[k] for k in ("ldL2", "ldRX2", "pwrss")})

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
    def params(self) -> pd.Series:
        return pd.Series(self._beta, index=list(self.fixed_names), name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._vcov)), index=list(self.fixed_names), name="std_error")

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects."""
        names = list(self.fixed_names)
        return pd.DataFrame(self._vcov, index=names, columns=names)

    @cached_property
    def df(self) -> pd.Series:
        """Denominator degrees of freedom of each fixed effect's t-test."""
        if self.df_method == "asymptotic":
            return pd.Series(np.inf, index=list(self.fixed_names), name="df")
        with _blas_single_thread():
            d, _, _ = satterthwaite(self._core, self.theta, self.sigma, self.reml, np.eye(len(self._beta)))
        return pd.Series(d, index=list(self.fixed_names), name="df")

    @property
    def pvalues(self) -> pd.Series:
        t = self._beta / np.sqrt(np.diag(self._vcov))
        df = self.df.to_numpy()
        p = np.where(np.isinf(df), 2 * stats.norm.sf(np.abs(t)), 2 * stats.t.sf(np.abs(t), np.where(np.isinf(df), 1, df)))
        return pd.Series(p, index=list(self.fixed_names), name="p_value")

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals for the fixed effects (t quantiles with the model's df)."""
        se = np.sqrt(np.diag(self._vcov))
        df = self.df.to_numpy()
        q = np.where(np.isinf(df), stats.norm.ppf(0.5 + level / 2),
                     stats.t.ppf(0.5 + level / 2, np.where(np.isinf(df), 1, df)))
        return pd.DataFrame({"ci_lower": self._beta - q * se, "ci_upper": self._beta + q * se},
                            index=list(self.fixed_names))

    def tidy(self, conf_level: float = 0.95) -> pd.DataFrame:
        """Fixed effects, one row per coefficient.

        Returns
        -------
        pandas.DataFrame
            term, estimate, std_error, statistic (t), df (Satterthwaite or inf),
            p_value, ci_lower, ci_upper.
        """
        se = np.sqrt(np.diag(self._vcov))
        ci = self.conf_int(conf_level)
        return pd.DataFrame({
            "term": list(self.fixed_names), "estimate": self._beta, "std_error": se,
            "statistic": self._beta / se, "df": self.df.to_numpy(), "p_value": self.pvalues.to_numpy(),
            "ci_lower": ci["ci_lower"].to_numpy(), "ci_upper": ci["ci_upper"].to_numpy(),
        })

    @property
    def ngroups(self) -> dict:
        """Number of levels per grouping factor (lme4's ``ngrps``)."""
        out = {}
        for b in self._blocks:
            out.setdefault(b.group, b.nlevels)
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
        for b in self._blocks:
            k = seen.get(b.group, 0)
            out.append(b.group if k == 0 else f"{b.group}.{k}")
            seen[b.group] = k + 1
        return out

    def _covs(self, theta=None, sigma=None):
        theta = self.theta if theta is None else theta
        sigma = self.sigma if sigma is None else sigma
        return [sigma ** 2 * (T @ T.T) for T in self._core.T_blocks(theta)]

    def _sdcor_vector(self, theta, sigma) -> np.ndarray:
        vals = []
        for S in self._covs(theta, sigma):
            sd = np.sqrt(np.diag(S))
            vals.extend(sd)
            k = len(sd)
            for j in range(k):
                for i in range(j + 1, k):
                    vals.append(S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan)
        vals.append(sigma)
        return np.array(vals)

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
        for label, b, S in zip(self._group_labels(), self._blocks, self._covs()):
            sd = np.sqrt(np.diag(S))
            for i, t in enumerate(b.term_names):
                rows.append((label, t, "", S[i, i], sd[i]))
            k = len(sd)
            for j in range(k):
                for i in range(j + 1, k):
                    cor = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                    rows.append((label, b.term_names[j], b.term_names[i], S[i, j], cor))
        rows.append(("Residual", "", "", self.sigma ** 2, self.sigma))
        return pd.DataFrame(rows, columns=["group", "term1", "term2", "vcov", "sdcor"])

    @property
    def singular(self) -> bool:
        return bool(self.singular_detail)

    @cached_property
    def singular_detail(self) -> str:
        """Which components sit on the boundary (empty when none)."""
        parts = []
        for label, b, T in zip(self._group_labels(), self._blocks, self._core.T_blocks(self.theta)):
            for i, t in enumerate(b.term_names):
                if T[i, i] >= 1e-4:
                    continue
                if i > 0 and np.any(np.abs(T[i, :i]) >= 1e-4):  # the term's effect is not zero: it is
                    # (nearly) a linear combination of the terms before it
                    if b.k == 2:
                        parts.append(f"the correlation of {b.term_names[0]} and {t} for {label!r} is "
                                     f"estimated as (nearly) {'+' if T[1, 0] > 0 else '-'}1")
                    else:
                        parts.append(f"the random effect of {t} for {label!r} is (nearly) a linear combination "
                                     f"of those of {', '.join(b.term_names[:i])} (singular covariance matrix)")
                else:
                    parts.append(f"the variance of {t} for {label!r} is estimated as (nearly) zero")
        return "; ".join(parts)

    @cached_property
    def _condvar(self) -> list[np.ndarray]:
        with _blas_single_thread():
            fac, _, Ts = self._core.factor(self.theta)
            blocks = fac.inv_diag_blocks()
        return [self.sigma ** 2 * np.matmul(np.matmul(T[None], B), T.T[None]) for T, B in zip(Ts, blocks)]

    def ranef(self, condvar: bool = True) -> pd.DataFrame:
        """Conditional modes of the random effects (BLUPs) with their conditional SDs.

        Returns
        -------
        pandas.DataFrame
            group, term, level, condval, condsd (as R's
            ``as.data.frame(ranef(m, condVar = TRUE))``).
        """
        frames = []
        cv = self._condvar if condvar else [None] * len(self._blocks)
        for label, b, u, V in zip(self._group_labels(), self._blocks, self._bs, cv):
            for i, t in enumerate(b.term_names):
                frames.append(pd.DataFrame({
                    "group": b.group, "term": t, "level": list(b.levels), "condval": u[:, i],
                    "condsd": np.sqrt(V[:, i, i]) if V is not None else np.nan}))
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------ prediction
    def _random_part(self, Zcodes) -> np.ndarray:
        total = 0.0
        for (Z, codes), b, u in zip(Zcodes, self._blocks, self._bs):
            ok = codes >= 0
            contrib = np.zeros(len(codes))
            contrib[ok] = np.einsum("ij,ij->i", Z[ok], u[codes[ok]])
            total = total + contrib
        return total

    def fitted(self) -> np.ndarray:
        """Fitted values including the random effects, for the rows used."""
        return self._frame.X @ self._beta + self._random_part([(b.Z, b.codes) for b in self._blocks])

    def residuals(self) -> np.ndarray:
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
                   seed=None) -> pd.DataFrame:
        """Confidence intervals for the standard deviations (and correlations) of the random effects.

        Parameters
        ----------
        method : {"profile", "bootstrap"}
            Profile likelihood (as lme4's ``confint(m, method = "profile")``;
            scalar random-effect terms) or parametric bootstrap (percentile
            intervals from ``nsim`` simulated refits; any model).
        level : float
        nsim, seed : bootstrap settings.

        Returns
        -------
        pandas.DataFrame
            group, term1, term2, estimate, ci_lower, ci_upper, method.
        """
        if method == "profile":
            return profile_varcomp(self, level=level)
        if method == "bootstrap":
            return bootstrap_varcomp(self, nsim=nsim, level=level, seed=seed)
        raise ModelSpecificationError(f"`method` is {method!r}; expected 'profile' or 'bootstrap'.")

    # ---------------------------------------------------------------- output
    def summary(self) -> "MixedSummary":
        """Printable summary (``str()``, ``.to_html()``, ``.to_latex()``)."""
        return MixedSummary(self)

    def _repr_html_(self) -> str:
        return self.summary().to_html()

    def __repr__(self) -> str:
        return (f"LmmResult({self.formula!r}, {'REML' if self.reml else 'ML'}, nobs={self.nobs}, "
                f"n_dropped={self.n_dropped}, loglik={self.loglik:.4f})")


def _is_nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """True when each level of ``inner`` lies within one level of ``outer``."""
    if len(np.unique(inner)) < len(np.unique(outer)):
        return False
    pairs = np.unique(np.column_stack([inner, outer]), axis=0)
    return len(pairs) == len(np.unique(inner))


def _fmt(x, digits=4):
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    if isinstance(x, float) and np.isinf(x):
        return "Inf"
    if abs(x) != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


class MixedSummary:
    """Summary tables of a mixed model (text, HTML, LaTeX)."""

    def __init__(self, model: LmmResult):
        self.model = model
        m = model
        self.header = [
            f"Linear mixed model fit by {'REML' if m.reml else 'maximum likelihood'}"
            f" ({'Satterthwaite' if m.df_method == 'satterthwaite' else 'asymptotic'} t-tests)",
            f"Formula: {m.formula}",
            f"{'REML criterion' if m.reml else 'Deviance'}: {m.criterion:.4f}   logLik: {m.loglik:.4f}"
            f"   AIC: {m.aic:.4f}   BIC: {m.bic:.4f}",
            f"Observations: {m.nobs} used, {m.n_dropped} dropped"
            + (f" ({', '.join(f'{k}: {v}' for k, v in m.dropped_by_column.items())} missing)"
               if m.n_dropped else ""),
            "Groups: " + ", ".join(f"{g} {k}" for g, k in m.ngroups.items()),
        ]
        vc = m.varcorr()
        self.random = vc
        self.fixed = m.tidy()
        o = m.optimizer
        self.footer = [f"Optimizer: {o.method}; {'converged' if o.converged else 'NOT converged'} after "
                       f"{o.iterations} iterations ({o.evaluations} evaluations), max |gradient| "
                       f"{o.gradient_norm:.2g}."]
        if m.singular:
            self.footer.append(f"Singular fit: {m.singular_detail}.")

    def _tables(self):
        rnd = self.random.copy()
        rnd.columns = ["Group", "Term 1", "Term 2", "Variance/Cov", "SD/Corr"]
        fx = self.fixed.copy()
        fx.columns = ["Term", "Estimate", "Std. Error", "t value", "df", "Pr(>|t|)", "CI lower", "CI upper"]
        return rnd, fx

    def __str__(self) -> str:
        rnd, fx = self._tables()
        fmt = {c: _fmt for c in list(rnd.columns[3:]) + list(fx.columns[1:])}
        return "\n".join(self.header + ["", "Random effects:",
                                        rnd.to_string(index=False, formatters=fmt), "",
                                        "Fixed effects:", fx.to_string(index=False, formatters=fmt), ""]
                         + self.footer)

    __repr__ = __str__

    def to_html(self) -> str:
        rnd, fx = self._tables()

        def table(df):
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                           for row in df.itertuples(index=False))
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        lines = "".join(f"<p>{html.escape(h)}</p>" for h in self.header)
        foot = "".join(f"<p>{html.escape(f)}</p>" for f in self.footer)
        return (f"<div class='cimstats-lmm'>{lines}<h4>Random effects</h4>{table(rnd)}"
                f"<h4>Fixed effects</h4>{table(fx)}{foot}</div>")

    def to_latex(self) -> str:
        rnd, fx = self._tables()

        def esc(s):
            s = str(s)
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                         ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
                         ("^", r"\textasciicircum{}")):
                s = s.replace(a, b) if a != "\\" else s.replace(a, "\x00")
            return s.replace("\x00", r"\textbackslash{}")

        def table(df, caption):
            cols = "l" * 3 + "r" * (df.shape[1] - 3) if caption == "Random effects" else "l" + "r" * (df.shape[1] - 1)
            out = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{esc(caption)}}}",
                   rf"\begin{{tabular}}{{{cols}}}", r"\hline",
                   " & ".join(esc(c) for c in df.columns) + r" \\", r"\hline"]
            for row in df.itertuples(index=False):
                out.append(" & ".join(esc(_fmt(v)) for v in row) + r" \\")
            out += [r"\hline", r"\end{tabular}", r"\end{table}"]
            return "\n".join(out)

        notes = "\n".join("% " + esc(h) for h in self.header + self.footer)
        return notes + "\n" + table(rnd, "Random effects") + "\n" + table(fx, "Fixed effects")
