"""Estimation: ML / FIML objective over groups, Fisher scoring, information matrices.

:class:`SEMProblem` gathers the group kernels, the group weights ``n_g / N``
and the linear re-parameterisation ``x = x_base + K z`` that carries linear
equality constraints (``z`` is the vector actually optimised). Everything
here works on arrays; the parameter table and result objects live elsewhere.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize

from .kernel import (
    GroupKernel, group_casewise_scores, group_expected_info, group_fiml, group_fml,
)

__all__ = ["SEMProblem", "FitTrace"]


class FitTrace(dict):
    """Optimiser summary: start, final, iterations, gradient norm, converged flag."""


class SEMProblem:
    def __init__(self, groups: list[GroupKernel], nfree: int, *, missing: bool,
                 K=None, x_base=None, bounds=None):
        self.groups = groups
        self.nfree = nfree
        self.missing = missing
        self.N = float(sum(g.n for g in groups))
        self.w = np.array([g.n / self.N for g in groups])
        self.K = np.eye(nfree) if K is None else K
        self.x_base = np.zeros(nfree) if x_base is None else x_base
        self.bounds = bounds or {}
        self.nz = self.K.shape[1]

    def x_of(self, z):
        return self.x_base + self.K @ z

    def z_of(self, x):
        return np.linalg.lstsq(self.K, x - self.x_base, rcond=None)[0]

    # objective -------------------------------------------------------------
    def fx(self, x, want_grad=True):
        f = 0.0
        g = np.zeros(self.nfree) if want_grad else None
        for w, gk in zip(self.w, self.groups):
            fg, gg = (group_fiml if self.missing else group_fml)(gk, x, want_grad)
            if not np.isfinite(fg):
                return np.inf, None
            f += w * fg
            if want_grad:
                g += w * gg
        return f, g

    def fz(self, z, want_grad=True):
        f, g = self.fx(self.x_of(z), want_grad)
        if g is None:
            return f, None
        return f, self.K.T @ g

    def info_x(self, x):
        """Expected information per observation (complete-data form) in x-space."""
        I = np.zeros((self.nfree, self.nfree))
        for w, gk in zip(self.w, self.groups):
            Ig = group_expected_info(gk, x)
            if Ig is None:
                return None
            I += w * Ig
        return I

    def info_z(self, z):
        I = self.info_x(self.x_of(z))
        return None if I is None else self.K.T @ I @ self.K

    def hessian_z(self, z, rel=1e-5):
        """Observed information per observation, -d2 loglik / dz2 / N, by central differences."""
        q = z.size
        H = np.zeros((q, q))
        for i in range(q):
            h = rel * max(1.0, abs(z[i]))
            zp = z.copy()
            zp[i] += h
            zm = z.copy()
            zm[i] -= h
            _, gp = self.fz(zp)
            _, gm = self.fz(zm)
            if gp is None or gm is None:
                return None
            H[:, i] = (gp - gm) / (2 * h)
        H = 0.5 * (H + H.T)
        return 0.5 * H  # F = -2 loglik / N

    def scores_z(self, z):
        """Casewise scores (rows of all groups stacked) in z-space."""
        x = self.x_of(z)
        return [group_casewise_scores(gk, x) @ self.K for gk in self.groups]

    # optimiser ----------------------------------------------------------------
    def fit(self, z0, *, maxit=500, tol=1e-9, switch=1e-2, Hinv0=None):
        z = np.asarray(z0, dtype=float).copy()
        f, g = self.fz(z)
        trace = FitTrace(start=z.copy(), iterations=0, converged=False, method="fisher-scoring",
                         f_start=f)
        if not np.isfinite(f):
            return self._fallback(z, trace)
        if self.bounds:
            return self._fallback(z, trace)
        I = None
        Hinv = None if Hinv0 is None else Hinv0.copy()  # BFGS metric once close (started from Fisher)
        for it in range(1, maxit + 1):
            if Hinv is None:
                I = self.info_z(z)
                if I is None:
                    return self._fallback(z, trace)
                try:
                    M = np.linalg.inv(2.0 * I)
                except np.linalg.LinAlgError:
                    return self._fallback(z, trace)
                if np.max(np.abs(g)) < switch:
                    Hinv = M
            else:
                M = Hinv
            step = -M @ g
            slope = g @ step
            if -slope < 1e-15 * max(1.0, abs(f)) and it > 1:
                # Newton decrement: the predicted decrease is negligible
                trace["converged"] = True
                break
            if slope >= 0:
                M = np.linalg.inv(2.0 * self.info_z(z))
                Hinv = None
                step = -M @ g
                slope = g @ step
            t = 1.0
            while True:
                zn = z + t * step
                fn, gn = self.fz(zn)
                if np.isfinite(fn) and fn <= f + 1e-4 * t * slope + 1e-13 * abs(f):
                    break
                t *= 0.5
                if t < 1e-8:
                    trace.update(iterations=it)
                    return self._fallback(z, trace)
            s_ = zn - z
            y_ = gn - g
            if Hinv is not None:
                sy = s_ @ y_
                if sy > 1e-16:
                    rho = 1.0 / sy
                    Hy = Hinv @ y_
                    Hinv = (Hinv - rho * (np.outer(s_, Hy) + np.outer(Hy, s_))
                            + (rho * rho * (y_ @ Hy) + rho) * np.outer(s_, s_))
            dz = np.max(np.abs(s_))
            df = abs(f - fn)
            z, f, g = zn, fn, gn
            trace["iterations"] = it
            if dz < tol * (1 + np.max(np.abs(z))) or (df < 1e-15 and np.max(np.abs(g)) < 1e-7):
                trace["converged"] = True
                break
        trace.update(final=z.copy(), f=f, grad_norm=float(np.max(np.abs(g))))
        if not trace["converged"] and np.max(np.abs(g)) < 1e-6:
            trace["converged"] = True
        return z, trace

    def _fallback(self, z, trace):
        """Quasi-Newton with bounds (used with inequality constraints or when scoring stalls)."""
        bounds = None
        if self.bounds:
            bounds = [self.bounds.get(i, (None, None)) for i in range(self.nz)]
            bounds = [(None if (lo is None or not np.isfinite(lo)) else lo,
                       None if (hi is None or not np.isfinite(hi)) else hi) for lo, hi in bounds]
            z = np.array([np.clip(v, b[0] if b[0] is not None else -np.inf,
                                  b[1] if b[1] is not None else np.inf) for v, b in zip(z, bounds)])

        def fun(zz):
            f, g = self.fz(zz)
            if not np.isfinite(f):
                return 1e10, np.zeros_like(zz)
            return f, g

        res = optimize.minimize(fun, z, jac=True, method="L-BFGS-B", bounds=bounds,
                                options=dict(maxiter=5000, ftol=1e-15, gtol=1e-9, maxcor=30))
        f, g = self.fz(res.x)
        trace.update(method="L-BFGS-B", iterations=trace.get("iterations", 0) + res.nit,
                     converged=bool(res.success) or (g is not None and np.max(np.abs(g)) < 1e-6),
                     final=res.x.copy(), f=f,
                     grad_norm=float(np.max(np.abs(g))) if g is not None else np.nan)
        return res.x, trace
