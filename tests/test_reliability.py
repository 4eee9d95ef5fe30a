"""Reliability against R: psych::alpha and stats::factanal (tests/reference/measures.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cimstats
from cimstats.errors import ScaleError
from cimstats.measures import reliability

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = json.loads((REFERENCE / "measures.json").read_text())
ITEMS = pd.read_csv(REFERENCE / "measures_items.csv")
TOL = 1e-6


def _case(name):
    case = REF["alpha"][name]
    x = ITEMS[case["items"]]
    if name.startswith("complete"):
        x = x.dropna()
    keys = case["keys"]
    keys = [keys] if isinstance(keys, str) else list(keys)
    return case, reliability.alpha(x, reverse=keys or None)


@pytest.mark.parametrize("name", sorted(REF["alpha"]))
def test_alpha_total_and_feldt_match_psych(name):
    case, res = _case(name)
    assert res.nobs == case["nrow"]
    for k, v in case["total"].items():
        assert res.total[k] == pytest.approx(v, abs=TOL), k
    assert res.ci["lower"] == pytest.approx(case["feldt"]["lower"], abs=TOL)
    assert res.ci["upper"] == pytest.approx(case["feldt"]["upper"], abs=TOL)


@pytest.mark.parametrize("name", sorted(REF["alpha"]))
def test_alpha_if_deleted_and_item_stats_match_psych(name):
    case, res = _case(name)
    for k, v in case["alpha_drop"].items():
        np.testing.assert_allclose(res.alpha_drop[k].to_numpy(), np.asarray(v, float), atol=TOL, err_msg=k)
    for k, v in case["item_stats"].items():
        np.testing.assert_allclose(res.item_stats[k].to_numpy(), np.asarray(v, float), atol=TOL, err_msg=k)


def test_omega_standardized_matches_factanal():
    o = REF["omega_factanal"]
    res = reliability.omega(ITEMS[o["items"]].dropna(), standardized=True)
    assert res.optimizer["converged"]
    np.testing.assert_allclose(res.loadings["std_loading"], o["loadings"], atol=1e-5)
    assert res.omega_total == pytest.approx(o["omega_total"], abs=1e-6)
    assert res.omega_observed == pytest.approx(o["omega_observed"], abs=1e-6)


SEM_REF = json.loads((REFERENCE / "sem.json").read_text())["omega"]


@pytest.mark.parametrize("case", sorted(SEM_REF))
def test_omega_matches_semtools_lavaan_and_psych(case):
    """One-factor CFA omega against semTools::compRelSEM (model-based and observed denominators),
    lavaan's delta-method SE of a defined omega, and psych::omega(fm = "ml") on standardized items."""
    ref = SEM_REF[case]
    x = ITEMS[[f"q{j}" for j in range(1, 6)]]
    missing = "fiml" if ref["missing"] == "ml" else "listwise"
    if missing == "listwise":
        x = x.dropna()
    res = reliability.omega(x, missing=missing, standardized=ref["standardized"])
    assert res.nobs == ref["nobs"]
    rel = 1e-4
    assert res.omega_total == pytest.approx(ref["omega_model"], rel=rel)
    assert res.omega_total == pytest.approx(ref["omega_defined"], rel=rel)
    assert res.omega_observed == pytest.approx(ref["omega_observed"], rel=rel)
    assert res.std_error == pytest.approx(ref["omega_se"], rel=rel)
    np.testing.assert_allclose([res.ci_lower, res.ci_upper], ref["omega_ci"], rtol=rel)
    np.testing.assert_allclose(res.loadings["loading"], ref["loadings"], rtol=rel)
    np.testing.assert_allclose(res.loadings["residual_variance"], ref["residuals"], rtol=rel)
    if "psych_omega_tot" in ref:
        assert res.omega_psych == pytest.approx(ref["psych_omega_tot"], rel=rel)
        assert res.omega_observed == pytest.approx(ref["psych_omega_h"], rel=rel)


