"""Statistical models: linear mixed models (``lmm``, ``anova``) with lme4 formulas.

Other model families (generalised mixed models, GEE, SEM) add their names here.
"""

from .mixed import LmmResult, anova, lmm

__all__ = ["lmm", "anova", "LmmResult"]
