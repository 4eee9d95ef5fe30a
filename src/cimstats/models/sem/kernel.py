"""Numeric kernel of the SEM core: arrays in, numbers out.

The model of each group is written in reticular action (RAM) form over the
vector of all variables (observed first, then latent)::

    eta   = alpha + B eta + zeta,   Cov(zeta) = Psi
    Sigma = F (I - B)^-1 Psi (I - B)^-T F',   mu = F (I - B)^-1 alpha

where ``F`` selects the observed variables. Loadings and regressions live in
``B``, all (residual) variances and covariances in ``Psi`` and intercepts in
``alpha``. This is equivalent to lavaan's LISREL matrices (Lambda = B[ov, lv],
Theta = Psi[ov, ov], Psi_lisrel = Psi[lv, lv], Beta = B[lv, lv]).

The objective is ``F_ML = sum_g (n_g / N) F_g`` with
``F_g = log|Sigma| + tr(S Sigma^-1) - log|S| - p + (ybar - mu)' Sigma^-1 (ybar - mu)``
for complete data (so that the likelihood-ratio chi-square is ``N F_ML``) and
``-2 loglik / N`` (up to a constant) for full-information ML with missing data.
Gradients are analytic: for any objective with matrix derivative
``G = dF/dSigma`` and ``g = dF/dmu``,
``dF/dB_ij = 2 [(FA)' G (FC)]_ij + [(FA)' g]_i [A alpha]_j``,
``dF/dPsi_ij = 2 [(FA)' G (FA)]_ij`` (off-diagonal), and ``dF/dalpha = (FA)' g``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
from scipy import linalg as sla

LOG2PI = np.log(2.0 * np.pi)


class GroupKernel:
    """Matrix layout and sample statistics of one group."""

    def __init__(self, rows, ov: list[str], lv: list[str], nfree: int, meanstructure: bool):
        self.ov = list(ov)
        self.lv = list(lv)
        self.p = len(ov)
        self.m = len(ov) + len(lv)
        self.meanstructure = meanstructure
        pos = {v: i for i, v in enumerate(self.ov + self.lv)}
        self.pos = pos
        m = self.m
        self.B0 = np.zeros((m, m))
        self.P0 = np.zeros((m, m))
        self.a0 = np.zeros(m)
        cells = []  # (kind, i, j, free index 0-based)
        self.exo_cells = []  # fixed-x moments: (kind, i, j) refreshed from the sample
        for r in rows:
            if r.get("exo", 0) == 1:
                if r["op"] == "~1":
                    self.exo_cells.append(("a", pos[r["lhs"]], 0))
                else:
                    self.exo_cells.append(("P", pos[r["lhs"]], pos[r["rhs"]]))
            op, lhs, rhs, free, val = r["op"], r["lhs"], r["rhs"], int(r["free"]) - 1, r["value"]
            if op == "=~":
                kind, i, j = "B", pos[rhs], pos[lhs]
            elif op == "~":
                kind, i, j = "B", pos[lhs], pos[rhs]
            elif op == "~~":
                kind, i, j = "P", pos[lhs], pos[rhs]
            elif op == "~1":
                kind, i, j = "a", pos[lhs], 0
            else:
                continue
            if free < 0:
                if kind == "B":
                    self.B0[i, j] = val
                elif kind == "P":
                    self.P0[i, j] = self.P0[j, i] = val
                else:
                    self.a0[i] = val
            else:
                cells.append((kind, i, j, free))
        self.nfree = nfree
        kinds = np.array([c[0] for c in cells], dtype=object)
        self.cells = cells
        ci = np.array([c[1] for c in cells], dtype=int)
        cj = np.array([c[2] for c in cells], dtype=int)
        cf = np.array([c[3] for c in cells], dtype=int)
        self.bB = kinds == "B"
        self.bP = kinds == "P"
        self.ba = kinds == "a"
        self.B_i, self.B_j, self.B_f = ci[self.bB], cj[self.bB], cf[self.bB]
        self.P_i, self.P_j, self.P_f = ci[self.bP], cj[self.bP], cf[self.bP]
        self.a_i, self.a_f = ci[self.ba], cf[self.ba]
        self.P_off = self.P_i != self.P_j
        self.P_w = np.where(self.P_off, 2.0, 1.0)
        self.eye_m = np.eye(self.m)
        # incidence of cells -> free parameters (for Delta)
        ncell = len(cells)
        self.inc = np.zeros((nfree, ncell))
        if ncell:
            self.inc[cf, np.arange(ncell)] = 1.0
        self.cell_order = np.concatenate([np.where(self.bB)[0], np.where(self.bP)[0], np.where(self.ba)[0]])
        # sample statistics (filled by set_data)
        self.n = 0
        self.S = None
        self.ybar = None
        self.logdetS = 0.0
        self.patterns = None  # FIML
        self.Y = None

    # ---------------------------------------------------------------
    def matrices(self, x):
        B = self.B0.copy()
        P = self.P0.copy()
        a = self.a0.copy()
        if x.dtype.kind == "c":
            B = B.astype(complex)
            P = P.astype(complex)
            a = a.astype(complex)
        B[self.B_i, self.B_j] = x[self.B_f]
        P[self.P_i, self.P_j] = x[self.P_f]
        P[self.P_j, self.P_i] = x[self.P_f]
        a[self.a_i] = x[self.a_f]
        return B, P, a

    def implied(self, x):
        """Return Sigma, mu and the intermediate A = (I-B)^-1, C = A Psi A'."""
        B, P, a = self.matrices(x)
        A = np.linalg.inv(self.eye_m - B)
        C = A @ P @ A.T
        p = self.p
        Sigma = C[:p, :p]
        Aa = A @ a
        mu = Aa[:p]
        return Sigma, mu, A, C, Aa

    def chain(self, G, gmu, A, C, Aa):
        """Gradient wrt free parameters given dF/dSigma (G, symmetric) and dF/dmu (gmu)."""
        p = self.p
        FA = A[:p, :]
        FCt = C[:p, :]
        q = self.nfree
        grad = np.zeros(q)
        GFA = G @ FA
        v = FA.T @ gmu if gmu is not None else None
        if self.B_i.size:
            M = 2.0 * (GFA.T @ FCt)
            vals = M[self.B_i, self.B_j]
            if v is not None:
                vals = vals + v[self.B_i] * Aa[self.B_j]
            grad += np.bincount(self.B_f, weights=vals, minlength=q)
        if self.P_i.size:
            M = FA.T @ GFA
            vals = M[self.P_i, self.P_j] * self.P_w
            grad += np.bincount(self.P_f, weights=vals, minlength=q)
        if self.a_i.size and v is not None:
            grad += np.bincount(self.a_f, weights=v[self.a_i], minlength=q)
        return grad

    def delta(self, A, C, Aa):
        """Derivatives of Sigma (nfree, p, p) and mu (nfree, p) wrt the free parameters."""
        p = self.p
        FA = A[:p, :]
        FC = C[:p, :]
        parts_S = []
        parts_m = []
        if self.B_i.size:
            g = FA[:, self.B_i].T  # (nb, p)
            h = FC[:, self.B_j].T
            dS = g[:, :, None] * h[:, None, :]
            parts_S.append(dS + dS.transpose(0, 2, 1))
            parts_m.append(g * Aa[self.B_j][:, None])
        if self.P_i.size:
            gi = FA[:, self.P_i].T
            gj = FA[:, self.P_j].T
            dS = gi[:, :, None] * gj[:, None, :]
            dS = np.where(self.P_off[:, None, None], dS + dS.transpose(0, 2, 1), dS)
            parts_S.append(dS)
            parts_m.append(np.zeros((self.P_i.size, p)))
        if self.a_i.size:
            parts_S.append(np.zeros((self.a_i.size, p, p)))
            parts_m.append(FA[:, self.a_i].T)
        ncell = len(self.cells)
        if ncell == 0:
            return np.zeros((self.nfree, p, p)), np.zeros((self.nfree, p))
        dS_cells = np.concatenate(parts_S)
        dm_cells = np.concatenate(parts_m)
        inc = self.inc[:, self.cell_order]
        DS = (inc @ dS_cells.reshape(ncell, -1)).reshape(self.nfree, p, p)
        Dm = inc @ dm_cells
        return DS, Dm

    # ---------------------------------------------------------------
    def set_complete(self, Y: np.ndarray):
        self.Y = Y
        self.n = Y.shape[0]
        self.ybar = Y.mean(axis=0)
        R = Y - self.ybar
        self.S = (R.T @ R) / self.n
        sign, logdet = np.linalg.slogdet(self.S)
        self.logdetS = logdet if sign > 0 else np.nan
        self.patterns = None

    def set_weights(self, Y: np.ndarray, counts: np.ndarray) -> bool:
        """Sample statistics of a resample given how often each row was drawn."""
        n = counts.sum()
        self.n = n
        self.ybar = counts @ Y / n
        R = Y - self.ybar
        self.S = (R.T * counts) @ R / n
        sign, logdet = np.linalg.slogdet(self.S)
        self.logdetS = logdet
        self.Y = None
        self.refresh_exo()
        return bool(sign > 0)

    def refresh_exo(self):
        """Set fixed-x variances, covariances and means to the current sample values."""
        for kind, i, j in self.exo_cells:
            if kind == "a":
                self.a0[i] = self.ybar[i]
            else:
                self.P0[i, j] = self.P0[j, i] = self.S[i, j]

    def set_missing(self, Y: np.ndarray):
        """Group rows by missing-data pattern (rows with no observed value must be removed before)."""
        self.Y = Y
        self.n = Y.shape[0]
        obs = ~np.isnan(Y)
        keys, inv = np.unique(obs, axis=0, return_inverse=True)
        inv = inv.ravel()
        pats = []
        for k in range(keys.shape[0]):
            rows = np.where(inv == k)[0]
            o = np.where(keys[k])[0]
            Yp = Y[np.ix_(rows, o)]
            yb = Yp.mean(axis=0)
            R = Yp - yb
            pats.append(dict(rows=rows, obs=o, n=len(rows), ybar=yb, S=(R.T @ R) / len(rows)))
        # batch patterns with the same number of observed variables
        batches = {}
        for pt in pats:
            batches.setdefault(len(pt["obs"]), []).append(pt)
        self.batches = []
        for k, lst in batches.items():
            obs_arr = np.array([pt["obs"] for pt in lst])
            self.batches.append(dict(
                flat=(obs_arr[:, :, None] * Y.shape[1] + obs_arr[:, None, :]).ravel(),
                obs=obs_arr,
                n=np.array([pt["n"] for pt in lst], dtype=float),
                ybar=np.array([pt["ybar"] for pt in lst]),
                S=np.array([pt["S"] for pt in lst]),
            ))
        self.patterns = pats
        self.case_pattern = inv
        self.obs_mask = obs
        # pairwise-available statistics (start values, fixed.x)
        self.ybar = np.nanmean(Y, axis=0)
        self.S = _pairwise_cov(Y)
        self.logdetS = np.nan


