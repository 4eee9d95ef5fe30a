"""Input checks shared by the model verbs (lmm, glmm, gee, sem, invariance, mediation).

Each check raises :class:`~cimstats.errors.ModelSpecificationError` with one
sentence naming the column, what was found and what to do, before any numeric
kernel sees the data: a column name that appears twice in the data frame,
infinite values, and values so large that their squares overflow double
precision (sums of squares and cross-products are the first thing every model
computes).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cimstats.models.checks import check_model_columns
>>> d = pd.DataFrame({"y": [1.0, 2.0, np.inf], "x": [1.0, 2.0, 3.0]})
>>> try:
...     check_model_columns(d, ["y", "x"])
... except Exception as e:
...     print(str(e).split(";")[0])
The column 'y' of `data` has 1 infinite value(s) (first in row 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelSpecificationError

__all__ = ["check_model_columns", "check_unique_columns", "check_finite_values", "HUGE_VALUE", "TINY_VALUE"]

#: largest magnitude a model variable may take: its square, summed over many rows and
#: multiplied by another such value, must stay far from the double-precision limit (1.8e308)
HUGE_VALUE = 1e100
#: a column whose largest magnitude is below this (but not zero) has squares that underflow
TINY_VALUE = 1e-100


def check_unique_columns(data: pd.DataFrame, names, *, where: str = "`data`") -> None:
    """Raise when one of ``names`` is the name of more than one column of ``data``.

    Parameters
    ----------
    data : pandas.DataFrame
    names : iterable of str
        The columns a model uses.
    where : str
        How the data are named in the message.

    Raises
    ------
    ModelSpecificationError
        Naming the first duplicated column and how many times it appears.
    """
    cols = data.columns
    if cols.is_unique:
        return
    dup = set(cols[cols.duplicated()].tolist())
    for c in names:
        if c in dup:
            k = int(np.sum(np.asarray(cols == c, dtype=bool)))
            raise ModelSpecificationError(
                f"The column name {c!r} appears {k} times in {where}, so the model cannot tell which to use; "
                f"expected each column name once, so rename or drop the duplicates "
                f"(e.g. data.loc[:, ~data.columns.duplicated()])."
            )


def check_finite_values(values: np.ndarray, name: str, *, index=None, where: str = "`data`") -> None:
    """Raise when numeric ``values`` hold +-inf, magnitudes above :data:`HUGE_VALUE`, or only
    magnitudes below :data:`TINY_VALUE` (and zeros).

    Missing values (NaN) are allowed (the verbs set such rows aside and count them).
    The scan uses two reductions and allocates nothing per row unless a problem is found.

    Parameters
    ----------
    values : numpy.ndarray
        Float values of one column.
    name : str
        The column's name (for the message).
    index : sequence, optional
        Row labels, to name the first offending row.
    where : str
        How the data are named in the message.

    Raises
    ------
    ModelSpecificationError
        ``inf`` values (counted, first row named) or overflowing magnitudes.
    """
    v = np.asarray(values)
    if v.size == 0 or v.dtype.kind not in "fc":
        if v.dtype.kind in "iu" and v.size:
            hi = max(abs(int(v.max())), abs(int(v.min())))
            if hi > HUGE_VALUE:  # pragma: no cover - int64 cannot exceed 9.3e18
                raise _overflow(name, float(hi), where)
        return
    with np.errstate(invalid="ignore"):
        hi = np.fmax.reduce(v, axis=None)
        lo = np.fmin.reduce(v, axis=None)
    if not (np.isfinite(hi) and np.isfinite(lo)):
        if np.isnan(hi) and np.isnan(lo):
            return  # every value missing: the verbs say so themselves
        bad = np.isinf(v)
        if bad.any():
            first = int(np.flatnonzero(bad.ravel())[0])
            row = index[first] if index is not None and len(index) == v.size else first
            row = row.item() if isinstance(row, np.generic) else row
            raise ModelSpecificationError(
                f"The column {name!r} of {where} has {int(bad.sum())} infinite value(s) (first in row {row!r}); "
                f"expected finite numbers, so recode them as missing (NaN) or correct them."
            )
    big = max(abs(float(hi)), abs(float(lo)))
    if big > HUGE_VALUE:
        raise _overflow(name, big, where)
    if 0 < big < TINY_VALUE:
        raise ModelSpecificationError(
            f"The column {name!r} of {where} has values no larger than {big:.3g} in magnitude, whose squares "
            f"underflow double precision; expected values above {TINY_VALUE:.0e}, so rescale the column (e.g. "
            f"change its units) or correct the values."
        )


def _overflow(name, big, where):
    return ModelSpecificationError(
        f"The column {name!r} of {where} has values as large as {big:.3g} in magnitude, whose squares overflow "
        f"double precision; expected values below {HUGE_VALUE:.0e}, so rescale the column (e.g. change its "
        f"units) or correct the values."
    )


def check_model_columns(data: pd.DataFrame, names, *, where: str = "`data`") -> None:
    """Duplicate names, then infinite and overflowing values, of the numeric columns ``names``.

    Columns that are not numeric (categories, text, booleans) are only checked
    for duplicate names; the verbs code or reject them themselves.
    """
    names = [c for c in dict.fromkeys(names) if c in data.columns]
    check_unique_columns(data, names, where=where)
    for c in names:
        s = data[c]
        dt = s.dtype
        if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dt) \
                or not pd.api.types.is_numeric_dtype(dt):
            continue
        vals = s.to_numpy() if isinstance(dt, np.dtype) else s.to_numpy(dtype=float, na_value=np.nan)
        check_finite_values(vals, str(c), index=data.index, where=where)
