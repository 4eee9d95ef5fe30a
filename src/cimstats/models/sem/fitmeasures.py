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
* Robust versions follow Brosseau-Liard, Savalei & Li (2012) and
  Brosseau-Liard & Savalei (2014); scaled versions plug in the Yuan-Bentler
  scaled statistic.
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


def rmsea_block(X2: float, df: float, N: float, G: int, suffix: str = "") -> dict:
    """RMSEA with 90% confidence interval and test of close fit (p-close)."""
    out = {}
    if not np.isfinite(X2):
        return {f"rmsea{suffix}": math.nan, f"rmsea.ci.lower{suffix}": math.nan,
                f"rmsea.ci.upper{suffix}": math.nan, f"rmsea.pvalue{suffix}": math.nan}
    if df <= 0:
        return {f"rmsea{suffix}": 0.0 if df == 0 else math.nan, f"rmsea.ci.lower{suffix}": 0.0,
                f"rmsea.ci.upper{suffix}": 0.0, f"rmsea.pvalue{suffix}": math.nan}
    out[f"rmsea{suffix}"] = math.sqrt(max(0.0, (X2 - df) / (N * df))) * math.sqrt(G)

    def lower(lam):
        return _ncx2_cdf(X2, df, lam) - 0.95

    def upper(lam):
        return _ncx2_cdf(X2, df, lam) - 0.05

    if lower(0.0) < 0:
        lo = 0.0
    else:
        lam = float(special.chndtrinc(X2, df, 0.95))
        if not np.isfinite(lam):
            lam = optimize.brentq(lower, 0.0, X2, xtol=1e-12, rtol=1e-12)
        lo = math.sqrt(lam / (N * df)) * math.sqrt(G)
    n_rmsea = max(N, X2 * 4)
    if upper(n_rmsea) > 0 or upper(0.0) < 0:
        hi = 0.0
    else:
        lam = float(special.chndtrinc(X2, df, 0.05))
        if not np.isfinite(lam):
            lam = optimize.brentq(upper, 0.0, n_rmsea, xtol=1e-12, rtol=1e-12)
        hi = math.sqrt(lam / (N * df)) * math.sqrt(G)
    out[f"rmsea.ci.lower{suffix}"] = lo
    out[f"rmsea.ci.upper{suffix}"] = hi
    out[f"rmsea.pvalue{suffix}"] = 1.0 - _ncx2_cdf(X2, df, N * df * 0.05 ** 2 / G)
    return out


def cfi_tli(X2, df, X2b, dfb) -> tuple[float, float]:
    """Comparative fit index and Tucker-Lewis index."""
    t1 = max(X2 - df, 0.0)
    t2 = max(X2 - df, X2b - dfb, 0.0)
    cfi = 1.0 if t2 == 0 else 1.0 - t1 / t2
    if df > 0 and dfb > 0:
        tli = ((X2b / dfb) - (X2 / df)) / ((X2b / dfb) - 1.0)
    else:
        tli = 1.0
    return cfi, tli


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
                 scaled=None) -> dict:
    """Assemble lavaan-named fit measures.

    ``scaled`` (for MLR) holds ``c`` and ``cb`` (scaling factors of the model
    and baseline statistics).
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
    out["rfi"] = max(0.0, ((X2b / dfb) - (X2 / df)) / (X2b / dfb)) if df > 0 and dfb > 0 else math.nan
    out["nfi"] = (X2b - X2) / X2b if X2b > 0 else math.nan
    out["pnfi"] = (df / dfb) * out["nfi"] if dfb > 0 else math.nan
    out["ifi"] = (X2b - X2) / (X2b - df) if X2b != df else math.nan
    t2 = max(X2 - df, X2b - dfb, 0.0)
    out["rni"] = 1.0 - (X2 - df) / (X2b - dfb) if X2b != dfb else math.nan
    out["logl"] = logl
    out["unrestricted.logl"] = logl_h1
    out["aic"] = -2 * logl + 2 * npar
    out["bic"] = -2 * logl + npar * math.log(N)
    out["ntotal"] = float(N)
    out["bic2"] = -2 * logl + npar * math.log((N + 2) / 24)
    out.update(rmsea_block(X2, df, N, G))
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
        out["baseline.chisq.scaled"] = Xbs
        out["baseline.df.scaled"] = float(dfb)
        out["baseline.pvalue.scaled"] = float(stats.chi2.sf(Xbs, dfb)) if dfb > 0 else math.nan
        out["baseline.chisq.scaling.factor"] = cb
        cfi_s, tli_s = cfi_tli(Xs, df, Xbs, dfb)
        out["cfi.scaled"] = cfi_s
        out["tli.scaled"] = tli_s
        out["nnfi.scaled"] = tli_s
        # robust CFI/TLI (Brosseau-Liard & Savalei 2014)
        t1 = max(X2 - c * df, 0.0)
        t2 = max(X2 - c * df, X2b - cb * dfb, 0.0)
        out["cfi.robust"] = 1.0 if t2 == 0 else 1.0 - t1 / t2
        if df > 0 and dfb > 0:
            out["tli.robust"] = 1.0 - ((X2 - c * df) * dfb) / ((X2b - cb * dfb) * df)
        else:
            out["tli.robust"] = 1.0
        sc = rmsea_block(Xs, df, N, G, ".scaled")
        out.update(sc)
        if df > 0 and np.isfinite(c) and c > 0:
            out["rmsea.robust"] = math.sqrt(max(0.0, (X2 / c - df) / (N * df))) * math.sqrt(G) * math.sqrt(c)
        else:
            out["rmsea.robust"] = 0.0 if df == 0 else math.nan
    return out
