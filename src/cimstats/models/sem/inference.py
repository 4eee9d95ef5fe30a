"""Inference after estimation: covariance of estimates, tests, fit measures,
standardized and defined parameters, modification indices, R-squared.

Conventions follow lavaan 0.6:

* complete-data ML: expected information (structured), ``vcov = (N I)^-1``;
* FIML and MLR: observed information (Hessian);
* MLR: Huber-White sandwich ``A^-1 B A^-1 / N`` with ``B`` the mean outer
  product of casewise scores (cluster sums with ``cluster=``, times
  ``G / (G - 1)``) and the Yuan-Bentler (Mplus) scaled test with
  ``c = [tr(A1^-1 B1) - tr(B1 Delta A^-1 Delta')] / df``;
* standardized estimates (``std_lv``, ``std_all``) with delta-method
  standard errors, (residual) covariances scaled by the residual variances;
* defined parameters (``:=``) with delta-method standard errors; their
  standardized values are the expression evaluated on standardized
  parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import linalg as sla
from scipy import stats

from .fitmeasures import fit_measures, srmr_group
from .kernel import (
    LOG2PI, GroupKernel, chol_inv_logdet, group_expected_info, group_expected_info_missing, group_fiml, group_fml,
    group_loglik, missing_h1_information, missing_h1_scores,
)
from .saturated import em_saturated

__all__ = ["vcov_free", "h1_stats", "assemble_fit", "standardize_fn", "modification_indices"]


def _inv(A):
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(A)


def information(prep, z, kind: str):
    pr = prep.problem
    if kind == "expected" and not pr.missing:
        return pr.info_z(z)
    return pr.hessian_z(z)


def cluster_meat(prep, scores_by_group):
    """B = (1/N) sum of outer products of casewise (or cluster-summed) scores."""
    pr = prep.problem
    q = scores_by_group[0].shape[1]
    B = np.zeros((q, q))
    for gi, sc in enumerate(scores_by_group):
        cl = prep.clusters[gi]
        if cl is None:
            B += sc.T @ sc
        else:
            codes, inv = np.unique(cl, return_inverse=True)
            G = len(codes)
            sums = np.zeros((G, q))
            np.add.at(sums, inv.ravel(), sc)
            B += (G / (G - 1.0)) * (sums.T @ sums)
    return B / pr.N


def vcov_free(prep, z, *, information_kind: str, se: str, A=None):
    """Covariance matrix of the free parameters (x-space) and the pieces used."""
    pr = prep.problem
    if A is None:
        A = information(prep, z, information_kind)
    if A is None:
        return None, {}
    Ainv = _inv(A)
    extras = {"A": A, "Ainv": Ainv}
    if se == "robust.huber.white":
        sc = pr.scores_z(z)
        B = cluster_meat(prep, sc)
        Vz = Ainv @ B @ Ainv / pr.N
        extras["B"] = B
        extras["scores"] = sc
    else:
        Vz = Ainv / pr.N
    K = pr.K
    return K @ Vz @ K.T, extras


# ---------------------------------------------------------------------------
# saturated (h1) and baseline statistics
# ---------------------------------------------------------------------------

def h1_stats(prep):
    """Per group: (S, ybar, loglik_h1, loglik_baseline, baseline free params count)."""
    pr = prep.problem
    # the baseline keeps the covariances among exogenous covariates: fixed at their sample values
    # (fixed_x) or free (fixed_x=False), as lavaan's independence model
    x_all = [prep.ov.index(v) for v in prep.roles["ov_x"]]
    ov_x = x_all if prep.fixed_x else []
    out = []
    for gk in pr.groups:
        p = gk.p
        if gk.patterns is None:
            S, ybar = gk.S, gk.ybar
            ll1 = group_loglik(gk, S, ybar)
        else:
            S, ybar, ll1, sat_pr, sat_z = em_saturated(gk, return_problem=True)
        if gk.patterns is None:
            Sb = np.diag(np.diag(S))
            if x_all:
                Sb[np.ix_(x_all, x_all)] = S[np.ix_(x_all, x_all)]
            llb = group_loglik(gk, Sb, ybar)
        else:
            mu_b = np.zeros(p)
            var_b = np.zeros(p)
            for j in range(p):
                yj = gk.Y[:, j]
                yj = yj[~np.isnan(yj)]
                mu_b[j] = yj.mean()
                var_b[j] = yj.var()
            Sb = np.diag(var_b)
            if ov_x:
                # fixed covariates are complete in the rows kept: their sample moments
                Sb[np.ix_(ov_x, ov_x)] = S[np.ix_(ov_x, ov_x)]
                mu_b[ov_x] = ybar[ov_x]
            elif len(x_all) > 1:
                # random covariates: their joint (saturated) FIML moments
                Sx, mx = _saturated_subset(gk, x_all)
                Sb[np.ix_(x_all, x_all)] = Sx
                mu_b[x_all] = mx
            llb = group_loglik(gk, Sb, mu_b)
        h = dict(S=S, ybar=ybar, ll1=ll1, llb=llb)
        if gk.patterns is not None:
            h.update(sat_problem=sat_pr, sat_z=sat_z, base_S=Sb, base_mu=mu_b)
        out.append(h)
    return out


def _saturated_subset(gk, idx):
    """Saturated FIML covariance and mean of a subset of the variables of a group."""

    Y = gk.Y[:, idx]
    Y = Y[~np.all(np.isnan(Y), axis=1)]
    if not np.isnan(Y).any():
        m = Y.mean(axis=0)
        R = Y - m
        return R.T @ R / Y.shape[0], m
    sub = GroupKernel([], [gk.ov[j] for j in idx], [], 0, True)
    sub.set_missing(Y)
    Sx, mx, _ = em_saturated(sub)
    return Sx, mx


def assemble_fit(prep, z, h1, *, scaled=None, robust=None):
    pr = prep.problem
    x = pr.x_of(z)
    G = len(pr.groups)
    N = pr.N
    ll0 = 0.0
    ll1 = 0.0
    llb = 0.0
    srmr_parts = []
    nstat = 0
    px = len(prep.roles["ov_x"]) if prep.fixed_x else 0
    for gk, h in zip(pr.groups, h1):
        Sigma, mu, *_ = gk.implied(x)
        if gk.patterns is None:
            ll0 += group_loglik(gk, Sigma, mu if gk.meanstructure else None)
        else:
            ll0 += group_loglik(gk, Sigma, mu)
        ll1 += h["ll1"]
        llb += h["llb"]
        p = gk.p
        nstat += p * (p + 1) // 2 - px * (px + 1) // 2
        if gk.meanstructure:
            nstat += p - px
            srmr_parts.append(srmr_group(h["S"], Sigma, h["ybar"], mu))
        else:
            srmr_parts.append(srmr_group(h["S"], Sigma))
    if px:
        # lavaan reports the likelihood conditional on fixed covariates (under FIML the rows kept
        # have every covariate observed, so the covariates' own likelihood is that of complete data)
        ix = [prep.ov.index(v) for v in prep.roles["ov_x"]]
        for gk, h in zip(pr.groups, h1):
            Sxx = (h["S"] if pr.missing else gk.S)[np.ix_(ix, ix)]
            llx = -0.5 * gk.n * (px * LOG2PI + np.linalg.slogdet(Sxx)[1] + px)
            ll0 -= llx
            ll1 -= llx
            llb -= llx
    npar = pr.npar
    df = nstat - npar
    # baseline: variances (and means) of the non-fixed-x variables are free
    p = pr.groups[0].p
    pxa = 0 if prep.fixed_x else len(prep.roles["ov_x"])
    dfb = nstat - G * ((p - px) + ((p - px) if pr.groups[0].meanstructure else 0) + pxa * (pxa - 1) // 2)
    X2 = max(2.0 * (ll1 - ll0), 0.0)
    X2b = max(2.0 * (ll1 - llb), 0.0)
    fmin = X2 / (2 * N)
    fm = fit_measures(X2=X2, df=df, X2b=X2b, dfb=dfb, N=N, G=G, npar=npar, logl=ll0, logl_h1=ll1,
                      fmin=fmin, srmr_parts=srmr_parts, weights=pr.w, scaled=scaled,
                      robust=robust)
    return fm


# ---------------------------------------------------------------------------
# h1 information for the Yuan-Bentler scaled test (complete data)
# ---------------------------------------------------------------------------

def _vech_idx(p):
    return np.triu_indices(p)


def h1_information_observed(Sigma, mu, S, ybar, meanstructure):
    """Observed information of the saturated model at (Sigma, mu), per observation,
    in the (mu, vech Sigma) parameterisation."""
    p = Sigma.shape[0]
    Sinv = np.linalg.inv(Sigma)
    d = ybar - mu
    W = S + np.outer(d, d)
    iu = _vech_idx(p)
    nv = len(iu[0])
    # derivative matrices of Sigma wrt vech elements
    E = np.zeros((nv, p, p))
    E[np.arange(nv), iu[0], iu[1]] = 1.0
    E[np.arange(nv), iu[1], iu[0]] = 1.0
    X = np.matmul(Sinv, E)  # Sinv dS
    # -d2 l / dsigma_a dsigma_b = -0.5 tr(X_a X_b) + tr(X_a X_b Sinv W)
    XX = np.einsum("aij,bjk->abik", X, X)
    H22 = -0.5 * np.einsum("abii->ab", XX) + np.einsum("abij,ji->ab", XX, Sinv @ W)
    if not meanstructure:
        return H22
    v = Sinv @ d
    H11 = Sinv
    H12 = np.einsum("aij,j->ia", X, v)  # d2/dmu dsigma = Sinv dS Sinv d
    top = np.hstack([H11, H12])
    bot = np.hstack([H12.T, H22])
    return np.vstack([top, bot])


def h1_scores(Y, Sigma, mu, meanstructure):
    p = Sigma.shape[0]
    Sinv = np.linalg.inv(Sigma)
    E = Y - mu
    V = E @ Sinv
    iu = _vech_idx(p)
    # d l_i / d sigma_kl (vech, symmetric) = 0.5*(2 - delta_kl) * (V V' - Sinv)_kl
    M = 0.5 * (V[:, iu[0]] * V[:, iu[1]] - Sinv[iu][None, :])
    M = M * np.where(iu[0] == iu[1], 1.0, 2.0)[None, :]
    if meanstructure:
        return np.hstack([V, M])
    return M


def _weighted(gk, sc):
    """Casewise scores times the row's sampling weight (unchanged without weights)."""
    wt = getattr(gk, "wt", None)
    return sc if wt is None else sc * wt[:, None]


