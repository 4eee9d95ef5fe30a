"""glmm and gee: the result API, planted-truth recovery, warnings and error messages."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import cimstats
from cimstats.errors import MissingDataWarning, ModelSpecificationError, SingularFitWarning
from cimstats.models.glmm import BoundaryVarianceWarning, SeparationWarning

TIDY = ["term", "estimate", "std_error", "statistic", "df", "p_value", "ci_lower", "ci_upper"]


def simulate_bernoulli(seed, n_clusters=150, size=8, beta=(-0.5, 0.8), sd=1.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), size)
    x = rng.normal(size=g.size)
    b = rng.normal(0, sd, n_clusters)
    eta = beta[0] + beta[1] * x + b[g]
    y = rng.binomial(1, special.expit(eta))
    return pd.DataFrame({"y": y, "x": x, "g": [f"c{i:03d}" for i in g]})


@pytest.fixture(scope="module")
def bern():
    d = simulate_bernoulli(11)
    return d, cimstats.glmm("y ~ x + (1 | g)", d, family="binomial")


@pytest.fixture(scope="module")
def pois():
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(60), 6)
    expo = rng.uniform(1, 10, g.size)
    z = rng.binomial(1, 0.5, g.size)
    mu = expo * np.exp(-1.0 + 0.4 * z + rng.normal(0, 0.5, 60)[g])
    d = pd.DataFrame({"n": rng.poisson(mu), "z": z, "expo": expo, "g": g})
    return d, cimstats.glmm("n ~ z + offset(log(expo)) + (1 | g)", d, family="poisson")


# ---- planted truth -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planted_truth_recovered(seed):
    d = simulate_bernoulli(seed, n_clusters=200, size=10)
    m = cimstats.glmm("y ~ x + (1 | g)", d)
    t = m.tidy().set_index("term")
    for term, truth in (("(Intercept)", -0.5), ("x", 0.8)):
        assert t.loc[term, "ci_lower"] - 0.5 * t.loc[term, "std_error"] < truth < \
            t.loc[term, "ci_upper"] + 0.5 * t.loc[term, "std_error"]
    var = m.varcorr()["vcov"].iloc[0]
    assert 0.5 < var < 2.0  # true variance 1 (200 clusters of 10)


def test_planted_truth_poisson_rate_ratio(pois):
    _, m = pois
    t = m.tidy(exponentiate=True).set_index("term")
    assert t.loc["z", "ci_lower"] < np.exp(0.4) < t.loc["z", "ci_upper"]


# ---- tidy, ratios, glance, summary -----------------------------------------------------
def test_tidy_columns_and_wald(bern):
    _, m = bern
    t = m.tidy()
    assert list(t.columns) == TIDY
    assert np.allclose(t["statistic"], t["estimate"] / t["std_error"])
    assert np.allclose(t["p_value"], 2 * stats.norm.sf(np.abs(t["statistic"])))
    assert np.all(np.isinf(t["df"]))
    q = stats.norm.ppf(0.95)
    t90 = m.tidy(level=0.90)
    assert np.allclose(t90["ci_upper"] - t90["estimate"], q * t90["std_error"])


def test_odds_ratios(bern):
    _, m = bern
    t, e = m.tidy(), m.tidy(exponentiate=True)
    assert np.allclose(e["estimate"], np.exp(t["estimate"]))
    assert np.allclose(e["ci_lower"], np.exp(t["ci_lower"]))
    assert np.allclose(e["ci_upper"], np.exp(t["ci_upper"]))
    assert np.allclose(e["p_value"], t["p_value"])


def test_exponentiate_refused_for_probit():
    d = simulate_bernoulli(4, n_clusters=60)
    m = cimstats.glmm("y ~ x + (1 | g)", d, link="probit")
    with pytest.raises(ModelSpecificationError, match="probit"):
        m.tidy(exponentiate=True)
    assert m.icc()["icc"].iloc[0] == pytest.approx(m.varcorr()["vcov"].iloc[0] / (m.varcorr()["vcov"].iloc[0] + 1))


def test_icc_and_median_odds_ratio(bern):
    _, m = bern
    v = m.varcorr()["vcov"].iloc[0]
    assert m.icc()["icc"].iloc[0] == pytest.approx(v / (v + np.pi ** 2 / 3))
    assert m.median_odds_ratio()["median_ratio"].iloc[0] == pytest.approx(np.exp(np.sqrt(2 * v) * 0.6744897501960817))


def test_icc_refused_for_poisson(pois):
    _, m = pois
    with pytest.raises(ModelSpecificationError, match="latent-scale ICC"):
        m.icc()
    assert m.median_odds_ratio()["median_ratio"].iloc[0] > 1  # median rate ratio


def test_glance_matches_lmm_layout(bern):
    _, m = bern
    g = m.glance()
    assert len(g) == 1
    for col in ("nobs", "n_dropped", "ngroups_g", "loglik", "aic", "bic", "deviance", "converged", "singular",
                "iterations", "gradient_norm", "nagq"):
        assert col in g.columns
    assert g["ngroups_g"].iloc[0] == 150 and g["nobs"].iloc[0] == 1200
    assert g["aic"].iloc[0] == pytest.approx(-2 * m.loglik + 2 * 3)


def test_summary_forms(bern):
    _, m = bern
    text = str(m.summary())
    assert "Odds ratio" in text and "Laplace" in text and "(Intercept)" in text
    assert "<table" in m.summary().to_html()
    assert "tabular" in m.summary().to_latex()


def test_ranef_layout_matches_lmm(bern):
    d, m = bern
    r = m.ranef()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        lm = cimstats.lmm("x ~ 1 + (1 | g)", d)
    assert list(r.columns) == list(lm.ranef().columns) == ["group", "term", "level", "condval", "condsd"]
    assert len(r) == 150 and np.all(r["condsd"] > 0)
    assert set(r["level"]) == set(d["g"])


def test_result_is_frozen(bern):
    _, m = bern
    with pytest.raises(Exception):
        m.nobs = 3


# ---- predictions -------------------------------------------------------------------------
def test_predictions_link_response(bern):
    d, m = bern
    link = m.predict(type="link")
    assert np.allclose(m.predict(type="response"), special.expit(link))
    assert np.allclose(m.fitted(), special.expit(link))
    fixed = m.predict(type="link", re=False)
    assert np.allclose(fixed, m.params["(Intercept)"] + m.params["x"] * d["x"].to_numpy())


def test_newdata_unseen_cluster_gets_population_prediction(bern):
    d, m = bern
    new = pd.DataFrame({"x": [0.0, 1.0], "g": ["c000", "not-a-cluster"]})
    with_re = m.predict(new, type="link")
    fixed = m.predict(new, type="link", re=False)
    re0 = m.ranef().set_index("level").loc["c000", "condval"]
    assert with_re[0] == pytest.approx(fixed[0] + re0)
    assert with_re[1] == pytest.approx(fixed[1])


def test_marginal_predictions_integrate_over_random_effects(bern):
    _, m = bern
    new = pd.DataFrame({"x": [-2.0, 0.0, 2.0], "g": ["c000"] * 3})
    marg = m.predict(new, marginal=True)
    eta = m.predict(new, type="link", re=False)
    sd = np.sqrt(m.varcorr()["vcov"].iloc[0])
    z = np.random.default_rng(0).standard_normal(400_000)
    mc = special.expit(eta[:, None] + sd * z[None, :]).mean(axis=1)
    assert np.allclose(marg, mc, atol=2e-3)
    # attenuation towards 0.5 relative to the typical cluster
    assert np.all(np.abs(marg - 0.5) < np.abs(special.expit(eta) - 0.5))
    with pytest.raises(ModelSpecificationError, match="type='response'"):
        m.predict(new, type="link", marginal=True)


def test_marginal_poisson_is_lognormal_mean(pois):
    d, m = pois
    marg = m.predict(marginal=True)
    v = m.varcorr()["vcov"].iloc[0]
    assert np.allclose(marg, np.exp(m.predict(type="link", re=False) + v / 2), rtol=1e-8)


def test_marginal_two_random_intercepts_add_variances():
    rng = np.random.default_rng(3)
    a = np.repeat(np.arange(20), 20)
    b = np.tile(np.arange(20), 20)
    eta = 0.3 + rng.normal(0, 0.7, 20)[a] + rng.normal(0, 0.5, 20)[b]
    d = pd.DataFrame({"y": rng.binomial(1, special.expit(eta)), "a": a, "b": b})
    m = cimstats.glmm("y ~ 1 + (1 | a) + (1 | b)", d)
    v = m.varcorr()["vcov"].sum()
    x, w = np.polynomial.hermite_e.hermegauss(60)
    expected = (special.expit(m.params.iloc[0] + np.sqrt(v) * x) * w).sum() / w.sum()
    assert m.predict(marginal=True)[0] == pytest.approx(expected, rel=1e-8)


# ---- warnings -------------------------------------------------------------------------
def test_missing_rows_counted_and_warned():
    d = simulate_bernoulli(5, n_clusters=50)
    d.loc[[3, 10, 11], "x"] = np.nan
    with pytest.warns(MissingDataWarning, match="3 row"):
        m = cimstats.glmm("y ~ x + (1 | g)", d)
    assert m.n_dropped == 3 and m.nobs == len(d) - 3 and m.dropped_by_column == {"x": 3}


def test_complete_separation_is_a_structured_warning():
    d = simulate_bernoulli(6, n_clusters=40)
    d["sep"] = d["y"]  # predicts the outcome perfectly
    with pytest.warns(SeparationWarning) as rec:
        cimstats.glmm("y ~ sep + (1 | g)", d)
    w = [r.message for r in rec if isinstance(r.message, SeparationWarning)][0]
    # the intercept diverges too: with sep = 0 the outcome is always 0
    assert w.code == "G001" and "sep" in w.terms and "x" not in w.terms


def test_boundary_variance_is_a_structured_warning():
    rng = np.random.default_rng(8)
    d = pd.DataFrame({"y": rng.binomial(1, 0.4, 400), "g": np.repeat(np.arange(40), 10)})
    with pytest.warns(SingularFitWarning) as rec:
        m = cimstats.glmm("y ~ 1 + (1 | g)", d)
    w = [r.message for r in rec if isinstance(r.message, BoundaryVarianceWarning)][0]
    assert w.code == "G002" and w.components == (("g", "(Intercept)"),)
    assert m.singular and m.glance()["singular"].iloc[0]


# ---- errors ----------------------------------------------------------------------------
def test_error_non_binary_binomial_outcome():
    d = simulate_bernoulli(9, n_clusters=20)
    d["y"] = d["y"] * 2
    with pytest.raises(ModelSpecificationError, match="outside 0-1"):
        cimstats.glmm("y ~ x + (1 | g)", d)


def test_error_negative_counts():
    d = pd.DataFrame({"n": [1, 2, -1, 3] * 5, "g": np.repeat(np.arange(5), 4)})
    with pytest.raises(ModelSpecificationError, match="negative"):
        cimstats.glmm("n ~ 1 + (1 | g)", d, family="poisson")


def test_error_non_integer_counts():
    d = pd.DataFrame({"n": [1.5, 2, 1, 3] * 5, "g": np.repeat(np.arange(5), 4)})
    with pytest.raises(ModelSpecificationError, match="non-integer"):
        cimstats.glmm("n ~ 1 + (1 | g)", d, family="poisson")


@pytest.mark.parametrize("kw, match", [({"family": "gaussian"}, "`family`"), ({"family": "binomial", "link": "sqrt"}, "`link`"),
                                       ({"family": "poisson", "link": "logit"}, "`link`"), ({"nagq": 0}, "`nagq`"),
                                       ({"nagq": 2.5}, "`nagq`")])
def test_error_bad_arguments(kw, match):
    d = simulate_bernoulli(9, n_clusters=20)
    with pytest.raises(ModelSpecificationError, match=match):
        cimstats.glmm("y ~ x + (1 | g)", d, **kw)


def test_error_nagq_with_vector_random_effects():
    d = simulate_bernoulli(9, n_clusters=20)
    d["h"] = d["g"].str[:3]
    with pytest.raises(ModelSpecificationError, match="random slope"):
        cimstats.glmm("y ~ x + (x | g)", d, nagq=5)
    with pytest.raises(ModelSpecificationError, match="several random-effect terms"):
        cimstats.glmm("y ~ x + (1 | g) + (1 | h)", d, nagq=5)


def test_error_no_random_term_and_cbind_poisson():
    d = simulate_bernoulli(9, n_clusters=20)
    with pytest.raises(ModelSpecificationError, match="no random-effect term"):
        cimstats.glmm("y ~ x", d)
    d["k"] = 1
    with pytest.raises(ModelSpecificationError, match="cbind"):
        cimstats.glmm("cbind(y, k) ~ x + (1 | g)", d, family="poisson")


def test_errors_are_value_errors_with_one_sentence():
    d = simulate_bernoulli(9, n_clusters=20)
    with pytest.raises(ValueError) as e:
        cimstats.glmm("y ~ x + (1 | g)", d, family="gamma")
    msg = str(e.value)
    assert msg.endswith(".") and msg.count(". ") == 0


def test_cbind_equals_expanded_bernoulli():
    rng = np.random.default_rng(12)
    g = np.repeat(np.arange(30), 3)
    size = rng.integers(2, 8, g.size)
    x = rng.normal(size=g.size)
    k = rng.binomial(size, special.expit(-0.2 + 0.5 * x + rng.normal(0, 0.7, 30)[g]))
    agg = pd.DataFrame({"k": k, "size": size, "x": x, "g": g})
    rows = [(1 if j < kk else 0, xx, gg) for kk, ss, xx, gg in zip(k, size, x, g) for j in range(ss)]
    long = pd.DataFrame(rows, columns=["y", "x", "g"])
    a = cimstats.glmm("cbind(k, size - k) ~ x + (1 | g)", agg)
    b = cimstats.glmm("y ~ x + (1 | g)", long)
    w = cimstats.glmm("k / size ~ x + (1 | g)", agg.assign(p=k / size), weights="size") if False else None
    assert np.allclose(a.params, b.params, rtol=1e-5, atol=1e-6)
    assert np.allclose(a.std_errors, b.std_errors, rtol=1e-3)
    p = cimstats.glmm("p ~ x + (1 | g)", agg.assign(p=k / size), weights="size")
    assert np.allclose(p.params, a.params, rtol=1e-6) and w is None


# ---- GEE -------------------------------------------------------------------------------
def test_gee_independence_equals_glm_estimates():
    import statsmodels.api as sm

    d = simulate_bernoulli(21, n_clusters=80)
    m = cimstats.gee("y ~ x", d, groups="g", cov_struct="independence")
    glm = sm.GLM(d["y"], sm.add_constant(d["x"]), family=sm.families.Binomial()).fit()
    assert np.allclose(m.params.to_numpy(), glm.params.to_numpy(), rtol=1e-6)
    assert m.working_correlation == 0.0


def test_gee_exchangeable_api_and_attenuation():
    d = simulate_bernoulli(22, n_clusters=150, sd=1.5)
    g = cimstats.gee("y ~ x + (1 | g)", d)
    assert list(g.tidy().columns) == TIDY
    assert g.working_correlation > 0.05 and g.n_clusters == 150 and g.converged
    same = cimstats.gee("y ~ x", d, groups="g")
    assert np.allclose(same.params, g.params)
    e = g.tidy(exponentiate=True)
    assert np.allclose(e["estimate"], np.exp(g.params.to_numpy()))
    # robust and model-based standard errors differ; marginal slope is attenuated vs the conditional one
    naive = cimstats.gee("y ~ x + (1 | g)", d, cov_type="naive")
    assert not np.allclose(naive.std_errors, g.std_errors)
    mixed = cimstats.glmm("y ~ x + (1 | g)", d)
    assert abs(g.params["x"]) < abs(mixed.params["x"])
    # GLMM marginal predictions approximate the GEE population-averaged curve
    assert np.max(np.abs(mixed.predict(marginal=True) - g.predict())) < 0.05
    assert "Marginal" in str(g.summary()) and "<table" in g.summary().to_html()
    assert set(["nobs", "n_clusters", "working_correlation", "qic", "converged"]) <= set(g.glance().columns)


def test_gee_poisson_offset():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(60), 5)
    expo = rng.uniform(1, 5, g.size)
    z = rng.binomial(1, 0.5, g.size)
    d = pd.DataFrame({"n": rng.poisson(expo * np.exp(-0.5 + 0.3 * z)), "z": z, "expo": expo, "g": g})
    m = cimstats.gee("n ~ z + offset(log(expo)) + (1 | g)", d, family="poisson")
    t = m.tidy(exponentiate=True).set_index("term")
    assert t.loc["z", "ci_lower"] < np.exp(0.3) < t.loc["z", "ci_upper"]
    assert np.allclose(m.predict(type="link"), np.log(m.predict()))


@pytest.mark.parametrize("formula, kw, match", [
    ("y ~ x", {}, "exactly one cluster"),
    ("y ~ x + (1 | g) + (1 | h)", {}, "exactly one cluster"),
    ("y ~ x + (x | g)", {}, "exactly one cluster"),
    ("y ~ x + (1 | g)", {"groups": "g"}, "already names a cluster"),
    ("y ~ x + (1 | g)", {"cov_struct": "ar1"}, "`cov_struct`"),
    ("y ~ x + (1 | g)", {"cov_type": "jackknife"}, "`cov_type`"),
    ("cbind(y, y) ~ x + (1 | g)", {}, "cbind"),
    ("y ~ x + (1 | g)", {"family": "negbin"}, "`family`"),
])
def test_gee_errors(formula, kw, match):
    d = simulate_bernoulli(23, n_clusters=20)
    d["h"] = d["g"].str[:3]
    with pytest.raises(ModelSpecificationError, match=match):
        cimstats.gee(formula, d, **kw)


def test_gee_missing_rows_warned():
    d = simulate_bernoulli(24, n_clusters=30)
    d.loc[[0, 5], "x"] = np.nan
    with pytest.warns(MissingDataWarning):
        m = cimstats.gee("y ~ x + (1 | g)", d)
    assert m.n_dropped == 2 and m.nobs == len(d) - 2


def test_public_names_registered():
    import importlib

    assert cimstats.gee is importlib.import_module("cimstats.models.glmm.gee").gee
    import cimstats.models as models
    assert models.gee is cimstats.gee and models.GeeResult.__name__ == "GeeResult"
