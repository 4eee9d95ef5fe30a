"""Bounded optimisation of the profiled criterion over theta, and numerical derivatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .._result import OptimizerSummary

__all__ = ["OptimizerSummary", "minimize_theta", "probe_boundary", "boundary_coordinates", "richardson_gradient",
           "richardson_hessian", "richardson_jacobian", "richardson_grad_hess"]


def _projected_gradient(f, x, lower, h=1e-6):
    g = np.zeros_like(x)
    f0 = f(x)
    for i in range(len(x)):
        step = h * max(1.0, abs(x[i]))
        xp = x.copy()
        xp[i] += step
        if x[i] - step >= lower[i]:
            xm = x.copy()
            xm[i] -= step
            g[i] = (f(xp) - f(xm)) / (2 * step)
        else:
            g[i] = (f(xp) - f0) / step
        if x[i] <= lower[i] + 1e-10 and g[i] > 0:
            g[i] = 0.0  # on the bound and pushing outward: not a violation
    return g


def _fd_grad_hess(f, x, f0, h):
    """Central-difference gradient and Hessian (2k + k(k-1) + 1 evaluations)."""
    k = len(x)
    g = np.zeros(k)
    H = np.zeros((k, k))
    fp = np.zeros(k)
    fm = np.zeros(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        fp[i], fm[i] = f(x + e), f(x - e)
        g[i] = (fp[i] - fm[i]) / (2 * h[i])
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
    for i in range(k):
        for j in range(i):
            e = np.zeros(k)
            e[i], e[j] = h[i], h[j]
            fpp, fmm = f(x + e), f(x - e)
            H[i, j] = H[j, i] = (fpp - 2 * f0 + fmm - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2) / (2 * h[i] * h[j])
    return g, H


def _newton_polish(f, x, fx, lower, maxit=8):
    """Bounded Newton iterations on finite-difference derivatives, from near the optimum."""
    ok = False
    g = np.zeros_like(x)
    for _ in range(maxit):
        h = 1e-4 * np.maximum(np.abs(x), 0.05)
        g, H = _fd_grad_hess(f, x, fx, h)
        active = (x <= lower + 1e-10) & (g > 0)
        free = ~active
        if not free.any():
            ok = True
            break
        Hf = H[np.ix_(free, free)]
        try:
            np.linalg.cholesky(Hf)
        except np.linalg.LinAlgError:
            return x, fx, g, False
        d = np.zeros_like(x)
        d[free] = -np.linalg.solve(Hf, g[free])
        t, improved = 1.0, False
        for _ls in range(30):
            xn = np.maximum(x + t * d, lower)
            fn = f(xn)
            if fn <= fx:
                improved = True
                break
            t /= 2
        if not improved:
            ok = True  # no decrease possible along the Newton direction: at the optimum to precision
            break
        step = np.max(np.abs(xn - x))
        x, fx = xn, fn
        if step < 1e-10 * max(1.0, np.max(np.abs(x))):
            ok = True
            break
    else:
        ok = True
    return x, fx, g, ok


#: Steps into the interior tried from a boundary coordinate (theta units: relative standard deviations).
PROBE_STEPS = (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 2.0)
#: Coordinates this close to their bound are checked as boundary coordinates.
BOUNDARY_TOL = 1e-4
#: Restarts from the interior allowed after a boundary check found a lower criterion.
MAX_RESTARTS = 8
#: Wording of the check that failed when the restarts ran out (other modules look for it).
BOUNDARY_UNRESOLVED = "still lowers the criterion"


def _local_fit(fun, x, lower, bounds, maxiter):
    """L-BFGS-B from ``x``, then bounded Newton polish (or L-BFGS-B on central differences when
    the Hessian is not positive definite). Returns (x, f(x), iterations, method, message)."""
    res = minimize(fun, x, method="L-BFGS-B", jac="2-point", bounds=bounds,
                   options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-6, "maxls": 50})
    it = int(res.nit)
    x = np.maximum(res.x, lower)
    fx = fun(x)
    x, fx, _, ok = _newton_polish(fun, x, fx, lower)
    method = "L-BFGS-B + Newton polish (bounded, finite differences)"
    if not ok:
        res = minimize(fun, x, method="L-BFGS-B", jac="3-point", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10, "maxls": 50})
        it += int(res.nit)
        xn = np.maximum(res.x, lower)
        fn = fun(xn)
        if fn <= fx:
            x, fx = xn, fn
        method = "L-BFGS-B (bounded, finite differences)"
    return x, fx, it, method, str(res.message)


def boundary_coordinates(x, lower, tol=BOUNDARY_TOL) -> np.ndarray:
    """Indices of the bounded coordinates (theta diagonal elements) at or within ``tol`` of their bound."""
    x = np.asarray(x, dtype=float)
    lower = np.asarray(lower, dtype=float)
    return np.flatnonzero(np.isfinite(lower) & (x - lower <= tol))


def probe_boundary(fun, x, fx, lower, steps=PROBE_STEPS):
    """Step into the interior from each boundary coordinate of ``x`` (and from all of them together).

    A variance estimated as zero (a diagonal element of the relative Cholesky
    factor at 0; for a correlated term this is also how a correlation of +-1
    appears) is a local optimum only if moving that element off zero does not
    lower the criterion. For a scalar random effect the criterion depends on
    theta through theta^2, so its gradient vanishes at 0 and gradient-based
    stopping rules cannot tell a minimum from a maximum there; these probes can.

    Returns (best point, its value, indices checked, number of evaluations); the
    best point is ``x`` itself when no probe lowered the criterion by more than
    a rounding margin.
    """
    idx = boundary_coordinates(x, lower)
    best_x, best_f, nev = x, fx, 0
    if not len(idx):
        return best_x, best_f, idx, nev
    margin = 1e-10 * (1.0 + abs(fx))
    groups = [[i] for i in idx] + ([list(idx)] if len(idx) > 1 else [])
    for grp in groups:
        for d in steps:
            xp = x.copy()
            xp[grp] = lower[grp] + d
            fp = fun(xp)
            nev += 1
            if fp < best_f - margin:
                best_x, best_f = xp, fp
    return best_x, best_f, idx, nev


def minimize_theta(f, x0, lower, *, maxiter=1000) -> tuple[np.ndarray, float, OptimizerSummary]:
    """Minimise ``f`` over theta with lower bounds, checking any boundary solution.

    L-BFGS-B on a forward-difference gradient brings theta close to the
    optimum; bounded Newton steps on central-difference derivatives then polish
    it (quadratic convergence, so the optimum is located to ~1e-8). If the
    Hessian is not positive definite there (e.g. near a boundary), L-BFGS-B on
    a central-difference gradient finishes instead.

    Every solution with a bounded coordinate on (or within 1e-4 of) its bound --
    a variance of zero, or a correlation of +-1 (a zero diagonal element of the
    relative Cholesky factor) -- is then checked by stepping into the interior
    along each such coordinate and along all of them together
    (:func:`probe_boundary`); when a step lowers the criterion the optimiser
    restarts from there. ``converged`` is true only when the largest projected
    central-difference gradient component is below 1e-2 and no boundary step
    lowers the criterion. The summary's ``checks`` lists the checks run.
    """
    nev = [0]

    def fun(x):
        nev[0] += 1
        v = f(x)
        return v if np.isfinite(v) else 1e300

    lower = np.asarray(lower, dtype=float)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    x0 = np.asarray(x0, dtype=float)
    x, fx, total_it, method, message = _local_fit(fun, x0, lower, bounds, maxiter)
    checks = []
    boundary_ok = True
    restarts = 0
    while True:
        xp, fp, idx, _ = probe_boundary(fun, x, fx, lower)
        if not len(idx):
            break
        if fp >= fx:
            checks.append(f"boundary: theta{_fmt_idx(idx)} stepped into the interior, no lower criterion")
            break
        if restarts >= MAX_RESTARTS:
            boundary_ok = False
            checks.append(f"boundary: theta{_fmt_idx(idx)} stepped into the interior {BOUNDARY_UNRESOLVED} "
                          f"after {restarts} restarts")
            x, fx = xp, fp
            break
        restarts += 1
        checks.append(f"boundary: theta{_fmt_idx(idx)} stepped into the interior lowered the criterion by "
                      f"{fx - fp:.3g}; restarted")
        xn, fn, it, method, message = _local_fit(fun, xp, lower, bounds, maxiter)
        total_it += it
        x, fx = (xn, fn) if fn <= fp else (xp, fp)
    g = _projected_gradient(fun, x, lower)
    gnorm = float(np.max(np.abs(g))) if len(g) else 0.0
    checks.insert(0, f"projected gradient: max |component| {gnorm:.2g} (limit 1e-2)")
    converged = bool(np.isfinite(fx) and fx < 1e300 and gnorm < 1e-2 and boundary_ok)
    if restarts:
        method += f", {restarts} restart(s) from the interior after boundary checks"
    summ = OptimizerSummary(method, tuple(map(float, x0)), tuple(map(float, x)), total_it, nev[0], gnorm,
                            converged, message, tuple(checks))
    return x, float(fx), summ


def _fmt_idx(idx):
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _steps(x, d=1e-4, eps=1e-4, zero_tol=float(np.sqrt(np.finfo(float).eps / 7e-7))):
    return np.abs(d * x) + eps * (np.abs(x) < zero_tol)


def richardson_gradient(f, x, r=4, v=2, d=1e-4, eps=1e-4):
    """Gradient by central differences with Richardson extrapolation (as numDeriv)."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, d=d, eps=eps)
    out = np.zeros(len(x))
    for i in range(len(x)):
        a = []
        h = h0[i]
        for _ in range(r):
            e = np.zeros_like(x)
            e[i] = h
            a.append((f(x + e) - f(x - e)) / (2 * h))
            h /= v
        out[i] = _extrapolate(a, v)
    return out


