"""Multiple-testing adjustment of the mechanism table's p-values (Holm, Benjamini-Hochberg)."""

from __future__ import annotations

import numpy as np

from cimstats.errors import PlanError

__all__ = ["p_adjust"]


def p_adjust(p, method: str | None) -> np.ndarray:
    """Holm or Benjamini-Hochberg adjusted p-values (missing values kept missing).

    Examples
    --------
    >>> p_adjust([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> p_adjust([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if method is None:
        out[ok] = p[ok]
        return out
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="mergesort")
    s = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * s)
    elif method in ("bh", "fdr_bh"):
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1) * s[::-1]))[::-1]
    else:
        raise PlanError(f"`adjust` is {method!r}; expected 'holm', 'bh' or None.")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out
