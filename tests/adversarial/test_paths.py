"""Path traversal: ids that become file names, outputs that climb out of OUT, links inside OUT, study files.

Every hostile input is built here; nothing outside ``tmp_path`` may be written,
removed or read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from cimstats._files import writing_into
from cimstats._names import is_safe_name, name_problem
from cimstats.dictionary import Dictionary, harmonise, read_dictionary
from cimstats.dictionary.schema import resolve_study_file
from cimstats.errors import DictionaryError, PlanError
from cimstats.mechanisms import read_mechanism_plan
from cimstats.pipeline import demo_plan_path
from cimstats.pipeline import read_analysis_plan
from cimstats.pipeline.cache import StepCache
from cimstats.pipeline.steps import StepContext

ESCAPE = "../../../../ESCAPED"


def _mechanism_plan(model_id: str, hypothesis_id: str = "H1") -> dict:
    return {"models": {model_id: {"template": "lmm", "formula": "y ~ x + (1 | g)"}},
            "hypotheses": [{"id": hypothesis_id, "mechanism": "network_navigation", "model": model_id,
                            "estimand": "x", "expected": "positive"}]}


@pytest.mark.parametrize("bad", [ESCAPE, "a/b", "a\\b", "..", ".hidden", "-rf", "x" * 65, "CON", "nul.txt",
                                 "a b", "caf\u00e9\u202e", "ends."])
def test_unsafe_names(bad):
    assert not is_safe_name(bad) and name_problem(bad)


@pytest.mark.parametrize("good", ["ce_mediation", "NAV1", "m-2.v1", "CONSOLE", "x" * 64])
def test_safe_names(good):
    assert is_safe_name(good)


def test_model_id_that_climbs_out_is_refused_with_its_id_named():
    with pytest.raises(PlanError) as err:
        read_mechanism_plan(_mechanism_plan(ESCAPE))
    rows = [i for i in err.value.report if i.code == "M018"]
    assert len(rows) == 1 and ESCAPE in rows[0].message and "'/'" in rows[0].message


def test_hypothesis_id_that_climbs_out_is_refused():
    with pytest.raises(PlanError) as err:
        read_mechanism_plan(_mechanism_plan("m1", hypothesis_id="H/../../x"))
    assert any(i.code == "M010" and "H/../../x" in i.message for i in err.value.report)


def test_analysis_plan_with_hostile_model_id_runs_nothing(tmp_path):
    doc = yaml.safe_load(demo_plan_path().read_text(encoding="utf-8"))
    doc["mechanisms"]["plan"] = _mechanism_plan(ESCAPE)
    with pytest.raises(PlanError) as err:
        read_analysis_plan(doc)
    assert ESCAPE in str(err.value) or any(ESCAPE in i.message for i in err.value.report)


def _ctx(tmp_path) -> StepContext:
    out = tmp_path / "out"
    stage = out / ".cache" / "stage-x"
    stage.mkdir(parents=True)
    return StepContext(plan=None, out=out, stage=stage)


def test_step_output_path_cannot_leave_the_staging_folder(tmp_path):
    ctx = _ctx(tmp_path)
    with pytest.raises(PlanError, match="outside the output folder"):
        ctx.path(f"models/{ESCAPE}_terms.csv")
    assert ctx.path("models/m1_terms.csv").parent == ctx.stage / "models"
    assert not list(tmp_path.rglob("ESCAPED*"))


def test_every_writer_is_held_inside_the_folder(tmp_path):
    """Renderers and survey writers called by a step cannot write outside the step's folder."""
    from cimstats.io import write_survey
    from cimstats.render import TableSpec, render

    ctx = _ctx(tmp_path)
    spec = TableSpec.from_frame(pd.DataFrame({"a": [1]}))
    (ctx.stage / "tables").mkdir()
    with writing_into(ctx.stage, error=PlanError):
        render(spec, ctx.stage / "tables" / "t.html")
        for target in (ctx.stage / ".." / ".." / ".." / "ESCAPED.html", tmp_path / "ESCAPED2.md"):
            with pytest.raises(PlanError):
                render(spec, target)
        with pytest.raises(PlanError):
            write_survey(pd.DataFrame({"a": [1.0]}), ctx.stage / ".." / ".." / ".." / "ESCAPED.sav")
    assert (ctx.stage / "tables" / "t.html").is_file()
    assert not list(tmp_path.rglob("ESCAPED*"))


