"""Fit a structural equation model: the public verb :func:`sem`.

The flow is syntax -> parameter table -> group kernels (arrays) -> Fisher
scoring -> information / sandwich -> fit measures -> standardized and defined
parameters -> :class:`~.results.SEMResult` (frozen).
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pandas as pd
from scipy import linalg as sla
from scipy import stats

from cimstats.errors import (
    ConvergenceWarning, EstimationError, InadmissibleSolutionWarning, MissingDataWarning,
    ModelSpecificationError,
)

from .derivatives import complex_jacobian, label_env
from .estimation import SEMProblem
from .fitmeasures import fit_measures, srmr_group
from .kernel import GroupKernel, chol_inv_logdet, group_loglik
from . import inference as inf
from .partable import build_partable, classify_variables
from .results import SEMResult, Spec
from .syntax import parse_model, split_levels
from .twolevel_results import check_twolevel_options, sem_twolevel
from cimstats.io.survey import analysis_frame
from cimstats.models.checks import check_model_columns, check_unique_columns
from .semopy_adapter import fit_semopy

__all__ = ["sem", "Spec", "prepare", "estimate_free", "complex_jacobian", "model_and_data"]

ESTIMATORS = ("ML", "MLR")
MISSING = ("listwise", "fiml")
#: reason recorded in ``SEMResult.dropped`` for rows set aside under FIML with fixed covariates
X_MISSING_REASON = "missing exogenous covariate (fixed_x=True; fixed_x=False keeps these rows under FIML)"


def _as_frame(data) -> pd.DataFrame:
    return analysis_frame(data, error=ModelSpecificationError)


class Prepared:
    """Everything needed to (re)estimate a model on data: picklable for bootstrap workers."""


def prepare(data, model, *, group=None, estimator="ML", missing="listwise", cluster=None,
            std_lv=False, meanstructure=None, fixed_x=True, group_equal=(), group_partial=(),
            orthogonal=False, sampling_weights=None) -> Prepared:
    """Parse, build the parameter table, select the data and build the numeric problem."""
    df = _as_frame(data)
    if sampling_weights is not None:
        _check_weights_options(df, sampling_weights, estimator, missing)
    estimator = str(estimator).upper()
    if estimator not in ESTIMATORS:
        raise ModelSpecificationError(
            f"`estimator` is '{estimator}'; expected one of {', '.join(ESTIMATORS)}."
        )
    missing = {"ml": "fiml", "fiml": "fiml", "listwise": "listwise", "direct": "fiml"}.get(str(missing).lower())
    if missing is None:
        raise ModelSpecificationError("`missing` must be 'listwise' or 'fiml'; use missing='fiml' for FIML.")
    if isinstance(group_equal, str):
        group_equal = (group_equal,)
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    statements = parse_model(model)
    roles = classify_variables(statements)
    ov = roles["ov"]
    absent = [v for v in ov if v not in df.columns]
    if absent:
        avail = ", ".join(map(str, list(df.columns)[:12]))
        raise ModelSpecificationError(
            f"`model` names {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} not "
            f"a column of `data` and not a latent variable (no '=~' defines it); available columns: {avail}."
        )
    check_unique_columns(df, list(ov) + [c for c in (group, cluster, sampling_weights) if c is not None])
    for v in ov:
        if not pd.api.types.is_numeric_dtype(df[v]):
            raise ModelSpecificationError(
                f"Column '{v}' of `data` is {df[v].dtype}, not numeric; recode it to numbers before fitting."
            )
    check_model_columns(df, ov)
    for name, arg in (("group", group), ("cluster", cluster)):
        if arg is not None and arg not in df.columns:
            raise ModelSpecificationError(f"`{name}=` is '{arg}', which is not a column of `data`.")
    dropped: dict[str, int] = {}
    # per variable: how many of the rows set aside lacked it (a row lacking two variables counts for both)
    by_variable: dict[str, int] = {}

    def blame(rows, columns, missing_of):
        for c in columns:
            k = int((rows & missing_of(c)).sum())
            if k:
                by_variable[c] = by_variable.get(c, 0) + k

    keep = np.ones(len(df), dtype=bool)
    if sampling_weights is not None:
        wall = _weights_column(df, sampling_weights)
    for name, arg in (("group", group), ("cluster", cluster)):
        if arg is not None:
            bad = df[arg].isna().to_numpy()
            if bad.any():
                dropped[f"missing {name} ('{arg}')"] = int(bad[keep].sum())
                blame(bad & keep, [arg], lambda c: df[c].isna().to_numpy())
                keep &= ~bad
    Yall = df[ov].to_numpy(dtype=float)
    miss = np.isnan(Yall)
    col_missing = {v: miss[:, j] for j, v in enumerate(ov)}
    empty = [v for j, v in enumerate(ov) if keep.any() and miss[keep, j].all()]
    if empty:
        raise ModelSpecificationError(
            f"Variable '{empty[0]}' has no observed value in the {int(keep.sum())} rows of `data`; expected some "
            f"observed values, so check the column and its missing-value codes or remove it from `model`."
        )
    if missing == "listwise":
        bad = miss.any(axis=1) & keep
        if bad.any():
            dropped["missing value in a model variable (listwise deletion)"] = int(bad.sum())
            blame(bad, ov, col_missing.__getitem__)
            keep &= ~bad
    else:
        x_cols = [ov.index(v) for v in roles["ov_x"]] if fixed_x else []
        if x_cols:
            # lavaan (missing = "ml", fixed.x = TRUE): the model is conditional on the covariates,
            # so rows with a missing covariate cannot contribute
            bad = miss[:, x_cols].any(axis=1) & keep
            if bad.any():
                dropped[X_MISSING_REASON] = int(bad.sum())
                blame(bad, [ov[j] for j in x_cols], col_missing.__getitem__)
                keep &= ~bad
        bad = miss.all(axis=1) & keep
        if bad.any():
            dropped["no observed model variable"] = int(bad.sum())
            blame(bad, ov, col_missing.__getitem__)
            keep &= ~bad
    if dropped:
        warnings.warn(
            f"{sum(dropped.values())} of {len(df)} rows were set aside: "
            + "; ".join(f"{k}: {v}" for k, v in dropped.items()) + ".",
            MissingDataWarning, stacklevel=3,
        )
    gall = df[group].to_numpy() if group is not None else None
    if group is not None:
        # every group the data declare, in order of appearance (categories of a categorical column)
        col = df[group]
        if isinstance(col.dtype, pd.CategoricalDtype):
            labels = tuple(col.cat.categories)
        else:
            labels = tuple(pd.unique(col.dropna()))
    else:
        labels = ("1",)
    _check_rows(df, ov, group, gall, labels, keep, miss, missing, x_missing=X_MISSING_REASON in dropped)
    Yall = Yall[keep]
    gcol = gall[keep] if group is not None else None
    ccol = df[cluster].to_numpy()[keep] if cluster is not None else None
    idx_all = df.index.to_numpy()[keep]
    wcol = None
    if sampling_weights is not None:
        wcol = wall[keep]
        if not wcol.sum() > 0:
            raise ModelSpecificationError(
                f"The sampling weights in column '{sampling_weights}' sum to zero over the {int(keep.sum())} rows "
                "used; expected some positive weights, so check the column."
            )
        # lavaan's sampling.weights.normalization = "total": the weights sum to the number of rows used
        wcol = wcol * (wcol.size / wcol.sum())
    ngroups = len(labels)
    if meanstructure is None:
        meanstructure = ngroups > 1 or missing == "fiml" or cluster is not None
    if missing == "fiml":
        meanstructure = True
    tab, cons, roles = build_partable(
        statements, ngroups=ngroups, std_lv=std_lv, meanstructure=meanstructure, fixed_x=fixed_x,
        group_equal=tuple(group_equal), group_partial=tuple(group_partial), orthogonal=orthogonal,
    )
    records = roles.pop("records")
    nfree = max((r["free"] for r in records), default=0)
    groups = []
    group_rows = []
    clusters = []
    for gi, lab in enumerate(labels):
        sel = slice(None) if group is None else (gcol == lab)
        Y = Yall[sel]
        _check_variables(Y, ov, lab if group is not None else None, group)
        group_rows.append(idx_all[sel])
        clusters.append(None if cluster is None else ccol[sel])
        groups.append((Y, None if wcol is None else wcol[sel]))
    lv = roles["lv"]
    kernels = []
    ustart = tab["ustart"].to_numpy(dtype=float).copy()
    for gi, (Y, wt) in enumerate(groups):
        recs = []
        tmpk = GroupKernel([], ov, lv, nfree, meanstructure)
        if missing == "fiml":
            tmpk.set_missing(Y)
        else:
            tmpk.set_complete(Y)
            if wt is not None:
                _set_weighted_moments(tmpk, Y, wt)
        for rid, r in enumerate(records):
            if r["group"] != gi + 1:
                continue
            val = r["ustart"]
            if r["exo"] == 1:
                i = ov.index(r["lhs"])
                if r["op"] == "~1":
                    val = tmpk.ybar[i]
                else:
                    val = tmpk.S[i, ov.index(r["rhs"])]
                ustart[rid] = val
            recs.append(dict(op=r["op"], lhs=r["lhs"], rhs=r["rhs"], free=r["free"], value=val, exo=r["exo"]))
        gk = GroupKernel(recs, ov, lv, nfree, meanstructure)
        gk.Y, gk.n, gk.S, gk.ybar, gk.logdetS = tmpk.Y, tmpk.n, tmpk.S, tmpk.ybar, tmpk.logdetS
        gk.patterns = tmpk.patterns
        gk.wt = wt
        if wt is not None:
            # as lavaan, a group counts with the sum of its (total-normalised) weights
            gk.n = float(wt.sum())
        if missing == "fiml":
            gk.batches, gk.case_pattern, gk.obs_mask = tmpk.batches, tmpk.case_pattern, tmpk.obs_mask
            # exact linear dependence shows in the pairwise covariances too
            ev = np.linalg.eigvalsh(gk.S)
            if np.all(np.isfinite(ev)) and abs(ev.min()) <= 1e-10 * np.trace(gk.S):
                raise _not_pd_error(gk.S, ov, labels[gi] if ngroups > 1 else None, Y.shape[0])
        else:
            if not np.isfinite(gk.logdetS) or np.linalg.eigvalsh(gk.S).min() <= 1e-12 * np.trace(gk.S):
                raise _not_pd_error(gk.S, ov, labels[gi] if ngroups > 1 else None, Y.shape[0])
        kernels.append(gk)
    tab["ustart"] = ustart
    for r, u in zip(records, ustart):
        r["ustart"] = u
    # linear equality constraints -> re-parameterisation; the rest constrain the optimiser
    K = None
    x_base = None
    ceq = cin = None
    nonlinear = []
    if cons.linear:
        linear, nonlinear = _split_linear(tab, cons, nfree)
        if linear:
            K, x_base = _linear_constraints(tab, cons, linear, nfree)
    if nonlinear:
        ceq = _constraint_function(tab, cons, [(s_, 1.0) for s_ in nonlinear])
    if cons.inequality:
        cin = _constraint_function(tab, cons, cons.inequality)
    problem = SEMProblem(kernels, nfree, missing=(missing == "fiml"), K=K, x_base=x_base,
                         ceq=ceq, cin=cin)
    prep = Prepared()
    prep.model = model
    prep.table = tab
    prep.constraints = cons
    prep.roles = roles
    prep.problem = problem
    prep.ov = ov
    prep.lv = lv
    prep.labels = labels
    prep.group = group
    prep.cluster = cluster
    prep.sampling_weights = sampling_weights
    prep.clusters = clusters
    prep.group_rows = group_rows
    prep.estimator = estimator
    prep.missing = missing
    prep.meanstructure = meanstructure
    prep.std_lv = std_lv
    prep.fixed_x = fixed_x
    prep.group_equal = tuple(group_equal)
    prep.group_partial = tuple(group_partial)
    prep.n_input = len(df)
    prep.records = records
    prep.dropped = dropped
    prep.dropped_by_variable = by_variable
    return prep


def _check_weights_options(df, sampling_weights, estimator, missing):
    """Sampling weights need a column of `data`, ML estimation and complete data (listwise)."""
    if not isinstance(sampling_weights, str) or sampling_weights not in df.columns:
        raise ModelSpecificationError(
            f"`sampling_weights=` is {sampling_weights!r}, which is not a column of `data`; give the name of the "
            "column that holds each respondent's sampling weight."
        )
    if str(estimator).upper() not in ESTIMATORS:
        raise ModelSpecificationError(
            f"`estimator` is '{estimator}', which cannot take sampling weights; use estimator='ML' or 'MLR' "
            "(both give weighted ML estimates with robust standard errors)."
        )
    if str(missing).lower() not in ("listwise",):
        raise ModelSpecificationError(
            f"`missing` is '{missing}', but sampling weights are supported with listwise deletion only; use "
            "missing='listwise' or impute the data first."
        )


def _weights_column(df, name):
    """The sampling weights as floats; refuses text, missing, infinite and negative weights."""
    col = df[name]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise ModelSpecificationError(
            f"Column '{name}' of `data` (`sampling_weights=`) is {col.dtype}, not numeric; give the weights as numbers."
        )
    w = col.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise ModelSpecificationError(
            f"Column '{name}' of `data` (`sampling_weights=`) has {int(bad.sum())} missing or infinite weight(s) "
            f"(first at row {df.index[i]!r}); expected a finite weight for every row, so fill them in or drop "
            "those rows."
        )
    neg = w < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise ModelSpecificationError(
            f"Column '{name}' of `data` (`sampling_weights=`) has {int(neg.sum())} negative weight(s) (first "
            f"{w[i]:g} at row {df.index[i]!r}); expected weights >= 0, so correct the column."
        )
    return w


def _set_weighted_moments(gk, Y, wt):
    """Weighted mean and covariance (divisor: the sum of the weights), as R's ``cov.wt(method = "ML")``."""
    sw = wt.sum()
    gk.ybar = wt @ Y / sw
    R = Y - gk.ybar
    gk.S = (R.T * wt) @ R / sw
    sign, logdet = np.linalg.slogdet(gk.S)
    gk.logdetS = logdet if sign > 0 else np.nan