def _pairwise_cov(Y):
    p = Y.shape[1]
    S = np.empty((p, p))
    for i in range(p):
        for j in range(i, p):
            ok = ~np.isnan(Y[:, i]) & ~np.isnan(Y[:, j])
            a = Y[ok, i] - Y[ok, i].mean()
            b = Y[ok, j] - Y[ok, j].mean()
            S[i, j] = S[j, i] = (a @ b) / max(ok.sum(), 1)
    return S


from scipy.linalg import lapack as _lapack

_dpotrf = _lapack.dpotrf
_dpotri = _lapack.dpotri
_TRIU: dict = {}


def chol_inv_logdet(S):
    """Inverse and log-determinant of a positive-definite matrix (None if not PD)."""
    if S.dtype.kind == "c" or not np.all(np.isfinite(S)):
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            return None, None
        Linv = np.linalg.inv(L)
        return Linv.T @ Linv, 2.0 * np.sum(np.log(np.diag(L)))
    c, info = _dpotrf(S, lower=1, clean=0)
    if info != 0:
        return None, None
    logdet = 2.0 * np.sum(np.log(np.diagonal(c)))
    inv, info = _dpotri(c, lower=1)
    if info != 0:
        return None, None
    iu = _TRIU.get(S.shape[0])
    if iu is None:
        iu = _TRIU[S.shape[0]] = np.triu_indices(S.shape[0], 1)
    inv[iu] = inv.T[iu]
    return inv, logdet


