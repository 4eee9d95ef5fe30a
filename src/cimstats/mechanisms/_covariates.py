"""Covariates of the mechanism models as numbers: categorical ones become indicator columns."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cimstats.errors import ModelSpecificationError


def indicator_columns(frame: pd.DataFrame, cols: list[str], *,
                      syntax_names: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Numeric covariates as they are; categorical ones as 0/1 indicators (first sorted category = reference).

    An indicator is named covariate + category (``countryNL``); it is missing where the covariate is.
    With ``syntax_names=True`` (covariates written into model syntax) characters other than letters,
    digits and ``_`` become ``_``, and a name that is already a column is refused.

    Returns the frame with the indicators added and the covariate names to use, in order.

    Examples
    --------
    >>> d = pd.DataFrame({"age": [60, 70, 65], "country": ["EN", "NL", "EN"]})
    >>> indicator_columns(d, ["age", "country"])[1]
    ['age', 'countryNL']
    """
    out = frame.copy()
    names: list[str] = []
    for c in cols:
        s = out[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            names.append(c)
            continue
        levels = sorted(pd.unique(s.dropna()).tolist(), key=str)
        for lv in levels[1:]:
            nm = f"{c}{lv}"
            if syntax_names:
                nm = re.sub(r"[^A-Za-z0-9_]", "_", nm)
                if nm in out.columns or nm in names:
                    raise ModelSpecificationError(
                        f"Covariate '{c}' has the category {lv!r}, whose indicator name '{nm}' is already a "
                        "column; rename the category or the column.")
            out[nm] = np.where(s.isna(), np.nan, (s == lv).astype(float))
            names.append(nm)
    return out, names