def _meat(sc, cl, n):
    if cl is None:
        return sc.T @ sc / n
    codes, inv = np.unique(cl, return_inverse=True)
    Gc = len(codes)
    sums = np.zeros((Gc, sc.shape[1]))
    np.add.at(sums, inv.ravel(), sc)
    return (Gc / (Gc - 1.0)) * sums.T @ sums / n


def _h1_keep(prep, p, ms, covariates_fixed=None):
    """Indices of the (mean, vech) h1 moments that are not fixed-x moments.

    ``covariates_fixed`` overrides ``prep.fixed_x`` (True: leave out the covariates' moments).
    """
    fixed = prep.fixed_x if covariates_fixed is None else covariates_fixed
    ov_x = [prep.ov.index(v) for v in prep.roles["ov_x"]] if fixed else []
    iu = _vech_idx(p)
    nm = p if ms else 0
    keep = [j for j in range(nm) if j not in ov_x]
    keep += [nm + k for k in range(len(iu[0])) if not (iu[0][k] in ov_x and iu[1][k] in ov_x)]
    return np.array(keep, dtype=int)


def h1_trace(prep):
    """sum_g tr(A1_g^-1 B1_g) of the saturated model at the sample moments."""
    pr = prep.problem
    tr = 0.0
    for gi, (w, gk) in enumerate(zip(pr.w, pr.groups)):
        ms = gk.meanstructure
        k = _h1_keep(prep, gk.p, ms)
        A1 = h1_information_observed(gk.S, gk.ybar, gk.S, gk.ybar, ms)[np.ix_(k, k)]
        B1 = _meat(_weighted(gk, h1_scores(gk.Y, gk.S, gk.ybar, ms))[:, k], prep.clusters[gi], gk.n)
        tr += np.sum(B1 * np.linalg.inv(A1).T)  # h1 moments of each group count fully
    return tr


