"""The mediation path model as tables: equations, coefficients and defined effects.

:func:`build_spec` turns the roles the user named (exposure, mediators,
outcome, covariates, moderator, clusters) into

* a list of derived design columns (products, within- and between-cluster parts),
* the equations (one ordinary least-squares regression per mediator, one for
  the outcome, and the total-effect model when it is defined),
* the defined effects: each one a polynomial in labelled coefficients
  (``a * b``, ``(a + a_xw * w) * b``, ``c' + a1 * b1 + a2 * b2`` ...).

The coefficient table built from this spec (``MediationResult.paths()``) is
the central inspectable table of the mediation stage; every effect reported by
``tidy()`` is a view of it, evaluated on the full sample and on every resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations


@dataclass(frozen=True)
class Equation:
    """One regression of the path model (intercept always included)."""

    outcome: str
    predictors: tuple[str, ...]
    role: str  # "mediator" | "outcome" | "total"
    labels: dict = field(default_factory=dict)  # predictor -> label of a focal coefficient


@dataclass(frozen=True)
class Effect:
    """A defined effect: ``sum(c * prod(coef[key]))`` over its polynomial terms.

    Keys are ``(equation outcome, predictor)`` pairs.
    """

    term: str
    effect: str  # path | indirect | total_indirect | direct | total | conditional_indirect | ...
    path: str
    level: str  # "" | "within" | "between"
    moderator_value: float
    poly: tuple  # ((coef, ((outcome, predictor), ...)), ...)


@dataclass(frozen=True)
class Spec:
    """Everything needed to fit the path model, independent of the data values."""

    x: str
    mediators: tuple[str, ...]
    y: str
    covariates: tuple[str, ...]
    moderator: str | None
    moderated_paths: tuple[str, ...]
    serial: bool
    within_between: bool
    derived: dict  # design column -> ("product", a, b) | ("within", v) | ("between", v)
    equations: tuple[Equation, ...]
    effects: tuple[Effect, ...]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def build_spec(
    *,
    x: str,
    mediators: list[str],
    y: str,
    covariates: list[str],
    moderator: str | None,
    moderated_paths: tuple[str, ...],
    serial: bool,
    within_between: bool,
    moderator_values: list[float],
) -> Spec:
    """Build equations and effect definitions for the requested mediation model."""
    k = len(mediators)
    derived: dict = {}
    w = moderator
    levels = ("within", "between") if within_between else ("",)

    def part(v: str, level: str) -> str:
        if not level:
            return v
        name = f"{v}[{level}]"
        derived[name] = (level, v)
        return name

    def product(a: str, b: str) -> str:
        name = f"{a}:{b}"
        derived[name] = ("product", a, b)
        return name

    def sfx(j: int) -> str:
        return "" if k == 1 else str(j + 1)

    def lvl(label: str, level: str) -> str:
        return f"{label}_{level}" if level else label

    equations: list[Equation] = []
    # key lookups used when writing effects
    a_key, b_key, d_key = {}, {}, {}
    a_xw_key, b_mw_key = {}, {}
    c_key, c_xw_key, ctot_key = {}, None, {}

    # --- mediator equations
    for j, mj in enumerate(mediators):
        preds: list[str] = []
        labels: dict = {}
        for level in levels:
            xp = part(x, level)
            preds.append(xp)
            labels[xp] = lvl(f"a{sfx(j)}", level)
            a_key[(j, level)] = (mj, xp)
        if serial:
            for i in range(j):
                for level in levels:
                    mp = part(mediators[i], level)
                    preds.append(mp)
                    labels[mp] = lvl(f"d{j + 1}{i + 1}", level)
                    d_key[(j, i, level)] = (mj, mp)
        if w is not None and "a" in moderated_paths:
            preds.append(w)
            xw = product(x, w)
            preds.append(xw)
            labels[xw] = f"a{sfx(j)}_xw"
            a_xw_key[j] = (mj, xw)
        preds.extend(covariates)
        equations.append(Equation(mj, tuple(preds), "mediator", labels))

    # --- outcome equation
    preds, labels = [], {}
    for level in levels:
        xp = part(x, level)
        preds.append(xp)
        labels[xp] = lvl("c'", level)
        c_key[level] = (y, xp)
    for j, mj in enumerate(mediators):
        for level in levels:
            mp = part(mj, level)
            preds.append(mp)
            labels[mp] = lvl(f"b{sfx(j)}", level)
            b_key[(j, level)] = (y, mp)
    if w is not None and ("b" in moderated_paths or "direct" in moderated_paths):
        preds.append(w)
        if "direct" in moderated_paths:
            xw = product(x, w)
            preds.append(xw)
            labels[xw] = "c'_xw"
            c_xw_key = (y, xw)
        if "b" in moderated_paths:
            for j, mj in enumerate(mediators):
                mw = product(mj, w)
                preds.append(mw)
                labels[mw] = f"b{sfx(j)}_mw"
                b_mw_key[j] = (y, mw)
    preds.extend(covariates)
    equations.append(Equation(y, tuple(preds), "outcome", labels))

    # --- total-effect model (only without moderation: otherwise the total effect is not one number)
    if w is None:
        preds, labels = [], {}
        for level in levels:
            xp = part(x, level)
            preds.append(xp)
            labels[xp] = lvl("c", level)
            ctot_key[level] = (y, xp)
        preds.extend(covariates)
        equations.append(Equation(y, tuple(preds), "total", labels))

    # --- effects
    effects: list[Effect] = []
    for eq in equations:
        for pred, label in eq.labels.items():
            level = "within" if label.endswith("_within") else "between" if label.endswith("_between") else ""
            effects.append(Effect(label, "path", f"{pred} -> {eq.outcome}" + (" (total model)" if eq.role == "total" else ""),
                                  level, float("nan"), ((1.0, ((eq.role, eq.outcome, pred),)),)))

    def key(k3):  # (outcome, predictor) -> (role, outcome, predictor)
        outcome, pred = k3
        role = "outcome" if outcome == y else "mediator"
        return (role, outcome, pred)

    def chains():
        """Sequences of mediator positions an indirect effect can run through."""
        if not serial:
            return [(j,) for j in range(k)]
        out = []
        for r in range(1, k + 1):
            out.extend(combinations(range(k), r))
        return out

    if w is None:
        for level in levels:
            total_terms = []
            for ch in chains():
                factors = [a_key[(ch[0], level)]]
                for prev, nxt in zip(ch[:-1], ch[1:]):
                    factors.append(d_key[(nxt, prev, level)])
                factors.append(b_key[(ch[-1], level)])
                poly = ((1.0, tuple(key(f) for f in factors)),)
                total_terms.extend(poly)
                path = " -> ".join([x] + [mediators[j] for j in ch] + [y])
                name = lvl("indirect", level)
                if len(chains()) > 1:
                    name = f"{name}[{' -> '.join(mediators[j] for j in ch)}]"
                effects.append(Effect(name, "indirect", path, level, float("nan"), poly))
            if len(chains()) > 1:
                effects.append(Effect(lvl("total_indirect", level), "total_indirect", f"{x} -> ... -> {y}",
                                      level, float("nan"), tuple(total_terms)))
            direct = ((1.0, (key(c_key[level]),)),)
            effects.append(Effect(lvl("direct", level), "direct", f"{x} -> {y}", level, float("nan"), direct))
            effects.append(Effect(lvl("total", level), "total", f"{x} => {y}", level, float("nan"),
                                  direct + tuple(total_terms)))
    else:
        a_mod = "a" in moderated_paths
        b_mod = "b" in moderated_paths
        for j, mj in enumerate(mediators):
            path = f"{x} -> {mj} -> {y}"
            a1, b1 = key(a_key[(j, "")]), key(b_key[(j, "")])
            a3 = key(a_xw_key[j]) if a_mod else None
            b3 = key(b_mw_key[j]) if b_mod else None
            tag = mj if k > 1 else ""
            for v in moderator_values:
                poly = [(1.0, (a1, b1))]
                if a_mod:
                    poly.append((v, (a3, b1)))
                if b_mod:
                    poly.append((v, (a1, b3)))
                if a_mod and b_mod:
                    poly.append((v * v, (a3, b3)))
                name = f"conditional_indirect[{tag + ' | ' if tag else ''}{w}={_fmt(v)}]"
                effects.append(Effect(name, "conditional_indirect", path, "", float(v), tuple(poly)))
            if a_mod != b_mod:
                poly = ((1.0, (a3, b1)),) if a_mod else ((1.0, (a1, b3)),)
                name = "index_of_moderated_mediation" + (f"[{mj}]" if k > 1 else "")
                effects.append(Effect(name, "index_of_moderated_mediation", path, "", float("nan"), poly))
        if "direct" in moderated_paths:
            for v in moderator_values:
                poly = ((1.0, (key(c_key[""]),)), (v, (key(c_xw_key),)))
                effects.append(Effect(f"conditional_direct[{w}={_fmt(v)}]", "conditional_direct",
                                      f"{x} -> {y}", "", float(v), poly))
        else:
            effects.append(Effect("direct", "direct", f"{x} -> {y}", "", float("nan"),
                                  ((1.0, (key(c_key[""]),)),)))

    return Spec(
        x=x, mediators=tuple(mediators), y=y, covariates=tuple(covariates), moderator=w,
        moderated_paths=tuple(moderated_paths), serial=serial, within_between=within_between,
        derived=derived, equations=tuple(equations), effects=tuple(effects),
    )
