"""Outputs that can be trusted by hash: same survey, same bytes; missing text stays missing."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from cimstats.errors import CimstatsWarning
from cimstats.io import Survey, VariableMeta, read_survey, write_survey


def _survey() -> Survey:
    data = pd.DataFrame({"patient_id": ["P1", None, "P3", None], "age": [50.0, None, 61.0, 70.0],
                         "sex": [1.0, 2.0, 9.0, 1.0]})
    meta = {"patient_id": VariableMeta("patient_id", label="Patient", storage="string"),
            "age": VariableMeta("age", label="Age in years"),
            "sex": VariableMeta("sex", label="Sex", value_labels={1: "male", 2: "female", 9: "refused"},
                                missing_codes=(9,))}
    return Survey.from_raw(data, meta)


#: the fixed creation date each format's header carries (.por lines are cut every 80 characters)
STAMPS = {"sav": b"01 Jan 8000:00:00", "zsav": b"01 Jan 8000:00:00", "dta": b"01 Jan 1980 00:00",
          "por": b"8/198001016/000000", "xpt": b"01JAN80:00:00:0001JAN80:00:00:00"}


@pytest.mark.parametrize("ext", list(STAMPS))
def test_writing_the_same_survey_twice_gives_identical_bytes(tmp_path, ext):
    s = _survey() if ext in ("sav", "zsav", "dta") else Survey(pd.DataFrame({"AGE": [50.0, None, 61.0]}))
    a, b = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    write_survey(s, a)
    write_survey(s, b)
    assert a.read_bytes() == b.read_bytes()
    # the header date is fixed (not the time of writing), so runs on different days agree too
    assert STAMPS[ext] in a.read_bytes()[:1024].replace(b"\r\n", b"")
    back = read_survey(a)
    assert back.data[back.variables[-1] if ext in ("por", "xpt") else "age"].tolist()[:1] == [50.0]


@pytest.mark.parametrize("ext", ["sav", "zsav"])
def test_missing_text_reads_back_as_missing_and_is_counted(tmp_path, ext):
    p = tmp_path / f"ids.{ext}"
    write_survey(_survey(), p)
    back = read_survey(p)
    assert back.data["patient_id"].isna().tolist() == [False, True, False, True]
    cb = back.codebook().set_index("name")
    assert cb.loc["patient_id", "n_valid"] == 2
    assert cb.loc["patient_id", "n_declared_missing"] + cb.loc["patient_id", "n_system_missing"] == 2
    # and once more: the declaration survives a second round trip
    write_survey(back, tmp_path / f"again.{ext}")
    assert read_survey(tmp_path / f"again.{ext}").codebook().set_index("name").loc["patient_id", "n_valid"] == 2


def test_missing_text_beside_empty_text_is_not_silently_merged(tmp_path):
    s = Survey(pd.DataFrame({"note": ["", None, "x"]}), {"note": VariableMeta("note", storage="string")})
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        write_survey(s, tmp_path / "notes.sav")
    assert any(issubclass(w.category, CimstatsWarning) and "'note'" in str(w.message) for w in ws)
