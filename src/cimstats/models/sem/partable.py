"""The parameter table: the one central structure of a structural equation model.

:func:`build_partable` turns parsed syntax (:mod:`.syntax`) into a table with
one row per model parameter (free or fixed) per group, adding lavaan's
defaults:

* the first loading of each latent variable fixed to 1 (``std_lv=False``) or
  all loadings free and latent variances fixed to 1 (``std_lv=True``);
* residual variances of all observed and latent variables free;
* covariances among exogenous latent variables free, and among endogenous
  variables that predict nothing else;
* exogenous observed covariates (``fixed_x=True``): variances, covariances
  and means fixed at their sample values; with ``fixed_x=False`` they are
  free parameters (variances, means and covariances among the covariates);
* with a mean structure: observed intercepts free, latent means fixed to 0
  (free in groups 2.. when intercepts are held equal across groups).

Columns: ``id, lhs, op, rhs, user, group, free, ustart, start, label,
plabel, exo, line`` (``free`` is 0 for fixed parameters, otherwise the
1-based index into the free-parameter vector; rows sharing an index are
constrained equal).

Equality constraints ``a == b`` between two free labels are applied by
sharing the index; every other equality (``a == 2*b``, ``a1*b1 == a2*b2``)
and every inequality (``a > 0``, ``a + b < 1``) is kept in
:class:`Constraints`: linear equalities become a re-parameterisation, the
rest constrain the optimiser (see :mod:`.estimation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cimstats.errors import ModelSpecificationError

from .syntax import Expression, Statement

__all__ = ["build_partable", "Constraints", "GROUP_EQUAL_TYPES", "classify_variables"]

GROUP_EQUAL_TYPES = (
    "loadings", "intercepts", "means", "residuals", "residual.covariances",
    "lv.variances", "lv.covariances", "regressions",
)


@dataclass
class Constraints:
    """Constraints that are not simple label sharing.

    ``linear`` holds (statement, line) pairs of equality constraints
    ``lhs == rhs`` other than two shared labels (split into linear and
    non-linear ones when the model is prepared); ``inequality`` holds
    (statement, sign) pairs meaning ``sign * (lhs - rhs) >= 0``;
    ``defined`` maps a defined-parameter name to its expression.
    """

    linear: list = field(default_factory=list)
    inequality: list = field(default_factory=list)
    defined: dict = field(default_factory=dict)
    eq_rows: list = field(default_factory=list)  # (lhs, op, rhs) texts for the table


def classify_variables(statements: list[Statement]) -> dict:
    """Return the latent and observed variable names and their roles."""
    lv: list[str] = []
    for s in statements:
        if s.op == "=~" and s.lhs not in lv:
            lv.append(s.lhs)
    ov: list[str] = []

    def add_ov(name):
        if name and name not in lv and name not in ov:
            ov.append(name)

    for s in statements:
        if s.op == "=~":
            add_ov(s.rhs)
    for s in statements:
        if s.op in ("~", "~~", "~1"):
            add_ov(s.lhs)
            add_ov(s.rhs)
    indicators = {s.rhs for s in statements if s.op == "=~"}
    y_reg = {s.lhs for s in statements if s.op == "~"}
    x_reg = {s.rhs for s in statements if s.op == "~"}
    ov_x = [v for v in ov if v in x_reg and v not in y_reg and v not in indicators]
    endo = [v for v in ov + lv if v in y_reg or (v in indicators)]
    pure_y = [v for v in ov + lv if v in y_reg and v not in x_reg and v not in indicators]
    lv_exo = [v for v in lv if v not in y_reg and v not in indicators]
    regressions = [(s.lhs, s.rhs) for s in statements if s.op == "~"]
    return {"lv": lv, "ov": ov, "ov_x": ov_x, "endo": endo, "pure_y": pure_y, "lv_exo": lv_exo,
            "indicators": indicators, "regressions": regressions}


def _per_group(values: list, g: int, ngroups: int, s: Statement, what: str):
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if len(values) != ngroups:
        raise ModelSpecificationError(
            f"Model syntax line {s.line} ('{s.text.strip()}'): c() gives {len(values)} {what} "
            f"but the model has {ngroups} group(s); give one value per group."
        )
    return values[g]


def build_partable(
    statements: list[Statement],
    *,
    ngroups: int = 1,
    std_lv: bool = False,
    meanstructure: bool = False,
    fixed_x: bool = True,
    group_equal: tuple = (),
    group_partial: tuple = (),
    orthogonal: bool = False,
) -> tuple[pd.DataFrame, Constraints, dict]:
    """Build the parameter table from parsed statements.

    Returns
    -------
    (table, constraints, roles)
    """
    roles = classify_variables(statements)
    lv, ov = roles["lv"], roles["ov"]
    model_stmts = [s for s in statements if s.op in ("=~", "~", "~~", "~1")]
    other = [s for s in statements if s.op not in ("=~", "~", "~~", "~1")]
    if not model_stmts:
        raise ModelSpecificationError(
            "`model` has no =~, ~ or ~~ statement; write at least one, e.g. 'f =~ x1 + x2 + x3'."
        )
    for ge in group_equal:
        if ge not in GROUP_EQUAL_TYPES:
            raise ModelSpecificationError(
                f"`group_equal` lists '{ge}', which is not a parameter type; "
                f"use any of {', '.join(GROUP_EQUAL_TYPES)}."
            )
    for s in model_stmts:
        if s.op == "~" and s.rhs in lv and s.lhs in roles["indicators"] and s.lhs not in lv:
            pass
        if s.lhs == s.rhs and s.op in ("=~", "~"):
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): '{s.lhs}' appears on both sides; "
                "a variable cannot measure or predict itself."
            )

    rows: list[dict] = []
    seen: dict[tuple, int] = {}

    def key(lhs, op, rhs, g):
        if op == "~~" and (rhs, lhs) < (lhs, rhs):
            lhs, rhs = rhs, lhs
        return (lhs, op, rhs, g)

    first_indicator = {}
    for s in model_stmts:
        if s.op == "=~" and s.lhs not in first_indicator:
            first_indicator[s.lhs] = s.rhs

    for g in range(ngroups):
        # user rows
        for s in model_stmts:
            k = key(s.lhs, s.op, s.rhs, g)
            label = _per_group(s.label, g, ngroups, s, "labels")
            fixed = _per_group(s.fixed, g, ngroups, s, "values")
            start = _per_group(s.start, g, ngroups, s, "start values")
            if k in seen:
                raise ModelSpecificationError(
                    f"Model syntax line {s.line} ('{s.text.strip()}'): the parameter "
                    f"{s.lhs} {s.op} {s.rhs} is specified twice; give each parameter once."
                )
            free = True
            ustart = math.nan
            if fixed is not None and not math.isnan(fixed):
                free, ustart = False, float(fixed)
            explicit_free = fixed is not None and math.isnan(fixed)
            if s.op == "=~" and not explicit_free and fixed is None and not std_lv \
                    and first_indicator.get(s.lhs) == s.rhs:
                free, ustart = False, 1.0
            row = dict(lhs=s.lhs, op=s.op, rhs=s.rhs, user=1, group=g + 1, free=free, ustart=ustart,
                       start=(start if start is not None else math.nan), label=label or "",
                       exo=0, line=s.line)
            seen[k] = len(rows)
            rows.append(row)

        def add_default(lhs, op, rhs, free=True, ustart=math.nan, exo=0):
            k = key(lhs, op, rhs, g)
            if k in seen:
                return
            seen[k] = len(rows)
            rows.append(dict(lhs=lhs, op=op, rhs=rhs, user=0, group=g + 1, free=free, ustart=ustart,
                             start=math.nan, label="", exo=exo, line=0))

        ov_x = roles["ov_x"] if fixed_x else []
        # variances
        for v in ov:
            if v in ov_x:
                add_default(v, "~~", v, free=False, exo=1)
            else:
                add_default(v, "~~", v)
        for v in lv:
            if std_lv:
                add_default(v, "~~", v, free=False, ustart=1.0)
            else:
                add_default(v, "~~", v)
        # covariances among exogenous latent variables
        if not orthogonal:
            lx = roles["lv_exo"]
            for i in range(len(lx)):
                for j in range(i + 1, len(lx)):
                    add_default(lx[i], "~~", lx[j])
        else:
            lx = roles["lv_exo"]
            for i in range(len(lx)):
                for j in range(i + 1, len(lx)):
                    add_default(lx[i], "~~", lx[j], free=False, ustart=0.0)
        # exogenous observed covariates: covariances fixed at sample values (fixed_x) or free
        # parameters (fixed_x=False: the covariates are random, as lavaan's fixed.x = FALSE)
        x_all = roles["ov_x"]
        for i in range(len(x_all)):
            for j in range(i + 1, len(x_all)):
                add_default(x_all[i], "~~", x_all[j], free=not fixed_x, exo=int(fixed_x))
        # covariances among pure dependent variables
        py = roles["pure_y"]
        for i in range(len(py)):
            for j in range(i + 1, len(py)):
                add_default(py[i], "~~", py[j])
        if meanstructure:
            for v in ov:
                if v in ov_x:
                    add_default(v, "~1", "", free=False, exo=1)
                else:
                    add_default(v, "~1", "")
            for v in lv:
                lv_free = g > 0 and ("intercepts" in group_equal) and "means" not in group_equal
                add_default(v, "~1", "", free=lv_free, ustart=(math.nan if lv_free else 0.0))

    # order as lavaan: by group, then operator, user rows before defaults (stable)
    order = {"=~": 0, "~": 1, "~~": 2, "~1": 3}
    records = sorted(rows, key=lambda r: (r["group"], order[r["op"]], -r["user"]))
    for k, r in enumerate(records, start=1):
        r["id"] = k
        r["plabel"] = f".p{k}."

    # free indices: shared labels -> shared index
    label_to_idx: dict[str, int] = {}
    nxt = 1
    partial = set(p.replace(" ", "") for p in group_partial)
    type_of = _param_type(records, roles)
    first_group_row = {}
    for i, r in enumerate(records):
        if r["group"] == 1:
            first_group_row[(r["lhs"], r["op"], r["rhs"])] = i
    free_idx = [0] * len(records)
    for i, r in enumerate(records):
        if not r["free"]:
            continue
        lab = r["label"]
        if lab:
            if lab in label_to_idx:
                free_idx[i] = label_to_idx[lab]
                continue
            label_to_idx[lab] = nxt
            free_idx[i] = nxt
            nxt += 1
            continue
        if r["group"] > 1 and type_of[i] in group_equal:
            name = f"{r['lhs']}{r['op']}{r['rhs']}"
            j = first_group_row.get((r["lhs"], r["op"], r["rhs"]))
            if name not in partial and j is not None and records[j]["free"] \
                    and records[j]["label"] in ("", records[j]["plabel"]):
                free_idx[i] = free_idx[j]
                records[i]["label"] = records[j]["plabel"]
                records[j]["label"] = records[j]["plabel"]
                continue
        free_idx[i] = nxt
        nxt += 1
    for r, f in zip(records, free_idx):
        r["free"] = f

    # labels on fixed parameters are allowed (they name a constant)
    constraints = Constraints()
    all_labels = set(r["label"] for r in records if r["label"])
    # defined parameters
    for s in other:
        if s.op == ":=":
            unknown = [n for n in s.expr.names if n not in all_labels and n not in constraints.defined]
            if unknown:
                raise ModelSpecificationError(
                    f"Model syntax line {s.line} ('{s.text.strip()}'): the defined parameter uses "
                    f"{', '.join(sorted(unknown))}, which label no parameter; label the parameters "
                    "in the model (e.g. m ~ a*x) before defining functions of them."
                )
            if s.lhs in all_labels or s.lhs in constraints.defined:
                raise ModelSpecificationError(
                    f"Model syntax line {s.line} ('{s.text.strip()}'): '{s.lhs}' is already a label; "
                    "give the defined parameter a new name."
                )
            constraints.defined[s.lhs] = s.expr
    # constraints
    for s in other:
        if s.op == ":=":
            continue
        names = s.expr.names | s.expr_lhs.names
        unknown = [n for n in names if n not in all_labels and n not in constraints.defined]
        if unknown:
            raise ModelSpecificationError(
                f"Model syntax line {s.line} ('{s.text.strip()}'): the constraint uses "
                f"{', '.join(sorted(unknown))}, which label no parameter; label the parameters first."
            )
        constraints.eq_rows.append((s.lhs.strip(), s.op, s.rhs.strip()))
        if s.op == "==":
            lt, rt = s.expr_lhs.tree, s.expr.tree
            if lt[0] == "name" and rt[0] == "name" and lt[1] in label_to_idx and rt[1] in label_to_idx:
                a, b = label_to_idx[lt[1]], label_to_idx[rt[1]]
                if a != b:
                    keep, drop = min(a, b), max(a, b)
                    for r in records:
                        if r["free"] == drop:
                            r["free"] = keep
                    for k2, v2 in list(label_to_idx.items()):
                        if v2 == drop:
                            label_to_idx[k2] = keep
                continue
            constraints.linear.append((s, s.line))
        else:
            constraints.inequality.append((s, 1.0 if s.op == ">" else -1.0))
    # renumber free indices contiguously
    used = sorted(set(r["free"] for r in records) - {0})
    remap = {old: new for new, old in enumerate(used, start=1)}
    for r in records:
        r["free"] = remap.get(r["free"], 0)
    cols = ["id", "lhs", "op", "rhs", "user", "group", "free", "ustart", "start", "label", "plabel", "exo", "line"]
    tab = pd.DataFrame({c: [r[c] for r in records] for c in cols})
    tab["label"] = tab["label"].astype(object)
    roles["records"] = records
    return tab, constraints, roles


def _param_type(records: list, roles: dict) -> list[str]:
    lv = set(roles["lv"])
    out = []
    for r in records:
        op = r["op"]
        if op == "=~":
            out.append("loadings")
        elif op == "~":
            out.append("regressions")
        elif op == "~1":
            out.append("means" if r["lhs"] in lv else "intercepts")
        else:
            both_lv = r["lhs"] in lv and r["rhs"] in lv
            if r["lhs"] == r["rhs"]:
                out.append("lv.variances" if both_lv else "residuals")
            else:
                out.append("lv.covariances" if both_lv else "residual.covariances")
    return out


def _terms(t: pd.DataFrame) -> list[str]:
    """Each row of a parameter table as one ``lhs op rhs`` string (``y~1`` for an intercept)."""
    return [f"{l}{o}{r}" if o != "~1" else f"{l}~1" for l, o, r in zip(t["lhs"], t["op"], t["rhs"])]
