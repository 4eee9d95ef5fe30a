"""Swapped codes and reversed scales are caught code by code; declared missing codes carry over."""

from __future__ import annotations

import pandas as pd
import pytest

from cimstats.dictionary import Dictionary, harmonise
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
