"""One number format per column kind: counts, estimates, p-values, fit indices and degrees of freedom."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimstats.errors import RenderError
from cimstats.render import NumberFormat, TableSpec
from cimstats.render.numbers import COLUMN_KINDS, KINDS


def test_counts_df_and_fit_indices():
    f = NumberFormat()
    assert f.count(1425) == f.count(1425.0) == f.count(np.int64(1425)) == "1,425"
    assert f.count(5.0) == "5"  # a count column made float by a missing value
    assert f.count(2.5) == "2.50"  # not a whole number: written as it is, never cut to 2
    assert f.df(63.0) == f.df(63) == "63"
    assert f.df(1049) == "1,049"
    assert f.df(1414.843) == "1,414.84"
    assert f.df(math.inf) == "\u221e"
    assert f.fit_index(1.0) == "1.000" and f.fit_index(0.99612) == "0.996" and f.fit_index(0.0) == "0.000"
    assert f.fit_index(-0.0123) == "\u22120.012"
    assert NumberFormat(fit_decimals=2).fit_index(0.996) == "1.00"
    assert NumberFormat(df_decimals=1).df(57.92) == "57.9"
    for x in (None, float("nan"), pd.NA):
        assert f.df(x) == f.fit_index(x) == f.count(x) == f.missing


def test_format_by_kind_name():
    f = NumberFormat()
    assert [f.format(k, 0.5) for k in ("estimate", "number", "p_value", "fit_index", "df", "percent")] == \
        [f.estimate(0.5), f.estimate(0.5), f.p(0.5), f.fit_index(0.5), f.df(0.5), f.percent(0.5)]
    assert f.format("count", 12.0) == "12"
    assert set(KINDS) >= {"count", "estimate", "p_value", "fit_index", "df"}
    # the saved tables' columns each have one kind, known to NumberFormat
    assert set(COLUMN_KINDS.values()) <= set(KINDS)
    assert COLUMN_KINDS["df"] == COLUMN_KINDS["df_diff"] == "df" and COLUMN_KINDS["cfi"] == "fit_index"
    with pytest.raises(RenderError, match="kind"):
        f.format("ratio", 1.0)
    with pytest.raises(RenderError, match="fit_decimals"):
        NumberFormat(fit_decimals=-1)


def test_from_frame_writes_df_and_fit_columns_by_their_kind():
    d = pd.DataFrame({"model": ["configural", "metric"], "df": [120.0, 155.0], "cfi": [1.0, 0.99612],
                      "df_diff": [np.nan, 35.0]})
    s = TableSpec.from_frame(d, kinds={"df": "df", "cfi": "fit_index", "df_diff": "df"})
    body = [[c.text for c in row] for row in s.grid()[1:]]
    assert body == [["configural", "120", "1.000", "\u2013"], ["metric", "155", "0.996", "35"]]
    cells = s.grid()[2]
    assert cells[1].kind == "number" and cells[1].value == 155.0  # stored as numbers in spreadsheets


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_df_whole_numbers_have_no_decimals(x):
    f = NumberFormat()
    text = f.df(x)
    if float(x).is_integer():
        assert f.decimal_mark not in text
    else:
        assert text == f._num(x, f.df_decimals)