def yuan_bentler_mplus(prep, z, vc_extras, df):
    """Scaling factor c of the Yuan-Bentler (Mplus) test for complete data ML.

    ``c = [tr(A1^-1 B1) - tr(B1 Delta A^-1 Delta')] / df`` with the saturated
    information A1 and first-order B1 at the sample moments for the first
    trace, and B1 at the model-implied moments for the second (lavaan 0.6).
    """
    pr = prep.problem
    x = pr.x_of(z)
    Ainv = vc_extras["Ainv"]
    tr_h1 = h1_trace(prep)
    tr_h0 = 0.0
    for gi, (w, gk) in enumerate(zip(pr.w, pr.groups)):
        Sigma, mu, A_, C_, Aa = gk.implied(x)
        ms = gk.meanstructure
        mu_use = mu if ms else gk.ybar
        k = _h1_keep(prep, gk.p, ms)
        B1 = _meat(_weighted(gk, h1_scores(gk.Y, Sigma, mu_use, ms))[:, k], prep.clusters[gi], gk.n)
        DS, Dm = gk.delta(A_, C_, Aa)
        iu = _vech_idx(gk.p)
        Dv = DS[:, iu[0], iu[1]].T  # (nvech, nfree)
        Delta = np.vstack([Dm.T, Dv]) if ms else Dv
        Delta = (Delta @ pr.K)[k]
        tr_h0 += w * np.sum(B1 * (Delta @ Ainv @ Delta.T))
    return (tr_h1 - tr_h0) / df if df > 0 else math.nan, tr_h1, tr_h0


