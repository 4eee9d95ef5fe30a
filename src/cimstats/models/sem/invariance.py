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
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import ModelSpecificationError
from cimstats.models._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

from .fit import model_and_data, sem
from .results import SEMResult, check_level

__all__ = ["invariance", "InvarianceResult", "STEPS", "TABLE_COLUMNS", "comparison_table", "lrt"]

TABLE_COLUMNS = ["model", "npar", "df", "chisq", "p_value", "chisq_scaled", "scaling_factor", "aic", "bic", "cfi",
                 "tli", "rmsea", "srmr", "chisq_diff", "df_diff", "p_diff", "rmsea_diff", "delta_cfi",
                 "delta_rmsea", "method"]

STEPS = {
    "configural": (),
    "metric": ("loadings",),
    "scalar": ("loadings", "intercepts"),
    "strict": ("loadings", "intercepts", "residuals"),
}


@dataclass(frozen=True, eq=False)
class InvarianceResult(FittedResult):
    """Fits of an invariance sequence and the table comparing them.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model, in the order fitted: ``model, npar, df, chisq,
        p_value, chisq_scaled, scaling_factor, aic, bic, cfi, tli, rmsea, srmr,
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
        People (rows) set aside for missing values.
    dropped : pandas.DataFrame
        The people set aside, per variable (``variable, n_missing``; for a
        longitudinal sequence the variables are the wide columns
        ``<item>_w<wave>``).
    dropped_reasons : mapping
        Why people were set aside: reason -> number.
    items, waves : tuple
        Longitudinal sequences only: the items and the waves, in model order.
    columns : pandas.DataFrame or None
        Longitudinal sequences only: ``item, wave, column`` (the wide column
        that holds each item at each wave) plus ``factor``.
    wide : pandas.DataFrame or None
        Longitudinal sequences only: the wide data the models were fitted to
        (one row per person, the id column first). Not kept when the result
        is saved: ``None`` on a result read back with
        :func:`cimstats.load_result`.

    Notes
    -----
    The result contract (:mod:`cimstats.models._result`) for a table of
    model comparisons:

    * :meth:`tidy` has one row per step: ``term`` is the step (configural,
      metric, ...), ``estimate`` the change in CFI from the step before,
      ``statistic`` the chi-square difference, ``df`` its degrees of freedom
      and ``p_value`` its p-value (all empty for the first step);
      ``std_error``, ``ci_lower`` and ``ci_upper`` are empty because the
      comparison has no sampling interval, so ``level`` changes nothing.
    * :meth:`vcov` is an empty (0 x 0) table: the sequence has no single
      vector of estimates (each fit in :attr:`fits` has its own ``vcov()``).
    * :attr:`optimizer` sums the iterations and evaluations of the fits and
      converged only when every fit converged.
    * A saved and loaded result has the same tables, summary, figures and
      fits (each a loaded :class:`SEMResult`); only :attr:`wide` is not kept.
    """

    kind: ClassVar[str] = "invariance"

    table: pd.DataFrame
    fits: MappingProxyType
    group: str
    estimator: str
    across: str = "groups"
    nobs: int | None = None
    n_dropped: int = 0
    dropped: pd.DataFrame = field(default_factory=lambda: dropped_frame({}))
    dropped_reasons: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    items: tuple = ()
    waves: tuple = ()
    columns: pd.DataFrame | None = field(default=None, repr=False)
    wide: pd.DataFrame | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ contract
    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:
        """One row per step of the sequence, compared with the step before it.

        Parameters
        ----------
        level : float
            Accepted for the shared contract; the comparisons have no
            intervals, so it changes nothing.

        Returns
        -------
        pandas.DataFrame
            ``term`` (the step), ``estimate`` (change in CFI), ``std_error``
            (empty), ``statistic`` (chi-square difference), ``df`` (its
            degrees of freedom), ``p_value``, ``ci_lower``, ``ci_upper``
            (empty), then ``delta_rmsea, rmsea_diff, method`` (the difference
            test: standard or Satorra-Bentler 2001) and the step's own fit:
            ``chisq, model_df, cfi, tli, rmsea, srmr``.
        """
        check_level(level)
        t = self.table
        nan = np.full(len(t), np.nan)

        def col(name):
            return pd.to_numeric(t[name], errors="coerce").to_numpy(dtype=float)

        return pd.DataFrame({
            "term": t["model"].astype(str).to_numpy(dtype=object), "estimate": col("delta_cfi"),
            "std_error": nan, "statistic": col("chisq_diff"), "df": col("df_diff"), "p_value": col("p_diff"),
            "ci_lower": nan.copy(), "ci_upper": nan.copy(), "delta_rmsea": col("delta_rmsea"),
            "rmsea_diff": col("rmsea_diff"), "method": t["method"].astype(str).to_numpy(dtype=object),
            "chisq": col("chisq"), "model_df": col("df"), "cfi": col("cfi"), "tli": col("tli"),
            "rmsea": col("rmsea"), "srmr": col("srmr"),
        })

    def glance(self) -> pd.DataFrame:
        """One row: ``group, across, estimator, nobs, n_dropped, n_models, last_step_not_rejected``.

        ``last_step_not_rejected`` is the last step reached before the first
        chi-square difference test that rejects at 0.05.
        """
        t = self.table
        held = []  # the sequence stops at the first step whose chi-square difference test rejects
        for m, p in zip(t["model"], t["p_diff"]):
            if m != "configural" and not (p is not None and p >= 0.05):
                break
            held.append(m)
        return pd.DataFrame([dict(group=self.group, across=self.across, estimator=self.estimator,
                                  nobs=self.nobs, n_dropped=self.n_dropped, n_models=len(t),
                                  last_step_not_rejected=held[-1] if held else None)])

    def vcov(self) -> pd.DataFrame:
        """An empty (0 x 0) table: the sequence has no single vector of estimates (see each fit's ``vcov()``)."""
        return pd.DataFrame(np.zeros((0, 0)), index=pd.Index([], dtype=object), columns=pd.Index([], dtype=object))

    @property
    def optimizer(self) -> OptimizerSummary:
        """The fits' optimisers together: iterations and evaluations summed, converged when all converged."""
        ops = [(name, fit.optimizer) for name, fit in self.fits.items()]
        return OptimizerSummary(
            method="; ".join(f"{n}: {o.method}" for n, o in ops), start=(), final=(),
            iterations=sum(o.iterations for _, o in ops), evaluations=sum(o.evaluations for _, o in ops),
            gradient_norm=max((o.gradient_norm for _, o in ops), default=0.0),
            converged=all(o.converged for _, o in ops),
            message="; ".join(f"{n}: {o.message}" for n, o in ops),
            checks=tuple(f"{n}: {c}" for n, o in ops for c in o.checks))

    def _header(self) -> tuple[str, list[str]]:
        title = f"Measurement invariance across {self.group}"
        lines = [f"Estimator: {self.estimator}"
                 + ("; differences scaled (Satorra-Bentler 2001)" if (self.table["method"] == "satorra.bentler.2001").any()
                    else "")]
        if self.nobs is not None:
            who = "people" if self.across == "waves" else "rows"
            lines.append(f"Observations: {self.nobs} {who} used, {self.n_dropped} set aside"
                         + (" (" + "; ".join(f"{k}: {v}" for k, v in self.dropped_reasons.items()) + ")"
                            if self.n_dropped else ""))
        return title, lines

    def _comparison_spec(self, fmt: NumberFormat, title: str, **kw) -> TableSpec:
        t = self.table

        def num(v, d=None):
            v = float(v)
            return Cell(fmt.estimate(v, d), kind="number", value=v if math.isfinite(v) else None)

        def signed(v, d):
            v = float(v)
            if not math.isfinite(v):
                return Cell(fmt.missing, kind="number")
            text = fmt.estimate(v, d)
            return Cell(("+" + text) if v > 0 and not text.startswith(fmt.minus) else text, kind="number", value=v)

        def chi(x, df):
            x, df = float(x), float(df)
            if not (math.isfinite(x) and math.isfinite(df)):
                return Cell(fmt.missing, kind="number")
            return Cell(f"{fmt.estimate(x)} ({fmt.estimate(df, 0)})", kind="number", value=x)

        def pv(v):
            v = float(v)
            return Cell(fmt.p(v) if math.isfinite(v) else fmt.missing, kind="p_value",
                        value=v if math.isfinite(v) else None)

        header = (tuple(Cell(h, kind="text" if h == "Model" else "number") for h in (
            "Model", "Chi-square (df)", "CFI", "TLI", "RMSEA", "SRMR", "Chi-square difference (df)", "p",
            "Change in CFI", "Change in RMSEA")),)
        body = []
        for r in t.itertuples(index=False):
            body.append(Row((Cell(str(r.model)), chi(r.chisq, r.df), num(r.cfi, 3), num(r.tli, 3), num(r.rmsea, 3),
                             num(r.srmr, 3), chi(r.chisq_diff, r.df_diff), pv(r.p_diff),
                             signed(r.delta_cfi, 3), signed(r.delta_rmsea, 3))))
        return TableSpec(title=title, header=header, body=tuple(body), **kw)

    def _notes(self) -> list[str]:
        robust = (self.table["method"] == "satorra.bentler.2001").any()
        return [("Robust CFI, TLI and RMSEA; each" if robust else "Each")
                + " model is compared with the one before it by a "
                + ("Satorra-Bentler (2001) scaled " if robust else "")
                + "chi-square difference test.",
                "A common reading (Chen 2007): invariance holds when CFI drops by less than 0.01 and RMSEA rises "
                "by less than 0.015, or the difference test is not significant."]

    def summary(self) -> ResultSummary:
        """The comparison of the steps: fit of each model and the test against the one before.

        Returns
        -------
        ResultSummary
            Header lines (estimator, sample), one table (Model, Chi-square
            (df), CFI, TLI, RMSEA, SRMR, Chi-square difference (df), p,
            Change in CFI, Change in RMSEA) and notes on the reading.
        """
        title, lines = self._header()
        spec = self._comparison_spec(NumberFormat(decimals=3), "Model comparison")
        return ResultSummary(title=title, lines=tuple(lines), tables=(spec,), notes=tuple(self._notes()))

    def to_table_spec(self, *, title: str | None = None, number=None,
                      number_format: NumberFormat | None = None) -> TableSpec:
        """The comparison of the steps as one publication table (columns as in :meth:`summary`)."""
        fmt = number_format or NumberFormat()
        head, lines = self._header()
        return self._comparison_spec(fmt, title or head, number=number,
                                     notes=tuple(lines[1:] + self._notes()))

    # ------------------------------------------------------------------ saving
    def _state(self) -> dict:
        return {"table": self.table, "group": self.group, "estimator": self.estimator, "across": self.across,
                "nobs": None if self.nobs is None else int(self.nobs), "n_dropped": int(self.n_dropped),
                "dropped": self.dropped, "dropped_reasons": dict(self.dropped_reasons),
                "items": list(self.items), "waves": list(self.waves), "columns": self.columns,
                "fits": {name: fit._state() for name, fit in self.fits.items()}}

    @classmethod
    def _from_state(cls, state: dict) -> "InvarianceResult":
        fits = {str(k): SEMResult._from_state(v) for k, v in state["fits"].items()}
        return cls(table=state["table"], fits=MappingProxyType(fits), group=str(state["group"]),
                   estimator=str(state["estimator"]), across=str(state["across"]),
                   nobs=None if state["nobs"] is None else int(state["nobs"]), n_dropped=int(state["n_dropped"]),
                   dropped=dropped_frame(state["dropped"]),
                   dropped_reasons=MappingProxyType(dict(state["dropped_reasons"])),
                   items=tuple(state["items"]), waves=tuple(state["waves"]), columns=state["columns"], wide=None)


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
        row = dict(model=s, npar=f["npar"], df=f["df"], chisq=f["chisq"], p_value=f["pvalue"],
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


def invariance(model: str, data, *, group: str, estimator: str = "ML", missing: str = "listwise",
               cluster: str | None = None, steps=("configural", "metric", "scalar", "strict"),
               group_partial=(), std_lv: bool = False) -> InvarianceResult:
    """Fit the measurement-invariance sequence across groups and compare the models.

    Parameters
    ----------
    model : str
        lavaan syntax of the measurement model.
    data : pandas.DataFrame or Survey
        One row per respondent. Everything after ``data`` is given by
        keyword. (The old order ``invariance(data, model, group=...)`` still
        works in this release, with a ``DeprecationWarning``.)
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
        ``table`` with one row per model (columns listed on the class),
        ``fits`` (the fitted :class:`SEMResult` objects by step name) and the
        shared contract: ``tidy()`` (one row per step: ``term, estimate``
        (change in CFI), ``statistic`` (chi-square difference), ``df``,
        ``p_value`` ...), ``glance()``, ``summary()``, ``to_table_spec()``,
        ``vcov()`` (empty), ``dropped``, ``optimizer``, ``save(folder)``.

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
    >>> inv = invariance("ce =~ y1 + y2 + y3 + y4", d, group="country")
    >>> inv.table["model"].tolist()
    ['configural', 'metric', 'scalar', 'strict']
    """
    model, data = model_and_data(model, data, "invariance")
    steps = check_steps(steps)
    robust = str(estimator).upper() == "MLR" or cluster is not None
    fits = {}
    for s in steps:
        fits[s] = sem(model, data, group=group, estimator=estimator, missing=missing, cluster=cluster,
                      group_equal=STEPS[s], group_partial=group_partial, std_lv=std_lv)
    first = fits[steps[0]]
    return InvarianceResult(table=comparison_table(fits, robust=robust), fits=MappingProxyType(fits),
                            group=group, estimator=str(estimator).upper(), across="groups",
                            nobs=first.nobs, n_dropped=first.n_dropped, dropped=first.dropped,
                            dropped_reasons=first.dropped_reasons)
