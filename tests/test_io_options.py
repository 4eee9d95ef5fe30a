"""read_survey options: user_missing, missing_codes for CSV, metadata sidecars; from_raw invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import LABELLED, need
from hypothesis import given, settings
from hypothesis import strategies as st

from cimstats.io import Survey, VariableMeta, read_survey, write_survey
from cimstats.io.readers import sidecar_path
from cimstats.io.survey import declared_missing_mask


def test_user_missing_false_keeps_spss_codes_as_values():
    path = need(LABELLED / "pyreadstat" / "basic_sample_missing.sav")
    s = read_survey(path, user_missing=False)
    kept = read_survey(path).raw()
    assert s.data["mynum"].tolist()[:6] == kept["mynum"].tolist()[:6]
    assert s.missing.shape[1] == 0
    assert s.variable("mynum").missing_ranges == ((2000, 3000),)  # the declaration is still known


def test_user_missing_false_still_treats_stata_extended_missing_as_missing():
    s = read_survey(need(LABELLED / "haven" / "tagged-na-int.dta"), user_missing=False)
    assert s.data["x"].isna().sum() == 3 and s.missing["x"].notna().sum() == 3


def test_csv_without_metadata_takes_declared_codes(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("id,q1,town\n1,2,Oslo\n2,99,NA\n3,-9,\n")
    s = read_survey(p, missing_codes={"q1": [99, -9], "town": ["NA"]})
    assert s.data["q1"].isna().tolist() == [False, True, True]
    assert s.missing["q1"].tolist() == [None, 99, -9]
    assert not sidecar_path(p).exists()


def test_csv_sidecar_carries_metadata(tmp_path):
    s = Survey.from_raw(pd.DataFrame({"q1": [1.0, 99.0]}),
                        {"q1": VariableMeta("q1", label="Pain", value_labels={1: "None", 99: "Refused"},
                                            missing_codes=(99,), measure="ordinal")})
    write_survey(s, tmp_path / "x.csv")
    assert sidecar_path(tmp_path / "x.csv").exists()
    assert (tmp_path / "x.csv").read_text().splitlines() == ["q1", "1.0", "99.0"]
    back = read_survey(tmp_path / "x.csv")
    assert back.variable("q1") == s.variable("q1")
    write_survey(s, tmp_path / "y.csv", metadata=False)
    assert not sidecar_path(tmp_path / "y.csv").exists()


def test_from_raw_leaves_its_input_alone():
    raw = pd.DataFrame({"q": [1.0, 99.0, 2.0], "s": ["a", "NA", "b"]})
    before = raw.copy()
    Survey.from_raw(raw, {"q": VariableMeta("q", missing_codes=(99,)),
                          "s": VariableMeta("s", storage="string", missing_codes=("NA",))})
    pd.testing.assert_frame_equal(raw, before)


def test_string_missing_ranges():
    m = VariableMeta("s", storage="string", missing_ranges=(("X", "Z"),))
    col = pd.Series(["A", "Y", None, "Z"], dtype=object)
    assert declared_missing_mask(col, m).tolist() == [False, True, False, True]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.integers(-20, 120).map(float)), max_size=40),
       codes=st.lists(st.integers(-20, 120), max_size=3, unique=True),
       rng=st.one_of(st.none(), st.tuples(st.integers(-20, 0), st.integers(0, 120))))
def test_vectorised_mask_agrees_with_the_cell_rule(values, codes, rng):
    m = VariableMeta("x", missing_codes=tuple(codes), missing_ranges=(rng,) if rng else ())
    col = pd.Series(values, dtype=float)
    expected = [m.is_declared_missing(v) for v in col]
    assert declared_missing_mask(col, m).tolist() == expected
    s = Survey.from_raw(pd.DataFrame({"x": col}), {"x": m})
    # nothing becomes missing without a record, and raw() gives the input back
    assert (s.data["x"].isna() & col.notna()).sum() == (s.missing["x"].notna().sum() if "x" in s.missing else 0)
    np.testing.assert_array_equal(s.raw()["x"].to_numpy(dtype=float), col.to_numpy(dtype=float))


@pytest.mark.parametrize("fmt", ["sav", "parquet", "csv"])
def test_open_ended_spss_range_round_trips(tmp_path, fmt):
    import pyreadstat

    src = tmp_path / "lo.sav"
    pyreadstat.write_sav(pd.DataFrame({"x": [1.0, -5.0, 7.0]}), str(src),
                         missing_ranges={"x": [{"lo": float("-inf"), "hi": -1.0}]})
    s = read_survey(src)
    assert s.variable("x").missing_ranges == ((float("-inf"), -1),)
    assert s.missing["x"].tolist() == [None, -5, None]
    assert s.codebook().loc[0, "missing_codes"] == "lowest to -1"
    write_survey(s, tmp_path / f"back.{fmt}")
    back = read_survey(tmp_path / f"back.{fmt}")
    assert back.variable("x").missing_ranges == s.variable("x").missing_ranges
    assert back.missing["x"].tolist() == [None, -5, None]