def yuan_bentler_missing(prep, z, vc_extras, h1, df, dfb):
    """Yuan-Bentler (Mplus) scaling factors of model and baseline under FIML.

    The saturated-model information and scores are those of the incomplete
    data, in the (mean, vech covariance) order; moments of fixed covariates
    (``fixed_x``) are left out, as lavaan does.

    Returns ``(c, cb, tr_h1, tr_h0)``.
    """

    pr = prep.problem
    x = pr.x_of(z)
    Ainv = vc_extras["Ainv"]
    tr_h1 = 0.0
    tr_h0 = 0.0
    tr_b0 = 0.0
    for gi, (w, gk, h) in enumerate(zip(pr.w, pr.groups, h1)):
        p = gk.p
        iu = _vech_idx(p)
        nv = len(iu[0])
        perm = np.r_[np.arange(nv, nv + p), np.arange(nv)]  # scores (vech, mu) -> (mu, vech)
        k = _h1_keep(prep, p, True)
        cl = prep.clusters[gi]
        A1 = missing_h1_information(gk, h["S"], h["ybar"])[np.ix_(k, k)]
        B1 = _meat(missing_h1_scores(gk, h["S"], h["ybar"])[:, perm[k]], cl, gk.n)
        tr_h1 += np.sum(B1 * np.linalg.inv(A1).T)
        Sigma, mu, A_, C_, Aa = gk.implied(x)
        B1s = _meat(missing_h1_scores(gk, Sigma, mu)[:, perm[k]], cl, gk.n)
        DS, Dm = gk.delta(A_, C_, Aa)
        Delta = (np.vstack([Dm.T, DS[:, iu[0], iu[1]].T]) @ pr.K)[k]
        tr_h0 += w * np.sum(B1s * (Delta @ Ainv @ Delta.T))
        # baseline: free variances and means of the variables that are not fixed covariates
        Sb, mb = h["base_S"], h["base_mu"]
        Hb = missing_h1_information(gk, Sb, mb)[np.ix_(k, k)]
        D = _baseline_columns(prep, p)[k]
        Ab = D.T @ Hb @ D
        B1b = _meat(missing_h1_scores(gk, Sb, mb)[:, perm[k]], cl, gk.n)
        tr_b0 += np.sum(B1b * (D @ np.linalg.inv(Ab) @ D.T))
    c = (tr_h1 - tr_h0) / df if df > 0 else math.nan
    cb = (tr_h1 - tr_b0) / dfb if dfb > 0 else math.nan
    return c, cb, tr_h1, tr_h0


def _baseline_mean_count(prep, p):
    return p - (len(prep.roles["ov_x"]) if prep.fixed_x else 0)


def _baseline_columns(prep, p):
    """Derivatives of the (mean, vech covariance) moments wrt the baseline parameters.

    One mean and one variance per variable that is not a fixed covariate (means first), then,
    with random covariates (``fixed_x=False``), the covariances among the covariates.
    """
    iu = _vech_idx(p)
    nv = len(iu[0])
    x_all = [prep.ov.index(v) for v in prep.roles["ov_x"]]
    fixed = x_all if prep.fixed_x else []
    free_vars = [j for j in range(p) if j not in fixed]
    vech_pos = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(*iu))}
    xcov = [] if prep.fixed_x else [(a, b) for n, a in enumerate(x_all) for b in x_all[n + 1:]]
    nf = len(free_vars)
    D = np.zeros((p + nv, 2 * nf + len(xcov)))
    for c, j in enumerate(free_vars):
        D[j, c] = 1.0
        D[p + vech_pos[(j, j)], nf + c] = 1.0
    for c, (a, b) in enumerate(xcov):
        D[p + vech_pos[(min(a, b), max(a, b))], 2 * nf + c] = 1.0
    return D


def baseline_scaling(prep, h1):
    """(tr_h1, tr_h0) for the baseline (independence) model under MLR, complete data."""
    pr = prep.problem
    x_all = [prep.ov.index(v) for v in prep.roles["ov_x"]]
    tr_h0 = 0.0
    for gi, (w, gk) in enumerate(zip(pr.w, pr.groups)):
        p = gk.p
        ms = gk.meanstructure
        Sb = np.diag(np.diag(gk.S))
        if x_all:
            Sb[np.ix_(x_all, x_all)] = gk.S[np.ix_(x_all, x_all)]
        mu = gk.ybar
        A1 = h1_information_observed(Sb, mu, gk.S, gk.ybar, ms)
        B1 = _meat(_weighted(gk, h1_scores(gk.Y, Sb, mu, ms)), prep.clusters[gi], gk.n)
        D = _baseline_columns(prep, p)
        if not ms:
            D = D[p:, _baseline_mean_count(prep, p):]
        k = _h1_keep(prep, p, ms)
        A1 = A1[np.ix_(k, k)]
        B1 = B1[np.ix_(k, k)]
        D = D[k]
        Ab = D.T @ A1 @ D
        tr_h0 += np.sum(B1 * (D @ np.linalg.inv(Ab) @ D.T))  # baseline parameters are group-specific
    return h1_trace(prep), tr_h0


