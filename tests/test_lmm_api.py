"""lmm results API, error paths, code paths of the factorisation, planted truth."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import cimstats
from cimstats.errors import ModelSpecificationError, SingularFitWarning
from cimstats.models.mixed import core as core_mod, linalg
from conftest import REFERENCE

DATA = REFERENCE / "data"


@pytest.fixture(scope="module")
def sleep():
    return pd.read_csv(DATA / "sleepstudy.csv")


@pytest.fixture(scope="module")
def alters():
    return pd.read_csv(DATA / "alters3.csv")


def three_level(seed=3, n_practice=30, egos=8, alters_per=6, sd_p=0.6, sd_e=0.8):
    rng = np.random.default_rng(seed)
    p = np.repeat(np.arange(n_practice), egos)
    e = np.repeat(np.arange(len(p)), alters_per)
    x = rng.normal(size=len(e))
    w = rng.normal(size=len(p))[e]  # ego-level predictor
    y = (1.0 + 0.5 * x - 0.3 * w + rng.normal(0, sd_p, n_practice)[p[e]] + rng.normal(0, sd_e, len(p))[e]
         + rng.normal(size=len(e)))
    return pd.DataFrame({"y": y, "x": x, "w": w, "practice": p[e], "ego": e})


def test_planted_truth_three_levels():
    df = three_level(n_practice=60, egos=10)
    m = cimstats.lmm("y ~ x + w + (1 | practice/ego)", df)
    est = m.params
    se = m.std_errors
    for term, truth in {"(Intercept)": 1.0, "x": 0.5, "w": -0.3}.items():
        assert abs(est[term] - truth) < 4 * se[term]
    vc = m.varcorr().set_index("group")
    assert abs(vc.loc["ego:practice", "sdcor"] - 0.8) < 0.15
    assert abs(vc.loc["practice", "sdcor"] - 0.6) < 0.2
    assert abs(vc.loc["Residual", "sdcor"] - 1.0) < 0.05


def test_icc_and_variance_partition_for_nested_model(alters):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cimstats.lmm("support ~ contact_freq + (1 | practice/ego)", alters)
    icc = m.icc().set_index("group")
    v = m.varcorr().set_index("group")["vcov"]
    total = v.sum()
    assert icc.vpc.sum() == pytest.approx(1.0)
    assert icc.loc["practice", "icc"] == pytest.approx(v["practice"] / total)
    assert icc.loc["ego:practice", "icc"] == pytest.approx((v["practice"] + v["ego:practice"]) / total)


def test_predict_new_data_with_unseen_groups(sleep):
    m = cimstats.lmm("Reaction ~ Days + (Days | Subject)", sleep)
    new = sleep.head(3).copy()
    unseen = new.assign(Subject=999)
    np.testing.assert_allclose(m.predict(new), m.fitted()[:3])
    np.testing.assert_allclose(m.predict(unseen), m.predict(new, include_random=False))
    np.testing.assert_allclose(m.predict(new, include_random=False), m.params.iloc[0] + m.params.iloc[1] * new.Days)


def test_summary_renders_text_html_latex(sleep):
    m = cimstats.lmm("Reaction ~ Days + (Days | Subject)", sleep)
    s = m.summary()
    text = str(s)
    assert "Random effects" in text and "Fixed effects" in text and "Subject" in text
    assert "Satterthwaite" in text and "180 used, 0 dropped" in text
    assert [t.title for t in s.tables] == ["Random effects", "Fixed effects"]
    assert s.to_html().startswith("<div") and "<table" in s.to_html()
    assert r"\begin{tabular}" in s.to_latex() and r"\_" not in "(Intercept)"
    assert m._repr_html_() == s.to_html()
    g = m.glance()
    assert {"nobs", "ngroups_Subject", "loglik", "aic", "bic", "reml_criterion", "converged"} <= set(g.columns)
    assert list(m.tidy().columns) == ["term", "estimate", "std_error", "statistic", "df", "p_value",
                                      "ci_lower", "ci_upper"]


def test_result_is_frozen(sleep):
    m = cimstats.lmm("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(Exception):
        m.sigma = 1.0


def test_data_first_call_order_is_accepted(sleep):
    a = cimstats.lmm(sleep, "Reaction ~ Days + (1 | Subject)")
    b = cimstats.lmm("Reaction ~ Days + (1 | Subject)", sleep)
    assert a.loglik == pytest.approx(b.loglik)


@pytest.mark.parametrize("formula, change, word", [
    ("Reaction ~ Days + Days2 + (1 | Subject)", "collinear", "collinear"),
    ("Reaction ~ Days", None, "no random-effect term"),
    ("subj ~ Days + (1 | Subject)", "str", "non-numeric"),
    ("Reaction ~ Days + (1 | one)", "one", "1 level"),
    ("Reaction ~ Days + (1 | row)", "row", "fewer levels than observations"),
    ("Reaction ~ Days + (Days | Subject", None, "not closed"),
])
def test_clear_errors(sleep, formula, change, word):
    df = sleep.copy()
    if change == "collinear":
        df["Days2"] = 2 * df["Days"] + 1
    if change == "str":
        df["subj"] = "s" + df["Subject"].astype(str)
    if change == "one":
        df["one"] = "all"
    if change == "row":
        df["row"] = np.arange(len(df))
    with pytest.raises(ModelSpecificationError) as e:
        cimstats.lmm(formula, df)
    assert word in str(e.value)


def test_singular_fit_is_a_structured_warning():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"y": rng.normal(size=200), "g": np.repeat(np.arange(40), 5)})
    with pytest.warns(SingularFitWarning, match="'g'"):
        m = cimstats.lmm("y ~ 1 + (1 | g)", df)
    assert m.singular and m.glance().loc[0, "singular"]


@pytest.mark.parametrize("name", ["penicillin", "pastes", "alters3", "sleepstudy_uncorrelated", "alters3_slopes"])
def test_factorisation_paths_agree(monkeypatch, name):
    """Dense, recursive-block and sparse-LU factorisations give the same fit."""
    ref = json.loads((REFERENCE / "lmm.json").read_text())["cases"][name]
    df = pd.read_csv(DATA / ref["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = cimstats.lmm(ref["formula"], df)
        monkeypatch.setattr(core_mod, "DENSE_REST_MAX", 0)
        sparse = cimstats.lmm(ref["formula"], df)
        monkeypatch.setattr(linalg, "DENSE_MAX", 0)
        lu = cimstats.lmm(ref["formula"], df)
    for other in (sparse, lu):
        assert other.loglik == pytest.approx(base.loglik, abs=1e-8)
        np.testing.assert_allclose(other.params, base.params, rtol=1e-7)
        np.testing.assert_allclose(other.ranef().condsd, base.ranef().condsd, rtol=1e-5)


def test_anova_needs_same_rows(sleep):
    m0 = cimstats.lmm("Reaction ~ Days + (1 | Subject)", sleep)
    m1 = cimstats.lmm("Reaction ~ Days + (1 | Subject)", sleep.iloc[:170])
    with pytest.raises(ModelSpecificationError, match="different numbers of rows"):
        cimstats.anova(m0, m1)


def test_bootstrap_intervals_bracket_estimates(sleep):
    m = cimstats.lmm("Reaction ~ Days + (1 | Subject)", sleep)
    ci = m.varcomp_ci(method="bootstrap", nsim=40, seed=1)
    assert list(ci.columns[:3]) == ["group", "term1", "term2"]
    assert (ci.ci_lower <= ci.estimate).all() and (ci.estimate <= ci.ci_upper).all()


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.floats(-50, 50))
def test_row_order_and_outcome_shift_invariance(seed, shift):
    df = three_level(seed=seed % 7, n_practice=8, egos=4, alters_per=4)
    perm = df.sample(frac=1.0, random_state=seed).assign(y=lambda d: d.y + shift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        m = cimstats.lmm("y ~ x + w + (1 | practice/ego)", df, df_method="asymptotic")
        m2 = cimstats.lmm("y ~ x + w + (1 | practice/ego)", perm, df_method="asymptotic")
    np.testing.assert_allclose(m2.params.iloc[1:], m.params.iloc[1:], rtol=1e-4, atol=1e-6)
    assert m2.params.iloc[0] == pytest.approx(m.params.iloc[0] + shift, abs=1e-4)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-5)


def test_missing_rows_warn_and_show_in_summary(alters):
    with pytest.warns(cimstats.errors.MissingDataWarning, match="contact_freq: 25"):
        m = cimstats.lmm("support ~ contact_freq + (1 | practice/ego)", alters)
    assert "25 dropped (contact_freq: 25 missing)" in str(m.summary())


def test_centring_helpers_carry_over_to_new_data():
    exam = pd.read_csv(DATA / "exam.csv")
    m = cimstats.lmm("normexam ~ cwc(standLRT, school) * clustermean(standLRT, school) + (1 | school)", exam)
    np.testing.assert_allclose(m.predict(exam.head(20)), m.fitted()[:20], rtol=1e-10)
    new = exam.head(5).assign(school=-1)  # unseen school: centred on its own mean, no random effect
    cm = new.standLRT.mean()
    b = m.params.to_numpy()
    x = new.standLRT.to_numpy()
    expected = b[0] + b[1] * (x - cm) + b[2] * cm + b[3] * (x - cm) * cm
    np.testing.assert_allclose(m.predict(new), expected, rtol=1e-10)


def test_term_tests_asymptotic_and_satterthwaite(alters):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cimstats.lmm("support ~ contact_freq + tie_type + (1 | practice/ego)", alters)
        ma = cimstats.lmm("support ~ contact_freq + tie_type + (1 | practice/ego)", alters, df_method="asymptotic")
    t = m.term_tests().set_index("term")
    ta = ma.term_tests().set_index("term")
    assert t.loc["tie_type", "numdf"] == 2 and np.isinf(ta.loc["tie_type", "df"])
    assert t.loc["tie_type", "statistic"] == pytest.approx(ta.loc["tie_type", "statistic"])
    # a one-column term: F equals t squared, df equal
    row = m.tidy().set_index("term").loc["contact_freq"]
    assert t.loc["contact_freq", "statistic"] == pytest.approx(row.statistic ** 2, rel=1e-8)
    assert t.loc["contact_freq", "df"] == pytest.approx(row.df, rel=1e-6)


def test_weighted_cross_products_equal_scaled_rows():
    """The core accepts observation weights (used by generalised models)."""
    from cimstats.models.mixed.core import CrossProducts
    rng = np.random.default_rng(0)
    n, G = 50, 5
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n)
    Z = np.column_stack([np.ones(n), rng.normal(size=n)])
    c = rng.integers(0, G, n)
    w = rng.uniform(0.5, 2, n)
    a = CrossProducts.build(X, y, [Z], [c], [G], weights=w)
    sw = np.sqrt(w)[:, None]
    b = CrossProducts.build(X * sw, y * sw[:, 0], [Z * sw], [c], [G])
    np.testing.assert_allclose(a.head, b.head)
    np.testing.assert_allclose(a.ZtXy, b.ZtXy)
    np.testing.assert_allclose(a.XyXy, b.XyXy)