def batch_inv_logdet(S):
    """Batched inverse and log-determinant; None when any matrix is not PD."""
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        return None, None
    logdet = 2.0 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    Linv = np.linalg.inv(L)
    inv = np.swapaxes(Linv, -1, -2) @ Linv
    return inv, logdet


# -------------------------------------------------------------------------
# objectives
# -------------------------------------------------------------------------

def group_fml(gk: GroupKernel, x, want_grad=True):
    """Complete-data ML discrepancy F_g and (optionally) its gradient."""
    Sigma, mu, A, C, Aa = gk.implied(x)
    Sinv, logdet = chol_inv_logdet(Sigma)
    if Sinv is None:
        return np.inf, None
    p = gk.p
    f = logdet + np.sum(gk.S * Sinv) - gk.logdetS - p
    d = None
    if gk.meanstructure:
        d = gk.ybar - mu
        Sd = Sinv @ d
        f += d @ Sd
    if not want_grad:
        return f, None
    W = gk.S.copy()
    if d is not None:
        W += np.outer(d, d)
    G = Sinv - Sinv @ W @ Sinv
    gmu = -2.0 * Sd if d is not None else None
    return f, gk.chain(G, gmu, A, C, Aa)


def group_fiml(gk: GroupKernel, x, want_grad=True):
    """-2 loglik / n_g for incomplete data (without the constant) and gradient."""
    Sigma, mu, A, C, Aa = gk.implied(x)
    p = gk.p
    f = 0.0
    G = np.zeros((p, p))
    gmu = np.zeros(p)
    n = gk.n
    for bt in gk.batches:
        o = bt["obs"]  # (nb, k)
        So = Sigma[o[:, :, None], o[:, None, :]]
        inv, logdet = batch_inv_logdet(So)
        if inv is None:
            return np.inf, None
        d = bt["ybar"] - mu[o]  # (nb, k)
        W = bt["S"] + d[:, :, None] * d[:, None, :]
        w = bt["n"] / n
        f += np.sum(w * (logdet + np.einsum("bij,bji->b", inv, W) + o.shape[1] * LOG2PI))
        if want_grad:
            IW = inv @ W
            Gb = inv - IW @ inv
            Gb *= w[:, None, None]
            G += np.bincount(bt["flat"], weights=Gb.ravel(), minlength=p * p).reshape(p, p)
            v = np.einsum("bij,bj->bi", inv, d) * w[:, None]
            gmu -= 2.0 * np.bincount(o.ravel(), weights=v.ravel(), minlength=p)
    if not want_grad:
        return f, None
    return f, gk.chain(G, gmu, A, C, Aa)


