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

import importlib.util

from .context import StepContext, StepSkipped

__all__ = ["build_figures"]


def build_figures(ctx: StepContext) -> dict:
    if importlib.util.find_spec("cimstats.render.figures") is None:
        raise StepSkipped("cimstats.render.figures is not part of this installation, so no figures were drawn")
    from ._figures_impl import build

    return build(ctx)
