"""Generalised linear models by iteratively reweighted least squares (numbers only).

The families are R's ``gaussian`` (identity link), ``binomial`` and
``quasibinomial`` (logit), ``poisson`` and ``quasipoisson`` (log). The
iteration, starting values, deviance residuals, dispersion and AIC follow
R's ``glm.fit``; the convergence test is R's (relative change in deviance)
with a tighter default tolerance, so that the estimates are those of the
exact maximum of the (quasi-)likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, special, stats

from ...errors import EstimationError

__all__ = ["FAMILIES", "GlmFamily", "IrlsFit", "irls", "estimating_functions"]

_EPS = np.finfo(float).eps
_THRESH = -np.log(_EPS)


@dataclass(frozen=True)
class GlmFamily:
    """A response family with its link, variance function and deviance residuals."""

    name: str

    @property
    def link(self) -> str:
        return {"gaussian": "identity", "binomial": "logit", "quasibinomial": "logit",
                "poisson": "log", "quasipoisson": "log"}[self.name]

    @property
    def fixed_dispersion(self) -> bool:
        """True when the dispersion is 1 by assumption (binomial, Poisson): z tests in an ordinary GLM."""
        return self.name in ("binomial", "poisson")

    def linkinv(self, eta):
        if self.link == "logit":
            e = np.clip(eta, -_THRESH, _THRESH)
            return 1.0 / (1.0 + np.exp(-e))
        if self.link == "log":
            return np.maximum(np.exp(eta), _EPS)
        return eta

    def linkfun(self, mu):
        if self.link == "logit":
            return special.logit(mu)
        if self.link == "log":
            return np.log(mu)
        return mu

    def mu_eta(self, eta):
        if self.link == "logit":
            e = np.exp(-np.abs(eta))
            return np.maximum(e / (1.0 + e) ** 2, _EPS)
        if self.link == "log":
            return np.maximum(np.exp(eta), _EPS)
        return np.ones_like(eta)

    def variance(self, mu):
        if self.link == "logit":
            return mu * (1.0 - mu)
        if self.link == "log":
            return mu
        return np.ones_like(mu)

    def dev_resids(self, y, mu, w):
        if self.link == "logit":
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
                b = np.where(y < 1, (1 - y) * np.log(np.where(y < 1, 1 - y, 1.0) / (1 - mu)), 0.0)
            return 2 * w * (a + b)
        if self.link == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                a = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
            return 2 * w * (a - (y - mu))
        return w * (y - mu) ** 2

    def mustart(self, y, w):
        if self.link == "logit":
            return (w * y + 0.5) / (w + 1)
        if self.link == "log":
            return y + 0.1
        return y.astype(float)

    def aic(self, y, mu, w, dev) -> float:
        """R's ``family$aic`` (without the 2 x rank term); NaN for the quasi families."""
        if self.name == "gaussian":
            good = w > 0
            nobs = int(good.sum())
            return float(nobs * (np.log(dev / nobs * 2 * np.pi) + 1) + 2 - np.sum(np.log(w[good])))
        if self.name == "binomial":
            m = np.round(w)
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = stats.binom.logpmf(np.round(m * y), m, mu)
            return float(-2 * np.sum(np.where(m > 0, w / np.where(m > 0, m, 1.0), 0.0) * np.where(m > 0, ll, 0.0)))
        if self.name == "poisson":
            return float(-2 * np.sum(stats.poisson.logpmf(y, mu) * w))
        return float("nan")


FAMILIES = ("gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson")


@dataclass(frozen=True)
class IrlsFit:
    """The numbers of a GLM fit: coefficients, the inverse information (X'WX)^-1 and what the IRLS did."""

    beta: np.ndarray
    xtwx_inv: np.ndarray
    mu: np.ndarray
    eta: np.ndarray
    working_weights: np.ndarray
    deviance: float
    null_deviance: float
    iterations: int
    converged: bool
    start: np.ndarray
    score_norm: float


