"""Values of offset() terms and of ``weights``/``offset`` columns given as expressions of columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import ModelSpecificationError
from ..checks import check_unique_columns
from ..formula import parse_expression

__all__ = ["offset_values"]


def _eval_expr(expr: str, data: pd.DataFrame, what: str, formula: str | None = None) -> np.ndarray:
    """Values of a column name or an arithmetic expression of columns (read by the formula
    parser, never run as code); ``what`` names it in messages ("offset", "`weights` column")."""
    text = expr.strip() if isinstance(expr, str) else expr
    if isinstance(text, str) and text in data.columns:
        check_unique_columns(data, [text])
        col = data[text]
    else:
        where = f"{what} {text!r}" + (f" in formula {formula!r}" if formula else "")
        if len(where) > 300:
            where = f"{what} {str(text)[:100]!r}..." + (f" in formula {formula[:100]!r}..." if formula else "")
        return parse_expression(text, where=where).evaluate(data)
    try:
        return pd.to_numeric(pd.Series(np.asarray(col)), errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ModelSpecificationError(
            f"The {what} {expr!r} has non-numeric values; expected numbers (recode the column first)."
        ) from None


def offset_values(exprs, data: pd.DataFrame, formula: str | None = None) -> np.ndarray:
    """Sum of the offset() expressions of a formula on ``data`` (zeros without offsets)."""
    off = np.zeros(len(data))
    for expr in exprs:
        off = off + _eval_expr(expr, data, "offset", formula)
    return off
