"""write_survey -> read_survey gives back the same values, labels and missing declarations."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from conftest import LABELLED, need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimstats.errors import CimstatsWarning, SurveyWriteError
from cimstats.io import Survey, VariableMeta, read_survey, write_survey


def _cells(col: pd.Series) -> list:
    out = []
    for v in col.astype(object).tolist():
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return [int(v) if isinstance(v, float) and v.is_integer() else v for v in out]


def assert_same_survey(a: Survey, b: Survey, *, measures: bool = True, labels: bool = True) -> None:
    assert a.variables == b.variables
    assert len(a) == len(b)
    for name in a.variables:
        ma, mb = a.variable(name), b.variable(name)
        assert _cells(a.data[name]) == _cells(b.data[name]), name
        rec_a = a.missing[name].tolist() if name in a.missing.columns else [None] * len(a)
        rec_b = b.missing[name].tolist() if name in b.missing.columns else [None] * len(b)
        assert _cells(pd.Series(rec_a, dtype=object)) == _cells(pd.Series(rec_b, dtype=object)), name
        assert ma.value_labels == mb.value_labels, name
        assert list(ma.value_labels) == list(mb.value_labels), name  # code order
        assert ma.missing_codes == mb.missing_codes, name
        assert ma.missing_ranges == mb.missing_ranges, name
        if labels:
            assert ma.label == mb.label, name
        if measures:
            assert ma.measure == mb.measure, name
        assert ma.storage == mb.storage, name


def _quiet_write(s, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CimstatsWarning)
        write_survey(s, path, **kw)


# -- generated labelled surveys ---------------------------------------------------------------
LABEL_TEXT = st.text(alphabet="abcdefghij klmnopqrsté øüßABC", min_size=1, max_size=20).map(str.strip).filter(bool)
MISSING_POOL = [-9, -8, -1, 97, 98, 99]


@st.composite
def labelled_surveys(draw):
    n = draw(st.integers(1, 25))
    k = draw(st.integers(1, 4))
    raw, meta = {}, {}
    for j in range(k):
        name = f"q{j + 1}"
        codes = tuple(sorted(draw(st.lists(st.sampled_from(MISSING_POOL), max_size=3, unique=True))))
        valid = [1, 2, 3, 4, 5]
        cell = st.one_of(st.sampled_from(valid), st.sampled_from(codes) if codes else st.nothing(), st.none())
        raw[name] = [draw(cell) for _ in range(n)]
        labelled = draw(st.lists(st.sampled_from(valid + list(codes)), unique=True, max_size=7))
        meta[name] = VariableMeta(
            name,
            label=draw(st.none() | LABEL_TEXT),
            value_labels={c: draw(LABEL_TEXT) for c in labelled},
            measure=draw(st.sampled_from([None, "nominal", "ordinal", "scale"])),
            missing_codes=codes,
        )
    raw["comment"] = [draw(st.sampled_from(["ok", "late", "Zürich", "n/a"])) for _ in range(n)]
    meta["comment"] = VariableMeta("comment", label="Free text", storage="string", measure="nominal")
    df = pd.DataFrame({c: pd.Series(v, dtype=float) for c, v in raw.items() if c != "comment"})
    df["comment"] = pd.Series(raw["comment"], dtype=object)
    return Survey.from_raw(df, meta)


@pytest.mark.parametrize("fmt", ["sav", "zsav", "dta", "parquet", "csv"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=labelled_surveys())
def test_generated_labelled_surveys_round_trip(fmt, s, tmp_path):
    path = tmp_path / f"gen.{fmt}"
    _quiet_write(s, path)
    back = read_survey(path)
    assert_same_survey(s, back, measures=fmt != "dta")
    # and once more: a file read back writes the same file again
    path2 = tmp_path / f"gen2.{fmt}"
    _quiet_write(back, path2)
    assert_same_survey(back, read_survey(path2), measures=fmt != "dta")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=labelled_surveys())
def test_generated_sav_to_dta_to_sav_is_lossless(s, tmp_path):
    _quiet_write(s, tmp_path / "a.sav")
    a = read_survey(tmp_path / "a.sav")
    _quiet_write(a, tmp_path / "b.dta")
    b = read_survey(tmp_path / "b.dta")
    assert_same_survey(a, b, measures=False)
    _quiet_write(b, tmp_path / "c.sav")
    assert_same_survey(b, read_survey(tmp_path / "c.sav"), measures=False)


# -- shared real files -------------------------------------------------------------------------
SAV_FILES = ["basic_sample_missing.sav", "missing_data_missing_test.sav", "basic_sample.sav",
             "multiple_response_simple_alltypes.sav", "missing_data_missing_char.sav"]


@pytest.mark.parametrize("name", SAV_FILES)
@pytest.mark.parametrize("fmt", ["sav", "zsav", "parquet", "csv"])
def test_shared_sav_round_trips(name, fmt, tmp_path):
    s = read_survey(need(LABELLED / "pyreadstat" / name))
    out = tmp_path / f"out.{fmt}"
    write_survey(s, out)
    assert_same_survey(s, read_survey(out))


@pytest.mark.parametrize("name", ["basic_sample_missing.sav", "missing_data_missing_test.sav",
                                  "multiple_response_simple_alltypes.sav", "labelled-num-na.sav", "umlauts.sav"])
def test_shared_sav_to_dta_round_trips(name, tmp_path):
    folder = "haven" if name in ("labelled-num-na.sav", "umlauts.sav") else "pyreadstat"
    s = read_survey(need(LABELLED / folder / name))
    keep = [n for n, m in s.meta.items() if not (m.storage == "string" and m.value_labels)]
    s = s.select(keep)
    ranges = any(m.missing_ranges for m in s.meta.values())
    out = tmp_path / "out.dta"
    if ranges:
        with pytest.raises(SurveyWriteError, match="missing range .*expand_ranges=True"):
            _quiet_write(s, out)
        assert not out.exists()
        _quiet_write(s, out, expand_ranges=True)
        back = read_survey(out)
        for n in s.variables:  # values and which cells were which code survive; the range becomes codes
            assert _cells(s.data[n]) == _cells(back.data[n])
            if n in s.missing.columns:
                assert _cells(s.missing[n]) == _cells(back.missing[n])
            assert {k: v for k, v in s.variable(n).value_labels.items()} == back.variable(n).value_labels
    else:
        _quiet_write(s, out)
        assert_same_survey(s, read_survey(out), measures=False)


@pytest.mark.parametrize("name", ["tagged-na-double.dta", "tagged-na-int.dta", "types.dta", "iris.dta"])
@pytest.mark.parametrize("fmt", ["dta", "parquet", "csv"])
def test_shared_dta_round_trips(name, fmt, tmp_path):
    s = read_survey(need(LABELLED / "haven" / name))
    out = tmp_path / f"out.{fmt}"
    write_survey(s, out)
    back = read_survey(out)
    if name == "types.dta" and fmt == "dta":
        # Stata stores the byte/int/long/float distinctions; values must agree
        assert_same_survey(s, back)
    else:
        assert_same_survey(s, back)


def test_stata_extended_missing_to_spss_needs_a_map(tmp_path):
    s = read_survey(need(LABELLED / "haven" / "tagged-na-double.dta"))
    with pytest.raises(SurveyWriteError, match=r"'x'.*extended missing.*missing_map"):
        write_survey(s, tmp_path / "x.sav")
    assert list(tmp_path.iterdir()) == []
    write_survey(s, tmp_path / "x.sav", missing_map={".a": -91, ".h": -98, ".z": -99})
    back = read_survey(tmp_path / "x.sav")
    assert back.variable("x").missing_codes == (-91, -98, -99)
    assert back.variable("x").value_labels == {-99: ".zebra", -91: "apple"}
    mapping = {".a": -91, ".h": -98, ".z": -99}
    assert back.missing["x"].dropna().tolist() == [mapping[c] for c in s.missing["x"].dropna()]
    assert _cells(back.data["x"]) == _cells(s.data["x"])


def test_spss_codes_in_stata_are_labelled_with_their_code(tmp_path):
    s = read_survey(need(LABELLED / "haven" / "labelled-num-na.sav"))
    _quiet_write(s, tmp_path / "x.dta")
    _, meta = pyreadstat.read_dta(str(tmp_path / "x.dta"), user_missing=True)
    name = s.variables[0]
    assert meta.missing_user_values[name] == ["a"]
    assert meta.variable_value_labels[name]["a"] == "[code 9]"


def test_measure_levels_lost_in_stata_are_announced(tmp_path):
    s = Survey(pd.DataFrame({"x": [1.0, 2.0]}), {"x": VariableMeta("x", measure="ordinal")})
    with pytest.warns(CimstatsWarning, match=r"measure levels.*\(x\)"):
        write_survey(s, tmp_path / "x.dta")


@pytest.mark.parametrize("fmt", ["por", "xpt"])
def test_portable_and_transport_files_hold_labels_only(fmt, tmp_path):
    s = Survey(pd.DataFrame({"AGE": [50.0, 61.0], "SEX": [1.0, 2.0]}),
               {"AGE": VariableMeta("AGE", label="Age in years")})
    write_survey(s, tmp_path / f"x.{fmt}")
    back = read_survey(tmp_path / f"x.{fmt}")
    assert _cells(back.data["AGE"]) == [50, 61] and back.variable("AGE").label == "Age in years"
    labelled = Survey(s.data, {"SEX": VariableMeta("SEX", value_labels={1: "Male"})})
    with pytest.raises(SurveyWriteError, match=r"'SEX' has value labels"):
        write_survey(labelled, tmp_path / f"y.{fmt}")


@pytest.mark.parametrize("survey,fmt,match", [
    (Survey(pd.DataFrame({"s": ["a", "b"]}), {"s": VariableMeta("s", storage="string", value_labels={"a": "A"})}),
     "dta", "String variable 's' has value labels"),
    (Survey(pd.DataFrame({"x": [1.0]}), {"x": VariableMeta("x", missing_codes=(1, 2, 3, 4))}),
     "sav", "at most three codes"),
    (Survey(pd.DataFrame({"x": [1.0]}), {"x": VariableMeta("x", value_labels={1.5: "half"})}),
     "dta", "whole numbers"),
    (Survey(pd.DataFrame({"Sepal.Length": [1.0]})), "dta", "'Sepal.Length' is not allowed.*Sepal_Length"),
    (Survey(pd.DataFrame({"x": [1.0]}), {"x": VariableMeta("x", missing_codes=tuple(range(100, 127)))}),
     "dta", "more than the 26"),
])
def test_what_a_format_cannot_hold_is_refused(survey, fmt, match, tmp_path):
    with pytest.raises(SurveyWriteError, match=match):
        write_survey(survey, tmp_path / f"x.{fmt}")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_existing_file_untouched(tmp_path, monkeypatch):
    target = tmp_path / "x.sav"
    target.write_bytes(b"old content")

    def half_write(df, path, **kw):
        with open(path, "wb") as fh:
            fh.write(b"$FL2 half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pyreadstat, "write_sav", half_write)
    with pytest.raises(SurveyWriteError, match="'x.sav'.*disk full.*nothing was written"):
        write_survey(Survey(pd.DataFrame({"x": [1.0]})), target)
    assert target.read_bytes() == b"old content"
    assert sorted(os.listdir(tmp_path)) == ["x.sav"]


def test_labels_too_long_for_the_format_are_refused_not_cut(tmp_path):
    s = Survey(pd.DataFrame({"x": [1.0]}), {"x": VariableMeta("x", label="x" * 300)})
    with pytest.raises(SurveyWriteError, match="label of variable 'x' is 300 bytes.*at most 256"):
        write_survey(s, tmp_path / "x.sav")
    with pytest.raises(SurveyWriteError, match="at most 80"):
        write_survey(s, tmp_path / "x.dta")
    write_survey(s, tmp_path / "x.parquet")
    assert read_survey(tmp_path / "x.parquet").variable("x").label == "x" * 300


def test_parquet_keeps_stata_codes_beside_the_values(tmp_path):
    import pyarrow.parquet as pq

    s = read_survey(need(LABELLED / "haven" / "tagged-na-int.dta"))
    write_survey(s, tmp_path / "x.parquet")
    table = pq.read_table(tmp_path / "x.parquet")
    assert "__missing__x" in table.column_names and b"cimstats" in table.schema.metadata
    back = read_survey(tmp_path / "x.parquet")
    assert back.variables == ["x"]


def test_spss_codes_stay_visible_in_parquet_for_other_tools(tmp_path):
    s = read_survey(need(LABELLED / "pyreadstat" / "basic_sample_missing.sav"))
    write_survey(s, tmp_path / "x.parquet")
    plain = pd.read_parquet(tmp_path / "x.parquet")
    assert _cells(plain["mynum"]) == _cells(s.raw()["mynum"])


def test_dataframe_writes_without_metadata(tmp_path):
    write_survey(pd.DataFrame({"a": [1, 2]}), tmp_path / "x.sav")
    assert _cells(read_survey(tmp_path / "x.sav").data["a"]) == [1, 2]
