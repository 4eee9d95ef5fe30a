"""Power curve: simulated power against the number of clusters, one line per cluster size."""

from __future__ import annotations

import pandas as pd

from cimstats.errors import RenderError

from ._figure import COLOURS, Figure, new_figure, type_error

__all__ = ["power_curve"]

_PALETTE = [COLOURS[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "black")]
_NEEDED = ("n_clusters", "cluster_size", "estimate", "ci_lower", "ci_upper")


def power_curve(result, *, target: float = 0.8, title: str | None = None, level: float = 0.95) -> Figure:
    """Simulated power with its Monte Carlo interval, by number of clusters and cluster size.

    Parameters
    ----------
    result : PowerResult or pandas.DataFrame
        A result of :func:`cimstats.power`, or its ``tidy()`` table (columns
        n_clusters, cluster_size, estimate, ci_lower, ci_upper).
    target : float
        The power aimed at, drawn as a dashed line (default 0.8).
    title : str, optional
    level : float
        Level of the Monte Carlo intervals when ``result`` is a PowerResult.

    Returns
    -------
    Figure
        ``data`` is the tidy table that was drawn.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"n_clusters": [10, 20, 10, 20], "cluster_size": [5, 5, 10, 10],
    ...                   "estimate": [0.3, 0.6, 0.4, 0.75], "ci_lower": [0.2, 0.5, 0.3, 0.65],
    ...                   "ci_upper": [0.4, 0.7, 0.5, 0.85]})
    >>> fig = power_curve(t)
    >>> fig.kind, fig.alt_text.startswith("Simulated power")
    ('power', True)
    """
    if isinstance(result, pd.DataFrame):
        t = result
    elif hasattr(result, "tidy") and getattr(result, "kind", "") == "power":
        t = result.tidy(level=level)
    else:
        raise type_error("power_curve", "result", result,
                         "a PowerResult from cimstats.power() or its tidy() table")
    missing = [c for c in _NEEDED if c not in t.columns]
    if missing:
        raise RenderError(f"`result` lacks the column(s) {', '.join(missing)}; pass the PowerResult or its tidy() table.")
    data = t.loc[:, list(_NEEDED)].copy().sort_values(["cluster_size", "n_clusters"]).reset_index(drop=True)
    title = title or "Simulated power"
    sizes = sorted(data["cluster_size"].unique())
    best = data.loc[data["estimate"] >= target]
    reach = ("; no design reached the target" if best.empty else
             f"; the smallest design reaching {target:.0%} has {int(best['n_clusters'].min())} clusters")
    alt = (f"Simulated power by number of clusters for cluster sizes {', '.join(str(int(s)) for s in sizes)}, "
           f"with Monte Carlo intervals and a dashed line at {target:.0%}{reach}.")

    def draw():
        fig = new_figure(6.0, 3.8)
        ax = fig.add_subplot(1, 1, 1)
        for i, m in enumerate(sizes):
            d = data.loc[data["cluster_size"] == m]
            colour = _PALETTE[i % len(_PALETTE)]
            ax.errorbar(d["n_clusters"], d["estimate"],
                        yerr=[d["estimate"] - d["ci_lower"], d["ci_upper"] - d["estimate"]],
                        marker="o", capsize=3, label=f"{int(m)} per cluster", color=colour)
        ax.axhline(target, linestyle="--", linewidth=0.8, color="0.4")
        ax.set_ylim(0, 1)
        ax.set_xlabel("Number of clusters")
        ax.set_ylabel("Power")
        ax.set_title(title)
        ax.legend(frameon=False, fontsize=8)
        return fig

    return Figure(title=title, alt_text=alt, data=data, kind="power", _draw=draw)
