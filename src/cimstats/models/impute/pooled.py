"""Rubin's rules over any fitted result: :class:`PooledResult` and :func:`pool`.

A model fitted to each completed data set gives estimates ``Q_l`` and their
covariance ``U_l`` (l = 1..m). The pooled estimate is their mean; its variance
is ``T = Ubar + (1 + 1/m) B`` (within plus between-imputation variance), with
Barnard-Rubin degrees of freedom. The numbers are mice's (``mice::pool``):
``riv = (1 + 1/m) B / Ubar``, ``lambda = (1 + 1/m) B / T``,
``fmi = (riv + 2/(df + 3)) / (riv + 1)``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import ModelSpecificationError
from cimstats.models._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame
from cimstats.models.impute import kernels
from cimstats.render import NumberFormat, TableSpec

__all__ = ["PooledResult", "pool", "extract_fit", "likelihood_ratio_test", "loglik_at", "pooled_fit_measures",
           "stacked_bootstrap"]

_TIDY = ["term", "estimate", "std_error", "df", "statistic", "p_value", "ci_lower", "ci_upper", "riv", "lambda",
         "fmi", "ubar", "b"]


# --------------------------------------------------------------------------- reading one fit
def _call(obj, name):
    attr = getattr(obj, name, None)
    return attr() if callable(attr) else attr


def extract_fit(fit, *, where: str = "a fit") -> dict:
    """Estimates, their covariance, the complete-data df, n and convergence of one fitted result.

    Accepts a cimstats result (``tidy()``; ``vcov()`` when it has one, otherwise the
    standard errors of ``tidy()`` on a diagonal) or a statsmodels-like result
    (``params``, ``cov_params()``, ``df_resid``).
    """
    terms = est = V = None
    if hasattr(fit, "tidy") and callable(fit.tidy):
        t = fit.tidy()
        need = [c for c in ("term", "estimate", "std_error") if c not in t.columns]
        if need:
            raise ModelSpecificationError(f"The tidy() table of {where} lacks the columns {need}; pooling needs "
                                          "term, estimate and std_error.")
        terms = [str(x) for x in t["term"]]
        est = t["estimate"].to_numpy(dtype=float)
        se = t["std_error"].to_numpy(dtype=float)
        V = np.diag(se ** 2)
        v = _call(fit, "vcov") if hasattr(fit, "vcov") else None
        if isinstance(v, pd.DataFrame) and set(terms) <= set(map(str, v.index)) and len(set(terms)) == len(terms):
            vv = v.copy()
            vv.index = [str(i) for i in vv.index]
            vv.columns = [str(i) for i in vv.columns]
            V = vv.loc[terms, terms].to_numpy(dtype=float)
    elif hasattr(fit, "params") and hasattr(fit, "cov_params"):
        p = fit.params
        terms = [str(x) for x in p.index]
        est = np.asarray(p, dtype=float)
        V = np.asarray(fit.cov_params(), dtype=float)
    else:
        raise ModelSpecificationError(
            f"{where} is a {type(fit).__name__}, which has neither tidy() nor params/cov_params(); pass a model "
            "verb such as cimstats.lmm or cimstats.glm, or a function returning a statsmodels result.")
    if len(set(terms)) != len(terms):
        dup = sorted({x for x in terms if terms.count(x) > 1})
        raise ModelSpecificationError(f"The estimates of {where} repeat the term names {dup[:5]}; pooling needs "
                                      "one row per term.")
    dfres, nobs = None, None
    g = _call(fit, "glance") if hasattr(fit, "glance") else None
    if isinstance(g, pd.DataFrame) and len(g):
        for name in ("df_residual", "df.residual", "df_resid"):
            if name in g.columns and pd.notna(g[name].iloc[0]):
                dfres = float(g[name].iloc[0])
                break
        if "nobs" in g.columns and pd.notna(g["nobs"].iloc[0]):
            nobs = float(g["nobs"].iloc[0])
    if dfres is None and getattr(fit, "df_resid", None) is not None:
        dfres = float(fit.df_resid)
    if nobs is None and getattr(fit, "nobs", None) is not None and not callable(fit.nobs):
        nobs = float(fit.nobs)
    if dfres is None:
        dfres = max(nobs - len(terms), 1.0) if nobs is not None else math.inf
    opt = getattr(fit, "optimizer", None)
    converged = bool(getattr(opt, "converged", getattr(fit, "converged", True)))
    ll = None
    if isinstance(g, pd.DataFrame) and "loglik" in g.columns:
        ll = float(g["loglik"].iloc[0])
    elif getattr(fit, "llf", None) is not None:
        ll = float(fit.llf)
    dropped = getattr(fit, "dropped", None)
    return {"terms": terms, "estimate": est, "vcov": V, "dfcom": dfres, "nobs": nobs, "converged": converged,
            "loglik": ll, "dropped": dropped if isinstance(dropped, pd.DataFrame) else None}


def pool(fits: Sequence[Any], *, dfcom: float | None = None, description: str = "") -> "PooledResult":
    """Pool results fitted to each completed data set with Rubin's rules.

    Parameters
    ----------
    fits : sequence of fitted results (at least two)
        cimstats results (anything with ``tidy()``; ``vcov()`` used when present)
        or statsmodels results.
    dfcom : float, optional
        Complete-data degrees of freedom. By default taken from the first fit as
        ``mice::pool`` does: its residual df (``glance()`` column ``df_residual``
        or statsmodels' ``df_resid``), else ``nobs`` minus the number of
        estimates, else infinite (large-sample).
    description : str
        What was fitted (shown in the summary).

    Returns
    -------
    PooledResult
    """
    fits = list(fits)
    if len(fits) < 2:
        raise ModelSpecificationError(f"Pooling needs at least 2 fitted results; got {len(fits)}. Impute with m >= 2.")
    parts = [extract_fit(f, where=f"the fit to imputation {i + 1}") for i, f in enumerate(fits)]
    terms = parts[0]["terms"]
    for i, p in enumerate(parts[1:], start=2):
        if p["terms"] != terms:
            diff = sorted(set(terms) ^ set(p["terms"]))
            raise ModelSpecificationError(
                f"The fit to imputation {i} has the terms {diff[:5]} that the fit to imputation 1 has not (or the "
                "reverse); every completed data set must give the same terms (a category absent from one imputation "
                "does this: merge rare categories before imputing).")
    Q = np.vstack([p["estimate"] for p in parts])
    U = np.stack([p["vcov"] for p in parts])
    fit_stats = pooled_fit_measures(fits)
    boot = stacked_bootstrap(fits, terms)
    if dfcom is None and fit_stats is not None:
        dfcom = math.inf  # structural equation models: large-sample df, as semTools
        dfcom_source = "infinite (large-sample model)"
    elif dfcom is None:
        dfcom = parts[0]["dfcom"]
        dfcom_source = "from the model" if math.isfinite(dfcom) else "infinite (large-sample model)"
    else:
        dfcom = max(float(dfcom), 1.0)
        dfcom_source = "given"
    nobs = [p["nobs"] for p in parts if p["nobs"] is not None]
    n_conv = sum(p["converged"] for p in parts)
    drops = {}
    for p in parts:
        d = p["dropped"]
        if d is not None and {"variable", "n_missing"} <= set(d.columns):
            for var, k in zip(d["variable"], d["n_missing"]):
                drops[str(var)] = max(drops.get(str(var), 0), int(k))
    return PooledResult.from_arrays(terms, Q, U, float(dfcom), dfcom_source=dfcom_source,
                                    nobs=float(np.mean(nobs)) if nobs else float("nan"),
                                    n_converged=n_conv, description=description, dropped=dropped_frame(drops),
                                    fit_stats=fit_stats, boot=boot)


def stacked_bootstrap(fits: Sequence[Any], terms: Sequence[str]) -> pd.DataFrame | None:
    """The bootstrap resamples of every imputation stacked (m x B rows), or None for fits without a bootstrap.

    For mediation results (:func:`cimstats.mediation`) whose effects are the pooled
    terms; the percentile interval of the stacked draws is the interval of
    the "MI then bootstrap, pooled sample" approach (Schomaker and Heumann
    2018), recommended for indirect effects, whose sampling distribution is
    not normal. Columns: imputation (1..m), then one per term.
    """
    frames = []
    for i, f in enumerate(fits):
        draws = getattr(f, "bootstrap_draws", None)
        if getattr(f, "kind", None) != "mediation" or not callable(draws):
            return None
        d = draws()
        if [str(c) for c in d.columns] != list(terms):
            return None
        d = pd.DataFrame(d.to_numpy(dtype=float), columns=list(terms))  # without attrs (failed-resample masks)
        d.insert(0, "imputation", i + 1)
        frames.append(d)
    return pd.concat(frames, ignore_index=True)


def pooled_fit_measures(fits: Sequence[Any]) -> dict | None:
    """Fit measures of structural equation models pooled over imputations (D2), or None for other fits.

    Each fit must give lavaan-named ``fit_measures()`` with ``chisq``, ``df``,
    ``baseline.chisq``, ``baseline.df`` and ``ntotal`` (as :func:`cimstats.sem`
    does). The model and the baseline chi-squares are each pooled with D2 (Li,
    Meng, Raghunathan and Rubin 1991) and CFI, TLI and RMSEA are computed from
    the pooled values, as semTools' ``fitMeasures(fit, test = "D2")`` does for
    ``lavaan.mi`` fits.
    """
    measures = []
    for f in fits:
        fm = getattr(f, "fit_measures", None)
        fm = fm() if callable(fm) else fm
        if not isinstance(fm, dict) or not {"chisq", "df", "baseline.chisq", "baseline.df", "ntotal"} <= set(fm):
            return None
        measures.append(fm)
    chisq = kernels.d2_chisq([fm["chisq"] for fm in measures], float(np.mean([fm["df"] for fm in measures])))
    base = kernels.d2_chisq([fm["baseline.chisq"] for fm in measures],
                            float(np.mean([fm["baseline.df"] for fm in measures])))
    n = float(measures[0]["ntotal"])
    spec = getattr(fits[0], "spec", None)
    n_groups = max(1, len(getattr(spec, "group_labels", None) or ()))
    out = {"test": "D2", "chisq": chisq["chisq"], "df": chisq["df"], "pvalue": chisq["pvalue"],
           "ariv": chisq["ariv"], "fmi": chisq["fmi"], "npar": float(measures[0].get("npar", float("nan"))),
           "ntotal": n, "baseline.chisq": base["chisq"], "baseline.df": base["df"], "baseline.pvalue": base["pvalue"]}
    out.update(kernels.fit_indices(chisq["chisq"], chisq["df"], base["chisq"], base["df"], n, n_groups))
    return out


def loglik_at(fit, beta: np.ndarray, *, where: str = "a fit") -> float:
    """Log-likelihood of a fitted model with its coefficients held at ``beta`` (for D3), as ``mice::D3``.

    mice refits each model with ``X beta`` as an offset and only an intercept
    (and the scale or dispersion) free, and takes that fit's log-likelihood;
    this does the same. Works for statsmodels OLS and GLM results, cimstats
    linear mixed models (refitted by REML or ML as the model was, with the
    variance parameters free, as mice refits lmer fits), and any result with
    a method ``loglik_at(beta)``.
    """
    beta = np.asarray(beta, dtype=float)
    hook = getattr(fit, "loglik_at", None)
    if callable(hook):
        return float(hook(beta))
    if getattr(fit, "kind", None) == "lmm":
        return _lmm_loglik_at(fit, beta, where)
    model = getattr(fit, "model", None)
    if model is None or not hasattr(model, "exog") or not hasattr(model, "endog") or model.exog is None:
        raise ModelSpecificationError(
            f"{where} is a {type(fit).__name__}, which cannot give its log-likelihood at the pooled estimates that "
            "the D3 test needs; fit it with statsmodels OLS or GLM or cimstats.lmm, or use method='D2'.")
    X = np.asarray(model.exog, dtype=float)
    y = np.asarray(model.endog, dtype=float)
    if X.shape[1] != beta.shape[0]:
        raise ModelSpecificationError(f"{where} has {X.shape[1]} coefficients but {beta.shape[0]} pooled estimates "
                                      "were given; every completed data set must give the same terms.")
    offset = X @ beta
    extra = getattr(model, "offset", None)
    if extra is not None:
        offset = offset + np.asarray(extra, dtype=float)
    family = getattr(model, "family", None)
    n = len(y)
    if family is None:
        w = getattr(model, "weights", None)
        if w is not None and not np.allclose(np.asarray(w, dtype=float), 1.0):
            raise ModelSpecificationError(f"{where} is a weighted least-squares fit; the D3 test is available for "
                                          "unweighted OLS and GLM fits; use method='D2'.")
        r = y - offset
        r = r - r.mean()
        return float(-n / 2 * (math.log(2 * math.pi) + math.log(float(r @ r) / n) + 1))
    import statsmodels.api as sm  # deferred: statsmodels loads slowly

    for name in ("freq_weights", "var_weights"):
        w = getattr(model, name, None)
        if w is not None and not np.allclose(np.asarray(w, dtype=float), 1.0):
            raise ModelSpecificationError(f"{where} is a weighted GLM fit; the D3 test is available for unweighted "
                                          "fits; use method='D2'.")
    exposure = getattr(model, "exposure", None)
    if exposure is not None:
        offset = offset + np.asarray(exposure, dtype=float)
    refit = sm.GLM(y, np.ones((n, 1)), family=family, offset=offset).fit(tol=1e-14, maxiter=100)
    return float(refit.llf)


def _lmm_loglik_at(fit, beta: np.ndarray, where: str) -> float:
    """A linear mixed model refitted with ``X beta`` as an offset: intercept and variance parameters free (mice's D3)."""
    import dataclasses

    from cimstats.models.mixed.fit import fit_frame  # deferred: the mixed-model stack loads on demand

    frame = getattr(fit, "_frame", None)
    if frame is None or getattr(frame, "X", None) is None:
        raise ModelSpecificationError(f"{where} is a linear mixed model read back from a file, without its data; "
                                      "the D3 test refits it; fit the models again, or use method='D2'.")
    if frame.X.shape[1] != beta.shape[0]:
        raise ModelSpecificationError(f"{where} has {frame.X.shape[1]} fixed effects but {beta.shape[0]} pooled "
                                      "estimates were given; every completed data set must give the same terms.")
    n = frame.X.shape[0]
    offset_frame = dataclasses.replace(frame, y=frame.y - frame.X @ beta, X=np.ones((n, 1)),
                                       fixed_names=("(Intercept)",))
    return float(fit_frame(offset_frame, reml=bool(fit.reml), df_method="asymptotic", warn=False).loglik)


def likelihood_ratio_test(full: Sequence[Any], reduced: Sequence[Any], *, method: str = "D2") -> pd.DataFrame:
    """Pooled likelihood-ratio test of nested models from fits to each completed data set (D2 or D3).

    ``method="D2"``: each completed data set gives ``d_l = 2 (loglik_full -
    loglik_reduced)``; the statistics are combined as Li, Meng, Raghunathan
    and Rubin (1991) (``mice::D2(use = "likelihood")``).

    ``method="D3"``: the likelihood-ratio test of Meng and Rubin (1992)
    (``mice::D3``), which also evaluates both models at their pooled
    estimates on every data set; it is more powerful than D2 and needs fits
    that can be evaluated at given coefficients (statsmodels OLS and GLM;
    see :func:`loglik_at`).

    ``k`` is the difference in the number of estimates. Both lists of fits must
    report a log-likelihood (``glance()`` column ``loglik`` or statsmodels'
    ``llf``); for linear mixed models fit by ML.

    Returns
    -------
    DataFrame, one row: test ("D2" or "D3"), statistic (F), df1, df2, p_value, riv.
    """
    if method not in ("D2", "D3"):
        raise ModelSpecificationError(f"`method` is {method!r}; expected 'D2' (Li, Meng, Raghunathan and Rubin) or "
                                      "'D3' (Meng and Rubin); for a Wald test (D1) use PooledResult.wald_test().")
    full, reduced = list(full), list(reduced)
    if len(full) != len(reduced) or len(full) < 2:
        raise ModelSpecificationError(f"The likelihood-ratio test needs the same number (>= 2) of full and reduced "
                                      f"fits; got {len(full)} and {len(reduced)}.")
    a = [extract_fit(f, where=f"the full model on imputation {i + 1}") for i, f in enumerate(full)]
    b = [extract_fit(f, where=f"the reduced model on imputation {i + 1}") for i, f in enumerate(reduced)]
    if any(x["loglik"] is None for x in a + b):
        raise ModelSpecificationError(f"A fit reports no log-likelihood (glance() column loglik); the {method} "
                                      "likelihood-ratio test needs one from every fit; use wald_test() instead.")
    k = len(a[0]["terms"]) - len(b[0]["terms"])
    if k < 1:
        raise ModelSpecificationError(f"The full model has {len(a[0]['terms'])} estimates and the reduced model "
                                      f"{len(b[0]['terms'])}; the full model must have more.")
    if method == "D3":
        for parts, what in ((a, "full"), (b, "reduced")):
            for i, p in enumerate(parts[1:], start=2):
                if p["terms"] != parts[0]["terms"]:
                    raise ModelSpecificationError(f"The {what} model on imputation {i} has other terms than on "
                                                  "imputation 1; D3 needs the same terms in every completed set.")
        qa = np.mean([x["estimate"] for x in a], axis=0)
        qb = np.mean([x["estimate"] for x in b], axis=0)
        dev = {"own_full": [-2 * x["loglik"] for x in a], "own_reduced": [-2 * x["loglik"] for x in b],
               "pooled_full": [-2 * loglik_at(f, qa, where=f"the full model on imputation {i + 1}")
                               for i, f in enumerate(full)],
               "pooled_reduced": [-2 * loglik_at(f, qb, where=f"the reduced model on imputation {i + 1}")
                                  for i, f in enumerate(reduced)]}
        r = kernels.d3_test(dev["own_full"], dev["own_reduced"], dev["pooled_full"], dev["pooled_reduced"], k)
        return pd.DataFrame([{"test": "D3", **r}])
    d = np.array([2 * (x["loglik"] - y["loglik"]) for x, y in zip(a, b)])
    d[np.isclose(d, 0, atol=1e-12)] = 0.0
    r = kernels.d2_test(d, k)
    return pd.DataFrame([{"test": "D2", **r}])


# --------------------------------------------------------------------------- the result
class PooledResult(FittedResult):
    """Estimates pooled over multiply imputed data sets with Rubin's rules.

    Attributes
    ----------
    m : int
        Number of imputations pooled.
    dfcom : float
        Complete-data degrees of freedom used for the Barnard-Rubin df.
    nobs : float
        Rows used per fit (mean over imputations).
    estimates : DataFrame
        Per-imputation estimates and standard errors (imputation, term, estimate, std_error).

    Besides the contract (``tidy``, ``glance``, ``summary``, ``to_table_spec``, ``vcov``,
    ``save``), :meth:`wald_test` tests several terms at once (D1).

    Validated against: ``mice::pool`` (3.15) on lm and glm fits to stored mice imputations, ``mice::D1``,
    ``D2`` and ``D3``, and semTools' ``lavaan.mi`` (0.5.6) pooled fit measures (D2) of a CFA
    (tests/reference/mice.R).
    """

    kind = "pooled"

    def __init__(self, table: pd.DataFrame, T: np.ndarray, Q: np.ndarray, U: np.ndarray, dfcom: float, *,
                 dfcom_source: str, nobs: float, n_converged: int, description: str, dropped: pd.DataFrame,
                 fit_stats: dict | None = None, boot: pd.DataFrame | None = None):
        self._table = table
        self._T = T
        self._Q = Q
        self._U = U
        self.dfcom = float(dfcom)
        self.dfcom_source = dfcom_source
        self.nobs = float(nobs)
        self.n_converged = int(n_converged)
        self.description = description
        self._dropped = dropped
        self._fit_stats = dict(fit_stats) if fit_stats else None
        self._boot = boot

    @classmethod
    def from_arrays(cls, terms, Q, U, dfcom, **kw) -> "PooledResult":
        m = Q.shape[0]
        diag = np.stack([np.diag(u) for u in U])
        r = kernels.pool_scalar(Q, diag, dfcom)
        table = pd.DataFrame({"term": pd.Series(list(terms), dtype=object), "estimate": r["estimate"],
                              "std_error": np.sqrt(r["t"]), "df": r["df"], "riv": r["riv"], "lambda": r["lambda"],
                              "fmi": r["fmi"], "ubar": r["ubar"], "b": r["b"]})
        B = np.atleast_2d(np.cov(Q.T, ddof=1)) if Q.shape[1] > 1 else np.array([[r["b"][0]]])
        T = U.mean(axis=0) + (1 + 1 / m) * B
        return cls(table, T, Q, U, dfcom, **kw)

    # -- contract ---------------------------------------------------------------------------
    @property
    def m(self) -> int:
        return int(self._Q.shape[0])

    @property
    def params(self) -> pd.Series:
        return pd.Series(self._table["estimate"].to_numpy(), index=list(self._table["term"]), name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(self._table["std_error"].to_numpy(), index=list(self._table["term"]), name="std_error")

    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:
        """Pooled estimates, one row per term.

        For mediation analyses (:func:`cimstats.mediation` fitted to every
        completed set) ``ci_lower`` and ``ci_upper`` are the percentile
        interval of the bootstrap resamples of all imputations stacked (m x B
        draws; ``ci_method`` "stacked percentile", ``n_resamples`` their
        count), and the Rubin's-rules interval is kept in ``ci_lower_rubin``,
        ``ci_upper_rubin``: an indirect effect is a product whose sampling
        distribution is skewed, which a percentile interval respects.

        Returns
        -------
        pandas.DataFrame
            term; estimate (mean over imputations); std_error (square root of
            the total variance T); df (Barnard-Rubin); statistic (t); p_value;
            ci_lower, ci_upper (t quantiles with df); riv (relative increase in
            variance due to nonresponse); lambda (proportion of the variance due
            to nonresponse); fmi (fraction of missing information); ubar
            (within-imputation variance); b (between-imputation variance).
        """
        if not 0 < level < 1:
            raise ModelSpecificationError(f"`level` is {level!r}; expected a number between 0 and 1 such as 0.95.")
        t = self._table
        est, se, df = (t[c].to_numpy(dtype=float) for c in ("estimate", "std_error", "df"))
        with np.errstate(invalid="ignore", divide="ignore"):
            stat = est / se
        p = 2 * stats.t.sf(np.abs(stat), df)
        q = stats.t.ppf(0.5 + level / 2, df)
        out = pd.DataFrame({"term": t["term"].astype(object), "estimate": est, "std_error": se, "df": df,
                            "statistic": stat, "p_value": p, "ci_lower": est - q * se, "ci_upper": est + q * se,
                            "riv": t["riv"].to_numpy(dtype=float), "lambda": t["lambda"].to_numpy(dtype=float),
                            "fmi": t["fmi"].to_numpy(dtype=float), "ubar": t["ubar"].to_numpy(dtype=float),
                            "b": t["b"].to_numpy(dtype=float)})
        out = out[_TIDY]
        if self._boot is not None:
            draws = self._boot[list(t["term"])].to_numpy(dtype=float)
            alpha = 1 - level
            out["ci_lower_rubin"] = out["ci_lower"]
            out["ci_upper_rubin"] = out["ci_upper"]
            with np.errstate(invalid="ignore"):
                out["ci_lower"] = np.nanquantile(draws, alpha / 2, axis=0)
                out["ci_upper"] = np.nanquantile(draws, 1 - alpha / 2, axis=0)
            out["ci_method"] = "stacked percentile"
            out["n_resamples"] = np.isfinite(draws).sum(axis=0)
        return out

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        t = self.tidy(level=level)
        return t.set_index("term")[["ci_lower", "ci_upper"]]

    def glance(self) -> pd.DataFrame:
        """One row: m, nobs (mean rows per fit), dfcom, n_converged, max_fmi, description.

        For structural equation models (:func:`cimstats.sem` fitted to every
        completed set) also the pooled fit: fit_test ("D2"), chisq, df,
        p_value, ariv (average relative increase in variance of the
        chi-square), baseline_chisq, baseline_df, cfi, tli, rmsea; see
        :meth:`fit_measures`.
        """
        with np.errstate(invalid="ignore"):
            max_fmi = float(np.nanmax(self._table["fmi"])) if self._table["fmi"].notna().any() else float("nan")
        row = {"m": self.m, "nobs": self.nobs, "dfcom": self.dfcom, "n_converged": self.n_converged,
               "max_fmi": max_fmi, "description": self.description}
        fs = self._fit_stats
        if fs:
            row.update({"fit_test": fs["test"], "chisq": fs["chisq"], "df": fs["df"], "p_value": fs["pvalue"],
                        "ariv": fs["ariv"], "baseline_chisq": fs["baseline.chisq"], "baseline_df": fs["baseline.df"],
                        "cfi": fs["cfi"], "tli": fs["tli"], "rmsea": fs["rmsea"]})
        return pd.DataFrame([row])

    def fit_measures(self) -> dict:
        """Pooled fit measures of a structural equation model under lavaan's names.

        The chi-square of the model and of the baseline (independence) model
        are each pooled over the imputations with D2 (Li, Meng, Raghunathan
        and Rubin 1991) and CFI, TLI and RMSEA computed from the pooled
        values, as semTools' ``fitMeasures(fit, test = "D2")`` does for models
        fitted with ``runMI``/``cfa.mi``. Keys: test, chisq, df, pvalue, ariv,
        fmi, npar, ntotal, baseline.chisq, baseline.df, baseline.pvalue, cfi,
        tli, rmsea.

        Validated against: semTools 0.5.6 (lavaan 0.6-14) on a three-factor CFA
        of HolzingerSwineford1939 with holes imputed by mice (tests/reference/mice.R).
        """
        if not self._fit_stats:
            raise ModelSpecificationError("These pooled estimates come from models without a chi-square test of "
                                          "fit; pooled fit measures exist for structural equation models "
                                          "(imputations.fit(cimstats.sem, model)).")
        return dict(self._fit_stats)

    def vcov(self) -> pd.DataFrame:
        """Pooled covariance matrix ``T = Ubar + (1 + 1/m) B`` of the estimates."""
        names = list(self._table["term"])
        return pd.DataFrame(self._T, index=names, columns=names)

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows the fits set aside (largest count over imputations per variable)."""
        return self._dropped.copy()

    @property
    def optimizer(self) -> OptimizerSummary:
        return OptimizerSummary(method="Rubin's rules", start=(), final=tuple(self._table["estimate"]),
                                iterations=self.m, evaluations=self.m, gradient_norm=0.0,
                                converged=self.n_converged == self.m,
                                message=f"{self.n_converged} of {self.m} fits converged; pooling is closed-form")

    def bootstrap_draws(self) -> pd.DataFrame:
        """The bootstrap resamples of every imputation stacked: columns imputation (1..m), then one per effect.

        Only for pooled mediation analyses (the resamples are m x B rows).
        """
        if self._boot is None:
            raise ModelSpecificationError("These pooled estimates have no bootstrap resamples; stacked resamples "
                                          "exist for mediation analyses (imputations.fit(cimstats.mediation, ...)).")
        return self._boot.copy()

    @property
    def estimates(self) -> pd.DataFrame:
        """Per-imputation estimates: imputation (1..m), term, estimate, std_error."""
        terms = list(self._table["term"])
        rows = []
        for i in range(self.m):
            se = np.sqrt(np.diag(self._U[i]))
            rows.append(pd.DataFrame({"imputation": i + 1, "term": terms, "estimate": self._Q[i], "std_error": se}))
        return pd.concat(rows, ignore_index=True)

    def wald_test(self, terms: Sequence[str] | None = None, *, null: Sequence[float] | None = None) -> pd.DataFrame:
        """Pooled Wald test that several estimates equal ``null`` (zero by default): D1.

        The multivariate test of Li, Raghunathan and Rubin (1991) with the
        small-sample denominator df of Reiter (2007) when the complete-data df
        is finite; ``mice::D1`` (through ``mitml::testModels``) gives the same
        numbers.

        Parameters
        ----------
        terms : list of str, optional
            The terms tested (all terms by default).
        null : list of float, optional
            Their values under the null hypothesis.

        Returns
        -------
        DataFrame, one row: test ("D1"), terms, statistic (F), df1, df2, p_value, riv.
        """
        names = list(self._table["term"])
        terms = names if terms is None else [str(t) for t in terms]
        unknown = [t for t in terms if t not in names]
        if unknown or not terms:
            raise ModelSpecificationError(f"`terms` lists {unknown or 'nothing'}; available terms: {', '.join(names)}.")
        idx = [names.index(t) for t in terms]
        if null is not None and len(null) != len(idx):
            raise ModelSpecificationError(f"`null` has {len(null)} values for {len(idx)} terms; give one per term.")
        r = kernels.d1_test(self._Q[:, idx], self._U[:, idx][:, :, idx],
                            dfcom=self.dfcom if math.isfinite(self.dfcom) else None, null=null)
        return pd.DataFrame([{"test": "D1", "terms": ", ".join(terms), **r}])

    # -- presentation -------------------------------------------------------------------------
    def to_table_spec(self, *, title: str | None = None, level: float = 0.95, number=None, number_format=None):
        """The pooled estimates as one publication table: Term, Estimate, SE, CI, p, df, FMI."""

        fmt = number_format or NumberFormat()
        t = self.tidy(level=level)
        frame = pd.DataFrame({"term": t["term"].astype(str), "estimate": t["estimate"], "std_error": t["std_error"],
                              "ci": [fmt.ci(lo, hi) for lo, hi in zip(t["ci_lower"], t["ci_upper"])],
                              "p_value": t["p_value"], "df": t["df"], "fmi": t["fmi"]})
        labels = {"term": "Term", "estimate": "Estimate", "std_error": "SE", "ci": f"{level:.0%} CI",
                  "p_value": "p", "df": "df", "fmi": "FMI"}
        kinds = {"estimate": "estimate", "std_error": "estimate", "ci": "ci", "p_value": "p_value",
                 "df": "number", "fmi": "number"}
        notes = (f"Pooled over m = {self.m} imputations with Rubin's rules; df by Barnard and Rubin (1999) with "
                 f"complete-data df {self._dfcom_text()}; FMI: fraction of missing information.",)
        return TableSpec.from_frame(frame, title=title or f"Pooled estimates{': ' + self.description if self.description else ''}",
                                    kinds=kinds, number_format=fmt, header_labels=labels, notes=notes, number=number)

    def _dfcom_text(self) -> str:
        return f"{self.dfcom:g} ({self.dfcom_source})" if math.isfinite(self.dfcom) else "infinite"

    def summary(self) -> ResultSummary:
        lines = [f"Model: {self.description}" if self.description else "Model: (not recorded)",
                 f"Imputations: {self.m}   rows per fit: {self.nobs:g}   complete-data df: {self._dfcom_text()}"]
        notes = [self.optimizer.message]
        if len(self._dropped):
            notes.append("Rows set aside by the fits (largest over imputations): "
                         + ", ".join(f"{v} {k}" for v, k in zip(self._dropped["variable"], self._dropped["n_missing"])))
        return ResultSummary(title="Multiple imputation: estimates pooled with Rubin's rules", lines=tuple(lines),
                             tables=(self.to_table_spec(),), notes=tuple(notes))

    def __repr__(self) -> str:
        return f"<PooledResult: {len(self._table)} terms pooled over {self.m} imputations>"

    # -- saving ----------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"table": self._table, "T": self._T, "Q": self._Q, "U": self._U, "dfcom": self.dfcom,
                "dfcom_source": self.dfcom_source, "nobs": self.nobs, "n_converged": self.n_converged,
                "description": self.description, "dropped": self._dropped, "fit_stats": self._fit_stats,
                "boot": self._boot}

    @classmethod
    def _from_state(cls, state: dict) -> "PooledResult":
        table = state["table"]
        table["term"] = table["term"].astype(object)
        return cls(table, np.asarray(state["T"], dtype=float), np.asarray(state["Q"], dtype=float),
                   np.asarray(state["U"], dtype=float), float(state["dfcom"]), dfcom_source=str(state["dfcom_source"]),
                   nobs=float(state["nobs"]), n_converged=int(state["n_converged"]),
                   description=str(state["description"]), dropped=dropped_frame(state["dropped"]),
                   fit_stats=state.get("fit_stats"), boot=state.get("boot"))
