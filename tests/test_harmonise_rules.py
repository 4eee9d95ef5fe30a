"""Each rule type on small in-memory studies, checked against values worked out from the rule's definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cimstats.dictionary import Dictionary, harmonise
from cimstats.dictionary.rules import convert_units
from cimstats.io import Survey, VariableMeta


def run(raw, meta, variables, mappings, categories=None, study="S"):
    s = Survey.from_raw(pd.DataFrame(raw), meta or {})
    for m in mappings:
        m.setdefault("study", study)
    d = Dictionary.from_frames(studies=[{"study": study, "country": "EN", "wave": 0}], variables=variables,
                               categories=categories or [], mappings=mappings)
    assert not d.report.has_errors, d.report.summary()
    return harmonise({study: s}, d)


def cats(var, codes, missing=()):
    return [{"variable": var, "code": c, "label": f"c{c}"} for c in codes] + \
           [{"variable": var, "code": c, "label": f"m{c}", "is_missing": "yes"} for c in missing]


def col(res, name):
    return res.survey.data[name].tolist()


def row(res, target):
    return res.report.table.set_index("target").loc[target]


def test_direct_copies_values_and_counts_declared_missing():
    res = run({"x": [1.0, 2.5, 99, None]}, {"x": VariableMeta("x", missing_codes=(99,))},
              [{"name": "y", "type": "decimal"}], [{"target": "y", "rule": "direct", "source": "x"}])
    assert col(res, "y")[:2] == [1.0, 2.5]
    r = row(res, "y")
    assert (r.n_valid, r.n_source_missing, r.n_system_missing, r.status) == (2, 1, 1, "complete")


def test_recode_code_label_range_else_and_source_missing():
    meta = {"g": VariableMeta("g", value_labels={1: "Man", 2: "Woman", 7: "Other", 98: "Don't know", 99: "Refused"},
                              missing_codes=(98, 99))}
    res = run({"g": [1, 2, 7, 98, 99, 5]}, meta, [{"name": "sex", "type": "categorical"}],
              [{"target": "sex", "rule": "recode", "source": "g",
                "arguments": "'man'=1; 'WOMAN'=2; 5:7=NA; 98='dk'"}],
              categories=cats("sex", [1, 2], missing=[8]) + [{"variable": "sex", "code": 9, "label": "dk", "is_missing": "yes"}])
    out = res.survey.data["sex"]
    assert out.iloc[:2].tolist() == [1.0, 2.0] and out.iloc[2:].isna().all()
    assert res.survey.missing["sex"].tolist() == [None, None, None, 9, None, None]
    r = row(res, "sex")
    assert (r.n_valid, r.n_recoded_missing, r.n_declared_missing, r.n_source_missing) == (2, 2, 1, 1)
    assert r.status == "complete"
    assert res.survey.variable("sex").missing_codes == (8, 9)


def test_recode_unmapped_codes_are_reported_with_counts():
    res = run({"g": [1, 2, 3, 3, 4]}, {}, [{"name": "y", "type": "categorical"}],
              [{"target": "y", "rule": "recode", "source": "g", "arguments": "1=1; 2=2"}], categories=cats("y", [1, 2]))
    r = row(res, "y")
    assert (r.n_unmapped, r.status) == (3, "partial")
    um = res.report.unmapped.set_index("value")["n"].to_dict()
    assert um == {"3": 2, "4": 1}
    assert [i.code for i in res.report.issues] == ["H203"]


def test_recode_text_source_and_else_copy():
    res = run({"t": ["yes", "No", " yes ", None]}, {}, [{"name": "y", "type": "categorical"}],
              [{"target": "y", "rule": "recode", "source": "t", "arguments": "'yes'=1; 'no'=0"}], categories=cats("y", [0, 1]))
    assert col(res, "y")[:3] == [1.0, 0.0, 1.0]
    res2 = run({"x": [1, 2, 3]}, {}, [{"name": "y", "type": "integer"}],
               [{"target": "y", "rule": "recode", "source": "x", "arguments": "1=10; else=copy"}])
    assert col(res2, "y") == [10.0, 2.0, 3.0]


def test_reverse_uses_arguments_or_target_range():
    res = run({"x": [1, 2, 5]}, {}, [{"name": "a", "type": "integer", "min": 1, "max": 5},
                                     {"name": "b", "type": "integer"}],
              [{"target": "a", "rule": "reverse", "source": "x"},
               {"target": "b", "rule": "reverse", "source": "x", "arguments": "min=1; max=7"}])
    assert col(res, "a") == [5.0, 4.0, 1.0]
    assert col(res, "b") == [7.0, 6.0, 3.0]


def test_rescale_from_to_and_scale_shift():
    x = np.array([1.0, 4.0, 7.0])
    res = run({"x": x}, {}, [{"name": "a", "type": "decimal"}, {"name": "b", "type": "decimal"}],
              [{"target": "a", "rule": "rescale", "source": "x", "arguments": "from=1:7; to=0:100"},
               {"target": "b", "rule": "rescale", "source": "x", "arguments": "scale=2; shift=-1"}])
    np.testing.assert_allclose(col(res, "a"), (x - 1) / 6 * 100)
    np.testing.assert_allclose(col(res, "b"), 2 * x - 1)


def test_convert_hba1c_weight_height():
    pct = np.array([5.0, 6.5, 9.0])
    res = run({"hb": pct, "lb": [150.0, 200.0, 180.0], "inch": [60.0, 70.0, 65.0]}, {},
              [{"name": "hba1c_mmol", "type": "decimal", "unit": "mmol/mol"},
               {"name": "kg", "type": "decimal", "unit": "kg"}, {"name": "cm", "type": "decimal"}],
              [{"target": "hba1c_mmol", "rule": "convert", "source": "hb", "arguments": "from=%"},
               {"target": "kg", "rule": "convert", "source": "lb", "arguments": "from=lb"},
               {"target": "cm", "rule": "convert", "source": "inch", "arguments": "from=in; to=cm"}])
    np.testing.assert_allclose(col(res, "hba1c_mmol"), (pct - 2.15) * 10.929)
    np.testing.assert_allclose(col(res, "kg"), np.array([150.0, 200.0, 180.0]) * 0.45359237)
    np.testing.assert_allclose(col(res, "cm"), np.array([60.0, 70.0, 65.0]) * 2.54)
    back = convert_units(convert_units(pct, "%", "mmol/mol"), "mmol/mol", "%")
    np.testing.assert_allclose(back, pct)


def test_cut_right_and_left_closed_with_out_of_band():
    x = [0.0, 18.5, 18.6, 25.0, 40.0, -1.0]
    res = run({"bmi": x}, {}, [{"name": "r", "type": "categorical"}, {"name": "l", "type": "categorical"}],
              [{"target": "r", "rule": "cut", "source": "bmi", "arguments": "breaks=0, 18.5, 25, inf"},
               {"target": "l", "rule": "cut", "source": "bmi", "arguments": "breaks=0, 18.5, 25, inf; closed=left"}],
              categories=cats("r", [1, 2, 3]) + cats("l", [1, 2, 3]))
    r = res.survey.data["r"].tolist()
    assert np.isnan(r[0]) and r[1:5] == [1.0, 2.0, 2.0, 3.0] and np.isnan(r[5])
    assert res.survey.data["l"].tolist()[:5] == [1.0, 2.0, 2.0, 3.0, 3.0]
    assert row(res, "r").n_out_of_range == 2 and row(res, "l").n_out_of_range == 1


@pytest.mark.parametrize("direction,expected", [("higher_more_deprived", [5, 4, 3, 2, 1, 1, 2, 3, 4, 5]),
                                                ("lower_more_deprived", [1, 2, 3, 4, 5, 5, 4, 3, 2, 1])])
def test_quantile_within_group_and_direction(direction, expected):
    res = run({"imd": list(range(1, 11)), "wave": [0] * 5 + [1] * 5}, {},
              [{"name": "q", "type": "ordinal"}],
              [{"target": "q", "rule": "quantile", "source": "imd",
                "arguments": f"n=5; direction={direction}; by=wave; index=IMD; version=2019; vintage=LSOA 2011"}],
              categories=cats("q", [1, 2, 3, 4, 5]))
    assert f"q in S: 5 quantiles of IMD 2019 (LSOA 2011), {direction.replace('_', ' ')}, 1 = most deprived" \
        in res.survey.source.notes
    got = col(res, "q")
    exp = expected[:5] + (expected[:5] if direction == "higher_more_deprived" else expected[:5])
    # within each wave the five areas fill quintiles 1..5 with 1 = most deprived
    assert got[:5] == [float(v) for v in exp[:5]] and got[5:] == [float(v) for v in exp[:5]]


def test_sum_and_mean_with_minimum_valid_and_prorating():
    raw = {"a": [1, 2, None, None], "b": [3, None, None, 4], "c": [5, 6, 7, None]}
    res = run(raw, {}, [{"name": "m", "type": "decimal"}, {"name": "s", "type": "decimal"}, {"name": "p", "type": "decimal"}],
              [{"target": "m", "rule": "mean", "source": "a, b, c", "arguments": "min_valid=2"},
               {"target": "s", "rule": "sum", "source": "a, b, c", "arguments": "min_valid=2"},
               {"target": "p", "rule": "sum", "source": "a, b, c", "arguments": "min_valid=2; prorate=yes"}])
    m = col(res, "m")
    assert m[0] == 3.0 and m[1] == 4.0 and np.isnan(m[2]) and np.isnan(m[3])
    assert col(res, "s")[:2] == [9.0, 8.0]
    assert col(res, "p")[1] == pytest.approx(8.0 * 3 / 2)
    assert row(res, "m").n_too_few_items == 2


def test_case_when_three_valued_logic_labels_and_else():
    meta = {"sex": VariableMeta("sex", value_labels={1: "Male", 2: "Female"}, missing_codes=(9,))}
    res = run({"age": [10, 40, 40, None, 50, 70], "sex": [1, 2, 1, 2, 9, 9]}, meta, [{"name": "g", "type": "categorical"}],
              [{"target": "g", "rule": "case_when", "source": "age, sex",
                "arguments": "when age < 18 then 1; when sex == 'female' and age between 18 and 64 then 2; else 3"}],
              categories=cats("g", [1, 2, 3]))
    g = col(res, "g")
    assert g[:3] == [1.0, 2.0, 3.0]
    assert np.isnan(g[3])  # unknown age: not sent to else
    assert np.isnan(g[4])  # age 50 known, sex declared missing: the AND is unknown
    assert g[5] == 3.0  # age 70: 'between' is false, so the AND is false whatever sex is (Kleene logic)
    r = row(res, "g")
    assert (r.n_system_missing, r.n_source_missing) == (1, 1)


def test_case_when_is_missing_routes_missing_values():
    res = run({"x": [1, None]}, {}, [{"name": "y", "type": "integer"}],
              [{"target": "y", "rule": "case_when", "source": "x", "arguments": "when x is missing then 0; else x"}])
    assert col(res, "y") == [1.0, 0.0]


def test_id_creation_and_constant_and_impossible():
    res = run({"pid": [7, 12], "site": ["a", "b"]}, {},
              [{"name": "patient_id", "type": "string", "required": "yes"}, {"name": "k", "type": "string"},
               {"name": "hb", "type": "decimal"}],
              [{"target": "patient_id", "rule": "id", "source": "pid", "arguments": "prefix=EN-; width=4"},
               {"target": "k", "rule": "constant", "arguments": "value=UK"},
               {"target": "hb", "rule": "impossible", "status": "impossible"}])
    assert col(res, "patient_id") == ["EN-0007", "EN-0012"]
    assert col(res, "k") == ["UK", "UK"]
    r = row(res, "hb")
    assert (r.status, r.n_impossible) == ("impossible", 2)


def test_out_of_range_values_set_missing_and_reported():
    res = run({"x": [1, 5, 11]}, {}, [{"name": "y", "type": "integer", "min": 1, "max": 10}],
              [{"target": "y", "rule": "direct", "source": "x"}])
    assert col(res, "y")[:2] == [1.0, 5.0]
    assert row(res, "y").n_out_of_range == 1
    assert "H206" in {i.code for i in res.report.issues}
    a = res.audit("y")
    assert a["source_value"].tolist() == [11.0] and a["reason"].tolist() == ["out_of_range"]


def test_design_columns_and_stacking_two_studies():
    d = Dictionary.from_frames(
        studies=[{"study": "A", "country": "EN", "wave": 0}, {"study": "B", "country": "NL", "wave": 1}],
        variables=[{"name": "x", "type": "decimal"}],
        mappings=[{"target": "x", "study": "A", "rule": "direct", "source": "x"},
                  {"target": "x", "study": "B", "rule": "rescale", "source": "z", "arguments": "scale=10"}])
    res = harmonise({"A": pd.DataFrame({"x": [1.0, 2.0]}), "B": pd.DataFrame({"z": [0.5]})}, d)
    data = res.survey.data
    assert data.columns.tolist()[:3] == ["study", "country", "wave"]
    assert data["study"].tolist() == ["A", "A", "B"] and data["country"].tolist() == ["EN", "EN", "NL"]
    assert data["wave"].tolist() == [0.0, 0.0, 1.0] and data["x"].tolist() == [1.0, 2.0, 5.0]
    assert res.rows == {"A": 2, "B": 1}
    survey, report = res
    assert survey is res.survey and report.all_complete


def test_quantile_ranks_each_area_once_with_per():
    # five areas; area 5 (most deprived) has four respondents, who must not push others down
    res = run({"idx": [1, 2, 3, 4, 5, 5, 5, 5], "area": ["a", "b", "c", "d", "e", "e", "e", "e"]}, {},
              [{"name": "q", "type": "ordinal"}],
              [{"target": "q", "rule": "quantile", "source": "idx",
                "arguments": "n=5; direction=higher_more_deprived; per=area"}],
              categories=cats("q", [1, 2, 3, 4, 5]))
    assert col(res, "q") == [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0]