# ---------------------------------------------------------------------------
# standardization
# ---------------------------------------------------------------------------

def standardize_fn(prep, kind: str):
    """Return f(x) -> standardized values of every table row (+ defined parameters).

    ``kind`` is ``"std.lv"``, ``"std.all"`` or ``"both"`` (std.lv values then
    std.all values). ``x`` may be one parameter vector or a batch (rows), real
    or complex (for complex-step derivatives).
    """
    tab = prep.table
    pr = prep.problem
    lvset = set(prep.lv)
    ops = tab["op"].to_numpy()
    lhs = tab["lhs"].to_numpy()
    rhs = tab["rhs"].to_numpy()
    grp = tab["group"].to_numpy().astype(int) - 1
    free = tab["free"].to_numpy().astype(int)
    ust = np.nan_to_num(tab["ustart"].to_numpy(dtype=float))
    defined = prep.constraints.defined
    labels = tab["label"].to_numpy()
    plabels = tab["plabel"].to_numpy()
    pos = pr.groups[0].pos
    pl = np.array([pos[v] for v in lhs])
    prr = np.array([pos.get(v, 0) for v in rhs])
    is_load = ops == "=~"
    is_reg = ops == "~"
    is_var = (ops == "~~") & (lhs == rhs)
    is_cov = (ops == "~~") & (lhs != rhs)
    is_int = ops == "~1"
    lv_l = np.array([v in lvset for v in lhs])
    lv_r = np.array([v in lvset for v in rhs])
    both_lv = lv_l & lv_r
    fidx = np.maximum(free - 1, 0)
    has_free = free > 0
    first_label = {}
    for r in range(len(tab)):
        if labels[r] and labels[r] not in first_label:
            first_label[labels[r]] = r

    def _one(est, sd, pdg, std_lv):
        sl = sd[..., grp, pl]
        sr = sd[..., grp, prr]
        if std_lv:
            sl = np.where(lv_l, sl, 1.0)
            sr = np.where(lv_r, sr, 1.0)
        cov_den = np.sqrt(pdg[..., grp, pl] * pdg[..., grp, prr])
        if std_lv:
            cov_den = np.where(both_lv, cov_den, sl * sr)
        den = np.where(is_load, sr / sl, np.where(is_reg, sl / sr, np.where(
            is_var, sl * sl, np.where(is_cov, cov_den, np.where(is_int, sl, 1.0)))))
        out = est / den
        if defined:
            env = {lab: out[..., r] for lab, r in first_label.items()}
            for r in range(out.shape[-1]):
                env.setdefault(plabels[r], out[..., r])
            dvals = []
            for name, expr in defined.items():
                env[name] = expr.evaluate(env)
                dvals.append(np.broadcast_to(env[name], out.shape[:-1]))
            out = np.concatenate([out, np.stack(dvals, axis=-1)], axis=-1)
        return out

    def f(x):
        X = np.atleast_2d(x)
        k = X.shape[0]
        sds = []
        pds = []
        for gk in pr.groups:
            B = np.repeat(gk.B0[None], k, axis=0).astype(X.dtype)
            P = np.repeat(gk.P0[None], k, axis=0).astype(X.dtype)
            B[:, gk.B_i, gk.B_j] = X[:, gk.B_f]
            P[:, gk.P_i, gk.P_j] = X[:, gk.P_f]
            P[:, gk.P_j, gk.P_i] = X[:, gk.P_f]
            A = np.linalg.inv(gk.eye_m - B)
            C = A @ P @ np.swapaxes(A, 1, 2)
            sds.append(np.sqrt(np.diagonal(C, axis1=1, axis2=2)))
            pds.append(np.diagonal(P, axis1=1, axis2=2))
        sd = np.stack(sds, axis=1)  # (k, G, m)
        pdg = np.stack(pds, axis=1)
        est = np.where(has_free, X[:, fidx], ust)
        if kind == "both":
            out = np.concatenate([_one(est, sd, pdg, True), _one(est, sd, pdg, False)], axis=-1)
        else:
            out = _one(est, sd, pdg, kind == "std.lv")
        return out[0] if np.ndim(x) == 1 else out

    return f


# ---------------------------------------------------------------------------
# modification indices
# ---------------------------------------------------------------------------

MI_COLUMNS = ["lhs", "op", "rhs", "group", "mi", "epc", "sepc.lv", "sepc.all"]


