"""The frozen result of a two-level structural equation model.

:class:`TwoLevelResult` honours the result contract of
:mod:`cimstats.models._result` (``tidy``, ``glance``, ``summary``,
``to_table_spec``, ``vcov``, ``dropped``, ``optimizer``, ``save`` /
:func:`cimstats.load_result`). Every parameter row carries its ``level``
(1 = within clusters, 2 = between clusters).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import ModelSpecificationError
from cimstats.models._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

from .twolevel import fit_twolevel
from .results import SECTIONS, SUMMARY_FORMAT, _display, _section, check_level, p_text

__all__ = ["TwoLevelResult", "sem_twolevel", "check_twolevel_options"]


def check_twolevel_options(*, group=None, estimator="ML", missing="listwise", meanstructure=None,
                           group_equal=(), information=None, se=None, engine="cimstats") -> None:
    """Refuse, in one sentence, the options that two-level models do not support yet.

    Supported: ``estimator`` "ML" or "MLR" (robust standard errors from the
    cluster scores and the Yuan-Bentler scaled test), complete cases, the
    observed information and the standard errors that go with the estimator.
    """
    bad = []
    est = str(estimator).upper()
    if group is not None:
        bad.append("`group=` (multigroup)")
    if est not in ("ML", "MLR"):
        bad.append(f"estimator='{estimator}'")
    if str(missing).lower() != "listwise":
        bad.append(f"missing='{missing}'")
    if meanstructure is False:
        bad.append("meanstructure=False")
    if group_equal:
        bad.append("`group_equal=`")
    if information not in (None, "observed"):
        bad.append(f"information='{information}'")
    if se not in (None, "robust.huber.white" if est == "MLR" else "standard"):
        bad.append(f"se='{se}' with estimator='{estimator}'")
    if engine != "cimstats":
        bad.append(f"engine='{engine}'")
    if bad:
        raise ModelSpecificationError(
            f"Two-level models (level: blocks with `cluster=`) are fitted by ML or MLR on complete cases with "
            f"observed-information (ML) or robust (MLR) standard errors; {', '.join(bad)} is not supported for "
            "them, so drop it.")


LEVEL_NAMES = {1: "within clusters", 2: "between clusters"}


def _terms(t: pd.DataFrame) -> list[str]:
    return [f"{l}~1" if o == "~1" else f"{l}{o}{r}" for l, o, r in zip(t["lhs"], t["op"], t["rhs"])]


@dataclass(frozen=True, eq=False)
class TwoLevelResult(FittedResult):
    """A fitted two-level structural equation model (frozen).

    Attributes
    ----------
    model : str
        The model syntax with its ``level: 1`` and ``level: 2`` blocks.
    cluster : str
        The column of cluster identifiers.
    table : pandas.DataFrame
        The parameter table: ``lhs, op, rhs, level, label, free, estimate,
        std_error, exo, std_lv, std_lv_se, std_all, std_all_se`` (``free`` = 0
        for fixed parameters; ``exo`` = 1 for covariate moments fixed at their
        sample values). Defined parameters (``:=``) are rows with ``op ==
        ':='`` and ``level`` 0; their standard errors are delta-method ones.
    nobs : int
        Rows used (individuals).
    nclusters : int
        Clusters used.
    n_dropped : int
        Rows set aside for a missing model variable or cluster.
    dropped : pandas.DataFrame
        Per variable: ``variable``, ``n_missing`` (a row missing two
        variables counts for both).
    optimizer : OptimizerSummary
    estimator : str
        ``"ML"`` (standard errors from the observed information) or ``"MLR"``
        (Huber-White standard errors from the cluster scores, Yuan-Bentler
        scaled chi-square with scaled and robust CFI/TLI/RMSEA).
    """

    kind: ClassVar[str] = "sem_twolevel"

    model: str
    cluster: str
    table: pd.DataFrame
    nobs: int
    nclusters: int
    n_dropped: int
    dropped: pd.DataFrame
    optimizer: OptimizerSummary
    _fit: MappingProxyType = dataclasses.field(repr=False)
    _vcov: np.ndarray = dataclasses.field(repr=False)
    _implied: MappingProxyType = dataclasses.field(repr=False)
    estimator: str = "ML"

    # ------------------------------------------------------------------ building
    @classmethod
    def _build(cls, model: str, cluster: str, out: dict, n_dropped: int) -> "TwoLevelResult":
        tab = out["table"]
        x, V = out["x"], out["V"]
        se_free = np.sqrt(np.clip(np.diag(V), 0, None))
        k = tab["free"].to_numpy(dtype=int)
        est = np.where(k > 0, x[np.maximum(k - 1, 0)], tab["value"].to_numpy(dtype=float))
        se = np.where(k > 0, se_free[np.maximum(k - 1, 0)], 0.0)
        names, dv, dse = out.get("defined", ([], np.zeros(0), np.zeros(0)))
        nd = len(names)
        exprs = [out["info"]["defined"][n].text for n in names]
        sv, sse = out["std"]
        half = len(sv) // 2
        table = pd.DataFrame({
            "lhs": np.concatenate([tab["lhs"].astype(str).to_numpy(), np.array(names, dtype=object)]).astype(str),
            "op": np.concatenate([tab["op"].astype(str).to_numpy(), np.array([":="] * nd, dtype=object)]).astype(str),
            "rhs": np.concatenate([tab["rhs"].astype(str).to_numpy(), np.array(exprs, dtype=object)]).astype(str),
            "level": np.concatenate([tab["level"].to_numpy(dtype=int), np.zeros(nd, dtype=int)]),
            "label": np.concatenate([tab["label"].astype(str).to_numpy(), np.array(names, dtype=object)]).astype(str),
            "free": np.concatenate([k, np.zeros(nd, dtype=int)]),
            "estimate": np.concatenate([est, dv]), "std_error": np.concatenate([se, dse]),
            "exo": np.concatenate([tab["exo"].to_numpy(dtype=int), np.zeros(nd, dtype=int)]),
            "std_lv": sv[:half], "std_lv_se": sse[:half], "std_all": sv[half:], "std_all_se": sse[half:]})
        d = out["data"]
        it = int(out["iterations"])
        conv = bool(out["converged"])
        gn = float(out.get("grad_norm", math.nan))
        opt = OptimizerSummary(
            method="BFGS then Newton (observed information)", start=tuple(float(v) for v in out["x0"]),
            final=tuple(float(v) for v in x), iterations=it, evaluations=int(out.get("evaluations", 0)),
            gradient_norm=gn if math.isfinite(gn) else math.inf, converged=conv,
            message=f"{'converged' if conv else 'stopped without converging'} after {it} iterations; "
                    f"largest gradient element {gn:.2g}",
            checks=(f"largest element of the gradient at the solution: {gn:.2g}",
                    "saturated and baseline models fitted by the same routine"))
        implied = {"within": {"names": list(out["info"]["ov1"]), "cov": out["implied"]["within"][0],
                              "mean": out["implied"]["within"][1]},
                   "between": {"names": list(out["info"]["ov2"]), "cov": out["implied"]["between"][0],
                               "mean": out["implied"]["between"][1]}}
        return cls(model=model, cluster=cluster, table=table, nobs=int(d.N), nclusters=int(d.J),
                   n_dropped=int(n_dropped), dropped=dropped_frame(out["dropped"]), optimizer=opt,
                   _fit=MappingProxyType(dict(out["fm"])), _vcov=np.asarray(V, dtype=float),
                   _implied=MappingProxyType(implied), estimator=str(out.get("estimator", "ML")))

    # ------------------------------------------------------------------ saving
    def _state(self) -> dict:
        imp = {k: {"names": list(v["names"]), "cov": np.asarray(v["cov"], dtype=float),
                   "mean": np.asarray(v["mean"], dtype=float)} for k, v in self._implied.items()}
        return {"model": self.model, "cluster": self.cluster, "table": self.table, "nobs": int(self.nobs),
                "nclusters": int(self.nclusters), "n_dropped": int(self.n_dropped), "dropped": self.dropped,
                "optimizer": self.optimizer.to_dict(), "fit": dict(self._fit),
                "vcov": np.asarray(self._vcov, dtype=float), "implied": imp, "estimator": self.estimator}

    @classmethod
    def _from_state(cls, state: dict) -> "TwoLevelResult":
        return cls(model=str(state["model"]), cluster=str(state["cluster"]), table=state["table"],
                   nobs=int(state["nobs"]), nclusters=int(state["nclusters"]), n_dropped=int(state["n_dropped"]),
                   dropped=dropped_frame(state["dropped"]), optimizer=OptimizerSummary.from_dict(state["optimizer"]),
                   _fit=MappingProxyType(dict(state["fit"])), _vcov=np.asarray(state["vcov"], dtype=float),
                   _implied=MappingProxyType(dict(state["implied"])), estimator=str(state.get("estimator", "ML")))

    # ------------------------------------------------------------------ estimates
    def _free_names(self) -> list[str]:
        t = self.table[self.table["free"] > 0].drop_duplicates("free").sort_values("free")
        return [f"{term}@{lev}" for term, lev in zip(_terms(t), t["level"])]

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the free parameters (inverse observed information; the sandwich under MLR).

        Rows and columns are named ``term@level``, e.g. ``fw=~y2@1``.
        """
        names = self._free_names()
        return pd.DataFrame(self._vcov.copy(), index=names, columns=names)

    def params(self) -> pd.Series:
        """Free parameter estimates named ``term@level``."""
        t = self.table[self.table["free"] > 0].drop_duplicates("free").sort_values("free")
        return pd.Series(t["estimate"].to_numpy(dtype=float), index=self._free_names())

    def fit_measures(self) -> dict:
        """Fit measures with lavaan's names (``chisq``, ``df``, ``pvalue``, ``cfi``, ``tli``, ``rmsea``,
        ``srmr``, ``srmr_within``, ``srmr_between``, ``logl``, ``unrestricted.logl``, ``aic``, ``bic``, ...)."""
        return dict(self._fit)

    def loglik(self) -> float:
        return float(self._fit["logl"])

    def aic(self) -> float:
        return float(self._fit["aic"])

    def bic(self) -> float:
        return float(self._fit["bic"])

    def implied(self) -> dict:
        """Model-implied covariance matrices and means per level (``within``, ``between``) as DataFrames."""
        out = {}
        for k, v in self._implied.items():
            names = list(v["names"])
            out[k] = {"cov": pd.DataFrame(np.asarray(v["cov"], dtype=float), index=names, columns=names),
                      "mean": pd.Series(np.asarray(v["mean"], dtype=float), index=names)}
        return out

    def _rows(self, level: float) -> pd.DataFrame:
        t = self.table
        est = t["estimate"].to_numpy(dtype=float)
        se = t["std_error"].to_numpy(dtype=float)
        has = ((t["free"].to_numpy() > 0) | (t["op"].to_numpy() == ":=")) & np.isfinite(se) & (se > 0)
        q = stats.norm.ppf(0.5 + level / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(has, est / np.where(has, se, 1.0), np.nan)
        p = np.where(has, 2 * stats.norm.sf(np.abs(z)), np.nan)
        lo = np.where(has, est - q * se, est)
        hi = np.where(has, est + q * se, est)
        return pd.DataFrame({
            "term": _terms(t), "lhs": t["lhs"].to_numpy(), "op": t["op"].to_numpy(), "rhs": t["rhs"].to_numpy(),
            "label": t["label"].to_numpy(), "level": t["level"].to_numpy(dtype=int), "estimate": est,
            "std_error": se, "statistic": z, "p_value": p, "ci_lower": lo, "ci_upper": hi,
            "std_lv": self._col("std_lv"), "std_all": self._col("std_all"), "has_se": has})

    def _col(self, name: str) -> np.ndarray:
        """A column of the table; NaN for the standardized columns of a result saved before they existed."""
        t = self.table
        return t[name].to_numpy(dtype=float) if name in t else np.full(len(t), np.nan)

    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:
        """One row per parameter of each level.

        Parameters
        ----------
        level : float
            Confidence level of the Wald intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``term, lhs, op, rhs, label, level, estimate, std_error,
            statistic, p_value, ci_lower, ci_upper, std_lv, std_all``;
            ``level`` is 1 (within clusters), 2 (between clusters) or 0 for
            defined parameters (``:=``). Fixed parameters have standard error
            0 and their value as both interval limits. ``std_lv`` and
            ``std_all`` are the standardized estimates of each level (see
            :meth:`standardized_solution`).
        """
        return self._rows(check_level(level)).drop(columns="has_se")

    def standardized_solution(self, type: str = "std.all") -> pd.DataFrame:
        """Standardized estimates of each level with delta-method standard errors.

        As lavaan's ``standardizedSolution()`` for a two-level model: at each
        level, ``"std.lv"`` scales the latent variables to unit variance (their
        model-implied variance at that level) and ``"std.all"`` also the
        observed variables (their implied within-cluster or between-cluster
        variance). Defined parameters are their expressions evaluated at the
        standardized values. Standard errors by the delta method with
        :meth:`vcov` (robust under MLR).

        Parameters
        ----------
        type : {"std.all", "std.lv"}

        Returns
        -------
        pandas.DataFrame
            Columns ``lhs, op, rhs, level, label, estimate, std_error,
            statistic, p_value, ci_lower, ci_upper``.

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(3)
        >>> hood = np.repeat(np.arange(50), 6)
        >>> shared = rng.normal(scale=0.7, size=50)[hood]
        >>> own = rng.normal(size=300)
        >>> d = pd.DataFrame({f"ce{i}": shared + 0.8 * own + rng.normal(scale=0.6, size=300) for i in (1, 2, 3)})
        >>> d["hood"] = hood
        >>> fit = cimstats.sem("level: 1\\n ce_w =~ ce1 + ce2 + ce3\\nlevel: 2\\n ce_b =~ ce1 + ce2 + ce3",
        ...                    d, cluster="hood")
        >>> std = fit.standardized_solution()
        >>> round(float(std.query("lhs == 'ce_w' and rhs == 'ce_w'")["estimate"].iloc[0]), 6)
        1.0
        >>> sorted(set(std["level"]))
        [1, 2]
        """
        col = {"std.all": "std_all", "std.lv": "std_lv"}.get(type)
        if col is None:
            raise ModelSpecificationError(f"`type` is {type!r}; expected 'std.all' or 'std.lv'.")
        t = self.table
        est = self._col(col)
        se = self._col(col + "_se")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, est / np.where(se > 0, se, 1.0), np.nan)
        p = 2 * stats.norm.sf(np.abs(z))
        q = stats.norm.ppf(0.975)
        return pd.DataFrame({"lhs": t["lhs"].to_numpy(), "op": t["op"].to_numpy(), "rhs": t["rhs"].to_numpy(),
                             "level": t["level"].to_numpy(dtype=int), "label": t["label"].to_numpy(),
                             "estimate": est, "std_error": se, "statistic": z, "p_value": p,
                             "ci_lower": est - q * se, "ci_upper": est + q * se})

    def defined(self) -> pd.DataFrame:
        """Defined parameters (``:=``) with delta-method standard errors (rows of :meth:`tidy`)."""
        t = self.tidy()
        return t[t["op"] == ":="].reset_index(drop=True)

    def glance(self) -> pd.DataFrame:
        """One row: ``nobs, nclusters, n_dropped, estimator, npar, chisq, df, p_value, cfi, tli, rmsea,
        rmsea_ci_lower, rmsea_ci_upper, srmr, srmr_within, srmr_between, aic, bic, loglik, converged``;
        under MLR also ``chisq_scaled, p_value_scaled, cfi_robust, tli_robust, rmsea_robust,
        rmsea_robust_ci_lower, rmsea_robust_ci_upper`` (as a one-level MLR fit)."""
        f = self._fit
        row = dict(
            nobs=self.nobs, nclusters=self.nclusters, n_dropped=self.n_dropped, estimator=self.estimator,
            npar=f["npar"], chisq=f["chisq"], df=f["df"], p_value=f["pvalue"], cfi=f["cfi"], tli=f["tli"],
            rmsea=f["rmsea"], rmsea_ci_lower=f["rmsea.ci.lower"], rmsea_ci_upper=f["rmsea.ci.upper"],
            srmr=f["srmr"], srmr_within=f["srmr_within"], srmr_between=f["srmr_between"], aic=f["aic"],
            bic=f["bic"], loglik=f["logl"], converged=bool(self.optimizer.converged))
        if "chisq.scaled" in f:
            row.update(chisq_scaled=f["chisq.scaled"], p_value_scaled=f["pvalue.scaled"])
        if "cfi.robust" in f:
            row.update(cfi_robust=f["cfi.robust"], tli_robust=f["tli.robust"], rmsea_robust=f["rmsea.robust"],
                       rmsea_robust_ci_lower=f["rmsea.ci.lower.robust"],
                       rmsea_robust_ci_upper=f["rmsea.ci.upper.robust"])
        return pd.DataFrame([row])

    # ------------------------------------------------------------------ printed forms
    def _fit_rows(self, fmt: NumberFormat):
        f = self._fit

        def num(v):
            v = float(v)
            return Cell(fmt.estimate(v), kind="number", value=v if math.isfinite(v) else None)

        pv = float(f["pvalue"])
        scaled = []
        if "chisq.scaled" in f:
            ps = float(f["pvalue.scaled"])
            scaled = [("Chi-square (Yuan-Bentler scaled)", num(f["chisq.scaled"])),
                      ("Scaling factor", num(f["chisq.scaling.factor"])),
                      ("p (scaled)", Cell(fmt.p(ps), kind="p_value", value=ps if math.isfinite(ps) else None)),
                      ("CFI (robust)", num(f["cfi.robust"])), ("TLI (robust)", num(f["tli.robust"])),
                      ("RMSEA (robust)", num(f["rmsea.robust"]))]
        return [("Chi-square", num(f["chisq"])),
                ("Degrees of freedom", Cell(fmt.count(int(f["df"])), kind="count", value=int(f["df"]))),
                ("p", Cell(fmt.p(pv), kind="p_value", value=pv if math.isfinite(pv) else None)),
                ("CFI", num(f["cfi"])), ("TLI", num(f["tli"])), ("RMSEA", num(f["rmsea"])),
                ("SRMR (within)", num(f["srmr_within"])), ("SRMR (between)", num(f["srmr_between"])),
                ("Log-likelihood", num(f["logl"])), ("AIC", num(f["aic"])), ("BIC", num(f["bic"]))] + scaled

    def _body(self, rows, fmt, *, z_col: bool):
        out = []
        keys = [_section(o, l, r) for o, l, r in zip(rows["op"], rows["lhs"], rows["rhs"])]
        n_cols = 6 if z_col else 5
        for lev in (1, 2, 0):
            for key, heading in SECTIONS:
                sub = rows[[k == key and lv == lev for k, lv in zip(keys, rows["level"])]]
                if not len(sub):
                    continue
                out.append(Row.group(f"Level {lev} ({LEVEL_NAMES[lev]}): {heading.lower()}" if lev else heading,
                                     n_cols))
                for r in sub.itertuples(index=False):
                    free = bool(r.has_se)
                    cells = [Cell(_display(r.op, r.lhs, r.rhs)),
                             Cell(fmt.estimate(float(r.estimate)), kind="estimate", value=float(r.estimate)),
                             Cell(fmt.estimate(float(r.std_error)) if free else fmt.missing, kind="estimate",
                                  value=float(r.std_error) if free else None)]
                    if z_col:
                        cells.append(Cell(fmt.estimate(float(r.statistic)) if free else fmt.missing, kind="number",
                                          value=float(r.statistic) if free else None))
                    cells.append(Cell(fmt.p(float(r.p_value)) if free else fmt.missing, kind="p_value",
                                      value=float(r.p_value) if free else None))
                    cells.append(Cell(fmt.ci(r.ci_lower, r.ci_upper) if free else fmt.missing, kind="ci"))
                    out.append(Row(tuple(cells)))
        return out

    def _se_words(self) -> str:
        if self.estimator == "MLR":
            return ("robust (Huber-White) standard errors from the cluster scores; chi-square scaled as "
                    "Yuan-Bentler")
        return "standard errors from the observed information"

    @staticmethod
    def _header(level, z_col):
        cols = ["Parameter", "Estimate", "SE"] + (["z"] if z_col else []) + ["p", f"{level:.0%} CI"]
        return (tuple(Cell(c, kind="text" if c == "Parameter" else "number") for c in cols),)

    def summary(self) -> ResultSummary:
        """Fit statistics and the estimates of each level (a :class:`ResultSummary`)."""
        fmt = SUMMARY_FORMAT
        lines = (f"Observations: {self.nobs} used in {self.nclusters} clusters ({self.cluster}), "
                 f"{self.n_dropped} set aside",
                 f"Free parameters: {self._fit['npar']:g}; {self._se_words()}")
        tables = [TableSpec(title="Model fit", header=((Cell("Statistic"), Cell("Value", kind="number")),),
                            body=tuple(Row((Cell(k), v)) for k, v in self._fit_rows(fmt))),
                  TableSpec(title="Parameter estimates", header=self._header(0.95, True),
                            body=tuple(self._body(self._rows(0.95), fmt, z_col=True)))]
        notes = (f"Optimiser: {self.optimizer.message}.",
                 f"{fmt.missing}: fixed parameter (no standard error, test or interval).")
        return ResultSummary(title=f"Two-level structural equation model fitted by {self.estimator}", lines=lines,
                             tables=tuple(tables), notes=notes)

    def to_table_spec(self, *, title: str | None = None, number=None, number_format: NumberFormat | None = None,
                      level: float = 0.95) -> TableSpec:
        """The estimates of both levels as one publication table; fit statistics as notes."""
        fmt = number_format or NumberFormat()
        level = check_level(level)
        f = self._fit
        notes = (f"{self.estimator} estimation on complete cases: n = {fmt.count(self.nobs)} in "
                 f"{fmt.count(self.nclusters)} "
                 f"clusters, {fmt.count(self.n_dropped)} set aside for missing values.",
                 f"Model fit: chi-square({fmt.estimate(f['df'], 0)}) = {fmt.estimate(f['chisq'])}, "
                 f"{p_text(fmt, f['pvalue'])}; CFI {fmt.estimate(f['cfi'], 3)}; TLI {fmt.estimate(f['tli'], 3)}; "
                 f"RMSEA {fmt.estimate(f['rmsea'], 3)}; SRMR within {fmt.estimate(f['srmr_within'], 3)}, "
                 f"between {fmt.estimate(f['srmr_between'], 3)}.",
                 f"SE = standard error ({'robust, cluster scores' if self.estimator == 'MLR' else 'observed information'}"
                 "); CI = Wald confidence interval; "
                 f"{fmt.missing} = fixed parameter.")
        return TableSpec(title=title or "Two-level structural equation model estimates",
                         header=self._header(level, False), body=tuple(self._body(self._rows(level), fmt, z_col=False)),
                         notes=notes, number=number)


