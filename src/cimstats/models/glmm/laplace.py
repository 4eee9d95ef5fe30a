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

__all__ = ["ScalarKernel", "GeneralKernel"]

_TOL = 1e-10
_MAXIT = 100


class ScalarKernel:
    """One scalar random-effect term: diagonal system, per-cluster scoring."""

    def __init__(self, X, y, m, offset, z, codes, G, family, nagq=1):
        self.X, self.y, self.m, self.off = X, y, m, offset
        self.z, self.codes, self.G, self.family = z, codes, G, family
        self.nagq = int(nagq)
        if self.nagq > 1:
            x, w = hermegauss(self.nagq)
            self.nodes, self.logw = x, np.log(w / w.sum())
        self.u = np.zeros(G)
        self.ntheta = 1

    def _cluster_loglik(self, eta):
        mu = self.family.link.inverse(eta)
        return np.bincount(self.codes, weights=self.family.loglik_obs(self.y, mu, self.m), minlength=self.G)

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
            ll = self.family.loglik_obs(self.y, self.family.link.inverse(eta), self.m).sum()
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
        self.q = sum(b.nlevels * b.k for b in blocks)
        self.u = np.zeros(self.q)
        self._core = None

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
        mu = self.family.link.inverse(eta)
        return -2 * self.family.loglik_obs(self.y, mu, self.m).sum() + u @ u

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
            step = unew - u
            for _ in range(30):
                cand = u + step
                eta_c = eta0 + self._re_part(core, Ts, cand)
                pc = self._pdev(eta_c, cand)
                if pc <= pdev + 1e-10 * (1 + abs(pdev)):
                    break
                step = step / 2
            done = abs(pdev - pc) < 1e-11 * (1 + abs(pc)) or np.max(np.abs(step)) < _TOL
            u, eta, pdev = cand, eta_c, pc
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
        mu = self.family.link.inverse(eta)
        return float(-2 * self.family.loglik_obs(self.y, mu, self.m).sum() + u @ u + ldL2)

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
