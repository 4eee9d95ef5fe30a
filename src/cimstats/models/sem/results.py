"""The frozen result of a fitted SEM; every output is a view of its parameter table."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import InadmissibleSolutionWarning

from .bootstrap import bootstrap as _bootstrap
from .derivatives import complex_jacobian, label_env
from .inference import modification_indices, standardize_fn
from .partable import _terms

__all__ = ["SEMResult"]


def _pvals(est, se):
    with np.errstate(divide="ignore", invalid="ignore"):
        zst = np.where(se > 0, est / se, np.nan)
    return zst, 2 * stats.norm.sf(np.abs(zst))


@dataclass(frozen=True)
class SEMResult:
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
        Rows set aside; ``dropped`` gives the reasons and counts.
    optimizer : dict
        Start and final values, iterations, gradient norm, converged flag.
    """

    spec: object
    table: pd.DataFrame
    nobs: int
    n_dropped: int
    dropped: MappingProxyType
    optimizer: MappingProxyType
    _fit: MappingProxyType = field(repr=False)
    _vcov: np.ndarray = field(repr=False)
    _prep: object = field(repr=False)
    _z: np.ndarray = field(repr=False)
    _h1: list = field(repr=False)

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
        obj = cls(spec=spec, table=tab, nobs=int(prep.problem.N), n_dropped=int(sum(prep.dropped.values())),
                  dropped=MappingProxyType(dict(prep.dropped)), optimizer=MappingProxyType(dict(trace)),
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

    # ------------------------------------------------------------------
    def _params_mask(self):
        return (self.table["free"] > 0).to_numpy()

    @property
    def params(self) -> pd.Series:
        """Free parameter estimates (one per free index), named ``lhs op rhs``."""
        t = self.table[self._params_mask()].drop_duplicates("free").sort_values("free")
        return pd.Series(t["estimate"].to_numpy(), index=_terms(t), name="estimate")

    @property
    def std_errors(self) -> pd.Series:
        t = self.table[self._params_mask()].drop_duplicates("free").sort_values("free")
        return pd.Series(t["std_error"].to_numpy(), index=_terms(t), name="std_error")

    @property
    def pvalues(self) -> pd.Series:
        t = self.table[self._params_mask()].drop_duplicates("free").sort_values("free")
        return pd.Series(t["p_value"].to_numpy(), index=_terms(t), name="p_value")

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the free parameters."""
        t = self.table[self._params_mask()].drop_duplicates("free").sort_values("free")
        idx = _terms(t)
        return pd.DataFrame(self._vcov, index=idx, columns=idx)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        q = stats.norm.ppf(0.5 + level / 2)
        t = self.tidy()
        return pd.DataFrame({"ci_lower": t["estimate"] - q * t["std_error"],
                             "ci_upper": t["estimate"] + q * t["std_error"]}).set_index(t["term"])

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
        """lavaan-named fit measures (``chisq, df, pvalue, cfi, tli, rmsea, srmr, aic, bic, logl`` ...)."""
        return dict(self._fit)

    def glance(self) -> pd.DataFrame:
        """One row: n used/dropped, estimator, chi-square, df, p, CFI, TLI, RMSEA (90% CI), SRMR, AIC, BIC."""
        f = self._fit
        row = dict(nobs=self.nobs, n_dropped=self.n_dropped, estimator=self.spec.estimator,
                   npar=f["npar"], chisq=f["chisq"], df=f["df"], pvalue=f["pvalue"], cfi=f["cfi"],
                   tli=f["tli"], rmsea=f["rmsea"], rmsea_ci_lower=f["rmsea.ci.lower"],
                   rmsea_ci_upper=f["rmsea.ci.upper"], srmr=f["srmr"], aic=f["aic"], bic=f["bic"],
                   loglik=f["logl"], converged=self.optimizer.get("converged"))
        if "chisq.scaled" in f:
            row.update(chisq_scaled=f["chisq.scaled"], pvalue_scaled=f["pvalue.scaled"])
        if "cfi.robust" in f:
            row.update(cfi_robust=f["cfi.robust"], tli_robust=f["tli.robust"], rmsea_robust=f["rmsea.robust"],
                       rmsea_robust_ci_lower=f["rmsea.ci.lower.robust"],
                       rmsea_robust_ci_upper=f["rmsea.ci.upper.robust"])
        return pd.DataFrame([row])

    def tidy(self, *, conf_level: float = 0.95) -> pd.DataFrame:
        """One row per parameter (free, fixed and defined).

        Columns: ``term, lhs, op, rhs, label, group, estimate, std_error,
        statistic, df, p_value, ci_lower, ci_upper, std_lv, std_all``.
        """
        t = self.table[self.table["op"].isin(["=~", "~", "~~", "~1", ":="])].copy()
        if conf_level != 0.95:
            q = stats.norm.ppf(0.5 + conf_level / 2)
            has = t["std_error"] > 0
            t.loc[has, "ci_lower"] = t.loc[has, "estimate"] - q * t.loc[has, "std_error"]
            t.loc[has, "ci_upper"] = t.loc[has, "estimate"] + q * t.loc[has, "std_error"]
        out = pd.DataFrame({
            "term": _terms(t), "lhs": t["lhs"].to_numpy(), "op": t["op"].to_numpy(),
            "rhs": t["rhs"].to_numpy(), "label": t["label"].to_numpy(),
            "group": t["group"].to_numpy(), "estimate": t["estimate"].to_numpy(),
            "std_error": t["std_error"].to_numpy(), "statistic": t["statistic"].to_numpy(),
            "df": np.nan, "p_value": t["p_value"].to_numpy(), "ci_lower": t["ci_lower"].to_numpy(),
            "ci_upper": t["ci_upper"].to_numpy(), "std_lv": t["std_lv"].to_numpy(),
            "std_all": t["std_all"].to_numpy(),
        })
        if len(self.spec.group_labels) > 1:
            out["group_label"] = [self.spec.group_labels[g - 1] if g > 0 else "" for g in out["group"]]
        return out

    def standardized_solution(self, type: str = "std.all") -> pd.DataFrame:
        """Standardized estimates with delta-method standard errors (lavaan's standardizedSolution)."""
        col = {"std.all": "std_all", "std.lv": "std_lv"}.get(type)
        if col is None:
            raise ValueError("`type` must be 'std.all' or 'std.lv'.")
        t = self.table[self.table["op"].isin(["=~", "~", "~~", "~1", ":="])]
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
                    rows.append(dict(group=gi + 1, variable=v, r2=1.0 - P[i, i] / C[i, i]))
        return pd.DataFrame(rows)

    def implied(self) -> dict:
        """Model-implied covariance matrix (and means) per group label."""
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

        x = self._prep.problem.x_of(self._z)
        mi = modification_indices(self._prep, x)
        if len(mi):
            mi = mi[mi["mi"] >= minimum]
            if sort:
                mi = mi.sort_values("mi", ascending=False)
        return mi.reset_index(drop=True)

    def bootstrap(self, n_boot: int = 1000, **kw):
        """Nonparametric (or cluster) bootstrap; see :func:`cimstats.models.sem.bootstrap.bootstrap`."""
        return _bootstrap(self, n_boot=n_boot, **kw)

    def summary(self, format: str = "text") -> str:
        """Fit statistics then the parameter table, as ``"text"``, ``"html"`` or ``"latex"``."""
        f = self._fit
        head = [f"SEM fitted by {self.spec.estimator} ({'FIML' if self.spec.missing == 'fiml' else 'complete cases'})",
                f"n used = {self.nobs}, n dropped = {self.n_dropped}",
                f"chisq = {f['chisq']:.3f}, df = {f['df']:.0f}, p = {f['pvalue']:.4g}",
                f"CFI = {f['cfi']:.3f}, TLI = {f['tli']:.3f}, RMSEA = {f['rmsea']:.3f} "
                f"[{f['rmsea.ci.lower']:.3f}, {f['rmsea.ci.upper']:.3f}], SRMR = {f['srmr']:.3f}"]
        if "chisq.scaled" in f:
            head.append(f"scaled chisq = {f['chisq.scaled']:.3f} (scaling factor {f['chisq.scaling.factor']:.3f})")
        t = self.tidy()
        cols = ["term", "group", "estimate", "std_error", "p_value", "std_all"]
        t = t[cols]
        if format == "text":
            return "\n".join(head + [t.to_string(index=False, float_format=lambda v: f"{v:.3f}")])
        if format == "html":
            import html as _html

            lines = "".join(f"<p>{_html.escape(h)}</p>" for h in head)
            return lines + t.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        if format == "latex":
            table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                     "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}

            def esc(v):
                return "".join(table.get(ch, ch) for ch in str(v))

            rows = [" & ".join(esc(c) for c in cols) + r" \\"]
            for r in t.itertuples(index=False):
                rows.append(" & ".join(esc(v) if isinstance(v, str) else f"{v:.3f}" if isinstance(v, float)
                                       else esc(v) for v in r) + r" \\")
            body = "\n".join(rows)
            return ("\n".join(esc(h) + r" \\" for h in head) + "\n"
                    + "\\begin{tabular}{lrrrrr}\n\\hline\n" + body + "\n\\hline\n\\end{tabular}")
        raise ValueError("`format` must be 'text', 'html' or 'latex'.")

    def _repr_html_(self) -> str:
        return self.tidy().to_html(index=False, float_format=lambda v: f"{v:.3f}")