def _where(lab, group):
    return f" in group '{lab}' of `group=` ('{group}')" if lab is not None else ""


def _check_rows(df, ov, group, gall, labels, keep, miss, missing, x_missing=False):
    """Every group (or the whole data) keeps at least two usable rows; say why when it does not."""
    reason = ("listwise deletion of rows with a missing model variable" if missing == "listwise"
              else "setting aside rows with a missing fixed covariate or no observed model variable"
              if x_missing else "setting aside rows with no observed model variable")
    for lab in labels:
        before = np.ones(len(df), bool) if group is None else (gall == lab)
        n_before = int(before.sum())
        n_after = int((before & keep).sum())
        if n_after >= 2:
            continue
        where = (f"Group '{lab}' of `group=` ('{group}')" if group is not None else "`data`")
        if n_before == 0 and group is None:
            raise ModelSpecificationError("`data` has no rows; pass the data the model describes.")
        if n_before == 0:
            raise ModelSpecificationError(
                f"{where} has no rows (an unused category of the column); drop unused categories "
                "(e.g. `data[col].cat.remove_unused_categories()`) or filter the data before fitting."
            )
        if n_after == n_before:
            raise ModelSpecificationError(
                f"{where} has {n_before} row(s); a covariance structure needs at least 2 rows (and "
                "usually many more than the number of model variables)."
            )
        worst = [ov[j] for j in np.argsort(-miss[before].sum(axis=0)) if miss[before][:, j].any()][:3]
        raise ModelSpecificationError(
            f"{where} keeps {n_after} of {n_before} rows after {reason}"
            + (f" (most often missing: {', '.join(worst)})" if worst else "")
            + ("; use fixed_x=False (covariates modelled as random) or drop the variable from `model`"
               if x_missing else "; use missing='fiml' or drop the variable from `model`")
            + (" or the group from `data`." if group is not None else ".")
        )


