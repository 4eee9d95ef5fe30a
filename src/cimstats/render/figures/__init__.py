"""Figures of fitted results: forest plot, caterpillar plot, path diagram, invariance summary.

Rendering is the last stage: every function here takes a fitted result object
(or a tidy table) and never fits anything. Each returns a :class:`Figure` that
writes deterministic SVG (text kept as text, byte-identical for the same
input), PNG or PDF, carries an ``alt_text`` sentence for accessible HTML, and
shows itself in notebooks.

=====================  =====================================================
``forest_plot``        mechanism estimates (or any estimates) with CIs and verdicts
``caterpillar_plot``   conditional modes of random effects with intervals (LMM, GLMM)
``path_diagram``       SEM or mediation model with estimates on the arrows
``invariance_plot``    change in CFI/RMSEA and chi-square tests across invariance steps
``mechanism_figures``  all of the above for one ``test_mechanisms`` result
=====================  =====================================================
"""

from __future__ import annotations

from ._figure import Figure
from .caterpillar import caterpillar_plot, caterpillar_table
from .collection import mechanism_figures
from .forest import forest_plot, forest_table
from .invariance import invariance_plot, invariance_table
from .path import path_diagram, path_layout

__all__ = ["Figure", "forest_plot", "forest_table", "caterpillar_plot", "caterpillar_table", "path_diagram",
           "path_layout", "invariance_plot", "invariance_table",
           "mechanism_figures"]
