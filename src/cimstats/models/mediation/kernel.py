"""Numeric kernels for observed-variable mediation: arrays in, numbers out.

Nothing here knows about column names or data frames. The bootstrap works on
the *cross-product* (Gram) matrix of every variable the path model uses:

    G_b = Z' diag(w_b) Z,    w_b = how often each row enters resample b,

so a resample costs one row of a matrix product instead of a refit. Every
regression of the path model (and every residual variance or residual
covariance) is then a small solve on a block of ``G_b``, batched over all
resamples with :func:`numpy.linalg.solve`. The count matrix ``W`` (resamples x
rows) is drawn in blocks so memory stays bounded.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> x = rng.normal(size=50); y = 2 * x + rng.normal(size=50)
>>> Z = standardise(np.column_stack([x, y]))
>>> G = gram_blocks(np.ones((1, 50)), Z.z)        # the full sample, as one "resample"
>>> beta, rss = solve_equation(G, outcome=2, predictors=[0, 1])
>>> slope = beta[0, 1] * Z.scale[2] / Z.scale[1]
>>> bool(np.isclose(slope, np.polyfit(x, y, 1)[0]))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

#: resamples per block: bounds memory at about block x n x 8 bytes
BLOCK = 500
#: a resample whose design has eigenvalue ratio below this is set aside
SINGULAR_TOL = 1e-11


# ----------------------------------------------------------------------------- design
@dataclass(frozen=True)
class Standardised:
    """Columns of a design centred and scaled, with a leading column of ones.

    ``z[:, 0]`` is the intercept; ``z[:, j]`` for ``j >= 1`` is
    ``(D[:, j-1] - centre[j]) / scale[j]``. Slopes are invariant to the centring
    (the intercept absorbs it) and rescale as ``beta_raw = beta_z * scale[out] / scale[pred]``.
    """

    z: np.ndarray
    centre: np.ndarray
    scale: np.ndarray


def standardise(D: np.ndarray) -> Standardised:
    """Centre and scale the columns of ``D`` and prepend a column of ones."""
    D = np.asarray(D, dtype=float)
    centre = D.mean(axis=0)
    scale = D.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = np.empty((D.shape[0], D.shape[1] + 1))
    z[:, 0] = 1.0
    z[:, 1:] = (D - centre) / scale
    return Standardised(z=z, centre=np.r_[0.0, centre], scale=np.r_[1.0, scale])


def pair_products(z: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Row-wise products of all column pairs (upper triangle): ``n x p(p+1)/2``."""
    iu = np.triu_indices(z.shape[1])
    return z[:, iu[0]] * z[:, iu[1]], iu


def gram_blocks(W: np.ndarray, z: np.ndarray, products=None) -> np.ndarray:
    """Weighted Gram matrices ``Z' diag(w_b) Z`` for every row ``w_b`` of ``W``.

    Parameters
    ----------
    W : (B, n) array of row weights (bootstrap counts).
    z : (n, p) design including the column of ones.
    products : optional result of :func:`pair_products` for ``z`` (reused across blocks).

    Returns
    -------
    (B, p, p) array.
    """
    if products is None:
        products = pair_products(z)
    P, iu = products
    flat = W @ P
    p = z.shape[1]
    G = np.empty((W.shape[0], p, p))
    G[:, iu[0], iu[1]] = flat
    G[:, iu[1], iu[0]] = flat
    return G


def solve_equation(G: np.ndarray, outcome: int, predictors: Sequence[int]):
    """Least-squares fit of column ``outcome`` on ``predictors`` for every Gram matrix.

    Returns
    -------
    beta : (B, k) coefficients (on the standardised scale), NaN for singular resamples.
    rss : (B,) weighted residual sums of squares.
    """
    P = np.asarray(predictors)
    A = G[:, P[:, None], P[None, :]]
    r = G[:, P, outcome]
    ok = well_conditioned(A)
    if not ok.all():
        A = A.copy()
        A[~ok] = np.eye(len(P))
    beta = np.linalg.solve(A, r[..., None])[..., 0]
    rss = G[:, outcome, outcome] - np.einsum("bk,bk->b", beta, r)
    beta[~ok] = np.nan
    rss[~ok] = np.nan
    return beta, rss


def residual_crossproduct(G: np.ndarray, o1: int, o2: int, predictors: Sequence[int]) -> np.ndarray:
    """Weighted cross-product of the residuals of ``o1`` and ``o2`` on the same predictors."""
    P = np.asarray(predictors)
    beta, _ = solve_equation(G, o1, P)
    return G[:, o1, o2] - np.einsum("bk,bk->b", beta, G[:, P, o2])


def well_conditioned(A: np.ndarray) -> np.ndarray:
    """Which of a batch of symmetric matrices are safely invertible."""
    ev = np.linalg.eigvalsh(A)
    top = np.abs(ev[:, -1])
    return np.isfinite(ev).all(axis=1) & (ev[:, 0] > SINGULAR_TOL * np.where(top > 0, top, 1.0))


# -------------------------------------------------------------------------- resampling
def counts_from_seeds(seeds, unit_of_row: np.ndarray, n_units: int, stratum_of_unit: np.ndarray | None) -> np.ndarray:
    """Bootstrap row weights, one resample per seed (a :class:`numpy.random.SeedSequence`).

    Each resample draws its units from its own generator, so resample ``i``
    is the same whichever chunk or worker computes it. Units (rows, or
    clusters) are drawn with replacement within each stratum, as many as the
    stratum holds; a row's weight is the number of times its unit was drawn.
    """
    if stratum_of_unit is None:
        groups = [np.arange(n_units)]
    else:
        groups = [np.flatnonzero(stratum_of_unit == s) for s in np.unique(stratum_of_unit)]
    counts = np.empty((len(seeds), n_units))
    for i, s in enumerate(seeds):
        rng = np.random.default_rng(s)
        idx = np.concatenate([g[rng.integers(0, len(g), size=len(g))] for g in groups])
        counts[i] = np.bincount(idx, minlength=n_units)
    rows_are_units = stratum_of_unit is None and n_units == len(unit_of_row) and bool(
        np.array_equal(unit_of_row, np.arange(n_units)))
    return counts if rows_are_units else counts[:, unit_of_row]


