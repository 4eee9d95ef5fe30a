"""Measure stage: scale scores, reliability and ego-network measures.

Public names: ``score_scale`` (scale scoring), ``scales`` (instrument
definitions), ``reliability`` (Cronbach's alpha, omega, item statistics),
``networks`` (ego-network measures from name-generator data) and
``constructs`` (the construct table: every derived measure declared once and
computed once).
"""

from cimstats.measures import constructs, networks, reliability, scales
from cimstats.measures.scales import score_scale

__all__ = ["constructs", "networks", "reliability", "scales", "score_scale"]
