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
from scipy import stats

from .fitmeasures import fit_measures, srmr_group
from .kernel import LOG2PI, chol_inv_logdet, em_saturated, group_loglik

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


def vcov_free(prep, z, *, information_kind: str, se: str):
    """Covariance matrix of the free parameters (x-space) and the pieces used."""
    pr = prep.problem
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
    ov_x = [prep.ov.index(v) for v in prep.roles["ov_x"]] if prep.fixed_x else []
    out = []
    for gk in pr.groups:
        p = gk.p
        if gk.patterns is None:
            S, ybar = gk.S, gk.ybar
            ll1 = group_loglik(gk, S, ybar)
        else:
            S, ybar, ll1 = em_saturated(gk)
        # baseline: independent variables (covariances among fixed-x covariates kept)
        if gk.patterns is None:
            Sb = np.diag(np.diag(S))
            if ov_x:
                Sb[np.ix_(ov_x, ov_x)] = S[np.ix_(ov_x, ov_x)]
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
            llb = group_loglik(gk, Sb, mu_b)
        out.append(dict(S=S, ybar=ybar, ll1=ll1, llb=llb))
    return out


def assemble_fit(prep, z, h1, *, scaled=None):
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
    npar = pr.nz
    df = nstat - npar
    # baseline: variances (and means) of the non-fixed-x variables are free
    p = pr.groups[0].p
    dfb = nstat - G * ((p - px) + ((p - px) if pr.groups[0].meanstructure else 0))
    X2 = max(2.0 * (ll1 - ll0), 0.0)
    X2b = max(2.0 * (ll1 - llb), 0.0)
    f, _ = pr.fz(z, want_grad=False)
    fmin = X2 / (2 * N)
    fm = fit_measures(X2=X2, df=df, X2b=X2b, dfb=dfb, N=N, G=G, npar=npar, logl=ll0, logl_h1=ll1,
                      fmin=fmin, srmr_parts=srmr_parts, weights=pr.w, scaled=scaled)
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


def yuan_bentler_mplus(prep, z, vc_extras, df):
    """Scaling factor c of the Yuan-Bentler (Mplus) test for complete data ML."""
    pr = prep.problem
    x = pr.x_of(z)
    Ainv = vc_extras["Ainv"]
    tr_h1 = 0.0
    tr_h0 = 0.0
    for gi, (w, gk) in enumerate(zip(pr.w, pr.groups)):
        Sigma, mu, A_, C_, Aa = gk.implied(x)
        ms = gk.meanstructure
        mu_use = mu if ms else gk.ybar
        A1 = h1_information_observed(Sigma, mu_use, gk.S, gk.ybar, ms)
        sc = h1_scores(gk.Y, Sigma, mu_use, ms)
        cl = prep.clusters[gi]
        if cl is None:
            B1 = sc.T @ sc / gk.n
        else:
            codes, inv = np.unique(cl, return_inverse=True)
            Gc = len(codes)
            sums = np.zeros((Gc, sc.shape[1]))
            np.add.at(sums, inv.ravel(), sc)
            B1 = (Gc / (Gc - 1.0)) * sums.T @ sums / gk.n
        DS, Dm = gk.delta(A_, C_, Aa)
        iu = _vech_idx(gk.p)
        Dv = DS[:, iu[0], iu[1]].T  # (nvech, nfree)
        Delta = np.vstack([Dm.T, Dv]) if ms else Dv
        Delta = Delta @ pr.K
        tr_h1 += w * np.sum(B1 * np.linalg.inv(A1).T)
        tr_h0 += w * np.sum(B1 * (Delta @ Ainv @ Delta.T))
    return (tr_h1 - tr_h0) / df if df > 0 else math.nan, tr_h1


