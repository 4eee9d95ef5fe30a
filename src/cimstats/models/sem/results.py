"""The frozen result of a fitted SEM; every output is a view of its parameter table.

:class:`SEMResult` honours the result contract of :mod:`cimstats.models._result`:
``tidy(*, level=0.95)``, ``glance()``, ``summary()`` (a :class:`ResultSummary`),
``to_table_spec()``, ``vcov()``, ``dropped``, ``optimizer`` and
``save(folder)`` / :func:`cimstats.load_result`. The printed summary and the
publication table are built here, in one place, from the parameter table,
with numbers written by :class:`cimstats.render.NumberFormat`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import InadmissibleSolutionWarning, ModelSpecificationError
from cimstats.models._result import (FittedResult, OptimizerSummary, ResultSummary, dropped_frame,
                                     not_available)
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

from .bootstrap import bootstrap as _bootstrap
from .derivatives import complex_jacobian, label_env
from .inference import modification_indices, standardize_fn
from .partable import _terms

__all__ = ["SEMResult", "Spec", "optimizer_summary", "check_level", "SECTIONS"]

#: the parameter sections of the summary, in order: (key, heading)
SECTIONS = (("loadings", "Factor loadings"), ("regressions", "Regressions"), ("covariances", "Covariances"),
            ("variances", "Variances"), ("intercepts", "Intercepts and means"),
            ("defined", "Defined parameters"))
#: the operators the tidy table lists (constraint rows ``==``, ``<``, ``>`` are kept in ``table`` only)
TIDY_OPS = ("=~", "~", "~~", "~1", ":=")
#: decimals of the printed summary
SUMMARY_FORMAT = NumberFormat(decimals=3, p_decimals=3)


@dataclass(frozen=True)
class Spec:
    """The options of one fit (kept on the result)."""

    model: str
    estimator: str
    missing: str
    group: str | None
    group_labels: tuple
    cluster: str | None
    std_lv: bool
    meanstructure: bool
    fixed_x: bool
    group_equal: tuple
    group_partial: tuple
    information: str
    se: str
    test: str
    sampling_weights: str | None = None

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls, d) -> "Spec":
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in d and f.default is not dataclasses.MISSING:
                continue  # saved before the option existed
            v = d[f.name]
            kw[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)


def check_level(level) -> float:
    """``level`` as a float strictly between 0 and 1 (or a one-sentence error)."""
    try:
        lv = float(level)
    except (TypeError, ValueError):
        lv = math.nan
    if isinstance(level, bool) or not (0.0 < lv < 1.0):
        raise ModelSpecificationError(
            f"`level` is {level!r}; expected a confidence level strictly between 0 and 1, e.g. level=0.95.")
    return lv


def optimizer_summary(trace) -> OptimizerSummary:
    """The optimiser's trace of one SEM fit as an :class:`OptimizerSummary`."""
    start = tuple(float(v) for v in np.ravel(trace.get("start", ())))
    final = tuple(float(v) for v in np.ravel(trace.get("final", trace.get("start", ()))))
    gn = float(trace.get("grad_norm", math.nan))
    if not math.isfinite(gn):
        gn = math.inf  # an unknown gradient is reported as infinitely large (and compares equal after saving)
    it = int(trace.get("iterations", 0))
    converged = bool(trace.get("converged", False))
    method = str(trace.get("method", ""))
    message = (f"{'converged' if converged else 'stopped without converging'} after {it} iteration"
               f"{'' if it == 1 else 's'} ({method}); largest gradient element {gn:.2g}")
    checks = [f"largest element of the gradient at the solution: {gn:.2g}"
              + (" (below 1e-6)" if gn < 1e-6 else "")]
    if trace.get("newton_polish"):
        checks.append("one Newton step on the observed information refined the FIML solution")
    act = trace.get("active_inequalities")
    if act:
        checks.append(f"{len(act)} inequality constraint{'s' if len(act) != 1 else ''} bind at the solution "
                      f"(standard errors use the information restricted to them)")
    return OptimizerSummary(method=method, start=start, final=final, iterations=it,
                            evaluations=int(trace.get("evaluations", 0)), gradient_norm=gn,
                            converged=converged, message=message, checks=tuple(checks))


def p_text(fmt: NumberFormat, p) -> str:
    """``p = 0.031`` or ``p <0.001`` (no "=" before a threshold)."""
    t = fmt.p(p)
    return f"p {t}" if t[:1] in ("<", "\u2264", "\u2265", ">") else f"p = {t}"


def _pvals(est, se):
    with np.errstate(divide="ignore", invalid="ignore"):
        zst = np.where(se > 0, est / se, np.nan)
    return zst, 2 * stats.norm.sf(np.abs(zst))


