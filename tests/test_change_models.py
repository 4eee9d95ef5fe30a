"""Change hypotheses as ANCOVA: follow-up adjusted for baseline, every follow-up wave of a panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cimstats.errors import PlanError
from cimstats.mechanisms import model_frame, read_mechanism_plan, test_mechanisms

#: planted effects of the synthetic panel (outcome at a follow-up wave on its baseline value and the exposure)
GAMMA, BETA, WAVE2 = 0.5, 0.4, 0.3


def _panel(n_waves: int, n: int = 400, seed: int = 7) -> pd.DataFrame:
    """A panel built here: y at each follow-up wave = 1 + GAMMA*y0 + BETA*x + WAVE2*[wave 2] + u_patient + e."""
    rng = np.random.default_rng(seed)
    practice = rng.integers(0, 20, n)
    u_practice = rng.normal(0, 0.3, 20)[practice]
    x = rng.normal(0, 1, n)
    y0 = 2 + 0.3 * x + u_practice + rng.normal(0, 1, n)
    u_patient = rng.normal(0, 0.5, n)
    rows = [pd.DataFrame({"patient_id": [f"p{i:04d}" for i in range(n)], "wave": 0, "y": y0, "x": x,
                          "practice_id": [f"g{k:02d}" for k in practice]})]
    for t in range(1, n_waves):
        yt = 1 + GAMMA * y0 + BETA * x + WAVE2 * (t == 2) + u_patient + rng.normal(0, 0.6, n)
        rows.append(rows[0].assign(wave=t, y=yt))
    return pd.concat(rows, ignore_index=True)


def _plan(model: dict, constructs: dict | None = None) -> dict:
    return {"constructs": constructs or {}, "models": {"m": {"template": "lmm", **model}},
            "hypotheses": [{"id": "H1", "mechanism": "negotiation", "model": "m", "estimand": "x",
                            "expected": "positive"}]}


FOLLOWUP = {"level": "followup", "formula": "y ~ x + (1 | practice_id)"}


def test_three_waves_recover_planted_effects_with_a_random_intercept_per_patient():
    P = _panel(3)
    res = test_mechanisms(P, _plan(FOLLOWUP))
    fit = res.fit("m")
    t = fit.tidy().set_index("term")
    # every follow-up wave of every patient is a row: two per patient
    assert res.table.loc[0, "n"] == 2 * P["patient_id"].nunique()
    assert set(fit.ngroups) == {"practice_id", "patient_id"}
    for term, planted in (("x", BETA), ("y_baseline", GAMMA), ("followup_wavewave 2", WAVE2)):
        assert t.loc[term, "ci_lower"] < planted < t.loc[term, "ci_upper"], (term, t.loc[term].to_dict())
    assert res.table.loc[0, "verdict"] == "supported"
    d = res.models.loc[0, "diagnostics"]
    assert "ANCOVA" in d and "y_baseline" in d and "random intercept per patient" in d, d
    assert "followup_wave" in res.models.loc[0, "model"] and "(1 | patient_id)" in res.models.loc[0, "model"]


def test_previous_wave_as_reference():
    P = _panel(3)
    f = model_frame(P, "m", _plan({**FOLLOWUP, "reference": "previous"}))
    assert f.columns.tolist() == ["y", "x", "practice_id", "y_previous", "patient_id", "wave", "followup_wave"]
    at = P.set_index(["patient_id", "wave"])["y"]
    w2 = f.loc[f["wave"] == 2]
    np.testing.assert_array_equal(w2["y_previous"].to_numpy(), at.loc[list(zip(w2["patient_id"], [1] * len(w2)))])
    np.testing.assert_array_equal(w2["y"].to_numpy(), at.loc[list(zip(w2["patient_id"], [2] * len(w2)))])
    base = model_frame(P, "m", _plan(FOLLOWUP))
    assert (base["y_baseline"].to_numpy() == np.tile(P.loc[P["wave"] == 0, "y"].to_numpy(), 2)).all()


def test_two_waves_give_the_ancova_of_the_change_level():
    """Follow-up on baseline (level followup) = change on baseline (level change), to 1e-10."""
    P = _panel(2)
    change = _plan({"level": "change", "formula": "y_change ~ y + x + (1 | practice_id)"},
                   {"y_change": {"kind": "wave_difference", "of": "y"}})
    a = test_mechanisms(P, change).fit("m").tidy().set_index("term")
    followup = test_mechanisms(P, _plan(FOLLOWUP))
    b = followup.fit("m").tidy().set_index("term")
    cols = ["estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"]
    np.testing.assert_allclose(b.loc[["(Intercept)", "x"], cols], a.loc[["(Intercept)", "x"], cols],
                               rtol=0, atol=1e-10)
    # Satterthwaite df come from a numerical derivative: equal to 1e-10 relative
    np.testing.assert_allclose(b.loc[["(Intercept)", "x"], "df"], a.loc[["(Intercept)", "x"], "df"], rtol=1e-10)
    assert b.loc["y_baseline", "estimate"] == pytest.approx(a.loc["y", "estimate"] + 1, abs=1e-10)
    # one follow-up wave: no wave effect and no patient intercept (one row per patient)
    assert "patient_id" not in followup.fit("m").ngroups
    # at the change level the baseline is added when the plan leaves it out, with a note
    auto = test_mechanisms(P, _plan({"level": "change", "formula": "y_change ~ x + (1 | practice_id)"},
                                    {"y_change": {"kind": "wave_difference", "of": "y"}}))
    c = auto.fit("m").tidy().set_index("term")
    np.testing.assert_allclose(c.loc["x", cols].to_numpy(dtype=float), a.loc["x", cols].to_numpy(dtype=float),
                               rtol=0, atol=1e-10)
    assert "added by default" in auto.models.loc[0, "diagnostics"]


def test_baseline_none_leaves_it_out():
    P = _panel(2)
    res = test_mechanisms(P, _plan({**FOLLOWUP, "baseline": "none"}))
    assert "y_baseline" not in res.fit("m").tidy()["term"].tolist()
    assert "ANCOVA" not in res.models.loc[0, "diagnostics"]


def test_one_wave_is_not_testable():
    res = test_mechanisms(_panel(1), _plan(FOLLOWUP))
    assert res.table.loc[0, "verdict"] == "not testable"
    assert "follow-up" in res.table.loc[0, "verdict_reason"]


@pytest.mark.parametrize("model, fragment", [
    ({"template": "invariance", "construct": "c", "group": "country", "level": "followup"}, "followup"),
    ({**FOLLOWUP, "baseline": "yes"}, "baseline"),
    ({"level": "ego", "formula": "y ~ x", "reference": "previous"}, "reference"),
    ({**FOLLOWUP, "current": ["z"]}, "current"),
])
def test_change_options_are_checked(model, fragment):
    plan = _plan(model, {"c": {"kind": "scale", "instrument": "ce_personal8", "score": "ce"}})
    if model.get("template") == "invariance":
        plan["models"]["m"] = model
        plan["hypotheses"][0]["estimand"] = "metric"
    with pytest.raises(PlanError) as ei:
        read_mechanism_plan(plan)
    msgs = [i.message for i in ei.value.report.errors if i.code == "M007"]
    assert msgs and fragment in msgs[0], ei.value.report.errors
