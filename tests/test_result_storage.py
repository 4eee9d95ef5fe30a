"""The saved-result JSON forms restore tables, table specs and numbers exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cimstats import load_result

from cimstats.models._result import (OptimizerSummary, ResultSummary, SavedResultError, _from_json_ready,
                                     _json_ready, dropped_frame, spec_from_json, spec_to_json,
                                     table_from_json, table_to_json)
from cimstats.render import Cell, Footnote, Row, TableSpec


def _round_trip(obj):
    return _from_json_ready(json.loads(json.dumps(_json_ready(obj), allow_nan=False)))


def test_tables_keep_every_digit_and_dtype():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=5) * 1e-7, "n": np.arange(5), "ok": [True, False] * 2 + [True],
                       "term": ["a", None, "=cmd", "ü", "b"],
                       "cat": pd.Categorical(["lo", "hi", "lo", "hi", "lo"], categories=["lo", "hi"], ordered=True)})
    df.loc[1, "x"] = np.nan
    df.loc[2, "x"] = -np.inf
    back = table_from_json(json.loads(json.dumps(table_to_json(df), allow_nan=False)))
    pd.testing.assert_frame_equal(back, df)


def test_indexed_table_and_nested_state():
    df = pd.DataFrame([[1.0, 0.25], [0.25, 2.0]], index=["a", "b"], columns=["a", "b"])
    state = {"vcov": df, "theta": np.array([[0.1, np.nan]]), "names": ("a", "b"), "by": {"age": 3}}
    back = _round_trip(state)
    pd.testing.assert_frame_equal(back["vcov"], df)
    np.testing.assert_array_equal(back["theta"], state["theta"])
    assert back["by"] == {"age": 3} and back["names"] == ["a", "b"]


def test_table_spec_and_summary_round_trip():
    spec = TableSpec(title="T", header=((Cell("Term"), Cell("p", kind="p_value")),),
                     body=(Row((Cell("Group", colspan=2),), role="group"),
                           Row((Cell("x", footnotes=("a",)), Cell("0.03", kind="p_value", value=0.031)))),
                     footnotes=(Footnote("a", "note a"),), notes=("Note one.",), number="2")
    assert spec_from_json(json.loads(json.dumps(spec_to_json(spec)))) == spec
    s = ResultSummary("Model", lines=("Formula: y ~ x",), tables=(spec,), notes=("Converged.",))
    back = ResultSummary.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and str(back) == str(s) and back.to_html() == s.to_html()
    assert back.to_latex() == s.to_latex() and back.to_markdown() == s.to_markdown()


def test_optimizer_summary_and_dropped_shape():
    o = OptimizerSummary("bobyqa", (1.0,), (0.5,), 10, 20, 1e-7, True, "ok", ("gradient small",))
    assert OptimizerSummary.from_dict(json.loads(json.dumps(o.to_dict()))) == o
    d = dropped_frame({"age": 2})
    assert list(d.columns) == ["variable", "n_missing"] and d["n_missing"].tolist() == [2]
    assert dropped_frame(None).empty


def test_load_result_refuses_what_is_not_a_saved_result(tmp_path):
    with pytest.raises(SavedResultError, match="does not exist"):
        load_result(tmp_path)
    (tmp_path / "result.json").write_text("not json")
    with pytest.raises(SavedResultError, match="not a saved cimstats result"):
        load_result(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps({"format": 1, "kind": "os.system", "state": {}}))
    with pytest.raises(SavedResultError, match="does not know"):
        load_result(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps({"format": 99, "kind": "lmm", "state": {}}))
    with pytest.raises(SavedResultError, match="layout"):
        load_result(tmp_path)