def test_omega_views_and_reverse_keys():
    x = ITEMS[[f"q{j}" for j in range(1, 7)]]
    res = reliability.omega(x, reverse=["q6"])
    t = res.tidy()
    assert t.columns.tolist() == ["term", "estimate", "std_error", "statistic", "df", "p_value",
                                  "ci_lower", "ci_upper"]
    assert t["term"].iloc[0] == "omega_total" and "loading[q6-]" in set(t["term"])
    # the reversed item loads positively, like the others
    assert (res.loadings["loading"] > 0).all()
    g = res.glance()
    assert g["n_items"].iloc[0] == 6 and g["nobs"].iloc[0] + g["n_dropped"].iloc[0] == len(x)
    assert "omega_total" in res.summary()
    with pytest.raises(ScaleError, match="three"):
        reliability.omega(x[["q1", "q2"]])
    with pytest.raises(ScaleError, match="missing"):
        reliability.omega(x, missing="pairwise")


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.4, 0.9))
def test_property_omega_planted_truth_and_scale_invariance(seed, load):
    """Omega recovers the population value of a one-factor model, and rescaling items leaves the
    standardized omega unchanged."""
    rng = np.random.default_rng(seed)
    n = 4000
    f = rng.normal(size=n)
    lam = np.array([load, load, 0.6, 0.5])
    x = pd.DataFrame({f"i{j}": lam[j] * f + rng.normal(size=n) for j in range(4)})
    truth = lam.sum() ** 2 / (lam.sum() ** 2 + 4.0)
    res = reliability.omega(x)
    assert abs(res.omega_total - truth) < 4 * res.std_error + 1e-3
    a = reliability.omega(x, standardized=True).omega_total
    b = reliability.omega(x * np.array([1.0, 3.0, 0.5, 2.0]), standardized=True).omega_total
    assert a == pytest.approx(b, abs=1e-7)


def test_reference_records_versions():
    assert REF["psych_version"] and REF["r_version"]


def test_result_views():
    _, res = _case("complete_q1_q5")
    t = res.tidy()
    assert t.columns.tolist() == ["term", "estimate", "std_error", "statistic", "df", "p_value",
                                  "ci_lower", "ci_upper"]
    assert t["ci_lower"].iloc[0] < res.alpha < t["ci_upper"].iloc[0]
    assert "alpha if deleted" in res.summary()
    assert res.glance()["n_items"].iloc[0] == 5
    assert cimstats.reliability is reliability


def test_errors():
    with pytest.raises(ScaleError, match="q9"):
        reliability.alpha(ITEMS, items=["q1", "q9"])
    with pytest.raises(ScaleError, match="at least two"):
        reliability.alpha(ITEMS, items=["q1"])
    with pytest.raises(ScaleError, match="twice"):
        reliability.alpha(ITEMS, items=["q1", "q2", "q6"], reverse=["q6", "q6"])
    const = ITEMS[["q1", "q2"]].assign(q3=1.0)
    with pytest.raises(ScaleError, match="no variance"):
        reliability.alpha(const)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.3, 0.9))
def test_property_alpha_invariant_to_row_and_item_order(seed, load):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=60)
    x = pd.DataFrame({f"i{j}": load * f + rng.normal(size=60) for j in range(4)})
    a = reliability.alpha(x).alpha
    b = reliability.alpha(x.sample(frac=1, random_state=seed).iloc[:, ::-1]).alpha
    assert a == pytest.approx(b, abs=1e-12)
    # alpha of items scaled by positive constants: standardized alpha unchanged
    s = reliability.alpha(x * np.array([1, 2, 3, 4])).total["std_alpha"]
    assert s == pytest.approx(reliability.alpha(x).total["std_alpha"], abs=1e-12)


def test_scale_reliability_applies_instrument_reverse_keys():
    ins = cimstats.scales.load_instrument("isel12")
    rng = np.random.default_rng(5)
    f = rng.normal(size=300)
    d = pd.DataFrame({i: np.clip(np.round(1.5 + f + rng.normal(size=300)), 0, 3) for i in ins.item_ids})
    for i in ins.reverse:  # negatively worded items answered the other way round
        d[i] = 3 - d[i]
    tab = reliability.scale_reliability(d, "isel12").set_index("score")
    assert tab.index.tolist() == ["isel_total", "isel_appraisal", "isel_belonging", "isel_tangible"]
    keyed = d.copy()
    for i in ins.reverse:
        keyed[i] = 3 - keyed[i]
    assert tab.loc["isel_total", "raw_alpha"] == pytest.approx(reliability.alpha(keyed).alpha, abs=1e-12)
    assert tab.loc["isel_total", "raw_alpha"] > 0.8 and tab["omega_total"].notna().all()
    bad = d.copy()
    bad.loc[0, "isel_1"] = 7
    with pytest.raises(ScaleError, match="isel_1"):
        reliability.scale_reliability(bad, "isel12")
