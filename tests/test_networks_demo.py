"""Planted relationships of the demo study are visible in the measures (runs when cimstats.datasets exists)."""

from __future__ import annotations

import numpy as np
import pytest

datasets = pytest.importorskip("cimstats.datasets", reason="the demo study generator is not in this checkout")

import cimstats  # noqa: E402
from cimstats import networks  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    study = datasets.demo_study()
    return study, datasets.planted_truth()


def test_demo_scores_and_network_measures(demo):
    study, truth = demo
    P, A = study.patients, study.alters
    for ins, kw in [("semcd6", {}), ("ce_personal8", {}), ("eq5d5l", {}),
                    ("heiq", {"scores": ["self_monitoring_insight", "health_directed_activity",
                                         "health_service_navigation"]})]:
        res = cimstats.score_scale(P, ins, **kw)
        assert not res.report.has_errors
        assert res.glance()["n_complete"].iloc[0] > 0
    net = networks.ego_networks(A, egos=P)
    assert not net.report.has_errors
    w = networks.ego_measures(net)
    assert len(w) == len(P) and (w["size"] >= 0).all()
    ch = networks.change(net)
    assert len(ch.egos) > 0


def test_demo_planted_diversity_effect_on_collective_efficacy(demo):
    import statsmodels.formula.api as smf

    study, truth = demo
    P, A = study.patients, study.alters
    w = networks.ego_measures(networks.ego_networks(A, egos=P))
    w["ce"] = cimstats.score_scale(P, "ce_personal8").scores["ce"].to_numpy()
    w["m"] = w["area_deprivation"] - 2
    fit = smf.ols("ce ~ n_tie_types * m + C(country)", data=w).fit()
    planted = truth["collective_efficacy"]["diversity"]
    est = fit.params["n_tie_types"]
    # ordinary least squares ignores the practice and patient levels, so allow a wide band
    assert abs(est - planted) < 0.5 * planted + 2 * fit.bse["n_tie_types"]
    assert np.sign(est) == np.sign(planted)


def test_demo_effective_size_from_the_tie_table_equals_the_reported_one(demo):
    """NAV2's effective size from who knows whom is exactly the one from the members' reported counts."""
    study, truth = demo
    P, A, T = study.patients, study.alters, study.alter_ties
    net = networks.ego_networks(A, egos=P, ties=T)
    assert not net.report.has_errors and len(net.ties) == len(T)  # every pair is a pair of named members
    w = networks.ego_measures(net, join=False)
    assert (w["effective_size"].to_numpy() == w["effective_size_reported"].to_numpy()).all()
    assert (w["n_alter_ties"].to_numpy() == w["n_alter_ties_reported"].to_numpy()).all()
    # the brokerage roles split every brokered pair (tie types are never missing)
    assert (w["n_itinerant"] + w["n_liaison"] == w["n_brokered_pairs"]).all()
    assert (w["n_brokered_pairs"] == w["size"] * (w["size"] - 1) / 2 - w["n_alter_ties"]).all()
    # constraint falls as effective size rises at a given size (Burt's two faces of brokerage)
    big = w[w["size"] == 4]
    assert np.corrcoef(big["effective_size"], big["constraint"])[0, 1] < -0.9
    assert truth["self_management"]["effective_size_given_size"] > 0


def test_demo_run_uses_the_tie_table(demo_run):
    """`cimstats demo` harmonises the tie files and reports structure and brokerage beside NAV2's verdict."""
    import pandas as pd

    ties = pd.read_parquet(demo_run / "data/alter_ties.parquet")
    assert {"patient_id", "wave", "alter_a", "alter_b"} <= set(ties.columns) and len(ties) > 0
    m = pd.read_csv(demo_run / "networks/ego_measures.csv")
    assert {"effective_size", "constraint", "n_brokered_pairs", "n_itinerant", "n_liaison", "p_liaison"} <= set(m)
    np.testing.assert_array_equal(m["effective_size"].to_numpy(), m["effective_size_reported"].to_numpy())
    summary = pd.read_csv(demo_run / "networks/summary.csv")
    assert {"constraint", "p_liaison"} <= set(summary["measure"])
    table = pd.read_csv(demo_run / "mechanisms/mechanism_table.csv").set_index("hypothesis_id")
    assert table.loc["NAV2", "verdict"] == "supported"
    assert "alter_ties" in (demo_run / "report.html").read_text(encoding="utf-8")
