"""Mechanism tests on the demo study: planted truth recovered, rules, plans, joint display and rendering."""

from __future__ import annotations

import copy
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

import cimstats
from cimstats.errors import PlanError
from cimstats.mechanisms import VERDICTS, VerdictRules, default_plan, p_adjust, read_plan, test_mechanisms

datasets = pytest.importorskip("cimstats.datasets")

N_BOOT = 500


@pytest.fixture(scope="module")
def study():
    return datasets.demo_study()


@pytest.fixture(scope="module")
def result(study):
    return test_mechanisms(study, n_boot=N_BOOT, seed=11)


def _verdict(res, hid):
    return res.table.set_index("hypothesis_id").loc[hid, "verdict"]


def _reason(res, hid):
    return res.table.set_index("hypothesis_id").loc[hid, "verdict_reason"]


def _expected_from_truth():
    """Verdict each default hypothesis should receive, read from the planted parameters."""
    t = datasets.planted_truth()
    sm, ce, med = t["self_management"], t["collective_efficacy"], t["mediation"]
    exp = {}
    # ego-level navigation: total effect of diversity on self-management = c' + a(m = 0) * b
    total = sm["diversity"] + ce["diversity"] * sm["ce"]
    exp["NAV1"] = "supported" if total > 0 else "contrary"
    # weak-tie share and group ties do not enter the self-management equation
    exp["NAV2"] = "not supported" if "weak_tie_share" not in sm else None
    exp["NAV3"] = "not supported" if "group_tie" not in sm else None
    # alter level: weak tie vs family slope on area_deprivation (= -dep_c)
    iw = t["illness_work"]["dep_c"]
    exp["NAV4"] = "supported" if -(iw["weak_tie"] - iw["family"]) < 0 else "contrary"
    exp["CE1"] = "supported" if med["indirect_by_area_deprivation"]["2"] > 0 else "contrary"
    exp["CE2"] = "supported" if med["index_of_moderated_mediation"] > 0 else "contrary"
    exp["NEG1"] = "supported" if t["follow_up"]["sm_change"]["realloc"] > 0 else "contrary"
    return exp


def _glmm_available():
    try:
        return getattr(cimstats, "glmm", None) is not None
    except AttributeError:
        return False


def test_complete_table_every_verdict_has_reason(result):
    t = result.table
    assert t["hypothesis_id"].tolist() == default_plan().hypotheses["hypothesis_id"].tolist()
    assert set(t["verdict"]) <= set(VERDICTS)
    assert t["verdict_reason"].map(lambda r: isinstance(r, str) and len(r) > 10).all()
    tested = t["verdict"] != "not testable"
    assert t.loc[tested & (t["template"] != "invariance"), ["estimate", "ci_lower", "ci_upper", "p_value",
                                                              "p_adjusted", "n"]].notna().all().all()
    # each model fitted once; hypotheses sharing a model read the same fit
    assert result.models["model_id"].is_unique
    nav = t.loc[t["model_id"] == "ego_navigation", "n"]
    assert nav.nunique() == 1


@pytest.mark.parametrize("hid", ["NAV1", "NAV2", "NAV3", "CE1", "CE2", "NEG1"])
def test_verdicts_match_planted_truth(result, hid):
    assert _verdict(result, hid) == _expected_from_truth()[hid], _reason(result, hid)


def test_alter_level_navigation_needs_glmm(result):
    if _glmm_available():
        assert _verdict(result, "NAV4") == _expected_from_truth()["NAV4"], _reason(result, "NAV4")
    else:
        assert _verdict(result, "NAV4") == "not testable"
        assert "cimstats.glmm" in _reason(result, "NAV4")


def test_mediation_estimates_near_planted_effects(result):
    truth = datasets.planted_truth()["mediation"]
    t = result.table.set_index("hypothesis_id")
    # scale scores carry item noise, so the estimates are attenuated/inflated a little: check direction and size
    assert t.loc["CE2", "ci_lower"] < truth["index_of_moderated_mediation"] * 2.5
    assert t.loc["CE1", "ci_lower"] > 0 and t.loc["CE1", "estimate"] == pytest.approx(
        truth["indirect_by_area_deprivation"]["2"], abs=0.02)


