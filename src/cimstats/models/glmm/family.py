"""Response families and link functions of generalised linear mixed models (numbers only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ...errors import ModelSpecificationError

__all__ = ["Link", "Family", "make_family", "LINKS", "FAMILIES"]

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)`` with its inverse and ``d mu / d eta``."""

    name: str

    def inverse(self, eta):
        if self.name == "logit":
            return special.expit(eta)
        if self.name == "probit":
            return special.ndtr(eta)
        if self.name == "log":
            return np.exp(np.minimum(eta, 700.0))
        if self.name == "cloglog":
            return -np.expm1(-np.exp(np.minimum(eta, 700.0)))
        return np.asarray(eta, dtype=float)  # identity

    def mu_eta(self, eta):
        if self.name == "logit":
            e = np.exp(-np.abs(eta))
            return np.maximum(e / (1.0 + e) ** 2, _EPS)
        if self.name == "probit":
            return np.maximum(stats.norm.pdf(eta), _EPS)
        if self.name == "log":
            return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)
        if self.name == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e - np.exp(e)), _EPS)
        return np.ones_like(eta)

    def link(self, mu):
        mu = np.asarray(mu, dtype=float)
        if self.name == "logit":
            return special.logit(mu)
        if self.name == "probit":
            return special.ndtri(mu)
        if self.name == "log":
            return np.log(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        return mu


LINKS = {"binomial": ("logit", "probit", "cloglog", "log"), "poisson": ("log", "identity")}
FAMILIES = tuple(LINKS)


@dataclass(frozen=True)
class Family:
    """Binomial (proportions with prior weights = totals) or Poisson counts."""

    name: str
    link: Link

    def clip(self, mu):
        if self.name == "binomial":
            return np.clip(mu, _EPS, 1.0 - _EPS)
        return np.maximum(mu, _EPS)

    def variance(self, mu):
        return mu * (1.0 - mu) if self.name == "binomial" else mu

    def loglik_const(self, y, m):
        """The part of each observation's log-likelihood that does not involve mu."""
        if self.name == "binomial":
            k = y * m
            return special.gammaln(m + 1) - special.gammaln(k + 1) - special.gammaln(m - k + 1)
        return -m * special.gammaln(y + 1)

    def loglik_obs(self, y, mu, m, const=None):
        """Log-likelihood contribution of each observation (full, with constants).

        Binomial: ``y`` is the proportion and ``m`` the number of trials;
        Poisson: ``y`` is the count and ``m`` a prior weight. ``const`` (from
        :meth:`loglik_const`) saves recomputing the constants in repeated calls.
        """
        mu = self.clip(mu)
        c = self.loglik_const(y, m) if const is None else const
        if self.name == "binomial":
            k = y * m
            return special.xlogy(k, mu) + special.xlogy(m - k, 1.0 - mu) + c
        return m * (special.xlogy(y, mu) - mu) + c

    def loglik_saturated(self, y, m):
        return self.loglik_obs(y, np.where(self.name == "binomial", y, np.maximum(y, _EPS)), m)

    @property
    def canonical(self) -> bool:
        return (self.name, self.link.name) in (("binomial", "logit"), ("poisson", "log"))

    def loglik_eta(self, y, eta, m, const=None):
        """Log-likelihood of each observation at linear predictor ``eta``.

        For the canonical links it is computed from ``eta`` directly
        (binomial-logit: ``k eta - m log(1 + e^eta)``; Poisson-log:
        ``m (y eta - e^eta)``), which is both faster and more accurate in the tails.
        """
        c = self.loglik_const(y, m) if const is None else const
        if self.name == "binomial" and self.link.name == "logit":
            return y * m * eta - m * np.logaddexp(0.0, eta) + c
        if self.name == "poisson" and self.link.name == "log":
            e = np.minimum(eta, 700.0)
            return m * (y * e - np.exp(e)) + c
        return self.loglik_obs(y, self.link.inverse(eta), m, c)

    def score_weight(self, y, eta, m):
        """(mu, d loglik / d eta, Fisher weight) at linear predictor ``eta``."""
        if self.canonical:
            mu = self.clip(self.link.inverse(eta))
            var = self.variance(mu)
            return mu, m * (y - mu), m * np.maximum(var, _EPS)
        mu = self.clip(self.link.inverse(eta))
        dmu = self.link.mu_eta(eta)
        var = self.variance(mu)
        return mu, m * (y - mu) * dmu / var, m * dmu * dmu / var

    @property
    def latent_variance(self) -> float | None:
        """Level-1 variance on the latent scale (logit: pi^2/3, probit: 1)."""
        if self.name == "binomial" and self.link.name == "logit":
            return float(np.pi ** 2 / 3)
        if self.name == "binomial" and self.link.name == "probit":
            return 1.0
        return None


def make_family(family, link=None) -> Family:
    """Validate ``family=`` and ``link=`` and return a :class:`Family`."""
    if not isinstance(family, str) or family.lower() not in LINKS:
        raise ModelSpecificationError(
            f"`family` is {family!r}; expected one of {list(FAMILIES)} (binary or binomial outcomes, or counts)."
        )
    fam = family.lower()
    ln = LINKS[fam][0] if link is None else link
    if not isinstance(ln, str) or ln.lower() not in LINKS[fam]:
        raise ModelSpecificationError(
            f"`link` is {link!r}, which is not available for family {fam!r}; expected one of {list(LINKS[fam])}."
        )
    return Family(fam, Link(ln.lower()))
