"""Simulating responses from a fitted linear mixed model and refitting it cheaply: the kernels of the parametric bootstrap.

Only the response changes between a fit and its refits, so a refit rebuilds
the cross-products from the same design matrices and optimises the profiled
criterion again. Each function takes plain arrays (:func:`lmm_state`) so that
it can run on any worker of the execution layer (:mod:`cimstats._parallel`).
"""

from __future__ import annotations

import numpy as np

from cimstats.errors import ModelSpecificationError

from ._threads import _blas_single_thread
from .core import CrossProducts, PLSCore
from .optimize import minimize_theta

__all__ = ["sdcor_vector", "lmm_state", "lmm_bootstrap_chunk", "lmm_lrt_chunk"]


def sdcor_vector(Ts, sigma) -> list:
    """Random-effect SDs and correlations of each block, then the residual SD (the order of ``varcorr()``)."""
    vals = []
    for T in Ts:
        S = sigma ** 2 * (T @ T.T)
        sd = np.sqrt(np.diag(S))
        vals.extend(sd)
        k = len(sd)
        for j in range(k):
            for i in range(j + 1, k):
                vals.append(S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan)
    vals.append(sigma)
    return vals


def _lmm_refit(st, y, theta0, reml):
    cp = CrossProducts.build(st["X"], y, st["Z"], st["codes"], st["nlevels"])
    core = PLSCore(cp)
    th, _, opt = minimize_theta(lambda t: core.deviance(t, reml), theta0, core.lower)
    ev = core.evaluate(th, reml)
    n, p = st["X"].shape
    sigma = float(np.sqrt(ev["pwrss"] / (n - p if reml else n)))
    return th, ev, sigma, core, opt


def _lmm_simulate(st, rng):
    y = st["mu"].copy()
    for Z, codes, nl, T in zip(st["Z"], st["codes"], st["nlevels"], st["T"]):
        u = rng.standard_normal((nl, Z.shape[1])) @ T.T * st["sigma"]
        y += np.einsum("ij,ij->i", Z, u[codes])
    return y + rng.normal(0.0, st["sigma"], len(y))


def lmm_bootstrap_chunk(st: dict, seeds):
    """Simulate and refit an LMM for each seed: fixed effects, SDs/correlations, converged flag."""
    rows = []
    with _blas_single_thread():
        for s in seeds:
            rng = np.random.default_rng(s)
            y = _lmm_simulate(st, rng)
            try:
                th, ev, sigma, core, opt = _lmm_refit(st, y, st["theta"], st["reml"])
                rows.append(list(ev["beta"]) + sdcor_vector(core.T_blocks(th), sigma) + [float(opt.converged)])
            except (np.linalg.LinAlgError, KeyError, FloatingPointError):
                rows.append([np.nan] * (st["width"] - 1) + [0.0])
    return np.array(rows, dtype=float)


def lmm_lrt_chunk(st: dict, seeds):
    """Simulate under the null model, fit null and alternative by ML: the LRT statistic per seed."""
    rows = []
    with _blas_single_thread():
        for s in seeds:
            rng = np.random.default_rng(s)
            y = _lmm_simulate(st, rng)
            try:
                _, ev0, _, _, o0 = _lmm_refit(st, y, st["theta"], False)
                _, ev1, _, _, o1 = _lmm_refit(st["alt"], y, st["alt"]["theta"], False)
                rows.append([max(ev0["deviance"] - ev1["deviance"], 0.0), float(o0.converged and o1.converged)])
            except (np.linalg.LinAlgError, KeyError, FloatingPointError):
                rows.append([np.nan, 0.0])
    return np.array(rows, dtype=float)



def lmm_state(fit) -> dict:
    """The arrays a refit needs: design matrices, grouping codes, fitted means, factors and settings."""
    core, frame, blocks = fit._core, fit._frame, fit._blocks
    if core is None or frame is None:
        raise ModelSpecificationError("This model was loaded from a saved folder; fit it again to bootstrap it.")
    return {"X": frame.X, "Z": [b.Z for b in blocks], "codes": [b.codes for b in blocks],
            "nlevels": [b.nlevels for b in blocks], "T": core.T_blocks(fit.theta), "mu": frame.X @ np.asarray(fit.params),
            "sigma": float(fit.sigma), "theta": np.asarray(fit.theta, float), "reml": bool(fit.reml)}