def mi_candidates(prep, existing: set) -> list[tuple[str, str, str]]:
    """Fixed parameters that a modification index is computed for (lavaan's rules).

    Loadings of every latent variable on every observed variable that is not
    an exogenous covariate and not in a regression; residual covariances
    among indicators; variances and covariances of latent variables and of
    exogenous covariates; regressions among all variables that appear in
    regressions (no variable on itself, no indicator on a latent variable);
    intercepts with a mean structure. ``existing`` holds the free parameters:
    fixed ones (a marker loading, a fixed covariate variance) stay candidates
    and are tested at their fixed value.
    """
    roles = prep.roles
    ov, lv = list(prep.ov), list(prep.lv)
    meanstructure = prep.problem.groups[0].meanstructure
    ov_x = set(roles["ov_x"])
    ov_nox = [v for v in ov if v not in ov_x]
    ind = roles["indicators"]
    stmts = prep.roles.get("regressions", [])
    eqs = []
    for lhs_, rhs_ in stmts:
        for v in (lhs_,):
            if v not in eqs:
                eqs.append(v)
    for lhs_, rhs_ in stmts:
        if rhs_ not in eqs:
            eqs.append(rhs_)
    eqs_set = set(eqs)
    out = []

    def add(l, op, r):
        key = (l, op, r)
        if key in existing or (op == "~~" and (r, op, l) in existing):
            return
        if key not in out:
            out.append(key)

    for f in lv:
        for v in ov_nox:
            if v not in eqs_set:
                add(f, "=~", v)
    other = {v for v in ov if v not in ind}
    for j in range(len(ov_nox)):
        for i in range(j + 1, len(ov_nox)):
            a, b = ov_nox[j], ov_nox[i]
            if a in other or b in other:
                continue
            add(a, "~~", b)
    for j in range(len(lv)):
        for i in range(j, len(lv)):
            add(lv[j], "~~", lv[i])
    for j in range(len(roles["ov_x"])):
        for i in range(j, len(roles["ov_x"])):
            add(roles["ov_x"][j], "~~", roles["ov_x"][i])
    lvset = set(lv)
    for y in eqs:
        for x_ in eqs:
            if y == x_ or (y in ind and x_ in lvset):
                continue
            add(y, "~", x_)
    if meanstructure:
        for v in ov + lv:
            add(v, "~1", "")
    return out


def _kernel_value(gk, r):
    """Value of a fixed parameter as the kernel holds it (fixed-x moments at their sample values)."""
    if r["free"] > 0:
        return 0.0
    i = gk.pos[r["lhs"]]
    if r["op"] == "~1":
        return gk.a0[i]
    j = gk.pos[r["rhs"]]
    if r["op"] == "~~":
        return gk.P0[i, j]
    if r["op"] == "~":
        return gk.B0[i, j]
    return gk.B0[j, i]


def _expected_info_without_x(gk, x, x_idx):
    """Expected information with the moments of fixed covariates left out (lavaan's fixed.x):
    ``Delta' W Delta`` with the rows and columns of ``W`` (saturated-model information) that
    belong to covariate means and (co)variances among covariates set to zero. Under FIML the
    sum over missing-data patterns (the covariates are observed in every row kept), each
    weighted by its share of rows."""
    Sigma, mu, A, C, Aa = gk.implied(x)
    DS, Dm = gk.delta(A, C, Aa)
    ms = gk.meanstructure
    xs = set(x_idx)
    pats = ([(np.arange(gk.p), 1.0)] if gk.patterns is None
            else [(pt["obs"], pt["n"] / gk.n) for pt in gk.patterns])
    out = 0.0
    for o, share in pats:
        So = Sigma[np.ix_(o, o)]
        W = h1_information_observed(So, mu[o], So, mu[o], ms)
        iu = _vech_idx(len(o))
        r, c = o[iu[0]], o[iu[1]]
        zero = [a in xs and b in xs for a, b in zip(r, c)]
        D = DS[:, r, c].T
        if ms:
            zero = [j in xs for j in o] + zero
            D = np.vstack([Dm[:, o].T, D])
        zero = np.array(zero)
        W[zero, :] = 0.0
        W[:, zero] = 0.0
        out = out + share * (D.T @ W @ D)
    return out


