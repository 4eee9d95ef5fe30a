"""The analysis pipeline on the demo study: outputs, report, manifest, cache, dry run, bad plans, interrupted runs.

The whole demo analysis runs once per session (the ``demo_run`` fixture in
conftest); tests that need to change the folder work on a copy of it.
"""

from __future__ import annotations

import ast

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

import cimstats
from cimstats.errors import PlanError
from cimstats.pipeline import demo_plan, demo_plan_path, plan_steps, read_analysis_plan, run
from cimstats.pipeline import steps as S

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_copy(demo_run, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(demo_run, out)
    return out


def _plan_doc() -> dict:
    return yaml.safe_load(demo_plan_path().read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the plan
def test_shipped_plan_is_the_example_plan():
    assert (ROOT / "examples" / "demo_plan.yaml").read_text(encoding="utf-8") == \
        demo_plan_path().read_text(encoding="utf-8")
    p = demo_plan()
    assert [s.id for s in plan_steps(p)] == ["demo_files", "data", "scales", "networks", "mechanisms", "tables",
                                            "joint_displays", "figures", "report"]
    assert cimstats.run is run


def test_bad_plan_lists_every_problem_before_any_work(tmp_path):
    doc = _plan_doc()
    doc["sources"] = {"raw": "no-such-folder", "dictionary": "demo"}
    doc["instruments"].append("no_such_scale")
    doc["mechanisms"]["plan"] = {
        "models": {"m1": {"template": "lmx", "formula": "y ~ x"},
                   "m2": {"template": "lmm", "formula": "sm_score ~ diversity_typo + country + (1 | practice_id)"}},
        "constructs": {"sm_score": {"kind": "scale", "instrument": "heiq", "score": "self_monitoring_insight"}},
        "hypotheses": [{"id": "H1", "mechanism": "network_navigation", "model": "m1", "estimand": "x",
                        "expected": "positive"},
                       {"id": "H2", "mechanism": "network_navigation", "model": "m2", "estimand": "diversity_typo",
                        "expected": "positive"}]}
    doc["joint_displays"].append({"kind": "pie_chart"})
    doc["outputs"]["tables"] = ["csv", "pdf"]
    doc["seeds"]["data"] = "abc"
    out = tmp_path / "out"
    with pytest.raises(PlanError) as err:
        run(doc, out=out)
    codes = [i.code for i in err.value.report]
    messages = " ".join(i.message for i in err.value.report)
    assert {"P003", "P005", "M005", "P007", "P009", "P010", "P011"} <= set(codes)
    assert "no-such-folder" in messages and "'diversity_typo'" in messages and "pdf" in messages
    assert str(len(err.value.report.errors)) in str(err.value) and "nothing was run" in str(err.value)
    assert not out.exists()


def test_bad_plan_cli_one_report(cli, tmp_path):
    plan = tmp_path / "plan.yaml"
    doc = _plan_doc()
    doc["sources"] = {"raw": "raw-missing", "dictionary": "dictionary-missing"}
    doc["outputs"]["figures"] = ["gif"]
    plan.write_text(yaml.safe_dump(doc), encoding="utf-8")
    res = cli("run", str(plan), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "raw-missing" in res.stderr and "dictionary-missing" in res.stderr and "'gif'" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_plan_problems_in_yaml_and_paths(tmp_path):
    with pytest.raises(PlanError, match="does not exist"):
        read_analysis_plan(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(PlanError, match="not valid YAML"):
        read_analysis_plan(tmp_path / "bad.yaml")
    with pytest.raises(PlanError) as err:
        read_analysis_plan({"sources": {"demo": True, "dictionary": "demo"}, "unknown_section": 1})
    assert [i.code for i in err.value.report] == ["P001"]


# --------------------------------------------------------------------------- outputs
def test_outputs_present(demo_run):
    out = demo_run
    for rel in ("report.html", "manifest.json", "raw/NL_patients.sav", "data/patients.parquet", "data/patients.sav",
                "data/patients.dta", "data/alters.parquet", "harmonisation/report.xlsx", "harmonisation/report.html",
                "scales/scores.csv", "networks/ego_measures.csv", "mechanisms/mechanism_table.csv",
                "tables/mechanism_table.docx", "tables/mechanism_table.xlsx", "tables/mechanism_table.tex",
                "tables/mechanism_table.csv"):
        assert (out / rel).is_file(), rel
    kinds = ["side_by_side", "statistics_by_theme", "convergence", "themes_by_group", "case_oriented"]
    for k in kinds:
        for ext in ("csv", "docx", "xlsx", "tex", "html", "md"):
            assert (out / "joint_displays" / f"{k}.{ext}").is_file(), (k, ext)
    assert len(list((out / "raw").iterdir())) == 24
    table = pd.read_csv(out / "mechanisms/mechanism_table.csv")
    assert table["hypothesis_id"].tolist() == cimstats.mechanisms.default_plan().hypotheses["hypothesis_id"].tolist()
    assert table["verdict"].notna().all()
    assert not list((out / ".cache").glob("stage-*"))


def test_harmonised_data_keep_labels(demo_run):
    s = cimstats.read_survey(demo_run / "data" / "patients.sav")
    assert s.meta["sex"].value_labels and s.meta["sex"].label
    p = pd.read_parquet(demo_run / "data" / "patients.parquet")
    assert len(p) == s.shape[0] and {"patient_id", "country", "wave"} <= set(p.columns)


def test_figures_when_available(demo_run):
    idx = demo_run / "figures" / "index.csv"
    if not idx.is_file():
        pytest.skip("cimstats.render.figures is not part of this checkout")
    f = pd.read_csv(idx)
    assert set(f["kind"]) >= {"forest_plot", "caterpillar_plot", "path_diagram", "invariance_plot"}
    for r in f.itertuples():
        assert (demo_run / "figures" / f"{r.file}.svg").is_file() and (demo_run / "figures" / f"{r.file}.png").is_file()
        assert len(r.alt_text) > 20


def test_report_is_self_contained_and_accessible(demo_run):
    html = (demo_run / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    levels = [int(h) for h in re.findall(r"<h([1-6])\b", html)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), "a heading level is skipped"
    assert html.count("<table") == html.count("<caption>") > 10
    assert 'scope="col"' in html and 'scope="row"' in html
    for sid in ("harmonisation", "codebook", "mechanisms", "joint-displays"):
        assert f'id="{sid}"' in html
    for hyp in pd.read_csv(demo_run / "mechanisms/mechanism_table.csv")["hypothesis_id"]:
        assert hyp in html
    idx = pd.read_csv(demo_run / "joint_displays" / "index.csv")
    for title in idx["title"]:
        assert title.split(":")[0].replace("&", "&amp;") in html
    if (demo_run / "figures" / "index.csv").is_file():
        n = len(pd.read_csv(demo_run / "figures" / "index.csv"))
        assert html.count("<figure") == n and html.count('role="img"') >= n and html.count("<figcaption>") == n
    assert str(demo_run) not in html  # no machine paths


def test_manifest_records_the_run(demo_run):
    m = json.loads((demo_run / "manifest.json").read_text(encoding="utf-8"))
    assert m["cimstats_version"] == cimstats.__version__
    assert m["seeds"] == {"data": 20140601, "bootstrap": 20240601}
    assert "pandas" in m["packages"] and "numpy" in m["packages"]
    assert any(k.startswith("raw/") for k in m["inputs"]) and any(k.startswith("dictionary/") for k in m["inputs"])
    assert m["plan"]["text"] == demo_plan_path().read_text(encoding="utf-8")
    steps = {s["step"]: s for s in m["steps"]}
    assert set(steps) == {s.id for s in plan_steps(demo_plan())}
    assert all(s["seconds"] is not None for s in m["steps"])
    from cimstats.pipeline.cache import file_hash

    for rel, h in m["outputs"].items():
        assert file_hash(demo_run / rel) == h, rel
    assert "report.html" in m["outputs"]


# --------------------------------------------------------------------------- cache
def test_second_run_reruns_nothing(demo_copy):
    res = run("demo", out=demo_copy)
    assert res.ran == [] and res.cached == [s.id for s in plan_steps(demo_plan())]
    cols = ["step", "function", "description", "after", "inputs", "input_hash", "outputs", "status", "seconds", "info"]
    assert res.steps.columns.tolist() == cols
    assert (demo_copy / "manifest.json").is_file()


def test_editing_one_section_reruns_only_its_dependants(demo_copy):
    doc = _plan_doc()
    doc["joint_displays"] = [d for d in doc["joint_displays"] if d["kind"] != "convergence"]
    before = (demo_copy / "mechanisms/mechanism_table.csv").stat().st_mtime_ns
    res = run(doc, out=demo_copy)
    assert sorted(res.ran) == ["joint_displays", "report"]
    assert (demo_copy / "mechanisms/mechanism_table.csv").stat().st_mtime_ns == before
    assert not (demo_copy / "joint_displays/convergence.docx").exists()  # stale outputs of the step removed
    assert "convergence" not in pd.read_csv(demo_copy / "joint_displays/index.csv")["kind"].tolist()


def test_changed_output_file_is_not_trusted(demo_copy):
    (demo_copy / "tables/mechanism_table.tex").write_text("edited by hand", encoding="utf-8")
    res = run("demo", out=demo_copy)
    assert res.ran == ["tables"]
    assert "edited by hand" not in (demo_copy / "tables/mechanism_table.tex").read_text(encoding="utf-8")


def test_dry_run(demo_copy, tmp_path):
    fresh = run("demo", out=tmp_path / "new", dry_run=True)
    assert set(fresh.steps["status"]) == {"would run"} and not (tmp_path / "new").exists()
    assert "Dry run" in fresh.summary()
    doc = _plan_doc()
    doc["outputs"]["tables"] = ["csv", "tex"]
    res = run(doc, out=demo_copy, dry_run=True)
    status = dict(zip(res.steps["step"], res.steps["status"]))
    assert status["tables"] == "would run" and status["joint_displays"] == "would run"
    assert status["mechanisms"] == "cached" and status["report"] == "would run"
    assert (demo_copy / "tables/mechanism_table.docx").exists()  # nothing written


def test_cli_dry_run_and_refuses_foreign_folder(cli, tmp_path):
    res = cli("run", str(demo_plan_path()), "--out", str(tmp_path / "x"), "--dry-run")
    assert res.returncode == 0 and "would run" in res.stdout and not (tmp_path / "x").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep", encoding="utf-8")
    res = cli("run", str(demo_plan_path()), "--out", str(foreign))
    assert res.returncode == 2 and "not empty" in res.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


# --------------------------------------------------------------------------- interruption
def test_interrupted_step_publishes_nothing(demo_copy, monkeypatch):
    old_tex = (demo_copy / "tables/mechanism_table.tex").read_bytes()
    real = S.STEP_FUNCTIONS["tables"]

    def broken(ctx):
        real(ctx)  # every file is written to the staging folder ...
        (ctx.path("tables/half.csv")).write_text("partial", encoding="utf-8")
        raise KeyboardInterrupt  # ... then the run is stopped

    monkeypatch.setitem(S.STEP_FUNCTIONS, "tables", broken)
    doc = _plan_doc()
    doc["outputs"]["tables"] = ["csv", "tex", "md"]
    with pytest.raises(KeyboardInterrupt):
        run(doc, out=demo_copy)
    assert not (demo_copy / "tables/half.csv").exists()
    assert (demo_copy / "tables/mechanism_table.tex").read_bytes() == old_tex
    assert (demo_copy / "tables/mechanism_table.docx").exists()  # the previous complete output is untouched
    assert not (demo_copy / "manifest.json").exists()  # no manifest: the run did not finish
    assert not list((demo_copy / ".cache").glob("stage-*"))
    monkeypatch.setitem(S.STEP_FUNCTIONS, "tables", real)
    res = run(doc, out=demo_copy)
    assert "tables" in res.ran and "mechanisms" in res.cached
    assert not (demo_copy / "tables/mechanism_table.docx").exists()  # no longer asked for
    assert (demo_copy / "manifest.json").exists()


def test_failure_in_a_fresh_folder_leaves_only_finished_steps(tmp_path, monkeypatch):
    def broken(ctx):
        ctx.path("data/patients.parquet").write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")

    monkeypatch.setitem(S.STEP_FUNCTIONS, "harmonise", broken)
    doc = {"plan": "tiny", "sources": {"demo": True, "dictionary": "demo"}, "outputs": {"report": False}}
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        run(doc, out=out)
    assert not (out / "data").exists() and not (out / "manifest.json").exists()
    assert (out / ".cache" / "demo_files.json").is_file() and not (out / ".cache" / "data.json").exists()
    assert not list((out / ".cache").glob("stage-*"))


def test_raw_files_to_estimates_match_the_generated_study(demo_run):
    """Harmonising the written raw files loses nothing the models use: the pipeline's ego-level estimates equal
    those fitted to the generator's own harmonised tables."""
    import numpy as np

    from cimstats.datasets import demo_study
    from cimstats.mechanisms import default_plan

    doc = yaml.safe_load((ROOT / "src/cimstats/mechanisms/default_plan.yaml").read_text(encoding="utf-8"))
    doc["models"] = {"knowledge_navigation": doc["models"]["knowledge_navigation"]}
    doc["hypotheses"] = [h for h in doc["hypotheses"] if h["model"] == "knowledge_navigation"]
    direct = cimstats.test_mechanisms(demo_study(demo_plan().seeds["data"]), doc).table.set_index("hypothesis_id")
    piped = pd.read_csv(demo_run / "mechanisms/mechanism_table.csv").set_index("hypothesis_id")
    ids = direct.index.tolist()
    assert ids == ["NAV1", "NAV2"] and set(ids) <= set(piped.index)
    assert default_plan().models["knowledge_navigation"]["formula"] == doc["models"]["knowledge_navigation"]["formula"]
    for col in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value"):
        np.testing.assert_allclose(piped.loc[ids, col].to_numpy(float), direct.loc[ids, col].to_numpy(float),
                                   rtol=1e-8, atol=1e-12, err_msg=col)
    assert piped.loc[ids, "n"].tolist() == direct.loc[ids, "n"].astype(int).tolist()


def test_report_from_the_saved_results_equals_the_run(demo_run, tmp_path):
    """Results pass between steps as saved results: the report rebuilt from the saved folders alone (the readable
    mechanism CSVs removed) is the report the run wrote, and the saved mechanism result is the run's table."""
    import numpy as np

    from cimstats.mechanisms import MechanismResult
    from cimstats.models.mediation.results import MediationResult
    from cimstats.pipeline.report import build_report

    out = tmp_path / "saved-only"
    shutil.copytree(demo_run, out)
    for rel in ("mechanisms/mechanism_table.csv", "mechanisms/models.csv", "mechanisms/result.json",
                "mechanisms/summary.txt", "models/ce_mediation_mediation.json"):
        (out / rel).unlink()
    assert build_report(demo_plan(), out) == (demo_run / "report.html").read_text(encoding="utf-8")
    res = cimstats.load_result(demo_run / "mechanisms" / "saved")
    meta = json.loads((demo_run / "mechanisms/result.json").read_text(encoding="utf-8"))
    assert isinstance(res, MechanismResult) and res.plan_name == meta["plan"] and res.level == meta["level"]
    csv = pd.read_csv(demo_run / "mechanisms/mechanism_table.csv")
    assert res.table["hypothesis_id"].tolist() == csv["hypothesis_id"].tolist()
    assert res.table["verdict"].tolist() == csv["verdict"].tolist()
    for col in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value", "p_adjusted"):
        np.testing.assert_allclose(res.table[col].to_numpy(float), csv[col].to_numpy(float), rtol=1e-9,
                                   err_msg=col)
    assert (demo_run / "mechanisms/summary.txt").read_text(encoding="utf-8") == res.to_text() + "\n"
    med = cimstats.load_result(demo_run / "models" / "ce_mediation")
    terms = pd.read_csv(demo_run / "models/ce_mediation_terms.csv")
    assert isinstance(med, MediationResult) and med.tidy()["term"].tolist() == terms["term"].tolist()
    for col in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value"):
        np.testing.assert_allclose(med.tidy()[col].to_numpy(float), terms[col].to_numpy(float), rtol=1e-9,
                                   err_msg=col)


def test_own_files_and_relative_paths(demo_run, tmp_path, cli):
    """A user's project: raw files and a dictionary beside the plan, read relative to the plan's folder."""
    proj = tmp_path / "project"
    shutil.copytree(demo_run / "raw", proj / "raw")
    shutil.copytree(ROOT / "data-dictionary", proj / "dictionary")
    doc = {"plan": "own", "sources": {"raw": "raw", "dictionary": "dictionary"}, "instruments": ["semcd6"],
           "outputs": {"data": ["parquet", "dta"], "tables": ["csv", "md"], "figures": [], "report": True}}
    (proj / "plan.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    res = cli("run", str(proj / "plan.yaml"), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    assert (out / "data/patients.dta").is_file() and not (out / "data/patients.sav").exists()
    assert (out / "tables/reliability.md").is_file() and (out / "report.html").is_file()
    scores = pd.read_csv(out / "scales/scores.csv")
    assert "semcd" in scores.columns and len(scores) == len(pd.read_parquet(out / "data/patients.parquet"))
    # a study file the dictionary names is missing: reported before anything runs
    (proj / "raw" / "NL_patients.sav").unlink()
    with pytest.raises(PlanError) as err:
        run(proj / "plan.yaml", out=tmp_path / "out2")
    assert any("NL_patients.sav" in i.message and i.code == "P003" for i in err.value.report)


def test_case_display_expect_is_checked_with_the_plan(tmp_path):
    """A case-oriented display's `expect` (what a theme's quotes suggest about a survey value) is checked
    before any work: the shape, the side, the theme against the codebook and the column against the data."""
    doc = _plan_doc()
    case = next(d for d in doc["joint_displays"] if d["kind"] == "case_oriented")
    case["expect"] = {"T1": {"ce": "higher"}, "T9": {"ce": "high"}, "T2": {"no_such_column": "low"},
                      "T3": "high"}
    doc["joint_displays"].append({"kind": "side_by_side", "expect": {"T1": {"ce": "high"}}})
    out = tmp_path / "out"
    with pytest.raises(PlanError) as err:
        run(doc, out=out)
    msgs = [i.message for i in err.value.report if i.code in ("P009", "P007")]
    text = " ".join(msgs)
    assert "expect.T1.ce 'higher'; expected high or low" in text
    assert "'T9', which the codebook does not define" in text
    assert "expect.T3 'high'" in text
    assert "'no_such_column'" in text
    assert "only case_oriented displays use" in text
    assert not out.exists()
    good = _plan_doc()
    assert any("expect" in d for d in good["joint_displays"]), "the demo plan shows the option"
    read_analysis_plan(good)


def test_demo_case_display_flags_conflicts_by_the_plan(demo_run):
    """The demo plan's `expect: {T1: {ce: high}, T2: {size: high}}` flags a case when the quote shown for it
    (coded T1 or T2) sits beside a value below the median of the cases shown, and only then."""
    d = pd.read_csv(demo_run / "joint_displays/case_oriented.csv")
    med = {c: d[c].median() for c in ("ce", "size")}
    names = {"T1": ("ce", "Sharing knowledge"), "T2": ("size", "Accessing and mediation")}
    for r in d.itertuples():
        ts = str(r.themes).split(";")
        msgs = ast.literal_eval(r.conflicts)
        assert r.conflict == bool(msgs)
        for t, (col, name) in names.items():
            flagged = any(name in m for m in msgs)
            if flagged:  # a flag only where the value is on the other side
                assert t in ts and getattr(r, col) < med[col]
            if ts == [t]:  # a single theme: its quote is the one shown
                assert flagged == (getattr(r, col) < med[col])
    assert 0 < d["conflict"].sum() < len(d)


def test_harmonised_dataset_as_source(demo_run, tmp_path):
    doc = {"plan": "from-harmonised",
           "sources": {"harmonised": {"patients": str(demo_run / "data/patients.parquet"),
                                      "alters": str(demo_run / "data/alters.parquet"),
                                      "alter_ties": str(demo_run / "data/alter_ties.parquet")}},
           "instruments": [{"instrument": "heiq", "scores": ["self_monitoring_insight"]}],
           "networks": {"measures": ["size", "heterogeneity", "brokerage"], "change": False},
           "outputs": {"data": ["parquet"], "tables": ["csv"], "figures": [], "report": False}}
    res = run(doc, out=tmp_path / "out")
    assert res.steps["step"].tolist() == ["data", "scales", "networks", "tables"]
    m = pd.read_csv(tmp_path / "out/networks/ego_measures.csv")
    assert {"size", "n_tie_types", "blau", "n_liaison"} <= set(m.columns) and "weak_tie_share" not in m.columns
    bad = dict(doc, joint_displays=[{"kind": "case_oriented", "profile": {"no_such_column": "x"}}])
    with pytest.raises(PlanError) as err:
        run(bad, out=tmp_path / "out3")
    codes = {i.code for i in err.value.report}
    assert {"P007", "P009"} <= codes  # unknown column; display without a qualitative section
