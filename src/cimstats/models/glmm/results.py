"""Result object of a generalised linear mixed-model fit (frozen): the result contract, saving and loading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats
from numpy.polynomial.hermite_e import hermegauss

from ...errors import ModelSpecificationError
from .._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame, not_available
from .._wald import (WaldFixedEffects, fit_notes, exponentiate_table, publication_table, random_rows, ratio_label,
                     ratio_summary_columns, resolve_level, summary_table)
from ..mixed.core import theta_layout
from .family import make_family
from .offsets import offset_values

__all__ = ["GlmmResult"]

_SINGULAR_TOL = 1e-4


@dataclass(frozen=True)
class GlmmResult(WaldFixedEffects, FittedResult):
    """A fitted GLMM (read-only).

    ``params``/``std_errors`` are the fixed effects on the link scale with Wald
    standard errors; ``theta`` the relative covariance factor (lme4 order);
    ``nobs``, ``n_dropped`` and ``dropped`` (also ``dropped_by_column``) the
    rows used and set aside. A result read back with
    :func:`cimstats.load_result` answers everything but what needs the data
    (``predict``, ``fitted``), which says so.
    """

    kind: ClassVar[str] = "glmm"

    formula: str
    family: str
    link: str
    nagq: int
    fixed_names: tuple
    beta: np.ndarray = field(repr=False)
    vcov_matrix: np.ndarray = field(repr=False)
    theta: np.ndarray = field(repr=False)
    deviance: float
    loglik: float
    nobs: int
    n_dropped: int
    dropped_by_column: dict
    optimizer: OptimizerSummary = field(repr=False)
    groups: tuple = field(repr=False)           # (group label, term names, levels, nlevels, k)
    re_means: tuple = field(repr=False)
    re_sds: tuple = field(repr=False)
    _frame: object = field(repr=False)          # the data; None on a loaded result
    _family: object = field(repr=False)
    _m: np.ndarray = field(repr=False)
    _offset: np.ndarray = field(repr=False)
    _offset_exprs: tuple = field(repr=False)
    _layouts: tuple = field(repr=False)
    response: str = ""

    @classmethod
    def _from_fit(cls, *, frame, blocks, layouts, family, nagq, par, ntheta, vcov, deviance, opt, m, offset,
                  offset_exprs, response_label, re_means, re_sds, n_dropped_extra, extra_missing, formula):
        groups = tuple((b.group, tuple(b.term_names), tuple(b.levels), b.nlevels, b.k) for b in blocks)
        dropped = dict(frame.dropped_by_column)
        dropped.update(extra_missing)
        return cls(formula=formula, family=family.name, link=family.link.name, nagq=int(nagq),
                   fixed_names=tuple(frame.fixed_names), beta=np.asarray(par[ntheta:]).copy(),
                   vcov_matrix=vcov, theta=np.asarray(par[:ntheta]).copy(), deviance=float(deviance),
                   loglik=-0.5 * float(deviance), nobs=int(frame.nobs),
                   n_dropped=int(frame.n_dropped + n_dropped_extra), dropped_by_column=dropped,
                   optimizer=opt, groups=groups, re_means=tuple(re_means), re_sds=tuple(re_sds),
                   _frame=frame, _family=family, _m=m, _offset=offset, _offset_exprs=tuple(offset_exprs),
                   _layouts=tuple(layouts), response=response_label)

    def _need_data(self, what: str) -> None:
        if self._frame is None:
            raise not_available(what, "generalised linear mixed model")

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows set aside for missing values: one row per variable (``variable``, ``n_missing``)."""
        return dropped_frame(self.dropped_by_column)

    # ---- fixed effects: params, std_errors, pvalues, vcov(), conf_int() from WaldFixedEffects ----
    def _wald_parts(self):
        return self.fixed_names, self.beta, self.vcov_matrix

    def tidy(self, *args, level: float = 0.95, exponentiate: bool = False, conf_level=None) -> pd.DataFrame:
        """Fixed effects: term, estimate, std_error, statistic (Wald z), df (inf), p_value, ci_lower, ci_upper.

        Parameters
        ----------
        level : float, keyword only
            Coverage of the Wald intervals (default 0.95). The older
            ``tidy(0.9)`` and ``tidy(conf_level=0.9)`` still work for one
            release, with a ``DeprecationWarning``.
        exponentiate : bool
            ``True`` gives the estimates and interval limits as odds ratios
            (logit link) or rate ratios (log link); ``std_error`` is then the
            delta-method standard error of the ratio.
        """
        t = self._wald(resolve_level(args, level, conf_level, "GlmmResult"))
        return exponentiate_table(t, self.link) if exponentiate else t

    # ---- random effects ------------------------------------------------------------
    @property
    def ngroups(self) -> dict:
        return {g[0]: g[3] for g in self.groups}

    def _covs(self):
        out, i = [], 0
        for (r, c), g in zip(self._layouts, self.groups):
            k = g[4]
            T = np.zeros((k, k))
            T[r, c] = self.theta[i:i + len(r)]
            i += len(r)
            out.append(T @ T.T)
        return out

    def varcorr(self) -> pd.DataFrame:
        """Random-effect variances, covariances (vcov) and SDs/correlations (sdcor), as lme4's VarCorr."""
        rows = []
        for g, S in zip(self.groups, self._covs()):
            names = g[1]
            sd = np.sqrt(np.diag(S))
            for a in range(len(names)):
                rows.append((g[0], names[a], None, S[a, a], sd[a]))
            for a in range(len(names)):
                for b in range(a + 1, len(names)):
                    cor = S[a, b] / (sd[a] * sd[b]) if sd[a] > 0 and sd[b] > 0 else np.nan
                    rows.append((g[0], names[a], names[b], S[a, b], cor))
        return pd.DataFrame(rows, columns=["group", "term1", "term2", "vcov", "sdcor"])

    @property
    def singular(self) -> bool:
        return bool(self.singular_detail)

    @property
    def singular_detail(self) -> str:
        bad = []
        i = 0
        for (r, c), g in zip(self._layouts, self.groups):
            for rr, cc in zip(r, c):
                if rr == cc and abs(self.theta[i]) < _SINGULAR_TOL:
                    bad.append(f"{g[1][rr]!r} within {g[0]!r} has a zero on the diagonal of its covariance factor "
                               f"(variance zero or correlation +-1)" if g[4] > 1 else f"variance of {g[1][rr]!r} within {g[0]!r} is zero")
                i += 1
        return "; ".join(bad)

    def boundary_components(self) -> tuple:
        """(grouping factor, term) of each diagonal element of the covariance factor at zero."""
        out, i = [], 0
        for (r, c), g in zip(self._layouts, self.groups):
            for rr, cc in zip(r, c):
                if rr == cc and abs(self.theta[i]) < _SINGULAR_TOL:
                    out.append((g[0], g[1][rr]))
                i += 1
        return tuple(out)

    def ranef(self) -> pd.DataFrame:
        """Conditional modes of the random effects with their conditional standard deviations.

        Returns
        -------
        pandas.DataFrame
            group, term, level, condval (conditional mode on the link scale),
            condsd (conditional SD): the same columns as ``LmmResult.ranef()``
            and R's ``as.data.frame(ranef(m, condVar = TRUE))``; ready for a
            caterpillar plot (condval +- 1.96 condsd by level).

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(2)
        >>> g = np.repeat(np.arange(30), 10)
        >>> eta = rng.normal(0, 1, 30)[g]
        >>> d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "g": g})
        >>> cimstats.glmm("y ~ 1 + (1 | g)", d).ranef().columns.tolist()
        ['group', 'term', 'level', 'condval', 'condsd']
        """
        parts = []
        for g, mu, sd in zip(self.groups, self.re_means, self.re_sds):
            for j, term in enumerate(g[1]):
                parts.append(pd.DataFrame({"group": g[0], "term": term, "level": list(g[2]),
                                           "condval": mu[:, j], "condsd": sd[:, j]}))
        return pd.concat(parts, ignore_index=True)

    def _separated_terms(self) -> tuple:
        se = self.std_errors.to_numpy()
        bad = (np.abs(self.beta) > 10) & ((se > 10 * np.maximum(np.abs(self.beta), 1)) | ~np.isfinite(se)
                                          | (np.abs(self.beta) > 15))
        return tuple(n for n, b in zip(self.fixed_names, bad) if b)

    # ---- prediction ----------------------------------------------------------------
    def _linear_predictor(self, newdata, re: bool):
        fr = self._frame
        if newdata is None:
            eta = fr.X @ self.beta + self._offset
            if re:
                for blk, mu in zip(self._blocks_in_order(), self.re_means):
                    eta = eta + np.einsum("ij,ij->i", blk.Z, mu[blk.codes])
            return eta
        X = fr.new_fixed_matrix(newdata)
        off = offset_values(self._offset_exprs, newdata, self.formula)
        eta = X @ self.beta + off
        if re:
            order = {b.group: i for i, b in enumerate(fr.random)}
            newblocks = fr.new_random_blocks(newdata)
            for g, mu in zip(self.groups, self.re_means):
                Z, codes = newblocks[order[g[0]]]
                known = codes >= 0
                contrib = np.zeros(len(newdata))
                contrib[known] = np.einsum("ij,ij->i", Z[known], mu[codes[known]])
                eta = eta + contrib  # unseen levels: random effect 0 (the population mean)
        return eta

    def _blocks_in_order(self):
        by = {b.group: b for b in self._frame.random}
        return [by[g[0]] for g in self.groups]

    def _random_sd(self, newdata) -> np.ndarray:
        """SD of the random part z_i' b of each row's linear predictor (over the random-effect distribution)."""
        fr = self._frame
        if newdata is None:
            Zs = [b.Z for b in self._blocks_in_order()]
        else:
            order = {b.group: i for i, b in enumerate(fr.random)}
            newblocks = fr.new_random_blocks(newdata)
            Zs = [newblocks[order[g[0]]][0] for g in self.groups]
        var = 0.0
        for Z, S in zip(Zs, self._covs()):
            Z = np.asarray(Z, dtype=float)
            var = var + np.einsum("ij,jk,ik->i", Z, S, Z)
        return np.sqrt(np.maximum(var, 0.0))

    def predict(self, newdata: pd.DataFrame | None = None, *, type: str = "response", re: bool = True,
                marginal: bool = False) -> np.ndarray:
        """Predictions on the link (``type="link"``) or response scale.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict for; defaults to the rows used in the fit.
        type : {"response", "link"}
            Probabilities or rates (``"response"``) or log-odds / log-rates.
        re : bool
            ``True`` adds the conditional modes (cluster-specific predictions;
            clusters not seen in the fit get 0, the population mean);
            ``False`` sets the random effects to zero (R's ``re.form = NA``).
        marginal : bool
            ``True`` gives the population-averaged prediction on the response
            scale: the inverse link averaged over the normal distribution of the
            random part of the linear predictor, ``E[g^{-1}(x'beta + z'b)]``,
            by 40-point Gauss-Hermite quadrature (any random-effects structure;
            ``re`` is ignored).

        Returns
        -------
        numpy.ndarray
            One prediction per row.

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(1)
        >>> g = np.repeat(np.arange(50), 8)
        >>> eta = 1.0 + rng.normal(0, 1.5, 50)[g]
        >>> d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "g": g})
        >>> m = cimstats.glmm("y ~ 1 + (1 | g)", d)
        >>> typical = m.predict(type="response", re=False)[0]      # the typical cluster
        >>> average = m.predict(type="response", marginal=True)[0]  # averaged over clusters
        >>> bool(average < typical)   # marginal probabilities are pulled towards 0.5
        True
        """
        self._need_data("predict()")
        if type not in ("link", "response"):
            raise ModelSpecificationError(f"`type` is {type!r}; expected 'link' or 'response'.")
        if marginal:
            if type != "response":
                raise ModelSpecificationError(
                    "`marginal=True` averages probabilities or rates, so it needs type='response'; the marginal "
                    "prediction on the link scale is the fixed part, predict(type='link', re=False)."
                )
            eta = self._linear_predictor(newdata, re=False)
            sd = self._random_sd(newdata)
            x, w = hermegauss(40)
            w = w / w.sum()
            return self._family.link.inverse(eta[:, None] + sd[:, None] * x[None, :]) @ w
        eta = self._linear_predictor(newdata, re=re)
        return eta if type == "link" else self._family.link.inverse(eta)

    def fitted(self) -> np.ndarray:
        return self.predict(type="response", re=True)

    # ---- variance partition ---------------------------------------------------------
    def icc(self) -> pd.DataFrame:
        """Latent-scale intraclass correlation of each random intercept.

        Uses the latent level-1 variance pi^2/3 (logit) or 1 (probit):
        ``ICC = var / (sum of random-intercept variances + level-1 variance)``
        (Snijders and Bosker 2012, section 17.4). Random slopes are not
        included (the ICC then refers to x = 0).

        Returns
        -------
        pandas.DataFrame
            group, variance (random-intercept variance, log-odds scale), icc.

        Raises
        ------
        ModelSpecificationError
            For Poisson models and links without a latent-variable reading.

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(4)
        >>> g = np.repeat(np.arange(40), 10)
        >>> eta = rng.normal(0, 1, 40)[g]
        >>> d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "g": g})
        >>> t = cimstats.glmm("y ~ 1 + (1 | g)", d).icc()
        >>> bool(np.isclose(t["icc"].iloc[0], t["variance"].iloc[0] / (t["variance"].iloc[0] + np.pi ** 2 / 3)))
        True
        """
        lat = self._family.latent_variance
        if lat is None:
            raise ModelSpecificationError(
                f"A latent-scale ICC is defined for binomial logit or probit models; this model is "
                f"{self.family} with a {self.link} link."
            )
        vc = self.varcorr()
        vi = vc[(vc["term1"] == "(Intercept)") & vc["term2"].isna()]
        total = float(vi["vcov"].sum()) + lat
        return pd.DataFrame({"group": vi["group"].tolist(), "variance": vi["vcov"].to_numpy(),
                             "icc": vi["vcov"].to_numpy() / total})

    def median_odds_ratio(self) -> pd.DataFrame:
        """Median odds ratio (logit) or median rate ratio (log link) per random intercept.

        ``MOR = exp(sqrt(2 var) * Phi^{-1}(0.75))`` (Larsen and Merlo 2005): the
        median of the odds ratio between a person in a higher-risk and one in a
        lower-risk cluster, both drawn at random; 1 means no cluster variation.

        Returns
        -------
        pandas.DataFrame
            group, variance, median_ratio.

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(4)
        >>> g = np.repeat(np.arange(40), 10)
        >>> eta = rng.normal(0, 1, 40)[g]
        >>> d = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "g": g})
        >>> bool(cimstats.glmm("y ~ 1 + (1 | g)", d).median_odds_ratio()["median_ratio"].iloc[0] > 1)
        True
        """
        if self.link not in ("logit", "log"):
            raise ModelSpecificationError(
                f"The median odds/rate ratio needs a logit or log link; this model uses the {self.link} link."
            )
        vc = self.varcorr()
        vi = vc[(vc["term1"] == "(Intercept)") & vc["term2"].isna()]
        mor = np.exp(np.sqrt(2 * vi["vcov"].to_numpy()) * stats.norm.ppf(0.75))
        return pd.DataFrame({"group": vi["group"].tolist(), "variance": vi["vcov"].to_numpy(),
                             "median_ratio": mor})

    # ---- fit statistics ---------------------------------------------------------------
    @property
    def npar(self) -> int:
        return len(self.beta) + len(self.theta)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.npar

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def converged(self) -> bool:
        return bool(self.optimizer.converged)

    def glance(self) -> pd.DataFrame:
        """One row of fit statistics, laid out as ``LmmResult.glance()``.

        Columns: nobs, n_dropped, ngroups_<factor> (one per grouping factor,
        ':' written as '_'), loglik, aic, bic, deviance (-2 loglik), family,
        link, nagq, method, converged, singular, iterations, gradient_norm.
        """
        row = {"nobs": self.nobs, "n_dropped": self.n_dropped}
        for g, k in self.ngroups.items():
            row["ngroups_" + g.replace(":", "_")] = k
        row.update({"loglik": self.loglik, "aic": self.aic, "bic": self.bic, "deviance": self.deviance,
                    "family": self.family, "link": self.link, "nagq": self.nagq,
                    "method": "Laplace" if self.nagq == 1 else f"AGQ({self.nagq})",
                    "converged": self.converged, "singular": self.singular,
                    "iterations": self.optimizer.iterations, "gradient_norm": self.optimizer.gradient_norm})
        return pd.DataFrame([row])

    def summary(self) -> ResultSummary:
        """The printable summary: header, random effects, fixed effects (with odds or rate ratios), optimiser.

        Returns
        -------
        ResultSummary
            ``str()`` gives text; ``to_html()``, ``to_latex()`` and
            ``to_markdown()`` the other formats.
        """
        method = ("Laplace approximation" if self.nagq == 1
                  else f"adaptive Gauss-Hermite quadrature ({self.nagq} points)")
        title = (f"Generalised linear mixed model ({self.family}, {self.link} link), maximum likelihood by "
                 f"{method}")
        lines = [f"Formula: {self.formula}",
                 f"Observations: {self.nobs} used, {self.n_dropped} set aside"
                 + (f" ({', '.join(f'{k}: {v}' for k, v in self.dropped_by_column.items())} missing)"
                    if self.n_dropped and self.dropped_by_column else "")
                 + "; groups: " + ", ".join(f"{k} {v}" for k, v in self.ngroups.items()),
                 f"Log-likelihood {self.loglik:.3f}  AIC {self.aic:.2f}  BIC {self.bic:.2f}  "
                 f"deviance {self.deviance:.3f}"]
        random = summary_table("Random effects", self.varcorr(), [
            ("group", "Group", "text"), ("term1", "Term 1", "text"), ("term2", "Term 2", "text"),
            ("vcov", "Variance/Cov", "number"), ("sdcor", "SD/Corr", "number")])
        fixed = summary_table("Fixed effects (Wald z)", *ratio_summary_columns(self.tidy(), self.link))
        notes = fit_notes(self.optimizer, self.singular, self.singular_detail)
        return ResultSummary(title=title, lines=tuple(lines), tables=(random, fixed), notes=notes)

    def to_table_spec(self, *, level: float = 0.95, title: str | None = None, number=None,
                      number_format=None):
        """The fixed effects (with odds or rate ratios) and variance components as one publication table.

        Two row groups: "Fixed effects" (Term, Estimate on the link scale, SE,
        CI, the odds or rate ratio with its CI for logit and log links, p) and
        the random effects' standard deviations and correlations. Render it
        with :func:`cimstats.render.render`.

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
        method = ("Laplace approximation" if self.nagq == 1
                  else f"adaptive Gauss-Hermite quadrature ({self.nagq} points)")
        notes = [f"Maximum-likelihood estimates ({method}) on the {self.link} scale"
                 + (f" and as {ratio}s" if ratio else "") + "; Wald z-tests and intervals.",
                 f"n = {self.nobs} observations; groups: " + ", ".join(f"{g} {k}" for g, k in self.ngroups.items())
                 + (f"; {self.n_dropped} set aside for missing values ("
                    + ", ".join(f"{k}: {v}" for k, v in self.dropped_by_column.items()) + ")"
                    if self.n_dropped else "") + "."]
        if self.singular:
            notes.append(f"Singular fit: {self.singular_detail}.")
        response = self.response or self.formula.split("~", 1)[0].strip()
        return publication_table(t, level=level, ratios=exponentiate_table(t, self.link) if ratio else None,
                                 ratio_name=ratio, title=title or f"Generalised linear mixed model of {response}",
                                 random=random_rows(self.varcorr()), notes=notes, number=number,
                                 number_format=number_format)

    def __repr__(self) -> str:
        return str(self.summary())

    # ---- saving ---------------------------------------------------------------------
    def _state(self) -> dict:
        return {"formula": self.formula, "family": self.family, "link": self.link, "nagq": int(self.nagq),
                "fixed_names": list(self.fixed_names), "beta": np.asarray(self.beta, dtype=float),
                "vcov": np.asarray(self.vcov_matrix, dtype=float), "theta": np.asarray(self.theta, dtype=float),
                "deviance": float(self.deviance), "loglik": float(self.loglik), "nobs": int(self.nobs),
                "n_dropped": int(self.n_dropped), "dropped_by_column": dict(self.dropped_by_column),
                "optimizer": self.optimizer.to_dict(),
                "groups": [[g[0], list(g[1]), list(g[2]), int(g[3]), int(g[4])] for g in self.groups],
                "re_means": [np.asarray(v, dtype=float) for v in self.re_means],
                "re_sds": [np.asarray(v, dtype=float) for v in self.re_sds], "response": self.response}

    @classmethod
    def _from_state(cls, state: dict) -> "GlmmResult":
        groups = tuple((str(g[0]), tuple(str(t) for t in g[1]), tuple(g[2]), int(g[3]), int(g[4]))
                       for g in state["groups"])
        return cls(formula=state["formula"], family=state["family"], link=state["link"], nagq=int(state["nagq"]),
                   fixed_names=tuple(state["fixed_names"]), beta=np.asarray(state["beta"], dtype=float),
                   vcov_matrix=np.asarray(state["vcov"], dtype=float),
                   theta=np.asarray(state["theta"], dtype=float), deviance=float(state["deviance"]),
                   loglik=float(state["loglik"]), nobs=int(state["nobs"]), n_dropped=int(state["n_dropped"]),
                   dropped_by_column=dict(state["dropped_by_column"]),
                   optimizer=OptimizerSummary.from_dict(state["optimizer"]), groups=groups,
                   re_means=tuple(np.asarray(v, dtype=float).reshape(g[3], g[4])
                                  for v, g in zip(state["re_means"], groups)),
                   re_sds=tuple(np.asarray(v, dtype=float).reshape(g[3], g[4])
                                for v, g in zip(state["re_sds"], groups)),
                   _frame=None, _family=make_family(state["family"], state["link"]), _m=None, _offset=None,
                   _offset_exprs=(), _layouts=tuple(theta_layout(g[4]) for g in groups),
                   response=str(state["response"]))