def _section(op: str, lhs: str, rhs: str) -> str:
    if op == "=~":
        return "loadings"
    if op == "~":
        return "regressions"
    if op == "~~":
        return "variances" if lhs == rhs else "covariances"
    if op == "~1":
        return "intercepts"
    return "defined"


def _display(op: str, lhs: str, rhs: str) -> str:
    """A parameter as written in the model: ``visual =~ x1``, ``x1 ~ 1``, ``ab := a*b``."""
    return f"{lhs} ~ 1" if op == "~1" else f"{lhs} {op} {rhs}"


@dataclass(frozen=True, eq=False)
class SEMResult(FittedResult):
    """A fitted structural equation model (frozen).

    Attributes
    ----------
    spec : Spec
        The options used.
    table : pandas.DataFrame
        The parameter table: ``id, lhs, op, rhs, group, label, free, ustart,
        estimate, std_error, statistic, p_value, ci_lower, ci_upper, std_lv,
        std_lv_se, std_all, std_all_se`` plus ``user``, ``plabel``, ``exo``;
        defined parameters (``:=``) are rows with ``op == ':='``.
    nobs : int
        Rows used.
    n_dropped : int
        Rows set aside for missing values.
    dropped : pandas.DataFrame
        The rows set aside, per variable: ``variable`` and ``n_missing`` (how
        many of the rows set aside lacked that variable; a row missing two
        variables counts for both). The group and cluster columns count too.
    dropped_reasons : mapping
        Why rows were set aside: reason -> number of rows.
    optimizer : OptimizerSummary
        Method, start and final values, iterations, function evaluations,
        largest gradient element, convergence and the checks made.

    Notes
    -----
    A result read back with :func:`cimstats.load_result` gives the same
    ``tidy`` (at any level), ``glance``, ``vcov``, ``dropped``, ``summary``,
    ``to_table_spec``, ``optimizer``, ``fit_measures``,
    ``standardized_solution``, ``defined``, ``r_squared`` and path diagram;
    ``implied``, ``residuals``, ``modification_indices`` and ``bootstrap``
    need the data and raise ``ResultNotAvailableError`` on it.
    """

    kind: ClassVar[str] = "sem"

    spec: Spec
    table: pd.DataFrame
    nobs: int
    n_dropped: int
    dropped: pd.DataFrame
    optimizer: OptimizerSummary
    dropped_reasons: MappingProxyType
    _fit: MappingProxyType = dataclasses.field(repr=False)
    _vcov: np.ndarray = dataclasses.field(repr=False)
    _prep: object = dataclasses.field(repr=False)
    _z: np.ndarray = dataclasses.field(repr=False)
    _h1: list = dataclasses.field(repr=False)
    _saved: MappingProxyType | None = dataclasses.field(default=None, repr=False)

    # ------------------------------------------------------------------
    @classmethod
    def _build(cls, spec, prep, z, x, V, fm, trace, h1):
        base = prep.table
        cols = {c: base[c].to_numpy() for c in base.columns}
        free = cols["free"].astype(int)
        est = np.where(free > 0, x[np.maximum(free - 1, 0)], cols["ustart"].astype(float))
        se = np.where(free > 0, np.sqrt(np.maximum(np.diag(V)[np.maximum(free - 1, 0)], 0)), 0.0)
        for b in getattr(prep, "boundary", ()):
            se[free == b + 1] = np.nan
        defined = prep.constraints.defined
        names = list(defined)
        nd = len(names)
        if nd:
            def dfun(xx):
                env = label_env(prep.table, xx, defined)
                return np.stack([np.broadcast_to(env[n], np.shape(xx)[:-1]) for n in names], axis=-1)

            dv, J = complex_jacobian(dfun, x, batched=True)
            dse = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, V, J), 0))
        else:
            dv = dse = np.zeros(0)
        fn = standardize_fn(prep, "both")
        sv, J = complex_jacobian(fn, x, batched=True)
        sse = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, V, J), 0))
        half = sv.size // 2
        cons = prep.constraints.eq_rows
        nc = len(cons)
        nrow = len(free)
        ntot = nrow + nd + nc

        def ext(arr, dvals, cvals, dtype=None):
            out = np.concatenate([np.asarray(arr), np.asarray(dvals), np.asarray(cvals)])
            return out.astype(dtype) if dtype is not None else out

        tab = {
            "id": np.arange(1, ntot + 1),
            "lhs": ext(cols["lhs"].astype(object), names, [c[0] for c in cons], object),
            "op": ext(cols["op"].astype(object), [":="] * nd, [c[1] for c in cons], object),
            "rhs": ext(cols["rhs"].astype(object), [defined[n].text for n in names], [c[2] for c in cons], object),
            "user": ext(cols["user"], np.ones(nd), np.ones(nc), int),
            "group": ext(cols["group"], np.zeros(nd), np.zeros(nc), int),
            "free": ext(free, np.zeros(nd), np.zeros(nc), int),
            "ustart": ext(cols["ustart"].astype(float), np.full(nd, np.nan), np.full(nc, np.nan), float),
            "label": ext(cols["label"].astype(object), names, [""] * nc, object),
            "plabel": ext(cols["plabel"].astype(object), [""] * nd, [""] * nc, object),
            "exo": ext(cols["exo"], np.zeros(nd), np.zeros(nc), int),
            "estimate": ext(est, dv, np.full(nc, np.nan), float),
            "std_error": ext(se, dse, np.full(nc, np.nan), float),
            "std_lv": ext(sv[:half], [], np.full(nc, np.nan), float),
            "std_lv_se": ext(sse[:half], [], np.full(nc, np.nan), float),
            "std_all": ext(sv[half:], [], np.full(nc, np.nan), float),
            "std_all_se": ext(sse[half:], [], np.full(nc, np.nan), float),
        }
        is_param = np.concatenate([np.ones(nrow + nd, bool), np.zeros(nc, bool)])
        has_se = np.concatenate([free > 0, np.ones(nd, bool), np.zeros(nc, bool)])
        estv = tab["estimate"]
        sev = tab["std_error"]
        zst, p = _pvals(estv, sev)
        q = stats.norm.ppf(0.975)
        tab["statistic"] = np.where(has_se, zst, np.nan)
        tab["p_value"] = np.where(has_se, p, np.nan)
        tab["ci_lower"] = np.where(has_se, estv - q * sev, np.where(is_param, estv, np.nan))
        tab["ci_upper"] = np.where(has_se, estv + q * sev, np.where(is_param, estv, np.nan))
        tab = pd.DataFrame(tab)
        obj = cls(spec=spec, table=tab, nobs=int(round(prep.problem.N)), n_dropped=int(sum(prep.dropped.values())),
                  dropped=dropped_frame(getattr(prep, "dropped_by_variable", {})),
                  optimizer=optimizer_summary(trace), dropped_reasons=MappingProxyType(dict(prep.dropped)),
                  _fit=MappingProxyType(dict(fm)), _vcov=V, _prep=prep, _z=z, _h1=h1)
        obj._check_admissible()
        return obj

    def _check_admissible(self):
        prep = self._prep
        t = self.table
        op = t["op"].to_numpy()
        lhs = t["lhs"].to_numpy()
        rhs = t["rhs"].to_numpy()
        est = t["estimate"].to_numpy(dtype=float)
        neg = np.where((op == "~~") & (lhs == rhs) & (est < 0))[0]
        if len(neg):
            i = neg[0]
            g = int(t["group"].to_numpy()[i])
            warnings.warn(
                f"The solution is inadmissible: the variance of '{lhs[i]}'"
                + (f" in group {g}" if len(self.spec.group_labels) > 1 else "")
                + f" is negative ({est[i]:.4g}); check for an over-extracted factor or fix it at a small value.",
                InadmissibleSolutionWarning, stacklevel=4,
            )
            return
        x = prep.problem.x_of(self._z)
        for gi, gk in enumerate(prep.problem.groups):
            B, P, a = gk.matrices(x)
            A = np.linalg.inv(np.eye(gk.m) - B)
            C = A @ P @ A.T
            lvi = [gk.pos[v] for v in gk.lv]
            ovi = list(range(gk.p))
            for name, M in (("latent covariance matrix", C[np.ix_(lvi, lvi)] if lvi else None),
                            ("residual covariance matrix of the observed variables", P[np.ix_(ovi, ovi)])):
                if M is None or M.size == 0:
                    continue
                ev = np.linalg.eigvalsh(M)
                tol = -1e-10 * max(1.0, abs(ev).max())
                if name.startswith("residual") and np.allclose(M, np.diag(np.diag(M))):
                    continue
                if ev.min() < tol:
                    warnings.warn(
                        f"The solution is inadmissible: the {name}"
                        + (f" in group '{self.spec.group_labels[gi]}'" if len(self.spec.group_labels) > 1 else "")
                        + f" is not positive definite (smallest eigenvalue {ev.min():.3g}); "
                        "look for correlations beyond +/-1 and simplify the model.",
                        InadmissibleSolutionWarning, stacklevel=4,
                    )
                    return

    # ------------------------------------------------------------------ saving
    def _state(self) -> dict:
        return {"spec": self.spec.to_dict(), "table": self.table, "nobs": int(self.nobs),
                "n_dropped": int(self.n_dropped), "dropped": self.dropped,
                "dropped_reasons": dict(self.dropped_reasons), "optimizer": self.optimizer.to_dict(),
                "fit": dict(self._fit), "vcov": np.asarray(self._vcov, dtype=float),
                "r_squared": self.r_squared()}

    @classmethod
    def _from_state(cls, state: dict) -> "SEMResult":
        return cls(spec=Spec.from_dict(state["spec"]), table=state["table"], nobs=int(state["nobs"]),
                   n_dropped=int(state["n_dropped"]), dropped=dropped_frame(state["dropped"]),
                   optimizer=OptimizerSummary.from_dict(state["optimizer"]),
                   dropped_reasons=MappingProxyType(dict(state["dropped_reasons"])),
                   _fit=MappingProxyType(dict(state["fit"])), _vcov=np.asarray(state["vcov"], dtype=float),
                   _prep=None, _z=None, _h1=None,
                   _saved=MappingProxyType({"r_squared": state["r_squared"]}))

    def _needs_data(self, what: str) -> None:
        if self._prep is None:
            raise not_available(what, "structural equation model")

    # ------------------------------------------------------------------ estimates
    def _params_mask(self):
        return (self.table["free"] > 0).to_numpy()

    def _free_rows(self) -> pd.DataFrame:
        return self.table[self._params_mask()].drop_duplicates("free").sort_values("free")

    def _names(self, t: pd.DataFrame) -> list[str]:
        """``lhs op rhs`` of each row; in a multigroup model rows of groups 2.. end in ``.g2`` ... (as lavaan)."""
        names = _terms(t)
        if len(self.spec.group_labels) > 1:
            names = [n if g <= 1 else f"{n}.g{g}" for n, g in zip(names, t["group"].to_numpy())]
        return names

    @property
    def params(self) -> pd.Series:
        """Free parameter estimates (one per free index), named ``lhs op rhs`` (``.g2`` ... for later groups)."""
        t = self._free_rows()
        return pd.Series(t["estimate"].to_numpy(), index=self._names(t), name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        t = self._free_rows()
        return pd.Series(t["std_error"].to_numpy(), index=self._names(t), name="std_error")

    @property
    def pvalues(self) -> pd.Series:
        t = self._free_rows()
        return pd.Series(t["p_value"].to_numpy(), index=self._names(t), name="p_value")

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the free parameters (rows and columns named as :attr:`params`)."""
        idx = self._names(self._free_rows())
        return pd.DataFrame(np.asarray(self._vcov, dtype=float), index=idx, columns=idx)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald confidence limits of every parameter in :meth:`tidy` (index ``term``)."""
        t = self.tidy(level=level)
        return pd.DataFrame({"ci_lower": t["ci_lower"].to_numpy(), "ci_upper": t["ci_upper"].to_numpy()},
                            index=pd.Index(t["term"], name="term"))

    @property
    def loglik(self) -> float:
        return self._fit["logl"]

    @property
    def aic(self) -> float:
        return self._fit["aic"]

    @property
    def bic(self) -> float:
        return self._fit["bic"]

    def fit_measures(self) -> dict:
        """lavaan-named fit measures (``chisq, df, pvalue, cfi, tli, rmsea, srmr, aic, bic, logl`` ...).

        The names are lavaan's ``fitMeasures()`` names, kept so that results
        can be compared with lavaan key by key; :meth:`glance` gives the main
        ones under the package's column names (``p_value``...).
        """
        return dict(self._fit)

    def glance(self) -> pd.DataFrame:
        """One row of fit statistics.

        Columns: ``nobs, n_dropped, estimator, npar, chisq, df, p_value, cfi,
        tli, rmsea, rmsea_ci_lower, rmsea_ci_upper, srmr, aic, bic, loglik,
        converged``; with a scaled test also ``chisq_scaled, p_value_scaled``;
        with robust indices ``cfi_robust, tli_robust, rmsea_robust,
        rmsea_robust_ci_lower, rmsea_robust_ci_upper``.
        """
        f = self._fit
        row = dict(nobs=self.nobs, n_dropped=self.n_dropped, estimator=self.spec.estimator,
                   npar=f["npar"], chisq=f["chisq"], df=f["df"], p_value=f["pvalue"], cfi=f["cfi"],
                   tli=f["tli"], rmsea=f["rmsea"], rmsea_ci_lower=f["rmsea.ci.lower"],
                   rmsea_ci_upper=f["rmsea.ci.upper"], srmr=f["srmr"], aic=f["aic"], bic=f["bic"],
                   loglik=f["logl"], converged=bool(self.optimizer.converged))
        if "chisq.scaled" in f:
            row.update(chisq_scaled=f["chisq.scaled"], p_value_scaled=f["pvalue.scaled"])
        if "cfi.robust" in f:
            row.update(cfi_robust=f["cfi.robust"], tli_robust=f["tli.robust"], rmsea_robust=f["rmsea.robust"],
                       rmsea_robust_ci_lower=f["rmsea.ci.lower.robust"],
                       rmsea_robust_ci_upper=f["rmsea.ci.upper.robust"])
        return pd.DataFrame([row])

    def _rows(self, level: float) -> pd.DataFrame:
        """The tidy rows plus ``free`` (whether a row has a standard error of its own)."""
        t = self.table[self.table["op"].isin(TIDY_OPS)]
        est = t["estimate"].to_numpy(dtype=float)
        se = t["std_error"].to_numpy(dtype=float)
        lo = t["ci_lower"].to_numpy(dtype=float).copy()
        hi = t["ci_upper"].to_numpy(dtype=float).copy()
        if level != 0.95:
            q = stats.norm.ppf(0.5 + level / 2)
            has = se > 0
            lo[has] = est[has] - q * se[has]
            hi[has] = est[has] + q * se[has]
        out = pd.DataFrame({
            "term": _terms(t), "lhs": t["lhs"].to_numpy(), "op": t["op"].to_numpy(),
            "rhs": t["rhs"].to_numpy(), "label": t["label"].to_numpy(),
            "group": t["group"].to_numpy(), "estimate": est, "std_error": se,
            "statistic": t["statistic"].to_numpy(dtype=float), "df": np.nan,
            "p_value": t["p_value"].to_numpy(dtype=float), "ci_lower": lo, "ci_upper": hi,
            "std_lv": t["std_lv"].to_numpy(dtype=float), "std_all": t["std_all"].to_numpy(dtype=float),
        })
        if len(self.spec.group_labels) > 1:
            out["group_label"] = [self.spec.group_labels[g - 1] if g > 0 else "" for g in out["group"]]
        out["has_se"] = ((t["free"].to_numpy() > 0) | (t["op"].to_numpy() == ":=")) & np.isfinite(se) & (se > 0)
        return out

    def tidy(self, *, level: float = 0.95, conf_level: float | None = None) -> pd.DataFrame:
        """One row per parameter (free, fixed and defined).

        Parameters
        ----------
        level : float
            Confidence level of the Wald intervals (default 0.95).
        conf_level : float, optional
            Deprecated name of ``level`` (kept for one release).

        Returns
        -------
        pandas.DataFrame
            Columns ``term, lhs, op, rhs, label, group, estimate, std_error,
            statistic, df, p_value, ci_lower, ci_upper, std_lv, std_all`` (and
            ``group_label`` in a multigroup model). ``term`` is ``lhs op rhs``
            without spaces (``visual=~x1``, ``x1~1``); fixed parameters have
            standard error 0 and their value as both interval limits; a
            parameter on a binding inequality has no standard error (NaN).
        """
        if conf_level is not None:
            warnings.warn("`conf_level=` is deprecated; use `level=` (the same for every result).",
                          DeprecationWarning, stacklevel=2)
            level = conf_level
        return self._rows(check_level(level)).drop(columns="has_se")

    def standardized_solution(self, type: str = "std.all") -> pd.DataFrame:
        """Standardized estimates with delta-method standard errors (lavaan's standardizedSolution)."""
        col = {"std.all": "std_all", "std.lv": "std_lv"}.get(type)
        if col is None:
            raise ModelSpecificationError(f"`type` is {type!r}; expected 'std.all' or 'std.lv'.")
        t = self.table[self.table["op"].isin(TIDY_OPS)]
        est = t[col].to_numpy(dtype=float)
        se = t[col + "_se"].to_numpy(dtype=float)
        zst, p = _pvals(est, se)
        q = stats.norm.ppf(0.975)
        return pd.DataFrame({"lhs": t["lhs"].to_numpy(), "op": t["op"].to_numpy(), "rhs": t["rhs"].to_numpy(),
                             "group": t["group"].to_numpy(), "label": t["label"].to_numpy(),
                             "estimate": est, "std_error": se, "statistic": zst, "p_value": p,
                             "ci_lower": est - q * se, "ci_upper": est + q * se})

    def defined(self) -> pd.DataFrame:
        """Defined parameters (``:=``) with delta-method standard errors."""
        t = self.tidy()
        return t[t["op"] == ":="].reset_index(drop=True)

    def r_squared(self) -> pd.DataFrame:
        """Explained variance of every endogenous variable (columns ``group, variable, r2``)."""
        if self._prep is None:
            return self._saved["r_squared"].copy()
        prep = self._prep
        x = prep.problem.x_of(self._z)
        endo = prep.roles["endo"]
        rows = []
        for gi, gk in enumerate(prep.problem.groups):
            B, P, a = gk.matrices(x)
            A = np.linalg.inv(np.eye(gk.m) - B)
            C = A @ P @ A.T
            for v in gk.ov + gk.lv:
                if v in endo:
                    i = gk.pos[v]
                    rows.append(dict(group=gi + 1, variable=v, r2=float(1.0 - P[i, i] / C[i, i])))
        return pd.DataFrame(rows, columns=["group", "variable", "r2"])

    def implied(self) -> dict:
        """Model-implied covariance matrix (and means) per group label."""
        self._needs_data("The model-implied moments")
        prep = self._prep
        x = prep.problem.x_of(self._z)
        out = {}
        for lab, gk in zip(self.spec.group_labels, prep.problem.groups):
            S, mu, *_ = gk.implied(x)
            out[lab] = {"cov": pd.DataFrame(S, index=gk.ov, columns=gk.ov),
                        "mean": pd.Series(mu if gk.meanstructure else gk.ybar, index=gk.ov)}
        return out

    def residuals(self) -> dict:
        """Observed minus implied covariances (and means) per group label (raw scale)."""
        self._needs_data("The residual covariances")
        out = {}
        imp = self.implied()
        for (lab, v), h in zip(imp.items(), self._h1):
            ov = v["cov"].index
            out[lab] = {"cov": pd.DataFrame(h["S"], index=ov, columns=ov) - v["cov"],
                        "mean": pd.Series(h["ybar"], index=ov) - v["mean"]}
        return out

    def modification_indices(self, *, sort: bool = True, minimum: float = 0.0) -> pd.DataFrame:
        """Modification indices (score tests) with expected parameter changes.

        Candidates follow lavaan's ``modindices()``: cross-loadings, residual
        covariances among indicators, latent (co)variances, regressions among
        the variables in regressions, and fixed parameters (marker loadings,
        covariate moments) tested at their fixed value; candidates equivalent
        to parameters already in the model are not reported. Under FIML the
        expected information of the incomplete data is used.

        Columns: ``lhs, op, rhs, group, mi, epc, sepc.lv, sepc.all``.

        Validated against: lavaan 0.6-14 ``modindices()`` (tests/reference/sem.R).
        """
        self._needs_data("Modification indices")
        x = self._prep.problem.x_of(self._z)
        mi = modification_indices(self._prep, x)
        if len(mi):
            mi = mi[mi["mi"] >= minimum]
            if sort:
                mi = mi.sort_values("mi", ascending=False)
        return mi.reset_index(drop=True)

    def bootstrap(self, n_boot: int = 1000, **kw):
        """Nonparametric (or cluster) bootstrap; see :func:`cimstats.models.sem.bootstrap.bootstrap`."""
        self._needs_data("The bootstrap")
        return _bootstrap(self, n_boot=n_boot, **kw)

    # ------------------------------------------------------------------ printed forms
    def _header(self) -> tuple[str, list[str]]:
        s = self.spec
        how = "FIML" if s.missing == "fiml" else "complete cases"
        title = f"Structural equation model fitted by {s.estimator} ({how})"
        lines = [f"Observations: {self.nobs} used, {self.n_dropped} set aside"
                 + (" (" + "; ".join(f"{k}: {v}" for k, v in self.dropped_reasons.items()) + ")"
                    if self.n_dropped else "")]
        if len(s.group_labels) > 1:
            lines.append(f"Groups ({s.group}): " + ", ".join(s.group_labels)
                         + (f"; held equal: {', '.join(s.group_equal)}" if s.group_equal else ""))
        if s.cluster:
            lines.append(f"Clusters: {s.cluster}")
        lines.append(f"Free parameters: {self._fit['npar']:g}; standard errors: {s.se} ({s.information} information);"
                     f" test: {s.test}")
        return title, lines

    def _fit_rows(self, fmt: NumberFormat) -> list[tuple[str, Cell]]:
        f = self._fit

        def num(v, kind="number"):
            v = float(v)
            return Cell(fmt.estimate(v), kind=kind, value=v if math.isfinite(v) else None)

        def pv(v):
            v = float(v)
            return Cell(fmt.p(v), kind="p_value", value=v if math.isfinite(v) else None)

        df = float(f["df"])
        df_cell = (Cell(fmt.count(int(df)), kind="count", value=int(df)) if math.isfinite(df) and df.is_integer()
                   else num(df))
        rows = [("Chi-square", num(f["chisq"])), ("Degrees of freedom", df_cell), ("p", pv(f["pvalue"]))]
        if "chisq.scaled" in f:
            rows += [("Scaled chi-square", num(f["chisq.scaled"])),
                     ("Scaling factor", num(f["chisq.scaling.factor"])), ("p (scaled)", pv(f["pvalue.scaled"]))]
        rows += [("CFI", num(f["cfi"])), ("TLI", num(f["tli"])), ("RMSEA", num(f["rmsea"])),
                 ("RMSEA 90% CI", Cell(fmt.ci(f["rmsea.ci.lower"], f["rmsea.ci.upper"]), kind="ci")),
                 ("SRMR", num(f["srmr"]))]
        if "cfi.robust" in f:
            rows += [("Robust CFI", num(f["cfi.robust"])), ("Robust TLI", num(f["tli.robust"])),
                     ("Robust RMSEA", num(f["rmsea.robust"])),
                     ("Robust RMSEA 90% CI", Cell(fmt.ci(f["rmsea.ci.lower.robust"], f["rmsea.ci.upper.robust"]),
                                                  kind="ci"))]
        rows += [("Log-likelihood", num(f["logl"])), ("AIC", num(f["aic"])), ("BIC", num(f["bic"]))]
        return rows

    def _section_rows(self, rows: pd.DataFrame, fmt: NumberFormat, *, label_col: bool, z_col: bool,
                      n_cols: int, group_heads: bool, prefix: str = "") -> list[Row]:
        """The body rows of one parameter section (group headings in a multigroup model)."""
        out: list[Row] = []
        for g, sub in rows.groupby("group", sort=False):
            if group_heads and g > 0:
                out.append(Row.group(f"{prefix}Group {self.spec.group_labels[g - 1]}", n_cols))
            for r in sub.itertuples(index=False):
                free = bool(r.has_se)
                cells = [Cell(_display(r.op, r.lhs, r.rhs))]
                if label_col:
                    cells.append(Cell(str(r.label or "")))
                est = float(r.estimate)
                cells.append(Cell(fmt.estimate(est), kind="estimate", value=est if math.isfinite(est) else None))
                se = float(r.std_error)
                cells.append(Cell(fmt.estimate(se) if free else fmt.missing, kind="estimate",
                                  value=se if free else None))
                if z_col:
                    zv = float(r.statistic)
                    cells.append(Cell(fmt.estimate(zv) if free and math.isfinite(zv) else fmt.missing, kind="number",
                                      value=zv if free and math.isfinite(zv) else None))
                pvv = float(r.p_value)
                ok = free and math.isfinite(pvv)
                cells.append(Cell(fmt.p(pvv) if ok else fmt.missing, kind="p_value", value=pvv if ok else None))
                cells.append(Cell(fmt.ci(r.ci_lower, r.ci_upper) if free else fmt.missing, kind="ci"))
                sa = float(r.std_all)
                cells.append(Cell(fmt.estimate(sa) if math.isfinite(sa) else fmt.missing, kind="estimate",
                                  value=sa if math.isfinite(sa) else None))
                out.append(Row(tuple(cells)))
        return out

    def _parameter_header(self, level: float, *, label_col: bool, z_col: bool) -> tuple:
        cols = ["Parameter"] + (["Label"] if label_col else []) + ["Estimate", "SE"] + (["z"] if z_col else []) \
            + ["p", f"{level:.0%} CI", "Std. all"]
        return (tuple(Cell(c, kind="text" if c in ("Parameter", "Label") else "number") for c in cols),)

    def summary(self, format: str | None = None):
        """The fit statistics and the parameter estimates, section by section.

        Returns
        -------
        ResultSummary
            Header lines (estimator, sample, groups, standard errors), a
            "Model fit" table, then one table per parameter section that the
            model has: factor loadings, regressions, covariances, variances,
            intercepts and means, defined parameters (columns Parameter,
            Label, Estimate, SE, z, p, 95% CI, Std. all; a multigroup model
            has a heading row per group). ``str()`` gives text;
            ``to_html()``, ``to_latex()`` and ``to_markdown()`` the other forms.

        Notes
        -----
        ``summary(format="text" | "html" | "latex" | "markdown")`` still
        returns the text of that form, with a ``DeprecationWarning``; use
        ``str(fit.summary())`` or ``fit.summary().to_html()`` instead.
        """
        s = self._summary()
        if format is None:
            return s
        writers = {"text": s.to_text, "html": s.to_html, "latex": s.to_latex, "markdown": s.to_markdown}
        if format not in writers:
            raise ModelSpecificationError(
                f"`format` is {format!r}; expected 'text', 'html', 'latex' or 'markdown' (and `format=` is "
                f"deprecated: use str(fit.summary()) or fit.summary().to_html()).")
        warnings.warn("`summary(format=...)` is deprecated; summary() returns an object: use str(fit.summary()), "
                      "fit.summary().to_html(), .to_latex() or .to_markdown().", DeprecationWarning, stacklevel=2)
        return writers[format]()

    def _summary(self) -> ResultSummary:
        fmt = SUMMARY_FORMAT
        title, lines = self._header()
        tables = [TableSpec(title="Model fit", header=((Cell("Statistic"), Cell("Value", kind="number")),),
                            body=tuple(Row((Cell(k), v)) for k, v in self._fit_rows(fmt)))]
        rows = self._rows(0.95)
        keys = [_section(o, l, r) for o, l, r in zip(rows["op"], rows["lhs"], rows["rhs"])]
        multi = len(self.spec.group_labels) > 1
        for key, heading in SECTIONS:
            sub = rows[[k == key for k in keys]]
            if not len(sub):
                continue
            label_col = bool((sub["label"].astype(str) != "").any())
            header = self._parameter_header(0.95, label_col=label_col, z_col=True)
            n_cols = len(header[0])
            body = self._section_rows(sub, fmt, label_col=label_col, z_col=True, n_cols=n_cols,
                                      group_heads=multi)
            tables.append(TableSpec(title=heading, header=header, body=tuple(body)))
        notes = [f"Optimiser: {self.optimizer.message}."]
        if not len(rows[rows["has_se"]]) == len(rows):
            notes.append(f"{SUMMARY_FORMAT.missing}: fixed parameter (no standard error, test or interval).")
        return ResultSummary(title=title, lines=tuple(lines), tables=tuple(tables), notes=tuple(notes))

    def to_table_spec(self, *, title: str | None = None, number=None, number_format: NumberFormat | None = None,
                      level: float = 0.95) -> TableSpec:
        """The estimates as one publication table (:class:`cimstats.render.TableSpec`).

        One row group per parameter section (factor loadings, regressions,
        covariances, variances, intercepts and means, defined parameters; per
        group in a multigroup model). Columns: Parameter, Label (when the
        model labels parameters), Estimate, SE, p, CI (at ``level``), Std.
        all. The fit statistics and the sample are written as notes.

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(1)
        >>> f = rng.normal(size=300)
        >>> d = pd.DataFrame({f"y{i}": 0.8 * f + rng.normal(scale=0.6, size=300) for i in range(1, 5)})
        >>> spec = cimstats.sem("efficacy =~ y1 + y2 + y3 + y4", d).to_table_spec()
        >>> [row[0].text for row in spec.grid() if row[0] is not None][:3]
        ['Parameter', 'Factor loadings', 'efficacy =~ y1']
        """
        fmt = number_format or NumberFormat()
        level = check_level(level)
        rows = self._rows(level)
        keys = [_section(o, l, r) for o, l, r in zip(rows["op"], rows["lhs"], rows["rhs"])]
        label_col = bool((rows["label"].astype(str) != "").any())
        header = self._parameter_header(level, label_col=label_col, z_col=False)
        n_cols = len(header[0])
        multi = len(self.spec.group_labels) > 1
        body: list[Row] = []
        for key, heading in SECTIONS:
            sub = rows[[k == key for k in keys]]
            if not len(sub):
                continue
            if multi and key != "defined":
                for g, gsub in sub.groupby("group", sort=False):
                    body.append(Row.group(f"{heading}: group {self.spec.group_labels[g - 1]}", n_cols))
                    body += self._section_rows(gsub, fmt, label_col=label_col, z_col=False, n_cols=n_cols,
                                               group_heads=False)
            else:
                body.append(Row.group(heading, n_cols))
                body += self._section_rows(sub, fmt, label_col=label_col, z_col=False, n_cols=n_cols,
                                           group_heads=False)
        f = self._fit
        s = self.spec
        fit_note = (f"Model fit: chi-square({fmt.estimate(f['df'], 0)}) = {fmt.estimate(f['chisq'])}, "
                    f"{p_text(fmt, f['pvalue'])}; CFI {fmt.estimate(f['cfi'], 3)}; TLI {fmt.estimate(f['tli'], 3)}; "
                    f"RMSEA {fmt.estimate(f['rmsea'], 3)} {fmt.ci(f['rmsea.ci.lower'], f['rmsea.ci.upper'], 3)}; "
                    f"SRMR {fmt.estimate(f['srmr'], 3)}.")
        if "chisq.scaled" in f:
            fit_note += (f" Scaled chi-square {fmt.estimate(f['chisq.scaled'])} (scaling factor "
                         f"{fmt.estimate(f['chisq.scaling.factor'], 3)}), {p_text(fmt, f['pvalue.scaled'])}.")
        how = "full-information ML (FIML)" if s.missing == "fiml" else "complete cases"
        notes = [f"{s.estimator} estimation on {how}: n = {fmt.count(self.nobs)} used, "
                 f"{fmt.count(self.n_dropped)} set aside for missing values"
                 + (" (" + "; ".join(f"{k}: {v}" for k, v in self.dropped_reasons.items()) + ")"
                    if self.n_dropped else "") + ".",
                 fit_note,
                 f"SE = standard error ({s.se}); CI = Wald confidence interval; Std. all = standardized estimate "
                 f"(latent and observed variables); {fmt.missing} = fixed parameter."]
        return TableSpec(title=title or "Structural equation model estimates", header=header, body=tuple(body),
                         notes=tuple(notes), number=number)
