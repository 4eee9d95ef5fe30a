"""Forest plot of estimates with confidence intervals (mechanism tests, model terms)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cimstats.errors import RenderError
from cimstats.render.numbers import NumberFormat

from ._figure import COLOURS, Figure, new_figure, type_error

__all__ = ["forest_plot", "forest_table"]

_MECH_LABEL = {"network_navigation": "Network navigation", "negotiation": "Negotiation within networks",
               "collective_efficacy": "Collective efficacy"}
_RATIO_SCALES = {"ratio", "odds_ratio", "odds ratio", "rate_ratio", "rate ratio", "risk_ratio", "risk ratio",
                 "hazard_ratio", "hazard ratio", "or", "rr", "hr", "irr"}
# verdict -> (marker, filled, colour)
_VERDICT_STYLE = {
    "supported": ("o", True, COLOURS["blue"]),
    "not supported": ("o", False, COLOURS["grey"]),
    "contrary": ("D", True, COLOURS["vermillion"]),
    "not testable": ("x", True, COLOURS["grey"]),
}
_DEFAULT_STYLE = ("s", True, COLOURS["black"])

_ACCEPTED = ("a MechanismResult from cimstats.test_mechanisms(), any fitted result with a tidy() table "
             "(lmm, glmm, gee, glm, sem, mediation, ...), a DataFrame with an estimate column, ci_lower and "
             "ci_upper columns and a label column (label, term or hypothesis_id), or a list or dict of these")


def _is_mechanism_result(obj) -> bool:
    return type(obj).__name__ == "MechanismResult" and isinstance(getattr(obj, "table", None), pd.DataFrame)


def _scale_note(row) -> str:
    """' (log-odds)' etc. for mechanism rows whose estimate is on a link scale."""
    if row.get("template") != "glmm" or "scale" in row:
        return ""
    model = str(row.get("model", ""))
    if "logit" in model:
        return " (log-odds)"
    if "log)" in model or ", log" in model:
        return " (log rate)"
    return " (link scale)"


def _one_table(obj, level: float):
    """The estimates table of one input (a mechanism result, a fitted result or a DataFrame), or None."""
    if _is_mechanism_result(obj):
        return obj.table
    if isinstance(obj, pd.DataFrame):
        return obj
    tidy = getattr(obj, "tidy", None)
    if callable(tidy):
        try:
            t = tidy(level=level)
        except TypeError:  # a tidy() without a level
            t = tidy()
        if isinstance(t, pd.DataFrame):
            return t
    return None


def _estimates_table(table, level: float, names=None):
    """(the table to draw, default grouping column) of any accepted input."""
    one = _one_table(table, level)
    if one is not None:
        if names is not None:
            raise RenderError("`names` names the models of a list of results, but `table` is a single table; "
                              "leave `names` out or pass a list of results.")
        return one, None
    if isinstance(table, dict):
        items = [(str(k), v) for k, v in table.items()]
        if names is not None:
            raise RenderError("`names` was given along with a dict of results; name the models either by the "
                              "dict's keys or by `names`, not both.")
    elif isinstance(table, (list, tuple)):
        if names is None:
            labels = [f"Model {i + 1}" for i in range(len(table))]
        else:
            labels = [str(n) for n in names]
            if len(labels) != len(table):
                raise RenderError(f"`names` has {len(labels)} entries but `table` holds {len(table)} results; "
                                  f"give one name per result.")
        items = list(zip(labels, table))
    else:
        raise type_error("forest_plot", "table", table, _ACCEPTED)
    if not items:
        raise RenderError("`table` is an empty list; pass at least one fitted result or estimates table.")
    frames = []
    for name, obj in items:
        t = _one_table(obj, level)
        if t is None:
            raise type_error("forest_plot", "table", obj, _ACCEPTED)
        t = t.copy()
        t["model"] = name
        frames.append(t)
    return pd.concat(frames, ignore_index=True), "model"


def forest_table(table, *, label=None, group=None, null=None, level: float = 0.95, names=None) -> pd.DataFrame:
    """The rows a forest plot draws, in drawing order (top to bottom).

    Parameters
    ----------
    table : MechanismResult, fitted result, DataFrame, or a list or dict of these
        See :func:`forest_plot`.
    label, group, null, level, names
        As in :func:`forest_plot`.

    Returns
    -------
    pandas.DataFrame
        One row per estimate: group, label, estimate, ci_lower, ci_upper,
        verdict, null (the no-effect value of the row's scale), plotted (bool:
        drawn as a point with an interval), note (why a row is not drawn).
    """
    t, default_group = _estimates_table(table, level, names)
    if "estimate" not in t.columns:
        raise RenderError(
            f"`table` has no 'estimate' column (columns: {', '.join(map(str, t.columns))}); "
            f"pass a table with estimate, ci_lower and ci_upper columns, such as a result's tidy()."
        )
    absent = [c for c in ("ci_lower", "ci_upper") if c not in t.columns]
    if absent:
        raise RenderError(
            f"`table` has no {' and no '.join(repr(c) for c in absent)} column (columns: "
            f"{', '.join(map(str, t.columns))}); pass a table with estimate, ci_lower and ci_upper columns, "
            f"such as a result's tidy()."
        )
    # labels
    if callable(label):
        labels = [str(label(r)) for r in t.to_dict("records")]
    elif label is not None:
        if label not in t.columns:
            raise RenderError(f"`label='{label}'` is not a column of `table`; available: {', '.join(map(str, t.columns))}.")
        labels = [str(v) for v in t[label]]
    elif "hypothesis_id" in t.columns and "estimand" in t.columns:
        labels = [f"{h}: {e}{_scale_note(r)}" for h, e, r in zip(t["hypothesis_id"], t["estimand"],
                                                               t.to_dict("records"))]
    else:
        col = next((c for c in ("label", "term", "hypothesis_id") if c in t.columns), None)
        if col is None:
            raise RenderError(
                "`table` has no label, term or hypothesis_id column to name its rows; "
                "add one or pass `label=` (a column name or a function of a row)."
            )
        labels = [str(v) for v in t[col]]
    # groups
    if group is None and default_group is not None:
        group = default_group
    if group is None and "mechanism" in t.columns:
        group = "mechanism"
    if group is not None and group is not False:
        if group not in t.columns:
            raise RenderError(f"`group='{group}'` is not a column of `table`; available: {', '.join(map(str, t.columns))}.")
        own = (getattr(table, "mechanism_labels", None) or {}) if group == "mechanism" else {}
        groups = [own.get(str(g)) or _MECH_LABEL.get(str(g), str(g)) if pd.notna(g) else "" for g in t[group]]
    else:
        groups = [""] * len(t)
    est = pd.to_numeric(t["estimate"], errors="coerce").to_numpy(dtype=float)
    lo = pd.to_numeric(t["ci_lower"], errors="coerce").to_numpy(dtype=float) if "ci_lower" in t else np.full(len(t), np.nan)
    hi = pd.to_numeric(t["ci_upper"], errors="coerce").to_numpy(dtype=float) if "ci_upper" in t else np.full(len(t), np.nan)
    verdict = [str(v) if pd.notna(v) else "" for v in t["verdict"]] if "verdict" in t.columns else [""] * len(t)
    # null value per row
    if null is not None:
        nulls = np.full(len(t), float(null))
    elif "scale" in t.columns:
        nulls = np.array([1.0 if str(s).strip().lower() in _RATIO_SCALES else 0.0 for s in t["scale"]])
    elif "exponentiated" in t.columns:
        nulls = np.where(t["exponentiated"].fillna(False).astype(bool), 1.0, 0.0)
    else:
        nulls = np.zeros(len(t))
    template = [str(v) for v in t["template"]] if "template" in t.columns else [""] * len(t)
    plotted, notes = [], []
    for e, a, b, v, tp in zip(est, lo, hi, verdict, template):
        if tp == "invariance":
            plotted.append(False)
            notes.append("judged by change in model fit")
        elif not np.isfinite(e):
            plotted.append(False)
            notes.append(v or "no estimate")
        elif not (np.isfinite(a) and np.isfinite(b)):
            plotted.append(False)
            notes.append("no interval")
        else:
            plotted.append(True)
            notes.append("")
    out = pd.DataFrame({"group": groups, "label": labels, "estimate": est, "ci_lower": lo, "ci_upper": hi,
                        "verdict": verdict, "null": nulls, "plotted": plotted, "note": notes})
    # keep the table's order, but bring rows of one group together (first appearance order)
    order = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    out["_g"] = out["group"].map(order)
    out = out.sort_values("_g", kind="stable").drop(columns="_g").reset_index(drop=True)
    return out


def forest_plot(table, *, label=None, group=None, null=None, log_scale=None, xlabel=None, title=None,
                level: float = 0.95, number_format=None, show_values: bool = True, width: float = 8.0,
                names=None) -> Figure:
    """Forest plot: one point and confidence interval per estimate, grouped, with the no-effect line.

    Parameters
    ----------
    table : MechanismResult, fitted result, pandas.DataFrame, or a list or dict of these
        A result of :func:`cimstats.test_mechanisms` (its ``table``: one row
        per hypothesis, grouped by mechanism, with verdicts); any fitted
        result (``lmm``, ``glmm``, ``gee``, ``glm``, ``sem``, ``mediation``...,
        drawn from its ``tidy(level=level)``); or any table with ``estimate``,
        ``ci_lower``, ``ci_upper`` and a label column (``label``, ``term`` or
        ``hypothesis_id``). Optional columns: ``verdict`` (marker style and
        text), ``scale`` ("ratio", "odds ratio", ... put the no-effect line at
        1), ``mechanism`` (groups). A list (or a dict of name to result) draws
        several models in one figure, one group of rows per model.
    label : str or callable, optional
        Column naming each row, or a function of a row (a dict). Default:
        "hypothesis_id: estimand" for mechanism tables, else the first of
        label, term, hypothesis_id.
    group : str or False, optional
        Column whose values group the rows under headings (default
        ``mechanism`` when present); ``False`` for no grouping.
    null : float, optional
        The no-effect value marked by a dashed line; default 1 when every row is
        on a ratio scale, else 0.
    log_scale : bool, optional
        Logarithmic x axis; default True when the null is 1 and every limit is positive.
    xlabel, title : str, optional
    level : float
        Confidence level of the intervals (used in the labels only).
    number_format : cimstats.render.NumberFormat, optional
        How the values column writes numbers (default 3 decimals).
    show_values : bool
        Write "estimate [lower, upper]" and the verdict to the right of each row.
    width : float
        Figure width in inches (the height follows the number of rows).
    names : sequence of str, optional
        Group headings for a list of results (default "Model 1", "Model 2", ...).

    Returns
    -------
    Figure
        ``data`` holds the drawn rows (see :func:`forest_table`).

    Raises
    ------
    RenderError
        ``table`` is neither a mechanism result nor a table with estimates, or a
        named column is absent.

    Notes
    -----
    Rows without an estimate or interval (hypotheses that were not testable,
    invariance hypotheses judged by change in fit) are listed with the reason
    instead of a point, so no hypothesis disappears from the figure.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.render.figures import forest_plot
    >>> t = pd.DataFrame({"term": ["diversity", "weak_tie_share"], "estimate": [0.105, -0.026],
    ...                   "ci_lower": [0.082, -0.139], "ci_upper": [0.129, 0.087],
    ...                   "verdict": ["supported", "not supported"]})
    >>> fig = forest_plot(t, title="Self-management")
    >>> "diversity" in fig.svg()
    True
    >>> fig.alt_text.startswith("Forest plot of 2 estimates")
    True

    Several fitted models, one group each:

    >>> import numpy as np, cimstats
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100), "z": rng.normal(size=100)})
    >>> d["y"] = 0.5 * d["x"] + rng.normal(size=20)[d["g"]] + rng.normal(size=100)
    >>> fig = forest_plot({"Mixed": cimstats.lmm("y ~ x + (1 | g)", d), "GLM": cimstats.glm("y ~ x + z", d)})
    >>> list(dict.fromkeys(fig.data["group"]))
    ['Mixed', 'GLM']
    """
    rows = forest_table(table, label=label, group=group, null=None if null is None else null, level=level,
                        names=names)
    fmt = number_format or NumberFormat(decimals=3)
    nulls = rows["null"].unique()
    null_value = float(null) if null is not None else (float(nulls[0]) if len(nulls) == 1 else 0.0)
    pl = rows[rows["plotted"]]
    if log_scale is None:
        log_scale = null_value == 1.0 and len(pl) > 0 and bool((pl["ci_lower"] > 0).all())
    if log_scale and len(pl) and not bool((pl["ci_lower"] > 0).all()):
        raise RenderError("`log_scale=True` needs every interval limit above zero; some are zero or negative, "
                          "so use `log_scale=False` or pass ratios rather than log-ratios.")
    pct = f"{level * 100:g}%"
    if title is None:
        title = "Mechanism estimates" if _is_mechanism_result(table) else "Estimates"
    if xlabel is None:
        xlabel = f"Estimate ({pct} confidence interval)"

    alt = _alt_text(rows, null_value, pct, fmt)
    data = rows.copy()
    data.attrs.update(null=null_value, log_scale=bool(log_scale), level=level)

    def draw():
        return _draw_forest(rows, null_value=null_value, log_scale=bool(log_scale), xlabel=xlabel, title=title,
                            fmt=fmt, show_values=show_values, width=width)

    return Figure(title=title, alt_text=alt, data=data, kind="forest", _draw=draw)


def _value_text(r, fmt) -> str:
    if r.plotted:
        txt = fmt.estimate_ci(r.estimate, r.ci_lower, r.ci_upper)
    elif np.isfinite(r.estimate) and r.note == "no interval":
        txt = f"{fmt.estimate(r.estimate)} (no interval)"
    else:
        txt = r.note
    return f"{txt}  {r.verdict}" if r.verdict and r.verdict not in txt else txt


def _alt_text(rows: pd.DataFrame, null_value: float, pct: str, fmt) -> str:
    n = len(rows)
    groups = [g for g in dict.fromkeys(rows["group"]) if g]
    parts = [f"Forest plot of {n} estimate{'s' if n != 1 else ''} with {pct} confidence intervals"]
    if groups:
        parts.append(f" grouped by {', '.join(groups)}")
    items = []
    for r in rows.itertuples(index=False):
        if r.plotted:
            items.append(f"{r.label} {fmt.estimate_ci(r.estimate, r.ci_lower, r.ci_upper)}"
                         + (f" ({r.verdict})" if r.verdict else ""))
        else:
            items.append(f"{r.label} ({r.note}{', ' + r.verdict if r.verdict and r.verdict != r.note else ''})")
    text = "".join(parts) + f"; the dashed line marks no effect ({fmt.estimate(null_value, 0) if float(null_value).is_integer() else null_value}): " + "; ".join(items) + "."
    counts = rows.loc[rows["verdict"] != "", "verdict"].value_counts()
    if len(counts):
        text += " Verdicts: " + ", ".join(f"{int(k)} {v}" for v, k in counts.items()) + "."
    return text


def _draw_forest(rows, *, null_value, log_scale, xlabel, title, fmt, show_values, width):
    from matplotlib.lines import Line2D

    # vertical positions: a heading line per group, one line per row
    ys, headings = [], []
    y = 0.0
    current = None
    for g in rows["group"]:
        if g != current:
            if g:
                if current is not None:
                    y += 0.4
                headings.append((y, g))
                y += 1.0
            current = g
        ys.append(y)
        y += 1.0
    n_lines = y
    height = 0.9 + 0.27 * n_lines
    fig = new_figure(width, height)
    left = 0.30
    right = 0.60 if show_values else 0.97
    ax = fig.add_axes((left, 0.9 / height * 0.75, right - left, 1 - 0.9 / height))
    ys = np.asarray(ys)
    seen = {}
    for r, yy in zip(rows.itertuples(index=False), ys):
        marker, filled, colour = _VERDICT_STYLE.get(r.verdict, _DEFAULT_STYLE)
        if r.plotted:
            ax.plot([r.ci_lower, r.ci_upper], [yy, yy], color=colour, lw=1.4, solid_capstyle="butt")
            ax.plot([r.estimate], [yy], marker=marker, ms=6, color=colour, mfc=colour if filled else "white",
                    mew=1.4, ls="none")
            if r.verdict:
                seen.setdefault(r.verdict, (marker, filled, colour))
    ax.axvline(null_value, color=COLOURS["black"], lw=0.8, ls=(0, (4, 3)), zorder=0)
    if log_scale:
        ax.set_xscale("log")
    # x range: include the null line and every interval, with a margin
    vals = np.concatenate([rows.loc[rows["plotted"], ["ci_lower", "ci_upper"]].to_numpy().ravel(), [null_value]])
    lo_x, hi_x = float(np.nanmin(vals)), float(np.nanmax(vals))
    if log_scale:
        span = math.log(hi_x / lo_x) if hi_x > lo_x else 1.0
        ax.set_xlim(lo_x * math.exp(-0.06 * span), hi_x * math.exp(0.06 * span))
    else:
        span = hi_x - lo_x if hi_x > lo_x else 1.0
        ax.set_xlim(lo_x - 0.06 * span, hi_x + 0.06 * span)
    ax.set_ylim(n_lines - 0.4, -0.6)
    ax.set_yticks(ys)
    ax.set_yticklabels(list(rows["label"]))
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(xlabel)
    for yy, g in headings:
        ax.text(-0.02, yy, g, transform=ax.get_yaxis_transform(), ha="right", va="center", fontweight="bold")
    for r, yy in zip(rows.itertuples(index=False), ys):
        if show_values:
            ax.text(1.03, yy, _value_text(r, fmt), transform=ax.get_yaxis_transform(), ha="left", va="center",
                    fontsize=8)
        elif not r.plotted:
            ax.text(0.01, yy, r.note, transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=8,
                    color=COLOURS["grey"], style="italic")
    if show_values:
        ax.text(1.03, -0.6, "Estimate [CI]  verdict" if (rows["verdict"] != "").any() else "Estimate [CI]",
                transform=ax.get_yaxis_transform(), ha="left", va="bottom", fontsize=8, fontweight="bold")
    ax.set_title(title, loc="left", x=-left / (right - left), fontweight="bold", pad=14)
    if seen:
        handles = [Line2D([], [], marker=m, ls="none", color=c, mfc=c if f else "white", mew=1.4, ms=6, label=v)
                   for v, (m, f, c) in seen.items()]
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(handles), frameon=False,
                  fontsize=8, borderaxespad=0.1, handletextpad=0.3, columnspacing=1.0)
    return fig
