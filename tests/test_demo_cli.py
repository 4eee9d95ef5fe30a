"""Writing the demo files: layout, readable labelled files, atomic output, the ``cimstats demo`` command."""

from __future__ import annotations

import json

import pandas as pd
import pyreadstat
import pytest
import yaml

from cimstats.datasets import (
    DemoOutputError, coded_excerpts, demo_study, planted_truth, raw_variable_map, write_demo_files,
)
from cimstats.datasets._write import STEPS

from test_datasets import _compare, harmonise_by_map

SEED = 5


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    return write_demo_files(out, seed=SEED)


def test_layout_and_summary(written):
    out = written.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["SCHEMA.md", "qualitative", "raw", "summary.md",
                                                     "summary.txt", "truth"]
    raw = sorted(p.name for p in (out / "raw").iterdir())
    assert len(raw) == 24
    assert sum(n.endswith(".sav") for n in raw) >= 2 and sum(n.endswith(".dta") for n in raw) >= 2
    text = (out / "summary.txt").read_text(encoding="utf-8")
    assert text == written.text and "1700 patients at baseline" in text
    assert "| ALL |" in (out / "summary.md").read_text(encoding="utf-8")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]  # no temporary folders left


def test_truth_and_qualitative_files(written):
    out = written.out_dir
    doc = json.loads((out / "truth" / "planted_truth.json").read_text(encoding="utf-8"))
    assert doc["seed"] == SEED
    assert doc["parameters"] == json.loads(json.dumps(planted_truth()))
    assert doc["realised"][-1]["country"] == "ALL"
    book = yaml.safe_load((out / "qualitative" / "themes.yaml").read_text(encoding="utf-8"))
    assert len(book["themes"]) == 3 and len(book["mechanisms"]) == 3
    x = pd.read_csv(out / "qualitative" / "coded_excerpts.csv", keep_default_na=False)
    assert x["participant_id"].tolist() == coded_excerpts()["participant_id"].tolist()
    assert set(x["country"]) == {"EN", "NL", "NO", "ES", "GR", "BG"}


def test_files_carry_documented_names_labels_and_missing_codes(written):
    vmap = raw_variable_map()
    for path in sorted((written.out_dir / "raw").iterdir()):
        read = pyreadstat.read_sav if path.suffix == ".sav" else pyreadstat.read_dta
        df, meta = read(str(path), user_missing=True)
        rows = vmap[vmap["files"].str.split(";").map(lambda fs, n=path.name: n in fs) & vmap.raw_name.notna()]
        rows = rows.drop_duplicates("raw_name")
        assert list(df.columns) == rows.raw_name.tolist(), path.name
        for r in rows.itertuples():
            assert meta.column_names_to_labels[r.raw_name] == r.label
            got = {float(k) if not isinstance(k, str) else k: v
                   for k, v in meta.variable_value_labels.get(r.raw_name, {}).items()}
            want = {float(k) if not isinstance(k, str) else k: v for k, v in r.value_labels.items()}
            if path.suffix == ".dta":
                # Stata declares a missing code only through a label: a documented code that no
                # cell holds and that has no label of its own is kept as "[declared missing]"
                kept = {k for k, v in got.items() if v == "[declared missing]" and k not in want}
                documented = {str(c).lstrip(".") for c in r.missing_codes.values()}
                assert {str(k).lstrip(".") for k in kept} <= documented, (path.name, r.raw_name)
                got = {k: v for k, v in got.items() if k not in kept}
            assert got == want, (path.name, r.raw_name)
            if path.suffix == ".sav":
                declared = meta.missing_ranges.get(r.raw_name, [])
                if r.missing_range:
                    assert declared == [{"lo": lo, "hi": hi} for lo, hi in r.missing_range]
                else:
                    codes = {d["lo"] for d in declared}
                    assert codes == {float(c) for c in r.missing_codes.values()}, (path.name, r.raw_name)
            else:
                letters = set(meta.missing_user_values.get(r.raw_name, []))
                assert letters <= {c.lstrip(".") for c in r.missing_codes.values()}, (path.name, r.raw_name)


def test_files_harmonise_back_to_the_study(written):
    frames = {}
    for path in (written.out_dir / "raw").iterdir():
        read = pyreadstat.read_sav if path.suffix == ".sav" else pyreadstat.read_dta
        frames[path.name] = read(str(path))[0]
    study = demo_study(SEED)
    _compare(study.patients, harmonise_by_map(frames, "patients"), ["patient_id", "wave"])
    _compare(study.alters, harmonise_by_map(frames, "alters"), ["alter_id", "wave"])


def test_existing_output_is_refused_then_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DemoOutputError, match="not empty"):
        write_demo_files(out, seed=1, steps=STEPS[1:2])
    assert (out / "keep.txt").exists()
    write_demo_files(out, seed=1, overwrite=True, steps=STEPS[1:2])
    assert not (out / "keep.txt").exists() and (out / "qualitative" / "themes.yaml").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DemoOutputError, match="is a file"):
        write_demo_files(tmp_path / "afile", seed=1)


def test_failed_run_leaves_nothing(tmp_path):
    def broken(study, root):
        (root / "half.csv").write_text("partial")
        raise RuntimeError("disk full")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        write_demo_files(out, seed=1, steps=[STEPS[1], ("broken", broken)])
    assert list(tmp_path.iterdir()) == []


def test_cli_demo_reuses_an_earlier_run(cli, demo_run, tmp_path):
    import shutil

    out = tmp_path / "demo-output"
    shutil.copytree(demo_run, out)
    res = cli("demo", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "0 step(s) ran" in res.stdout and "report.html" in res.stdout and "joint_displays/" in res.stdout
    assert res.stderr == ""  # no progress lines when standard error is not a terminal


def test_cli_demo_refuses_a_foreign_folder(cli, tmp_path):
    out = tmp_path / "demo-output"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = cli("demo", "--out", str(out))
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "Traceback" not in res.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