def group_expected_info(gk: GroupKernel, x):
    """Expected (Fisher) information per observation of a complete-data group (structured)."""
    Sigma, mu, A, C, Aa = gk.implied(x)
    Sinv, _ = chol_inv_logdet(Sigma)
    if Sinv is None:
        return None
    DS, Dm = gk.delta(A, C, Aa)
    X = np.matmul(Sinv, DS)
    q = DS.shape[0]
    I = 0.5 * (X.reshape(q, -1) @ X.transpose(0, 2, 1).reshape(q, -1).T)
    if gk.meanstructure:
        I += Dm @ Sinv @ Dm.T
    return I


def group_expected_info_missing(gk: GroupKernel, x):
    """Expected information per observation of an incomplete-data group (structured).

    The sum over missing-data patterns of the complete-data expected
    information of each pattern's observed variables, weighted by the share
    of rows with that pattern (lavaan's expected information under FIML).
    """
    Sigma, mu, A, C, Aa = gk.implied(x)
    DS, Dm = gk.delta(A, C, Aa)
    q = DS.shape[0]
    I = np.zeros((q, q))
    for pt in gk.patterns:
        o = pt["obs"]
        Sinv, _ = chol_inv_logdet(Sigma[np.ix_(o, o)])
        if Sinv is None:
            return None
        X = np.matmul(Sinv, DS[:, o][:, :, o])
        Ip = 0.5 * (X.reshape(q, -1) @ X.transpose(0, 2, 1).reshape(q, -1).T)
        Dmo = Dm[:, o]
        Ip += Dmo @ Sinv @ Dmo.T
        I += (pt["n"] / gk.n) * Ip
    return I


