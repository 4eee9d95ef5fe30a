"""Two-level structural equation models: the numeric kernel and the fitting routine.

A two-level model (lavaan's ``level: 1`` / ``level: 2`` blocks with ``cluster=``)
splits each observed variable into a within-cluster part and a between-cluster
part (the cluster's true mean). The within part has covariance ``Sigma_W``
(modelled by the ``level: 1`` block), the between part covariance ``Sigma_B``
and means ``mu_B`` (the ``level: 2`` block). Variables named only in
``level: 1`` are *within-only* (their cluster means vary only by sampling);
variables named only in ``level: 2`` are *between-only* (cluster
characteristics, constant within a cluster).

The log-likelihood is the exact multivariate normal likelihood of the
clustered data for unbalanced clusters, written (as lavaan 0.6 does) in terms
of the pooled within-cluster cross-products and, per distinct cluster size
``n_j``, the means and covariance of the cluster means:
``Sigma_j = n_j Sigma_B|z + Sigma_W`` for the variables measured on
individuals, jointly with the between-only variables ``z``. Exogenous
covariates are fixed at their sample moments (lavaan's ``fixed.x = TRUE``):
within-only covariates at their total-sample covariance and mean,
between-only covariates at the covariance (denominator = number of clusters)
and mean of the cluster values; the reported log-likelihood is, as lavaan's,
the joint log-likelihood minus the covariates' own.

Derivatives are computed by the complex-step method (gradient exact to
rounding) and the observed information by central differences of that
gradient; standard errors come from the inverse observed information, the
default of lavaan for two-level ML. The chi-square compares the model with the
saturated two-level model (free ``Sigma_W``, ``Sigma_B`` and means), fitted by
the same routine; the baseline model has only variances (and between-level
means).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cimstats.errors import ConvergenceWarning, EstimationError, MissingDataWarning, ModelSpecificationError

from scipy import linalg as sla

from .derivatives import complex_jacobian, label_env
from .fitmeasures import cfi_tli, fit_measures, rmsea_block
from .partable import build_partable, classify_variables
from .syntax import parse_model, split_levels

__all__ = ["TwoLevelData", "LevelModel", "twolevel_loglik", "twolevel_cluster_loglik", "fit_twolevel"]

LOG2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------
# data: the sufficient statistics of the two-level likelihood
# ---------------------------------------------------------------------------

class TwoLevelData:
    """Summary statistics of clustered data for the two-level likelihood.

    Parameters
    ----------
    Y : ndarray (N, P)
        Complete data of every observed variable (``names`` order).
    cluster_codes : ndarray (N,)
        Cluster index 0..J-1 of each row (in order of first appearance).
    names : list of str
    within, between : list of str
        Variables of the ``level: 1`` and ``level: 2`` blocks.
    """

    def __init__(self, Y, cluster_codes, names, within, between, x_within=(), x_between=()):
        self.names = list(names)
        P = len(names)
        pos = {v: i for i, v in enumerate(names)}
        self.ov1 = np.array([pos[v] for v in within], dtype=int)
        self.ov2 = np.array([pos[v] for v in between], dtype=int)
        self.between_only = np.array(sorted(pos[v] for v in between if v not in within), dtype=int)
        self.within_only = np.array(sorted(pos[v] for v in within if v not in between), dtype=int)
        self.both = np.array(sorted(pos[v] for v in within if v in between), dtype=int)
        self.yidx = np.array([i for i in range(P) if i not in set(self.between_only)], dtype=int)
        N = Y.shape[0]
        size = np.bincount(cluster_codes)
        J = len(size)
        self.N, self.J, self.P = N, J, P
        self.cluster_size = size
        Y2 = np.zeros((J, P))
        np.add.at(Y2, cluster_codes, Y)
        Y2 /= size[:, None]
        self.Y2 = Y2
        Yc = Y - Y2[cluster_codes]
        # per cluster: within cross-products of the variables measured on individuals (cluster scores, MLR)
        Yy = Yc[:, self.yidx]
        self.W_cluster = np.zeros((J, len(self.yidx), len(self.yidx)))
        np.add.at(self.W_cluster, cluster_codes, Yy[:, :, None] * Yy[:, None, :])
        Sw = Yc.T @ Yc / (N - J)
        self.S_PW = Sw[np.ix_(self.yidx, self.yidx)]
        self.Sw = Sw
        self.ybar = Y.mean(axis=0)
        self.S_total = np.cov(Y.T, bias=True).reshape(P, P)
        self.S_clusters = np.cov(Y2.T, bias=True).reshape(P, P)
        self.mean_clusters = Y2.mean(axis=0)
        order = np.concatenate([self.between_only, self.yidx]).astype(int)
        sizes, inverse, counts = np.unique(size, return_inverse=True, return_counts=True)
        self.sizes = sizes.astype(float)
        self.counts = counts.astype(float)
        K, Pd = len(sizes), len(order)
        self.mean_d = np.zeros((K, Pd))
        self.cov_d = np.zeros((K, Pd, Pd))
        for k in range(K):
            block = Y2[inverse == k][:, order]
            self.mean_d[k] = block.mean(axis=0)
            if block.shape[0] > 1:
                self.cov_d[k] = np.cov(block.T, bias=True).reshape(Pd, Pd)
        # the covariates' own log-likelihood (subtracted from the reported log-likelihood, as lavaan)
        xw = [pos[v] for v in x_within]
        xb = [pos[v] for v in x_between]
        self.x_within, self.x_between = xw, xb
        self.loglik_x = _h1_loglik(N, self.S_total[np.ix_(xw, xw)]) + _h1_loglik(J, self.S_clusters[np.ix_(xb, xb)])
        # moment-based starting values for the between covariance (lavaan's)
        s = (N - np.sum(size ** 2) / N) / (J - 1) if J > 1 else 1.0
        Y2c = Y2 - self.ybar
        Sb = (Y2c * size[:, None]).T @ Y2c / max(J - 1, 1)
        self.start_between = (Sb - Sw) / s
        bo = self.between_only
        if len(bo):
            self.start_between[np.ix_(bo, bo)] = self.S_clusters[np.ix_(bo, bo)]
        self.start_mean = self.ybar.copy()
        if len(bo):
            self.start_mean[bo] = self.mean_clusters[bo]


def _h1_loglik(n, S):
    p = S.shape[0]
    if p == 0:
        return 0.0
    sign, logdet = np.linalg.slogdet(S)
    return -n / 2.0 * (p * LOG2PI + logdet + p)


def _logdet(M):
    sign, la = np.linalg.slogdet(M)
    if np.iscomplexobj(M):
        return la + 1j * np.angle(sign), np.real(sign)
    return la, sign


def _on_all_variables(d: "TwoLevelData", SigW, muW, SigB, muB):
    """The level-1 and level-2 moments placed on all ``P`` variables (zeros where a level lacks one).

    Returns the common dtype and ``(Sigma_W, Sigma_B, mu_W, mu_B)``, each batched over the first axis.
    """
    Bn, P = SigW.shape[0], d.P
    dt = np.result_type(SigW, SigB, muW, muB)
    SWt = np.zeros((Bn, P, P), dtype=dt)
    SWt[:, d.ov1[:, None], d.ov1[None, :]] = SigW
    SBt = np.zeros((Bn, P, P), dtype=dt)
    SBt[:, d.ov2[:, None], d.ov2[None, :]] = SigB
    MWt = np.zeros((Bn, P), dtype=dt)
    MWt[:, d.ov1] = muW
    MBt = np.zeros((Bn, P), dtype=dt)
    MBt[:, d.ov2] = muB
    return dt, SWt, SBt, MWt, MBt


def twolevel_loglik(d: TwoLevelData, SigW, muW, SigB, muB):
    """Log-likelihood (batched over the first axis) of the two-level normal model.

    ``SigW`` (B, p1, p1) and ``muW`` (B, p1) are over the ``level: 1``
    variables, ``SigB`` (B, p2, p2) and ``muB`` (B, p2) over the ``level: 2``
    variables. Returns an array (B,), ``nan`` where an implied matrix is not
    positive definite. Complex input is allowed (complex-step derivatives).
    """
    Bn = SigW.shape[0]
    P = d.P
    dt, SWt, SBt, MWt, MBt = _on_all_variables(d, SigW, muW, SigB, muB)
    MWB = np.zeros((Bn, P), dtype=dt)
    if len(d.within_only):
        MWB[:, d.within_only] = MWt[:, d.within_only]
        MBt[:, d.within_only] = 0.0
    if len(d.both):
        MWB[:, d.both] = MBt[:, d.both] + MWt[:, d.both]
    y, z = d.yidx, d.between_only
    nz = len(z)
    sw = SWt[:, y[:, None], y[None, :]]
    sb = SBt[:, y[:, None], y[None, :]]
    mu_y = MWB[:, y]
    sw_logdet, sw_sign = _logdet(sw)
    bad = sw_sign <= 0
    sw_inv = np.linalg.inv(np.where(bad[:, None, None], np.eye(len(y)), sw))
    nj = d.sizes
    if nz:
        szz = SBt[:, z[:, None], z[None, :]]
        syz = SBt[:, y[:, None], z[None, :]]
        zz_logdet, zz_sign = _logdet(szz)
        bad |= zz_sign <= 0
        zz_inv = np.linalg.inv(np.where((zz_sign <= 0)[:, None, None], np.eye(nz), szz))
        yz_zi = syz @ zz_inv
        sbz = sb - yz_zi @ np.swapaxes(syz, 1, 2)
        mean = np.concatenate([MBt[:, z], mu_y], axis=1)
    else:
        zz_logdet = np.zeros(Bn)
        sbz = sb
        mean = mu_y
    sj = nj[None, :, None, None] * sbz[:, None] + sw[:, None]
    sj_logdet, sj_sign = _logdet(sj)
    badj = (sj_sign <= 0).any(axis=1)
    bad |= badj
    sj = np.where((sj_sign <= 0)[:, :, None, None], np.eye(len(y)), sj)
    sj_inv = np.linalg.inv(sj)
    dev = d.mean_d[None] - mean[:, None, :]
    Y2Yc = d.cov_d[None] + dev[:, :, :, None] * dev[:, :, None, :]
    L = zz_logdet[:, None] + sj_logdet
    Yyy = Y2Yc[:, :, nz:, nz:]
    q_yyc = -nj[None] * np.sum(sj_inv * Yyy, axis=(2, 3))
    if nz:
        Yzz = Y2Yc[:, :, :nz, :nz]
        Yyz = Y2Yc[:, :, nz:, :nz]
        sji_yz_zi = sj_inv @ yz_zi[:, None]
        vinv11 = zz_inv[:, None] + nj[None, :, None, None] * (np.swapaxes(yz_zi, 1, 2)[:, None] @ sji_yz_zi)
        q_zz = np.sum(vinv11 * Yzz, axis=(2, 3))
        q_yz = -nj[None] * np.sum(sji_yz_zi * Yyz, axis=(2, 3))
        Bq = q_zz + 2.0 * q_yz - q_yyc
    else:
        Bq = -q_yyc
    total = (np.sum(d.counts[None] * (L + Bq), axis=1)
             + (d.N - d.J) * (np.sum(sw_inv * d.S_PW[None], axis=(1, 2)) + sw_logdet))
    const = (d.N * len(y) + d.J * nz) * LOG2PI
    out = -0.5 * (total + const) - d.loglik_x
    return np.where(bad, np.nan, out)


def twolevel_cluster_loglik(d: TwoLevelData, SigW, muW, SigB, muB):
    """Each cluster's log-likelihood (batched): an array (B, J), ``nan`` rows where not positive definite.

    Cluster ``j`` with ``n_j`` members contributes ``-1/2 [(n_j p + q) log 2 pi
    + (n_j - 1) log|S_W| + tr(S_W^-1 W_j) + p log n_j + log|C_j| + e_j' C_j^-1 e_j]``
    where ``W_j`` holds the within-cluster cross-products of its ``p``
    individual-level variables, ``e_j`` the deviation of its ``q`` between-only
    values and ``p`` means from their expectations, and ``C_j`` their
    covariance (``S_B + S_W / n_j`` for the means). The sum over clusters is
    :func:`twolevel_loglik` plus the covariates' own log-likelihood; the
    derivatives are the cluster scores of the robust (MLR) standard errors.
    """
    Bn = SigW.shape[0]
    P = d.P
    dt, SWt, SBt, MWt, MBt = _on_all_variables(d, SigW, muW, SigB, muB)
    mean = np.zeros((Bn, P), dtype=dt)
    if len(d.within_only):
        mean[:, d.within_only] = MWt[:, d.within_only]
    if len(d.both):
        mean[:, d.both] = MBt[:, d.both] + MWt[:, d.both]
    y, z = d.yidx, d.between_only
    order = np.concatenate([z, y]).astype(int)
    if len(z):
        mean[:, z] = MBt[:, z]
    py, nz = len(y), len(z)
    sw = SWt[:, y[:, None], y[None, :]]
    sw_logdet, sw_sign = _logdet(sw)
    bad = sw_sign <= 0
    sw_inv = np.linalg.inv(np.where(bad[:, None, None], np.eye(py), sw))
    nj = d.cluster_size.astype(float)
    C = np.broadcast_to(SBt[:, order[:, None], order[None, :]][:, None], (Bn, d.J, nz + py, nz + py)).copy()
    C[:, :, nz:, nz:] += sw[:, None] / nj[None, :, None, None]
    c_logdet, c_sign = _logdet(C)
    badc = c_sign <= 0
    bad |= badc.any(axis=1)
    C = np.where(badc[:, :, None, None], np.eye(nz + py), C)
    e = d.Y2[None][:, :, order] - mean[:, None, order]
    quad = np.einsum("bji,bji->bj", e, np.linalg.solve(C, e[..., None])[..., 0])
    tr_w = np.einsum("bik,jki->bj", sw_inv, d.W_cluster)
    out = -0.5 * ((nj * py + nz)[None] * LOG2PI + (nj - 1)[None] * sw_logdet[:, None] + tr_w
                  + py * np.log(nj)[None] + c_logdet + quad)
    return np.where(bad[:, None], np.nan, out)


# ---------------------------------------------------------------------------
# one level's model (RAM form)
# ---------------------------------------------------------------------------

class LevelModel:
    """Implied covariance and means of one level from the parameter vector (RAM form)."""

    def __init__(self, rows: pd.DataFrame, ov: list[str], lv: list[str]):
        self.ov, self.lv = list(ov), list(lv)
        names = self.ov + self.lv
        self.n, self.p = len(names), len(self.ov)
        pos = {v: i for i, v in enumerate(names)}
        self.A0 = np.zeros((self.n, self.n))
        self.S0 = np.zeros((self.n, self.n))
        self.m0 = np.zeros(self.n)
        self.freeA, self.freeS, self.freem = [], [], []
        for r in rows.itertuples():
            k = int(r.gfree) - 1
            val = float(r.value)
            if r.op == "=~":
                i, j, mat = pos[r.rhs], pos[r.lhs], "A"
            elif r.op == "~":
                i, j, mat = pos[r.lhs], pos[r.rhs], "A"
            elif r.op == "~~":
                i, j, mat = pos[r.lhs], pos[r.rhs], "S"
            else:
                i, j, mat = pos[r.lhs], 0, "m"
            if mat == "A":
                (self.freeA.append((i, j, k)) if k >= 0 else self.A0.__setitem__((i, j), val))
            elif mat == "S":
                if k >= 0:
                    self.freeS.append((i, j, k))
                else:
                    self.S0[i, j] = self.S0[j, i] = val
            else:
                (self.freem.append((i, k)) if k >= 0 else self.m0.__setitem__(i, val))

    def implied(self, X):
        Bn = X.shape[0]
        dt = X.dtype
        A = np.broadcast_to(self.A0, (Bn, self.n, self.n)).astype(dt)
        S = np.broadcast_to(self.S0, (Bn, self.n, self.n)).astype(dt)
        m = np.broadcast_to(self.m0, (Bn, self.n)).astype(dt)
        for i, j, k in self.freeA:
            A[:, i, j] = X[:, k]
        for i, j, k in self.freeS:
            S[:, i, j] = X[:, k]
            S[:, j, i] = X[:, k]
        for i, k in self.freem:
            m[:, i] = X[:, k]
        IA = np.linalg.inv(np.eye(self.n) - A)
        full = IA @ S @ np.swapaxes(IA, 1, 2)
        mu = (IA @ m[:, :, None])[:, :, 0]
        return full[:, :self.p, :self.p], mu[:, :self.p], full, mu


# ---------------------------------------------------------------------------
# optimisation helpers
# ---------------------------------------------------------------------------

def _gradient(f, x, h=1e-20):
    """Complex-step gradient of the batched function ``f`` at ``x``."""
    n = len(x)
    X = np.tile(x.astype(complex), (n, 1)) + 1j * h * np.eye(n)
    return np.imag(f(X)) / h


def _hessian(f, x):
    """Central differences of the complex-step gradient (symmetrised)."""
    n = len(x)
    H = np.zeros((n, n))
    for i in range(n):
        h = 1e-5 * max(1.0, abs(x[i]))
        e = np.zeros(n)
        e[i] = h
        H[:, i] = (_gradient(f, x + e) - _gradient(f, x - e)) / (2 * h)
    return (H + H.T) / 2


def _maximize(f, x0, scale, *, maxit=1000, gtol=1e-9):
    """Maximise the batched log-likelihood ``f``: quasi-Newton, then Newton steps on the Hessian."""

    def obj(x):
        v = f(x[None])[0]
        if not np.isfinite(v):
            return 1e10, np.zeros_like(x)
        return -v / scale, -_gradient(f, x) / scale

    res = optimize.minimize(obj, x0, jac=True, method="BFGS", options={"maxiter": maxit, "gtol": 1e-7})
    x = res.x
    iterations = int(res.nit)
    converged = False
    for _ in range(20):
        g = _gradient(f, x) / scale
        if np.max(np.abs(g)) < gtol:
            converged = True
            break
        H = -_hessian(f, x) / scale
        try:
            # a Newton step only where the information is positive definite (a maximum, not a saddle)
            L = np.linalg.cholesky(H)
            step = np.linalg.solve(L.T, np.linalg.solve(L, g))
        except np.linalg.LinAlgError:
            break
        v0 = f(x[None])[0]
        t = 1.0
        while t > 1e-6:
            xn = x + t * step
            vn = f(xn[None])[0]
            if np.isfinite(vn) and vn >= v0 - 1e-9 * abs(v0):
                break
            t /= 2
        else:
            break
        x = xn
        iterations += 1
    else:
        converged = np.max(np.abs(_gradient(f, x) / scale)) < 1e-6
    return x, converged, iterations


# ---------------------------------------------------------------------------
# the parameter table
# ---------------------------------------------------------------------------

_MODEL_OPS = ("=~", "~", "~~", "~1")


def build_twolevel_table(model: str, *, std_lv=False, fixed_x=True):
    """Parse the ``level:`` blocks and build one parameter table for both levels.

    Returns ``(table, info)``; the table has columns ``lhs, op, rhs, level,
    label, free (global 1-based index, 0 = fixed), ustart, exo, user``.
    """
    blocks = split_levels(model)
    if blocks is None:
        raise ModelSpecificationError(
            "`model` has no 'level: 1' / 'level: 2' blocks although `cluster` was given for a two-level "
            "model; write the within model after 'level: 1' and the between model after 'level: 2'."
        )
    stmts, roles = {}, {}
    others = []
    for lev in (1, 2):
        st = parse_model(blocks[lev])
        # defined parameters and constraints may name labels of either level: handled after both levels
        others += [s for s in st if s.op not in _MODEL_OPS]
        st = [s for s in st if s.op in _MODEL_OPS]
        if not st:
            raise ModelSpecificationError(
                f"The 'level: {lev}' block of `model` is empty; give at least one statement per level, "
                "e.g. 'f =~ y1 + y2 + y3'."
            )
        stmts[lev], roles[lev] = st, classify_variables(st)
    ov1, ov2 = roles[1]["ov"], roles[2]["ov"]
    both = [v for v in ov1 if v in ov2]
    lv_clash = set(roles[1]["lv"]) & set(roles[2]["lv"])
    if lv_clash:
        v = sorted(lv_clash)[0]
        raise ModelSpecificationError(
            f"The latent variable '{v}' is defined at both levels of `model`; give the within and the "
            f"between factor different names (e.g. '{v}_w' and '{v}_b')."
        )
    for lev in (1, 2):
        cross = [v for v in roles[lev]["ov"] if v in roles[3 - lev]["lv"]]
        if cross:
            raise ModelSpecificationError(
                f"'{cross[0]}' is a latent variable at level {3 - lev} but is used as an observed variable "
                f"at level {lev}; a latent variable belongs to one level."
            )
    rows = []
    x_level = {}
    for lev in (1, 2):
        tab, _cons, r = build_partable(stmts[lev], ngroups=1, std_lv=std_lv, meanstructure=True,
                                       fixed_x=fixed_x)
        x_l = [v for v in r["ov_x"] if v not in both] if fixed_x else []
        x_level[lev] = x_l
        for t in tab.to_dict("records"):
            lhs, op, rhs = t["lhs"], t["op"], t["rhs"]
            free, ustart, exo = t["free"] > 0, t["ustart"], int(t["exo"])
            if exo and (lhs in both or rhs in both):
                # a covariate split over both levels is modelled at both levels (not fixed)
                free, ustart, exo = True, math.nan, 0
            if op == "~1" and lhs in r["lv"]:
                free, ustart = False, 0.0
            elif op == "~1" and lev == 1 and lhs in both:
                free, ustart, exo = False, 0.0, 0
            rows.append(dict(lhs=lhs, op=op, rhs=rhs, level=lev, label=t["label"] or "",
                             local=int(t["free"]) if free else 0, ustart=ustart, exo=exo,
                             user=int(t["user"]), start=t["start"]))
    # global free indices; identical labels share one parameter (also across levels)
    nxt, by_label, by_local = 1, {}, {}
    for r in rows:
        if r["local"] == 0:
            r["free"] = 0
            continue
        key = (r["level"], r["local"])
        if r["label"] and r["label"] in by_label:
            r["free"] = by_label[r["label"]]
        elif key in by_local:
            r["free"] = by_local[key]
        else:
            r["free"] = nxt
            nxt += 1
        by_local.setdefault(key, r["free"])
        if r["label"]:
            by_label.setdefault(r["label"], r["free"])
    defined, linear, eq_rows = _constraints(rows, others, by_label)
    table = pd.DataFrame(rows).drop(columns="local")
    table["plabel"] = [f".p{i + 1}." for i in range(len(table))]
    info = dict(ov1=ov1, ov2=ov2, lv1=roles[1]["lv"], lv2=roles[2]["lv"], both=both,
                x1=x_level[1], x2=x_level[2], npar=int(table["free"].max()) if len(table) else 0,
                defined=defined, linear=linear, eq_rows=eq_rows)
    return table, info


def _constraints(rows, others, by_label):
    """Defined parameters and equality constraints of a two-level model (labels of either level).

    ``a == b`` between two labels shares one parameter (the free indices of
    ``rows`` are merged and renumbered); other equalities are returned as
    statements, imposed by re-parameterising the model (they must be linear).
    Returns ``(defined, linear, eq_rows)``.
    """
    labels = {r["label"] for r in rows if r["label"]}
    defined: dict = {}
    linear, eq_rows = [], []
    for s in others:
        if s.op in ("<", ">"):
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): inequality constraints ('{s.op}') are not "
                "yet supported in two-level models; remove the line or fit without it."
            )
    for s in others:
        if s.op != ":=":
            continue
        unknown = [n for n in s.expr.names if n not in labels and n not in defined]
        if unknown:
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): the defined parameter uses "
                f"{', '.join(sorted(unknown))}, which label no parameter of either level; label the parameters "
                "(e.g. fw =~ y1 + a*y2) before defining functions of them."
            )
        if s.lhs in labels or s.lhs in defined:
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): '{s.lhs}' is already a label; "
                "give the defined parameter a new name."
            )
        defined[s.lhs] = s.expr
    for s in others:
        if s.op != "==":
            continue
        names = s.expr.names | s.expr_lhs.names
        unknown = [n for n in names if n not in labels and n not in defined]
        if unknown:
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): the constraint uses "
                f"{', '.join(sorted(unknown))}, which label no parameter of either level; label the parameters first."
            )
        eq_rows.append((s.lhs.strip(), s.op, s.rhs.strip()))
        lt, rt = s.expr_lhs.tree, s.expr.tree
        if lt[0] == "name" and rt[0] == "name" and by_label.get(lt[1], 0) > 0 and by_label.get(rt[1], 0) > 0:
            a, b = by_label[lt[1]], by_label[rt[1]]
            if a != b:
                keep, drop = min(a, b), max(a, b)
                for r in rows:
                    if r["free"] == drop:
                        r["free"] = keep
                for k, v in list(by_label.items()):
                    if v == drop:
                        by_label[k] = keep
            continue
        linear.append(s)
    used = sorted({r["free"] for r in rows} - {0})
    remap = {old: new for new, old in enumerate(used, start=1)}
    for r in rows:
        r["free"] = remap.get(r["free"], 0)
    return defined, linear, eq_rows


def _fill_fixed(table, info, d: TwoLevelData):
    """Exogenous covariates' fixed values: sample moments (lavaan's fixed.x)."""
    pos = {v: i for i, v in enumerate(d.names)}
    vals = table["ustart"].to_numpy(dtype=float).copy()
    for i, r in enumerate(table.itertuples()):
        if not r.exo:
            continue
        S, m = (d.S_total, d.ybar) if r.level == 1 else (d.S_clusters, d.mean_clusters)
        if r.op == "~~":
            vals[i] = S[pos[r.lhs], pos[r.rhs]]
        elif r.op == "~1":
            vals[i] = m[pos[r.lhs]]
    out = table.copy()
    out["value"] = np.where(np.isnan(vals), 0.0, vals)
    out["gfree"] = out["free"]
    return out


def _start(table, info, d: TwoLevelData):
    pos = {v: i for i, v in enumerate(d.names)}
    x = np.zeros(info["npar"])
    seen = set()
    for r in table.itertuples():
        k = int(r.free) - 1
        if k < 0 or k in seen:
            continue
        seen.add(k)
        if not (isinstance(r.start, float) and math.isnan(r.start)) and r.start is not None:
            x[k] = float(r.start)
            continue
        lv = info["lv1"] if r.level == 1 else info["lv2"]
        if r.op == "=~":
            x[k] = 1.0
        elif r.op == "~~" and r.lhs == r.rhs:
            if r.lhs in lv:
                x[k] = 0.05
            else:
                i = pos[r.lhs]
                if r.level == 1:
                    v = d.Sw[i, i] if r.lhs in info["both"] else d.S_total[i, i]
                else:
                    v = max(d.start_between[i, i], 0.1 * d.Sw[i, i] if r.lhs in info["both"] else 0.0)
                    v = v if v > 0 else 0.05
                x[k] = 0.5 * v
        elif r.op == "~1":
            i = pos[r.lhs]
            x[k] = d.start_mean[i] if r.level == 2 or r.lhs not in info["both"] else 0.0
    return x


# ---------------------------------------------------------------------------
# saturated and baseline models
# ---------------------------------------------------------------------------

def _vech_index(p):
    return [(i, j) for j in range(p) for i in range(j, p)]


def _saturated(d: TwoLevelData, info):
    """Fit the saturated two-level model; returns (loglik, SigW, muW, SigB, muB, converged).

    As lavaan's saturated (h1) model, the means and covariances of the
    between-only variables are fixed at the mean and covariance
    (denominator = number of clusters) of their cluster values; everything
    else is free.
    """
    p1, p2 = len(d.ov1), len(d.ov2)
    z_set = set(d.between_only)
    zpos = [a for a, v in enumerate(d.ov2) if v in z_set]
    xw = [a for a, v in enumerate(d.ov1) if v in set(d.x_within)]
    iw = [(i, j) for i, j in _vech_index(p1) if not (i in xw and j in xw)]
    ib = [(i, j) for i, j in _vech_index(p2) if not (i in zpos and j in zpos)]
    mb = [a for a in range(p2) if a not in zpos]
    w_only = [a for a, v in enumerate(d.ov1) if v in set(d.within_only) and a not in xw]
    n1, n2, nw = len(iw), len(ib), len(w_only)
    SWfix = np.zeros((p1, p1))
    muWfix = np.zeros(p1)
    for a in xw:
        muWfix[a] = d.ybar[d.ov1[a]]
        for b in xw:
            SWfix[a, b] = d.S_total[d.ov1[a], d.ov1[b]]
    SBfix = np.zeros((p2, p2))
    muBfix = np.zeros(p2)
    for a in zpos:
        muBfix[a] = d.mean_clusters[d.ov2[a]]
        for b in zpos:
            SBfix[a, b] = d.S_clusters[d.ov2[a], d.ov2[b]]

    def unpack(X):
        Bn = X.shape[0]
        SW = np.broadcast_to(SWfix, (Bn, p1, p1)).astype(X.dtype)
        for k, (i, j) in enumerate(iw):
            SW[:, i, j] = SW[:, j, i] = X[:, k]
        SB = np.broadcast_to(SBfix, (Bn, p2, p2)).astype(X.dtype)
        for k, (i, j) in enumerate(ib):
            SB[:, i, j] = SB[:, j, i] = X[:, n1 + k]
        muW = np.broadcast_to(muWfix, (Bn, p1)).astype(X.dtype)
        for k, a in enumerate(w_only):
            muW[:, a] = X[:, n1 + n2 + k]
        muB = np.broadcast_to(muBfix, (Bn, p2)).astype(X.dtype)
        for k, a in enumerate(mb):
            muB[:, a] = X[:, n1 + n2 + nw + k]
        return SW, muW, SB, muB

    def f(X):
        return twolevel_loglik(d, *unpack(X))

    SW0 = d.Sw[np.ix_(d.ov1, d.ov1)].copy()
    for a in [a for a, v in enumerate(d.ov1) if v in set(d.within_only)]:
        SW0[a, :] = d.S_total[d.ov1[a], d.ov1]
        SW0[:, a] = d.S_total[d.ov1, d.ov1[a]]
    SB0 = d.start_between[np.ix_(d.ov2, d.ov2)].copy()
    ev, evec = np.linalg.eigh(SB0)
    SB0 = (evec * np.maximum(ev, 0.05 * max(ev.max(), 1e-3))) @ evec.T
    x0 = np.concatenate([[SW0[i, j] for i, j in iw], [SB0[i, j] for i, j in ib],
                         [d.ybar[d.ov1[a]] for a in w_only], d.start_mean[d.ov2][mb]])
    x, conv, _ = _maximize(f, x0, d.N)
    SW, muW, SB, muB = unpack(x[None])

    def pack(SW, muW, SB, muB):
        return np.concatenate([[SW[i, j] for i, j in iw], [SB[i, j] for i, j in ib],
                               [muW[a] for a in w_only], [muB[a] for a in mb]])

    sat = dict(unpack=unpack, f=f, x=x, pack=pack)
    return float(f(x[None])[0]), SW[0], muW[0], SB[0], muB[0], conv, sat


def _baseline_table(table, info):
    """Independence model: variances at both levels, free means, covariates fixed as in the model."""
    rows = []
    nxt = 1
    for lev, ov, x in ((1, info["ov1"], info["x1"]), (2, info["ov2"], info["x2"])):
        for i, v in enumerate(ov):
            for w in ov[i:]:
                if v in x and w in x:
                    rows.append(dict(lhs=v, op="~~", rhs=w, level=lev, free=0, ustart=math.nan, exo=1))
                elif v == w:
                    rows.append(dict(lhs=v, op="~~", rhs=w, level=lev, free=nxt, ustart=math.nan, exo=0))
                    nxt += 1
        for v in ov:
            if v in x:
                rows.append(dict(lhs=v, op="~1", rhs="", level=lev, free=0, ustart=math.nan, exo=1))
            elif lev == 1 and v in info["both"]:
                rows.append(dict(lhs=v, op="~1", rhs="", level=lev, free=0, ustart=0.0, exo=0))
            else:
                rows.append(dict(lhs=v, op="~1", rhs="", level=lev, free=nxt, ustart=math.nan, exo=0))
                nxt += 1
    t = pd.DataFrame(rows)
    t["label"] = ""
    t["start"] = math.nan
    t["user"] = 0
    return t, dict(info, lv1=[], lv2=[], npar=nxt - 1)


def _model_function(table, info, d):
    tab = _fill_fixed(table, info, d)
    m1 = LevelModel(tab[tab["level"] == 1], info["ov1"], info["lv1"])
    m2 = LevelModel(tab[tab["level"] == 2], info["ov2"], info["lv2"])

    def f(X):
        SW, muW, _, _ = m1.implied(X)
        SB, muB, _, _ = m2.implied(X)
        return twolevel_loglik(d, SW, muW, SB, muB)

    return f, m1, m2, tab


def _nstat(info):
    p1 = len(info["ov1"])
    p2 = len(info["ov2"])
    nx1, nx2 = len(info["x1"]), len(info["x2"])
    w_only_y = [v for v in info["ov1"] if v not in info["both"] and v not in info["x1"]]
    return (p1 * (p1 + 1) // 2 - nx1 * (nx1 + 1) // 2 + len(w_only_y)
            + p2 * (p2 + 1) // 2 - nx2 * (nx2 + 1) // 2 + (p2 - nx2))


def _cor(S):
    s = np.sqrt(np.diag(S))
    return S / np.outer(s, s)


def _srmr(S, Sigma):
    if np.any(np.diag(Sigma) <= 0):
        return math.nan
    R = _cor(S) - _cor(Sigma)
    idx = np.tril_indices(S.shape[0])
    return float(np.sqrt(np.mean(R[idx] ** 2)))


# ---------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------

def prepare_twolevel(model, df: pd.DataFrame, cluster: str, *, std_lv=False, fixed_x=True):
    """Parameter table and sufficient statistics; rows with a missing value are set aside (counted)."""
    table, info = build_twolevel_table(model, std_lv=std_lv, fixed_x=fixed_x)
    names = list(info["ov1"]) + [v for v in info["ov2"] if v not in info["ov1"]]
    absent = [v for v in names if v not in df.columns]
    if absent:
        raise ModelSpecificationError(
            f"`model` names {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} not a column of "
            f"`data` and not a latent variable (no '=~' defines it); check the spelling or add the column."
        )
    if cluster not in df.columns:
        raise ModelSpecificationError(f"`cluster=` is '{cluster}', which is not a column of `data`; "
                                      "give the column of cluster identifiers.")
    if cluster in names:
        raise ModelSpecificationError(f"`cluster=` is '{cluster}', which is also a model variable; "
                                      "the cluster identifier cannot be modelled.")
    for v in names:
        if not pd.api.types.is_numeric_dtype(df[v]):
            raise ModelSpecificationError(
                f"Column '{v}' of `data` is {df[v].dtype}, not numeric; recode it to numbers before fitting."
            )
    dropped: dict[str, int] = {}
    miss = df[names].isna().to_numpy()
    cmiss = df[cluster].isna().to_numpy()
    for j, v in enumerate(names):
        k = int((miss[:, j]).sum())
        if k:
            dropped[v] = k
    if cmiss.any():
        dropped[cluster] = int(cmiss.sum())
    keep = ~(miss.any(axis=1) | cmiss)
    if keep.sum() == 0:
        raise ModelSpecificationError(
            "No row of `data` has every model variable and the cluster observed; check the columns "
            f"{', '.join(names)} and '{cluster}' for missing values."
        )
    if (~keep).any():
        warnings.warn(
            f"{int((~keep).sum())} row(s) of `data` with a missing model variable or cluster were set aside "
            "(listwise deletion, as lavaan's default); see `dropped` for the counts per variable.",
            MissingDataWarning, stacklevel=3,
        )
    sub = df.loc[keep]
    codes, uniques = pd.factorize(sub[cluster], sort=False)
    J = len(uniques)
    if J == len(sub):
        raise ModelSpecificationError(
            f"Every cluster of `cluster='{cluster}'` holds a single row ({J} rows, {J} clusters); a two-level "
            "model needs clusters with several members, so check the cluster column."
        )
    if J < 2:
        raise ModelSpecificationError(
            f"`cluster='{cluster}'` has a single cluster; a two-level model needs many clusters."
        )
    Y = sub[names].to_numpy(dtype=float)
    between_only = [v for v in info["ov2"] if v not in info["ov1"]]
    for v in between_only:
        col = sub[v].to_numpy(dtype=float)
        mn = pd.Series(col).groupby(codes).transform("min").to_numpy()
        mx = pd.Series(col).groupby(codes).transform("max").to_numpy()
        bad = np.where(mx - mn > 1e-12 * np.maximum(1.0, np.abs(mx)))[0]
        if len(bad):
            raise ModelSpecificationError(
                f"'{v}' appears only in the 'level: 2' block, so it must be constant within each cluster, but "
                f"it varies within cluster '{uniques[codes[bad[0]]]}'; use its cluster mean or model it at level 1."
            )
    d = TwoLevelData(Y, codes, names, info["ov1"], info["ov2"], info["x1"], info["x2"])
    return table, info, d, dropped


def _label_table(tab):
    """The columns :func:`label_env` reads (fixed parameters at their values)."""
    return pd.DataFrame({"free": tab["free"].to_numpy(dtype=int), "ustart": tab["value"].to_numpy(dtype=float),
                         "label": tab["label"].astype(str).to_numpy(), "plabel": tab["plabel"].to_numpy()})


def _reparam(ltab, info, npar):
    """``x = K z + x_base`` imposing the linear equality constraints (identity without them)."""
    stmts = info["linear"]
    if not stmts:
        return np.eye(npar), np.zeros(npar)
    defined = info["defined"]

    def h(x):
        env = label_env(ltab, x, defined)
        return np.stack([np.asarray(s.expr_lhs.evaluate(env) - s.expr.evaluate(env)) for s in stmts], axis=-1)

    x1 = np.linspace(0.3, 0.9, npar)
    x2 = np.linspace(1.1, -0.4, npar)
    f1, R = complex_jacobian(h, x1)
    _, R2 = complex_jacobian(h, x2)
    for s, a, b in zip(stmts, R, R2):
        if not np.allclose(a, b, atol=1e-10):
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): non-linear equality constraints are not yet "
                "supported in two-level models; write the constraint as a linear one (e.g. a == 2*b) or remove it."
            )
    if np.linalg.matrix_rank(R) < R.shape[0]:
        raise ModelSpecificationError(
            "`model` has redundant or contradictory equality constraints (== lines); remove the duplicates."
        )
    return sla.null_space(R), -np.linalg.pinv(R) @ (f1 - R @ x1)


def _defined_fn(ltab, defined):
    names = list(defined)

    def fn(X):
        env = label_env(ltab, X, defined)
        return np.stack([np.broadcast_to(env[n], X.shape[:-1]) for n in names], axis=-1)

    return fn


def _standardize_fn(tab, info, m1, m2):
    """f(X) -> (B, 2 (rows + defined)): std.lv values of every row and defined parameter, then std.all.

    Per level, as lavaan's standardizedSolution: a latent variable is scaled
    by its model-implied standard deviation at that level (std.lv), observed
    variables too by theirs (std.all); defined parameters are their
    functions evaluated at the standardized values.
    """
    ops, lhs, rhs = tab["op"].to_numpy(), tab["lhs"].to_numpy(), tab["rhs"].to_numpy()
    lev = tab["level"].to_numpy(dtype=int)
    free = tab["free"].to_numpy(dtype=int)
    fixed = tab["value"].to_numpy(dtype=float)
    labels = tab["label"].astype(str).to_numpy()
    defined = info["defined"]
    models = {1: m1, 2: m2}
    pos = {k: {v: i for i, v in enumerate(m.ov + m.lv)} for k, m in models.items()}
    lvs = {k: set(m.lv) for k, m in models.items()}

    def fn(X):
        Bn = X.shape[0]
        sd = {}
        for k, m in models.items():
            full = m.implied(X)[2]
            sd[k] = np.sqrt(np.diagonal(full, axis1=1, axis2=2))
        est = np.where(free[None] > 0, X[:, np.maximum(free - 1, 0)], fixed[None])
        out_lv = np.zeros((Bn, len(ops)), dtype=X.dtype)
        out_all = np.zeros((Bn, len(ops)), dtype=X.dtype)
        for r in range(len(ops)):
            k = lev[r]
            s_all = lambda v: sd[k][:, pos[k][v]]  # noqa: E731
            s_lv = lambda v: s_all(v) if v in lvs[k] else 1.0  # noqa: E731
            e = est[:, r]
            if ops[r] == "=~":
                out_lv[:, r] = e * s_lv(lhs[r])
                out_all[:, r] = e * s_all(lhs[r]) / s_all(rhs[r])
            elif ops[r] == "~":
                out_lv[:, r] = e * s_lv(rhs[r]) / s_lv(lhs[r])
                out_all[:, r] = e * s_all(rhs[r]) / s_all(lhs[r])
            elif ops[r] == "~~":
                out_lv[:, r] = e / (s_lv(lhs[r]) * s_lv(rhs[r]))
                out_all[:, r] = e / (s_all(lhs[r]) * s_all(rhs[r]))
            else:
                out_lv[:, r] = e / s_lv(lhs[r])
                out_all[:, r] = e / s_all(lhs[r])
        parts = []
        for vals in (out_lv, out_all):
            env = {}
            for r in range(len(ops)):
                if labels[r] and labels[r] not in env:
                    env[labels[r]] = vals[:, r]
            for name, expr in defined.items():
                env[name] = expr.evaluate(env)
            dvals = [np.broadcast_to(env[n], (Bn,)) for n in defined]
            parts.append(np.column_stack([vals] + dvals) if dvals else vals)
        return np.concatenate(parts, axis=1)

    return fn


def _scores(fc, x):
    """Cluster scores (J, n) of the batched per-cluster log-likelihood ``fc`` by the complex step."""
    n = len(x)
    h = 1e-20
    X = np.tile(x.astype(complex), (n, 1)) + 1j * h * np.eye(n)
    return (np.imag(fc(X)) / h).T


def _sandwich_trace(f, fc, x):
    """``tr(B A^-1)`` with ``A`` the observed information and ``B`` the cross-product of the cluster scores."""
    A = -_hessian(f, x)
    S = _scores(fc, x)
    return float(np.sum((S.T @ S) * np.linalg.inv(A).T))


def fit_twolevel(model: str, df: pd.DataFrame, cluster: str, *, std_lv=False, fixed_x=True,
                 estimator="ML") -> dict:
    """Fit a two-level model by ML; returns the pieces a result object needs (see ``TwoLevelResult``).

    With ``estimator="MLR"`` the standard errors are Huber-White (sandwich)
    ones built from the cluster scores and the chi-square is scaled as
    lavaan's Yuan-Bentler (Mplus variant) test.
    """
    robust = str(estimator).upper() == "MLR"
    table, info, d, dropped = prepare_twolevel(model, df, cluster, std_lv=std_lv, fixed_x=fixed_x)
    fx, m1, m2, tab = _model_function(table, info, d)
    ltab = _label_table(tab)
    nfree = info["npar"]
    K, x_base = _reparam(ltab, info, nfree)

    def f(Z):
        return fx(Z @ K.T + x_base)

    def implied_z(Z):
        X = Z @ K.T + x_base
        SW, muW, _, _ = m1.implied(X)
        SB, muB, _, _ = m2.implied(X)
        return SW, muW, SB, muB

    def fc(Z):
        return twolevel_cluster_loglik(d, *implied_z(Z))

    x_start = _start(table, info, d)
    z0 = K.T @ (x_start - x_base)
    if not np.isfinite(f(z0[None])[0]):
        raise EstimationError(
            "The starting values give a non-positive-definite implied covariance matrix; give start values "
            "in `model` (e.g. start(0.5)*y1)."
        )
    z, converged, iterations = _maximize(f, z0, d.N)
    if not converged:
        warnings.warn("The two-level optimiser stopped without converging; check the model and start values.",
                      ConvergenceWarning, stacklevel=3)
    x = K @ z + x_base
    x0 = K @ z0 + x_base
    logl = float(f(z[None])[0])
    grad_norm = float(np.max(np.abs(_gradient(f, z)))) / d.N if len(z) else 0.0
    H = -_hessian(f, z)
    ev = np.linalg.eigvalsh(H)
    if ev[0] <= 1e-9 * max(ev[-1], 1e-300) and not converged:
        raise EstimationError(
            "The two-level model did not converge and its information matrix is singular: the solution drifts "
            "towards a degenerate one (typically a factor variance shrinking to zero while its loadings grow); "
            "check that each level's factor is supported by the data (e.g. with icc()), fix loadings or "
            "simplify that level."
        )
    if ev[0] <= 1e-9 * max(ev[-1], 1e-300):
        raise ModelSpecificationError(
            "`model` is not identified: the information matrix of the two-level model is singular; fix one "
            "loading or the variance of each latent variable at each level, or give each factor more indicators."
        )
    Hinv = np.linalg.inv(H)
    S = None
    if robust:
        S = _scores(fc, z)
        Vz = Hinv @ (S.T @ S) @ Hinv
    else:
        Vz = Hinv
    V = K @ Vz @ K.T
    # saturated and baseline models
    logl_h1, SW1, muW1, SB1, muB1, conv_h1, sat = _saturated(d, info)
    btab, binfo = _baseline_table(table, info)
    fb, mb1, mb2, _ = _model_function(btab, binfo, d)
    xb, conv_b, _ = _maximize(fb, _start(btab, binfo, d), d.N)
    logl_b = float(fb(xb[None])[0])
    npar = K.shape[1]
    nstat = _nstat(info)
    df_ = nstat - npar
    if df_ < 0:
        raise ModelSpecificationError(
            f"`model` is not identified: it has {npar} free parameters but the two-level data give only {nstat} "
            "variances, covariances and means; fix parameters or simplify the model."
        )
    X2 = max(2.0 * (logl_h1 - logl), 0.0)
    dfb = nstat - binfo["npar"]
    X2b = max(2.0 * (logl_h1 - logl_b), 0.0)
    N = d.N
    fm = {"npar": float(npar), "fmin": X2 / (2 * N), "chisq": X2, "df": float(df_),
          "pvalue": float(stats.chi2.sf(X2, df_)) if df_ > 0 else math.nan,
          "baseline.chisq": X2b, "baseline.df": float(dfb),
          "baseline.pvalue": float(stats.chi2.sf(X2b, dfb)) if dfb > 0 else math.nan}
    cfi, tli = cfi_tli(X2, df_, X2b, dfb)
    fm.update({"cfi": cfi, "tli": tli, "logl": logl, "unrestricted.logl": logl_h1,
               "aic": -2 * logl + 2 * npar, "bic": -2 * logl + npar * math.log(N),
               "ntotal": float(N), "nclusters": float(d.J)})
    fm.update(rmsea_block(X2, df_, N, 1))
    SW, muW, SB, muB = (a[0] for a in implied_z(z[None]))
    sw, sb = _srmr(SW1, SW), _srmr(SB1, SB)
    fm.update({"srmr": sw + sb, "srmr_within": sw, "srmr_between": sb})
    if robust:
        fm.update(_scaled_fit(d, sat, X2, df_, X2b, dfb, N, tr0=float(np.sum((S.T @ S) * Hinv.T)),
                              fb=fb, mb=(mb1, mb2), xb=xb))
    out = dict(table=tab, info=info, x=x, x0=x0, grad_norm=grad_norm, V=V, fm=fm,
               converged=bool(converged and conv_h1 and conv_b), iterations=iterations, dropped=dropped, data=d,
               implied={"within": (SW, muW), "between": (SB, muB)},
               h1={"within": (SW1, muW1), "between": (SB1, muB1)}, m1=m1, m2=m2, estimator="MLR" if robust else "ML")
    # defined parameters and the standardized solution, with delta-method standard errors
    if info["defined"]:
        dv, J = complex_jacobian(_defined_fn(ltab, info["defined"]), x, batched=True)
        out["defined"] = (list(info["defined"]), dv, np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, V, J), 0)))
    sv, J = complex_jacobian(_standardize_fn(tab, info, m1, m2), x, batched=True)
    sse = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, V, J), 0))
    # values fixed by the standardization (a factor's variance, a ratio of two of them) have no error
    out["std"] = (sv, np.where(sse < 1e-10 * np.maximum(1.0, np.abs(sv)), 0.0, sse))
    return out


def _scaled_fit(d, sat, X2, df_, X2b, dfb, N, *, tr0, fb, mb, xb):
    """Yuan-Bentler (Mplus variant) scaling factors and the scaled and robust fit measures (MLR).

    As lavaan: ``c = (tr(B1 A1^-1) - tr(B0 A0^-1)) / df`` with ``A1``, ``B1``
    the observed information and cluster-score cross-products of the
    saturated model at its estimates, ``A0`` the observed information of the
    model and ``B0`` the cross-products of its cluster scores; the baseline
    model's factor likewise.
    """
    unpack, fsat = sat["unpack"], sat["f"]

    def fc_sat(X):
        return twolevel_cluster_loglik(d, *unpack(X))

    tr1 = _sandwich_trace(fsat, fc_sat, sat["x"])
    c = (tr1 - tr0) / df_ if df_ > 0 else math.nan

    def fcb(X):
        SW, muW, _, _ = mb[0].implied(X)
        SB, muB, _, _ = mb[1].implied(X)
        return twolevel_cluster_loglik(d, SW, muW, SB, muB)

    cb = (tr1 - _sandwich_trace(fb, fcb, xb)) / dfb if dfb > 0 else math.nan
    fm = fit_measures(X2=X2, df=df_, X2b=X2b, dfb=dfb, N=N, G=1, npar=0, logl=0.0, logl_h1=0.0, fmin=0.0,
                      srmr_parts=[(0.0, 0.0, 0.0, 0.0)], weights=[1.0], scaled={"c": c, "cb": cb},
                      robust=dict(X2=X2, df=df_, c=c, X2b=X2b, dfb=dfb, cb=cb))
    return {k: v for k, v in fm.items() if k.endswith((".scaled", ".robust")) or "scaling" in k}
