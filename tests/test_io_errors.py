"""Bad input: every failure is one SurveyReadError sentence naming the file and the remedy."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import LABELLED, need

from cimstats.errors import CimstatsError, SurveyReadError
from cimstats.io import Survey, read_survey, write_survey


def _one_sentence(msg: str) -> None:
    body = msg.rstrip(".")
    assert msg.endswith(".") and ". " not in body.replace("e.g. ", "").replace("i.e. ", ""), msg
    assert "\n" not in msg


@pytest.fixture
def sample_sav():
    return need(LABELLED / "pyreadstat" / "basic_sample_missing.sav")


@pytest.fixture
def sample_dta():
    return need(LABELLED / "pyreadstat" / "basic_sample.dta")


def _check(exc_info, name: str, *words: str) -> None:
    msg = str(exc_info.value)
    assert name in msg, msg
    for w in words:
        assert w in msg, msg
    _one_sentence(msg)


def test_missing_file(tmp_path):
    with pytest.raises(SurveyReadError) as e:
        read_survey(tmp_path / "nowhere.sav")
    _check(e, "nowhere.sav", "does not exist")
    assert isinstance(e.value, FileNotFoundError) or isinstance(e.value, OSError)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(SurveyReadError) as e:
        read_survey(tmp_path)
    _check(e, str(tmp_path), "folder")


@pytest.mark.parametrize("ext", ["sav", "dta", "csv", "parquet", "sas7bdat"])
def test_empty_file(tmp_path, ext):
    p = tmp_path / f"empty.{ext}"
    p.touch()
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "empty", "0 bytes", "export it again")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("source", ["pyreadstat/basic_sample_missing.sav", "pyreadstat/basic_sample.dta",
                                    "pyreadstat/basic_sample.zsav", "pyreadstat/basic_sample.sas7bdat",
                                    "pyreadstat/basic_sample.xpt", "pyreadstat/basic_sample.por"])
def test_truncated_files(tmp_path, source, keep):
    src = need(LABELLED / source)
    data = src.read_bytes()
    p = tmp_path / f"cut{src.suffix}"
    p.write_bytes(data[: int(len(data) * keep)])
    try:
        s = read_survey(p)
    except SurveyReadError as e:
        assert "cut" + src.suffix in str(e)
        _one_sentence(str(e))
    else:  # some formats hold whole rows in order: a cut may still parse, but never with invented rows
        full = read_survey(src)
        assert len(s) <= len(full)


def test_truncated_parquet(tmp_path):
    write_survey(Survey(pd.DataFrame({"x": range(100)})), tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SurveyReadError) as e:
        read_survey(tmp_path / "cut.parquet")
    _check(e, "cut.parquet", "Parquet")


def test_random_bytes(tmp_path):
    p = tmp_path / "junk.sav"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "junk.sav", "SPSS")


def test_wrong_extension_names_the_real_format(tmp_path, sample_dta):
    p = tmp_path / "wave1.sav"
    shutil.copy(sample_dta, p)
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "wave1.sav", "Stata", "format='dta'")
    assert len(read_survey(p, format="dta")) == 5


def test_text_saved_as_sav(tmp_path):
    p = tmp_path / "export.sav"
    p.write_text("id,age\n1,50\n")
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "export.sav", "plain text")


def test_unknown_extension(tmp_path, sample_sav):
    p = tmp_path / "data.txt"
    p.write_text("id,age\n1,50\n")
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "data.txt", "format=")
    assert read_survey(p, format="csv").data["age"].tolist() == [50]
    # binary content with an unknown extension is recognised by its bytes
    q = tmp_path / "wave1.bak"
    shutil.copy(sample_sav, q)
    assert read_survey(q).source.format == "sav"


def test_unknown_format_argument(sample_sav):
    with pytest.raises(SurveyReadError) as e:
        read_survey(sample_sav, format="xlsx")
    _check(e, "basic_sample_missing.sav", "xlsx")


def test_unknown_encoding(sample_sav):
    with pytest.raises(SurveyReadError) as e:
        read_survey(sample_sav, encoding="klingon")
    _check(e, "basic_sample_missing.sav", "klingon", "encoding")


def test_wrong_encoding_for_csv(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("name,town\nA,Zürich\n".encode("latin-1"))
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "latin.csv", "encoding=")
    assert read_survey(p, encoding="latin-1").data["town"].tolist() == ["Zürich"]


def test_out_of_range_datetime():
    p = need(LABELLED / "haven" / "datetime.sav")
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "datetime.sav", "convert_dates=False")
    s = read_survey(p, convert_dates=False)
    assert s.shape[0] == 2


def test_duplicate_names_in_csv(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("id,age,age\n1,50,51\n")
    with pytest.raises(SurveyReadError) as e:
        read_survey(p)
    _check(e, "dup.csv", "duplicate", "'age'")


def test_duplicate_names_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["age", "age"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(SurveyReadError) as e:
        read_survey(tmp_path / "dup.parquet")
    _check(e, "dup.parquet", "duplicate")


def test_unknown_columns(sample_sav):
    with pytest.raises(SurveyReadError) as e:
        read_survey(sample_sav, columns=["mynum", "agee"])
    _check(e, "basic_sample_missing.sav", "agee")


def test_errors_are_cimstats_errors_and_os_errors(tmp_path):
    with pytest.raises(CimstatsError):
        read_survey(tmp_path / "x.dta")
    with pytest.raises(OSError):
        read_survey(tmp_path / "x.dta")


@pytest.mark.parametrize("args,words", [
    (["nowhere.sav"], ["nowhere.sav", "does not exist"]),
    (["empty.dta"], ["empty.dta", "empty"]),
    (["wrong.sav"], ["wrong.sav", "Stata"]),
])
def test_cli_prints_one_sentence_without_traceback(cli, tmp_path, sample_dta, args, words):
    (tmp_path / "empty.dta").touch()
    shutil.copy(sample_dta, tmp_path / "wrong.sav")
    out = cli("inspect", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("cimstats: error: ")
    for w in words:
        assert w in out.stderr
    assert out.stderr.count("\n") == 1