def _wls(X, z, wts):
    """Weighted least squares by the normal equations with equilibrated columns (Cholesky).

    A p x p Cholesky factor costs one matrix product over the rows, far less than a QR factor of the
    tall weighted design; scaling the columns to unit length keeps the condition number that of the
    correlations between predictors. An ill-conditioned system falls back to QR.
    """
    Xw = X * np.sqrt(wts)[:, None]
    scale = np.sqrt(np.einsum("ij,ij->j", Xw, Xw))
    scale[scale == 0] = 1.0
    A = (Xw.T @ Xw) / np.outer(scale, scale)
    b = (X.T @ (wts * z)) / scale
    try:
        c = linalg.cho_factor(A, check_finite=False)
        if np.min(np.abs(np.diag(c[0]))) ** 2 < 1e-10 * np.max(np.abs(np.diag(A))):
            raise linalg.LinAlgError("ill-conditioned")
        return linalg.cho_solve(c, b, check_finite=False) / scale
    except linalg.LinAlgError:
        q, r = np.linalg.qr(Xw)
        return linalg.solve_triangular(r, q.T @ (z * np.sqrt(wts)))


def irls(X: np.ndarray, y: np.ndarray, w: np.ndarray, family: GlmFamily, *, tol: float = 1e-12,
         maxit: int = 100) -> IrlsFit:
    """Fit a GLM by IRLS (R's ``glm.fit``) with prior weights ``w`` (zero weights allowed).

    Raises
    ------
    EstimationError
        When the deviance is not finite at the starting values, or no step halving recovers a finite deviance.
    """
    n, p = X.shape
    good = w > 0
    mu = family.mustart(y, w)
    eta = family.linkfun(mu)
    mu = family.linkinv(eta)
    devold = float(np.sum(family.dev_resids(y, mu, w)))
    if not np.isfinite(devold):
        raise EstimationError(f"The {family.name} GLM has a non-finite deviance at its starting values; "
                              f"check the outcome's values for this family.")
    beta = None
    start = np.zeros(p)
    converged = False
    it = 0
    for it in range(1, maxit + 1):
        me = family.mu_eta(eta)
        var = family.variance(mu)
        z = eta + (y - mu) / me
        wts = np.where(good, w * me ** 2 / var, 0.0)
        new = _wls(X[good], z[good], wts[good])
        if it == 1:
            start = new.copy()
        eta_new = X @ new
        mu_new = family.linkinv(eta_new)
        dev = float(np.sum(family.dev_resids(y, mu_new, w)))
        halvings = 0
        while not np.isfinite(dev) and beta is not None and halvings < 50:
            new = (new + beta) / 2
            eta_new = X @ new
            mu_new = family.linkinv(eta_new)
            dev = float(np.sum(family.dev_resids(y, mu_new, w)))
            halvings += 1
        if not np.isfinite(dev):
            raise EstimationError(f"The {family.name} GLM's deviance became non-finite during fitting and step "
                                  f"halving did not recover; check for separation or extreme values.")
        beta, eta, mu = new, eta_new, mu_new
        if abs(dev - devold) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        devold = dev
    me = family.mu_eta(eta)
    var = family.variance(mu)
    ww = np.where(good, w * me ** 2 / var, 0.0)
    info = (X * ww[:, None]).T @ X
    xtwx_inv = linalg.inv(info)
    xtwx_inv = (xtwx_inv + xtwx_inv.T) / 2
    score = X.T @ np.where(good, w * me * (y - mu) / var, 0.0)
    # null deviance: intercept-only (weighted mean) when the model has an intercept column
    has_icpt = bool(np.any(np.all(X == 1.0, axis=0)))
    wtdmu = np.sum(w * y) / np.sum(w) if has_icpt else family.linkinv(np.zeros(n))
    null_dev = float(np.sum(family.dev_resids(y, np.broadcast_to(wtdmu, y.shape), w)))
    return IrlsFit(beta=beta, xtwx_inv=xtwx_inv, mu=mu, eta=eta, working_weights=ww, deviance=float(dev),
                   null_deviance=null_dev, iterations=it, converged=converged, start=start,
                   score_norm=float(np.max(np.abs(score))) if p else 0.0)


def estimating_functions(X: np.ndarray, y: np.ndarray, w: np.ndarray, fit: IrlsFit, family: GlmFamily) -> np.ndarray:
    """Each row's contribution to the score, ``x_i w_i (y_i - mu_i) mu.eta_i / V(mu_i)`` (R: estfun of svyglm)."""
    me = family.mu_eta(fit.eta)
    var = family.variance(fit.mu)
    return X * np.where(w > 0, w * me * (y - fit.mu) / var, 0.0)[:, None]
