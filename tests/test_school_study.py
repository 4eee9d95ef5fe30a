"""A user's own two studies, end to end: the London schools example (examples/school_study/).

Two teams coded the same public data set (mlmRev's Exam, exported once to
examples/school_study/data/exam.csv) differently; a data dictionary written by
the user harmonises them, and a user-written plan with its own mechanisms,
two-level models, a construct and invented themes runs through ``cimstats run``.
The tutorial docs/tutorial-own-study.md is executed block by block.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT

import cimstats
from cimstats.cli.main import main as cli
from cimstats.errors import PlanError
from cimstats.pipeline import read_analysis_plan

SCHOOL = ROOT / "examples" / "school_study"
TUTORIAL = ROOT / "docs" / "tutorial-own-study.md"
USER_FILES = ("plan.yaml", "mechanisms.yaml", "themes.yaml", "excerpts.csv", "reviews.csv")


def _builder():
    spec = importlib.util.spec_from_file_location("school_build_studies", SCHOOL / "build_studies.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cli(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli([str(a) for a in argv])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """The user's folder: plan, mechanism plan, themes, excerpts, dictionary and the two raw files."""
    root = tmp_path_factory.mktemp("school")
    for name in USER_FILES:
        shutil.copy(SCHOOL / name, root / name)
    shutil.copytree(SCHOOL / "dictionary", root / "dictionary")
    _builder().build_studies(root / "raw")
    return root


@pytest.fixture(scope="module")
def run_result(study):
    return cimstats.run(study / "plan.yaml", out=study / "output", progress=False)


def _exam() -> pd.DataFrame:
    d = pd.read_csv(SCHOOL / "data" / "exam.csv")
    d["k"] = d.groupby("school").cumcount() + 1
    team = np.where(d["school"] % 2 == 1, "NL", "EN")
    d["pupil_id"] = [f"{t}-{s:02d}-{k:03d}" for t, s, k in zip(team, d["school"], d["k"])]
    return d


# ------------------------------------------------------------------------------------------ the two files
def test_the_two_files_are_coded_differently(study):
    nl = cimstats.read_survey(study / "raw" / "nl_scholen.sav")
    en = cimstats.read_survey(study / "raw" / "en_schools.dta")
    exam = pd.read_csv(SCHOOL / "data" / "exam.csv")
    assert len(nl) + len(en) == len(exam) == 4059
    nl_schools, en_schools = set(nl.data["schoolnr"]), set(en.data["school_no"])
    assert not nl_schools & en_schools and len(nl_schools | en_schools) == exam["school"].nunique() == 65
    assert dict(nl.variable("geslacht").value_labels) == {0: "jongen", 1: "meisje"}
    assert dict(en.variable("sex").value_labels) == {1: "girl", 2: "boy"}
    assert nl.variable("verbaal").missing_codes == (9,)
    assert int((nl.missing["verbaal"] == 9).sum()) > 0  # declared missing cells, recorded
    assert (en.data["reading_prop"] == -99).sum() > 0 and not en.variable("reading_prop").missing_codes
    assert nl.data["lezen_pct"].max() > 1 and en.data["reading_prop"].where(lambda x: x >= 0).max() <= 1