def richardson_jacobian(f, x, r=4, v=2):
    """Jacobian of a vector function (rows: outputs, columns: inputs)."""
    x = np.asarray(x, dtype=float)
    f0 = np.asarray(f(x), dtype=float).ravel()
    h0 = _steps(x)
    J = np.zeros((len(f0), len(x)))
    for i in range(len(x)):
        a = []
        h = h0[i]
        for _ in range(r):
            e = np.zeros_like(x)
            e[i] = h
            a.append((np.asarray(f(x + e)).ravel() - np.asarray(f(x - e)).ravel()) / (2 * h))
            h /= v
        J[:, i] = _extrapolate(a, v)
    return J


def richardson_hessian(f, x, r=4, v=2, d=0.1, eps=1e-4):
    """Hessian by Richardson-extrapolated central differences.

    The scheme is that of numDeriv's ``genD`` (initial step ``d * |x|``, four
    halvings, off-diagonal terms from ``f(x + hi + hj)`` and ``f(x - hi - hj)``),
    which is what lmerTest uses, so Satterthwaite df agree with lmerTest.
    """
    return richardson_grad_hess(f, x, r=r, v=v, d=d, eps=eps)[1]


def richardson_grad_hess(f, x, r=4, v=2, d=0.01, eps=1e-3):
    """Gradient and Hessian by Richardson-extrapolated central differences (numDeriv's ``genD``).

    The initial steps are ``d * |x|`` (``eps`` where ``x`` is about zero), halved
    ``r - 1`` times; the gradient comes free from the same evaluations
    (``r k (k + 1)`` evaluations in all, plus one). With a criterion whose
    evaluation has an inner iterative loop (the conditional modes of a GLMM), the
    steps should be large enough that the loop's tolerance is negligible next to
    ``f(x + h) - f(x)``: relative steps of 0.01 with four halvings reach an
    extrapolated accuracy far below what the standard errors need.
    """
    x = np.asarray(x, dtype=float)
    k = len(x)
    h0 = _steps(x, d=d, eps=eps)
    f0 = f(x)
    H = np.zeros((k, k))
    g = np.zeros(k)
    for i in range(k):
        a, b = [], []
        h = h0.copy()
        for _ in range(r):
            e = np.zeros(k)
            e[i] = h[i]
            fp, fm = f(x + e), f(x - e)
            b.append((fp - fm) / (2 * h[i]))
            a.append((fp - 2 * f0 + fm) / h[i] ** 2)
            h = h / v
        H[i, i] = _extrapolate(a, v)
        g[i] = _extrapolate(b, v)
    for i in range(k):
        for j in range(i):
            a = []
            h = h0.copy()
            for _ in range(r):
                e = np.zeros(k)
                e[i] = h[i]
                e[j] = h[j]
                a.append((f(x + e) - 2 * f0 + f(x - e) - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2)
                         / (2 * h[i] * h[j]))
                h = h / v
            H[i, j] = H[j, i] = _extrapolate(a, v)
    return g, H, f0


def _extrapolate(a, v):
    a = [np.asarray(t, dtype=float) for t in a]
    m = 1
    while len(a) > 1:
        fac = v ** (2 * m)
        a = [(fac * a[i + 1] - a[i]) / (fac - 1) for i in range(len(a) - 1)]
        m += 1
    return a[0]
