"""Measure stage: scale scores, reliability and ego-network measures.

Public names: ``score_scale`` (scale scoring), ``scales`` (instrument
definitions), ``reliability`` (Cronbach's alpha, omega, item statistics) and
``networks`` (ego-network measures from name-generator data).
"""

from cimstats.measures import networks, reliability, scales
from cimstats.measures.scales import score_scale

__all__ = ["networks", "reliability", "scales", "score_scale"]
