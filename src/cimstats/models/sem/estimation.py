"""Estimation: ML / FIML objective over groups, Fisher scoring, information matrices.

:class:`SEMProblem` gathers the group kernels, the group weights ``n_g / N``
and the linear re-parameterisation ``x = x_base + K z`` that carries linear
equality constraints (``z`` is the vector actually optimised). Everything
here works on arrays; the parameter table and result objects live elsewhere.

Non-linear equality constraints ``h(x) = 0`` and inequality constraints
``g(x) >= 0`` are handled by sequential quadratic programming (SLSQP)
followed by Newton steps on the Karush-Kuhn-Tucker conditions of the
constraints active at the solution (equalities and binding inequalities).
Inference then works in the tangent space of the active constraints
(:meth:`SEMProblem.localized`), which equals lavaan's bordered (augmented)
information matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize

from .derivatives import complex_jacobian
from .kernel import (
    GroupKernel, group_casewise_scores, group_expected_info, group_fiml, group_fml,
)

__all__ = ["SEMProblem", "FitTrace"]


class FitTrace(dict):
    """Optimiser summary: start, final, iterations, gradient norm, converged flag."""


class SEMProblem:
    def __init__(self, groups: list[GroupKernel], nfree: int, *, missing: bool,
                 K=None, x_base=None, ceq=None, cin=None):
        self.groups = groups
        self.nfree = nfree
        self.missing = missing
        self.N = float(sum(g.n for g in groups))
        self.w = np.array([g.n / self.N for g in groups])
        self.K = np.eye(nfree) if K is None else K
        self.x_base = np.zeros(nfree) if x_base is None else x_base
        self.nz = self.K.shape[1]
        # non-linear equalities h(x) = 0 and inequalities g(x) >= 0 (functions of x, complex-safe)
        self.ceq = ceq
        self.cin = cin
        self.constrained = ceq is not None or cin is not None
        # parameters counted for df and information criteria (lavaan: free minus equality rank)
        self.npar = self.nz

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
        self.n_evals = getattr(self, "n_evals", 0) + 1
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
        out = []
        for gk in self.groups:
            sc = group_casewise_scores(gk, x) @ self.K
            wt = getattr(gk, "wt", None)
            # sampling weights: each row's score counts with its (normalised) weight
            out.append(sc if wt is None else sc * wt[:, None])
        return out

    # optimiser ----------------------------------------------------------------
    def fit(self, z0, *, maxit=500, tol=1e-9, switch=1e-2, Hinv0=None):
        """Minimise the fit function from ``z0``; returns ``(z, trace)``.

        The trace holds the start and final values, iterations, the number of
        evaluations of the fit function, the largest gradient element and
        whether the optimiser converged.
        """
        n0 = getattr(self, "n_evals", 0)
        z, trace = self._fit(z0, maxit=maxit, tol=tol, switch=switch, Hinv0=Hinv0)
        trace["evaluations"] = getattr(self, "n_evals", 0) - n0
        return z, trace

    def _fit(self, z0, *, maxit=500, tol=1e-9, switch=1e-2, Hinv0=None):
        z = np.asarray(z0, dtype=float).copy()
        f, g = self.fz(z)
        trace = FitTrace(start=z.copy(), iterations=0, converged=False, method="fisher-scoring",
                         f_start=f)
        if self.constrained:
            return self._fit_constrained(z, trace)
        if not np.isfinite(f):
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
        """Quasi-Newton (used when Fisher scoring stalls)."""

        def fun(zz):
            f, g = self.fz(zz)
            if not np.isfinite(f):
                return 1e10, np.zeros_like(zz)
            return f, g

        res = optimize.minimize(fun, z, jac=True, method="L-BFGS-B",
                                options=dict(maxiter=5000, ftol=1e-15, gtol=1e-9, maxcor=30))
        f, g = self.fz(res.x)
        trace.update(method="L-BFGS-B", iterations=trace.get("iterations", 0) + res.nit,
                     converged=bool(res.success) or (g is not None and np.max(np.abs(g)) < 1e-6),
                     final=res.x.copy(), f=f,
                     grad_norm=float(np.max(np.abs(g))) if g is not None else np.nan)
        return res.x, trace

    # constrained estimation ------------------------------------------------------
    def constraint_values(self, z):
        """(h, g): equality and inequality constraint values at z."""
        x = self.x_of(z)
        h = np.real(np.atleast_1d(self.ceq(x))) if self.ceq is not None else np.zeros(0)
        g = np.real(np.atleast_1d(self.cin(x))) if self.cin is not None else np.zeros(0)
        return h, g

    def constraint_jacobians(self, z):
        """Jacobians (in z) of the equality and inequality constraints (complex step)."""
        x = self.x_of(z)
        out = []
        for fn in (self.ceq, self.cin):
            if fn is None:
                out.append(np.zeros((0, self.nz)))
                continue
            _, J = complex_jacobian(fn, x, batched=True)
            out.append(J @ self.K)
        return out

    def active_set(self, z, tol=1e-6):
        """Boolean mask of inequality constraints that bind at z."""
        _, g = self.constraint_values(z)
        return g <= tol * np.maximum(1.0, np.abs(g))

    def _fit_constrained(self, z, trace):
        def fun(zz):
            f, g = self.fz(zz)
            if not np.isfinite(f):
                return 1e10, np.zeros_like(zz)
            return f, g

        cons = []
        if self.ceq is not None:
            cons.append(dict(type="eq", fun=lambda zz: self.constraint_values(zz)[0],
                             jac=lambda zz: self.constraint_jacobians(zz)[0]))
        if self.cin is not None:
            cons.append(dict(type="ineq", fun=lambda zz: self.constraint_values(zz)[1],
                             jac=lambda zz: self.constraint_jacobians(zz)[1]))
        from threadpoolctl import threadpool_limits

        # SLSQP works with tiny matrices: threaded BLAS only adds contention
        with threadpool_limits(limits=1, user_api="blas"):
            res = optimize.minimize(fun, z, jac=True, method="SLSQP", constraints=cons,
                                    options=dict(maxiter=2000, ftol=1e-10))
        z = res.x
        nit = res.nit
        # Newton steps on the KKT conditions of the active constraints
        polished = False
        for _ in range(30):
            f, g = self.fz(z)
            if g is None:
                break
            h, gi = self.constraint_values(z)
            Jh, Jg = self.constraint_jacobians(z)
            act = self.active_set(z)
            J = np.vstack([Jh, Jg[act]])
            c = np.concatenate([h, gi[act]])
            lam = np.linalg.lstsq(J.T, g, rcond=None)[0] if J.shape[0] else np.zeros(0)
            W = 2.0 * self.hessian_z(z)
            W = W - self._constraint_curvature(z, lam, act)
            m = J.shape[0]
            KKT = np.block([[W, J.T], [J, np.zeros((m, m))]])
            rhs = -np.concatenate([g, c])
            try:
                sol = np.linalg.solve(KKT, rhs)
            except np.linalg.LinAlgError:
                break
            d = sol[: self.nz]
            zn = z + d
            fn_, _ = self.fz(zn)
            if not np.isfinite(fn_):
                break
            z = zn
            nit += 1
            if np.max(np.abs(d)) < 1e-11 * (1 + np.max(np.abs(z))):
                polished = True
                break
        f, g = self.fz(z)
        h, gi = self.constraint_values(z)
        Jh, Jg = self.constraint_jacobians(z)
        act = self.active_set(z)
        J = np.vstack([Jh, Jg[act]])
        lam = np.linalg.lstsq(J.T, g, rcond=None)[0] if J.shape[0] else np.zeros(0)
        proj = g - J.T @ lam if J.shape[0] else g
        feasible = (np.max(np.abs(h), initial=0.0) < 1e-8) and (np.min(gi, initial=0.0) > -1e-8)
        trace.update(method="SLSQP+KKT", iterations=nit, final=z.copy(), f=f,
                     grad_norm=float(np.max(np.abs(proj))) if proj.size else 0.0,
                     converged=bool(feasible and (polished or np.max(np.abs(proj), initial=0.0) < 1e-6)),
                     active_inequalities=np.where(act)[0].tolist(),
                     multipliers=lam.tolist())
        return z, trace

    def _constraint_curvature(self, z, lam, act):
        """sum_k lam_k d2 c_k / dz2 over the active constraints (central differences of Jacobians)."""
        q = self.nz
        out = np.zeros((q, q))
        if lam.size == 0 or np.all(lam == 0):
            return out
        for i in range(q):
            hstep = 1e-5 * max(1.0, abs(z[i]))
            zp = z.copy()
            zp[i] += hstep
            zm = z.copy()
            zm[i] -= hstep
            Jp = np.vstack([self.constraint_jacobians(zp)[0], self.constraint_jacobians(zp)[1][act]])
            Jm = np.vstack([self.constraint_jacobians(zm)[0], self.constraint_jacobians(zm)[1][act]])
            out[:, i] = lam @ ((Jp - Jm) / (2 * hstep))
        return 0.5 * (out + out.T)

    def localized(self, z):
        """The problem in the tangent space of the constraints active at ``z``.

        Returns ``(problem, z_local)``: an unconstrained problem with
        ``x = x(z) + K P u`` (``P`` an orthonormal basis of the null space of the
        active constraints' Jacobian) and ``u = 0``. Its information, scores and
        covariance matrices are lavaan's augmented (bordered) versions; its
        ``npar`` subtracts the rank of the equality constraints only (binding
        inequalities do not change degrees of freedom, as in lavaan).
        """
        from scipy import linalg as sla

        Jh, Jg = self.constraint_jacobians(z)
        act = self.active_set(z)
        J = np.vstack([Jh, Jg[act]])
        P = sla.null_space(J) if J.shape[0] else np.eye(self.nz)
        loc = SEMProblem(self.groups, self.nfree, missing=self.missing, K=self.K @ P, x_base=self.x_of(z))
        loc.npar = self.nz - (np.linalg.matrix_rank(Jh) if Jh.shape[0] else 0)
        return loc, np.zeros(P.shape[1])
