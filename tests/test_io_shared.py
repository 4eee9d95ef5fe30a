"""read_survey against every real file in the shared labelled-files folder.

Truth comes from the files themselves and from what their own project ships:
pyreadstat's expected CSVs, and pyreadstat read in its two missing-value modes
(codes kept / codes set to NaN), which ``Survey.raw()`` and ``Survey.data``
must reproduce.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from conftest import LABELLED, need

from cimstats.errors import SurveyReadError
from cimstats.io import read_survey

READERS = {
    "sav": pyreadstat.read_sav, "zsav": pyreadstat.read_sav, "por": pyreadstat.read_por,
    "dta": pyreadstat.read_dta, "sas7bdat": pyreadstat.read_sas7bdat, "xpt": pyreadstat.read_xport,
}
OUT_OF_RANGE = {"datetime.sav"}  # the shared README: one file has an out-of-range datetime


def _files():
    if not LABELLED.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{LABELLED} is absent"))]
    files = sorted(p for p in LABELLED.rglob("*") if p.suffix.lstrip(".") in READERS)
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


FILES = _files()


def _cells(col: pd.Series) -> list:
    """Comparable cell values: missing -> None, whole floats -> int, numpy -> Python."""
    out = []
    for v in col.astype(object).tolist():
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, (np.generic,)):
            out.append(v.item())
        else:
            out.append(v)
    return [int(v) if isinstance(v, float) and v.is_integer() else v for v in out]


@pytest.mark.parametrize("path", FILES)
def test_every_file_reads_with_its_metadata(path):
    fmt = path.suffix.lstrip(".")
    if path.name in OUT_OF_RANGE:
        with pytest.raises(SurveyReadError, match=rf"'{path.name}'.*out.*range|'{path.name}'.*outside the range"):
            read_survey(path)
        s = read_survey(path, convert_dates=False)
        ref, meta = READERS[fmt](str(path), disable_datetime_conversion=True)
        assert s.shape == ref.shape
        return
    s = read_survey(path)
    kw = {"user_missing": True} if fmt in ("sav", "zsav", "dta", "sas7bdat") else {}
    ref, meta = READERS[fmt](str(path), **kw)
    assert s.variables == list(ref.columns)
    assert s.shape == ref.shape
    assert s.source.format == fmt and s.source.path == str(path)
    assert s.source.file_label == (meta.file_label or None)
    for name in s.variables:
        m = s.variable(name)
        assert m.label == (meta.column_names_to_labels.get(name) or None)
        # value labels: same labels, in code order
        theirs = meta.variable_value_labels.get(name, {})
        assert sorted(m.value_labels.values()) == sorted(theirs.values())
        keys = list(m.value_labels)
        numeric = [k for k in keys if not isinstance(k, str)]
        assert numeric == sorted(numeric)
        level = meta.variable_measure.get(name)
        assert m.measure == (level if level in ("nominal", "ordinal", "scale") else None)


@pytest.mark.parametrize("path", FILES)
def test_data_and_raw_match_pyreadstat_in_both_missing_modes(path):
    """``data`` == pyreadstat with codes as NaN; ``raw()`` == pyreadstat with codes kept."""
    if path.name in OUT_OF_RANGE:
        pytest.skip("out-of-range datetime: covered by the error-path test")
    fmt = path.suffix.lstrip(".")
    s = read_survey(path)
    plain, _ = READERS[fmt](str(path))
    for name in s.variables:
        assert _cells(s.data[name]) == _cells(plain[name]), name
    if fmt in ("sav", "zsav", "dta", "sas7bdat"):
        kept, _ = READERS[fmt](str(path), user_missing=True)
        raw = s.raw()
        for name in s.variables:
            expected = _cells(kept[name])
            if fmt in ("dta", "sas7bdat"):  # extended missing values are recorded with their dot
                expected = ["." + v if isinstance(v, str) and s.variable(name).storage != "string" else v
                            for v in expected]
            assert _cells(raw[name]) == expected, name
        # every declared-missing cell is recorded, none without a declaration
        for name in s.missing.columns:
            m = s.variable(name)
            rec = s.missing[name].dropna()
            assert all(m.is_declared_missing(v) for v in rec), name


def _expected_csv(name: str) -> pd.DataFrame:
    path = need(LABELLED / "pyreadstat" / name)
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


def _as_text(v) -> str:
    """How pyreadstat's expected CSVs print a value."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return ""
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return f"{v.hour}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    return str(v)