# ------------------------------------------------------------------------------------------ draft
def test_draft_proposes_one_target_per_concept_across_the_two_files(study, tmp_path):
    """The draft of the two files, with the example's Dutch-English word list, matches every concept."""
    out = tmp_path / "draft"
    code, text = _cli("dictionary", "draft", study / "raw" / "nl_scholen.sav", study / "raw" / "en_schools.dta",
                      "--translations", SCHOOL / "translations.yaml", "--out", out)
    assert code == 0, text
    review = pd.read_csv(out / "draft_review.csv", dtype=str, keep_default_na=False)
    matched = review.loc[review["role"] == "matched"].set_index("source")
    assert set(matched.index) == {"schoolnr", "leerling", "examen", "lezen_pct", "geslacht", "schooltype",
                                  "schoolgem", "verbaal", "instroom"}
    assert (review["role"] != "study-specific").all()
    # the swapped sex codes are proposed as a recode, the percentage as a rescale onto the proportion
    assert matched.loc["geslacht", ["target", "rule", "arguments"]].tolist() == ["sex", "recode", "0=2; 1=1"]
    assert matched.loc["lezen_pct", ["target", "rule"]].tolist() == ["reading_prop", "rescale"]
    assert all(matched["confidence"].isin(["high", "medium"])) and all(matched["evidence"].str.len() > 0)
    # the undeclared -99 of the English file is proposed as missing, and the draft checks without errors
    maps = pd.read_csv(out / "mappings.csv", dtype=str, keep_default_na=False)
    en_reading = maps.loc[(maps["target"] == "reading_prop") & (maps["study"] == "en_schools")]
    assert en_reading["arguments"].iloc[0] == "-99=NA; else=copy"
    code, text = _cli("dictionary", "check", out, "--with-data", "--data-dir", study / "raw",
                      "--csv", tmp_path / "draft_issues.csv")
    assert code == 0, text
    issues = pd.read_csv(tmp_path / "draft_issues.csv")
    assert not (issues["severity"] == "error").any(), issues.to_string()
    assert "D016" not in set(issues["code"])  # a proposed missing code of a numeric target is not a category


# ------------------------------------------------------------------------------------------ check
def test_check_flags_swapped_sex_codes_written_direct(study, tmp_path):
    wrong = tmp_path / "dictionary"
    shutil.copytree(study / "dictionary", wrong)
    maps = pd.read_csv(wrong / "mappings.csv", dtype=str, keep_default_na=False)
    row = (maps["target"] == "sex") & (maps["study"] == "en_schools")
    maps.loc[row, ["rule", "arguments"]] = ["direct", ""]
    maps.to_csv(wrong / "mappings.csv", index=False)
    code, text = _cli("dictionary", "check", wrong, "--with-data", "--data-dir", study / "raw",
                      "--csv", tmp_path / "issues.csv")
    assert code == 1, text
    issues = pd.read_csv(tmp_path / "issues.csv")
    h215 = issues.loc[issues["code"] == "H215"]
    assert len(h215) == 1 and h215["severity"].iloc[0] == "error"
    assert "sex x en_schools" in h215["message"].iloc[0] and "1=2; 2=1" in h215["remedy"].iloc[0]
    # the user's dictionary states the recode: no error, only the -99 cells set missing (H206, a warning)
    code, text = _cli("dictionary", "check", study / "dictionary", "--with-data", "--data-dir", study / "raw",
                      "--csv", tmp_path / "ok.csv")
    assert code == 0, text
    ok = pd.read_csv(tmp_path / "ok.csv")
    assert ok["code"].tolist() == ["H206"] and ok["severity"].tolist() == ["warning"]


def test_harmonised_values_follow_the_source_data(study):
    res = cimstats.harmonise(None, study / "dictionary", data_dir=study / "raw", accept=["H206"])
    pupils = res["pupils"].data.set_index("pupil_id")
    exam = _exam().set_index("pupil_id")
    assert pupils.index.sort_values().tolist() == exam.index.sort_values().tolist()
    p = pupils.loc[exam.index]
    assert (p["sex"].map({1: "M", 2: "F"}) == exam["sex"]).all()
    assert (p["girls_school"] == (exam["schgend"] == "girls").astype(int)).all()
    assert np.allclose(p["exam"], exam["normexam"], atol=1e-12)
    reading = (50 + 15 * exam["standLRT"]) / 100
    kept = p["reading"].notna()
    assert int((~kept).sum()) == 40 and (p.index[~kept].str.startswith("EN-")).all()
    assert np.allclose(p.loc[kept, "reading"], reading[kept], atol=1e-6)
    vr_missing = p["vr_band"].isna()
    assert vr_missing.sum() > 0 and p.index[vr_missing].str.startswith("NL-").all()