def _check_variables(Y, ov, lab, group):
    """Each model variable is observed and varies (in each group)."""
    obs = ~np.isnan(Y)
    for j, v in enumerate(ov):
        vals = Y[obs[:, j], j]
        if vals.size == 0:
            raise ModelSpecificationError(
                f"Variable '{v}' has no observed value{_where(lab, group)}; remove it from `model`"
                + (" or fit the groups separately." if lab is not None else ".")
            )
        if vals.size >= 2 and np.all(vals == vals[0]):
            raise ModelSpecificationError(
                f"Variable '{v}' is constant ({vals[0]:g} in all {vals.size} observed rows){_where(lab, group)}, "
                "so its variance is zero and the covariance matrix is not positive definite; remove it from `model`."
            )


def _not_pd_error(S, ov, lab, n):
    d = np.diag(S)
    if n > len(ov) and np.all(d > 0) and d.max() > 1e10 * d.min():
        # the eigenvalue test is relative to the total variance: wildly different scales fail it
        big, small = ov[int(np.argmax(d))], ov[int(np.argmin(d))]
        where = "" if lab is None else f" in group {lab!r}"
        return ModelSpecificationError(
            f"The variances of the model variables{where} differ by a factor of {d.max() / d.min():.2g} "
            f"('{big}' {d.max():.3g}, '{small}' {d.min():.3g}), too much for the covariance matrix to be checked "
            f"and inverted in double precision; rescale the variables to similar units."
        )
    ev, vec = np.linalg.eigh(S)
    load = np.abs(vec[:, 0])
    # the (at most six) variables that carry the dependency, named in model order so that the
    # message does not depend on how the eigen-solver orders near-equal loadings
    involved = [j for j in np.argsort(-load, kind="stable") if load[j] > 0.1 * load.max()][:6]
    comb = [ov[j] for j in sorted(involved)]
    why = (f"{n} rows for {len(ov)} variables: fewer rows than variables" if n <= len(ov)
           else f"{', '.join(comb)} are (nearly) linearly dependent")
    return ModelSpecificationError(
        f"The sample covariance matrix of the model variables{_where(lab, None) if lab is None else f' in group {lab!r}'}"
        f" is not positive definite ({why}); remove redundant variables from `model` or add rows."
    )


