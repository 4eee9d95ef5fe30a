"""Numbers and nesting in the dictionary and plan grammars have documented limits, checked before any work."""

from __future__ import annotations

import json

import pytest
import yaml

from cimstats.dictionary import check_dictionary, read_dictionary
from cimstats.dictionary.expr import MAX_DEPTH
from cimstats.errors import DictionaryError, MetadataError, PlanError, SurveyReadError

from hostile import dictionary, plan_dict

#: (target type, rule, sources, arguments, stable code, words the message must hold)
RULE_CASES = {
    "quantile n=1e9": ("integer", "quantile", "v", "n=1000000000; direction=higher_more_deprived", "R109",
                       "from 2 to 1000"),
    "quantile n=1e9 categorical": ("categorical", "quantile", "v", "n=1e9; direction=higher_more_deprived", "R109",
                                   "from 2 to 1000"),
    "id width=1e8": ("string", "id", "v", "width=100000000", "R114", "from 1 to 64"),
    "id template width": ("string", "id", "v, w", "template=A{1:100000000}-{2}", "R114", "width 0 to 64"),
    "id template source 10^5000": ("string", "id", "v", "template={" + "9" * 5000 + "}", "R114", "source number"),
    "reverse min=inf": ("decimal", "reverse", "v", "min=-inf; max=5", "R114", "-1e15 to 1e15"),
    "rescale scale=1e308": ("decimal", "rescale", "v", "scale=1e308", "R114", "-1e15 to 1e15"),
    "rescale from=0:1e300": ("decimal", "rescale", "v", "from=0:1e300; to=0:1", "R114", "-1e15 to 1e15"),
    "cut 1001 breaks": ("decimal", "cut", "v", "breaks=" + ", ".join(str(i) for i in range(1001)), "R108",
                        "1000 allowed"),
    "constant value=inf": ("decimal", "constant", "", "value=inf", "R114", "not a finite number"),
    "case_when 2000 parentheses": ("decimal", "case_when", "v", "when " + "(" * 2000 + "v == 1" + ")" * 2000
                                   + " then 1", "R110", f"nested more than {MAX_DEPTH} deep"),
    "case_when 5000 nots": ("decimal", "case_when", "v", "when " + "not " * 5000 + "v == 1 then 1", "R110",
                            f"nested more than {MAX_DEPTH} deep"),
    "constant text for a number": ("decimal", "constant", "", "value={0.__class__}", "R113", "not a number"),
}


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_an_argument_outside_its_range_is_one_report_row(tmp_path, case):
    typ, rule, source, args, code, words = RULE_CASES[case]
    folder = dictionary(tmp_path / "d", target_type=typ, rule=rule, source=source, arguments=args)
    if typ == "categorical":
        (folder / "categories.csv").write_text("variable,code,label\ny,1,one\n", encoding="utf-8")
    rep = check_dictionary(folder)
    errors = [i for i in rep if i.severity == "error"]
    assert [i.code for i in errors] == [code], rep.summary()
    issue = errors[0]
    assert (issue.file, issue.row, issue.column) == ("mappings.csv", 2, "arguments")
    assert words in issue.message and len(issue.message) < 400 and "\n" not in issue.message
    with pytest.raises(DictionaryError) as e:
        read_dictionary(folder)
    assert [i.code for i in e.value.report.errors] == [code]


def test_nesting_up_to_the_limit_still_parses(tmp_path):
    args = "when " + "(" * (MAX_DEPTH - 1) + "not v == 1" + ")" * (MAX_DEPTH - 1) + " then 1; else 2"
    folder = dictionary(tmp_path / "d", rule="case_when", source="v", arguments=args)
    assert [i.code for i in check_dictionary(folder) if i.severity == "error"] == []


def test_check_and_harmonise_agree_on_a_text_constant_for_a_number(tmp_path):
    from cimstats.dictionary import harmonise

    folder = dictionary(tmp_path / "d", rule="constant", source="", arguments="value={0.__class__}")
    res = harmonise(None, read_dictionary(folder, strict=False))
    assert sorted(i.code for i in res.report.issues if i.severity == "error") == ["R113"]
    # the values left missing for that reason are counted as a warning (H205's severity)
    assert [i.code for i in res.report.issues if i.severity == "warning"] == ["H205"]
    assert res.survey.data["y"].isna().all()


def test_a_text_constant_for_a_text_target_is_fine(tmp_path):
    folder = dictionary(tmp_path / "d", target_type="string", rule="constant", source="", arguments="value={0.__class__}")
    assert [i.code for i in check_dictionary(folder) if i.severity == "error"] == []