def modification_indices(prep, x):
    """Score tests (modification indices) for parameters fixed to zero, as lavaan's ``modindices()``.

    With ``I`` the expected information per observation of the model extended
    by the candidate parameters (under FIML the expected information of the
    incomplete data, pattern by pattern), ``V = I_cc - I_cf I_ff^-1 I_fc``
    and ``s`` the derivative of ``loglik / N`` at the estimates,
    ``mi = N s^2 / V`` and ``epc = s / V``. Candidates whose ``V`` is
    (numerically) zero are equivalent to parameters already in the model and
    are not reported.
    """

    pr = prep.problem
    tab = prep.table
    rows_out = []
    Kz = pr.K
    I11 = np.zeros((pr.nfree, pr.nfree))
    for w, gk in zip(pr.w, pr.groups):
        Ig = group_expected_info_missing(gk, x) if pr.missing else group_expected_info(gk, x)
        I11 += w * Ig
    I11z_inv = _inv(Kz.T @ I11 @ Kz)
    eps = np.finfo(float).eps ** (1 / 3)
    x_idx = [prep.ov.index(v) for v in prep.roles["ov_x"]] if prep.fixed_x else []
    for gi, gk in enumerate(pr.groups):
        gt = tab.loc[tab["group"] == gi + 1].to_dict("records")
        existing = {(r["lhs"], r["op"], r["rhs"]) for r in gt if r["free"] > 0}
        fixed_val = {}
        for r in gt:
            if r["free"] == 0:
                fixed_val[(r["lhs"], r["op"], r["rhs"])] = fixed_val[(r["rhs"], r["op"], r["lhs"])] = \
                    float(_kernel_value(gk, r))
        cands = mi_candidates(prep, existing)
        if not cands:
            continue
        q = pr.nfree
        cand_set = set(cands) | {(r, o, l) for l, o, r in cands if o == "~~"}
        recs = [dict(op=r["op"], lhs=r["lhs"], rhs=r["rhs"], free=r["free"], value=_kernel_value(gk, r))
                for r in gt if (r["lhs"], r["op"], r["rhs"]) not in cand_set]
        start = []
        for k, (l, op, rr) in enumerate(cands):
            recs.append(dict(op=op, lhs=l, rhs=rr, free=q + k + 1, value=0.0))
            start.append(fixed_val.get((l, op, rr), 0.0))
        ek = GroupKernel(recs, prep.ov, prep.lv, q + len(cands), gk.meanstructure)
        ek.Y, ek.n, ek.S, ek.ybar, ek.logdetS, ek.patterns = gk.Y, gk.n, gk.S, gk.ybar, gk.logdetS, gk.patterns
        xe = np.concatenate([x, np.array(start)])
        if pr.missing:
            ek.batches = gk.batches
            _, grad = group_fiml(ek, xe)
            I = group_expected_info_missing(ek, xe) if not x_idx else _expected_info_without_x(ek, xe, x_idx)
        else:
            _, grad = group_fml(ek, xe)
            I = group_expected_info(ek, xe) if not x_idx else _expected_info_without_x(ek, xe, x_idx)
        w = pr.w[gi]
        I12 = w * (Kz.T @ I[:q, q:])
        I22 = w * I[q:, q:]
        V = np.diag(I22) - np.einsum("ia,ij,ja->a", I12, I11z_inv, I12)
        score = -0.5 * w * grad[q:]  # derivative of loglik / N
        with np.errstate(divide="ignore", invalid="ignore"):
            mi = pr.N * score ** 2 / V
            epc = score / V
        Sigma, mu, A, C, Aa = gk.implied(x)
        B, P, a = gk.matrices(x)
        sd = np.sqrt(np.diag(C))
        lvset = set(prep.lv)
        for k, (l, op, rr) in enumerate(cands):
            if not V[k] >= eps:
                continue
            pl, prr = gk.pos[l], gk.pos[rr]
            e = epc[k]
            if op == "=~":
                sepc_lv = e * sd[pl]
                sepc_all = e * sd[pl] / sd[prr]
            elif op == "~":
                sl = sd[pl] if l in lvset else 1.0
                sr = sd[prr] if rr in lvset else 1.0
                sepc_lv = e * sr / sl
                sepc_all = e * sd[prr] / sd[pl]
            elif op == "~1":
                sepc_lv = e / sd[pl] if l in lvset else e
                sepc_all = e / sd[pl]
            else:
                # covariances scaled by the (residual) variances (lavaan's cov.std); variances by the
                # total variance
                if l == rr:
                    sepc_all = e / C[pl, pl]
                    sepc_lv = e / C[pl, pl] if l in lvset else e
                else:
                    den = math.sqrt(P[pl, pl] * P[prr, prr])
                    sepc_all = e / den
                    sepc_lv = e / den if (l in lvset and rr in lvset) else e
            rows_out.append(dict(lhs=l, op=op, rhs=rr, group=gi + 1, mi=mi[k], epc=e,
                                 **{"sepc.lv": sepc_lv, "sepc.all": sepc_all}))
    return pd.DataFrame(rows_out, columns=MI_COLUMNS)


# ---------------------------------------------------------------------------
# robust fit indices under FIML (Savalei 2018; Zhang & Savalei 2023)
# ---------------------------------------------------------------------------

def _ml_discrepancy(Sigma, mu, S, ybar):
    """Complete-data ML discrepancy of (Sigma, mu) for sample moments (S, ybar)."""
    p = S.shape[0]
    Sinv, logdet = chol_inv_logdet(Sigma)
    if Sinv is None:
        return math.nan
    d = ybar - mu
    return logdet + np.sum(S * Sinv) - np.linalg.slogdet(S)[1] - p + d @ Sinv @ d