def _constraint_function(tab, cons, items):
    """f(x) -> array of sign * (lhs - rhs) for the given (statement, sign) pairs."""
    defined = cons.defined

    def f(x):
        env = label_env(tab, x, defined)
        return np.stack([np.asarray(sign * (s.expr_lhs.evaluate(env) - s.expr.evaluate(env)))
                         for s, sign in items], axis=-1)

    return f


def _split_linear(tab, cons, nfree):
    """Split the equality constraints into linear and non-linear ones (Jacobian at two points)."""
    stmts = [s for s, _ in cons.linear]
    h = _constraint_function(tab, cons, [(s, 1.0) for s in stmts])
    x1 = np.linspace(0.3, 0.9, nfree)
    x2 = np.linspace(1.1, -0.4, nfree)
    _, J1 = complex_jacobian(h, x1)
    _, J2 = complex_jacobian(h, x2)
    lin = [np.allclose(J1[i], J2[i], atol=1e-10) for i in range(len(stmts))]
    return [s for s, ok in zip(stmts, lin) if ok], [s for s, ok in zip(stmts, lin) if not ok]


def _linear_constraints(tab, cons, stmts, nfree):
    h = _constraint_function(tab, cons, [(s, 1.0) for s in stmts])
    x1 = np.linspace(0.3, 0.9, nfree)
    f1, R = complex_jacobian(h, x1)
    h0 = f1 - R @ x1
    if np.linalg.matrix_rank(R) < R.shape[0]:
        raise ModelSpecificationError(
            "`model` has redundant or contradictory equality constraints (== lines); remove the duplicates."
        )
    K = sla.null_space(R)
    x_base = -np.linalg.pinv(R) @ h0
    return K, x_base


