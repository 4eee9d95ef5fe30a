"""Dictionary reading and checking: every D and R code, collected in one report without data."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from cimstats.dictionary import Dictionary, check_dictionary, read_dictionary
from cimstats.dictionary.codes import CODES
from cimstats.dictionary.expr import ExpressionError, parse_case_when, tokenize
from cimstats.errors import DictionaryError

BASE = {
    "studies": [{"study": "EN", "file": "en.csv", "country": "EN", "wave": "0"},
                {"study": "NL", "file": "nl.csv", "country": "NL", "wave": "0"}],
    "variables": [{"name": "sex", "type": "categorical", "label": "Sex", "min": "1", "max": "2", "required": "yes"},
                  {"name": "age", "type": "integer", "label": "Age", "min": "18", "max": "110", "unit": "years"},
                  {"name": "hba1c_mmol", "type": "decimal", "unit": "mmol/mol"}],
    "categories": [{"variable": "sex", "code": "1", "label": "male"}, {"variable": "sex", "code": "2", "label": "female"}],
    "mappings": [{"target": "sex", "study": "EN", "rule": "direct", "source": "sex"},
                 {"target": "sex", "study": "NL", "rule": "recode", "source": "geslacht", "arguments": "1=1; 2=2"},
                 {"target": "age", "study": "EN", "rule": "direct", "source": "age"},
                 {"target": "age", "study": "NL", "rule": "direct", "source": "leeftijd"},
                 {"target": "hba1c_mmol", "study": "EN", "rule": "convert", "source": "hb", "arguments": "from=%"},
                 {"target": "hba1c_mmol", "study": "NL", "rule": "direct", "source": "hb"}],
}


def write(folder, tables):
    folder.mkdir(exist_ok=True)
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder


def codes_of(tables, tmp_path):
    return [i.code for i in check_dictionary(write(tmp_path / "d", tables))]


def test_base_dictionary_is_clean(tmp_path):
    rep = check_dictionary(write(tmp_path / "d", BASE))
    assert [i.code for i in rep if i.severity == "error"] == []
    d = read_dictionary(tmp_path / "d")
    assert list(d.targets) == ["sex", "age", "hba1c_mmol"]
    assert d.targets["sex"].valid_codes == {1.0, 2.0}


def mutate(table, idx, **changes):
    t = copy.deepcopy(BASE)
    if idx is None:
        t[table].append(changes)
    else:
        t[table][idx].update(changes)
    return t


CASES = {
    "D002": lambda: {**BASE, "variables": [{k: v for k, v in r.items() if k != "type"} for r in BASE["variables"]]},
    "D003": lambda: mutate("variables", 0, typo_col="x"),
    "D004": lambda: mutate("mappings", 0, rule=""),
    "D005": lambda: mutate("mappings", None, target="sex", study="EN", rule="direct", source="sex2"),
    "D006": lambda: mutate("variables", 1, type="integr"),
    "D007": lambda: mutate("variables", 1, min="eighteen"),
    "D008": lambda: mutate("mappings", 0, study="EN2"),
    "D009": lambda: mutate("mappings", 2, target="agee"),
    "D010": lambda: {**BASE, "categories": pd.DataFrame(columns=["variable", "code", "label"])},
    "D011": lambda: mutate("variables", 1, min="110", max="18"),
    "D012": lambda: mutate("categories", None, variable="sex", code="7", label="other"),
    "D013": lambda: {**BASE, "mappings": BASE["mappings"][1:]},
    "D018": lambda: mutate("variables", 0, label="x" * 81),
    "D016": lambda: mutate("categories", None, variable="age", code="20", label="twenty"),
    "R101": lambda: mutate("mappings", 0, rule="recod"),
    "R102": lambda: mutate("mappings", 1, arguments="1=1; 2"),
    "R103": lambda: mutate("mappings", 4, arguments=""),
    "R104": lambda: mutate("mappings", 4, arguments="from=%; unit=mmol/mol"),
    "R105": lambda: mutate("mappings", 0, source="sex, gender"),
    "R106": lambda: mutate("mappings", 1, arguments="1=1; 2=3"),
    "R107": lambda: mutate("mappings", 4, arguments="from=kg"),
    "R108": lambda: mutate("mappings", 2, rule="cut", arguments="breaks=18, 65, 40"),
    "R109": lambda: mutate("mappings", 2, rule="quantile", arguments="n=5; direction=up"),
    "R110": lambda: mutate("mappings", 2, rule="case_when", arguments="when age >> 3 then 1"),
    "R111": lambda: mutate("mappings", 2, rule="case_when", arguments="when years > 3 then 1"),
    "R112": lambda: mutate("mappings", 2, status="impossible"),
    "R113": lambda: mutate("mappings", 2, rule="id"),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_dictionary_code(code, tmp_path):
    got = codes_of(CASES[code](), tmp_path)
    assert code in got, got


def test_d001_d014_d015(tmp_path):
    folder = write(tmp_path / "d", {k: v for k, v in BASE.items() if k != "categories"})
    assert "D001" in [i.code for i in check_dictionary(folder)]
    folder = write(tmp_path / "e", BASE)
    assert "D014" not in [i.code for i in check_dictionary(folder)]  # no data beside it: data live elsewhere
    (folder / "en.csv").write_text("sex\n1\n")
    rep = check_dictionary(folder)  # en.csv is there, so nl.csv is looked for too
    assert [i.row for i in rep if i.code == "D014"] == [3]
    assert [i.code for i in check_dictionary(folder, data_dir=tmp_path)].count("D014") == 1
    (folder / "variables.csv").write_bytes(b"\xff\xfe\x00bad")
    assert "D015" in [i.code for i in check_dictionary(folder)]


def test_all_problems_collected_with_file_row_column_remedy(tmp_path):
    t = mutate("mappings", 0, rule="recod")
    t["variables"][1]["type"] = "integr"
    t["mappings"][1]["study"] = "NLX"
    folder = write(tmp_path / "d", t)
    with pytest.raises(DictionaryError) as exc:
        read_dictionary(folder)
    rep = exc.value.report
    assert {"R101", "D006", "D008"} <= {i.code for i in rep}
    r101 = next(i for i in rep if i.code == "R101")
    assert (r101.file, r101.row, r101.column) == ("mappings.csv", 2, "rule")
    assert "recode" in r101.remedy
    assert isinstance(exc.value, ValueError)
    d = read_dictionary(folder, strict=False)
    assert len(d.report.errors) == len(rep.errors)


def test_every_code_has_a_description():
    for code in list(CASES) + ["D001", "D014", "D015"]:
        assert code in CODES


def test_xlsx_workbook_is_accepted(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    with pd.ExcelWriter(folder / "dictionary.xlsx") as xw:
        for name, rows in BASE.items():
            pd.DataFrame(rows).to_excel(xw, sheet_name=name, index=False)
    d = read_dictionary(folder)
    assert len(d.rules) == 6


def test_from_frames_matches_csv(tmp_path):
    a = Dictionary.from_frames(**BASE)
    b = read_dictionary(write(tmp_path / "d", BASE))
    assert set(a.rules) == set(b.rules) and list(a.targets) == list(b.targets)


# -- the restricted expression language ---------------------------------------------------------
@pytest.mark.parametrize("text", [
    "when __import__('os') then 1",
    "when age > 3 then 1; else",
    "when (age > 3 then 1",
    "when age + 1 > 3 then 1",
    "when age > 3 then 1 else 2 extra",
    "when age in 1, 2 then 1",
    "when age > 3",
])
def test_expression_parser_rejects(text):
    with pytest.raises(ExpressionError):
        parse_case_when(text)


def test_expression_parser_accepts_and_reports_names():
    cw = parse_case_when("when not (a = 1 or b <> 'x') and c not in (1, 2) then 1; when d is not missing then NA; else e")
    assert cw.names() == {"a", "b", "c", "d", "e"} and cw.has_else
    assert [t.kind for t in tokenize("a >= -1.5e2")] == ["name", "op", "number", "end"]


def test_expression_error_position():
    with pytest.raises(ExpressionError) as e:
        parse_case_when("when age >> 3 then 1")
    assert e.value.position == 10


# -- several output tables --------------------------------------------------------------------
def two_tables():
    return {
        "studies": [{"study": "P", "table": "patients"}, {"study": "A", "table": "alters"}],
        "variables": [{"table": "patients", "name": "patient_id", "type": "string", "key": "yes"},
                      {"table": "alters", "name": "patient_id", "type": "string"},
                      {"table": "alters", "name": "alter_id", "type": "string", "key": "yes"},
                      {"table": "patients", "name": "wave", "type": "ordinal"},
                      {"table": "alters", "name": "wave", "type": "ordinal"}],
        "categories": [{"variable": "wave", "code": 0, "label": "baseline"}, {"variable": "wave", "code": 1, "label": "follow-up"}],
        "mappings": [{"target": "patient_id", "study": "P", "rule": "id", "source": "id", "arguments": "prefix=X-"},
                     {"target": "patient_id", "study": "A", "rule": "id", "source": "id", "arguments": "prefix=X-"},
                     {"target": "alter_id", "study": "A", "rule": "id", "source": "id, k", "arguments": "template=X-{1}-A{2:2}"},
                     {"target": "wave", "study": "P", "rule": "constant", "arguments": "value=0"},
                     {"target": "wave", "study": "A", "rule": "direct", "source": "w"}],
    }


def test_tables_share_names_and_categories():
    from cimstats.dictionary import harmonise

    d = Dictionary.from_frames(**two_tables())
    assert not d.report.issues, d.report.summary()
    assert set(d.tables) == {"patients", "alters"} and d.tables["alters"]["wave"].valid_codes == {0.0, 1.0}
    res = harmonise({"P": pd.DataFrame({"id": [1, 2]}), "A": pd.DataFrame({"id": [1, 1, 2], "k": [1, 2, 1], "w": [0, 1, 0]})}, d)
    assert res["alters"].data["alter_id"].tolist() == ["X-1-A01", "X-1-A02", "X-2-A01"]
    assert res["patients"].data["wave"].tolist() == [0.0, 0.0]
    surveys, report = res
    assert set(surveys) == {"patients", "alters"} and "table" in report.table.columns
    with pytest.raises(Exception, match="2 tables"):
        res.survey


def test_d017_table_mismatch():
    t = two_tables()
    t["mappings"].append({"target": "alter_id", "study": "P", "rule": "direct", "source": "x"})
    t["variables"].append({"table": "carers", "name": "c", "type": "integer"})
    d = Dictionary.from_frames(**t)
    assert [i.code for i in d.report if i.code == "D017"] == ["D017", "D017"]


def test_cli_dictionary_check_and_draft(tmp_path, cli):
    from cimstats.io import Survey, VariableMeta, write_survey

    folder = write(tmp_path / "d", BASE)
    r = cli("dictionary", "check", str(folder))
    assert r.returncode == 0, r.stderr
    bad = write(tmp_path / "bad", CASES["R101"]())
    r = cli("dictionary", "check", str(bad), "--csv", str(tmp_path / "problems.csv"))
    assert r.returncode == 1 and "R101" in r.stderr
    assert "R101" in pd.read_csv(tmp_path / "problems.csv")["code"].tolist()
    s = Survey.from_raw(pd.DataFrame({"sex": [1.0, 2.0, 9.0], "age": [40.0, 50.5, 60.0]}),
                        {"sex": VariableMeta("sex", label="Sex", value_labels={1: "Male", 2: "Female", 9: "Refused"}, missing_codes=(9,))})
    write_survey(s, tmp_path / "en.sav")
    write_survey(Survey(pd.DataFrame({"sex": [1.0]})), tmp_path / "nl.sav")
    r = cli("dictionary", "draft", str(tmp_path / "en.sav"), str(tmp_path / "nl.sav"), "--out", str(tmp_path / "draft"))
    assert r.returncode == 0, r.stderr
    cats = pd.read_csv(tmp_path / "draft" / "categories.csv")
    assert cats[["code", "is_missing"]].values.tolist() == [[1, "no"], [2, "no"], [9, "yes"]]
    maps = pd.read_csv(tmp_path / "draft" / "mappings.csv")
    assert maps.set_index(["target", "study"]).loc[("age", "nl"), "rule"] == "impossible"
    assert "differ" in maps.set_index(["target", "study"]).loc[("sex", "nl"), "comment"]
    assert not [i for i in check_dictionary(tmp_path / "draft") if i.severity == "error"]
    r = cli("dictionary", "draft", str(tmp_path / "en.sav"), "--out", str(tmp_path / "draft"))
    assert r.returncode == 2 and "already has" in r.stderr


def test_draft_proposes_recodes_by_label_and_the_draft_harmonises():
    from cimstats.dictionary import draft_dictionary, harmonise
    from cimstats.io import Survey, VariableMeta

    en = Survey.from_raw(pd.DataFrame({"sex": [1.0, 2.0, 9.0, 2.0]}),
                         {"sex": VariableMeta("sex", value_labels={1: "Male", 2: "Female", 9: "Refused"}, missing_codes=(9,))})
    nl = Survey.from_raw(pd.DataFrame({"sex": [2.0, 1.0, 1.0]}),
                         {"sex": VariableMeta("sex", value_labels={1: "female", 2: "male"})})
    gr = Survey.from_raw(pd.DataFrame({"sex": [1.0, 3.0]}),
                         {"sex": VariableMeta("sex", value_labels={1: "male", 3: "other"})})
    t = draft_dictionary([en, nl, gr], study_ids=["EN", "NL", "GR"])
    m = t["mappings"].set_index("study")
    assert (m.loc["NL", "rule"], m.loc["NL", "arguments"], m.loc["NL", "status"]) == ("recode", "1=2; 2=1", "complete")
    assert m.loc["GR", "status"] == "partial" and "3 'other'" in m.loc["GR", "comment"]
    d = Dictionary.from_frames(**{k: v for k, v in t.items()})
    res = harmonise({"EN": en, "NL": nl}, Dictionary.from_frames(
        studies=t["studies"].iloc[:2], variables=t["variables"], categories=t["categories"],
        mappings=t["mappings"].iloc[:2]))
    assert res.survey.data["sex"].tolist()[4:] == [1.0, 2.0, 2.0]
    assert not [i for i in d.report if i.severity == "error"]
