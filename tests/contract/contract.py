"""The one check every fitted result must pass: the result contract, and save -> load -> identical.

Each result family has its own ``test_contract_*.py`` beside this file that fits a small model and
calls :func:`check_contract` on it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from cimstats import load_result
from cimstats.models._result import (DROPPED_COLUMNS, FittedResult, OptimizerSummary, ResultNotAvailableError,
                                     ResultSummary)
from cimstats.render import TableSpec

TIDY_COLUMNS = ("term", "estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper")


def _same_frame(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True, obj=what)


def check_contract(result, tmp_path, *, levels=(0.95, 0.9), unavailable=()) -> object:
    """Assert that ``result`` honours the contract and survives save -> load unchanged.

    Parameters
    ----------
    result : a fitted result
    tmp_path : a temporary folder
    levels : confidence levels at which ``tidy`` is compared
    unavailable : names of zero-argument methods that a loaded result must refuse
        with ``ResultNotAvailableError`` (they need the original data)

    Returns the loaded result.
    """
    assert isinstance(result, FittedResult), type(result)
    assert result.kind, "a result class must name its kind"

    # -- the contract's shapes -----------------------------------------------------------
    t = result.tidy()
    assert isinstance(t, pd.DataFrame) and len(t) > 0
    missing = [c for c in TIDY_COLUMNS if c not in t.columns]
    assert not missing, f"tidy() lacks {missing}"
    narrow, wide = result.tidy(level=0.8), result.tidy(level=0.99)
    finite = np.isfinite(t["std_error"].to_numpy(dtype=float)) & (t["std_error"].to_numpy(dtype=float) > 0)
    if finite.any():
        assert (narrow["ci_upper"] - narrow["ci_lower"])[finite].lt(
            (wide["ci_upper"] - wide["ci_lower"])[finite]).all(), "tidy(level=) does not change the interval"
    g = result.glance()
    assert isinstance(g, pd.DataFrame) and len(g) == 1
    assert "pvalue" not in g.columns, "glance() must say p_value, as tidy() does"
    s = result.summary()
    assert isinstance(s, ResultSummary)
    assert all(isinstance(x, TableSpec) for x in s.tables) and s.tables
    for text in (str(s), s.to_html(), s.to_latex(), s.to_markdown()):
        assert isinstance(text, str) and text
    assert isinstance(result.to_table_spec(), TableSpec)
    html = result._repr_html_()  # the notebook view: the summary through the HTML renderer
    assert isinstance(html, str) and html.startswith("<div") and "<script" not in html.lower()
    v = result.vcov()
    assert isinstance(v, pd.DataFrame) and v.shape[0] == v.shape[1]
    assert list(v.index) == list(v.columns)
    d = result.dropped
    assert isinstance(d, pd.DataFrame) and tuple(d.columns) == DROPPED_COLUMNS
    assert isinstance(result.optimizer, OptimizerSummary)

    # -- save -> load -> identical ---------------------------------------------------------
    folder = tmp_path / f"saved-{result.kind}"
    assert result.save(folder) == folder
    json.loads((folder / "result.json").read_text(encoding="utf-8"))  # plain JSON
    again = load_result(folder)
    assert type(again) is type(result)
    for level in levels:
        _same_frame(again.tidy(level=level), result.tidy(level=level), f"tidy(level={level})")
    _same_frame(again.glance(), result.glance(), "glance()")
    _same_frame(again.vcov(), result.vcov(), "vcov()")
    _same_frame(again.dropped, result.dropped, "dropped")
    assert again.summary() == result.summary()
    for fmt in ("to_text", "to_html", "to_latex", "to_markdown"):
        assert getattr(again.summary(), fmt)() == getattr(result.summary(), fmt)()
    assert again.to_table_spec() == result.to_table_spec()
    assert again.optimizer == result.optimizer
    for name in unavailable:
        try:
            getattr(again, name)()
        except ResultNotAvailableError:
            pass
        else:  # pragma: no cover - the assertion is the test
            raise AssertionError(f"a loaded result's {name}() should say it needs the original data")
    # a second save of the loaded result writes the same file
    folder2 = tmp_path / f"saved-again-{result.kind}"
    again.save(folder2)
    assert (folder2 / "result.json").read_text(encoding="utf-8") == (folder / "result.json").read_text(encoding="utf-8")
    return again


def finite_or_nan_equal(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b