def _output_folder_with_link(tmp_path, name):
    """An output folder whose subfolder ``name`` is a symbolic link to a folder outside it."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(outside, target_is_directory=True)
    return out, outside


def test_symlinked_subfolder_of_an_existing_output_folder_is_not_followed(tmp_path):
    out, outside = _output_folder_with_link(tmp_path, "models")
    cache = StepCache(out)
    stage = cache.stage("mechanisms")
    (stage / "models").mkdir()
    (stage / "models" / "m1_terms.csv").write_text("term\n", encoding="utf-8")
    with pytest.raises(PlanError, match="symbolic link"):
        cache.publish("mechanisms", stage, "hash")
    assert list(outside.iterdir()) == []


def test_symlinked_cache_folder_is_refused(tmp_path):
    out, outside = _output_folder_with_link(tmp_path, ".cache")
    with pytest.raises(PlanError, match="symbolic link"):
        StepCache(out).stage("data")
    assert list(outside.iterdir()) == []


def test_stale_record_naming_a_file_outside_is_not_removed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    out = tmp_path / "out"
    cache = StepCache(out)
    cache.ensure()
    import json

    cache.record_path("data").write_text(json.dumps({"input_hash": "x", "outputs": {"../victim.txt": "h"}}),
                                         encoding="utf-8")
    stage = cache.stage("data")
    (stage / "a.csv").write_text("a\n", encoding="utf-8")
    cache.publish("data", stage, "y")
    assert victim.read_text(encoding="utf-8") == "keep me"


# ------------------------------------------------------------------ dictionary
def _dictionary(root: Path, study: str = "A", file: str = "a.csv", table: str = "") -> Dictionary:
    return Dictionary.from_frames(
        studies=[{"study": study, "file": file, "table": table}],
        variables=[{"name": "x", "type": "decimal", "table": table}],
        mappings=[{"target": "x", "study": study, "rule": "direct", "source": "x"}], root=root)


@pytest.mark.parametrize("col,value", [("study", "../../ESCAPED"), ("table", "../ESCAPED"), ("table", "CON"),
                                       ("study", "a/b")])
def test_study_and_table_names_follow_the_safe_name_rule(tmp_path, col, value):
    d = _dictionary(tmp_path, **{col: value})
    rows = [i for i in d.report if i.code == "D019"]
    assert rows and value in rows[0].message and rows[0].column == col


def test_study_file_outside_the_data_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("x\n1\n", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    for entry in ("../secret.csv", str(secret)):
        d = _dictionary(data, file=entry)
        assert any(i.code == "D020" and entry in i.message for i in d.report)
        with pytest.raises(DictionaryError, match="outside the data folder"):
            harmonise(None, d, data_dir=data)
    # a link inside the data folder that points out of it
    (data / "link.csv").symlink_to(secret)
    d = _dictionary(data, file="link.csv")
    with pytest.raises(DictionaryError, match="symbolic link"):
        resolve_study_file(d, "link.csv", data)
    # a path the caller gives directly may be anywhere
    res = harmonise({"A": secret}, _dictionary(data, file=""))
    assert res.survey.data["x"].tolist() == [1.0]


def test_dictionary_folder_with_escaping_file_raises_dictionary_error(tmp_path):
    folder = tmp_path / "dict"
    folder.mkdir()
    pd.DataFrame([{"study": "A", "file": "../../../etc/passwd"}]).to_csv(folder / "studies.csv", index=False)
    pd.DataFrame([{"name": "x", "type": "decimal"}]).to_csv(folder / "variables.csv", index=False)
    pd.DataFrame(columns=["variable", "code", "label"]).to_csv(folder / "categories.csv", index=False)
    pd.DataFrame([{"target": "x", "study": "A", "rule": "direct", "source": "x"}]).to_csv(
        folder / "mappings.csv", index=False)
    with pytest.raises(DictionaryError) as err:
        read_dictionary(folder)
    assert any(i.code == "D020" for i in err.value.report)