def fiml_corrected(prep, z, h1, df, dfb, *, version: str = "V3"):
    """Statistics behind the robust CFI, TLI and RMSEA of a model fitted by FIML.

    The model and the independence baseline are evaluated, at their FIML
    estimates, against the saturated (EM) moments as if those were complete
    data (``X2``, ``X2b``); the scaling factors correct for the missing data:
    with ``Wm`` the observed information of the saturated model under missing
    data, ``Wc`` its complete-data information at the EM moments, ``Delta`` the
    model derivatives and ``U = Wm - Wm Delta (Delta' Wm Delta)^-1 Delta' Wm``,
    version ``"V3"`` (used with a scaled test) has
    ``k = tr(U Wm^-1 Wc Wm^-1 U Gamma)`` with ``Gamma = Wm^-1 J Wm^-1`` (``J`` the
    first-order information), version ``"V6"`` has ``k = tr(Wc Wm^-1 U Wm^-1)``;
    ``c = k / df``. Groups enter block-diagonally with weights ``n_g / N``.

    With fixed exogenous covariates (``fixed_x``) the moments of the
    covariates are left out of every matrix (lavaan sets their rows and
    columns to zero and inverts the rest).

    Returns
    -------
    dict with ``X2, df, c, X2b, dfb, cb``.
    """

    pr = prep.problem
    x = pr.x_of(z)
    fg = pr.w
    Wm_b, Wmi_b, Wc_b, Gam_b, D_b, DB_b = [], [], [], [], [], []
    X2 = 0.0
    X2b = 0.0
    nb = 0
    for g, (gk, h) in enumerate(zip(pr.groups, h1)):
        p = gk.p
        iu = _vech_idx(p)
        nv = len(iu[0])
        S_t, m_t = h["S"], h["ybar"]
        perm = np.r_[np.arange(nv, nv + p), np.arange(nv)]  # (mu, vech Sigma) order
        k = _h1_keep(prep, p, True)
        Wm = missing_h1_information(gk, S_t, m_t)[np.ix_(k, k)]
        Wmi = np.linalg.inv(Wm)
        Wc = h1_information_observed(S_t, m_t, S_t, m_t, True)[np.ix_(k, k)]
        if not prep.fixed_x and prep.roles["ov_x"]:
            # lavaan 0.6 evaluates the complete-data information on a refit that treats the
            # covariates as fixed whatever the model says: their moments drop out of Wc only
            kx = _h1_keep(prep, p, True, covariates_fixed=True)
            out_x = np.setdiff1d(np.arange(len(k)), kx)
            Wc[out_x, :] = 0.0
            Wc[:, out_x] = 0.0
        Sigma, mu, A_, C_, Aa = gk.implied(x)
        X2 += gk.n * _ml_discrepancy(Sigma, mu, S_t, m_t)
        X2b += gk.n * _ml_discrepancy(h["base_S"], h["base_mu"], S_t, m_t)
        DS, Dm = gk.delta(A_, C_, Aa)
        D_b.append((np.vstack([Dm.T, DS[:, iu[0], iu[1]].T]) @ pr.K)[k])
        # baseline: one mean and one variance per variable (fixed covariates excepted) in this group
        DB = _baseline_columns(prep, p)[k]
        DB_b.append(DB)
        nb += DB.shape[1]
        Wm_b.append(fg[g] * Wm)
        Wmi_b.append(Wmi / fg[g])
        Wc_b.append(fg[g] * Wc)
        if version == "V3":
            sc = missing_h1_scores(gk, S_t, m_t)[:, perm[k]]
            J = _meat(sc, prep.clusters[g], gk.n)
            Gam_b.append(Wmi @ J @ Wmi / fg[g])
    Wm = sla.block_diag(*Wm_b)
    Wmi = sla.block_diag(*Wmi_b)
    Wc = sla.block_diag(*Wc_b)
    Delta = np.vstack(D_b)
    DeltaB = sla.block_diag(*DB_b)

    def k_of(D):
        WD = Wm @ D
        U = Wm - WD @ np.linalg.solve(D.T @ WD, WD.T)
        if version == "V3":
            Gam = sla.block_diag(*Gam_b)
            return np.trace(U @ Wmi @ Wc @ Wmi @ U @ Gam)
        return np.trace(Wc @ Wmi @ U @ Wmi)

    c = k_of(Delta) / df if df > 0 else math.nan
    cb = k_of(DeltaB) / dfb if dfb > 0 else math.nan
    return dict(X2=X2, df=df, c=c, X2b=X2b, dfb=dfb, cb=cb)
