"""When a level of measurement invariance holds by change in fit (Chen 2007).

Chen's cut-offs for samples above 300: for equal loadings, a drop in CFI of
0.010 or more, *supplemented by* a rise in RMSEA of 0.015 or more or a rise in
SRMR of 0.030 or more, indicates non-invariance; for equal intercepts or equal
residuals the SRMR cut-off is 0.010. The CFI change is the primary criterion:
a rise in RMSEA or SRMR alone does not reject a level. This module holds the
rule once, for the invariance tables, the figures and the mechanism verdicts.

References
----------
Chen FF (2007). Sensitivity of goodness of fit indexes to lack of measurement
invariance. Structural Equation Modeling 14(3):464-504.
"""

from __future__ import annotations

import math

__all__ = ["fit_change_holds", "CHEN_2007"]

#: Chen's (2007) cut-offs
CHEN_2007 = {"max_cfi_drop": 0.010, "max_rmsea_rise": 0.015, "max_srmr_rise_metric": 0.030,
             "max_srmr_rise_scalar": 0.010}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fit_change_holds(level: str, delta_cfi, delta_rmsea, delta_srmr=None, *,
                     max_cfi_drop: float = CHEN_2007["max_cfi_drop"],
                     max_rmsea_rise: float = CHEN_2007["max_rmsea_rise"],
                     max_srmr_rise_metric: float = CHEN_2007["max_srmr_rise_metric"],
                     max_srmr_rise_scalar: float = CHEN_2007["max_srmr_rise_scalar"]) -> bool:
    """Does a level of invariance hold by change in fit against the previous level?

    It fails only when CFI drops by more than ``max_cfi_drop`` and that drop is
    supplemented by an RMSEA rise above ``max_rmsea_rise`` or an SRMR rise above
    the level's SRMR cut-off (``max_srmr_rise_metric`` for equal loadings,
    ``max_srmr_rise_scalar`` for equal intercepts or residuals). A missing CFI or
    RMSEA change means it cannot be shown to hold (False).

    Examples
    --------
    >>> from cimstats.models.sem.criteria import fit_change_holds
    >>> fit_change_holds("metric", -0.005, 0.019, 0.004)   # RMSEA rises, CFI holds: invariance holds
    True
    >>> fit_change_holds("metric", -0.012, 0.019, 0.004)   # CFI drop supplemented by RMSEA: fails
    False
    >>> fit_change_holds("scalar", -0.012, 0.005, 0.012)   # CFI drop supplemented by SRMR: fails
    False
    >>> fit_change_holds("scalar", -0.012, 0.005, 0.004)   # CFI drop alone: holds
    True
    """
    if _missing(delta_cfi) or _missing(delta_rmsea):
        return False
    if delta_cfi >= -max_cfi_drop:
        return True
    srmr_cut = max_srmr_rise_metric if level == "metric" else max_srmr_rise_scalar
    supplemented = delta_rmsea > max_rmsea_rise or (not _missing(delta_srmr) and delta_srmr > srmr_cut)
    return not supplemented
