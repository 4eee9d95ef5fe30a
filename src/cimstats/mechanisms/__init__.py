"""Pre-specified tests of network mechanisms: the mechanism (hypothesis) table.

An analysis plan (YAML; :func:`default_plan` ships one) declares constructs,
models and hypotheses; :func:`test_mechanisms` fits every model once, fills
each hypothesis row with its estimate, interval, p-value, adjusted p-value and
n, and gives a verdict (supported, not supported, contrary, not testable) with
its reason by stated rules (:class:`VerdictRules`).

Examples
--------
>>> from cimstats.mechanisms import default_plan
>>> default_plan().hypotheses[["hypothesis_id", "mechanism", "template"]].head(2)
  hypothesis_id           mechanism template
0          NAV1  network_navigation      lmm
1          NAV2  network_navigation      lmm
"""

import warnings

from .evaluate import model_frame, p_adjust, test_mechanisms
from .plan import MechanismPlan, default_plan, read_mechanism_plan
from .pooled import test_mechanisms_imputed
from .results import TABLE_COLUMNS, MechanismResult
from .rules import VERDICTS, VerdictRules
from .shared import SharedEfficacyResult, shared_efficacy

__all__ = ["MechanismResult", "MechanismPlan", "TABLE_COLUMNS", "VERDICTS", "VerdictRules", "default_plan",
           "model_frame", "p_adjust", "read_mechanism_plan", "shared_efficacy", "SharedEfficacyResult",
           "test_mechanisms", "test_mechanisms_imputed"]

#: names of the previous release, kept for one release
_RENAMED = {"Plan": ("MechanismPlan", MechanismPlan), "read_plan": ("read_mechanism_plan", read_mechanism_plan)}


def __getattr__(name: str):
    if name in _RENAMED:
        new, obj = _RENAMED[name]
        warnings.warn(f"cimstats.mechanisms.{name} is now cimstats.mechanisms.{new}; the old name will be removed "
                      f"in the next release.", DeprecationWarning, stacklevel=2)
        return obj
    raise AttributeError(f"module 'cimstats.mechanisms' has no attribute {name!r}")
