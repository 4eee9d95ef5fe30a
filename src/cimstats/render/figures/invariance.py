"""Measurement-invariance summary: change in CFI and RMSEA across the invariance sequence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cimstats._criteria import fit_change_holds
from cimstats.errors import RenderError
from cimstats.render.numbers import NumberFormat

from ._figure import COLOURS, Figure, new_figure, type_error

__all__ = ["invariance_plot", "invariance_table"]

_ACCEPTED = ("an InvarianceResult from cimstats.invariance(), or its table (DataFrame with model, cfi, rmsea, "
             "delta_cfi, delta_rmsea, chisq_diff, df_diff and p_diff columns)")
_NEEDED = ("model", "cfi", "rmsea", "delta_cfi", "delta_rmsea", "chisq_diff", "df_diff", "p_diff")


def invariance_table(result, *, cfi_cutoff: float = -0.01, rmsea_cutoff: float = 0.015,
                     alpha: float = 0.05) -> pd.DataFrame:
    """The steps an invariance plot draws, with the judgement of each step.

    Returns
    -------
    pandas.DataFrame
        model, cfi, rmsea, delta_cfi, delta_rmsea, chisq_diff, df_diff, p_diff,
        cfi_ok, rmsea_ok (change within the cut-off), chisq_ok (difference test
        not significant at ``alpha``), holds (by Chen's rule: the CFI change
        is within its cut-off, or a larger CFI drop is not supplemented by an
        RMSEA rise beyond its cut-off or an SRMR rise beyond Chen's; NaN for the
        configural model).
    """
    if type(result).__name__ == "InvarianceResult" and isinstance(getattr(result, "table", None), pd.DataFrame):
        t = result.table
    elif isinstance(result, pd.DataFrame):
        t = result
        missing = [c for c in _NEEDED if c not in t.columns]
        if missing:
            raise RenderError(
                f"`result` lacks the column(s) {', '.join(missing)}; pass the InvarianceResult or its full table "
                f"from cimstats.invariance()."
            )
    else:
        raise type_error("invariance_plot", "result", result, _ACCEPTED)
    if len(t) < 2:
        raise RenderError(f"`result` holds {len(t)} model(s); an invariance plot compares at least two steps "
                          f"(e.g. configural and metric), so fit the sequence with cimstats.invariance().")
    out = t.loc[:, list(_NEEDED)].copy().reset_index(drop=True)
    for c in _NEEDED[1:]:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    out["model"] = out["model"].astype(str)
    first = out.index == 0
    out["cfi_ok"] = np.where(first, np.nan, (out["delta_cfi"] >= cfi_cutoff).astype(float))
    out["rmsea_ok"] = np.where(first, np.nan, (out["delta_rmsea"] <= rmsea_cutoff).astype(float))
    out["chisq_ok"] = np.where(first | out["p_diff"].isna(), np.nan, (out["p_diff"] >= alpha).astype(float))
    srmr = pd.to_numeric(t["srmr"], errors="coerce").astype(float).reset_index(drop=True) if "srmr" in t.columns \
        else pd.Series(np.nan, index=out.index)
    d_srmr = srmr.diff()
    cuts = {"max_cfi_drop": -cfi_cutoff, "max_rmsea_rise": rmsea_cutoff}
    out["holds"] = [np.nan if i == 0 else float(fit_change_holds(r.model, r.delta_cfi, r.delta_rmsea, d_srmr[i], **cuts))
                    for i, r in enumerate(out.itertuples())]
    return out


def invariance_plot(result, *, cfi_cutoff: float = -0.01, rmsea_cutoff: float = 0.015, alpha: float = 0.05,
                    title=None, number_format=None) -> Figure:
    """Change in CFI and RMSEA across the invariance steps, against the usual cut-offs.

    Two panels share the steps on the x axis (metric, scalar, strict, each
    compared with the step before): the change in CFI with a dashed line at
    ``cfi_cutoff`` (default -0.01) and the change in RMSEA with a dashed line at
    ``rmsea_cutoff`` (default +0.015). Steps within both cut-offs are drawn as
    filled circles, others as open diamonds; under each step the chi-square
    difference test is written as "Δχ²(df) = value, p = ...".

    Parameters
    ----------
    result : InvarianceResult or pandas.DataFrame
        The result of :func:`cimstats.invariance` (or its ``table``).
    cfi_cutoff, rmsea_cutoff : float
        Largest acceptable drop in CFI (negative) and rise in RMSEA (Chen 2007).
    alpha : float
        Level at which a chi-square difference counts as significant (marked in the text).
    title : str, optional
    number_format : cimstats.render.NumberFormat, optional
        How p-values are written (default 3 decimals, "<0.001").

    Returns
    -------
    Figure
        ``data`` has one row per step (see :func:`invariance_table`).

    Raises
    ------
    RenderError
        ``result`` is not an invariance result or table, or has fewer than two steps.

    References
    ----------
    Chen FF (2007). Sensitivity of goodness of fit indexes to lack of
    measurement invariance. Structural Equation Modeling 14(3):464-504.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cimstats
    >>> from cimstats.render.figures import invariance_plot
    >>> rng = np.random.default_rng(3)
    >>> f = rng.normal(size=400)
    >>> d = pd.DataFrame({f"y{i}": 0.7 * f + rng.normal(scale=0.7, size=400) for i in range(1, 5)})
    >>> d["country"] = np.repeat(["EN", "NL"], 200)
    >>> inv = cimstats.invariance("ce =~ y1 + y2 + y3 + y4", d, group="country")
    >>> fig = invariance_plot(inv)
    >>> fig.data["model"].tolist()
    ['configural', 'metric', 'scalar', 'strict']
    >>> fig.alt_text.split(":")[0]
    'Measurement invariance across country'
    """
    rows = invariance_table(result, cfi_cutoff=cfi_cutoff, rmsea_cutoff=rmsea_cutoff, alpha=alpha)
    fmt = number_format or NumberFormat(decimals=3)
    group = getattr(result, "group", None)
    if title is None:
        title = "Measurement invariance" + (f" across {group}" if group else "")
    alt = _alt_text(rows, title, cfi_cutoff, rmsea_cutoff, fmt)
    data = rows.copy()
    data.attrs.update(cfi_cutoff=cfi_cutoff, rmsea_cutoff=rmsea_cutoff, alpha=alpha)

    def draw():
        return _draw(rows, title=title, cfi_cutoff=cfi_cutoff, rmsea_cutoff=rmsea_cutoff, alpha=alpha, fmt=fmt)

    return Figure(title=title, alt_text=alt, data=data, kind="invariance", _draw=draw)


def _signed(x: float, fmt) -> str:
    s = fmt.estimate(x)
    return s if s.startswith(fmt.minus) or x < 0 else "+" + s


def _chisq_text(r, fmt) -> str:
    if not np.isfinite(r.chisq_diff):
        return "no test"
    df = int(r.df_diff) if np.isfinite(r.df_diff) and float(r.df_diff).is_integer() else r.df_diff
    pv = fmt.p(r.p_diff)
    return f"Δχ²({df}) = {fmt.estimate(r.chisq_diff, 2)}, p {pv if pv[:1] in '<>≤≥' else '= ' + pv}"


def _alt_text(rows, title, cfi_cutoff, rmsea_cutoff, fmt) -> str:
    base = rows.iloc[0]
    parts = [f"{title}: the {base.model} model has CFI {fmt.estimate(base.cfi)} and RMSEA {fmt.estimate(base.rmsea)}"]
    for r in rows.iloc[1:].itertuples(index=False):
        verdict = "holds by Chen's rule" if r.holds == 1 else "fails by Chen's rule"
        parts.append(f"{r.model} changes CFI by {_signed(r.delta_cfi, fmt)} and RMSEA by "
                     f"{_signed(r.delta_rmsea, fmt)} ({verdict}; {_chisq_text(r, fmt)})")
    last = base.model
    for r in rows.iloc[1:].itertuples(index=False):
        if r.holds != 1:
            break
        last = r.model
    tail = (f"; cut-offs {_signed(cfi_cutoff, fmt)} for CFI, supplemented by {_signed(rmsea_cutoff, fmt)} for RMSEA "
            f"or Chen's SRMR cut-offs. By these cut-offs invariance holds up to the {last} model")
    return "; ".join(parts) + tail + "."


def _draw(rows, *, title, cfi_cutoff, rmsea_cutoff, alpha, fmt):
    steps = rows.iloc[1:].reset_index(drop=True)
    n = len(steps)
    fig = new_figure(max(5.5, 1.6 * n + 2.8), 3.6)
    axes = fig.subplots(1, 2)
    x = np.arange(n, dtype=float)
    names = [f"{m}\nvs {p}" for m, p in zip(steps["model"], rows["model"].iloc[:-1])]
    for ax, col, cut, label in ((axes[0], "delta_cfi", cfi_cutoff, "Change in CFI"),
                                (axes[1], "delta_rmsea", rmsea_cutoff, "Change in RMSEA")):
        vals = steps[col].to_numpy(dtype=float)
        ok = steps["cfi_ok" if col == "delta_cfi" else "rmsea_ok"].to_numpy() == 1
        ax.axhline(0.0, color=COLOURS["grey"], lw=0.6)
        ax.axhline(cut, color=COLOURS["vermillion"], lw=1.0, ls=(0, (4, 3)))
        ax.text(1.02, cut, f"cut-off\n{_signed(cut, fmt)}", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontsize=7.5, color=COLOURS["vermillion"])
        ax.plot(x, vals, color=COLOURS["grey"], lw=0.8, zorder=1)
        for xi, v, good in zip(x, vals, ok):
            if np.isfinite(v):
                ax.plot([xi], [v], marker="o" if good else "D", ms=7, color=COLOURS["blue"] if good else
                        COLOURS["vermillion"], mfc=COLOURS["blue"] if good else "white", mew=1.5, zorder=3)
                ax.annotate(_signed(v, fmt), (xi, v), textcoords="offset points", xytext=(0, 8), ha="center",
                            fontsize=7.5)
        finite = vals[np.isfinite(vals)]
        lo = min([0.0, cut] + list(finite))
        hi = max([0.0, cut] + list(finite))
        pad = 0.25 * (hi - lo if hi > lo else 0.01)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=8)
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_title(label, fontsize=9)
    # chi-square difference tests under the steps
    for xi, r in zip(x, steps.itertuples(index=False)):
        sig = np.isfinite(r.p_diff) and r.p_diff < alpha
        for ax in axes:
            ax.annotate(_chisq_text(r, fmt).replace(", p", "\np"), (xi, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, -34), textcoords="offset points", ha="center", va="top", fontsize=7,
                        color=COLOURS["vermillion"] if sig else COLOURS["black"],
                        fontweight="bold" if sig else "normal")
    base = rows.iloc[0]
    fig.suptitle(f"{title}\n{base.model}: CFI {fmt.estimate(base.cfi)}, RMSEA {fmt.estimate(base.rmsea)}",
                 x=0.02, ha="left", fontsize=9.5, fontweight="bold")
    fig.text(0.02, 0.005, f"Filled circle: change within the cut-off; open diamond: beyond it. "
             f"Bold red Δχ²: p < {alpha:g}.", fontsize=7, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
