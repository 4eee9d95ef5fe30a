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
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd
from scipy import stats

from cimstats.errors import ModelSpecificationError

from .fit import sem

__all__ = ["invariance", "InvarianceResult", "STEPS", "TABLE_COLUMNS", "comparison_table", "lrt"]

TABLE_COLUMNS = ["model", "npar", "df", "chisq", "pvalue", "chisq_scaled", "scaling_factor", "aic", "bic", "cfi",
                 "tli", "rmsea", "srmr", "chisq_diff", "df_diff", "p_diff", "rmsea_diff", "delta_cfi",
                 "delta_rmsea", "method"]

STEPS = {
    "configural": (),
    "metric": ("loadings",),
    "scalar": ("loadings", "intercepts"),
    "strict": ("loadings", "intercepts", "residuals"),
}


@dataclass(frozen=True)
class InvarianceResult:
    """Fits of an invariance sequence and the table comparing them.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model, in the order fitted: ``model, npar, df, chisq,
        pvalue, chisq_scaled, scaling_factor, aic, bic, cfi, tli, rmsea, srmr,
        chisq_diff, df_diff, p_diff, rmsea_diff, delta_cfi, delta_rmsea,
        method``. The ``*_diff`` and ``delta_*`` columns compare each model
        with the one before it (empty for the first model); under MLR, ``cfi``,
        ``tli`` and ``rmsea`` are the robust versions.
    fits : mapping
        The fitted :class:`~cimstats.models.sem.SEMResult` of each step.
    group : str
        What the measurement is compared across: the group column for
        :func:`invariance`, e.g. ``"waves 0, 1"`` for
        :func:`~cimstats.models.sem.longitudinal.longitudinal_invariance`.
    estimator : str
    across : {"groups", "waves"}
        Invariance across groups of people, or across waves of the same people.
    nobs : int or None
        People (rows) used in the fits.
    n_dropped : int
        People (rows) set aside; ``dropped`` gives the reasons and counts.
    dropped : mapping
    items, waves : tuple
        Longitudinal sequences only: the items and the waves, in model order.
    columns : pandas.DataFrame or None
        Longitudinal sequences only: ``item, wave, column`` (the wide column
        that holds each item at each wave) plus ``factor``.
    wide : pandas.DataFrame or None
        Longitudinal sequences only: the wide data the models were fitted to
        (one row per person, the id column first).
    """

    table: pd.DataFrame
    fits: MappingProxyType
    group: str
    estimator: str
    across: str = "groups"
    nobs: int | None = None
    n_dropped: int = 0
    dropped: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    items: tuple = ()
    waves: tuple = ()
    columns: pd.DataFrame | None = field(default=None, repr=False)
    wide: pd.DataFrame | None = field(default=None, repr=False)

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    def glance(self) -> pd.DataFrame:
        t = self.table
        held = []  # the sequence stops at the first step whose chi-square difference test rejects
        for m, p in zip(t["model"], t["p_diff"]):
            if m != "configural" and not (p is not None and p >= 0.05):
                break
            held.append(m)
        return pd.DataFrame([dict(group=self.group, across=self.across, estimator=self.estimator,
                                  nobs=self.nobs, n_dropped=self.n_dropped, n_models=len(t),
                                  last_step_not_rejected=held[-1] if held else None)])

    def summary(self) -> str:
        cols = ["model", "df", "chisq", "chisq_diff", "df_diff", "p_diff", "cfi", "delta_cfi", "rmsea",
                "delta_rmsea"]
        head = f"Measurement invariance across {self.group} ({self.estimator}"
        head += f", n = {self.nobs}" if self.nobs is not None else ""
        head += f", {self.n_dropped} set aside: " + "; ".join(f"{k}: {v}" for k, v in self.dropped.items()) \
            if self.n_dropped else ""
        head += ")"
        return head + "\n" + self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


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


def comparison_table(fits: dict, *, robust: bool) -> pd.DataFrame:
    """The invariance table of fitted steps (in order): fit of each model and the test against the previous one.

    Shared by :func:`invariance` and the longitudinal sequence; ``robust``
    selects the robust CFI/TLI/RMSEA and the Satorra-Bentler (2001) scaled
    difference tests.
    """
    rows = []
    prev = None
    for s, fit in fits.items():
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
            row.update(lrt(fit, prev, scaled=robust))
            row["delta_cfi"] = row["cfi"] - rows[-1]["cfi"]
            row["delta_rmsea"] = row["rmsea"] - rows[-1]["rmsea"]
        rows.append(row)
        prev = fit
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def check_steps(steps) -> tuple:
    """``steps`` as a tuple of known step names (a single name is accepted)."""
    if isinstance(steps, str):
        steps = (steps,)
    steps = tuple(steps)
    if not steps:
        raise ModelSpecificationError(
            f"`steps` is empty; expected one or more of {', '.join(STEPS)}, e.g. steps=('configural', 'metric')."
        )
    for s in steps:
        if s not in STEPS:
            raise ModelSpecificationError(
                f"`steps` lists '{s}'; expected any of {', '.join(STEPS)}."
            )
    if len(set(steps)) < len(steps):
        raise ModelSpecificationError(f"`steps` lists a step twice ({', '.join(steps)}); give each step once.")
    return steps


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
    steps = check_steps(steps)
    robust = str(estimator).upper() == "MLR" or cluster is not None
    fits = {}
    for s in steps:
        fits[s] = sem(data, model, group=group, estimator=estimator, missing=missing, cluster=cluster,
                      group_equal=STEPS[s], group_partial=group_partial, std_lv=std_lv)
    first = fits[steps[0]]
    return InvarianceResult(table=comparison_table(fits, robust=robust), fits=MappingProxyType(fits),
                            group=group, estimator=str(estimator).upper(), across="groups",
                            nobs=first.nobs, n_dropped=first.n_dropped,
                            dropped=MappingProxyType(dict(first.dropped)))
