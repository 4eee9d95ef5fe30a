"""The figures step: mechanism estimates, random effects, the mediation model and measurement invariance.

Reads only what the mechanisms step wrote: the saved mechanism result and
fitted models (read back with :func:`cimstats.load_result`) and the random
effects and invariance tables in ``models/``; draws with
:mod:`cimstats.render.figures`. Each figure is
written as every requested format plus ``<name>.alt.txt`` (its alt text);
``figures/index.csv`` lists file, title and alt text for the report, and
``figures/not_drawn.csv`` the figures left out with the reason the report
states (a caterpillar plot of a random effect whose variance was estimated at
zero: every conditional mode is 0, so there is nothing to plot).
"""

from __future__ import annotations

from ._figures_impl import build
from .context import StepContext

__all__ = ["build_figures"]


def build_figures(ctx: StepContext) -> dict:
    """Draw every figure of the run (the mechanisms step's saved results must exist)."""
    return build(ctx)