def test_invariance_gates_mediation(result):
    t = result.table.set_index("hypothesis_id")
    assert "metric invariance holds" in t.loc["CE1", "diagnostics"]
    levels = result.fits["ce_invariance"].table["model"].tolist()
    assert levels[:2] == ["configural", "metric"]


@pytest.mark.xfail(reason="cimstats.invariance cannot yet fit the scalar step of a one-factor model "
                          "(information matrix singular at the item intercepts)", strict=False)
def test_scalar_invariance_recovered(result):
    # the demo's CE items are generated alike in every country: scalar invariance holds
    assert _verdict(result, "CE3") == "supported", _reason(result, "CE3")


def test_failed_invariance_makes_dependent_hypotheses_not_testable(result):
    strict = result.with_rules()  # no refit needed for the unchanged rules
    assert strict.table["verdict"].tolist() == result.table["verdict"].tolist()
    plan = default_plan().to_dict()
    plan = copy.deepcopy(plan)
    plan["models"]["ce_mediation"]["requires_invariance"] = {"construct": "ce", "level": "strict"}
    plan["hypotheses"] = [h for h in plan["hypotheses"] if h["model"] in ("ce_mediation", "ce_invariance")]
    for h in plan["hypotheses"]:
        h["id"] = h.pop("hypothesis_id")
        h["model"] = h["model"]
        h["themes"] = h.pop("theme_ids").split(";")
        for k in ("template", "level", "wave", "required_variables"):
            h.pop(k)
    res = test_mechanisms(result_study(), plan, n_boot=100, seed=1)
    t = res.table.set_index("hypothesis_id")
    assert t.loc["CE1", "verdict"] == "not testable"
    assert "strict" in t.loc["CE1", "verdict_reason"] and "invariance" in t.loc["CE1", "verdict_reason"]


_STUDY = {}


def result_study():
    if "s" not in _STUDY:
        _STUDY["s"] = datasets.demo_study()
    return _STUDY["s"]


def test_changing_a_rule_changes_verdicts(result):
    before = result.table.set_index("hypothesis_id")["verdict"]
    strict = result.with_rules({"basis": "p_adjusted", "alpha": 1e-40})
    after = strict.table.set_index("hypothesis_id")["verdict"]
    assert (before == "supported").any()
    assert not (after == "supported").any()
    changed = before.index[(before == "supported")]
    assert (after[changed] == "not supported").all()
    assert "1e-40" in strict.table.set_index("hypothesis_id").loc[changed[0], "verdict_reason"]
    # a user-supplied rule
    custom = result.with_rules(lambda row: ("contrary", "every estimate judged contrary by this rule"))
    assert set(custom.table.loc[custom.table["template"] != "invariance", "verdict"]) <= {"contrary", "not testable"}
    # without adjustment, the auto rule falls back on the interval
    none = result.with_rules(adjust=None)
    assert none.table["p_adjusted"].equals(none.table["p_value"].where(none.table["template"] != "invariance"))


def test_rules_are_checked():
    with pytest.raises(PlanError, match="basis"):
        VerdictRules(basis="vibes")
    with pytest.raises(PlanError, match="unknown setting"):
        VerdictRules.from_any({"alfa": 0.01})


def test_absent_variable_and_missing_wave_are_not_testable(study):
    text = resources.files("cimstats.mechanisms").joinpath("default_plan.yaml").read_text(encoding="utf-8")
    plan = yaml.safe_load(text)
    plan["models"] = {"ego_navigation": plan["models"]["ego_navigation"], "negotiation": plan["models"]["negotiation"],
                      "lonely": {"template": "lmm", "level": "ego", "wave": 0,
                                 "formula": "sm ~ loneliness + country + (1 | practice_id)"}}
    plan["hypotheses"] = [h for h in plan["hypotheses"] if h["model"] in plan["models"]] + [
        {"id": "X1", "mechanism": "negotiation", "statement": "Lonely patients manage worse.", "model": "lonely",
         "estimand": "loneliness", "expected": "negative"}]
    P, A = study.patients, study.alters
    res = test_mechanisms((P.loc[P["wave"] == 0], A.loc[A["wave"] == 0]), plan, n_boot=100)
    t = res.table.set_index("hypothesis_id")
    assert t.loc["X1", "verdict"] == "not testable"
    assert "loneliness" in t.loc["X1", "verdict_reason"] and "absent" in t.loc["X1", "verdict_reason"]
    assert t.loc["NEG1", "verdict"] == "not testable"
    assert "two waves" in t.loc["NEG1", "verdict_reason"]
    assert t.loc["NAV1", "verdict"] == "supported"
    # patients only: network constructs cannot be built
    res2 = test_mechanisms(P, plan, n_boot=100)
    assert "alter table" in res2.table.set_index("hypothesis_id").loc["NAV1", "verdict_reason"]


