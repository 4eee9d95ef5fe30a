"""Caterpillar plot: conditional modes of random effects with intervals, ordered.

A random effect whose variance was estimated at zero (a singular fit) has
every conditional mode at zero and nothing to show: its panel is not drawn,
and the figure's note and alt text say that the variance was estimated at
zero. Whether a variance sits at zero is read from the fit's variance
components (see :func:`random_effect_variances` and :data:`BOUNDARY_TOL`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.errors import RenderError
from cimstats.render.numbers import NumberFormat

from ._figure import COLOURS, Figure, new_figure, type_error

__all__ = ["caterpillar_plot", "caterpillar_table", "random_effect_variances", "BOUNDARY_TOL"]

_COLUMNS = ("group", "term", "level", "condval", "condsd")
_ACCEPTED = ("an LmmResult from cimstats.lmm(), a GlmmResult from cimstats.glmm(), or a DataFrame with the "
             "columns of their ranef() (group, term, level, condval, condsd)")
#: at most this many levels get a text label on the axis
MAX_LABELLED = 80
#: a random-effect variance counts as estimated at zero when its standard deviation is below this
#: fraction of the residual standard deviation (linear mixed models) or below this value on the link
#: scale (generalised models, whose residual scale is fixed): the same relative tolerance that lme4's
#: ``isSingular()`` applies to the relative covariance factor by default (1e-4)
BOUNDARY_TOL = 1e-4
_VC_COLUMNS = ("group", "term1", "term2", "vcov", "sdcor")


def random_effect_variances(result=None, *, varcorr=None, tol: float = BOUNDARY_TOL) -> pd.DataFrame:
    """The random-effect variances of a fit and whether each was estimated at zero.

    Parameters
    ----------
    result : LmmResult or GlmmResult, optional
        A fitted mixed model; its ``varcorr()`` is used.
    varcorr : pandas.DataFrame, optional
        The model's ``varcorr()`` table (group, term1, term2, vcov, sdcor),
        e.g. as saved in ``models/<id>_varcorr.csv``; used when ``result``
        is not given.
    tol : float
        Relative tolerance (default :data:`BOUNDARY_TOL`): a variance is at
        zero when its SD divided by the residual SD (LMM; for a GLMM without a
        residual row, the SD itself on the link scale) is below ``tol``.

    Returns
    -------
    pandas.DataFrame
        group, term, variance, sd, relative_sd, at_zero (bool); one row per
        random term (covariances and the residual are left out).

    Examples
    --------
    >>> import pandas as pd
    >>> vc = pd.DataFrame({"group": ["practice_id", "Residual"], "term1": ["(Intercept)", ""],
    ...                    "term2": ["", ""], "vcov": [1e-12, 0.15], "sdcor": [1e-6, 0.39]})
    >>> random_effect_variances(varcorr=vc)[["group", "at_zero"]].values.tolist()
    [['practice_id', True]]
    """
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 < tol < 1):
        raise RenderError(f"`tol` is {tol!r}; expected a relative tolerance between 0 and 1, e.g. 1e-4.")
    if result is not None and not isinstance(result, pd.DataFrame):
        vc_method = getattr(result, "varcorr", None)
        if type(result).__name__ not in ("LmmResult", "GlmmResult") or not callable(vc_method):
            raise type_error("random_effect_variances", "result", result, _ACCEPTED)
        varcorr = vc_method()
    if varcorr is None:
        raise RenderError("`random_effect_variances()` needs a fitted mixed model or its `varcorr=` table "
                          "(group, term1, term2, vcov, sdcor); pass one of them.")
    missing = [c for c in _VC_COLUMNS if c not in varcorr.columns]
    if missing:
        raise RenderError(
            f"`varcorr` lacks the column(s) {', '.join(missing)} (found: {', '.join(map(str, varcorr.columns))}); "
            "pass the model's varcorr() table with group, term1, term2, vcov and sdcor."
        )
    vc = varcorr.loc[:, list(_VC_COLUMNS)].copy()
    term2 = vc["term2"].astype("string").fillna("").str.strip()
    group = vc["group"].astype(str)
    resid = vc.loc[group == "Residual", "sdcor"].to_numpy(dtype=float)
    scale = float(resid[0]) if len(resid) and np.isfinite(resid[0]) and resid[0] > 0 else 1.0
    keep = (term2 == "") & (group != "Residual")
    out = pd.DataFrame({"group": group[keep].to_numpy(), "term": vc.loc[keep, "term1"].astype(str).to_numpy(),
                        "variance": vc.loc[keep, "vcov"].to_numpy(dtype=float)})
    out["sd"] = np.sqrt(np.clip(out["variance"].to_numpy(dtype=float), 0.0, None))
    out["relative_sd"] = out["sd"] / scale
    out["at_zero"] = out["relative_sd"].to_numpy() < tol
    return out


def _zero_panels(variances: pd.DataFrame | None, panels) -> set:
    """The (group, term) panels whose variance was estimated at zero.

    A panel matches the variance rows of its group (or of the group's numbered
    blocks, ``practice_id.1``, when one factor has several random-effect blocks)
    and term; it is at zero only when every matching variance is.
    """
    if variances is None:
        return set()
    out = set()
    vg = variances["group"].astype(str)
    for g, t in panels:
        rows = variances[((vg == g) | vg.str.startswith(g + ".")) & (variances["term"].astype(str) == t)]
        if len(rows) and bool(rows["at_zero"].all()):
            out.add((g, t))
    return out


def _ranef(result) -> tuple[pd.DataFrame, str]:
    """The random-effects table and a phrase for the scale."""
    if isinstance(result, pd.DataFrame):
        missing = [c for c in _COLUMNS if c not in result.columns]
        if missing:
            raise RenderError(
                f"`result` lacks the column(s) {', '.join(missing)} (found: {', '.join(map(str, result.columns))}); "
                f"pass a fitted model or its ranef() table with group, term, level, condval and condsd."
            )
        return result, ""
    ranef = getattr(result, "ranef", None)
    if type(result).__name__ not in ("LmmResult", "GlmmResult") or not callable(ranef):
        raise type_error("caterpillar_plot", "result", result, _ACCEPTED)
    scale = ""
    link = getattr(result, "link", None)
    if link:
        scale = {"logit": "log-odds scale", "log": "log scale", "probit": "probit scale"}.get(link, f"{link} scale")
    return ranef(), scale


def caterpillar_table(result, *, group=None, term=None, level: float = 0.95) -> pd.DataFrame:
    """The levels a caterpillar plot draws: one row per level, ordered within each panel.

    Returns
    -------
    pandas.DataFrame
        group, term, level, condval, condsd, ci_lower, ci_upper, rank (1 =
        lowest conditional mode within its panel), excludes_zero (bool).
    """
    re, _ = _ranef(result)
    if not 0 < level < 1:
        raise RenderError(f"`level` is {level!r}; expected a confidence level between 0 and 1, e.g. 0.95.")
    re = re.loc[:, list(_COLUMNS)].copy()
    re["group"] = re["group"].astype(str)
    re["term"] = re["term"].astype(str)
    for name, value in (("group", group), ("term", term)):
        if value is None:
            continue
        wanted = [value] if isinstance(value, str) else list(value)
        have = list(dict.fromkeys(re[name]))
        bad = [w for w in wanted if w not in have]
        if bad:
            raise RenderError(
                f"`{name}=` names {', '.join(repr(b) for b in bad)}, which the model's random effects do not have; "
                f"available: {', '.join(repr(h) for h in have)}."
            )
        re = re[re[name].isin(wanted)]
    z = stats.norm.ppf(0.5 + level / 2)
    cv = re["condval"].to_numpy(dtype=float)
    sd = re["condsd"].to_numpy(dtype=float)
    re["ci_lower"] = cv - z * sd
    re["ci_upper"] = cv + z * sd
    re["excludes_zero"] = (re["ci_lower"] > 0) | (re["ci_upper"] < 0)
    panels = list(dict.fromkeys(zip(re["group"], re["term"])))
    parts = []
    for g, t in panels:
        part = re[(re["group"] == g) & (re["term"] == t)]
        order = np.lexsort((part["level"].astype(str).to_numpy(), part["condval"].to_numpy(dtype=float)))
        part = part.iloc[order].copy()
        part["rank"] = np.arange(1, len(part) + 1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def caterpillar_plot(result, *, group=None, term=None, level: float = 0.95, labels=None, title=None,
                     number_format=None, width=None, height=None, varcorr=None,
                     tol: float = BOUNDARY_TOL) -> Figure:
    """Caterpillar plot of random effects: each level's conditional mode and interval, ordered.

    One panel per grouping factor and random term (e.g. practices' random
    intercepts); levels are sorted by their conditional mode, with intervals
    ``condval +/- z * condsd`` and a line at zero (the population average).

    Parameters
    ----------
    result : LmmResult, GlmmResult or pandas.DataFrame
        A fitted :func:`cimstats.lmm` or :func:`cimstats.glmm` model, or its
        ``ranef()`` table (group, term, level, condval, condsd).
    group : str or list of str, optional
        Grouping factor(s) to draw (default all, one panel each).
    term : str or list of str, optional
        Random term(s) to draw, e.g. ``"(Intercept)"`` (default all).
    level : float
        Coverage of the intervals (default 0.95).
    labels : bool, optional
        Write the level names on the axis; default only when a panel has at
        most 80 levels (with thousands of levels only points and intervals are
        drawn, which stays readable and fast).
    title : str, optional
    number_format : cimstats.render.NumberFormat, optional
        How the alt text writes numbers (default 2 decimals, more when the largest
        conditional mode is below 0.1, so small modes do not read as 0.00).
    width, height : float, optional
        Figure size in inches (default from the number of panels and levels).
    varcorr : pandas.DataFrame, optional
        The model's ``varcorr()`` table, when ``result`` is a ranef table (a
        fitted model brings its own): it tells which variances were estimated
        at zero.
    tol : float
        Relative tolerance for a variance at zero (default
        :data:`BOUNDARY_TOL`; see :func:`random_effect_variances`).

    Returns
    -------
    Figure
        ``data`` holds one row per drawn level (see :func:`caterpillar_table`);
        ``data.attrs["zero_variance"]`` lists the (group, term) panels left
        out because their variance was estimated at zero.

    Raises
    ------
    RenderError
        ``result`` is not a mixed model or a ranef table; ``group``/``term``
        names a factor the model lacks; every variance to draw was estimated
        at zero (nothing to plot).

    Notes
    -----
    The intervals are conditional ("prediction") intervals of the random
    effects given the estimated variance components, as drawn by lme4's
    ``dotplot(ranef(m, condVar = TRUE))``; levels whose interval excludes zero
    are drawn in a darker colour.

    A random term whose variance was estimated at zero (singular fit) gets no
    panel: every level's conditional mode is zero, and a panel would only
    magnify rounding noise. The figure's note and alt text say which
    variances were estimated at zero. The decision uses the variance
    components (relative SD below ``tol``); for a ranef table given without
    ``varcorr``, a panel is left out only when all its modes and SDs are
    numerically zero.

    Examples
    --------
    >>> import warnings
    >>> import cimstats
    >>> from cimstats.render.figures import caterpillar_plot
    >>> p = cimstats.datasets.demo_study().patients
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     m = cimstats.lmm(p[p["wave"] == 0], "hba1c_mmol ~ age + (1 | practice_id)")
    >>> fig = caterpillar_plot(m)
    >>> fig.alt_text.split(":")[0]
    'Caterpillar plot of 64 practice_id random intercepts with 95% intervals, ordered by conditional mode'
    """
    rows = caterpillar_table(result, group=group, term=term, level=level)
    _, scale = _ranef(result)
    fmt = number_format
    pct = f"{level * 100:g}%"
    panels = list(dict.fromkeys(zip(rows["group"], rows["term"])))
    if not isinstance(result, pd.DataFrame):
        variances = random_effect_variances(result, tol=tol)
    elif varcorr is not None:
        variances = random_effect_variances(varcorr=varcorr, tol=tol)
    else:
        variances = None
    if variances is not None:
        zero = _zero_panels(variances, panels)
    else:  # no variance components: only panels that are numerically all zero
        zero = {(g, t) for g, t in panels if _is_zero(rows[(rows["group"] == g) & (rows["term"] == t)])}
    left_out = [(g, t, int(((rows["group"] == g) & (rows["term"] == t)).sum())) for g, t in panels if (g, t) in zero]
    panels = [pt for pt in panels if pt not in zero]
    zero_note = _zero_note(left_out)
    if not panels:
        raise RenderError(
            f"Nothing to plot: {zero_note[0].lower() + zero_note[1:]} Report the zero variance in the text "
            "instead of a caterpillar plot, or pass `group=`/`term=` naming a random effect with a non-zero variance."
        )
    rows = rows[[pt in set(panels) for pt in zip(rows["group"], rows["term"])]].reset_index(drop=True)
    if title is None:
        title = "Random effects" + (f" ({scale})" if scale else "")
    if fmt is None:  # 2 decimals, more when the modes are small, so the alt text never says "from 0.00 to 0.00"
        top = float(np.nanmax(np.abs(rows["condval"].to_numpy(dtype=float)), initial=0.0))
        fmt = NumberFormat(decimals=2 if not 0 < top < 0.1 else min(6, 1 - math.floor(math.log10(top))))
    alt = _alt_text(rows, panels, pct, fmt, scale)
    if zero_note:
        alt = alt[:-1] + ". " + zero_note
    data = rows.copy()
    data.attrs.update(level=level, scale=scale, zero_variance=[(g, t) for g, t, _ in left_out])

    def draw():
        return _draw(rows, panels, title=title, pct=pct, labels=labels, width=width, height=height,
                     note=zero_note)

    return Figure(title=title, alt_text=alt, data=data, kind="caterpillar", _draw=draw)


def _zero_note(left_out) -> str:
    """The sentence that names the random effects whose variance was estimated at zero ('' when none)."""
    if not left_out:
        return ""
    what = [f"the {g} {_term_phrase(t, n)}" for g, t, n in left_out]
    listed = what[0] if len(what) == 1 else ", ".join(what[:-1]) + " and " + what[-1]
    verb = "was" if len(what) == 1 else "were"
    noun = "panel is" if len(what) == 1 else "panels are"
    return (f"The variance{'s' if len(what) > 1 else ''} of {listed} {verb} estimated at zero (singular fit), "
            f"so every level's conditional mode is 0 and its {noun} not drawn.")


def _term_phrase(term: str, n: int) -> str:
    s = "s" if n != 1 else ""
    return f"random intercept{s}" if term == "(Intercept)" else f"random slope{s} of {term}"


def _is_zero(p: pd.DataFrame) -> bool:
    """A panel whose variance was estimated as zero: every mode and SD is (numerically) 0."""
    cv = p["condval"].to_numpy(dtype=float)
    sd = p["condsd"].to_numpy(dtype=float)
    return bool(np.all(np.abs(cv) < 1e-8) and np.all(np.nan_to_num(sd) < 1e-6))


def _alt_text(rows, panels, pct, fmt, scale) -> str:
    parts = []
    for g, t in panels:
        p = rows[(rows["group"] == g) & (rows["term"] == t)]
        n = len(p)
        k = int(p["excludes_zero"].sum())
        what = f"{n:,} {g} {_term_phrase(t, n)}"
        detail = (f"from {fmt.estimate(p['condval'].iloc[0])} ({p['level'].iloc[0]}) to "
                  f"{fmt.estimate(p['condval'].iloc[-1])} ({p['level'].iloc[-1]}), {k:,} of {n:,} with an "
                  f"interval that excludes zero")
        parts.append((what, detail))
    if len(panels) == 1:
        text = (f"Caterpillar plot of {parts[0][0]} with {pct} intervals, ordered by conditional mode: "
                f"{parts[0][1]}")
    else:
        text = (f"Caterpillar plot of random effects with {pct} intervals in {len(panels)} panels, each ordered "
                f"by conditional mode: " + "; ".join(f"{w} {d}" for w, d in parts))
    if scale:
        text += f" (on the {scale})"
    return text + "."


def _draw(rows, panels, *, title, pct, labels, width, height, note=""):
    from matplotlib.collections import LineCollection

    n_max = max(int(((rows["group"] == g) & (rows["term"] == t)).sum()) for g, t in panels)
    show_labels = labels if labels is not None else n_max <= MAX_LABELLED
    if height is None:
        height = min(max(2.2, 0.6 + (0.16 * n_max if show_labels else 4.0)), 14.0)
    if width is None:
        width = min(3.2 * len(panels) + 0.6, 12.0)
    fig = new_figure(width, height)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (g, t) in zip(axes, panels):
        p = rows[(rows["group"] == g) & (rows["term"] == t)]
        n = len(p)
        y = np.arange(n, dtype=float)
        lo, hi, cv = (p[c].to_numpy(dtype=float) for c in ("ci_lower", "ci_upper", "condval"))
        ex = p["excludes_zero"].to_numpy()
        colours = np.where(ex, COLOURS["blue"], COLOURS["sky"])
        segs = np.stack([np.column_stack([lo, y]), np.column_stack([hi, y])], axis=1)
        lw = 1.0 if n <= 200 else max(0.15, 60.0 / n)
        ax.add_collection(LineCollection(segs, colors=list(colours), linewidths=lw, rasterized=n > 2000))
        ms = 3.5 if n <= 200 else max(0.6, 9.0 / math.sqrt(n))
        ax.scatter(cv, y, s=ms ** 2, c=list(np.where(ex, COLOURS["blue"], COLOURS["black"])), zorder=3,
                   linewidths=0, rasterized=n > 2000)
        ax.axvline(0.0, color=COLOURS["vermillion"], lw=0.8, ls=(0, (4, 3)))
        finite = np.isfinite(lo) & np.isfinite(hi)
        if finite.any():
            a, b = float(min(lo[finite].min(), 0.0)), float(max(hi[finite].max(), 0.0))
            pad = 0.05 * (b - a if b > a else 1.0)
            ax.set_xlim(a - pad, b + pad)
        ax.set_ylim(-1, n)
        if show_labels:
            ax.set_yticks(y)
            ax.set_yticklabels([str(v) for v in p["level"]], fontsize=7 if n > 30 else 8)
            ax.tick_params(axis="y", length=0)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{n:,} levels, ordered")
        ax.set_title(f"{g}: {t}", fontsize=9)
        ax.set_xlabel(f"Conditional mode ({pct} interval)")
    fig.suptitle(title, x=0.02, ha="left", fontweight="bold", fontsize=10)
    if note:
        import textwrap

        text = "\n".join(textwrap.wrap("Note. " + note, width=max(40, int(width * 14))))
        fig.text(0.02, 0.0, text, ha="left", va="top", fontsize=7.5, color=COLOURS["black"])
    fig.tight_layout()
    return fig
