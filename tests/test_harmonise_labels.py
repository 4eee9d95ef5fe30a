"""Swapped codes and reversed scales are caught code by code; declared missing codes carry over."""

from __future__ import annotations

import pandas as pd
import pytest

from cimstats.dictionary import Dictionary, harmonise
from cimstats.errors import HarmonisationError
from cimstats.io import Survey, VariableMeta


def _run(raw, meta, target_cats, rule="direct", arguments=None, target="y"):
    s = Survey.from_raw(pd.DataFrame(raw), meta)
    mapping = {"study": "S", "target": target, "rule": rule, "source": next(iter(raw))}
    if arguments:
        mapping["arguments"] = arguments
    d = Dictionary.from_frames(studies=[{"study": "S", "country": "EN", "wave": 0}],
                               variables=[{"name": target, "type": "categorical"}],
                               categories=[dict(variable=target, **c) for c in target_cats], mappings=[mapping])
    assert not d.report.has_errors, d.report.summary()
    return harmonise({"S": s}, d)


SEX_TARGET = [{"code": 1, "label": "Boy"}, {"code": 2, "label": "Girl"}]
ITEM_TARGET = [{"code": c, "label": lab} for c, lab in
               enumerate(["Very inaccurate", "Inaccurate", "Neutral", "Accurate", "Very accurate"], start=1)]


def _codes(res):
    return [i for i in res.report.issues if i.code == "H215"]


def test_swapped_sex_codes_are_an_error_naming_the_recode():
    meta = {"sex": VariableMeta("sex", value_labels={1: "girl", 2: "boy"})}
    res = _run({"sex": [1, 2, 2, 1]}, meta, SEX_TARGET)
    found = _codes(res)
    assert len(found) == 1 and found[0].severity == "error"
    assert "swapped" in found[0].message and '"1=2; 2=1"' in found[0].remedy
    assert res.report.table.set_index("target").loc["y", "status"] == "partial"


def test_reversed_item_scale_is_called_reversed():
    labels = {1: "Very accurate", 2: "Accurate", 3: "Neutral", 4: "Inaccurate", 5: "Very inaccurate"}
    res = _run({"q": [1, 5, 3]}, {"q": VariableMeta("q", value_labels=labels)}, ITEM_TARGET)
    found = _codes(res)
    assert len(found) == 1 and "reversed" in found[0].message


def test_a_recode_that_states_the_change_passes():
    meta = {"sex": VariableMeta("sex", value_labels={1: "girl", 2: "boy"})}
    res = _run({"sex": [1, 2, 2, 1]}, meta, SEX_TARGET, rule="recode", arguments="1=2; 2=1")
    assert not _codes(res)
    assert res.survey.data["y"].tolist() == [2.0, 1.0, 1.0, 2.0]


@pytest.mark.parametrize("labels", [{1: "BOY ", 2: "girl"}, {1: "male", 2: "female"}, {}])
def test_matching_or_unrelated_wording_is_not_judged(labels):
    meta = {"sex": VariableMeta("sex", value_labels=labels)}
    assert not _codes(_run({"sex": [1, 2]}, meta, SEX_TARGET))


def test_declared_missing_code_stays_the_targets_declared_missing_code():
    meta = {"q": VariableMeta("q", value_labels={1: "yes", 2: "no", 9: "no answer"}, missing_codes=(9,))}
    cats = [{"code": 1, "label": "yes"}, {"code": 2, "label": "no"}, {"code": 9, "label": "no answer", "is_missing": "yes"}]
    res = _run({"q": [1, 9, 2, None]}, meta, cats)
    assert res.survey.missing["y"].tolist() == [None, 9, None, None]
    r = res.report.table.set_index("target").loc["y"]
    assert (r.n_declared_missing, r.n_source_missing, r.n_system_missing) == (1, 0, 1)


def _out_of_range(**kw):
    s = Survey.from_raw(pd.DataFrame({"age": [30.0, 140.0, 55.0]}), {})
    d = Dictionary.from_frames(studies=[{"study": "S", "country": "EN", "wave": 0}],
                               variables=[{"name": "age", "type": "decimal", "min": 18, "max": 110}],
                               categories=[], mappings=[{"study": "S", "target": "age", "rule": "direct", "source": "age"}])
    return harmonise({"S": s}, d, **kw)