# -- plans ------------------------------------------------------------------------------------------------
PLAN_CASES = {
    "n_boot 10^12": ({"mechanisms": {"n_boot": 10**12}}, "P012", "from 50 to 100000"),
    "n_boot text": ({"mechanisms": {"n_boot": "many"}}, "P012", "from 50 to 100000"),
    "level 5": ({"mechanisms": {"level": 5}}, "P012", "above 0.5 and below 1"),
    "seed 2^40": ({"seeds": {"bootstrap": 2**40}}, "P011", "from 0 to 4294967295"),
    "one seed 2^40": ({"seeds": 2**40}, "P011", "from 0 to 4294967295"),
    "change waves": ({"networks": {"change_waves": [0, 10**9]}}, "P014", "from 0 to 99"),
    "outputs tables 5": ({"outputs": {"tables": 5}}, "P010", "expected a list of formats"),
    "outputs list of numbers": ({"outputs": {"figures": [1, [2]]}}, "P010", "names format(s)"),
    "quotes per cell": ({"mechanisms": {"n_boot": 100},
                         "qualitative": {"codebook": "demo", "excerpts": "demo"},
                         "joint_displays": [{"kind": "themes_by_group", "group_by": "country",
                                             "quotes_per_cell": 10**9, "max_quote_chars": 10**12}]},
                        "P014", "from 0 to 100"),
}


@pytest.mark.parametrize("case", list(PLAN_CASES))
def test_a_plan_number_outside_its_range_is_a_plan_error_row(case):
    from cimstats.pipeline import read_analysis_plan as read_plan

    sections, code, words = PLAN_CASES[case]
    with pytest.raises(PlanError) as e:
        read_plan(plan_dict(**sections))
    rows = e.value.report.errors
    assert {i.code for i in rows} == {code}, e.value.report.summary()
    assert words in rows[0].message and "\n" not in str(e.value)


MECH_CASES = {
    "wave 10^12": ({"wave": 10**12}, "M007", "from 0 to 99"),
    "moderator values": ({"moderator_values": list(range(10**4))}, "M020", "1 to 20 finite numbers"),
    "moderator value inf": ({"moderator_values": [1, float("inf")]}, "M020", "finite"),
}


@pytest.mark.parametrize("case", list(MECH_CASES))
def test_a_mechanism_plan_number_outside_its_range_is_a_plan_error_row(case):
    from cimstats.mechanisms import read_mechanism_plan as read_plan
    from cimstats.mechanisms.plan import default_plan

    change, code, words = MECH_CASES[case]
    doc = default_plan().to_dict()
    doc["models"]["ce_mediation"].update(change)
    with pytest.raises(PlanError) as e:
        read_plan(doc)
    rows = e.value.report.errors
    assert [i.code for i in rows] == [code] and words in rows[0].message and "ce_mediation" in rows[0].message


def test_a_binary_plan_file_is_a_plan_error_naming_it(tmp_path):
    from cimstats.mechanisms import read_mechanism_plan
    from cimstats.pipeline import read_analysis_plan as read_plan

    p = tmp_path / "plan.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 10)
    for reader in (read_plan, read_mechanism_plan):
        with pytest.raises(PlanError, match=r"plan\.yaml' is not UTF-8 text"):
            reader(p)
    mech = tmp_path / "mech.yaml"
    mech.write_bytes(b"\xff" * 10)
    with pytest.raises(PlanError) as e:
        read_plan(plan_dict(mechanisms={"plan": str(mech)}))
    assert [i.code for i in e.value.report.errors] == ["P012"] and "mech.yaml" in e.value.report.errors[0].message


def test_a_plan_path_that_is_a_folder_is_named(tmp_path):
    from cimstats.pipeline import read_analysis_plan as read_plan

    (tmp_path / "plan.yaml").mkdir()
    with pytest.raises(PlanError, match="is a folder"):
        read_plan(tmp_path / "plan.yaml")


def test_yaml_nested_too_deeply_is_a_plan_error(tmp_path):
    from cimstats.mechanisms import read_mechanism_plan
    from cimstats.pipeline import read_analysis_plan as read_plan

    p = tmp_path / "deep.yaml"
    p.write_text("plan: x\nsources: " + "[" * 1100 + "]" * 1100 + "\n", encoding="utf-8")
    with pytest.raises(PlanError, match="too deeply"):
        read_plan(p)
    with pytest.raises(PlanError, match="too deeply"):
        read_mechanism_plan(p)


def test_the_documented_plan_is_still_valid():
    from cimstats.pipeline import demo_plan

    assert demo_plan().sections["mechanisms"]["n_boot"] >= 50
    yaml.safe_load(json.dumps(plan_dict()))


# -- survey metadata --------------------------------------------------------------------------------------
def test_a_sidecar_nested_100000_deep_is_a_clean_error(tmp_path):
    from cimstats.io import read_survey
    from cimstats.io.metajson import meta_from_json

    csv = tmp_path / "wave1.csv"
    csv.write_text("x\n1\n", encoding="utf-8")
    side = tmp_path / "wave1.csv.meta.json"
    side.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(SurveyReadError, match=r"'wave1.csv.meta.json' nests JSON .* too deeply"):
        read_survey(csv)
    with pytest.raises(MetadataError, match="too deeply"):
        meta_from_json('{"a": ' * 100_000 + "1" + "}" * 100_000)
    side.write_bytes(b"\xff\xfe\xfa" * 10)
    with pytest.raises(SurveyReadError, match="not valid cimstats survey metadata"):
        read_survey(csv)
