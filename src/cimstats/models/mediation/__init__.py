"""Mediation analysis for observed variables (single, parallel, serial, moderated, multilevel).

See :func:`cimstats.mediation`.
"""

from cimstats.models.mediation.fit import mediation
from cimstats.models.mediation.results import MediationResult

__all__ = ["mediation", "MediationResult"]