def group_casewise_scores(gk: GroupKernel, x):
    """Casewise derivatives of the log-likelihood wrt the free parameters (n, q)."""
    Sigma, mu, A, C, Aa = gk.implied(x)
    DS, Dm = gk.delta(A, C, Aa)
    Y = gk.Y
    if gk.patterns is None:
        Sinv, _ = chol_inv_logdet(Sigma)
        mu_use = mu if gk.meanstructure else gk.ybar
        E = Y - mu_use
        V = E @ Sinv
        sc = -0.5 * np.einsum("kl,alk->a", Sinv, DS)[None, :] + 0.5 * np.einsum("ik,akl,il->ia", V, DS, V)
        if gk.meanstructure:
            sc += V @ Dm.T
        return sc
    q = DS.shape[0]
    sc = np.zeros((Y.shape[0], q))
    for pt in gk.patterns:
        o = pt["obs"]
        So = Sigma[np.ix_(o, o)]
        Sinv, _ = chol_inv_logdet(So)
        rows = pt["rows"]
        E = Y[np.ix_(rows, o)] - mu[o]
        V = E @ Sinv
        DSo = DS[:, o][:, :, o]
        sc[rows] = (-0.5 * np.einsum("kl,alk->a", Sinv, DSo)[None, :]
                    + 0.5 * np.einsum("ik,akl,il->ia", V, DSo, V) + V @ Dm[:, o].T)
    return sc


def group_loglik(gk: GroupKernel, Sigma, mu):
    """Log-likelihood of the group's data under (Sigma, mu)."""
    if gk.patterns is None:
        Sinv, logdet = chol_inv_logdet(Sigma)
        if Sinv is None:
            return -np.inf
        d = gk.ybar - (mu if mu is not None else gk.ybar)
        return -0.5 * gk.n * (gk.p * LOG2PI + logdet + np.sum(gk.S * Sinv) + d @ Sinv @ d)
    f = _fiml_value(gk, Sigma, mu)
    return -0.5 * gk.n * f if np.isfinite(f) else -np.inf


def _fiml_value(gk, Sigma, mu):
    f = 0.0
    for bt in gk.batches:
        o = bt["obs"]
        So = Sigma[o[:, :, None], o[:, None, :]]
        inv, logdet = batch_inv_logdet(So)
        if inv is None:
            return np.inf
        d = bt["ybar"] - mu[o]
        W = bt["S"] + d[:, :, None] * d[:, None, :]
        f += np.sum(bt["n"] / gk.n * (logdet + np.einsum("bij,bji->b", inv, W) + o.shape[1] * LOG2PI))
    return f


def missing_h1_scores(gk: GroupKernel, Sigma, mu):
    """Casewise scores of the saturated model under missing data, in (vech Sigma, mu) order."""
    Y = gk.Y
    n, p = Y.shape
    iu = np.triu_indices(p)
    dbl = np.where(iu[0] == iu[1], 1.0, 2.0)
    out = np.zeros((n, len(iu[0]) + p))
    for pt in gk.patterns:
        o = pt["obs"]
        rows = pt["rows"]
        Sinv_o, _ = chol_inv_logdet(Sigma[np.ix_(o, o)])
        Sinv = np.zeros((p, p))
        Sinv[np.ix_(o, o)] = Sinv_o
        E = np.zeros((len(rows), p))
        E[:, o] = Y[np.ix_(rows, o)] - mu[o]
        V = E @ Sinv
        out[rows, : len(iu[0])] = 0.5 * (V[:, iu[0]] * V[:, iu[1]] - Sinv[iu][None, :]) * dbl
        out[rows, len(iu[0]):] = V
    return out


def _duplication(p):
    """Columns vec(E_a) for the vech parameters (upper-triangle order; off-diagonals count twice)."""
    iu = np.triu_indices(p)
    D = np.zeros((p * p, len(iu[0])))
    k = np.arange(len(iu[0]))
    D[iu[0] * p + iu[1], k] = 1.0
    D[iu[1] * p + iu[0], k] = 1.0
    return D