def _factor_starts(prep: Prepared) -> dict:
    """Moment-based starts for the loadings and variance of each measured factor, group by group.

    For a factor with at least three observed indicators, the loadings relative to a reference
    indicator r (its fixed-loading marker, else the first indicator) come from the covariances
    with the other indicators: lambda_j / lambda_r = sum_k S_jk S_rk / sum_k S_rk^2 over
    k not in {j, r}; the factor variance is the least-squares fit of the off-diagonal covariances
    to those relative loadings. Starting where the sign and size of every loading agree with the
    data keeps the first scoring steps away from the degenerate region (factor variance towards
    zero with loadings growing without bound) that a start of equal loadings can fall into when a
    group's items are weakly or unevenly related. Returns {(group, lhs, op, rhs): value}.
    """
    out: dict = {}
    lv = set(prep.lv)
    by_factor: dict = {}
    for r in prep.records:
        if r["op"] == "=~":
            by_factor.setdefault((r["group"], r["lhs"]), []).append(r)
    fixed_var = {(r["group"], r["lhs"]): (r["free"], r["ustart"]) for r in prep.records
                 if r["op"] == "~~" and r["lhs"] == r["rhs"] and r["lhs"] in lv}
    for (g, fac), rows in by_factor.items():
        ind = [r["rhs"] for r in rows]
        if len(ind) < 3 or any(v not in prep.ov for v in ind) or len(set(ind)) < len(ind):
            continue
        S = prep.problem.groups[g - 1].S
        if S is None or not np.all(np.isfinite(S)):
            continue
        idx = [prep.ov.index(v) for v in ind]
        C = np.asarray(S)[np.ix_(idx, idx)]
        markers = [i for i, r in enumerate(rows) if r["free"] == 0 and np.isfinite(r["ustart"]) and r["ustart"] != 0]
        ref = markers[0] if markers else 0
        rel = np.ones(len(ind))
        for j in range(len(ind)):
            if j == ref:
                continue
            k = [i for i in range(len(ind)) if i not in (j, ref)]
            den = float(C[ref, k] @ C[ref, k])
            if den <= 1e-12 * float(np.max(np.diag(C))) ** 2:
                break
            rel[j] = float(C[j, k] @ C[ref, k]) / den
        else:
            iu = np.triu_indices(len(ind), 1)
            rr = (rel[:, None] * rel[None, :])[iu]
            psi_rel = float(C[iu] @ rr / (rr @ rr)) if rr @ rr > 0 else 0.0
            if not (psi_rel > 0 and np.all(np.isfinite(rel))):
                continue
            free_var, var_value = fixed_var.get((g, fac), (1, np.nan))
            if markers:
                c = float(rows[ref]["ustart"])
                lam, psi = c * rel, psi_rel / c ** 2
            elif free_var == 0 and np.isfinite(var_value) and var_value > 0:
                psi = float(var_value)
                lam = rel * math.sqrt(psi_rel / psi)
            else:
                continue
            for r, v in zip(rows, lam):
                out[(g, fac, "=~", r["rhs"])] = float(v)
            out[(g, fac, "~~", fac)] = psi
            for v, i, l_ in zip(ind, range(len(ind)), lam):
                out[(g, v, "~~", v)] = max(float(C[i, i]) - l_ * l_ * psi, 0.1 * float(C[i, i]))
    return out


def start_values(prep: Prepared) -> np.ndarray:
    """Starting values: moment-based loadings and factor variances where a factor has three or
    more observed indicators (see ``_factor_starts``), otherwise lavaan's 'simple' rule;
    start() modifiers win."""
    nfree = prep.problem.nfree
    x = np.full(nfree, np.nan)
    lv = set(prep.lv)
    records = prep.records
    moment = _factor_starts(prep)
    for r in records:
        f = r["free"]
        if f == 0 or not np.isnan(x[f - 1]):
            continue
        gk = prep.problem.groups[r["group"] - 1]
        if not np.isnan(r["start"]):
            x[f - 1] = r["start"]
            continue
        op = r["op"]
        key = (r["group"], r["lhs"], op, r["rhs"])
        if key in moment:
            x[f - 1] = moment[key]
            continue
        if op == "=~":
            if prep.std_lv:
                i = prep.ov.index(r["rhs"]) if r["rhs"] in prep.ov else None
                x[f - 1] = math.sqrt(0.5 * gk.S[i, i]) if i is not None else 1.0
            else:
                x[f - 1] = 1.0
        elif op == "~":
            x[f - 1] = 0.0
        elif op == "~~":
            if r["lhs"] == r["rhs"]:
                if r["lhs"] in lv:
                    x[f - 1] = 0.05
                else:
                    i = prep.ov.index(r["lhs"])
                    x[f - 1] = 0.5 * gk.S[i, i]
            else:
                x[f - 1] = 0.0
        elif op == "~1":
            if r["lhs"] in lv:
                x[f - 1] = 0.0
            else:
                x[f - 1] = gk.ybar[prep.ov.index(r["lhs"])]
    # user start values on any shared row win
    for r in records:
        if r["free"] > 0 and not np.isnan(r["start"]):
            x[r["free"] - 1] = r["start"]
    return np.nan_to_num(x)


def estimate_free(prep: Prepared, z0=None):
    """Estimate the free parameters; returns (z, trace)."""
    pr = prep.problem
    if z0 is None:
        x0 = start_values(prep)
        z0 = pr.z_of(x0)
        f0, _ = pr.fz(z0)
        if not np.isfinite(f0):
            # start from a safer point: all latent variances larger
            x0 = _safe_start(prep, x0)
            z0 = pr.z_of(x0)
    return pr.fit(z0)


def _newton_polish(pr, z, trace):
    """One Newton step from a converged FIML solution; returns ``(z, observed information)``.

    The quasi-Newton optimiser stops within about 1e-6 (relative) of the optimum; one step
    on the observed information brings the estimates to machine precision (quadratic
    convergence), so that statistics comparing the model with the saturated moments (chi-square
    and SRMR of a just-identified model) are exact. The step is kept only when it does not
    worsen the criterion; the information is the one at the original point (the step is
    negligible for standard errors).
    """
    H = pr.hessian_z(z)
    if H is None:
        return z, H
    f, g = pr.fz(z)
    try:
        step = -np.linalg.solve(2.0 * H, g)
    except np.linalg.LinAlgError:
        return z, H
    if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1e-3 * (1.0 + np.max(np.abs(z))):
        return z, H
    fn, gn = pr.fz(z + step)
    if np.isfinite(fn) and fn <= f + 1e-12 * abs(f):
        z = z + step
        trace.update(final=z.copy(), f=fn, grad_norm=float(np.max(np.abs(gn))), newton_polish=True)
    return z, H


