"""The table behind a survey's codebook: one row per variable with labels, missing codes, counts and range.

It reads only what a :class:`~cimstats.io.survey.Survey` exposes (``data``, ``missing``, ``variable``), so
that the survey and :mod:`cimstats.io.codebook` can both build it without importing each other.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "codebook_table"]

COLUMNS = [
    "name", "label", "storage", "measure", "value_labels", "missing_codes",
    "n_valid", "n_declared_missing", "n_system_missing", "min", "max", "top_categories",
    "missing_code_counts",
]
_TOP = 5


def _code_text(v: Any) -> str:
    if isinstance(v, float):
        if np.isinf(v) or abs(v) >= 1e300:  # SPSS "LOWEST THRU x" / "x THRU HIGHEST"
            return "highest" if v > 0 else "lowest"
        if v.is_integer():
            return str(int(v))
        return f"{v:g}"
    if isinstance(v, np.generic):
        return _code_text(v.item())
    return str(v)


def _missing_text(m) -> str:
    parts = [_code_text(c) for c in m.missing_codes]
    parts += [f"{_code_text(lo)} to {_code_text(hi)}" for lo, hi in m.missing_ranges]
    return "; ".join(parts)


def _extreme(col: pd.Series, storage: str, which: str) -> Any:
    values = col.dropna()
    if values.empty or storage == "string":
        return None
    try:
        v = values.min() if which == "min" else values.max()
    except TypeError:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, pd.Timestamp):
        v = v.isoformat()
    elif hasattr(v, "isoformat"):
        v = v.isoformat()
    return v


def _top(col: pd.Series, m) -> str:
    values = col.dropna()
    if values.empty:
        return ""
    if m.storage != "string" and not m.value_labels:
        return ""
    counts = values.value_counts(sort=True)
    counts = counts.iloc[np.lexsort((np.arange(len(counts)), -counts.to_numpy()))]  # stable: ties keep first seen
    parts = []
    for code, n in counts.iloc[:_TOP].items():
        text = m.value_labels.get(code, None) if m.value_labels else None
        shown = text if text is not None else (_code_text(code) if code != "" else '""')
        parts.append(f"{shown} ({int(n)})")
    if len(counts) > _TOP:
        parts.append(f"... {len(counts) - _TOP} more")
    return "; ".join(parts)


def _code_counts(rec: pd.Series) -> str:
    """How many cells held each declared missing code, in code order: ``"-9 (4); 99 (2)"``."""
    counts = rec.dropna().value_counts()
    keys = list(counts.index)
    try:
        keys.sort(key=lambda k: (isinstance(k, str), k))
    except TypeError:
        pass
    return "; ".join(f"{_code_text(k)} ({int(counts[k])})" for k in keys)


def codebook_table(survey, variables: Iterable[str] | None = None) -> pd.DataFrame:
    """The codebook of ``survey`` (a checked :class:`~cimstats.io.survey.Survey`); see :func:`cimstats.io.codebook.codebook`."""
    names = list(variables) if variables is not None else survey.variables
    rows = []
    data, miss = survey.data, survey.missing
    for name in names:
        m = survey.variable(name)
        col = data[name]
        na = col.isna()
        n_decl = int(miss[name].notna().sum()) if name in miss.columns else 0
        rows.append({
            "name": name,
            "label": m.label or "",
            "storage": m.storage,
            "measure": m.measure or "",
            "value_labels": "; ".join(f"{_code_text(k)} = {v}" for k, v in m.value_labels.items()),
            "missing_codes": _missing_text(m),
            "n_valid": int((~na).sum()),
            "n_declared_missing": n_decl,
            "n_system_missing": int(na.sum()) - n_decl,
            "min": _extreme(col, m.storage, "min"),
            "max": _extreme(col, m.storage, "max"),
            "top_categories": _top(col, m),
            "missing_code_counts": _code_counts(miss[name]) if n_decl else "",
        })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("min", "max"):
        out[c] = out[c].astype(object)
    return out
