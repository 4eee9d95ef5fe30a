"""Harmonisation data problems (H codes), strict mode, the lossless invariant, report rendering, round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimstats.dictionary import Dictionary, harmonise
from cimstats.dictionary.codes import REASON_ORDER
from cimstats.errors import HarmonisationError
from cimstats.io import Survey, VariableMeta, read_survey, write_survey


def two_studies(overrides=None):
    overrides = overrides or {}
    mappings = [
        {"target": "patient_id", "study": "EN", "rule": "id", "source": "pid", "arguments": "prefix=EN-; width=3"},
        {"target": "patient_id", "study": "NL", "rule": "id", "source": "nr", "arguments": "prefix=NL-; width=3"},
        {"target": "sex", "study": "EN", "rule": "direct", "source": "sex"},
        {"target": "sex", "study": "NL", "rule": "recode", "source": "geslacht", "arguments": "'man'=1; 'vrouw'=2"},
        {"target": "semcd_1", "study": "EN", "rule": "direct", "source": "q1"},
        {"target": "semcd_1", "study": "NL", "rule": "rescale", "source": "v1", "arguments": "from=1:5; to=1:10"},
    ]
    for m in mappings:
        m.update(overrides.get((m["target"], m["study"]), {}))
    return Dictionary.from_frames(
        studies=[{"study": "EN", "country": "EN", "wave": 0}, {"study": "NL", "country": "NL", "wave": 0}],
        variables=[{"name": "patient_id", "type": "string", "required": "yes", "key": "yes"},
                   {"name": "sex", "type": "categorical", "label": "Sex"},
                   {"name": "semcd_1", "type": "decimal", "min": 1, "max": 10, "label": "SEMCD item 1"}],
        categories=[{"variable": "sex", "code": 1, "label": "male"}, {"variable": "sex", "code": 2, "label": "female"},
                    {"variable": "sex", "code": 9, "label": "not stated", "is_missing": "yes"}],
        mappings=mappings)


def data(en_sex=(1, 2, 2, 1), nl_sex=("man", "vrouw", "vrouw")):
    en = Survey.from_raw(pd.DataFrame({"pid": [1, 2, 3, 4], "sex": list(en_sex), "q1": [1, 10, 99, 5]}),
                         {"sex": VariableMeta("sex", value_labels={1: "Male", 2: "Female"}),
                          "q1": VariableMeta("q1", missing_codes=(99,))})
    nl_meta = {"geslacht": VariableMeta("geslacht", storage="string")}
    nl = Survey.from_raw(pd.DataFrame({"nr": [1, 2, 3], "geslacht": list(nl_sex), "v1": [1.0, 5.0, 3.0]}), nl_meta)
    return {"EN": en, "NL": nl}


def codes(res):
    return sorted({i.code for i in res.report.issues})


def test_clean_two_study_harmonisation():
    res = harmonise(data(), two_studies())
    assert res.report.all_complete, res.report.summary()
    assert res.survey.data["patient_id"].tolist() == ["EN-001", "EN-002", "EN-003", "EN-004", "NL-001", "NL-002", "NL-003"]
    assert res.survey.data["semcd_1"].tolist()[4:] == [1.0, 10.0, 5.5]
    m = res.survey.variable("sex")
    assert m.value_labels == {1: "male", 2: "female", 9: "not stated"} and m.missing_codes == (9,)
    assert res.survey.variable("semcd_1").label == "SEMCD item 1"


@pytest.mark.parametrize("code,kwargs", [
    ("H202", dict(dictionary=two_studies({("sex", "EN"): {"source": "gender"}}))),
    ("H203", dict(data=data(nl_sex=("man", "vrouw", "anders")))),
    ("H204", dict(dictionary=two_studies({("sex", "EN"): {"rule": "recode", "arguments": "'Mann'=1; 'Female'=2"}}))),
    ("H205", dict(dictionary=two_studies({("semcd_1", "NL"): {"source": "geslacht"}}))),
    ("H206", dict(data=None, en_q1=[1, 10, 11, 5])),
    ("H207", dict(data=data(en_sex=(1, 2, 3, 1)))),
    ("H208", dict(data=None, en_pid=[1, 2, None, 4])),
    ("H209", dict(data=None, en_labels={1: "Male", 2: "Female", 3: "Other"})),
    ("H210", dict(data="extra")),
    ("H211", dict(dictionary=two_studies({("patient_id", "NL"): {"arguments": "prefix=EN-; width=3"}}))),
    ("H212", dict(dictionary=None, items=True)),
    ("H214", dict(dictionary=two_studies({("semcd_1", "NL"): {"arguments": "from=1:5; to=1:10"}}), integer=True)),
    ("H213", dict(dictionary=two_studies({("sex", "EN"): {"rule": "case_when", "arguments": "when sex == 1 then 1"}}))),
])
def test_each_harmonisation_code(code, kwargs):
    dd = kwargs.get("dictionary") or two_studies()
    dat = kwargs.get("data")
    if dat is None:
        dat = data()
        en = dat["EN"].raw()
        labels = {"sex": VariableMeta("sex", value_labels=kwargs.get("en_labels", {1: "Male", 2: "Female"})),
                  "q1": VariableMeta("q1", missing_codes=(99,))}
        if "en_q1" in kwargs:
            en["q1"] = kwargs["en_q1"]
        if "en_pid" in kwargs:
            en["pid"] = kwargs["en_pid"]
        dat["EN"] = Survey.from_raw(en, labels)
    elif dat == "extra":
        dat = {**data(), "XX": pd.DataFrame({"a": [1]})}
    if kwargs.get("integer"):
        dd = Dictionary.from_frames(studies=dd.studies, variables=dd.variables.assign(
            type=lambda f: f["type"].where(f["name"] != "semcd_1", "integer")), categories=dd.categories, mappings=dd.mappings)
    if kwargs.get("items"):
        dd = two_studies({("semcd_1", "EN"): {"rule": "mean", "source": "q1, pid", "arguments": "min_valid=2"}})
    res = harmonise(dat, dd)
    assert code in codes(res), res.report.summary()
    issue = next(i for i in res.report.issues if i.code == code)
    assert issue.remedy and issue.message


def test_problems_are_collected_not_stopped_at_the_first():
    dd = two_studies({("sex", "EN"): {"source": "gender"}, ("semcd_1", "NL"): {"source": "geslacht"}})
    res = harmonise(data(nl_sex=("man", "vrouw", "x")), dd)
    assert {"H202", "H203", "H205"} <= set(codes(res))
    st_ = res.report.table.set_index(["study", "target"])["status"]
    assert st_[("EN", "sex")] == "failed" and st_[("NL", "sex")] == "partial" and st_[("EN", "semcd_1")] == "complete"
    assert len(res.survey) == 7  # rows in = rows out even when rules fail


def test_strict_mode_raises_with_the_report():
    with pytest.raises(HarmonisationError) as exc:
        harmonise(data(nl_sex=("man", "vrouw", "x")), two_studies(), strict=True)
    assert "H203" in {i.code for i in exc.value.report}
    harmonise(data(), two_studies(), strict=True)  # clean data pass


def test_report_renders_csv_excel_html(tmp_path):
    res = harmonise(data(nl_sex=("man", "<b>vrouw</b>", "x")), two_studies())
    paths = res.report.to_csv(tmp_path / "report.csv")
    assert [p.name for p in paths] == ["report.csv", "report_unmapped.csv", "report_issues.csv"]
    back = pd.read_csv(paths[0])
    assert back["n_rows"].sum() == 3 * 7
    res.report.to_excel(tmp_path / "report.xlsx")
    assert set(pd.read_excel(tmp_path / "report.xlsx", sheet_name=None)) == {"summary", "unmapped", "issues"}
    html = res.report.to_html()
    assert "&lt;b&gt;vrouw&lt;/b&gt;" in html and "<b>vrouw</b>" not in html
    g = res.glance()
    assert g.loc[0, "n_rows"] == 7 and not g.loc[0, "all_complete"]


@pytest.mark.parametrize("ext", ["sav", "dta"])
def test_harmonised_output_round_trips(tmp_path, ext):
    res = harmonise(data(en_sex=(1, 2, 2, 1)), two_studies({("sex", "NL"): {"arguments": "'man'=1; 'vrouw'=9"}}))
    path = tmp_path / f"h.{ext}"
    write_survey(res.survey, path)
    back = read_survey(path)
    pd.testing.assert_series_equal(back.data["semcd_1"], res.survey.data["semcd_1"], check_dtype=False)
    assert back.data["patient_id"].tolist() == res.survey.data["patient_id"].tolist()
    assert back.variable("sex").value_labels[9] == "not stated"
    assert back.missing["sex"].tolist() == res.survey.missing["sex"].tolist()
    assert back.variable("semcd_1").label == "SEMCD item 1"


# -- the lossless invariant -------------------------------------------------------------------
codes_st = st.lists(st.sampled_from([1, 2, 3, 4, 5, 97, 98, 99, None]), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(values=codes_st, mapped=st.sets(st.sampled_from([1, 2, 3, 4, 5, 98]), min_size=1),
       declared=st.sets(st.sampled_from([97, 98, 99])), lo=st.sampled_from([None, 2]))
def test_every_source_cell_is_mapped_or_accounted_for(values, mapped, declared, lo):
    raw = pd.DataFrame({"x": pd.Series(values, dtype=float)})
    s = Survey.from_raw(raw, {"x": VariableMeta("x", missing_codes=tuple(sorted(declared)))})
    pairs = "; ".join(f"{c}={c if c != 98 else 9}" for c in sorted(mapped))
    d = Dictionary.from_frames(
        studies=[{"study": "A"}],
        variables=[{"name": "y", "type": "integer", "min": "" if lo is None else lo}],
        mappings=[{"target": "y", "study": "A", "rule": "recode", "source": "x", "arguments": pairs}])
    res = harmonise({"A": s}, d)
    out = res.survey.data["y"]
    assert len(out) == len(values)  # rows in = rows out
    row = res.report.table.iloc[0]
    assert row["n_valid"] + sum(row[f"n_{r}"] for r in REASON_ORDER) == len(values)
    audit = res.audit().set_index("row")
    for i, v in enumerate(values):
        if pd.notna(out.iloc[i]):
            expected = 9 if v == 98 else v
            assert out.iloc[i] == expected and v in mapped  # declared codes only when mapped explicitly
        elif v is None:
            assert i not in audit.index  # an empty source cell stays empty, nothing to account for
        else:
            assert i in audit.index, (i, v)
            assert float(audit.loc[i, "source_value"]) == float(v)
    # every covered code (declared missing ones too, as they are mapped explicitly) in range is a value
    for i, v in enumerate(values):
        if v in mapped and v is not None and (lo is None or (9 if v == 98 else v) >= lo):
            assert pd.notna(out.iloc[i])


def test_declared_missing_code_mapped_explicitly_keeps_its_record():
    s = Survey.from_raw(pd.DataFrame({"x": [1.0, 98.0]}), {"x": VariableMeta("x", missing_codes=(98,))})
    d = Dictionary.from_frames(studies=[{"study": "A"}],
                               variables=[{"name": "y", "type": "categorical"}],
                               categories=[{"variable": "y", "code": 1, "label": "yes"},
                                           {"variable": "y", "code": -8, "label": "don't know", "is_missing": "yes"}],
                               mappings=[{"target": "y", "study": "A", "rule": "recode", "source": "x", "arguments": "1=1; 98=-8"}])
    res = harmonise({"A": s}, d)
    assert res.survey.raw()["y"].tolist() == [1.0, -8.0]
    assert res.report.table.iloc[0]["n_declared_missing"] == 1


def test_study_files_are_read_relative_to_the_dictionary_folder(tmp_path):
    d = two_studies()
    folder = tmp_path / "dict"
    folder.mkdir()
    for name in ("studies", "variables", "categories", "mappings"):
        df = getattr(d, name).drop(columns=["_file", "_row"])
        if name == "studies":
            df["file"] = ["data/en.sav", "nl.csv"]
        df.to_csv(folder / f"{name}.csv", index=False)
    (folder / "data").mkdir()
    write_survey(data()["EN"], folder / "data" / "en.sav")
    res = harmonise(None, folder)
    codes_ = {i.code for i in res.report.issues}
    assert "H201" in codes_  # nl.csv is missing: reported, the other study still harmonised
    assert res.rows == {"EN": 4}
    assert res.survey.data["patient_id"].tolist() == ["EN-001", "EN-002", "EN-003", "EN-004"]
    with pytest.raises(HarmonisationError):
        harmonise(None, folder, strict=True)


def _tie_dictionary(en_rule, en_args):
    return Dictionary.from_frames(
        studies=[{"study": "EN", "country": "EN", "wave": 0}],
        variables=[{"name": "patient_id", "type": "string", "required": "yes", "key": "yes"},
                   {"name": "tie_type", "type": "string", "label": "Relationship"}],
        categories=[{"variable": "tie_type", "code": c, "label": c} for c in ("partner", "family", "friend")],
        mappings=[{"target": "patient_id", "study": "EN", "rule": "id", "source": "pid", "arguments": "prefix=EN-"},
                  {"target": "tie_type", "study": "EN", "rule": en_rule, "source": "tie", "arguments": en_args}])


def test_text_target_with_listed_values_reports_values_outside_the_list():
    raw = Survey.from_raw(pd.DataFrame({"pid": [1, 2, 3, 4], "tie": ["partner", "friend", "neighbour", None]}),
                          {"tie": VariableMeta("tie", storage="string")})
    res = harmonise({"EN": raw}, _tie_dictionary("direct", ""))
    issue = next(i for i in res.report.issues if i.code == "H207")
    assert "neighbour" in issue.message and "tie_type" in issue.message
    out = res.survey.data["tie_type"]
    assert len(out) == 4 and out.tolist()[:2] == ["partner", "friend"] and pd.isna(out.iloc[2])
    row = res.report.table.set_index(["study", "target"]).loc[("EN", "tie_type")]
    assert row["status"] != "complete"


def test_recode_to_a_text_value_outside_the_list_is_a_dictionary_problem():
    d = _tie_dictionary("recode", "1='partner'; 2='cousin'")
    assert [i.code for i in d.report.issues if "cousin" in i.message] == ["R106"]
    assert not any(i.code == "R106" for i in _tie_dictionary("recode", "1='partner'; 2='friend'").report.issues)


def test_shipped_dictionary_lists_the_tie_types():
    from cimstats.dictionary import read_dictionary
    from pathlib import Path

    d = read_dictionary(Path(__file__).resolve().parents[1] / "data-dictionary")
    cats = d.categories.loc[d.categories["variable"] == "tie_type", "code"].tolist()
    assert cats == ["partner", "family", "friend", "weak_tie", "group", "professional", "pet"]


def test_unreadable_categories_table_is_one_problem_not_one_per_variable(tmp_path):
    import shutil
    from pathlib import Path

    from cimstats.dictionary import check_dictionary

    src = Path(__file__).resolve().parents[1] / "data-dictionary"
    for f in src.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    with open(tmp_path / "categories.csv", "a", encoding="utf-8") as fh:
        fh.write("alters,tie_type,x,a label, with a comma,9,no\n")
    report = check_dictionary(tmp_path)
    assert [i.code for i in report.errors] == ["D015"]
    assert "categories.csv" in report.errors[0].message