def _safe_start(prep, x0):
    x = x0.copy()
    for r in prep.records:
        if r["free"] > 0 and r["op"] == "~~" and r["lhs"] == r["rhs"]:
            x[r["free"] - 1] = max(x[r["free"] - 1], 0.1)
        if r["free"] > 0 and r["op"] in ("~",) :
            x[r["free"] - 1] = 0.0
    return x


# ---------------------------------------------------------------------------
# the public verb
# ---------------------------------------------------------------------------

def model_and_data(model, data, verb: str):
    """``(model, data)`` in the documented order; the old order ``verb(data, model)`` is accepted with a warning.

    The old order is recognised by a model syntax (a string) given second and
    something other than a string given first; it will stop working in the
    next release.
    """
    if not isinstance(model, str) and isinstance(data, str):
        warnings.warn(
            f"{verb}(data, model) is deprecated: give the model first and the data second, as lavaan does "
            f"({verb}(model, data, ...)); the old order works for one more release.",
            DeprecationWarning, stacklevel=3,
        )
        return data, model
    if not isinstance(model, str):
        raise ModelSpecificationError(
            f"`model` is a {type(model).__name__}; expected the model in lavaan syntax as a string, "
            f"e.g. {verb}(\"f =~ y1 + y2 + y3\", data)."
        )
    return model, data