def baseline_scaling(prep, h1):
    """Scaling factor of the baseline (independence) model under MLR, complete data."""
    pr = prep.problem
    ov_x = [prep.ov.index(v) for v in prep.roles["ov_x"]] if prep.fixed_x else []
    tr_h1 = 0.0
    tr_h0 = 0.0
    df = 0
    for gi, (w, gk, h) in enumerate(zip(pr.w, pr.groups, h1)):
        p = gk.p
        ms = gk.meanstructure
        Sb = np.diag(np.diag(gk.S))
        if ov_x:
            Sb[np.ix_(ov_x, ov_x)] = gk.S[np.ix_(ov_x, ov_x)]
        mu = gk.ybar
        A1 = h1_information_observed(Sb, mu, gk.S, gk.ybar, ms)
        sc = h1_scores(gk.Y, Sb, mu, ms)
        cl = prep.clusters[gi]
        if cl is None:
            B1 = sc.T @ sc / gk.n
        else:
            codes, inv = np.unique(cl, return_inverse=True)
            Gc = len(codes)
            sums = np.zeros((Gc, sc.shape[1]))
            np.add.at(sums, inv.ravel(), sc)
            B1 = (Gc / (Gc - 1.0)) * sums.T @ sums / gk.n
        iu = _vech_idx(p)
        nv = len(iu[0])
        # Delta of the baseline: free means (if ms) and variances (and fixed-x block)
        cols = []
        nm = p if ms else 0
        for j in range(p):
            if ms and j not in ov_x:
                c = np.zeros(nm + nv)
                c[j] = 1.0
                cols.append(c)
        for k in range(nv):
            i, j = iu[0][k], iu[1][k]
            if (i == j and i not in ov_x):
                c = np.zeros(nm + nv)
                c[nm + k] = 1.0
                cols.append(c)
        D = np.array(cols).T
        Ab = D.T @ A1 @ D
        tr_h1 += w * np.sum(B1 * np.linalg.inv(A1).T)
        tr_h0 += w * np.sum(B1 * (D @ np.linalg.inv(Ab * 1.0) @ D.T)) if False else 0.0
        tr_h0_g = np.sum(B1 * (D @ np.linalg.inv(Ab) @ D.T))
        tr_h0 += w * tr_h0_g
        df += D.shape[1]
    return tr_h1, tr_h0


# ---------------------------------------------------------------------------
# standardization
# ---------------------------------------------------------------------------

def standardize_fn(prep, kind: str):
    """Return f(x) -> standardized values of every table row (+ defined parameters)."""
    tab = prep.table
    pr = prep.problem
    lv = set(prep.lv)
    ops = tab["op"].to_numpy()
    lhs = tab["lhs"].to_numpy()
    rhs = tab["rhs"].to_numpy()
    grp = tab["group"].to_numpy() - 1
    free = tab["free"].to_numpy()
    ust = tab["ustart"].to_numpy()
    defined = prep.constraints.defined
    labels = tab["label"].to_numpy()
    plabels = tab["plabel"].to_numpy()

    def f(x):
        vals = []
        pos_cache = []
        for gk in pr.groups:
            B, P, a = gk.matrices(x)
            A = np.linalg.inv(np.eye(gk.m) - B)
            C = A @ P @ A.T
            sd = np.sqrt(np.diag(C))
            pos_cache.append((gk.pos, sd, np.diag(P)))
        out = np.empty(len(tab), dtype=x.dtype if x.dtype.kind == "c" else float)
        for r in range(len(tab)):
            pos, sd, pdiag = pos_cache[grp[r]]
            est = x[free[r] - 1] if free[r] > 0 else ust[r]
            op = ops[r]
            l, rr = lhs[r], rhs[r]
            if kind == "std.all":
                sl = sd[pos[l]]
                if op == "=~":
                    out[r] = est * sl / sd[pos[rr]]
                elif op == "~":
                    out[r] = est * sd[pos[rr]] / sl
                elif op == "~~":
                    if l == rr:
                        out[r] = est / sl ** 2
                    else:
                        out[r] = est / np.sqrt(pdiag[pos[l]] * pdiag[pos[rr]])
                else:
                    out[r] = est / sl
            else:  # std.lv: only latent variables rescaled
                def s(v):
                    return sd[pos[v]] if v in lv else 1.0
                if op == "=~":
                    out[r] = est * s(l)
                elif op == "~":
                    out[r] = est * s(rr) / s(l)
                elif op == "~~":
                    if l == rr:
                        out[r] = est / s(l) ** 2
                    elif l in lv and rr in lv:
                        out[r] = est / np.sqrt(pdiag[pos[l]] * pdiag[pos[rr]])
                    elif l in lv or rr in lv:
                        out[r] = est / (s(l) * s(rr))
                    else:
                        out[r] = est
                else:
                    out[r] = est / s(l)
        if defined:
            env = {}
            for r in range(len(tab)):
                if labels[r] and labels[r] not in env:
                    env[labels[r]] = out[r]
                env[plabels[r]] = out[r]
            dvals = []
            for name, expr in defined.items():
                env[name] = expr.evaluate(env)
                dvals.append(env[name])
            out = np.concatenate([out, np.array(dvals, dtype=out.dtype)])
        return out

    return f


