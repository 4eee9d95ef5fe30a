"""SEM on the demo study: the planted collective-efficacy effects are recovered.

The demo study (``cimstats.datasets.demo_study``) plants, at baseline,

* ``ce_j = ce + e_j`` (``e_j ~ N(0, item_noise_sd**2)``, then random rounding to 1..5),
  so the eight collective-efficacy items are tau-equivalent indicators of one factor
  with loadings 1 and the same residual variance in every country (invariant
  measurement);
* ``ce = ... + diversity * (a + a_int * m) + country + practice + patient + occasion``;
* ``sm = ... + b * ce_score + c' * diversity + country + ...`` where ``ce_score`` is the
  mean of the eight generated answers.

The models below are fitted on the baseline wave only and every estimate is compared
with :func:`cimstats.datasets.planted_truth` within a stated number of standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cimstats.datasets import demo_study, planted_truth
from cimstats.models.sem import invariance, sem

SEED = 20240607
CE_ITEMS = [f"ce_{i}" for i in range(1, 9)]
COUNTRIES_BUT_EN = ["NL", "NO", "ES", "GR", "BG"]
# Planted effects must lie within this many standard errors of the estimate.
Z_TOL = 4.0
# Mean variance added by unbiased random rounding of a continuous answer to an integer:
# E[f (1 - f)] for a fractional part f uniform on [0, 1).
ROUNDING_VAR = 1.0 / 6.0


@pytest.fixture(scope="module")
def truth():
    return planted_truth()


@pytest.fixture(scope="module")
def baseline():
    study = demo_study(SEED)
    p = study.patients
    p0 = p.loc[p["wave"] == 0].copy()
    a0 = study.alters.loc[study.alters["wave"] == 0]
    diversity = a0.groupby("patient_id")["tie_type"].nunique()
    p0["diversity"] = p0["patient_id"].map(diversity).fillna(0).astype(float)
    p0["m"] = p0["area_deprivation"].astype(float) - 2.0
    p0["div_m"] = p0["diversity"] * p0["m"]
    heiq = [c for c in p0.columns if c.startswith("heiq_")]
    p0["sm"] = p0[heiq].astype(float).mean(axis=1)
    p0["ce"] = p0[CE_ITEMS].astype(float).mean(axis=1)
    for c in COUNTRIES_BUT_EN:
        p0[f"c_{c}"] = (p0["country"] == c).astype(float)
    for c in CE_ITEMS:
        p0[c] = p0[c].astype(float)
    return p0.reset_index(drop=True)


def _by_label(fit) -> pd.DataFrame:
    t = fit.tidy()
    t = t.loc[t["label"].astype(str) != ""]
    return t.set_index("label")


def _within(row, target, z=Z_TOL):
    est, se = float(row["estimate"]), float(row["std_error"])
    assert se > 0
    assert abs(est - target) <= z * se, f"estimate {est:.4f} (SE {se:.4f}) vs planted {target:.4f}"


CFA = "CE =~ " + " + ".join(CE_ITEMS)
COVARIATES = " + ".join(f"c_{c}" for c in COUNTRIES_BUT_EN)


def test_demo_has_what_the_models_need(baseline):
    assert len(baseline) == 1700
    assert set(baseline["country"]) == {"EN", *COUNTRIES_BUT_EN}
    assert baseline["diversity"].between(0, 7).all()


def test_collective_efficacy_measurement_model(baseline, truth):
    fit = sem(CFA, baseline, missing="fiml")
    g = fit.glance().iloc[0]
    assert bool(g["converged"])
    assert int(g["nobs"]) == len(baseline) and int(g["n_dropped"]) == 0
    # one tau-equivalent factor is the true model: the fit must be close
    assert g["df"] == 20
    assert g["cfi"] > 0.99 and g["rmsea"] < 0.03 and g["srmr"] < 0.03
    assert g["p_value"] > 1e-3
    t = fit.tidy()
    loadings = t.loc[(t["op"] == "=~") & (t["rhs"] != "ce_1")]
    assert len(loadings) == 7
    for _, row in loadings.iterrows():
        _within(row, 1.0)  # planted loadings are all 1 (first fixed)
    # residual variance = item noise + rounding, shrunk a little by the 1..5 limits
    noise = truth["collective_efficacy"]["item_noise_sd"] ** 2 + ROUNDING_VAR
    resid = t.loc[(t["op"] == "~~") & (t["lhs"] == t["rhs"]) & t["lhs"].isin(CE_ITEMS), "estimate"]
    assert len(resid) == 8
    assert np.all(np.abs(resid.to_numpy() / noise - 1) < 0.15)
    # standardised loadings are all alike (parallel items)
    std = t.loc[t["op"] == "=~", "std_all"].to_numpy()
    assert std.max() - std.min() < 0.08


def test_mediation_recovers_planted_paths(baseline, truth):
    """Observed scores: diversity -> ce score -> heiQ mean, a-path moderated by deprivation."""
    model = f"""
    ce ~ a*diversity + a_dep*m + a_int*div_m + {COVARIATES}
    sm ~ b*ce + c*diversity + m + {COVARIATES}
    indirect := a*b
    indirect_most := (a - a_int)*b
    indirect_least := (a + a_int)*b
    imm := a_int*b
    total := c + a*b
    """
    fit = sem(model, baseline, cluster="practice_id")
    assert int(fit.glance().iloc[0]["nobs"]) == len(baseline)
    est = _by_label(fit)
    ce_t, med = truth["collective_efficacy"], truth["mediation"]
    _within(est.loc["a"], ce_t["diversity"])
    _within(est.loc["a_int"], ce_t["diversity:m"])
    _within(est.loc["a_dep"], ce_t["m"])
    _within(est.loc["b"], med["b"])
    _within(est.loc["c"], med["direct"])
    ind = med["indirect_by_area_deprivation"]
    _within(est.loc["indirect"], ind["2"])
    _within(est.loc["indirect_most"], ind["1"])
    _within(est.loc["indirect_least"], ind["3"])
    _within(est.loc["imm"], med["index_of_moderated_mediation"])
    _within(est.loc["total"], med["direct"] + ce_t["diversity"] * med["b"])
    # the defined parameters are rows of the same table with delta-method SEs
    d = fit.tidy()
    assert (d.loc[d["op"] == ":=", "std_error"] > 0).all()


def test_latent_mediation_a_path_and_attenuation_of_b(baseline, truth):
    """Latent collective efficacy (FIML): the a-path is on the factor's scale.

    Self-management was generated from the observed item mean, not the factor, so the
    path from the factor is larger than the planted b by the share of the score's error
    variance: ``b_latent = b (1 + var(e_bar) / psi)``, with ``var(e_bar) = mean(theta) / 8``
    and ``psi`` the factor's residual variance.
    """
    model = f"""
    {CFA}
    CE ~ a*diversity + a_dep*m + a_int*div_m + {COVARIATES}
    sm ~ b*CE + c*diversity + m + {COVARIATES}
    indirect := a*b
    """
    fit = sem(model, baseline, missing="fiml")
    est = _by_label(fit)
    ce_t, med = truth["collective_efficacy"], truth["mediation"]
    _within(est.loc["a"], ce_t["diversity"])
    _within(est.loc["a_int"], ce_t["diversity:m"])
    t = fit.tidy()
    theta = t.loc[(t["op"] == "~~") & (t["lhs"] == t["rhs"]) & t["lhs"].isin(CE_ITEMS), "estimate"].mean()
    psi = float(t.loc[(t["op"] == "~~") & (t["lhs"] == "CE") & (t["rhs"] == "CE"), "estimate"].iloc[0])
    expected_b = med["b"] * (1 + theta / 8 / psi)
    _within(est.loc["b"], expected_b)
    assert float(est.loc["b", "estimate"]) > med["b"]


def test_invariance_across_six_countries(baseline):
    # FIML keeps every patient: listwise deletion would set aside almost half of them
    # (about 9% of each item is missing) and leave ~150 patients per country.
    inv = invariance(CFA, baseline, group="country", missing="fiml")
    tab = inv.table
    assert tab["model"].tolist() == ["configural", "metric", "scalar", "strict"]
    # degrees of freedom: 6 groups x 20, then +7 loadings, +7 intercepts, +8 residuals per extra group
    assert tab["df"].tolist() == [120, 120 + 35, 155 + 35, 190 + 40]
    assert tab["npar"].is_monotonic_decreasing
    fits = inv.fits
    n = {s: int(f.glance().iloc[0]["nobs"]) for s, f in fits.items()}
    assert len(set(n.values())) == 1
    dropped = int(fits["configural"].glance().iloc[0]["n_dropped"])
    assert n["configural"] + dropped == len(baseline) and dropped == 0
    # measurement is invariant by construction (the 1..5 limits bend it only slightly where
    # country means differ): every model fits and no step worsens fit beyond Chen's cut-offs
    assert (tab["cfi"] > 0.97).all()
    assert (tab["rmsea"] < 0.03).all()
    assert (tab["srmr"] < 0.08).all()
    later = tab.iloc[1:]
    assert (later["delta_cfi"] > -0.01).all()
    assert (later["delta_rmsea"] < 0.015).all()
    assert (later["p_diff"] > 1e-3).all()
    assert (later["method"] != "").all()


def test_invariance_with_more_than_two_groups_constrains_every_group():
    """Regression: equality across groups must reach group 3 and beyond."""
    rng = np.random.default_rng(11)
    n = 900
    f = rng.normal(size=n)
    d = pd.DataFrame({f"y{i}": 0.7 * f + rng.normal(scale=0.7, size=n) for i in range(1, 5)})
    d["country"] = np.repeat(["EN", "NL", "NO"], n // 3)
    inv = invariance("ce =~ y1 + y2 + y3 + y4", d, group="country")
    assert inv.table["df"].tolist() == [6, 12, 18, 26]
    scalar = inv.fits["scalar"].tidy()
    ints = scalar.loc[(scalar["op"] == "~1") & (scalar["lhs"] == "y2")]
    assert len(ints) == 3
    assert np.ptp(ints["estimate"].to_numpy()) < 1e-8