def sem(model: str, data, *, group: str | None = None, estimator: str = "ML",
        missing: str = "listwise", cluster: str | None = None, std_lv: bool = False,
        meanstructure: bool | None = None, fixed_x: bool = True, group_equal=(),
        group_partial=(), orthogonal: bool = False, information: str | None = None,
        se: str | None = None, engine: str = "cimstats", sampling_weights: str | None = None):
    """Fit a structural equation model written in lavaan syntax.

    Parameters
    ----------
    model : str
        lavaan model syntax (``=~``, ``~``, ``~~``, ``~ 1``, labels, fixed and
        start values, ``c()`` per group, ``:=``, ``==``, ``<``, ``>``).
    data : pandas.DataFrame or Survey
        One row per respondent; model variables must be numeric columns.
        Everything after ``data`` is given by keyword. (The old order
        ``sem(data, model)`` still works in this release, with a
        ``DeprecationWarning``.)
    group : str, optional
        Column defining groups for a multigroup model (groups in order of
        appearance, as lavaan).
    estimator : {"ML", "MLR"}
        ``"MLR"``: ML estimates with Huber-White (sandwich) standard errors and
        the Yuan-Bentler scaled chi-square (lavaan's ``"yuan.bentler.mplus"``).
    missing : {"listwise", "fiml"}
        ``"fiml"``: full-information ML using every observed value (rows with
        no observed model variable are set aside and counted). With fixed
        covariates (``fixed_x=True``) the model is conditional on the
        covariates, so rows with a missing covariate are set aside too (with a
        warning, counted in ``dropped``), as lavaan's ``missing = "ml"`` does.
    cluster : str, optional
        Column of cluster identifiers (e.g. practice) for cluster-robust
        standard errors and test (implies the sandwich; use with ``"MLR"``).
        With ``level: 1`` / ``level: 2`` blocks in ``model`` it fits a
        two-level model instead (within- and between-cluster covariance
        structures, ML or MLR, labels, ``==`` and ``:=`` across levels,
        standardized solution per level, as lavaan) and returns a
        ``TwoLevelResult``.
    std_lv : bool
        Identify latent variables by fixing their variances to 1 instead of
        fixing the first loading.
    meanstructure : bool, optional
        Model means and intercepts (default: with groups or FIML).
    fixed_x : bool
        Treat exogenous observed covariates (observed variables that only
        predict) as fixed: their means, variances and covariances are set to
        the sample values and not estimated (lavaan's default ``fixed.x =
        TRUE``). ``False`` makes them random: their means, variances and
        covariances are model parameters, and under ``missing="fiml"`` rows
        with a missing covariate are kept (lavaan's ``fixed.x = FALSE``).
    group_equal : sequence of str
        Parameter types held equal across groups: ``loadings``, ``intercepts``,
        ``means``, ``residuals``, ``residual.covariances``, ``lv.variances``,
        ``lv.covariances``, ``regressions``.
    group_partial : sequence of str
        Parameters freed from ``group_equal``, e.g. ``"visual =~ x2"``, ``"x7 ~ 1"``.
    information : {"expected", "observed"}, optional
        Information matrix for standard errors (default as lavaan: expected for
        complete-data ML, observed for FIML and MLR).
    se : {"standard", "robust.huber.white"}, optional
    engine : {"cimstats", "semopy"}
        ``"semopy"`` fits with semopy (single-group, complete data) and
        normalises its output into the same table.
    sampling_weights : str, optional
        Column of sampling (survey) weights, as lavaan's ``sampling.weights``:
        the weights are rescaled to sum to the number of rows used (lavaan's
        ``sampling.weights.normalization = "total"``), the model is fitted by
        ML to the weighted means and covariances, standard errors are
        Huber-White (sandwich) with each row's score weighted, and the test is
        the Yuan-Bentler scaled chi-square, so the fit reports ``chisq``,
        ``chisq.scaled`` and the robust CFI/TLI/RMSEA as an ``"MLR"`` fit. A
        group counts with the sum of its weights. Combines with ``group=`` and
        ``cluster=`` (cluster sums of weighted scores); needs complete data
        (``missing="listwise"``). Missing, infinite or negative weights are
        refused; a weight of zero leaves the row out of the estimates.

    Returns
    -------
    SEMResult
        Frozen result: ``tidy(level=0.95)`` (columns ``term, lhs, op, rhs,
        label, group, estimate, std_error, statistic, df, p_value, ci_lower,
        ci_upper, std_lv, std_all``), ``fit_measures()``, ``glance()``,
        ``summary()``, ``to_table_spec()``, ``vcov()``, ``dropped``,
        ``optimizer``, ``standardized_solution()``,
        ``modification_indices()``, ``r_squared()``, ``implied()``,
        ``residuals()``, ``bootstrap()``, ``save(folder)``.

    Raises
    ------
    ModelSpecificationError
        Syntax errors (naming the line), variables absent from ``data``,
        non-numeric columns, non-positive-definite data, unidentified models.
    EstimationError
        When the optimiser cannot find a solution.

    Notes
    -----
    ML minimises ``F = sum_g n_g/N [log|Sigma_g| + tr(S_g Sigma_g^-1) - log|S_g| - p
    + (ybar_g - mu_g)' Sigma_g^-1 (ybar_g - mu_g)]`` by Fisher scoring with analytic
    derivatives; the chi-square is ``N F``.

    Constraints: ``a == b`` between two labels shares one parameter; other
    linear equalities (``a == 2*b``) re-parameterise the model; non-linear
    equalities (``a1*b1 == a2*b2``) and inequalities (``a > 0``, ``b + c < 1``)
    are imposed by sequential quadratic programming. Standard errors then use
    the information restricted to the constraints that hold with equality at
    the solution (lavaan's augmented information); a parameter pinned by a
    binding inequality gets no standard error (NaN). Degrees of freedom count
    equality constraints only.

    Validated against: lavaan 0.6-14 ``cfa()`` / ``sem()`` (tests/reference/sem.R;
    FIML with fixed and random covariates, clusters: tests/reference/sem_fiml_x.R;
    sampling weights: tests/reference/sem_weights.R).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> f = rng.normal(size=500)
    >>> d = pd.DataFrame({f"y{i}": 0.8 * f + rng.normal(scale=0.6, size=500) for i in range(1, 4)})
    >>> fit = sem("efficacy =~ y1 + y2 + y3", d)
    >>> fit.fit_measures()["df"]
    0.0
    >>> round(float(fit.tidy().query("op == '=~'")["std_all"].iloc[0]), 1)
    0.8

    With a column of sampling weights (robust standard errors and scaled test):

    >>> d["wt"] = np.where(d["y1"] > 0, 2.0, 1.0)
    >>> wfit = sem("efficacy =~ y1 + y2 + y3", d, sampling_weights="wt")
    >>> wfit.spec.se, wfit.spec.test
    ('robust.huber.white', 'yuan.bentler.mplus')
    """
    model, data = model_and_data(model, data, "sem")
    if sampling_weights is not None and (engine != "cimstats" or (se is not None and se != "robust.huber.white")):
        raise ModelSpecificationError(
            f"Sampling weights need the cimstats engine and robust standard errors, but engine='{engine}' and "
            f"se={se!r} were given; leave `engine` and `se` at their defaults."
        )
    if cluster is not None and split_levels(model) is not None:
        if sampling_weights is not None:
            raise ModelSpecificationError(
                "Sampling weights are not available for two-level models (level: blocks) yet; fit without "
                "`sampling_weights` or use a one-level model with `cluster=` for cluster-robust standard errors."
            )
        # two-level model (lavaan's level: 1 / level: 2 blocks)
        check_twolevel_options(group=group, estimator=estimator, missing=missing, meanstructure=meanstructure,
                               group_equal=group_equal, information=information, se=se, engine=engine)
        return sem_twolevel(model, _as_frame(data), cluster=cluster, std_lv=std_lv, fixed_x=fixed_x,
                            estimator=str(estimator).upper())
    if engine == "semopy":
        return fit_semopy(data, model)
    if engine != "cimstats":
        raise ModelSpecificationError(f"`engine` is '{engine}'; expected 'cimstats' or 'semopy'.")
    prep = prepare(data, model, group=group, estimator=estimator, missing=missing, cluster=cluster,
                   std_lv=std_lv, meanstructure=meanstructure, fixed_x=fixed_x,
                   group_equal=group_equal, group_partial=group_partial, orthogonal=orthogonal,
                   sampling_weights=sampling_weights)
    return fit_prepared(prep, information=information, se=se)


