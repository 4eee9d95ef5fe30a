"""Linear mixed models: formula -> design (cross-products once) -> profiled
(RE)ML criterion over theta -> results.

Modules: ``core`` (penalised least-squares core, reusable for generalised
models), ``linalg`` (blocked sparse Cholesky), ``optimize`` (bounded optimiser,
numerical derivatives), ``fit`` (the ``lmm`` verb), ``inference``
(Satterthwaite df, likelihood-ratio tests, bootstrap), ``results``.
"""

from .core import CrossProducts, PLSCore
from .fit import lmm
from .inference import anova, bootstrap_varcomp, satterthwaite
from .results import LmmResult

__all__ = ["lmm", "anova", "LmmResult", "CrossProducts", "PLSCore",
           "satterthwaite", "bootstrap_varcomp"]
