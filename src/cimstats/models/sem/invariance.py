"""Measurement invariance across groups: configural -> metric -> scalar -> strict.

Each step adds equality constraints across groups (``group_equal``):

============  =================================================
configural    same pattern, everything free per group
metric        + loadings
scalar        + intercepts (latent means free in groups 2..)
strict        + residual variances
============  =================================================

Consecutive models are compared with likelihood-ratio (chi-square
difference) tests; under MLR the difference is scaled as in Satorra &
Bentler (2001), lavaan's ``lavTestLRT`` default:
``cd = (df0 c0 - df1 c1) / (df0 - df1)``, ``T = (T0 - T1) / cd``.
The RMSEA of the difference test is
``sqrt(max(0, (dX2 - ddf) / (N ddf))) sqrt(G)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from types import MappingProxyType

import pandas as pd
from scipy import stats

from cimstats.errors import ModelSpecificationError

from .fit import sem

__all__ = ["invariance", "InvarianceResult", "STEPS"]

STEPS = {
    "configural": (),
    "metric": ("loadings",),
    "scalar": ("loadings", "intercepts"),
    "strict": ("loadings", "intercepts", "residuals"),
}


@dataclass(frozen=True)
class InvarianceResult:
    """Fits of the invariance sequence and the comparison table.

    ``table`` columns: ``model, npar, df, chisq, pvalue, chisq_scaled,
    scaling_factor, aic, bic, cfi, tli, rmsea, srmr, chisq_diff, df_diff,
    p_diff, rmsea_diff, delta_cfi, delta_rmsea, method``.
    """

    table: pd.DataFrame
    fits: MappingProxyType
    group: str
    estimator: str

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    def glance(self) -> pd.DataFrame:
        t = self.table
        held = [m for m, p in zip(t["model"], t["p_diff"]) if m == "configural" or (p is not None and p >= 0.05)]
        return pd.DataFrame([dict(group=self.group, estimator=self.estimator, n_models=len(t),
                                  last_step_not_rejected=held[-1] if held else None)])

    def summary(self) -> str:
        cols = ["model", "df", "chisq", "chisq_diff", "df_diff", "p_diff", "cfi", "delta_cfi", "rmsea",
                "delta_rmsea"]
        return self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


def lrt(fit0, fit1, *, scaled: bool) -> dict:
    """Chi-square difference test of nested fits (fit0 more restricted: larger df)."""
    f0, f1 = fit0.fit_measures(), fit1.fit_measures()
    ddf = f0["df"] - f1["df"]
    T0, T1 = f0["chisq"], f1["chisq"]
    if ddf <= 0:
        return dict(chisq_diff=math.nan, df_diff=ddf, p_diff=math.nan, rmsea_diff=math.nan,
                    method="none")
    if scaled:
        c0, c1 = f0["chisq.scaling.factor"], f1["chisq.scaling.factor"]
        if f1["df"] == 0:
            c1 = 0.0 if not math.isfinite(c1) else c1
        cd = (f0["df"] * c0 - f1["df"] * c1) / ddf
        diff = (T0 - T1) / cd if cd > 0 else math.nan
        method = "satorra.bentler.2001"
    else:
        diff = T0 - T1
        method = "standard"
    N = f0["ntotal"]
    G = len(fit0.spec.group_labels)
    p = float(stats.chi2.sf(diff, ddf)) if math.isfinite(diff) else math.nan
    rm = math.sqrt(max(0.0, (diff - ddf) / (N * ddf))) * math.sqrt(G) if math.isfinite(diff) else math.nan
    return dict(chisq_diff=max(diff, 0.0) if math.isfinite(diff) else diff, df_diff=ddf, p_diff=p,
                rmsea_diff=rm, method=method)


def invariance(data, model: str, *, group: str, estimator: str = "ML", missing: str = "listwise",
               cluster: str | None = None, steps=("configural", "metric", "scalar", "strict"),
               group_partial=(), std_lv: bool = False) -> InvarianceResult:
    """Fit the measurement-invariance sequence across groups and compare the models.

    Parameters
    ----------
    data : pandas.DataFrame
    model : str
        lavaan syntax of the measurement model.
    group : str
        Column with the groups (e.g. country).
    estimator : {"ML", "MLR"}
        With ``"MLR"`` the differences are Satorra-Bentler (2001) scaled.
    missing : {"listwise", "fiml"}
    cluster : str, optional
    steps : sequence of {"configural", "metric", "scalar", "strict"}
    group_partial : sequence of str
        Parameters exempt from the equality constraints (partial invariance).

    Returns
    -------
    InvarianceResult
        ``table`` with one row per model (columns listed on the class) and
        ``fits`` (the fitted :class:`SEMResult` objects by step name).

    Notes
    -----
    A common reading (Chen 2007): invariance holds when the chi-square
    difference is not significant or CFI drops by less than 0.01 and RMSEA
    rises by less than 0.015.

    Validated against: lavaan::lavTestLRT(configural, metric, scalar, strict)
    (tests/reference/sem.R).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> n = 400
    >>> f = rng.normal(size=n)
    >>> d = pd.DataFrame({f"y{i}": 0.7 * f + rng.normal(scale=0.7, size=n) for i in range(1, 5)})
    >>> d["country"] = np.repeat(["EN", "NL"], n // 2)
    >>> inv = invariance(d, "ce =~ y1 + y2 + y3 + y4", group="country")
    >>> inv.table["model"].tolist()
    ['configural', 'metric', 'scalar', 'strict']
    """
    for s in steps:
        if s not in STEPS:
            raise ModelSpecificationError(
                f"`steps` lists '{s}'; expected any of {', '.join(STEPS)}."
            )
    robust = str(estimator).upper() == "MLR" or cluster is not None
    fits = {}
    rows = []
    prev = None
    for s in steps:
        fit = sem(data, model, group=group, estimator=estimator, missing=missing, cluster=cluster,
                  group_equal=STEPS[s], group_partial=group_partial, std_lv=std_lv)
        fits[s] = fit
        f = fit.fit_measures()
        row = dict(model=s, npar=f["npar"], df=f["df"], chisq=f["chisq"], pvalue=f["pvalue"],
                   chisq_scaled=f.get("chisq.scaled", math.nan),
                   scaling_factor=f.get("chisq.scaling.factor", math.nan), aic=f["aic"], bic=f["bic"],
                   cfi=f.get("cfi.robust" if robust else "cfi"), tli=f.get("tli.robust" if robust else "tli"),
                   rmsea=f.get("rmsea.robust" if robust else "rmsea"), srmr=f["srmr"])
        if prev is None:
            row.update(chisq_diff=math.nan, df_diff=math.nan, p_diff=math.nan, rmsea_diff=math.nan,
                       delta_cfi=math.nan, delta_rmsea=math.nan, method="")
        else:
            row.update(lrt(fit, fits[prev], scaled=robust))
            row["delta_cfi"] = row["cfi"] - rows[-1]["cfi"]
            row["delta_rmsea"] = row["rmsea"] - rows[-1]["rmsea"]
        rows.append(row)
        prev = s
    return InvarianceResult(table=pd.DataFrame(rows), fits=MappingProxyType(fits), group=group,
                            estimator=str(estimator).upper())
