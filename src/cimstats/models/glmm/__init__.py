"""Generalised linear mixed models (binomial and Poisson) by maximum likelihood.

Formula -> design (shared with ``lmm``) -> Laplace or adaptive Gauss-Hermite
deviance over (theta, beta) -> :class:`GlmmResult`. Modules: ``family``
(families and links), ``laplace`` (numeric kernels), ``fit`` (the ``glmm``
verb), ``results``.
"""

from .fit import BoundaryVarianceWarning, SeparationWarning, glmm
from .gee import GeeResult, gee
from .results import GlmmResult

__all__ = ["glmm", "gee", "GlmmResult", "GeeResult", "SeparationWarning", "BoundaryVarianceWarning"]
