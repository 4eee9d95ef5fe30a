"""Questionnaire instruments declared as data, and scoring.

``list_instruments()`` shows what ships with cimstats; ``load_instrument()``
loads a shipped id or your own YAML file (validated, with coded errors);
``score_scale()`` scores item responses following the instrument's rules.

Examples
--------
>>> from cimstats import scales
>>> scales.load_instrument("mos_sss").score("tangible").transform
'0-100'
"""

from cimstats.measures.scales.instrument import (
    Instrument,
    Item,
    ScoreRule,
    list_instruments,
    load_instrument,
)
from cimstats.measures.scales.scoring import ScaleScores, score_items, score_scale

__all__ = ["Instrument", "Item", "ScoreRule", "ScaleScores", "list_instruments", "load_instrument",
           "score_items", "score_scale"]