def _num_equal(a: str, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    except ValueError:
        return a == b


def _compare(frame: pd.DataFrame, expected: pd.DataFrame, null: str = "") -> None:
    frame = frame.rename(columns=str.lower)
    assert list(frame.columns) == list(expected.columns)
    for col in expected.columns:
        got = [_as_text(v) for v in frame[col].astype(object).tolist()]
        want = ["" if w == null else w for w in expected[col].tolist()]
        for g, w in zip(got, want):
            if col == "mytime" and ":" in w and g:
                # expected CSV prints 0:00:00 for midnight; compare times as seconds
                gh, gm, gs = g.split(":")
                wh, wm, ws = w.split(":")
                assert int(gh) * 3600 + int(gm) * 60 + float(gs) == int(wh) * 3600 + int(wm) * 60 + float(ws)
            else:
                assert g == w or _num_equal(g, w), (col, g, w)


@pytest.mark.parametrize("ext", ["sav", "zsav", "por", "dta", "sas7bdat", "xpt"])
def test_basic_sample_matches_expected_csv(ext):
    expected = _expected_csv("basic_sample.csv")
    s = read_survey(need(LABELLED / "pyreadstat" / f"basic_sample.{ext}"))
    _compare(s.data, expected)


@pytest.mark.parametrize("ext,csv", [("sav", "basic_sample_nodate_spss.csv"), ("zsav", "basic_sample_nodate_spss.csv"),
                                     ("dta", "basic_sample_nodate_sas_stata.csv"),
                                     ("sas7bdat", "basic_sample_nodate_sas_stata.csv")])
def test_dates_as_numbers_match_expected_csv(ext, csv):
    s = read_survey(need(LABELLED / "pyreadstat" / f"basic_sample.{ext}"), convert_dates=False)
    data = s.data.copy()
    if ext == "dta":  # Stata %tc datetimes count milliseconds; the expected CSV shows seconds
        data["dtime"] = data["dtime"] / 1000
        data["mytime"] = data["mytime"] / 1000
    _compare(data, _expected_csv(csv))


def test_spss_user_missing_match_expected_csvs():
    s = read_survey(need(LABELLED / "pyreadstat" / "basic_sample_missing.sav"))
    # analysis values: declared codes are missing, exactly as in the expected "missing" output
    _compare(s.data, _expected_csv("basic_sample_missing.csv"), null="#NULL!")
    # raw values: the codes come back, exactly as in the expected "user missing" output
    _compare(s.raw(), _expected_csv("basic_sample_missing_user.csv"), null="#NULL!")
    m = s.variable("mynum")
    assert m.missing_codes == (-1,) and m.missing_ranges == ((2000, 3000),)
    assert s.variable("myord").missing_codes == (-1, -2, -3)
    assert s.missing["mynum"].dropna().tolist() == [-1, 2500]


def test_spss_string_missing_matches_expected_csvs():
    s = read_survey(need(LABELLED / "pyreadstat" / "missing_data_missing_char.sav"))
    formatted = _expected_csv("missing_data_missing_char_formatted.csv")
    unformatted = _expected_csv("missing_data_missing_char_unformatted.csv")
    assert s.raw()["mychar"].tolist() == formatted["mychar"].tolist()
    got = ["NaN" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
           for v in s.data["mychar"].astype(object)]
    assert got == unformatted["mychar"].tolist()
    assert s.variable("mychar").missing_codes == ("Z",)


def test_stata_extended_missing_match_expected_csvs():
    s = read_survey(need(LABELLED / "pyreadstat" / "missing_data_missing_test.dta"))
    formatted = _expected_csv("missing_data_missing_dta_formatted.csv")
    labeled = _expected_csv("missing_data_missing_dta_labeled.csv")
    raw = s.raw()
    for col in formatted.columns:
        want = formatted[col].iloc[0]
        got = raw[col].iloc[0]
        if want == "NaN":
            assert got is None or (isinstance(got, float) and math.isnan(got))
        elif want.isalpha():
            assert got == "." + want and s.missing[col].iloc[0] == "." + want
            assert math.isnan(s.data[col].iloc[0])
            lab = s.variable(col).value_labels.get("." + want)
            assert (lab or want) == labeled[col].iloc[0]
        else:
            assert float(got) == float(want)


def test_tagged_na_keeps_each_tag():
    for name in ("tagged-na-double.dta", "tagged-na-int.dta"):
        path = need(LABELLED / "haven" / name)
        s = read_survey(path)
        kept, meta = pyreadstat.read_dta(str(path), user_missing=True)
        tags = ["." + v for v in kept["x"] if isinstance(v, str)]
        assert s.missing["x"].dropna().tolist() == tags
        assert set(s.variable("x").missing_codes) == {"." + t for t in meta.missing_user_values["x"]}
        assert {k: v for k, v in s.variable("x").value_labels.items()} == {
            "." + k: v for k, v in meta.variable_value_labels["x"].items()}


def test_value_labels_keep_code_order_and_measure():
    s = read_survey(need(LABELLED / "pyreadstat" / "basic_ordered_category.sav"))
    m = s.variable("Col1")
    assert m.measure == "ordinal"
    lab = s.labelled("Col1")
    assert list(lab.cat.categories) == [m.value_labels[k] for k in sorted(m.value_labels)]
    assert lab.cat.ordered


def test_non_latin_text_and_encodings():
    s = read_survey(need(LABELLED / "haven" / "umlauts.sav"))
    assert "ä" in s.variable("var1").label
    h = read_survey(need(LABELLED / "pyreadstat" / "basic_hebrews.sav"))
    assert h.variables[0] == pyreadstat.read_sav(str(LABELLED / "pyreadstat" / "basic_hebrews.sav"))[0].columns[0]
    t = read_survey(need(LABELLED / "pyreadstat" / "basic_tegulu.sav"))
    # the encoding's name is spelled as the reading library reports it (upper or lower case by version)
    assert t.variable(t.variables[1]).storage == "string" and t.source.encoding.upper() == "UTF-8"
    latin = read_survey(LABELLED / "pyreadstat" / "basic_sample.sav")
    assert latin.source.encoding.lower() == "windows-1252"


def test_dates_are_dates():
    s = read_survey(need(LABELLED / "haven" / "types.dta"))
    assert s.variable("vdate").storage == "date"
    assert s.variable("vdatetime").storage == "datetime"
    assert isinstance(s.data["vdate"].dropna().iloc[0], dt.date)
    t = read_survey(LABELLED / "pyreadstat" / "basic_sample.sav")
    assert t.variable("mytime").storage == "time"


def test_multiple_response_sets_and_ranges_are_recorded():
    s = read_survey(need(LABELLED / "pyreadstat" / "multiple_response_simple_alltypes.sav"))
    assert any("mymrset" in n and "bool1" in n for n in s.source.notes)
    z = s.variable("z")
    assert z.missing_codes == (999,) and z.missing_ranges == ((-999, 0),)
    assert s.variable("x").missing_codes == (7, 8, 99)


def test_columns_and_rows_subset():
    path = need(LABELLED / "pyreadstat" / "basic_sample_missing.sav")
    s = read_survey(path, columns=["myord", "mynum"], row_offset=5, row_limit=2)
    assert s.variables == ["myord", "mynum"] and len(s) == 2
    assert s.missing["mynum"].tolist() == [-1, 2500]