# ---------------------------------------------------------------------------
# modification indices
# ---------------------------------------------------------------------------

def modification_indices(prep, x, vcov_kind="expected"):
    """Score tests for fixed-to-zero parameters (loadings, residual covariances, latent regressions)."""
    from .kernel import GroupKernel, group_expected_info, group_fml

    pr = prep.problem
    tab = prep.table
    if pr.missing:
        return pd.DataFrame(columns=["lhs", "op", "rhs", "group", "mi", "epc", "sepc.lv", "sepc.all"])
    roles = prep.roles
    indicators = [v for v in prep.ov if v in roles["indicators"]]
    rows_out = []
    for gi, gk in enumerate(pr.groups):
        existing = set()
        gt = tab.loc[tab["group"] == gi + 1]
        for _, r in gt.iterrows():
            existing.add((r["lhs"], r["op"], r["rhs"]))
            if r["op"] == "~~":
                existing.add((r["rhs"], r["op"], r["lhs"]))
        cands = []
        for f in prep.lv:
            for v in indicators:
                if (f, "=~", v) not in existing:
                    cands.append((f, "=~", v))
        ovs = [v for v in prep.ov if v not in roles["ov_x"]]
        for i in range(len(ovs)):
            for j in range(i + 1, len(ovs)):
                if (ovs[i], "~~", ovs[j]) not in existing:
                    cands.append((ovs[i], "~~", ovs[j]))
        if not cands:
            continue
        # extended kernel: current free parameters + candidate cells
        q = pr.nfree
        recs = []
        for _, r in gt.iterrows():
            val = r["ustart"]
            recs.append(dict(op=r["op"], lhs=r["lhs"], rhs=r["rhs"], free=r["free"], value=val))
        for k, (l, op, rr) in enumerate(cands):
            recs.append(dict(op=op, lhs=l, rhs=rr, free=q + k + 1, value=0.0))
        ek = GroupKernel(recs, prep.ov, prep.lv, q + len(cands), gk.meanstructure)
        ek.Y, ek.n, ek.S, ek.ybar, ek.logdetS, ek.patterns = gk.Y, gk.n, gk.S, gk.ybar, gk.logdetS, None
        xe = np.concatenate([x, np.zeros(len(cands))])
        _, grad = group_fml(ek, xe)
        I = group_expected_info(ek, xe)
        # full-model information over all groups for the free part
        I11 = pr.info_x(x)
        Kz = pr.K
        I11z = Kz.T @ I11 @ Kz
        w = pr.w[gi]
        I12 = w * (Kz.T @ I[:q, q:])
        I22 = w * I[q:, q:]
        V = np.diag(I22) - np.einsum("ia,ij,ja->a", I12, np.linalg.inv(I11z), I12)
        d = w * grad[q:]  # derivative of the total F
        score = -0.5 * d
        mi = pr.N * score ** 2 / V
        epc = score / V
        # standardized epc
        Sigma, mu, A, C, Aa = gk.implied(x)
        sd = np.sqrt(np.diag(C))
        for k, (l, op, rr) in enumerate(cands):
            pl, prr = gk.pos[l], gk.pos[rr]
            if op == "=~":
                sepc_lv = epc[k] * sd[pl]
                sepc_all = epc[k] * sd[pl] / sd[prr]
            else:
                B, P, a = gk.matrices(x)
                sepc_lv = epc[k]
                sepc_all = epc[k] / math.sqrt(P[pl, pl] * P[prr, prr])
            rows_out.append(dict(lhs=l, op=op, rhs=rr, group=gi + 1, mi=mi[k], epc=epc[k],
                                 **{"sepc.lv": sepc_lv, "sepc.all": sepc_all}))
    return pd.DataFrame(rows_out)