def sem_twolevel(model: str, data: pd.DataFrame, *, cluster: str, std_lv: bool = False,
                 fixed_x: bool = True, estimator: str = "ML") -> TwoLevelResult:
    """Fit a two-level model (``level: 1`` / ``level: 2`` blocks) by ML or MLR; called by :func:`cimstats.sem`.

    Labels, equality constraints and defined parameters work as in one-level
    models: the same label in both levels (e.g. ``fw =~ y1 + a*y2`` and
    ``fb =~ y1 + a*y2``, equal loadings across levels) or within a level
    shares one parameter; ``a == b`` and other linear equalities
    (``a == b + 0.2``) constrain labelled parameters of either level; ``:=``
    defines functions of them, with delta-method standard errors (rows of
    level 0). Inequalities and non-linear equalities are not supported yet.

    Parameters
    ----------
    model : str
        lavaan syntax with a ``level: 1`` block (the within-cluster model) and
        a ``level: 2`` block (the between-cluster model).
    data : pandas.DataFrame
        One row per individual; rows with a missing model variable or cluster
        are set aside (counted in ``dropped``).
    cluster : str
        Column of cluster identifiers (e.g. neighbourhood).
    std_lv : bool
        Identify each factor by fixing its variance to 1 instead of its first loading.
    fixed_x : bool
        Fix exogenous covariates' moments at their sample values (lavaan's default).
    estimator : {"ML", "MLR"}
        ``"MLR"``: the same estimates with Huber-White (sandwich) standard
        errors built from the cluster scores and the Yuan-Bentler scaled
        chi-square (lavaan's ``"yuan.bentler.mplus"``), with the scaled and
        robust CFI, TLI and RMSEA.

    Returns
    -------
    TwoLevelResult

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(7)
    >>> J, n = 60, 8
    >>> hood = np.repeat(np.arange(J), n)
    >>> shared = rng.normal(scale=0.7, size=J)[hood]
    >>> own = rng.normal(size=J * n)
    >>> d = pd.DataFrame({f"ce{i}": shared + 0.8 * own + rng.normal(scale=0.6, size=J * n) for i in (1, 2, 3)})
    >>> d["hood"] = hood
    >>> model = "level: 1\\n  ce_w =~ ce1 + ce2 + ce3\\nlevel: 2\\n  ce_b =~ ce1 + ce2 + ce3"
    >>> fit = cimstats.sem(model, d, cluster="hood")
    >>> fit.glance()[["nobs", "nclusters", "df"]].to_dict("records")
    [{'nobs': 480, 'nclusters': 60, 'df': 0.0}]
    >>> sorted(set(fit.tidy()["level"]))
    [1, 2]

    Equal loadings at both levels, the share of the factor's variance that lies
    between neighbourhoods as a defined parameter, and robust standard errors:

    >>> model = ("level: 1\\n  ce_w =~ ce1 + a*ce2 + b*ce3\\n  ce_w ~~ vw*ce_w\\n"
    ...          "level: 2\\n  ce_b =~ ce1 + a*ce2 + b*ce3\\n  ce_b ~~ vb*ce_b\\n  icc := vb / (vb + vw)")
    >>> fit = cimstats.sem(model, d, cluster="hood", estimator="MLR")
    >>> icc = fit.defined()
    >>> icc[["lhs", "op", "level"]].to_dict("records")
    [{'lhs': 'icc', 'op': ':=', 'level': 0}]
    >>> 0 < float(icc["estimate"].iloc[0]) < 1, "chisq_scaled" in fit.glance()
    (True, True)
    """
    out = fit_twolevel(model, data, cluster, std_lv=std_lv, fixed_x=fixed_x, estimator=estimator)
    n_dropped = len(data) - int(out["data"].N)
    return TwoLevelResult._build(model, cluster, out, n_dropped)