_H1_INFO_CACHE: OrderedDict = OrderedDict()


def missing_h1_information(gk: GroupKernel, Sigma, mu):
    """Observed information per observation of the saturated model under missing data.

    A pure function of the data and ``(Sigma, mu)``: the last few results are
    kept, so that a sequence of models fitted to the same data (an invariance
    sequence) computes the information at the saturated moments once.

    Analytic, at any (Sigma, mu), in the (mu, vech Sigma) order; per pattern
    with ``K = Sigma_oo^-1``, ``d = ybar_p - mu_o``, ``W = S_p + d d'`` and
    ``M = K W K``: ``I_mu,mu = K``, ``I_mu,sigma_b = K E_b K d``,
    ``I_sigma_a,sigma_b = tr(E_a K E_b M) - tr(E_a K E_b K) / 2``, weighted by
    the share of rows with the pattern (patterns batched by size).
    """
    Sigma = np.ascontiguousarray(Sigma, dtype=float)
    mu = np.ascontiguousarray(mu, dtype=float)
    h = hashlib.blake2b(digest_size=20)
    # the pattern statistics are all the computation uses of the data
    arrays = [Sigma, mu] + [np.ascontiguousarray(bt[k]) for bt in gk.batches for k in ("obs", "n", "ybar", "S")]
    for a in arrays:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    key = h.digest()
    hit = _H1_INFO_CACHE.get(key)
    if hit is None:
        hit = _missing_h1_information(gk, Sigma, mu)
        _H1_INFO_CACHE[key] = hit
        while len(_H1_INFO_CACHE) > 8:
            _H1_INFO_CACHE.popitem(last=False)
    else:
        _H1_INFO_CACHE.move_to_end(key)
    return hit.copy()


def _missing_h1_information(gk: GroupKernel, Sigma, mu):
    p = gk.p
    I_, J_ = np.triu_indices(p)
    nv = I_.size
    s = np.where(I_ == J_, 0.5, 1.0)
    ss = s[:, None] * s[None, :]

    def T(A, B, w):
        # sum_b w_b tr(E_a A_b E_c B_b) over vech pairs (a, c)
        out = np.einsum("b,bac,bac->ac", w, A[:, J_[:, None], I_[None, :]], B[:, J_[None, :], I_[:, None]])
        out += np.einsum("b,bac,bac->ac", w, A[:, J_[:, None], J_[None, :]], B[:, I_[None, :], I_[:, None]])
        out += np.einsum("b,bac,bac->ac", w, A[:, I_[:, None], I_[None, :]], B[:, J_[None, :], J_[:, None]])
        out += np.einsum("b,bac,bac->ac", w, A[:, I_[:, None], J_[None, :]], B[:, I_[None, :], J_[:, None]])
        return out * ss

    Imm = np.zeros((p, p))
    Ims = np.zeros((p, nv))
    Iss = np.zeros((nv, nv))
    for bt in gk.batches:
        o = bt["obs"]
        nb, k = o.shape
        So = Sigma[o[:, :, None], o[:, None, :]]
        Ko, _ = batch_inv_logdet(So)
        d = bt["ybar"] - mu[o]
        Wo = bt["S"] + d[:, :, None] * d[:, None, :]
        Mo = Ko @ Wo @ Ko
        vo = np.einsum("bij,bj->bi", Ko, d)
        bi = np.arange(nb)[:, None, None]
        K = np.zeros((nb, p, p))
        M = np.zeros((nb, p, p))
        K[bi, o[:, :, None], o[:, None, :]] = Ko
        M[bi, o[:, :, None], o[:, None, :]] = Mo
        v = np.zeros((nb, p))
        v[np.arange(nb)[:, None], o] = vo
        w = bt["n"] / gk.n
        Imm += np.einsum("b,bij->ij", w, K)
        Ims += np.einsum("b,bia->ia", w, K[:, :, I_] * v[:, None, J_] + K[:, :, J_] * v[:, None, I_]) * s[None, :]
        Iss += T(K, M, w) - 0.5 * T(K, K, w)
    return np.vstack([np.hstack([Imm, Ims]), np.hstack([Ims.T, Iss])])
