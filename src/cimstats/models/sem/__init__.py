"""Structural equation models built around one parameter table (as lavaan).

Public names: :func:`sem`, :func:`invariance`, :func:`longitudinal_invariance`,
:func:`longitudinal_syntax`, :class:`InvarianceResult`, :class:`SEMResult`,
:func:`parse_model`, :func:`bootstrap`, :class:`TwoLevelResult` (``sem(..., cluster=)`` with
``level:`` blocks).
"""

from __future__ import annotations

# Imported eagerly so that ``invariance`` names the verb, not its module of the same name.
from cimstats.models.sem.bootstrap import BootstrapResult, bootstrap
from cimstats.models.sem.fit import sem
from cimstats.models.sem.invariance import InvarianceResult, invariance
from cimstats.models.sem.longitudinal import longitudinal_invariance, longitudinal_syntax
from cimstats.models.sem.results import SEMResult
from cimstats.models.sem.syntax import parse_model
from cimstats.models.sem.twolevel_results import TwoLevelResult

__all__ = ["BootstrapResult", "InvarianceResult", "SEMResult", "TwoLevelResult", "bootstrap", "invariance", "longitudinal_invariance",
           "longitudinal_syntax", "parse_model", "sem"]
