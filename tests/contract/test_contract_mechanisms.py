"""Mechanism results honour the result contract and survive save -> load unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from contract import check_contract

from cimstats import datasets, load_result
from cimstats.errors import PlanError
from cimstats.mechanisms import MechanismResult, VerdictRules, test_mechanisms
from cimstats.models._result import ResultNotAvailableError
from cimstats.render.figures.forest import forest_table

HYPOTHESES = ["NAV1", "NAV2", "CE1", "CE2", "CE3"]


@pytest.fixture(scope="module")
def result():
    return test_mechanisms(datasets.demo_study(), hypotheses=HYPOTHESES, n_boot=100, seed=5)


@pytest.fixture(scope="module")
def loaded(result, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mech") / "saved"
    result.save(folder)
    return load_result(folder)


def test_contract(result, tmp_path):
    again = check_contract(result, tmp_path)
    assert isinstance(again, MechanismResult) and again.plan is None
    assert again.plan_name == result.plan.name
    pd.testing.assert_frame_equal(again.table, result.table, check_exact=True)
    pd.testing.assert_frame_equal(again.models, result.models, check_exact=True)
    pd.testing.assert_frame_equal(forest_table(again), forest_table(result), check_exact=True)
    assert str(again) == str(result) and again.to_text() == result.to_text()


def test_intervals_at_another_level(result, loaded):
    t = result.tidy(level=0.9).set_index("term")
    # a linear mixed model's hypothesis: the model's own Satterthwaite t interval
    ci = result.fit("knowledge_navigation").conf_int(level=0.9)
    np.testing.assert_allclose(t.loc["NAV1", ["ci_lower", "ci_upper"]].to_numpy(dtype=float),
                               ci.loc["knowledge_share", ["ci_lower", "ci_upper"]].to_numpy(dtype=float), rtol=1e-9)
    # a mediation hypothesis: the mediation result's own interval at that level, from the same draws
    med = result.fit("ce_mediation").tidy(level=0.9).set_index("term")
    for hid in ("CE1", "CE2"):
        est = result.table.set_index("hypothesis_id").loc[hid, "estimand"]
        assert t.loc[hid, "ci_lower"] == med.loc[est, "ci_lower"]
        assert t.loc[hid, "ci_upper"] == med.loc[est, "ci_upper"]
    # an invariance check has no interval at any level
    assert t.loc["CE3", ["ci_lower", "ci_upper"]].isna().all()
    pd.testing.assert_frame_equal(loaded.tidy(level=0.9), result.tidy(level=0.9), check_exact=True)
    with pytest.raises(PlanError, match="level"):
        result.tidy(level=1.5)


def test_vcov_dropped_and_optimizer(result):
    v = result.vcov()
    se = result.table.set_index("hypothesis_id")["std_error"]
    np.testing.assert_allclose(np.diag(v)[:4], se.iloc[:4].to_numpy() ** 2, rtol=1e-12)
    assert v.loc["NAV1", "NAV2"] == 0.0 and np.isnan(v.loc["CE3", "CE3"])
    draws = result.fit("ce_mediation").bootstrap_draws()
    est = result.table.set_index("hypothesis_id")["estimand"]
    assert v.loc["CE1", "CE2"] == pytest.approx(draws[est["CE1"]].cov(draws[est["CE2"]]), rel=1e-12)
    d = result.dropped
    lmm = result.fit("knowledge_navigation")
    expect = {f"knowledge_navigation: {k}": v for k, v in lmm.dropped_by_column.items() if v}
    assert {k: v for k, v in zip(d["variable"], d["n_missing"]) if k.startswith("knowledge_navigation")} == expect
    opt = result.optimizer
    assert opt.converged and opt.iterations == 0 and any("knowledge_navigation" in c for c in opt.checks)


def test_loaded_result_has_no_fits_and_rejudges(result, loaded):
    with pytest.raises(ResultNotAvailableError):
        loaded.fit("knowledge_navigation")
    with pytest.raises(PlanError, match="not a model"):
        loaded.fit("no_such_model")
    a, b = result.with_rules({"basis": "p_value"}), loaded.with_rules({"basis": "p_value"})
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    assert a.rules_text == b.rules_text


def test_user_rule_is_not_saved(result, tmp_path):
    judged = result.with_rules(lambda row: ("supported", "by hand"))
    judged.save(tmp_path / "u")
    again = load_result(tmp_path / "u")
    assert again.rules is None and again.rules_text == judged.rules_text
    pd.testing.assert_frame_equal(again.tidy(), judged.tidy(), check_exact=True)
    assert isinstance(result.rules, VerdictRules)