# ------------------------------------------------------------------------------------------ the plan
def test_plan_checks_a_joint_display_review_file(study, tmp_path):
    """A display's review file is read with the plan: a decision without a reviewer is a plan error."""
    bad = tmp_path / "bad_reviews.csv"
    bad.write_text("hypothesis_id,theme_id,decision,reviewer,date,reason\nIC2,Q1,confirm,,2026-12-07,\n",
                   encoding="utf-8")
    plan = yaml.safe_load((study / "plan.yaml").read_text(encoding="utf-8"))
    plan["joint_displays"][0]["reviews"] = str(bad)
    plan["joint_displays"][1]["coders"] = ["only one"]
    (study / "plan_bad_reviews.yaml").write_text(yaml.safe_dump(plan), encoding="utf-8")
    with pytest.raises(PlanError) as err:
        read_analysis_plan(study / "plan_bad_reviews.yaml")
    msgs = [i.message for i in err.value.report if i.code == "P009"]
    assert any("reviews" in m and "reviewer" in m for m in msgs), msgs
    assert any("coders" in m and "two coders" in m for m in msgs), msgs


def test_plan_accept_lists_only_harmonisation_codes(study):
    with pytest.raises(PlanError) as err:
        read_analysis_plan({"sources": {"raw": str(study / "raw"), "dictionary": str(study / "dictionary")},
                            "accept": ["H206", "X999"]})
    assert [i.code for i in err.value.report] == ["P016"]
    plan = read_analysis_plan(study / "plan.yaml")
    assert plan.sections["accept"] == ["H206"]


def test_plan_checks_what_a_cluster_mean_is_made_of(study):
    with pytest.raises(PlanError) as err:
        read_analysis_plan({"sources": {"raw": str(study / "raw"), "dictionary": str(study / "dictionary")},
                            "constructs": {"m": {"kind": "cluster_mean", "of": "reading_score", "by": "school_id"}}})
    assert [i.code for i in err.value.report] == ["P007"] and "reading_score" in err.value.report.issues[0].message


def test_run_produces_model_tables_and_joint_displays(run_result):
    out = run_result.out
    assert set(run_result.ran) >= {"data", "mechanisms", "tables", "joint_displays", "report"}
    table = pd.read_csv(out / "mechanisms" / "mechanism_table.csv")
    assert set(table["mechanism"]) == {"intake_context", "gender_context"}
    assert table["hypothesis_id"].tolist() == ["IC1", "IC2", "GC1", "GC2"]
    assert table["verdict"].notna().all() and (table["n"] == 4059 - 40).all()
    for mid in ("intake_context", "gender_context"):
        terms = pd.read_csv(out / "tables" / f"model_{mid}.csv")
        assert {"(Intercept)", "sex", "reading"} <= set(terms["term"])
        assert (out / "models" / f"{mid}_varcorr.csv").is_file()
    assert "School intake context" in (out / "tables" / "mechanism_table.md").read_text(encoding="utf-8")
    for stem in ("side_by_side", "statistics_by_theme", "themes_by_group"):
        assert (out / "joint_displays" / f"{stem}.html").is_file()
    side = (out / "joint_displays" / "side_by_side.md").read_text(encoding="utf-8")
    assert "Gender context of the school" in side and "(Invented)" in side
    assert "Harmonised pupils table" in (out / "report.html").read_text(encoding="utf-8")
    # a study without waves: every interviewed pupil is a case of the displays (7 of them in girls' schools)
    by_group = (out / "joint_displays" / "themes_by_group.md").read_text(encoding="utf-8")
    assert "School: girls (n = 7)" in by_group
    # the plan's review file confirms one suggested meta-inference; the others still await review
    meta = pd.read_csv(out / "joint_displays" / "side_by_side_meta_inferences.csv").set_index(
        ["hypothesis_id", "theme_id"])
    assert meta.loc[("IC2", "Q1"), ["status", "reviewer"]].tolist() == ["confirmed", "school-study analyst"]
    others = meta.drop(index=("IC2", "Q1"))
    assert len(others) > 0 and (others["status"] == "suggested, needs review").all()
    # the plan's mechanism labels survive saving the result
    saved = cimstats.load_result(out / "mechanisms" / "saved")
    assert saved.mechanism_labels == {"intake_context": "School intake context",
                                      "gender_context": "Gender context of the school"}


