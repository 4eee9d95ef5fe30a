"""Every figure of a mechanism analysis at once (for reports and pipelines)."""

from __future__ import annotations

from cimstats.errors import RenderError

from ._figure import Figure
from .caterpillar import caterpillar_plot, random_effect_variances
from .forest import forest_plot
from .invariance import invariance_plot
from .path import path_diagram

__all__ = ["mechanism_figures"]


def mechanism_figures(result) -> dict[str, Figure]:
    """The standard figures of a :func:`cimstats.test_mechanisms` result, in a stable order.

    Parameters
    ----------
    result : MechanismResult

    Returns
    -------
    dict of str to Figure
        ``"forest"``: the mechanism estimates; then, for each fitted model of
        the plan (in plan order), ``"caterpillar_<model_id>"`` for mixed
        models, ``"path_<model_id>"`` for mediation models and
        ``"invariance_<model_id>"`` for invariance sequences. Models that were
        not fitted have no figure (their reason is in ``result.models``); a
        mixed model whose every random-effect variance was estimated at zero
        (singular fit) has no caterpillar plot, as there is nothing to plot
        (:func:`random_effect_variances` says so for the fit).

    Raises
    ------
    RenderError
        ``result`` is not a mechanism result.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.render.figures import mechanism_figures
    >>> try:
    ...     mechanism_figures(pd.DataFrame())
    ... except Exception as e:
    ...     print(type(e).__name__)
    RenderError
    """
    if type(result).__name__ != "MechanismResult" or not hasattr(result, "fits"):
        raise RenderError(
            f"`result` is a {type(result).__name__}; mechanism_figures() takes the MechanismResult of "
            f"cimstats.test_mechanisms(), so pass that (or call forest_plot, caterpillar_plot, path_diagram or "
            f"invariance_plot on single results)."
        )
    out = {"forest": forest_plot(result)}
    for model_id, fit in result.fits.items():
        kind = type(fit).__name__
        if kind in ("LmmResult", "GlmmResult"):
            if bool(random_effect_variances(fit)["at_zero"].all()):
                continue
            fig = caterpillar_plot(fit, title=f"Random effects of model '{model_id}'"
                                   + (" (log-odds scale)" if getattr(fit, "link", None) == "logit" else ""))
            out[f"caterpillar_{model_id}"] = fig
        elif kind == "MediationResult":
            out[f"path_{model_id}"] = path_diagram(fit, title=f"Mediation model '{model_id}'")
        elif kind == "InvarianceResult":
            out[f"invariance_{model_id}"] = invariance_plot(fit)
    return out
