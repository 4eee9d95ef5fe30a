"""Vectorised application of parsed rules to one study's source columns.

Each function takes :class:`SourceColumn` objects (values, metadata and the
record of declared missing codes) and returns an :class:`Applied`: the
harmonised values, a reason code per cell (0 = a value, otherwise a key of
:data:`cimstats.dictionary.codes.MISSING_REASONS`), counts of source codes the
rule did not cover, and data problems found. No per-row Python runs on
numeric data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cimstats.dictionary import expr as _expr
from cimstats.dictionary.codes import REASON_CODE
from cimstats.dictionary.deprivation import quantile_codes
from cimstats.dictionary.rules import Rule, convert_units
from cimstats.io.survey import VariableMeta

SYS = REASON_CODE["system_missing"]
SRC = REASON_CODE["source_missing"]
REC = REASON_CODE["recoded_missing"]
UNM = REASON_CODE["unmapped"]
TYP = REASON_CODE["type_mismatch"]
OOR = REASON_CODE["out_of_range"]
FEW = REASON_CODE["too_few_items"]
NOM = REASON_CODE["no_match"]
IMP = REASON_CODE["impossible"]


@dataclass
class SourceColumn:
    name: str
    values: np.ndarray  # analysis values (declared missing already missing)
    meta: VariableMeta
    record: np.ndarray | None  # object array: declared missing code per cell, None elsewhere

    @property
    def is_text(self) -> bool:
        return self.values.dtype.kind in "OUSTt" or self.meta.storage == "string"

    def missing_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """(system missing, declared missing) masks."""
        na = _isna(self.values)
        if self.is_text:
            na = na | _blank(self.values)
        if self.record is None:
            return na, np.zeros(len(na), dtype=bool)
        # a declared missing cell is missing in the data and has a code in the record: look only there
        dm = np.zeros(len(na), dtype=bool)
        pos = np.flatnonzero(_isna(self.values)) if not self.is_text else np.flatnonzero(na)
        if len(pos):
            rec = self.record[pos]
            dm[pos] = pd.notna(rec) if rec.dtype == object else ~np.isnan(rec)
        return na & ~dm, dm


@dataclass
class Applied:
    values: np.ndarray
    reason: np.ndarray
    unmapped: Counter = field(default_factory=Counter)  # source value -> count
    problems: list = field(default_factory=list)  # (code, message, remedy)
    target_codes: np.ndarray | None = None  # codes to record as declared missing in the target


def _isna(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return np.isnan(a)
    if a.dtype.kind in "iub":
        return np.zeros(len(a), dtype=bool)
    return np.asarray(pd.isna(a), dtype=bool)


def counts(a: np.ndarray) -> Counter:
    """Counts of the distinct values of ``a`` (computed in C)."""
    if not len(a):
        return Counter()
    vc = pd.Series(a, dtype=object if a.dtype == object else a.dtype).value_counts(dropna=False, sort=False)
    return Counter({_plain(k): int(v) for k, v in vc.items()})


def per_unique(a: np.ndarray, fn, *, na=None, dtype=object) -> np.ndarray:
    """Apply ``fn`` once per distinct value of ``a`` (hashing in C), not once per row; ``na`` for missing cells."""
    codes, uniq = pd.factorize(pd.Series(a, dtype=object), use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniq] + [na], dtype=dtype)
    return mapped[codes]  # code -1 (missing) picks the trailing ``na``


def _blank(a: np.ndarray) -> np.ndarray:
    return per_unique(a, lambda v: isinstance(v, str) and not v.strip(), na=False, dtype=bool)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def numeric(col: SourceColumn) -> tuple[np.ndarray, np.ndarray, Counter]:
    """Float values, a mask of text that is not a number, and counts of those texts."""
    v = col.values
    if v.dtype.kind in "fiub":
        return v.astype(float, copy=False), np.zeros(len(v), dtype=bool), Counter()
    num = per_unique(v, _to_float, na=np.nan, dtype=float)
    bad = np.isnan(num) & ~_isna(v) & ~_blank(v)
    return num, bad, counts(v[bad])


def _to_float(x) -> float:
    if isinstance(x, str):
        x = x.strip()
    try:
        return float(x)
    except (TypeError, ValueError):
        return np.nan


def _base_reason(col: SourceColumn) -> np.ndarray:
    sysm, decl = col.missing_masks()
    r = np.zeros(len(col.values), dtype=np.int8)
    r[sysm] = SYS
    r[decl] = SRC
    return r


def _numeric_base(col: SourceColumn, rule: Rule) -> tuple[np.ndarray, np.ndarray, Applied]:
    x, bad, texts = numeric(col)
    reason = _base_reason(col)
    reason[bad] = TYP
    ap = Applied(np.empty(0), reason, Counter(texts))  # values set by the caller
    if bad.any():
        ex = ", ".join(repr(k) for k, _ in texts.most_common(3))
        ap.problems.append(("H205", f"source '{col.name}' has {int(bad.sum())} value(s) that are not numbers (e.g. {ex}) "
                                    f"but rule '{rule.name}' needs numbers",
                            "Recode the text values with a 'recode' rule, or fix them in the source file."))
    return x, reason, ap


def norm_label(s: Any) -> str:
    return re.sub(r"\s+", " ", str(s)).strip().casefold()


def apply_rule(rule: Rule, cols: dict[str, SourceColumn], n: int, *, target_min=None, target_max=None,
               target_unit=None, target_is_text=False) -> Applied:
    """Apply ``rule`` to the source columns of one study (``n`` rows)."""
    name = rule.name
    if name == "impossible":
        return Applied(np.full(n, np.nan), np.full(n, IMP, dtype=np.int8))
    if name == "constant":
        v = rule.params["value"]
        if isinstance(v, str) and not target_is_text:
            # a text constant for a numeric target (reported as R113 when the dictionary is read): no values
            ap = Applied(np.full(n, np.nan), np.full(n, TYP, dtype=np.int8))
            ap.problems.append(("H205", f"rule 'constant' gives the text {v[:40]!r} for a numeric target, so its "
                                        f"{n} value(s) are left missing",
                                "Give a number or NA, or declare the target with type string."))
            return ap
        if isinstance(v, str) or target_is_text:
            return Applied(np.full(n, None if v is None else str(v), dtype=object), np.zeros(n, dtype=np.int8))
        return Applied(np.full(n, np.nan if v is None else float(v)), np.zeros(n, dtype=np.int8))
    if name in ("sum", "mean"):
        return _items(rule, [cols[s] for s in rule.sources], n)
    if name == "case_when":
        return _case_when(rule, cols, n)
    if name == "id" and rule.params.get("row_number"):
        return _id_rows(rule, n)
    col = cols[rule.sources[0]]
    if name == "direct":
        if target_is_text:
            return _text(col)
        x, reason, ap = _numeric_base(col, rule)
        ok = reason == 0
        ap.values = np.where(ok, x, np.nan)
        return ap
    if name == "id":
        if "template" in rule.params:
            return _id_template(rule, [cols[x] for x in rule.sources])
        return _id(rule, col)
    if name == "recode":
        return _recode(rule, col, target_is_text)
    if name == "quantile":
        return _quantile(rule, cols, n)
    x, reason, ap = _numeric_base(col, rule)
    ok = reason == 0
    if name == "reverse":
        lo, hi = rule.params.get("min", target_min), rule.params.get("max", target_max)
        y = lo + hi - x
    elif name == "rescale":
        y = x * rule.params["scale"] + rule.params["shift"]
    elif name == "convert":
        y = convert_units(x, rule.params["from"], rule.params.get("to") or target_unit)
    elif name == "cut":
        br = np.asarray(rule.params["breaks"], dtype=float)
        side = "left" if rule.params["closed"] == "right" else "right"
        j = np.searchsorted(br, np.where(ok, x, 0.0), side=side)
        inside = ok & (j >= 1) & (j <= len(br) - 1)
        labels = np.asarray([np.nan if lab is None else float(lab) for lab in rule.params["labels"]])
        y = np.full(len(x), np.nan)
        y[inside] = labels[j[inside] - 1]
        out = ok & ~inside
        reason[out] = OOR
        if out.any():
            for k, c in counts(x[out]).most_common(20):
                ap.unmapped[_plain(k)] += c
            ap.problems.append(("H206", f"{int(out.sum())} value(s) of '{col.name}' fall outside the bands "
                                        f"{rule.params['breaks'][0]} to {rule.params['breaks'][-1]}",
                                "Widen the outer breaks (use -inf/inf) or check the source values."))
        ok = inside
    else:  # pragma: no cover - parse_rule guards the names
        raise ValueError(name)
    ap.values = np.where(ok, y, np.nan)
    ap.reason = reason
    return ap


def _text(col: SourceColumn) -> Applied:
    sysm, decl = col.missing_masks()
    reason = np.zeros(len(col.values), dtype=np.int8)
    reason[sysm] = SYS
    reason[decl] = SRC
    v = col.values
    if v.dtype.kind == "f":
        out = np.array([None if np.isnan(t) else (str(int(t)) if float(t).is_integer() else repr(float(t))) for t in v], dtype=object)
    else:
        out = per_unique(v, lambda t: t if isinstance(t, str) else str(t))
    out[reason != 0] = None
    return Applied(out, reason)


def _id_rows(rule: Rule, n: int) -> Applied:
    """Identifiers for a file without one: the row numbers 1..n, zero-padded to ``width``, after ``prefix``."""
    s = pd.Series(np.arange(1, n + 1)).astype(str)
    if rule.params["width"]:
        s = s.str.zfill(rule.params["width"])
    return Applied((rule.params["prefix"] + s).to_numpy(dtype=object), np.zeros(n, dtype=np.int8))


def _id(rule: Rule, col: SourceColumn) -> Applied:
    reason = _base_reason(col)
    prefix, width = rule.params["prefix"], rule.params["width"]
    v = col.values
    ok = reason == 0
    out = np.full(len(v), None, dtype=object)
    if v.dtype.kind in "fiub":
        x = v.astype(float)
        frac = ok & (x != np.floor(x))
        if frac.any():
            reason[frac] = TYP
            ok &= ~frac
        ints = pd.Series(x[ok]).astype("int64").astype(str)
        if width:
            ints = ints.str.zfill(width)
        out[ok] = (prefix + ints).to_numpy(dtype=object)
    else:
        s = pd.Series(v[ok], dtype=object).astype(str).str.strip()
        if width:
            s = s.str.zfill(width)
        out[ok] = (prefix + s).to_numpy(dtype=object)
    return Applied(out, reason)


def _id_text(col: SourceColumn, ok: np.ndarray, reason: np.ndarray, width: int) -> pd.Series:
    """Identifier text of one source (whole numbers without decimals), zero-padded to ``width``."""
    v = col.values
    if v.dtype.kind in "fiub":
        x = v.astype(float)
        frac = ok & (x != np.floor(x))
        reason[frac] = TYP
        ok &= ~frac
        txt = pd.Series(np.where(ok, x, 0)).astype("int64").astype(str)
    else:
        txt = pd.Series(per_unique(v, lambda t: t.strip() if isinstance(t, str) else str(t), na=""), dtype=object)
    return txt.str.zfill(width) if width else txt


def _id_template(rule: Rule, cols: list[SourceColumn]) -> Applied:
    n = len(cols[0].values)
    reason = np.zeros(n, dtype=np.int8)
    for c in cols:  # any missing part makes the identifier missing (declared missing wins)
        r = _base_reason(c)
        reason = np.where((reason == 0) & (r != 0), r, reason).astype(np.int8)
    ok = reason == 0
    pieces = {}
    out = pd.Series([""] * n, dtype=object)
    for part in rule.params["template"]:
        if isinstance(part, str):
            out = out + part
        else:
            k, w = part
            if (k, w) not in pieces:
                pieces[(k, w)] = _id_text(cols[k], ok, reason, w)
            out = out + pieces[(k, w)]
    res = out.to_numpy(dtype=object)
    res[~ok] = None
    return Applied(res, reason)


def _recode(rule: Rule, col: SourceColumn, target_is_text: bool) -> Applied:
    n = len(col.values)
    reason = _base_reason(col)
    ap = Applied(np.full(n, None, dtype=object) if target_is_text else np.full(n, np.nan), reason)
    text_source = col.is_text
    labels = {norm_label(lab): code for code, lab in col.meta.value_labels.items()}
    value_map: dict[Any, Any] = {}
    ranges: list[tuple[float, float, Any]] = []
    else_target: Any = _NOTSET
    na_target: Any = _NOTSET
    for key, tgt in rule.pairs:
        if key.kind == "else":
            else_target = tgt
        elif key.kind == "na":
            na_target = tgt
        elif key.kind == "range":
            ranges.append((key.value, key.high, tgt))
        elif key.kind == "label":
            if text_source and not labels:
                value_map[key.value] = tgt
                value_map[norm_label(key.value)] = tgt
                continue
            code = labels.get(norm_label(key.value))
            if code is None:
                ap.problems.append(("H204", f"recode names label '{key.value}', which is not a value label of '{col.name}'"
                                            + (f" (labels: {', '.join(repr(v) for v in list(col.meta.value_labels.values())[:8])})"
                                               if col.meta.value_labels else " (it has no value labels)"),
                                    "Correct the label's spelling or recode by code."))
                continue
            value_map[code] = tgt
            if isinstance(code, (int, float)):
                value_map[float(code)] = tgt
        else:
            value_map[key.value] = tgt
    present = reason == 0
    if text_source:
        def lookup(t):
            k = t.strip() if isinstance(t, str) else t
            if k in value_map:
                return (True, value_map[k])
            if isinstance(k, str) and norm_label(k) in value_map:
                return (True, value_map[norm_label(k)])
            f = _to_float(k)
            if not np.isnan(f) and f in value_map:
                return (True, value_map[f])
            return (False, None)

        codes, uniq = pd.factorize(pd.Series(col.values, dtype=object), use_na_sentinel=True)
        looked = [lookup(u) for u in uniq]  # once per distinct text, not per row
        flags = np.array([f for f, _ in looked] + [False], dtype=bool)
        targets = np.empty(len(looked) + 1, dtype=object)
        targets[:] = [t for _, t in looked] + [None]
        hit = flags[codes] & present
        res = np.full(n, None, dtype=object)
        res[hit] = targets[codes[hit]]
        xnum = np.array([_to_float(u) for u in uniq] + [np.nan], dtype=float)[codes]
    else:
        x = col.values.astype(float, copy=False)
        num_keys = [k for k in value_map if isinstance(k, (int, float)) and not isinstance(k, bool)]
        idx = pd.Index(np.asarray(num_keys, dtype=float)).get_indexer(x) if num_keys else np.full(n, -1)
        hit = (idx >= 0) & present
        tvals = np.asarray([value_map[k] for k in num_keys], dtype=object)
        res = np.full(n, None, dtype=object)
        if hit.any():
            res[hit] = tvals[idx[hit]]
        xnum = x
    for lo, hi, tgt in ranges:
        m = present & ~hit & (xnum >= lo) & (xnum <= hi)
        res[m] = tgt
        hit |= m
    rest = present & ~hit
    if rest.any() and else_target is not _NOTSET:
        if else_target == "copy":
            res[rest] = col.values[rest]
        else:
            res[rest] = else_target
        hit |= rest
    if rest.any() and else_target is _NOTSET:
        reason[rest] = UNM
        for k, c in counts(col.values[rest]).items():
            ap.unmapped[_plain(k)] += c
    # declared missing codes of the source, matched explicitly
    decl = reason == SRC
    if decl.any() and col.record is not None:
        def as_key(t):
            return float(t) if isinstance(t, (int, float, np.number)) and not isinstance(t, bool) else t

        rec = col.record[decl]
        m = per_unique(rec, lambda t: as_key(t) in value_map, na=False, dtype=bool)
        if m.any():
            pos = np.flatnonzero(decl)[m]
            res[pos] = per_unique(rec[m], lambda t: value_map[as_key(t)])
            reason[pos] = 0
            hit[pos] = True
    sysm = reason == SYS
    if sysm.any() and na_target is not _NOTSET:
        res[sysm] = na_target
        reason[sysm] = 0
        hit |= sysm
    tomiss = hit & pd.isna(res)
    reason[tomiss] = REC
    good = hit & ~tomiss
    if target_is_text:
        out = np.full(n, None, dtype=object)
        out[good] = per_unique(res[good], lambda v: str(_plain(v)))
    else:
        out = np.full(n, np.nan)
        try:
            out[good] = res[good].astype(float)
        except (TypeError, ValueError):
            conv = pd.to_numeric(pd.Series(res[good]), errors="coerce").to_numpy(dtype=float)
            out[good] = conv
            badpos = np.flatnonzero(good)[np.isnan(conv)]
            reason[badpos] = TYP
    ap.values = out
    ap.reason = reason
    return ap


class _NotSet:
    def __repr__(self):
        return "<not set>"


_NOTSET = _NotSet()


def _quantile(rule: Rule, cols: dict[str, SourceColumn], n: int) -> Applied:
    col = cols[rule.sources[0]]
    x, reason, ap = _numeric_base(col, rule)
    x = np.where(reason == 0, x, np.nan)
    by = rule.params["by"]
    groups = None
    if by:
        groups = pd.MultiIndex.from_arrays([pd.Series(cols[b].values, dtype=object) for b in by]).to_flat_index().to_numpy()
    units = None if not rule.params["per"] else np.asarray(cols[rule.params["per"]].values, dtype=object)
    ap.values = quantile_codes(x, groups, rule.params["n"], rule.params["direction"] == "higher_more_deprived", units)
    return ap


def _items(rule: Rule, cols: list[SourceColumn], n: int) -> Applied:
    mats, anydecl, allsys = [], np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    ap = Applied(np.full(n, np.nan), np.zeros(n, dtype=np.int8))
    for c in cols:
        x, bad, texts = numeric(c)
        sysm, decl = c.missing_masks()
        if bad.any():
            ap.unmapped.update(texts)
            ap.problems.append(("H205", f"item '{c.name}' has {int(bad.sum())} value(s) that are not numbers",
                                "Recode the text values first or fix the source file."))
        x = np.where(sysm | decl | bad, np.nan, x)
        mats.append(x)
        anydecl |= decl
        allsys &= sysm
    m = np.column_stack(mats)
    nvalid = (~np.isnan(m)).sum(axis=1)
    total = np.nansum(m, axis=1)
    enough = nvalid >= rule.params["min_valid"]
    if rule.name == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            y = total / nvalid
    else:
        y = total * (len(cols) / np.maximum(nvalid, 1)) if rule.params.get("prorate") else total
    ap.values = np.where(enough, y, np.nan)
    r = ap.reason
    r[~enough] = FEW
    r[~enough & allsys] = SYS
    r[~enough & ~allsys & (nvalid == 0) & anydecl] = SRC
    few = int((r == FEW).sum())
    if few:
        ap.problems.append(("H212", f"{few} row(s) have fewer than {rule.params['min_valid']} valid items of "
                                    f"{len(cols)}, so their {rule.name} is missing",
                            "This follows the rule's min_valid; lower it only if the instrument's scoring allows."))
    return ap


def _case_when(rule: Rule, cols: dict[str, SourceColumn], n: int) -> Applied:
    frame = pd.DataFrame({name: c.values if not c.is_text else pd.Series(c.values, dtype=object).where(
        ~c.missing_masks()[0], None).to_numpy() for name, c in cols.items()})
    problems: list = []

    def resolve(var: str, lit: Any) -> Any:
        c = cols.get(var)
        if c is None or not isinstance(lit, str) or c.is_text:
            return lit
        code = {norm_label(v): k for k, v in c.meta.value_labels.items()}.get(norm_label(lit))
        if code is None:
            problems.append(("H204", f"case_when compares '{var}' with '{lit}', which is not a value label of '{var}'",
                             "Correct the label's spelling or compare with the code."))
            return lit
        return code

    values, why = rule.case.evaluate_with_reasons(frame, resolve)
    anydecl = np.zeros(n, dtype=bool)
    for c in cols.values():
        anydecl |= c.missing_masks()[1]
    reason = np.zeros(n, dtype=np.int8)
    reason[why == 1] = np.where(anydecl[why == 1], SRC, SYS)
    reason[why == 2] = NOM
    v = values.to_numpy()
    assigned = why == 0
    nav = assigned & pd.isna(v)
    reason[nav] = REC
    ap = Applied(v, reason, problems=list(dict.fromkeys(problems)))
    if (why == 2).any():
        ap.problems.append(("H213", f"{int((why == 2).sum())} row(s) match no case_when condition and there is no else",
                            "Add a branch or an 'else' value (else NA to make them missing on purpose)."))
    return ap
