"""The shipped demo dictionary harmonises the demo study's country files cleanly, and matches the known targets."""

from __future__ import annotations

import filecmp
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimstats.dictionary import check_dictionary, demo_dictionary_path, harmonise, read_dictionary
from cimstats.io import read_survey, write_survey

ROOT = Path(__file__).resolve().parents[1]
DICT = ROOT / "data-dictionary"
SEED = 1

datasets = pytest.importorskip("cimstats.datasets")


@pytest.fixture(scope="module")
def demo():
    study = datasets.demo_study(seed=SEED)
    raw = study.raw_surveys()
    return study, {name.rsplit(".", 1)[0]: s for name, s in raw.items()}, raw


@pytest.fixture(scope="module")
def result(demo):
    _, surveys, _ = demo
    return harmonise(surveys, read_dictionary(DICT))


def test_package_copy_is_identical_to_the_dictionary_folder():
    pkg = demo_dictionary_path()
    names = sorted(p.name for p in DICT.glob("*.csv"))
    assert names == ["categories.csv", "mappings.csv", "studies.csv", "variables.csv"]
    assert sorted(p.name for p in pkg.glob("*.csv")) == names
    match, mismatch, errors = filecmp.cmpfiles(DICT, pkg, names, shallow=False)
    assert not mismatch and not errors, f"copy data-dictionary/*.csv to {pkg} ({mismatch})"


def test_demo_dictionary_checks_clean():
    rep = check_dictionary(DICT)
    assert len(rep) == 0, rep.summary()


def test_demo_harmonises_to_an_all_complete_report(result, demo):
    assert result.report.all_complete, result.report.summary()
    assert len(result.report.issues) == 0
    _, surveys, _ = demo
    assert result.rows == {k: len(v) for k, v in surveys.items()}  # rows in = rows out, per file
    assert set(result.surveys) == {"patients", "alters", "alter_ties"}
    t = result.report.table
    per = t.assign(total=t["n_valid"] + t.filter(like="n_").drop(columns=["n_rows", "n_valid"]).sum(axis=1))
    assert (per["total"] == per["n_rows"]).all()


def test_demo_harmonisation_is_fast(demo):
    _, surveys, _ = demo
    d = read_dictionary(DICT)
    t0 = time.perf_counter()
    harmonise(surveys, d)
    assert time.perf_counter() - t0 < 5  # about 0.3 s on an idle machine; generous for shared CI runners


@pytest.mark.parametrize("table,key", [("patients", ["patient_id", "wave"]), ("alters", ["alter_id", "wave"]),
                                       ("alter_ties", ["alter_a", "alter_b", "wave"])])
def test_demo_matches_the_generator_targets(result, demo, table, key):
    study, _, _ = demo
    truth = getattr(study, table).set_index(key).sort_index()
    got = result[table].data.assign(wave=lambda f: f["wave"].astype("int64")).set_index(key).sort_index()
    assert got.index.equals(truth.index)
    for col in truth.columns:
        x, y = got[col], truth[col]
        if pd.api.types.is_numeric_dtype(y):
            x = x.astype(float).to_numpy()
            y = y.astype(float).to_numpy()
            both = ~np.isnan(x) & ~np.isnan(y)
            np.testing.assert_allclose(x[both], y[both], rtol=1e-9, atol=1e-9, err_msg=col)
            np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=col)
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), col


def test_demo_labels_come_from_the_dictionary(result):
    p = result["patients"]
    assert p.variable("deprivation_q").value_labels[1] == "Q1 most deprived"
    assert p.variable("hba1c_mmol").label == "Latest HbA1c (IFCC, mmol/mol)"
    assert p.data.columns.tolist()[:5] == ["study", "country", "wave", "patient_id", "area_id"]


def test_cli_harmonise_writes_data_and_report(tmp_path, demo, cli):
    _, _, raw = demo
    rawdir = tmp_path / "raw"
    rawdir.mkdir()
    for name, s in raw.items():
        write_survey(s, rawdir / name)
    out = tmp_path / "harmonised.sav"
    r = cli("harmonise", "--dictionary", str(DICT), "--data-dir", str(rawdir), "--out", str(out))
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == ["harmonised_alter_ties.sav", "harmonised_alters.sav", "harmonised_patients.sav",
                     "harmonised_report.xlsx"]
    back = read_survey(tmp_path / "harmonised_patients.sav")
    assert len(back) == len(demo[0].patients)
    assert pd.read_excel(tmp_path / "harmonised_report.xlsx", sheet_name="summary")["status"].eq("complete").all()
    r = cli("harmonise", "--dictionary", str(DICT), "--data-dir", str(rawdir), "--out", str(tmp_path / "h.dta"),
            "--report", str(tmp_path / "h.html"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert read_survey(tmp_path / "h_alters.dta").data["alter_id"].str.match(r"^[A-Z]{2}-\d{4}-A\d{2}$").all()
    assert "<table>" in (tmp_path / "h.html").read_text(encoding="utf-8")
    # strict mode with a broken mapping: nothing written, exit 2
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in DICT.glob("*.csv"):
        (bad / f.name).write_text(f.read_text(encoding="utf-8").replace("se1,direct", "se_1,direct"), encoding="utf-8")
    out2 = tmp_path / "h2.parquet"
    r = cli("harmonise", "--dictionary", str(bad), "--data-dir", str(rawdir), "--out", str(out2), "--strict")
    assert r.returncode == 2 and "H202" in r.stderr
    assert not any(p.name.startswith("h2") or p.name.startswith(".h2") for p in tmp_path.iterdir())