def test_malformed_plan_lists_every_problem():
    bad = {
        "plan": "broken", "extra_section": 1,
        "constructs": {"ce": {"kind": "scale", "instrument": "ce_personal8"}, "z": {"kind": "magic"}},
        "models": {"m1": {"template": "lmx"}, "m2": {"template": "lmm"},
                   "m3": {"template": "moderated_mediation", "x": "a", "m": "b", "y": "c", "moderator": "w",
                          "requires_invariance": {"construct": "ce", "level": "metric"}}},
        "hypotheses": [
            {"id": "H1", "mechanism": "navigation", "model": "m9", "estimand": "x", "expected": "up"},
            {"id": "H1", "mechanism": "negotiation", "model": "m2"},
        ],
        "verdict_rules": {"alpha": 3},
    }
    with pytest.raises(PlanError) as ei:
        read_plan(bad)
    codes = [i.code for i in ei.value.report.errors]
    for code in ("M001", "M003", "M004", "M005", "M006", "M009", "M011", "M012", "M013", "M014", "M015", "M016"):
        assert code in codes, (code, codes)
    assert len(codes) >= 12
    assert str(len(codes)) in str(ei.value)


def test_plan_from_yaml_text_and_default_is_valid(tmp_path):
    p = default_plan()
    assert set(p.hypotheses["mechanism"]) == {"network_navigation", "negotiation", "collective_efficacy"}
    assert p.hypotheses.set_index("hypothesis_id").loc["NAV1", "required_variables"].split(";") == [
        "sm", "diversity", "weak_tie_share", "group_tie", "country", "practice_id"]
    f = tmp_path / "plan.yaml"
    f.write_text(resources.files("cimstats.mechanisms").joinpath("default_plan.yaml").read_text(encoding="utf-8"),
                 encoding="utf-8")
    assert read_plan(f).hypotheses.equals(p.hypotheses)
    with pytest.raises(PlanError, match="does not exist"):
        read_plan(tmp_path / "nope.yaml")


def test_p_adjust_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.2, 9)
    p[4] = np.nan
    ok = np.isfinite(p)
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        got = p_adjust(p, ours)
        want = multipletests(p[ok], method=theirs)[1]
        np.testing.assert_allclose(got[ok], want, rtol=1e-12)
        assert np.isnan(got[4])


def test_feeds_joint_display_and_renders(result, tmp_path):
    from cimstats.integrate import joint_display, read_codebook, validate_mechanism_table
    from cimstats.render import render

    t = validate_mechanism_table(result.table)
    assert len(t) == len(result.table)
    path = resources.files("cimstats.datasets") / "data" / "themes.yaml"
    cb = read_codebook(path)
    jd = joint_display(result, kind="side_by_side", codebook=cb)
    assert jd is not None
    jd2 = cimstats.joint_display(result.table, kind="side_by_side", codebook=cb)
    assert jd2 is not None
    spec = result.to_table_spec()
    text = " ".join(c.text for row in spec.grid() for c in row if c is not None)
    assert "NAV1" in text and "Collective efficacy" in text
    for ext in ("html", "docx", "md"):
        out = render(spec, tmp_path / f"mechanisms.{ext}")
        assert out.exists() and out.stat().st_size > 0


def test_views(result):
    td = result.tidy()
    assert list(td.columns[:8]) == ["term", "estimand", "estimate", "std_error", "statistic", "df", "p_value",
                                    "p_adjusted"]
    g = result.glance()
    assert int(g["n_hypotheses"].iloc[0]) == len(result.table)
    s = result.summary()
    assert "NAV1" in s and "Verdicts:" in s
    with pytest.raises(Exception):
        result.table = None  # frozen
