"""Moderated mediation on a published worked example: PROCESS models 7 and 8 on Hayes' protest data.

The data are those of Garcia, Schmitt, Branscombe & Ellemers (2010), which Hayes (2013, 2018) uses to
illustrate conditional process analysis: X = protest (1) or no protest (0), M = perceived
appropriateness of the lawyer's response, W = perceived pervasiveness of sex discrimination,
Y = liking of the lawyer. tests/reference/process_protest.R exports them from R's psych package and
writes tests/reference/process_protest.json: the descriptive statistics printed in a published
analysis of this example (to show the file is that example's data), PROCESS's own printed output for
model 8 with the three-condition protest variable (its moderator values and the predicted mediator
and outcome at each condition and moderator value, 4 decimals), and reference values from
``stats::lm`` and a 40,000-resample bootstrap in R for PROCESS's model 7 (W on the first stage) and
model 8 (W on the first stage and on the direct effect), at both of PROCESS's probing rules.

Tolerances
----------
* Published numbers (descriptive statistics, 7 decimals; PROCESS output, 4 decimals): agreement
  within half a unit in the last printed place (plus a floating-point allowance).
* Point estimates, OLS standard errors, t, p and moderator values: closed-form quantities computed
  independently in R on the same data; they agree to floating-point precision (relative 1e-9).
* Bootstrap standard errors and percentile limits come from different random resamples (5,000 here,
  40,000 in R), so they agree only within Monte Carlo error. A bootstrap summary from B draws has
  Monte Carlo standard deviation k / sqrt(B), with k = sqrt((m4 - s^4) / (4 s^2)) for the SD
  (delta method; m4 the fourth central moment of the draws) and k = sqrt(p (1 - p)) / f(q_p) for
  the p-quantile (f the density of the draws at it); R records k for every summary. The difference
  of two independent estimates has standard deviation k sqrt(1/5000 + 1/40000); the tests allow
  4 of these (a false alarm about once in 16,000 comparisons for a correct implementation).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cimstats
from cimstats.models.mediation.fit import _moderator_values
from conftest import REFERENCE, need

REF_JSON = REFERENCE / "process_protest.json"
N_BOOT = 5000
SEED = 2013
RULES = ("mean_sd", "percentiles")
CASES = ("model7", "model8")
EXACT = dict(rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def ref():
    with open(need(REF_JSON)) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def data(ref):
    return pd.read_csv(REFERENCE.parent.parent / ref["data"])


@pytest.fixture(scope="module")
def fits(ref, data):
    """Every case at every probing rule, fitted once (5,000 resamples each)."""
    out = {}
    for case in CASES:
        args = dict(ref["cases"][case]["args"])
        args["moderated_paths"] = tuple(args["moderated_paths"])
        for rule in RULES:
            out[case, rule] = cimstats.mediation(data, moderator_values=rule, n_boot=N_BOOT, seed=SEED, **args)
    return out


def _effects(res, effect):
    tidy = res.tidy()
    return tidy.loc[tidy["effect"] == effect].reset_index(drop=True)


def test_data_are_the_published_example(ref, data):
    pub = ref["published"]
    tol = 0.5 * 10.0 ** -pub["printed_decimals"] + 1e-12
    assert len(data) == pub["n"]
    for column, printed in pub["columns"].items():
        values = data[column]
        ours = {"mean": values.mean(), "sd": values.std(ddof=1), "min": values.min(), "max": values.max()}
        for stat, value in printed.items():
            assert abs(ours[stat] - value) <= tol, (column, stat, ours[stat], value)


@pytest.mark.parametrize("focal", ["d1", "d2"])
def test_model8_with_three_conditions_matches_printed_process_output(ref, data, focal):
    """PROCESS model 8 with the three-condition X (mcx=1) as printed by PROCESS's plot option.

    Indicator coding with no protest as reference: the focal indicator is ``x``, the other
    indicator and its product with W are covariates, so both equations are PROCESS's. The plot
    option prints the moderator values (PROCESS's percentiles) and the predicted M and Y (Y at the
    sample mean of M) for every condition and moderator value.
    """
    printed = ref["published"]["process_model8_plot"]
    tol = 0.5 * 10.0 ** -printed["printed_decimals"] + 1e-9
    other = "d2" if focal == "d1" else "d1"
    df = data.assign(d1=(data["protest"] == 1).astype(float), d2=(data["protest"] == 2).astype(float))
    df[f"{other}_sexism"] = df[other] * df["sexism"]
    res = cimstats.mediation(df, x=focal, m="respappr", y="liking", covariates=[other, f"{other}_sexism"],
                             moderator="sexism", moderated_paths=("a", "direct"), moderator_values="percentiles",
                             n_boot=200, seed=SEED)
    assert np.max(np.abs(np.asarray(res.moderator_values) - printed["moderator_values"])) <= tol
    paths = res.paths()
    coef = {eq: grp.set_index("term")["estimate"] for eq, grp in paths.groupby("equation")}
    grid = pd.DataFrame({"protest": printed["protest"], "sexism": printed["sexism"]})
    grid["d1"] = (grid["protest"] == 1).astype(float)
    grid["d2"] = (grid["protest"] == 2).astype(float)
    grid[f"{focal}:sexism"] = grid[focal] * grid["sexism"]
    grid[f"{other}_sexism"] = grid[other] * grid["sexism"]
    grid["respappr"] = df["respappr"].mean()
    for outcome in ("respappr", "liking"):
        b = coef[outcome]
        predicted = b["(Intercept)"] + sum(b[t] * grid[t] for t in b.index if t != "(Intercept)")
        worst = np.max(np.abs(predicted - np.asarray(printed[outcome])))
        assert worst <= tol, (outcome, worst)
    # the relative conditional indirect effect of this condition is (a_j + a_jw w) b
    t = res.tidy().set_index("term")
    cond = res.tidy().loc[lambda d: d["effect"] == "conditional_indirect"]
    a, a_w, b = (t.loc[k, "estimate"] for k in ("a", "a_xw", "b"))
    np.testing.assert_allclose(cond["estimate"], (a + a_w * cond["moderator_value"]) * b, rtol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_regressions_match_ols(ref, fits, case):
    paths = fits[case, "mean_sd"].paths()
    for outcome, eq in ref["cases"][case]["equations"].items():
        rows = paths.loc[paths["equation"] == outcome].set_index("term").loc[eq["terms"]]
        np.testing.assert_allclose(rows["estimate"], eq["estimate"], **EXACT)
        np.testing.assert_allclose(rows["std_error"], eq["std_error"], **EXACT)
        np.testing.assert_allclose(rows["df"], eq["df"], **EXACT)
        np.testing.assert_allclose(rows["r_squared"], eq["r_squared"], **EXACT)
        np.testing.assert_allclose(rows["sigma"] ** 2, eq["mse"], **EXACT)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", CASES)
def test_moderator_values_and_conditional_effects(ref, fits, case, rule):
    res = fits[case, rule]
    probe = ref["cases"][case]["probes"][rule]
    np.testing.assert_allclose(res.moderator_values, probe["moderator_values"], **EXACT)
    cond = _effects(res, "conditional_indirect")
    np.testing.assert_allclose(cond["moderator_value"], probe["moderator_values"], **EXACT)
    np.testing.assert_allclose(cond["estimate"], probe["conditional_indirect"], **EXACT)
    index = _effects(res, "index_of_moderated_mediation")
    assert len(index) == 1
    assert index.loc[0, "estimate"] == pytest.approx(ref["cases"][case]["index_of_moderated_mediation"], rel=1e-9)
    # the index is the slope of the conditional indirect effect in W (first-stage moderation)
    slope = np.diff(cond["estimate"]) / np.diff(cond["moderator_value"])
    np.testing.assert_allclose(slope, index.loc[0, "estimate"], rtol=1e-9)


@pytest.mark.parametrize("rule", RULES)
def test_conditional_direct_effects_of_model_8(ref, fits, rule):
    res = fits["model8", rule]
    probe = ref["cases"]["model8"]["probes"][rule]["conditional_direct"]
    direct = _effects(res, "conditional_direct")
    np.testing.assert_allclose(direct["estimate"], probe["estimate"], **EXACT)
    np.testing.assert_allclose(direct["delta_se"], probe["std_error"], **EXACT)
    np.testing.assert_allclose(direct["statistic"], probe["t"], **EXACT)
    np.testing.assert_allclose(direct["p_value"], probe["p_value"], **EXACT)
    np.testing.assert_allclose(direct["df"], ref["cases"]["model8"]["equations"]["liking"]["df"], **EXACT)
    # model 7 leaves the direct effect unmoderated: one direct effect, the coefficient c'
    model7 = fits["model7", rule].tidy().set_index("term")
    assert model7.loc["direct", "estimate"] == pytest.approx(model7.loc["c'", "estimate"], rel=1e-12)
    assert "conditional_direct" not in set(fits["model7", rule].tidy()["effect"])


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", CASES)
def test_bootstrap_within_monte_carlo_error(ref, fits, case, rule):
    res = fits[case, rule]
    boot = ref["cases"][case]["probes"][rule]["bootstrap"]
    scale = 4 * np.sqrt(1 / N_BOOT + 1 / ref["n_boot"])
    rows = [(_effects(res, "index_of_moderated_mediation").loc[0], boot["index"])]
    cond = _effects(res, "conditional_indirect")
    rows += [(cond.loc[j], boot["conditional_indirect"][j]) for j in range(len(cond))]
    for ours, theirs in rows:
        for col, key, k in (("std_error", "sd", "k_sd"), ("ci_lower", "lower", "k_lower"),
                            ("ci_upper", "upper", "k_upper")):
            assert abs(ours[col] - theirs[key]) <= scale * theirs[k], (ours["term"], col, ours[col], theirs[key])


# ------------------------------------------------------------------ PROCESS's rules for the moderator values
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False, allow_infinity=False), min_size=1, max_size=80))
def test_percentiles_at_position_p_n_plus_1(w):
    """The 16th, 50th and 84th percentiles sit at position p (n + 1) of the sorted values.

    Written out here from the definition (not with numpy's ``method="weibull"``, which the
    package uses): h = p (n + 1), clamped to [1, n], interpolating between w_(floor h) and the next.
    """
    w = np.asarray(w)
    values, rule = _moderator_values(w, "percentiles")
    s = np.sort(w)
    expected = []
    for p in (0.16, 0.50, 0.84):
        h = min(max(p * (len(s) + 1), 1.0), float(len(s)))
        lo = int(np.floor(h))
        expected.append(s[lo - 1] + (h - lo) * (s[min(lo, len(s) - 1)] - s[lo - 1]))
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)
    assert "p(n + 1)" in rule


def test_mean_sd_beyond_the_observed_range_is_replaced_and_named():
    rng = np.random.default_rng(4)
    n = 300
    weak_ties = rng.poisson(0.4, size=n).astype(float)       # skewed: mean - SD < 0 = minimum
    x = rng.normal(size=n)
    m = 0.5 * x + 0.2 * x * weak_ties + rng.normal(size=n)
    y = 0.4 * m + rng.normal(size=n)
    df = pd.DataFrame({"x": x, "m": m, "y": y, "weak_ties": weak_ties})
    res = cimstats.mediation(df, x="x", m="m", y="y", moderator="weak_ties", moderator_values="mean_sd",
                             n_boot=50, seed=1)
    mu, sd = weak_ties.mean(), weak_ties.std(ddof=1)
    assert mu - sd < weak_ties.min()
    assert res.moderator_values == pytest.approx((weak_ties.min(), mu, mu + sd), rel=1e-12)
    rule = res.glance().loc[0, "moderator_values_rule"]
    assert "below the minimum" in rule and "above the maximum" not in rule
    assert "below the minimum" in str(res.summary())