def test_each_code_has_one_severity_and_a_plan_can_accept_it():
    from cimstats.dictionary.codes import CODES, SEVERITY

    assert set(SEVERITY) == {c for c in CODES if c.startswith("H")}
    res = _out_of_range()
    (issue,) = [i for i in res.report.issues if i.code == "H206"]
    assert issue.severity == "warning" and not res.report.issues.has_errors
    assert res.survey.data["age"].isna().tolist() == [False, True, False]
    res = _out_of_range(accept=["h206"])
    (issue,) = [i for i in res.report.issues if i.code == "H206"]
    assert issue.severity == "info" and issue.message.endswith("(accepted)")
    with pytest.raises(HarmonisationError, match="H999"):
        _out_of_range(accept=["H999"])


def test_dictionary_check_with_data_agrees_with_harmonise(tmp_path):
    import subprocess
    import sys

    from cimstats.io import write_survey

    folder = tmp_path / "dict"
    folder.mkdir()
    (folder / "studies.csv").write_text("study,country,wave,file\nS,EN,0,s.sav\n")
    (folder / "variables.csv").write_text("name,type,label\nsex,categorical,Sex\n")
    (folder / "categories.csv").write_text("variable,code,label\nsex,1,boy\nsex,2,girl\n")
    (folder / "mappings.csv").write_text("study,target,rule,source\nS,sex,direct,sex\n")
    write_survey(Survey.from_raw(pd.DataFrame({"sex": [1.0, 2.0]}),
                                 {"sex": VariableMeta("sex", value_labels={1: "girl", 2: "boy"})}), folder / "s.sav")
    cmd = [sys.executable, "-m", "cimstats.cli.main", "dictionary", "check", str(folder)]
    plain = subprocess.run(cmd, capture_output=True, text=True)
    assert plain.returncode == 0 and "--with-data" in plain.stdout
    full = subprocess.run(cmd + ["--with-data"], capture_output=True, text=True)
    assert full.returncode == 1 and "H215" in full.stderr and "swapped" in full.stderr


def test_one_table_result_is_found_by_any_name_and_prints_briefly():
    res = _out_of_range()
    assert res["pupils"] is res.survey
    text = repr(res)
    assert len(text) < 300 and "1 studies" in text and "3 rows" in text
    assert res._repr_html_().startswith("<div class='cimstats-harmonisation'>")


def test_a_file_without_an_identifier_gets_row_numbers():
    s = Survey.from_raw(pd.DataFrame({"score": [3.0, 4.0, 5.0]}), {})
    d = Dictionary.from_frames(studies=[{"study": "S", "country": "NL", "wave": 0}],
                               variables=[{"name": "pupil_id", "type": "string"}, {"name": "score", "type": "decimal"}],
                               categories=[], mappings=[
                                   {"study": "S", "target": "pupil_id", "rule": "id", "arguments": "prefix=NL-; width=3"},
                                   {"study": "S", "target": "score", "rule": "direct", "source": "score"}])
    assert not d.report.has_errors, d.report.summary()
    res = harmonise({"S": s}, d)
    assert res.survey.data["pupil_id"].tolist() == ["NL-001", "NL-002", "NL-003"]


def test_draft_infers_measure_level_and_proposes_missing_codes():
    from cimstats.dictionary.draft import draft_dictionary

    rng = __import__("numpy").random.default_rng(4)
    pct = list(rng.uniform(3.2, 97.9, size=40).round(3)) + [-99.0, -99.0]
    s = Survey.from_raw(pd.DataFrame({"pct_correct": pct, "sex": [1, 2] * 21, "trust": [1, 2, 3, 9] * 10 + [1, 2]}),
                        {"pct_correct": VariableMeta("pct_correct", value_labels={-99: "not collected"}),
                         "sex": VariableMeta("sex", value_labels={1: "girl", 2: "boy"}),
                         "trust": VariableMeta("trust", value_labels={1: "low", 2: "mid", 3: "high", 9: "no answer"})})
    t = draft_dictionary([s], study_ids=["A"])
    v = t["variables"].set_index("name")
    assert v.loc["pct_correct", "type"] == "decimal"
    import math

    assert (v.loc["pct_correct", "min"], v.loc["pct_correct", "max"]) == (math.floor(min(pct[:40])), math.ceil(max(pct[:40])))
    assert "proposed as missing" in v.loc["pct_correct", "description"]
    c = t["categories"]
    pc = c[c["variable"] == "pct_correct"]
    assert pc[["code", "is_missing"]].values.tolist() == [[-99, "yes"]]
    tr = c[c["variable"] == "trust"].set_index("code")["is_missing"]
    assert tr.to_dict() == {1: "no", 2: "no", 3: "no", 9: "yes"}
    assert v.loc["sex", "type"] == "categorical"