def test_run_fits_agree_with_statsmodels(run_result):
    """The random-intercept model of the run against statsmodels' MixedLM (REML) on the harmonised data."""
    import statsmodels.formula.api as smf

    out = run_result.out
    data = pd.read_parquet(out / "data" / "pupils.parquet")
    data = data[["exam", "girls_school", "sex", "reading", "school_id"]].dropna().astype(
        {"girls_school": float, "sex": float})
    ref = smf.mixedlm("exam ~ girls_school + sex + reading", data, groups=data["school_id"]).fit(reml=True)
    ours = pd.read_csv(out / "models" / "gender_context_terms.csv").set_index("term")
    for term in ("Intercept", "girls_school", "sex", "reading"):
        name = "(Intercept)" if term == "Intercept" else term
        assert ours.loc[name, "estimate"] == pytest.approx(ref.fe_params[term], rel=1e-4, abs=1e-6), term
    # variance components (statsmodels' standard errors come from another information matrix, so not compared)
    vc = pd.read_csv(out / "models" / "gender_context_varcorr.csv").set_index("group")["vcov"]
    assert vc["school_id"] == pytest.approx(float(ref.cov_re.iloc[0, 0]), rel=1e-3)
    assert vc["Residual"] == pytest.approx(float(ref.scale), rel=1e-3)


def test_construct_from_the_plan_is_the_school_mean(run_result):
    data = pd.read_parquet(run_result.out / "data" / "pupils.parquet")
    from cimstats.measures.constructs import cluster_mean

    means = cluster_mean(data, "reading", "school_id")
    by_school = data.groupby("school_id")["reading"].mean()
    assert np.allclose(means, data["school_id"].map(by_school).to_numpy())
    fit = cimstats.load_result(run_result.out / "models" / "intake_context")
    assert "school_reading" in set(fit.tidy()["term"])


def test_check_and_run_agree_on_accepted_codes(study, run_result, tmp_path):
    code, text = _cli("dictionary", "check", study / "dictionary", "--with-data", "--data-dir", study / "raw",
                      "--plan", study / "plan.yaml", "--csv", tmp_path / "check.csv")
    assert code == 0, text
    cols = ["code", "severity", "message"]
    check = pd.read_csv(tmp_path / "check.csv")[cols]
    ran = pd.read_csv(run_result.out / "harmonisation" / "issues.csv")[cols]
    pd.testing.assert_frame_equal(check, ran)
    assert ran["severity"].tolist() == ["info"] and ran["message"].str.contains("(accepted)", regex=False).all()


# ------------------------------------------------------------------------------------------ the tutorial
def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(python|bash)\n(.*?)```", text, re.S)


def test_tutorial_own_study_runs(tmp_path, monkeypatch):
    """Every python and bash block of docs/tutorial-own-study.md, in order, from a copy of the example folder."""
    shutil.copytree(SCHOOL, tmp_path / "examples" / "school_study",
                    ignore=shutil.ignore_patterns("raw", "__pycache__", "*.R"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["python"])
    namespace: dict = {"__name__": "tutorial"}
    blocks = _blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert sum(lang == "bash" for lang, _ in blocks) >= 4 and sum(lang == "python" for lang, _ in blocks) >= 2
    for lang, block in blocks:
        if lang == "python":
            exec(compile(block, str(TUTORIAL), "exec"), namespace)  # noqa: S102 - the project's own documentation
            continue
        expect = 1 if "exit status 1" in block else 0
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            args = shlex.split(line)
            if args[0] == "cimstats":
                code, text = _cli(*args[1:])
                assert code == expect, f"{line}\n{text}"
            elif args[0] == "python":
                monkeypatch.setattr(sys, "argv", args[1:])
                runpy.run_path(args[1], run_name="__main__")
            else:
                pytest.fail(f"the tutorial runs {args[0]!r}; its bash blocks may run only cimstats and python")
    assert (tmp_path / "school-output" / "report.html").is_file()
