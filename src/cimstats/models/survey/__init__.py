"""Complex survey designs: weights, strata, clusters and finite-population corrections.

:class:`SurveyDesign` describes how the sample was drawn; :func:`describe`
gives design-based means, proportions, totals and quantiles with
Taylor-linearised standard errors; :func:`glm` fits generalised linear models,
with design-based (sandwich) standard errors when a design is given. The
variance kernel is in :mod:`cimstats.models.survey.linearise`; the numbers
agree with R's ``survey`` package (tests/reference/survey.R).
"""

from .describe import SurveyDescription, describe
from .design import SurveyDesign, SurveyDesignError
from .glm import glm
from .results import GlmResult

__all__ = ["SurveyDesign", "SurveyDesignError", "describe", "SurveyDescription", "glm", "GlmResult"]
