"""Fit measures of a fitted SEM (lavaan's names and formulas).

All functions take numbers (chi-squares, degrees of freedom, sample sizes,
matrices) and return numbers; :func:`fit_measures` assembles lavaan's
``fitMeasures()`` dictionary.

Notes
-----
* ``chisq = N F_ML`` (likelihood "normal": sample covariances with divisor N);
  with missing data ``chisq = 2 (logl_h1 - logl_h0)`` with the saturated
  model estimated by EM.
* ``cfi = 1 - max(X2 - df, 0) / max(X2 - df, X2_b - df_b, 0)``;
  ``tli = (X2_b/df_b - X2/df) / (X2_b/df_b - 1)``.
* ``rmsea = sqrt(max(0, (X2 - df) / (N df))) sqrt(G)``, 90% interval by
  inverting the non-central chi-square, ``p-close = P(X2 | ncp = N df 0.05^2 / G)``.
* ``srmr`` (Bentler's): root mean square of the residual covariances (and
  means with a mean structure) standardised by the observed standard
  deviations, averaged over groups with weights ``n_g / N``.
* Scaled versions (MLR) plug the Yuan-Bentler scaled statistics into the
  same formulas; the scaled RMSEA and its interval use the ML statistic with
  ``c df`` degrees of freedom (``c`` the scaling factor), as lavaan 0.6.
* Robust versions: for complete data, Brosseau-Liard, Savalei & Li (2012) and
  Brosseau-Liard & Savalei (2014): ``cfi.robust = 1 - max(X2 - c df, 0) /
  max(X2 - c df, X2_b - c_b df_b, 0)``, ``rmsea.robust = sqrt(max(X2/(N df) -
  c/N, 0)) sqrt(G)`` with interval and p-values from the scaled statistic and
  non-centralities multiplied by ``c``. Under FIML (with ML or MLR) the same
  formulas take the FIML-corrected statistics of Savalei (2018) and Zhang &
  Savalei (2023), see :func:`cimstats.models.sem.inference.fiml_corrected`.

References
----------
Brosseau-Liard, P. E., Savalei, V., & Li, L. (2012). An investigation of the
sample performance of two nonnormality corrections for RMSEA. Multivariate
Behavioral Research, 47, 904-930.
Brosseau-Liard, P. E., & Savalei, V. (2014). Adjusting incremental fit indices
for nonnormality. Multivariate Behavioral Research, 49, 460-470.
Savalei, V. (2018). On the computation of the RMSEA and CFI from the
mean-and-variance corrected test statistic with nonnormal data in SEM.
Multivariate Behavioral Research, 53, 419-429.
Zhang, X., & Savalei, V. (2023). New computations for RMSEA and CFI following
FIML and TS estimation with missing data. Psychological Methods, 28, 263-283.

Validated against lavaan 0.6-14 ``fitMeasures()`` (tests/reference/sem.R).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

__all__ = ["rmsea_block", "cfi_tli", "srmr_group", "fit_measures"]


from scipy import special


def _ncx2_cdf(x, df, ncp):
    if ncp <= 0:
        return float(special.chdtr(df, x))
    return float(special.chndtr(x, df, ncp))


def _rmsea_point(X2, df, N, G, c=1.0):
    """RMSEA ``sqrt(max(X2/(N df) - c/N, 0)) sqrt(G)`` (``c`` > 1 for the robust version)."""
    if not (np.isfinite(X2) and np.isfinite(df) and np.isfinite(c)):
        return math.nan
    if df <= 0:
        return 0.0
    return math.sqrt(max(X2 / (N * df) - c / N, 0.0)) * math.sqrt(G)


def _ncp_bound(X2, df, p, hi):
    """Non-centrality at which the non-central chi-square cdf of X2 equals p."""
    lam = float(special.chndtrinc(X2, df, p))
    if not np.isfinite(lam):
        lam = optimize.brentq(lambda v: _ncx2_cdf(X2, df, v) - p, 0.0, hi, xtol=1e-12, rtol=1e-12)
    return lam


def rmsea_block(X2: float, df: float, N: float, G: int, suffix: str = "", c: float = 1.0,
                X2_point: float | None = None, level: float = 0.90, close: float = 0.05,
                notclose: float = 0.08) -> dict:
    """RMSEA with its confidence interval and the tests of close and not-close fit.

    ``X2``/``df`` drive the interval and the p-values (for the robust RMSEA the
    scaled statistic); ``X2_point`` (default ``X2``) and ``c`` give the point
    value ``sqrt(max(X2_point/(N df) - c/N, 0)) sqrt(G)``; interval bounds are
    ``sqrt(c lambda / (N df)) sqrt(G)`` and the close-fit non-centrality is
    ``N df rmsea0^2 / (c G)``.
    """
    names = [f"rmsea{suffix}", f"rmsea.ci.lower{suffix}", f"rmsea.ci.upper{suffix}",
             f"rmsea.pvalue{suffix}", f"rmsea.notclose.pvalue{suffix}"]
    if X2_point is None:
        X2_point = X2
    if not (np.isfinite(X2) and np.isfinite(df) and np.isfinite(c)):
        return dict.fromkeys(names, math.nan)
    out = {names[0]: _rmsea_point(X2_point, df, N, G, c)}
    if df < 1 or _ncx2_cdf(X2, df, 0.0) < 1 - (1 - level) / 2:
        lo = 0.0
    else:
        lo = math.sqrt(c * _ncp_bound(X2, df, 1 - (1 - level) / 2, X2) / (N * df)) * math.sqrt(G)
    n_rmsea = max(N, X2 * 4)
    p_hi = (1 - level) / 2
    if df < 1 or _ncx2_cdf(X2, df, n_rmsea) > p_hi or _ncx2_cdf(X2, df, 0.0) < p_hi:
        hi = 0.0
    else:
        hi = math.sqrt(c * _ncp_bound(X2, df, p_hi, n_rmsea) / (N * df)) * math.sqrt(G)
    out[names[1]] = lo
    out[names[2]] = hi
    if df > 0:
        out[names[3]] = 1.0 - _ncx2_cdf(X2, df, N * df * close ** 2 / (c * G))
        out[names[4]] = _ncx2_cdf(X2, df, N * df * notclose ** 2 / (c * G))
    else:
        out[names[3]] = out[names[4]] = math.nan
    return out


def _robust_terms(X2, df, X2b, dfb, c, cb):
    """Numerator and denominator pieces shared by CFI, TLI and RNI (robust when c, cb != 1)."""
    if df > 0 and c != 1 and cb != 1:
        return X2 - c * df, X2b - cb * dfb
    return X2 - df, X2b - dfb


def cfi_tli(X2, df, X2b, dfb, c=1.0, cb=1.0) -> tuple[float, float]:
    """Comparative fit index and Tucker-Lewis index (robust versions with scaling factors c, cb)."""
    if not all(np.isfinite(v) for v in (X2, df, X2b, dfb, c, cb)):
        return math.nan, math.nan
    a, b = _robust_terms(X2, df, X2b, dfb, c, cb)
    t1 = max(a, 0.0)
    t2 = max(a, b, 0.0)
    cfi = 1.0 if (abs(t1) < 1.5e-8 and abs(t2) < 1.5e-8) else 1.0 - t1 / t2
    u1, u2 = a * dfb, b * df
    tli = 1.0 - u1 / u2 if (df > 0 and abs(u2) > 0) else 1.0
    return cfi, tli


def _rni(X2, df, X2b, dfb, c=1.0, cb=1.0):
    if not all(np.isfinite(v) for v in (X2, df, X2b, dfb, c, cb)):
        return math.nan
    a, b = _robust_terms(X2, df, X2b, dfb, c, cb)
    return math.nan if abs(b) < 1.5e-8 else 1.0 - a / b


def _other_incremental(X2, df, X2b, dfb, suffix=""):
    """RFI, NFI, PNFI and IFI (lavaan's definitions, including their edge cases)."""
    out = {}
    if not all(np.isfinite(v) for v in (X2, df, X2b, dfb)):
        return {f"{k}{suffix}": math.nan for k in ("rfi", "nfi", "pnfi", "ifi")}
    if df > dfb:
        rfi = math.nan
    elif df > 0 and dfb > 0:
        t1, t2 = X2b / dfb - X2 / df, X2b / dfb
        rfi = 1.0 if (t1 < 0 or t2 < 0) else t1 / t2
    else:
        rfi = 1.0
    if df > dfb or abs(X2b) < 1.5e-8:
        nfi = math.nan
    elif df > 0:
        nfi = (X2b - X2) / X2b
    else:
        nfi = 1.0
    pnfi = (df / dfb) * (X2b - X2) / X2b if (dfb > 0 and X2b > 0) else math.nan
    t2 = X2b - df
    ifi = 1.0 if t2 < 0 else (math.nan if abs(t2) < 1.5e-8 else (X2b - X2) / t2)
    out[f"rfi{suffix}"], out[f"nfi{suffix}"], out[f"pnfi{suffix}"], out[f"ifi{suffix}"] = rfi, nfi, pnfi, ifi
    return out


def srmr_group(S, Sigma, ybar=None, mu=None) -> tuple[float, float, float, float]:
    """(srmr_bentler, srmr_bentler_nomean, rmr, rmr_nomean) of one group."""
    p = S.shape[0]
    sd = np.sqrt(np.diag(S))
    R = (S - Sigma) / np.outer(sd, sd)
    iu = np.triu_indices(p)
    e = p * (p + 1) / 2
    ss = np.sum(R[iu] ** 2)
    raw = np.sum((S - Sigma)[iu] ** 2)
    nomean = math.sqrt(ss / e)
    rmr_nomean = math.sqrt(raw / e)
    if ybar is None or mu is None:
        return nomean, nomean, rmr_nomean, rmr_nomean
    dm = (ybar - mu) / sd
    full = math.sqrt((ss + np.sum(dm ** 2)) / (e + p))
    rmr = math.sqrt((raw + np.sum((ybar - mu) ** 2)) / (e + p))
    return full, nomean, rmr, rmr_nomean


def fit_measures(*, X2, df, X2b, dfb, N, G, npar, logl, logl_h1, fmin, srmr_parts, weights,
                 scaled=None, robust=None) -> dict:
    """Assemble lavaan-named fit measures.

    ``scaled`` (for MLR) holds ``c`` and ``cb``, the scaling factors of the
    model and baseline statistics. ``robust`` holds the statistics behind the
    robust CFI/TLI/RMSEA: ``X2``, ``df``, ``c`` (model) and ``X2b``, ``dfb``,
    ``cb`` (baseline). For complete data these are the ML statistics and the
    Yuan-Bentler scaling factors (Brosseau-Liard, Savalei & Li 2012;
    Brosseau-Liard & Savalei 2014); under FIML they are the complete-data
    statistics evaluated at the saturated (EM) moments with the FIML-corrected
    scaling factors of Savalei (2018) and Zhang & Savalei (2023).
    """
    out: dict[str, float] = {}
    out["npar"] = float(npar)
    out["fmin"] = fmin
    out["chisq"] = X2
    out["df"] = float(df)
    out["pvalue"] = float(special.chdtrc(df, X2)) if df > 0 else math.nan
    out["baseline.chisq"] = X2b
    out["baseline.df"] = float(dfb)
    out["baseline.pvalue"] = float(special.chdtrc(dfb, X2b)) if dfb > 0 else math.nan
    cfi, tli = cfi_tli(X2, df, X2b, dfb)
    out["cfi"] = cfi
    out["tli"] = tli
    out["nnfi"] = tli
    out.update(_other_incremental(X2, df, X2b, dfb))
    out["rni"] = _rni(X2, df, X2b, dfb)
    out["logl"] = logl
    out["unrestricted.logl"] = logl_h1
    out["aic"] = -2 * logl + 2 * npar
    out["bic"] = -2 * logl + npar * math.log(N)
    out["ntotal"] = float(N)
    out["bic2"] = -2 * logl + npar * math.log((N + 2) / 24)
    out.update(rmsea_block(X2, df, N, G))
    out["rmsea.ci.level"] = 0.90
    out["rmsea.close.h0"] = 0.05
    out["rmsea.notclose.h0"] = 0.08
    srmr_b = sum(w * s[0] for w, s in zip(weights, srmr_parts))
    srmr_b_nm = sum(w * s[1] for w, s in zip(weights, srmr_parts))
    out["rmr"] = sum(w * s[2] for w, s in zip(weights, srmr_parts))
    out["rmr_nomean"] = sum(w * s[3] for w, s in zip(weights, srmr_parts))
    out["srmr"] = srmr_b
    out["srmr_bentler"] = srmr_b
    out["srmr_bentler_nomean"] = srmr_b_nm
    if scaled is not None:
        c, cb = scaled["c"], scaled["cb"]
        Xs = X2 / c if c > 0 else (X2 if df == 0 else math.nan)
        Xbs = X2b / cb if cb > 0 else math.nan
        out["chisq.scaled"] = Xs
        out["df.scaled"] = float(df)
        out["pvalue.scaled"] = float(stats.chi2.sf(Xs, df)) if df > 0 else math.nan
        out["chisq.scaling.factor"] = c
        if df > 0:
            out["scaling.factor.h1"] = scaled.get("h1", math.nan)
            out["scaling.factor.h0"] = scaled.get("h0", math.nan)
        out["baseline.chisq.scaled"] = Xbs
        out["baseline.df.scaled"] = float(dfb)
        out["baseline.pvalue.scaled"] = float(stats.chi2.sf(Xbs, dfb)) if dfb > 0 else math.nan
        out["baseline.chisq.scaling.factor"] = cb
        cfi_s, tli_s = cfi_tli(Xs, df, Xbs, dfb)
        out["cfi.scaled"] = cfi_s
        out["tli.scaled"] = tli_s
        out["nnfi.scaled"] = tli_s
        out.update(_other_incremental(Xs, df, Xbs, dfb, ".scaled"))
        out["rni.scaled"] = _rni(Xs, df, Xbs, dfb)
        # the scaled RMSEA: the ML statistic against df * c (the trace of U Gamma)
        dfc = df * c if (df > 0 and np.isfinite(c) and c > 0) else math.nan
        if df == 0:
            out.update({k + ".scaled": math.nan for k in
                        ("rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "rmsea.notclose.pvalue")})
        else:
            out.update(rmsea_block(X2, dfc, N, G, ".scaled"))
    if robust is not None:
        rX2, rdf, rc = robust["X2"], robust["df"], robust["c"]
        rX2b, rdfb, rcb = robust["X2b"], robust["dfb"], robust["cb"]
        cfi_r, tli_r = cfi_tli(rX2, rdf, rX2b, rdfb, rc, rcb)
        out["cfi.robust"] = cfi_r
        out["tli.robust"] = tli_r
        out["nnfi.robust"] = tli_r
        out["rni.robust"] = _rni(rX2, rdf, rX2b, rdfb, rc, rcb)
        if rdf == 0:
            out.update({"rmsea.robust": 0.0, "rmsea.ci.lower.robust": 0.0, "rmsea.ci.upper.robust": 0.0,
                        "rmsea.pvalue.robust": math.nan, "rmsea.notclose.pvalue.robust": math.nan})
        else:
            rXs = rX2 / rc if (np.isfinite(rc) and rc > 0) else math.nan
            out.update(rmsea_block(rXs, rdf, N, G, ".robust", c=rc, X2_point=rX2))
    return out
