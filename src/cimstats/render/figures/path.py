"""Path diagrams of fitted structural equation and mediation models.

The diagram is built in two steps that can be inspected separately:
:func:`path_layout` turns a fitted result into a node table (variables with
shapes and positions) and an edge table (one row per drawn parameter with its
estimate text), using a deterministic layered layout; the drawing step only
reads those two tables.

Layout: the regressions (``~``) form layers from left to right, each variable
one layer beyond the furthest of its predictors (exogenous variables left,
mediators in the middle, outcomes right). Indicators of a latent variable sit
beside it: to the left of factors in the first layer, to the right of
factors in the last layer, above or below factors in between.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from cimstats.errors import RenderError
from cimstats.render.numbers import NumberFormat

from ._figure import COLOURS, Figure, new_figure, type_error

__all__ = ["path_diagram", "path_layout", "stars"]

_ACCEPTED = ("an SEMResult from cimstats.sem(), a MediationResult from cimstats.mediation(), or a parameter "
             "table (DataFrame with lhs, op, rhs and estimate columns)")

# geometry, in inches (the drawing maps one unit to one inch)
_H_OBS, _H_LAT = 0.42, 0.62
_DX = 2.9            # distance between layers
_SIDE = 1.9          # distance from a factor to its indicators beside it (centre to centre, at least)
_SIDE_ARROW = 0.9    # shortest arrow between a factor and an indicator beside it (room for its label)
_ABOVE = 1.25        # distance from a factor to its indicators above/below it
_GAP = 0.22          # gap between stacked indicators
_BLOCK_GAP = 0.55    # gap between structural blocks in one layer
_CHAR = 0.078        # approximate width of one character at 9 pt


def stars(p) -> str:
    """Significance stars: * p < 0.05, ** p < 0.01, *** p < 0.001 ('' when p is missing)."""
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _side_distance(factor: str, indicators) -> float:
    """Centre-to-centre distance from a factor to the indicators beside it: long names move them out."""
    edge = _node_size(factor, True)[0] / 2 + max(_node_size(i, False)[0] for i in indicators) / 2
    return max(_SIDE, edge + _SIDE_ARROW)


def _node_size(name: str, latent: bool) -> tuple[float, float]:
    w = 0.3 + _CHAR * len(name)
    return (max(0.95, w + 0.3), _H_LAT) if latent else (max(0.7, w), _H_OBS)


def _label(est, p, lo, hi, fixed, fmt, intervals) -> str:
    txt = fmt.estimate(est)
    if not fixed:
        txt += stars(p)
        if intervals and np.isfinite(lo) and np.isfinite(hi):
            txt += "\n" + fmt.ci(lo, hi)
    return txt


# ============================================================================ SEM
def _sem_table(result, standardized: bool, group):
    if isinstance(result, pd.DataFrame):
        t = result
        need = [c for c in ("lhs", "op", "rhs", "estimate") if c not in t.columns]
        if need:
            raise RenderError(
                f"`result` is a table without the column(s) {', '.join(need)}; pass a fitted model or its tidy() "
                f"parameter table (lhs, op, rhs, estimate, and optionally group, p_value, ci_lower, ci_upper, std_all)."
            )
        t = t.copy()
        if standardized:
            if "std_all" not in t.columns:
                raise RenderError("`standardized=True` needs a std_all column in the parameter table; pass the "
                                  "fitted model or its tidy(), which has one.")
            t["estimate"] = t["std_all"]
            t["ci_lower"] = np.nan
            t["ci_upper"] = np.nan
        labels = {}
    else:
        t = result.tidy()
        if standardized:
            s = result.standardized_solution("std.all")
            t = t.drop(columns=["estimate", "std_error", "p_value", "ci_lower", "ci_upper"]).reset_index(drop=True)
            s = s.reset_index(drop=True)
            for c in ("estimate", "std_error", "p_value", "ci_lower", "ci_upper"):
                t[c] = s[c].to_numpy()
        labels = {i + 1: str(g) for i, g in enumerate(getattr(result.spec, "group_labels", ()) or ())}
    for c in ("group", "p_value", "ci_lower", "ci_upper", "std_error"):
        if c not in t.columns:
            t[c] = 1 if c == "group" else np.nan
    groups = [g for g in dict.fromkeys(t["group"]) if g != 0]
    chosen_label = ""
    if group is None:
        g = groups[0] if groups else 1
    else:
        by_label = {v: k for k, v in labels.items()}
        if group in groups:
            g = group
        elif str(group) in by_label:
            g = by_label[str(group)]
        else:
            avail = [labels.get(x, str(x)) for x in groups]
            raise RenderError(f"`group={group!r}` is not a group of the model; available: {', '.join(map(str, avail))}.")
    if len(groups) > 1:
        chosen_label = labels.get(g, str(g))
    t = t[(t["group"] == g) | (t["group"] == 0)]
    return t.reset_index(drop=True), chosen_label, len(groups)


def _sem_graph(t: pd.DataFrame, fmt, intervals: bool, residuals: bool, covariances: bool):
    meas = t[t["op"] == "=~"]
    latents = list(dict.fromkeys(meas["lhs"]))
    regs = t[t["op"] == "~"]
    covs = t[(t["op"] == "~~") & (t["lhs"] != t["rhs"])]
    vars_ = t[(t["op"] == "~~") & (t["lhs"] == t["rhs"])]
    order = []
    for r in t.itertuples(index=False):
        if r.op in ("=~", "~", "~~"):
            for v in ((r.lhs, r.rhs) if r.op != "~" else (r.rhs, r.lhs)):
                if v not in order:
                    order.append(v)
    structural = [v for v in order if v in latents or v in set(regs["lhs"]) | set(regs["rhs"])]
    indicators = {f: [i for i in meas.loc[meas["lhs"] == f, "rhs"] if i not in structural] for f in latents}
    placed_ind = {i for v in indicators.values() for i in v}
    others = [v for v in order if v not in structural and v not in placed_ind]
    structural += others  # e.g. observed variables that only covary
    preds = {v: list(regs.loc[regs["lhs"] == v, "rhs"]) for v in structural}
    # higher-order factors: a factor measured by factors sits one layer before them
    for f in latents:
        for i in meas.loc[meas["lhs"] == f, "rhs"]:
            if i in structural:
                preds.setdefault(i, []).append(f)
    layer = {v: 0 for v in structural}
    for _ in range(len(structural) + 1):
        changed = False
        for v in structural:
            new = max([layer[p] + 1 for p in preds.get(v, []) if p in layer] or [0])
            new = min(new, len(structural))
            if new != layer[v]:
                layer[v], changed = new, True
        if not changed:
            break
    n_layers = max(layer.values()) + 1 if layer else 1

    nodes = []
    def add(name, kind, role, x, y, side):
        w, h = _node_size(name, kind == "latent")
        nodes.append(dict(name=name, shape="ellipse" if kind == "latent" else "rect", kind=kind, role=role,
                          x=x, y=y, width=w, height=h, side=side))

    # order nodes within a layer by the mean position of their predictors (fewer crossings)
    pos_y: dict[str, float] = {}
    prev_x, prev_right = 0.0, 0.0
    for L in range(n_layers):
        members = [v for v in structural if layer[v] == L]
        if L > 0:
            def bary(v):
                ys = [pos_y[p] for p in preds.get(v, []) if p in pos_y]
                return -float(np.mean(ys)) if ys else 0.0
            members.sort(key=lambda v: (bary(v), structural.index(v)))
        placement = "left" if (L == 0 and n_layers > 1) or n_layers == 1 else "right" if L == n_layers - 1 else None
        blocks = []
        for k, v in enumerate(members):
            inds = indicators.get(v, [])
            side = placement or ("above" if k % 2 == 0 else "below")
            if not inds:
                hgt = _node_size(v, v in latents)[1]
            elif side in ("left", "right"):
                hgt = max(_node_size(v, True)[1], len(inds) * (_H_OBS + _GAP) - _GAP)
            else:
                hgt = _H_LAT / 2 + _ABOVE + _H_OBS / 2
            blocks.append((v, inds, side, hgt))
        total = sum(b[3] for b in blocks) + _BLOCK_GAP * max(len(blocks) - 1, 0)
        top = total / 2
        # horizontal reach of this layer's blocks, so that neighbouring layers never overlap
        left_reach = right_reach = 0.0
        for v, inds, side, hgt in blocks:
            wv = _node_size(v, v in latents)[0] / 2
            reach_l = reach_r = wv
            if inds and side == "left":
                reach_l = _side_distance(v, inds) + max(_node_size(i, False)[0] for i in inds) / 2
            elif inds and side == "right":
                reach_r = _side_distance(v, inds) + max(_node_size(i, False)[0] for i in inds) / 2
            elif inds:
                row = sum(_node_size(i, False)[0] for i in inds) + 0.15 * (len(inds) - 1)
                reach_l = reach_r = max(wv, row / 2)
            left_reach, right_reach = max(left_reach, reach_l), max(right_reach, reach_r)
        x = 0.0 if L == 0 else max(prev_x + _DX, prev_x + prev_right + left_reach + 1.1)
        prev_x, prev_right = x, right_reach
        for v, inds, side, hgt in blocks:
            if inds and side == "above":
                yv = top - _H_OBS / 2 - _ABOVE
            elif inds and side == "below":
                yv = top - _H_LAT / 2
            else:
                yv = top - hgt / 2
            pos_y[v] = yv
            kind = "latent" if v in latents else "observed"
            role = "exogenous" if not preds.get(v) else ("outcome" if L == n_layers - 1 else "mediator")
            add(v, kind, role, x, yv, side if not inds else {"left": "down", "right": "down",
                                                               "above": "down", "below": "up"}[side])
            if inds:
                if side in ("left", "right"):
                    xi = x + (-1 if side == "left" else 1) * _side_distance(v, inds)
                    span = len(inds) * (_H_OBS + _GAP) - _GAP
                    for j, ind in enumerate(inds):
                        add(ind, "observed", "indicator", xi, yv + span / 2 - _H_OBS / 2 - j * (_H_OBS + _GAP), side)
                else:
                    widths = [_node_size(i, False)[0] for i in inds]
                    span = sum(widths) + 0.15 * (len(inds) - 1)
                    xi = x - span / 2
                    yi = yv + _ABOVE if side == "above" else yv - _ABOVE
                    for ind, wdt in zip(inds, widths):
                        add(ind, "observed", "indicator", xi + wdt / 2, yi, "up" if side == "above" else "down")
                        xi += wdt + 0.15
            top -= hgt + _BLOCK_GAP
    nodes = pd.DataFrame(nodes)
    if not len(nodes):
        return nodes, pd.DataFrame()

    edges = []
    def edge(r, source, target, kind):
        se = r.std_error
        fixed = bool((pd.notna(se) and se == 0) or (pd.isna(se) and pd.isna(r.p_value)))
        edges.append(dict(source=source, target=target, kind=kind, op=r.op, estimate=float(r.estimate),
                          p_value=float(r.p_value) if pd.notna(r.p_value) else np.nan,
                          ci_lower=float(r.ci_lower) if pd.notna(r.ci_lower) else np.nan,
                          ci_upper=float(r.ci_upper) if pd.notna(r.ci_upper) else np.nan, fixed=bool(fixed),
                          text=_label(r.estimate, r.p_value, r.ci_lower, r.ci_upper, fixed, fmt, intervals)))

    for r in meas.itertuples(index=False):
        edge(r, r.lhs, r.rhs, "loading")
    for r in regs.itertuples(index=False):
        edge(r, r.rhs, r.lhs, "regression")
    if covariances:
        for r in covs.itertuples(index=False):
            edge(r, r.lhs, r.rhs, "covariance")
    if residuals:
        for r in vars_.itertuples(index=False):
            edge(r, r.lhs, r.lhs, "variance")
    return nodes, pd.DataFrame(edges)


# ============================================================================ mediation
_MED_LABEL = re.compile(r"^(?P<kind>a|b|c'|c|d)(?P<idx>\d*)(?P<mod>_xw|_mw)?(?:_(?P<level>within|between))?$")


def _mediation_graph(result, fmt, intervals: bool):
    spec = result.spec
    x, y, meds, w = spec.x, spec.y, list(spec.mediators), spec.moderator
    tidy = result.tidy()
    paths = tidy[tidy["effect"] == "path"]
    nodes = []

    def add(name, role, px, py, side):
        wdt, h = _node_size(name, False)
        nodes.append(dict(name=name, shape="rect", kind="observed", role=role, x=px, y=py, width=wdt, height=h,
                          side=side))

    span = 2 * _DX
    add(x, "exposure", 0.0, 0.0, "down")
    add(y, "outcome", span, 0.0, "down")
    k = len(meds)
    for j, m in enumerate(meds):
        if spec.serial and k > 1:
            add(m, "mediator", span * (j + 1) / (k + 1), 1.5, "up")
        else:
            sign = 1 if j % 2 == 0 else -1
            add(m, "mediator", span / 2, sign * 1.5 * (1 + j // 2), "up" if sign > 0 else "down")
    if w is not None:
        add(w, "moderator", 0.0 if "a" in spec.moderated_paths else span,
            (max(n["y"] for n in nodes) + 1.3) if k else 1.5, "up")
    mediator_index = lambda idx: meds[(int(idx) - 1) if idx else 0]  # noqa: E731
    groups: dict[tuple, list] = {}
    for r in paths.itertuples(index=False):
        mt = _MED_LABEL.match(str(r.term))
        if mt is None:
            continue
        kind, idx, mod, level = mt["kind"], mt["idx"], mt["mod"], mt["level"] or ""
        if kind == "c" and not mod:
            continue  # total effect: reported in the note, not an arrow
        if kind == "a":
            src, tgt = x, mediator_index(idx)
        elif kind == "b":
            src, tgt = mediator_index(idx), y
        elif kind == "c'":
            src, tgt = x, y
        else:  # d{j}{i}: mediator i -> mediator j
            src, tgt = meds[int(idx[1]) - 1], meds[int(idx[0]) - 1]
        key = ("moderation", w, f"{src}->{tgt}") if mod else ("regression", src, tgt)
        groups.setdefault(key, []).append((level, r))
    edges = []
    for (kind, src, tgt), items in groups.items():
        lines = []
        for level, r in items:
            txt = _label(r.estimate, r.p_value, r.ci_lower, r.ci_upper, False, fmt, intervals)
            lines.append(f"{level}: {txt}" if level else txt)
        r0 = items[0][1]
        edges.append(dict(source=src, target=tgt, kind=kind, op="~", term=";".join(str(i[1].term) for i in items),
                          estimate=float(r0.estimate), p_value=float(r0.p_value),
                          ci_lower=float(r0.ci_lower), ci_upper=float(r0.ci_upper), fixed=False,
                          text="\n".join(lines)))
    from dataclasses import replace

    pct = f"{result.level * 100:g}%"
    notes = [f"Effects with {pct} bootstrap intervals ({result.ci}, {result.n_boot:,} resamples); "
             f"stars on the arrows come from each coefficient's test:"]
    nfmt = replace(fmt, decimals=max(fmt.decimals, 3))  # indirect effects are products: often small
    for r in tidy[tidy["effect"] != "path"].itertuples(index=False):
        notes.append(f"{r.term}: {nfmt.estimate(r.estimate)} {nfmt.ci(r.ci_lower, r.ci_upper)}")
    if spec.covariates:
        notes.append("adjusted for " + ", ".join(spec.covariates))
    return pd.DataFrame(nodes), pd.DataFrame(edges), notes


def _is_mediation(result) -> bool:
    """A fitted mediation model, or a saved one read back with the same fields (spec, effects, level, ci, n_boot).

    Judged by its fields alone, so that drawing needs nothing from the model stage.
    """
    return all(hasattr(result, a) for a in ("spec", "effects", "level", "ci", "n_boot")) and \
        isinstance(getattr(result, "effects"), pd.DataFrame)


def path_layout(result, *, standardized: bool = False, group=None, residuals: bool = False,
                covariances: bool = True, intervals: bool = False, number_format=None):
    """The node and edge tables a path diagram draws.

    Returns
    -------
    nodes : pandas.DataFrame
        name, shape (ellipse for latent, rect for observed), kind, role
        (exogenous, mediator, outcome, indicator, exposure, moderator), x, y,
        width, height (inches), side (where residual loops go).
    edges : pandas.DataFrame
        source, target, kind (loading, regression, covariance, variance,
        moderation), op, estimate, p_value, ci_lower, ci_upper, fixed, text
        (what is written on the arrow).
    notes : list of str
        Lines written under the diagram (defined or indirect effects, covariates).
    """
    fmt = number_format or NumberFormat(decimals=2)
    name = type(result).__name__
    if _is_mediation(result):
        if standardized:
            raise RenderError(
                "`standardized=True` is not available for a MediationResult, whose paths are regression "
                "coefficients in the variables' own units; standardize the variables before cimstats.mediation() "
                "to draw standardized paths."
            )
        return _mediation_graph(result, fmt, intervals)
    if name == "SEMResult" or isinstance(result, pd.DataFrame):
        t, group_label, n_groups = _sem_table(result, standardized, group)
        nodes, edges = _sem_graph(t, fmt, intervals, residuals, covariances)
        if not len(nodes):
            raise RenderError("`result` has no =~, ~ or ~~ parameters to draw; pass a fitted structural equation "
                              "model or its parameter table.")
        notes = []
        if n_groups > 1:
            notes.append(f"Group {group_label} of {n_groups}; pass group= to draw another group.")
        n_int = int((t["op"] == "~1").sum())
        if n_int:
            notes.append(f"{n_int} intercept{'s' if n_int != 1 else ''} (~1) not drawn; see the parameter table.")
        for r in t[t["op"] == ":="].itertuples(index=False):
            ci = f" {fmt.ci(r.ci_lower, r.ci_upper)}" if intervals and pd.notna(r.ci_lower) else ""
            notes.append(f"{r.lhs} := {r.rhs}: {fmt.estimate(r.estimate)}{stars(r.p_value)}{ci}")
        return nodes, edges, notes
    raise type_error("path_diagram", "result", result, _ACCEPTED)


def path_diagram(result, *, standardized: bool = False, group=None, residuals: bool = False,
                 covariances: bool = True, intervals: bool = False, title=None, number_format=None) -> Figure:
    """Path diagram of a fitted SEM or mediation model, with estimates on the arrows.

    Latent variables are ellipses, observed variables rectangles; loadings
    (``=~``) and regressions (``~``) are single-headed arrows, covariances
    (``~~``) curved double-headed arrows, and residual variances (optional)
    small double-headed loops. Every arrow carries its estimate with
    significance stars (fixed parameters have none), or its confidence
    interval with ``intervals=True``.

    Parameters
    ----------
    result : SEMResult, MediationResult or pandas.DataFrame
        A fitted :func:`cimstats.sem` model (or its ``tidy()`` parameter
        table), or a :func:`cimstats.mediation` result (X, mediators, outcome,
        and the moderator pointing at the path it moderates; indirect and total
        effects with bootstrap intervals are listed under the diagram).
    standardized : bool
        Draw completely standardized estimates (lavaan's ``std.all``) with
        their delta-method p-values.
    group : int or str, optional
        For a multi-group model, the group to draw (number or label; default
        the first).
    residuals : bool
        Draw residual (and exogenous) variances as loops.
    covariances : bool
        Draw covariances between different variables.
    intervals : bool
        Add the confidence interval under each estimate.
    title : str, optional
    number_format : cimstats.render.NumberFormat, optional
        Default 2 decimals.

    Returns
    -------
    Figure
        ``data`` is the edge table (see :func:`path_layout`).

    Raises
    ------
    RenderError
        ``result`` is not an SEM or mediation result; ``group`` names no group;
        ``standardized=True`` for a mediation result.

    Notes
    -----
    The layout is deterministic: exogenous variables left, mediators in the
    middle and outcomes right (layers follow the regressions), indicators
    beside their factor. Each estimate is written where its box overlaps no
    other estimate and no variable: at the middle of its arrow if free, else
    further along it, else beside it, in smaller type on arrows too short to
    hold it; a spot that crosses no other arrow is preferred. Stars:
    * p < 0.05, ** p < 0.01, *** p < 0.001.

    Examples
    --------
    >>> import warnings
    >>> import cimstats
    >>> from cimstats.render.figures import path_diagram
    >>> p = cimstats.datasets.demo_study().patients
    >>> p0 = p[p["wave"] == 0].astype({f"ce_{i}": float for i in range(1, 5)})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     fit = cimstats.sem("CE =~ ce_1 + ce_2 + ce_3 + ce_4", p0)
    >>> fig = path_diagram(fit, standardized=True)
    >>> fig.data["kind"].tolist()
    ['loading', 'loading', 'loading', 'loading']
    >>> fig.alt_text.split(";")[0]
    'Path diagram (standardized estimates) of a structural equation model with 1 latent variable (CE) and 4 observed variables'
    """
    nodes, edges, notes = path_layout(result, standardized=standardized, group=group, residuals=residuals,
                                      covariances=covariances, intervals=intervals, number_format=number_format)
    mediation = _is_mediation(result)
    group_label = ""
    if not mediation:
        _, group_label, _ = _sem_table(result, standardized, group)
    if title is None:
        title = "Mediation model" if mediation else "Structural equation model"
        if standardized:
            title += " (standardized)"
        if group_label:
            title += f", group {group_label}"
    alt = _alt_text(nodes, edges, notes, mediation, standardized, group_label)
    data = edges.copy()

    def draw():
        return _draw(nodes, edges, notes, title=title, standardized=standardized)

    return Figure(title=title, alt_text=alt, data=data, kind="path_diagram", _draw=draw)


def _alt_text(nodes, edges, notes, mediation, standardized, group_label) -> str:
    std = " (standardized estimates)" if standardized else ""
    one = lambda s: s.replace("\n", " ")  # noqa: E731
    if mediation:
        roles = dict(zip(nodes["role"], nodes["name"]))
        meds = nodes.loc[nodes["role"] == "mediator", "name"].tolist()
        head = (f"Path diagram{std} of a mediation model of {roles.get('exposure')} on {roles.get('outcome')} "
                f"through {', '.join(meds)}")
        if "moderator" in roles:
            head += f", moderated by {roles['moderator']}"
    else:
        lat = nodes.loc[nodes["kind"] == "latent", "name"].tolist()
        obs = nodes.loc[nodes["kind"] == "observed", "name"].tolist()
        head = (f"Path diagram{std} of a structural equation model"
                f"{' for group ' + group_label if group_label else ''} with {len(lat)} latent "
                f"variable{'s' if len(lat) != 1 else ''}{' (' + ', '.join(lat) + ')' if lat else ''} and {len(obs)} "
                f"observed variable{'s' if len(obs) != 1 else ''}")
    parts = [head]
    e = edges
    if len(e):
        for kind, phrase in (("loading", "loadings"), ("regression", "paths"), ("moderation", "moderation"),
                             ("covariance", "covariances"), ("variance", "variances")):
            sub = e[e["kind"] == kind]
            if not len(sub):
                continue
            if kind == "loading":
                items = [f"{r.source} measured by {r.target} {one(r.text)}" for r in sub.itertuples()]
            elif kind == "covariance":
                items = [f"{r.source} with {r.target} {one(r.text)}" for r in sub.itertuples()]
            elif kind == "variance":
                items = [f"{r.source} {one(r.text)}" for r in sub.itertuples()]
            elif kind == "moderation":
                items = [f"{r.source} moderates {r.target.replace('->', ' to ')} {one(r.text)}" for r in sub.itertuples()]
            else:
                items = [f"{r.source} to {r.target} {one(r.text)}" for r in sub.itertuples()]
            parts.append(f"{phrase}: " + ", ".join(items))
    if notes:
        if notes[0].endswith(":"):
            parts.append(notes[0][:-1] + ": " + "; ".join(notes[1:]))
        else:
            parts.append("; ".join(notes))
    return "; ".join(parts) + "."


# ============================================================================ drawing
def _blocked(a, b, nodes, skip, margin=0.08) -> list:
    """Nodes (other than ``skip``) whose box the straight segment a-b passes through."""
    ts = np.linspace(0.05, 0.95, 40)
    px = a[0] + ts * (b[0] - a[0])
    py = a[1] + ts * (b[1] - a[1])
    hit = []
    for n in nodes.itertuples(index=False):
        if n.name in skip:
            continue
        inside = (np.abs(px - n.x) <= n.width / 2 + margin) & (np.abs(py - n.y) <= n.height / 2 + margin)
        if inside.any():
            hit.append((n.x, n.y))
    return hit


def _detour(a, b, source, target, nodes) -> float:
    """arc3 curvature that takes an arrow around the nodes its straight line would cross (0 if none)."""
    if not _blocked(a, b, nodes, {source, target}):
        return 0.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    ts = np.linspace(0.05, 0.95, 40)[:, None]
    others = nodes[~nodes["name"].isin([source, target])]
    best, best_hits = 0.0, None
    for rad in (0.2, -0.2, 0.35, -0.35, 0.5, -0.5):
        c = np.array([mx + rad * dy, my - rad * dx])
        pts = (1 - ts) ** 2 * np.asarray(a) + 2 * (1 - ts) * ts * c + ts ** 2 * np.asarray(b)
        hits = 0
        for n in others.itertuples(index=False):
            hits += int(((np.abs(pts[:, 0] - n.x) <= n.width / 2 + 0.08)
                         & (np.abs(pts[:, 1] - n.y) <= n.height / 2 + 0.08)).any())
        if best_hits is None or hits < best_hits:
            best, best_hits = rad, hits
        if hits == 0:
            break
    return best


class _Curve:
    """An arrow's centre line from ``a`` to ``b``: straight, or matplotlib's ``arc3`` quadratic Bezier."""

    def __init__(self, a, b, rad=0.0):
        self.a, self.b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        d = self.b - self.a
        self.c = (self.a + self.b) / 2 + rad * np.array([d[1], -d[0]])

    def point(self, t):
        t = np.asarray(t, dtype=float)[..., None]
        return (1 - t) ** 2 * self.a + 2 * (1 - t) * t * self.c + t ** 2 * self.b

    def normal(self, t) -> np.ndarray:
        d = 2 * (1 - t) * (self.c - self.a) + 2 * t * (self.b - self.c)
        n = np.array([-d[1], d[0]])
        norm = float(np.hypot(*n))
        return n / norm if norm > 0 else np.array([0.0, 1.0])


def _inside(pts, box, margin=0.0) -> np.ndarray:
    """Which points lie in the box ``(x0, y0, x1, y1)`` grown by ``margin``."""
    return ((pts[:, 0] >= box[0] - margin) & (pts[:, 0] <= box[2] + margin)
            & (pts[:, 1] >= box[1] - margin) & (pts[:, 1] <= box[3] + margin))


def _overlap(p, q, gap=0.0) -> bool:
    """Whether boxes ``(x0, y0, x1, y1)`` overlap (closer than ``gap``)."""
    return p[0] < q[2] + gap and q[0] < p[2] + gap and p[1] < q[3] + gap and q[1] < p[3] + gap


#: label placement: font sizes tried in turn (shorter arrows may need a smaller one), the gap kept
#: between a label and other labels or nodes (inches), and the steps along and across the arrow
_LABEL_SIZES = (8.0, 7.0, 6.0)
_LABEL_GAP = 0.03
_ALONG = (0.0, 0.08, -0.08, 0.16, -0.16, 0.24, -0.24, 0.32, -0.32, 0.4, -0.4)


def _place_labels(ax, jobs, node_boxes, lines) -> None:
    """Put every arrow label where it overlaps no other label and no node.

    Each label is tried at its preferred point on its arrow, then further along
    the arrow, then beside it (offset along the arrow's normal), with the font
    size stepped down for arrows too short to hold it. A spot that crosses no
    other arrow is preferred. Labels of the shortest arrows are placed first,
    since they have the fewest spots. Sizes are measured with the renderer, so
    the boxes are those drawn (one data unit is one inch).
    """
    renderer = ax.figure.canvas.get_renderer()
    dpi = ax.figure.dpi
    placed: list[tuple] = []
    blocked = [tuple(b) for b in node_boxes]

    def size(artist, fs):
        artist.set_fontsize(fs)
        ext = artist.get_window_extent(renderer)
        pad = (2 * 0.08 * fs / 72.0) if artist.get_bbox_patch() is not None else 0.0
        return ext.width / dpi + pad, ext.height / dpi + pad

    order = sorted(range(len(jobs)), key=lambda k: (jobs[k]["length"], k))
    for k in order:
        job = jobs[k]
        artist = job["artist"]
        others = [ln for j, ln in enumerate(lines) if j != job.get("line")]
        best = None
        for fs in job.get("sizes", _LABEL_SIZES):
            w, h = size(artist, fs)
            chosen = None
            for cx, cy in job["candidates"](w, h):
                box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                if any(_overlap(box, b, _LABEL_GAP) for b in blocked + placed):
                    continue
                crossings = sum(int(_inside(ln, box).any()) for ln in others)
                if chosen is None or crossings < chosen[0]:
                    chosen = (crossings, cx, cy, box)
                if crossings == 0:
                    break
            if chosen is not None:
                best = (fs,) + chosen[1:]
                break
        if best is None:  # nowhere free: the least crowded spot at the smallest size
            fs = job.get("sizes", _LABEL_SIZES)[-1]
            w, h = size(artist, fs)

            def crowding(c, w=w, h=h):
                q = (c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2)
                return sum(max(0.0, min(q[2], b[2]) - max(q[0], b[0])) * max(0.0, min(q[3], b[3]) - max(q[1], b[1]))
                           for b in blocked + placed)
            cx, cy = min(job["candidates"](w, h), key=crowding)
            best = (fs, cx, cy, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        fs, cx, cy, box = best
        artist.set_fontsize(fs)
        artist.set_position((cx, cy))  # centred (ha and va "center")
        placed.append(box)


def _along_candidates(curve: _Curve, t0: float, t_lo: float, t_hi: float):
    """Candidate label centres for an arrow: along it around ``t0``, then beside it on either side."""
    def gen(w, h):
        out = []
        ts = [min(max(t0 + d, t_lo), t_hi) for d in _ALONG]
        ts = list(dict.fromkeys(round(t, 4) for t in ts))
        for side in (0.0, 1.0, -1.0, 2.0, -2.0):
            for t in ts:
                p = curve.point(t)
                n = curve.normal(t)
                reach = w / 2 * abs(n[0]) + h / 2 * abs(n[1]) + _LABEL_GAP + 0.02
                out.append((float(p[0] + side * reach * n[0]), float(p[1] + side * reach * n[1])))
        return out
    return gen


def _visible(curve: _Curve, boxes) -> tuple[float, float, np.ndarray]:
    """The part of an arrow outside its end nodes: first and last t, and points along it."""
    ts = np.linspace(0.0, 1.0, 101)
    pts = curve.point(ts)
    out = np.ones(len(ts), dtype=bool)
    for b in boxes:
        out &= ~_inside(pts, b, 0.02)
    if not out.any():
        return 0.5, 0.5, pts[50:51]
    idx = np.flatnonzero(out)
    return float(ts[idx[0]]), float(ts[idx[-1]]), pts[idx]


def _near_edge(n) -> tuple[float, float] | None:
    """The middle of an indicator's side that faces its factor (None for other variables)."""
    if n.role != "indicator":
        return None
    return {"left": (n.x + n.width / 2, n.y), "right": (n.x - n.width / 2, n.y),
            "up": (n.x, n.y - n.height / 2), "down": (n.x, n.y + n.height / 2)}.get(n.side)


def _draw(nodes, edges, notes, *, title, standardized):
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    pad = 0.9
    xmin = float((nodes["x"] - nodes["width"] / 2).min()) - pad
    xmax = float((nodes["x"] + nodes["width"] / 2).max()) + pad
    ymin = float((nodes["y"] - nodes["height"] / 2).min()) - pad
    ymax = float((nodes["y"] + nodes["height"] / 2).max()) + pad
    note_h = 0.2 * (len(notes) + 1) + 0.15
    ymin -= note_h
    width, height = xmax - xmin, ymax - ymin + 0.35
    fig = new_figure(width, height)
    ax = fig.add_axes((0, 0, 1, (ymax - ymin) / height))
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.axis("off")
    cx, cy = float(nodes["x"].mean()), float(nodes["y"].mean())
    patches = {}
    node_boxes = {}
    for k, n in enumerate(nodes.itertuples(index=False)):
        if n.shape == "ellipse":
            p = Ellipse((n.x, n.y), n.width, n.height, fc="white", ec=COLOURS["black"], lw=1.2, zorder=3)
        else:
            p = FancyBboxPatch((n.x - n.width / 2, n.y - n.height / 2), n.width, n.height,
                               boxstyle="square,pad=0", fc="white", ec=COLOURS["black"], lw=1.0, zorder=3)
        p.set_gid(f"path-node-{k + 1}")
        ax.add_patch(p)
        patches[n.name] = p
        node_boxes[n.name] = (n.x - n.width / 2, n.y - n.height / 2, n.x + n.width / 2, n.y + n.height / 2)
        ax.text(n.x, n.y, n.name, ha="center", va="center", zorder=4,
                fontweight="bold" if n.kind == "latent" else "normal")
    pos = {n.name: (n.x, n.y) for n in nodes.itertuples(index=False)}
    node_by = {n.name: n for n in nodes.itertuples(index=False)}
    box = dict(boxstyle="square,pad=0.08", fc="white", ec="none")
    mids = {}
    jobs: list[dict] = []
    lines: list[np.ndarray] = []  # points along every drawn arrow (labels avoid crossing them)

    def label(text, *, colour=COLOURS["black"], with_box=True, **job):
        artist = ax.text(0.0, 0.0, text, ha="center", va="center", fontsize=8, bbox=box if with_box else None,
                         zorder=5, color=colour)
        artist.set_gid(f"path-label-{len(jobs) + 1}")
        jobs.append(dict(job, artist=artist))

    for e in edges.itertuples(index=False):
        if e.kind in ("loading", "regression"):
            a, b = pos[e.source], pos[e.target]
            rad = _detour(a, b, e.source, e.target, nodes) if e.kind == "regression" else 0.0
            near = _near_edge(node_by[e.target]) if e.kind == "loading" else None
            if near is not None:
                # a loading ends at the middle of the indicator's near side, so arrows to a tall stack of
                # indicators never cut through the neighbouring boxes
                b = near
            ax.add_patch(FancyArrowPatch(a, b, patchA=patches[e.source],
                                         patchB=None if near is not None else patches[e.target],
                                         connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>", mutation_scale=11,
                                         lw=1.0, color=COLOURS["black"], shrinkA=1, shrinkB=1, zorder=2))
            curve = _Curve(a, b, rad)
            t_lo, t_hi, pts = _visible(curve, [node_boxes[e.source], node_boxes[e.target]])
            lines.append(pts)
            # loadings fanning out above/below: label nearer the indicator, where the arrows are apart
            fanning = e.kind == "loading" and abs(b[1] - a[1]) > abs(b[0] - a[0])
            t0 = 0.62 if fanning else 0.5
            # a moderation arrow points at this spot of the arrow it moderates
            mids[f"{e.source}->{e.target}"] = tuple(curve.point(0.5 if rad else 0.62))
            label(e.text, line=len(lines) - 1, length=float(np.hypot(*(pts[-1] - pts[0]))),
                  candidates=_along_candidates(curve, min(max(t0, t_lo), t_hi), t_lo, t_hi))
    for e in edges.itertuples(index=False):
        if e.kind == "moderation":
            target = mids.get(e.target)
            if target is None:
                continue
            a = pos[e.source]
            ax.add_patch(FancyArrowPatch(a, target, patchA=patches[e.source], arrowstyle="-|>", mutation_scale=11,
                                         lw=1.0, ls=(0, (4, 2)), color=COLOURS["blue"], shrinkA=1, shrinkB=2,
                                         zorder=2))
            curve = _Curve(a, target)
            t_lo, t_hi, pts = _visible(curve, [node_boxes[e.source]])
            lines.append(pts)
            label(e.text, colour=COLOURS["blue"], line=len(lines) - 1,
                  length=float(np.hypot(*(pts[-1] - pts[0]))),
                  candidates=_along_candidates(curve, min(max(0.7, t_lo), t_hi), t_lo, min(t_hi, 0.92)))
        elif e.kind == "covariance":
            a, b = pos[e.source], pos[e.target]
            dx, dy = b[0] - a[0], b[1] - a[1]
            dist = math.hypot(dx, dy)
            rad = max(0.35, min(1.2, 1.0 / max(dist, 1e-9)))
            mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
            # bulge away from the centre of the diagram
            c_pos = (mx + rad * dy, my - rad * dx)
            c_neg = (mx - rad * dy, my + rad * dx)
            if math.hypot(c_pos[0] - cx, c_pos[1] - cy) < math.hypot(c_neg[0] - cx, c_neg[1] - cy):
                rad = -rad
            ax.add_patch(FancyArrowPatch(a, b, patchA=patches[e.source], patchB=patches[e.target],
                                         connectionstyle=f"arc3,rad={rad}", arrowstyle="<|-|>", mutation_scale=9,
                                         lw=0.9, color=COLOURS["grey"], shrinkA=1, shrinkB=1, zorder=1))
            curve = _Curve(a, b, rad)
            t_lo, t_hi, pts = _visible(curve, [node_boxes[e.source], node_boxes[e.target]])
            lines.append(pts)
            label(e.text, line=len(lines) - 1, length=float(np.hypot(*(pts[-1] - pts[0]))),
                  candidates=_along_candidates(curve, min(max(0.5, t_lo), t_hi), t_lo, t_hi))
        elif e.kind == "variance":
            n = node_by[e.source]
            ux, uy = {"left": (-1, 0), "right": (1, 0), "up": (0, 1), "down": (0, -1)}.get(n.side, (0, -1))
            hw, hh = n.width / 2, n.height / 2
            px, py = -uy, ux  # perpendicular
            off = 0.18
            ex, ey = n.x + ux * hw, n.y + uy * hh
            a = (ex + px * off, ey + py * off)
            b = (ex - px * off, ey - py * off)
            rad = 1.6 if (ux, uy) in ((0, -1), (1, 0)) else -1.6
            # choose the loop side that points outward
            c1 = ((a[0] + b[0]) / 2 + rad * (b[1] - a[1]), (a[1] + b[1]) / 2 - rad * (b[0] - a[0]))
            if (c1[0] - ex) * ux + (c1[1] - ey) * uy < 0:
                rad = -rad
            ax.add_patch(FancyArrowPatch(a, b, connectionstyle=f"arc3,rad={rad}", arrowstyle="<|-|>",
                                         mutation_scale=7, lw=0.8, color=COLOURS["grey"], shrinkA=0, shrinkB=0,
                                         zorder=1))
            lines.append(_Curve(a, b, rad).point(np.linspace(0, 1, 21)))

            def beside(w, h, ex=ex, ey=ey, ux=ux, uy=uy):
                # beyond the loop, outward from the node; then further out and to either side
                out = []
                for step in (0.0, 0.12, 0.24):
                    base = (ex + ux * (0.36 + w / 2 * abs(ux) + step), ey + uy * (0.42 + step))
                    for side in (0.0, 1.0, -1.0):
                        out.append((base[0] + side * -uy * (w / 2 + 0.2), base[1] + side * ux * (h / 2 + 0.2)))
                return out
            label(e.text, with_box=False, sizes=(7.0, 6.0), line=len(lines) - 1, length=0.0, candidates=beside)
    _place_labels(ax, jobs, list(node_boxes.values()), lines)
    legend = "Standardized estimates (std.all). " if standardized else ""
    if len(edges) and (~edges["fixed"]).any():
        legend += "* p < 0.05, ** p < 0.01, *** p < 0.001"
        if edges["fixed"].any():
            legend += "; fixed parameters have no stars"
    lines = [legend] + notes if legend else list(notes)
    y0 = ymin + note_h - 0.15
    for i, line in enumerate(lines):
        ax.text(xmin + 0.1, y0 - 0.2 * i, line, ha="left", va="top", fontsize=7.5, color=COLOURS["black"])
    fig.suptitle(title, x=0.02, y=1 - 0.08 / height, ha="left", va="top", fontweight="bold", fontsize=10)
    return fig
