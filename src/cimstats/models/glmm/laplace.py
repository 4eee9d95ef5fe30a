"""Laplace and adaptive Gauss-Hermite deviance of a GLMM (arrays in, numbers out).

For relative covariance factor ``theta`` and fixed effects ``beta`` the
conditional modes ``u`` of the spherical random effects maximise
``loglik(y | u) - |u|^2 / 2``; the Laplace approximation to the deviance is

    d(theta, beta) = -2 loglik(y | u_hat) + |u_hat|^2 + log|Lambda' Z' W Z Lambda + I|

with ``W`` the Fisher weights at the modes (Bates et al. 2015, section 5; the
quantity lme4's ``glmer`` minimises over (theta, beta) in its second stage).

:class:`ScalarKernel` handles one scalar random-effect term (random intercept):
the system is diagonal, so the modes are found by vectorised Fisher scoring per
cluster, and adaptive Gauss-Hermite quadrature (``nagq > 1``) is available.
:class:`GeneralKernel` handles any random-effects structure by penalised
iteratively reweighted least squares on the shared linear-mixed-model core
(:class:`cimstats.models.mixed.core.PLSCore`), rebuilt with the working weights.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import logsumexp

from ..mixed.core import CrossProducts, PLSCore
from ..mixed.linalg import TermShape
from ..mixed.linalg import factor_system

__all__ = ["ScalarKernel", "GeneralKernel"]

_TOL = 1e-10
#: Largest mode update accepted as converged when the inner loop runs tight (Hessians for
#: standard errors): the modes then settle to rounding error, so differences of the
#: deviance over small steps are not dominated by where the inner loop stopped.
_TIGHT_STEP = 1e-11


def _halved_step(u, step, pdev, eta_of, pdev_of, tight=False):
    """One PIRLS update of the modes ``u``: the full step, halved (at most 30 times) until the
    penalised deviance does not rise. Returns (u, eta, penalised deviance, converged).

    Converged means the penalised deviance changed by less than 1e-11 (relative) or the
    step was below 1e-10; with ``tight`` only a step below ``_TIGHT_STEP`` counts."""
    for _ in range(30):
        cand = u + step
        eta = eta_of(cand)
        pc = pdev_of(eta, cand)
        if pc <= pdev + 1e-10 * (1 + abs(pdev)):
            break
        step = step / 2
    big = np.max(np.abs(step)) if np.size(step) else 0.0
    if tight:
        done = big < _TIGHT_STEP * (1.0 + np.max(np.abs(cand)))
    else:
        done = abs(pdev - pc) < 1e-11 * (1 + abs(pc)) or big < _TOL
    return cand, eta, pc, done
_MAXIT = 100


class ScalarKernel:
    """One scalar random-effect term: diagonal system, per-cluster scoring."""

    def __init__(self, X, y, m, offset, z, codes, G, family, nagq=1):
        self.X, self.y, self.m, self.off = X, y, m, offset
        self.z, self.codes, self.G, self.family = z, codes, G, family
        self._const = family.loglik_const(y, m)
        self.nagq = int(nagq)
        if self.nagq > 1:
            x, w = hermegauss(self.nagq)
            self.nodes, self.logw = x, np.log(w / w.sum())
        self.u = np.zeros(G)
        self.ntheta = 1
        self.tight = False  # the modes always converge to a step below 1e-10 here

    def _cluster_loglik(self, eta):
        return np.bincount(self.codes, weights=self.family.loglik_eta(self.y, eta, self.m, self._const),
                           minlength=self.G)

    def modes(self, theta, beta, u=None):
        """Conditional modes u, curvature h = 1 + theta^2 sum w z^2 per cluster, and eta."""
        fam, codes, G = self.family, self.codes, self.G
        t = float(theta[0])
        eta0 = self.off + self.X @ beta
        zt = self.z * t
        u = (self.u if u is None else u).copy()
        obj = -2 * self._cluster_loglik(eta0 + zt * u[codes]) + u * u
        for _ in range(_MAXIT):
            eta = eta0 + zt * u[codes]
            _, s, w = fam.score_weight(self.y, eta, self.m)
            g = np.bincount(codes, weights=s * zt, minlength=G) - u
            h = np.bincount(codes, weights=w * zt * zt, minlength=G) + 1.0
            step = g / h
            unew = u + step
            objn = -2 * self._cluster_loglik(eta0 + zt * unew[codes]) + unew * unew
            for _ in range(30):  # step halving per cluster where the objective rose
                bad = objn > obj + 1e-12 * (1 + np.abs(obj))
                if not bad.any():
                    break
                step = np.where(bad, step / 2, step)
                unew = u + step
                objn = -2 * self._cluster_loglik(eta0 + zt * unew[codes]) + unew * unew
            u, obj = unew, objn
            if np.max(np.abs(step)) < _TOL:
                break
        eta = eta0 + zt * u[codes]
        _, _, w = fam.score_weight(self.y, eta, self.m)
        h = np.bincount(codes, weights=w * zt * zt, minlength=G) + 1.0
        self.u = u
        return u, h, eta

    def deviance(self, par) -> float:
        """Laplace (nagq = 1) or adaptive Gauss-Hermite deviance at (theta, beta)."""
        theta, beta = par[:1], par[1:]
        try:
            u, h, eta = self.modes(theta, beta)
        except FloatingPointError:
            return np.inf
        if self.nagq == 1:
            ll = self.family.loglik_eta(self.y, eta, self.m, self._const).sum()
            return float(-2 * ll + u @ u + np.log(h).sum())
        sd = 1.0 / np.sqrt(h)
        eta0 = self.off + self.X @ beta
        zt = self.z * float(theta[0])
        terms = []
        for zk, lw in zip(self.nodes, self.logw):
            uk = u + sd * zk
            lk = self._cluster_loglik(eta0 + zt * uk[self.codes])
            terms.append(lk - uk * uk / 2 + zk * zk / 2 + lw)
        lse = logsumexp(np.vstack(terms), axis=0)
        return float(-2 * (np.log(sd) + lse).sum())

    def profiled_deviance(self, theta) -> float:
        """Laplace deviance at ``theta`` with the fixed effects found jointly with the modes by
        PIRLS (glmer's first stage); the fixed effects are kept in ``beta_hat``."""
        fam, codes, G = self.family, self.codes, self.G
        X, p = self.X, self.X.shape[1]
        t = float(np.asarray(theta, dtype=float)[0])
        zt = self.z * t
        beta = getattr(self, "beta_hat", None)
        beta = np.zeros(p) if beta is None else beta
        u = self.u.copy()
        eta = self.off + X @ beta + zt * u[codes]
        pdev = -2 * self._cluster_loglik(eta).sum() + u @ u
        for _ in range(_MAXIT):
            _, s, w = fam.score_weight(self.y, eta, self.m)
            z = (eta - self.off) + s / w
            h = np.bincount(codes, weights=w * zt * zt, minlength=G) + 1.0
            wz = w * zt
            ZtWX = np.column_stack([np.bincount(codes, weights=wz * X[:, j], minlength=G) for j in range(p)])
            rz = np.bincount(codes, weights=wz * z, minlength=G)
            WX = X * w[:, None]
            RX = X.T @ WX - ZtWX.T @ (ZtWX / h[:, None])
            try:
                bnew = np.linalg.solve(RX, WX.T @ z - ZtWX.T @ (rz / h))
            except np.linalg.LinAlgError:
                return np.inf
            unew = (rz - ZtWX @ bnew) / h
            p = len(beta)  # beta and the modes take one step together
            v, eta, pdev, done = _halved_step(
                np.concatenate([beta, u]), np.concatenate([bnew - beta, unew - u]), pdev,
                lambda v: self.off + X @ v[:p] + zt * v[p:][codes],
                lambda e, v: -2 * self._cluster_loglik(e).sum() + v[p:] @ v[p:])
            beta, u = v[:p], v[p:]
            if done:
                break
        self.u, self.beta_hat = u, beta
        return self.deviance(np.concatenate([[t], beta])) if self.nagq > 1 else float(
            pdev + np.log(np.bincount(codes, weights=fam.score_weight(self.y, eta, self.m)[2] * zt * zt,
                                      minlength=G) + 1.0).sum())

    def ranef(self, par):
        """Conditional modes b = theta u and their conditional SDs theta / sqrt(h)."""
        u, h, _ = self.modes(par[:1], par[1:])
        t = abs(float(par[0]))
        return [(u * par[0])[:, None]], [(t / np.sqrt(h))[:, None]]


class GeneralKernel:
    """Any random-effects structure: PIRLS on :class:`PLSCore` with working weights."""

    def __init__(self, X, y, m, offset, blocks, family, ntheta):
        self.X, self.y, self.m, self.off = X, y, m, offset
        self.blocks = blocks
        self.family = family
        self.ntheta = ntheta
        self._const = family.loglik_const(y, m)
        self.q = sum(b.nlevels * b.k for b in blocks)
        self.u = np.zeros(self.q)
        self._core = None
        self.tight = False  # inner-loop tolerance: True while a Hessian is taken

    def _re_part(self, core, Ts, u):
        b = core.lambda_times(Ts, u)
        out = np.zeros(len(self.y))
        for blk, a, c in zip(self.blocks, core.offsets[:-1], core.offsets[1:]):
            bt = b[a:c].reshape(blk.nlevels, blk.k)
            out += np.einsum("ij,ij->i", blk.Z, bt[blk.codes])
        return out

    def _system(self, w, zres):
        cp = CrossProducts.build(self.X, zres, [b.Z for b in self.blocks], [b.codes for b in self.blocks],
                                 [b.nlevels for b in self.blocks], weights=w)
        return PLSCore(cp)

    def _pdev(self, eta, u):
        return -2 * self.family.loglik_eta(self.y, eta, self.m, self._const).sum() + u @ u

    def modes(self, theta, beta):
        fam = self.family
        eta0 = self.off + self.X @ beta
        u = self.u.copy()
        zero = np.zeros(self.X.shape[1])
        core = self._system(np.ones(len(self.y)), self.y)  # structure only
        Ts = core.T_blocks(theta)
        eta = eta0 + self._re_part(core, Ts, u)
        pdev = self._pdev(eta, u)
        ev = None
        for _ in range(_MAXIT):
            _, s, w = fam.score_weight(self.y, eta, self.m)
            zres = (eta - eta0) + s / w
            core = self._system(w, zres)
            _, unew, _, ev = core.solve(theta, beta=zero, reml=False)
            u, eta, pdev, done = _halved_step(u, unew - u, pdev, lambda v: eta0 + self._re_part(core, Ts, v),
                                              self._pdev, self.tight)
            if done:
                break
        _, s, w = fam.score_weight(self.y, eta, self.m)
        core = self._system(w, (eta - eta0) + s / w)
        ev = core.evaluate(theta, reml=False)
        self.u, self._core = u, core
        return u, ev["ldL2"], eta, core, ev

    def deviance(self, par) -> float:
        theta, beta = par[:self.ntheta], par[self.ntheta:]
        try:
            u, ldL2, eta, _, _ = self.modes(theta, beta)
        except (np.linalg.LinAlgError, KeyError, FloatingPointError):
            return np.inf
        return float(-2 * self.family.loglik_eta(self.y, eta, self.m, self._const).sum() + u @ u + ldL2)

    def ranef(self, par):
        theta, beta = par[:self.ntheta], par[self.ntheta:]
        u, _, _, core, ev = self.modes(theta, beta)
        Ts = core.T_blocks(theta)
        b = core.lambda_times(Ts, u)
        fac = ev["fac"]
        means, sds = [], []
        invblocks = fac.inv_diag_blocks() if hasattr(fac, "inv_diag_blocks") else None
        for i, (blk, a, c) in enumerate(zip(self.blocks, core.offsets[:-1], core.offsets[1:])):
            means.append(b[a:c].reshape(blk.nlevels, blk.k))
            if invblocks is not None and i < len(invblocks):
                T = Ts[i]
                V = np.matmul(np.matmul(T[None], invblocks[i]), T.T[None])
                sds.append(np.sqrt(np.maximum(np.diagonal(V, axis1=1, axis2=2), 0)))
            else:
                sds.append(np.full((blk.nlevels, blk.k), np.nan))
        return means, sds


class ScalarTermsKernel:
    """Several scalar random-effect terms (nested or crossed random intercepts).

    ``A = Lambda' Z' W Z Lambda + I`` has a fixed sparsity pattern: the diagonal
    of each term and the level pairs that occur together in the data. The pairs
    are indexed once, so each PIRLS iteration forms ``A`` from weighted sums
    over the observations (``bincount``) and factors it with the shared
    block elimination (:func:`cimstats.models.mixed.linalg.factor_system`).
    """

    def __init__(self, X, y, m, offset, blocks, family):

        self.X, self.y, self.m, self.off = X, y, m, offset
        self.family = family
        self._const = family.loglik_const(y, m)
        self.blocks = blocks
        self.ntheta = len(blocks)
        self.codes = [np.asarray(b.codes) for b in blocks]
        self.G = [int(b.nlevels) for b in blocks]
        self.z = [np.ascontiguousarray(np.asarray(b.Z, dtype=float)[:, 0]) for b in blocks]
        self.shapes = [TermShape(1, g) for g in self.G]
        self.offsets = np.cumsum([0] + self.G)
        self.r = int(self.offsets[-1] - self.G[0])
        # dense coupling block unless its product L21 L21' (r^2 G0 flops per PIRLS step) is large:
        # nested designs have one pair per level of the first term, so a sparse block then makes
        # each factorisation cost O(levels) rather than O(r^2 levels)
        self.dense = self.r <= 400 and self.r * self.r * self.G[0] <= 20_000_000
        # level pairs (term a, term b) with a < b that occur together
        self.pairs = []
        for a in range(len(blocks)):
            for b in range(a + 1, len(blocks)):
                key = self.codes[b].astype(np.int64) * self.G[a] + self.codes[a]
                uniq, inv = np.unique(key, return_inverse=True)
                rows = (uniq // self.G[a]).astype(np.int64) + self.offsets[b] - self.G[0]  # position in rest
                cols = (uniq % self.G[a]).astype(np.int64) + (self.offsets[a] - (self.G[0] if a > 0 else 0))
                self.pairs.append((a, b, inv, rows, cols, len(uniq)))
        self.u = np.zeros(int(self.offsets[-1]))
        self._plan: dict = {}
        self._fac = None
        self.tight = False  # inner-loop tolerance: True while a Hessian is taken

    def _factor(self, theta, w):
        import scipy.sparse as sp


        t = np.asarray(theta, dtype=float)
        diag = [t[i] ** 2 * np.bincount(c, weights=w * z * z, minlength=G) + 1.0
                for i, (c, z, G) in enumerate(zip(self.codes, self.z, self.G))]
        head = diag[0][:, None, None]
        r, G0 = self.r, self.G[0]
        if len(self.codes) == 1:
            return factor_system(head, None, None, self.shapes, self._plan)
        if self.dense:
            A21 = np.zeros((r, G0))
            A22 = np.diag(np.concatenate(diag[1:]))
        else:
            r21, c21, v21 = [], [], []
            r22 = [np.arange(r)]
            c22 = [np.arange(r)]
            v22 = [np.concatenate(diag[1:])]
        for a, b, inv, rows, cols, npair in self.pairs:
            vals = t[a] * t[b] * np.bincount(inv, weights=w * self.z[a] * self.z[b], minlength=npair)
            if a == 0:
                if self.dense:
                    A21[rows, cols] = vals
                else:
                    r21.append(rows), c21.append(cols), v21.append(vals)
            else:
                if self.dense:
                    A22[rows, cols] = vals
                    A22[cols, rows] = vals
                else:
                    r22 += [rows, cols]
                    c22 += [cols, rows]
                    v22 += [vals, vals]
        if not self.dense:
            A21 = sp.csr_matrix((np.concatenate(v21), (np.concatenate(r21), np.concatenate(c21))), shape=(r, G0))
            A22 = sp.csr_matrix((np.concatenate(v22), (np.concatenate(r22), np.concatenate(c22))), shape=(r, r))
        return factor_system(head, A21, A22, self.shapes, self._plan)

    def _re_part(self, theta, u):
        out = np.zeros(len(self.y))
        for i, (c, z, a) in enumerate(zip(self.codes, self.z, self.offsets[:-1])):
            out += theta[i] * z * u[a:a + self.G[i]][c]
        return out

    def _rhs(self, theta, v):
        return np.concatenate([theta[i] * np.bincount(c, weights=z * v, minlength=G)
                               for i, (c, z, G) in enumerate(zip(self.codes, self.z, self.G))])

    def _pdev(self, eta, u):
        return -2 * self.family.loglik_eta(self.y, eta, self.m, self._const).sum() + u @ u

    def modes(self, theta, beta):
        fam = self.family
        theta = np.asarray(theta, dtype=float)
        eta0 = self.off + self.X @ beta
        u = self.u.copy()
        eta = eta0 + self._re_part(theta, u)
        pdev = self._pdev(eta, u)
        fac = None
        for _ in range(_MAXIT):
            _, s, w = fam.score_weight(self.y, eta, self.m)
            fac = self._factor(theta, w)
            unew = fac.solve(self._rhs(theta, w * (eta - eta0) + s)[:, None])[:, 0]
            u, eta, pdev, done = _halved_step(u, unew - u, pdev, lambda v: eta0 + self._re_part(theta, v),
                                              self._pdev, self.tight)
            if done:
                break
        _, _, w = fam.score_weight(self.y, eta, self.m)
        fac = self._factor(theta, w)
        self.u, self._fac = u, fac
        return u, fac, eta

    def deviance(self, par) -> float:
        theta, beta = par[:self.ntheta], par[self.ntheta:]
        try:
            u, fac, eta = self.modes(theta, beta)
        except (np.linalg.LinAlgError, FloatingPointError):
            return np.inf
        return float(-2 * self.family.loglik_eta(self.y, eta, self.m, self._const).sum() + u @ u + fac.logdet)

    def ranef(self, par):
        theta, beta = par[:self.ntheta], par[self.ntheta:]
        u, fac, _ = self.modes(theta, beta)
        inv = fac.inv_diag_blocks()
        means, sds = [], []
        for i, (a, G) in enumerate(zip(self.offsets[:-1], self.G)):
            means.append((theta[i] * u[a:a + G])[:, None])
            sds.append((abs(theta[i]) * np.sqrt(np.maximum(inv[i][:, 0, 0], 0)))[:, None])
        return means, sds

    def profiled_deviance(self, theta) -> float:
        """Laplace deviance at ``theta`` with the fixed effects found jointly with the modes
        by PIRLS (glmer's first stage, ``nAGQ = 0``); the fixed effects are kept in ``beta_hat``."""
        fam = self.family
        theta = np.asarray(theta, dtype=float)
        X, p = self.X, self.X.shape[1]
        beta = getattr(self, "beta_hat", None)
        if beta is None:
            beta = np.zeros(p)
        u = self.u.copy()
        eta = self.off + X @ beta + self._re_part(theta, u)
        pdev = self._pdev(eta, u)
        try:
            for _ in range(_MAXIT):
                _, s, w = fam.score_weight(self.y, eta, self.m)
                z = (eta - self.off) + s / w
                fac = self._factor(theta, w)
                ZtWX = np.column_stack([self._rhs(theta, w * X[:, j]) for j in range(p)])
                rz = self._rhs(theta, w * z)
                sol = fac.solve(np.column_stack([ZtWX, rz]))
                WX = X * w[:, None]
                RX = X.T @ WX - ZtWX.T @ sol[:, :p]
                bnew = np.linalg.solve(RX, WX.T @ z - ZtWX.T @ sol[:, p])
                unew = sol[:, p] - sol[:, :p] @ bnew
                db, du = bnew - beta, unew - u
                for _ in range(30):
                    cb, cu = beta + db, u + du
                    eta_c = self.off + X @ cb + self._re_part(theta, cu)
                    pc = self._pdev(eta_c, cu)
                    if pc <= pdev + 1e-10 * (1 + abs(pdev)):
                        break
                    db, du = db / 2, du / 2
                done = abs(pdev - pc) < 1e-11 * (1 + abs(pc)) or max(np.max(np.abs(du)), np.max(np.abs(db))) < _TOL
                beta, u, eta, pdev = cb, cu, eta_c, pc
                if done:
                    break
            _, _, w = fam.score_weight(self.y, eta, self.m)
            fac = self._factor(theta, w)
        except (np.linalg.LinAlgError, FloatingPointError):
            return np.inf
        self.u, self.beta_hat = u, beta
        return float(-2 * fam.loglik_eta(self.y, eta, self.m, self._const).sum() + u @ u + fac.logdet)
