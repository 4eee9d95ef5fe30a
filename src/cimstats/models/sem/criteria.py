"""When a level of measurement invariance holds by change in fit (Chen 2007).

The rule and its cut-offs live in :mod:`cimstats._criteria`, below every stage, so
that the invariance tables, the figures and the mechanism verdicts share one
statement of it; this module keeps the names where the SEM documentation points.

Examples
--------
>>> from cimstats.models.sem.criteria import fit_change_holds
>>> fit_change_holds("metric", -0.004, 0.002)
True
"""

from __future__ import annotations

from cimstats._criteria import CHEN_2007, fit_change_holds

__all__ = ["fit_change_holds", "CHEN_2007"]