def fit_prepared(prep: Prepared, *, information=None, se=None, z0=None, trace_only=False):
    pr = prep.problem
    robust = (prep.estimator == "MLR" or prep.cluster is not None
              or getattr(prep, "sampling_weights", None) is not None)
    if information is None:
        information = "observed" if (pr.missing or robust) else "expected"
    if se is None:
        se = "robust.huber.white" if robust else "standard"
    z, trace = estimate_free(prep, z0)
    if not trace.get("converged", False):
        warnings.warn(
            f"The optimiser stopped after {trace.get('iterations')} iterations without converging "
            f"(largest gradient {trace.get('grad_norm', float('nan')):.2g}); check the model and start values.",
            ConvergenceWarning, stacklevel=3,
        )
    if pr.constrained:
        # inference in the tangent space of the active constraints (lavaan's augmented information);
        # the constrained problem is kept for the bootstrap
        pr_c, z_c = pr, z
        pr, z = pr_c.localized(z_c)
        prep = copy.copy(prep)
        prep.problem = pr
        prep.problem_constrained = pr_c
        prep.z_constrained = z_c
    x = pr.x_of(z)
    nstat = sum(g.p * (g.p + 1) // 2 + (g.p if g.meanstructure else 0) for g in pr.groups)
    if pr.nz > nstat:
        raise ModelSpecificationError(
            f"`model` is not identified: it has {pr.nz} free parameters but the data give only {nstat} "
            "variances, covariances and means; fix parameters, add indicators or equality constraints."
        )
    # identification: the information must be non-singular
    if pr.missing and getattr(prep, "problem_constrained", None) is None and trace.get("converged"):
        # FIML: one Newton step on the observed information, which the standard errors need anyway
        z, Iexp = _newton_polish(pr, z, trace)
        x = pr.x_of(z)
    else:
        Iexp = pr.info_z(z) if (information == "expected" and not pr.missing) else pr.hessian_z(z)
    if Iexp is None:
        raise EstimationError(
            "The model-implied covariance matrix is not positive definite at the solution; "
            "simplify the model or give start values."
        )
    ev, evec = np.linalg.eigh(Iexp)
    if ev[0] < 1e-9 * max(ev[-1], 1e-300):
        v = np.abs(pr.K @ evec[:, 0])
        top = [j for j in np.argsort(-v) if v[j] > 0.25 * v.max()][:3]
        names = []
        for j in top:
            r = prep.table.loc[prep.table["free"] == j + 1].iloc[0]
            names.append(f"'{r['lhs']} {r['op']} {r['rhs']}'" if r["op"] != "~1" else f"'{r['lhs']} ~ 1'")
        raise ModelSpecificationError(
            f"`model` is not identified: the information matrix is singular in the direction of "
            f"{', '.join(names)}; fix one loading or the variance of each latent variable, give each "
            "factor three indicators (or two that correlate with another factor), or add equality constraints."
        )
    V, extras = inf.vcov_free(prep, z, information_kind=information, se=se, A=Iexp)
    prep.boundary = ()
    if getattr(prep, "problem_constrained", None) is not None and trace.get("active_inequalities"):
        # a parameter pinned by a binding inequality has no standard error (lavaan reports NA)
        d = np.diag(V)
        prep.boundary = tuple(int(i) for i in np.where(d <= 1e-12 * np.maximum(1.0, x ** 2))[0])
    h1 = inf.h1_stats(prep)
    scaled = None
    robust_stats = None
    fm0 = inf.assemble_fit(prep, z, h1)
    if robust:
        if pr.missing:
            c, cb, tr1, tr0 = inf.yuan_bentler_missing(prep, z, extras, h1, fm0["df"], fm0["baseline.df"])
        else:
            c, tr1, tr0 = inf.yuan_bentler_mplus(prep, z, extras, fm0["df"])
            trh1, trh0 = inf.baseline_scaling(prep, h1)
            cb = (trh1 - trh0) / fm0["baseline.df"] if fm0["baseline.df"] > 0 else math.nan
        nstat = fm0["df"] + fm0["npar"]
        # per-parameter traces as lavaan: the h0 trace over all free parameters (before == constraints)
        scaled = {"c": c, "cb": cb, "h1": tr1 / nstat if nstat > 0 else math.nan,
                  "h0": tr0 / pr.nfree if pr.nfree > 0 else math.nan}
        if not pr.missing:
            robust_stats = dict(X2=fm0["chisq"], df=fm0["df"], c=c, X2b=fm0["baseline.chisq"],
                                dfb=fm0["baseline.df"], cb=cb)
    if pr.missing:
        # FIML-corrected robust CFI/TLI/RMSEA (reported with and without a scaled test, as lavaan)
        robust_stats = inf.fiml_corrected(prep, z, h1, fm0["df"], fm0["baseline.df"],
                                          version="V3" if robust else "V6")
    fm = inf.assemble_fit(prep, z, h1, scaled=scaled, robust=robust_stats) if (scaled or robust_stats) else fm0
    spec = Spec(model=prep.model, estimator=prep.estimator, missing=prep.missing, group=prep.group,
                group_labels=tuple(str(l) for l in prep.labels), cluster=prep.cluster,
                std_lv=prep.std_lv, meanstructure=prep.meanstructure, fixed_x=prep.fixed_x,
                group_equal=prep.group_equal, group_partial=prep.group_partial,
                information=information, se=se, test="yuan.bentler.mplus" if robust else "standard",
                sampling_weights=getattr(prep, "sampling_weights", None))
    return SEMResult._build(spec, prep, z, x, V, fm, trace, h1)