def index_to_counts(index: np.ndarray, n: int) -> np.ndarray:
    """Turn an (n_boot x n) matrix of drawn row positions into row counts."""
    index = np.asarray(index)
    b = index.shape[0]
    offs = (np.arange(b) * n)[:, None]
    return np.bincount((index + offs).ravel(), minlength=b * n).reshape(b, n).astype(float)


def unit_grams(z: np.ndarray, unit_of_row: np.ndarray, n_units: int, products=None) -> np.ndarray:
    """Gram matrix contributed by each unit (for leave-one-unit-out jackknife): (U, p, p)."""
    if products is None:
        products = pair_products(z)
    P, iu = products
    flat = np.zeros((n_units, P.shape[1]))
    np.add.at(flat, unit_of_row, P)
    p = z.shape[1]
    G = np.empty((n_units, p, p))
    G[:, iu[0], iu[1]] = flat
    G[:, iu[1], iu[0]] = flat
    return G


# --------------------------------------------------------------------------- intervals
def percentile_interval(boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of ``boot`` (NaN rows ignored)."""
    alpha = 1 - level
    q = np.quantile if np.isfinite(boot).all() else np.nanquantile
    return q(boot, alpha / 2, axis=0), q(boot, 1 - alpha / 2, axis=0)


def bias_correction(boot: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """z0 = Phi^-1(share of resamples below the estimate, ties counted half)."""
    valid = np.isfinite(boot)
    nv = valid.sum(axis=0)
    below = (np.where(valid, boot < estimate, False)).sum(axis=0)
    ties = (np.where(valid, boot == estimate, False)).sum(axis=0)
    share = (below + 0.5 * ties) / np.maximum(nv, 1)
    return stats.norm.ppf(share)


def acceleration(jack: np.ndarray) -> np.ndarray:
    """BCa acceleration from leave-one-unit-out estimates (units x effects)."""
    d = np.nanmean(jack, axis=0) - jack
    num = np.nansum(d**3, axis=0)
    den = 6.0 * np.nansum(d**2, axis=0) ** 1.5
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, 0.0)


def adjusted_interval(
    boot: np.ndarray, estimate: np.ndarray, level: float, accel: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected (``accel=None``) or bias-corrected and accelerated interval.

    Notes
    -----
    With ``z0`` from :func:`bias_correction` and ``a`` the acceleration, the
    interval is the bootstrap quantiles at
    ``Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q)))`` for ``q = alpha/2, 1 - alpha/2``
    (Efron 1987); ``a = 0`` gives the bias-corrected interval.
    """
    z0 = bias_correction(boot, estimate)
    a = np.zeros_like(z0) if accel is None else accel
    out = []
    for q in ((1 - level) / 2, 1 - (1 - level) / 2):
        zq = stats.norm.ppf(q)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = stats.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
        lim = np.full(boot.shape[1], np.nan)
        for j in range(boot.shape[1]):
            col = boot[:, j]
            col = col[np.isfinite(col)]
            if np.isfinite(p[j]) and col.size:
                lim[j] = np.quantile(col, p[j])
        out.append(lim)
    return out[0], out[1]


# ------------------------------------------------------------------------- polynomials
def eval_polynomial(theta: np.ndarray, poly: Sequence[tuple[float, tuple[int, ...]]]) -> np.ndarray:
    """Evaluate ``sum c * prod theta[..., idx]`` over the terms of ``poly``."""
    theta = np.asarray(theta)
    out = np.zeros(theta.shape[:-1])
    for c, idx in poly:
        term = np.full(theta.shape[:-1], float(c))
        for i in idx:
            term = term * theta[..., i]
        out = out + term
    return out


def polynomial_gradient(theta: np.ndarray, poly, n_par: int) -> np.ndarray:
    """Gradient of :func:`eval_polynomial` at one parameter vector."""
    g = np.zeros(n_par)
    for c, idx in poly:
        for k, i in enumerate(idx):
            rest = float(c)
            for kk, j in enumerate(idx):
                if kk != k:
                    rest *= theta[j]
            g[i] += rest
    return g


# ---------------------------------------------------------------------------- sensitivity
def acme_curve(a: np.ndarray, sigma_ratio: np.ndarray, rho_tilde: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Average causal mediation effect as a function of the sensitivity parameter rho.

    ``ACME(rho) = a * (sigma_1 / sigma_2) * (rho_tilde - rho * sqrt((1 - rho_tilde^2) / (1 - rho^2)))``
    (Imai, Keele & Yamamoto 2010, Theorem 2), with ``sigma_1`` the residual SD of
    the total-effect model (Y on X and covariates), ``sigma_2`` that of the
    mediator model, ``rho_tilde`` the correlation of their residuals and ``rho``
    the correlation between the mediator and outcome errors. Broadcasts:
    ``a, sigma_ratio, rho_tilde`` of shape (B,) against ``rho`` (R,) give (B, R).
    """
    a = np.asarray(a, float)[..., None]
    s = np.asarray(sigma_ratio, float)[..., None]
    rt = np.asarray(rho_tilde, float)[..., None]
    rho = np.asarray(rho, float)
    with np.errstate(invalid="ignore"):
        return a * s * (rt - rho * np.sqrt((1 - rt**2) / (1 - rho**2)))
