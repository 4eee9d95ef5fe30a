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
``power_curve``        simulated power by number of clusters and cluster size
=====================  =====================================================

Examples
--------
>>> import tempfile, pathlib
>>> import pandas as pd
>>> from cimstats.render.figures import forest_plot
>>> t = pd.DataFrame({"term": ["diversity", "weak_tie_share"], "estimate": [0.105, -0.026],
...                   "ci_lower": [0.082, -0.139], "ci_upper": [0.129, 0.087]})
>>> fig = forest_plot(t, title="Network navigation")
>>> with tempfile.TemporaryDirectory() as d:
...     paths = [fig.save(pathlib.Path(d) / f"forest.{ext}") for ext in ("svg", "png", "pdf")]
...     [p.suffix for p in paths]
['.svg', '.png', '.pdf']
>>> '<img' not in fig.html() and fig.html().startswith("<figure")
True
"""

from __future__ import annotations

from ._figure import Figure
from .caterpillar import caterpillar_plot, caterpillar_table, random_effect_variances
from .collection import mechanism_figures
from .forest import forest_plot, forest_table
from .invariance import invariance_plot, invariance_table
from .path import path_diagram, path_layout
from .power import power_curve

__all__ = ["Figure", "forest_plot", "forest_table", "caterpillar_plot", "caterpillar_table", "random_effect_variances",
           "path_diagram",
           "path_layout", "invariance_plot", "invariance_table",
           "mechanism_figures", "power_curve"]
