"""The mixed-model results (lmm, glmm, gee) honour the result contract and survive save -> load unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from contract import check_contract
from scipy import special

import cimstats
from cimstats.models._result import ResultNotAvailableError
from cimstats.render.figures import caterpillar_plot, caterpillar_table, forest_table

LMM_UNAVAILABLE = ("fitted", "residuals", "predict", "term_tests", "varcomp_ci")


def _quiet(fit, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kw)


@pytest.fixture(scope="module")
def slopes_data():
    """Random intercepts and slopes, two factors of x's categories, and missing values in two columns."""
    rng = np.random.default_rng(20)
    g = np.repeat(np.arange(24), 8)
    x = rng.normal(size=g.size)
    u = rng.normal(0, [0.9, 0.4], size=(24, 2))
    d = pd.DataFrame({"g": [f"site {i:02d}" for i in g], "x": x,
                      "arm": rng.choice(["control", "treated"], g.size),
                      "y": 1 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.normal(size=g.size)})
    d.loc[[3, 40, 41], "x"] = np.nan
    d.loc[[7, 90], "y"] = np.nan
    return d


@pytest.mark.parametrize("reml", [True, False])
def test_lmm_random_slopes_with_dropped_rows(slopes_data, tmp_path, reml):
    m = _quiet(cimstats.lmm, "y ~ x + arm + (x | g)", slopes_data, reml=reml)
    assert m.n_dropped == 5
    again = check_contract(m, tmp_path, unavailable=LMM_UNAVAILABLE)
    assert again.dropped.set_index("variable")["n_missing"].to_dict() == {"x": 3, "y": 2}
    assert again.dropped_by_column == m.dropped_by_column and again.n_dropped == 5
    # the figures' inputs and the other read-outs are those of the fitted model
    pd.testing.assert_frame_equal(again.ranef(), m.ranef(), check_exact=True)
    pd.testing.assert_frame_equal(again.varcorr(), m.varcorr(), check_exact=True)
    pd.testing.assert_frame_equal(again.icc(), m.icc(), check_exact=True)
    pd.testing.assert_frame_equal(caterpillar_table(again), caterpillar_table(m), check_exact=True)
    assert caterpillar_plot(again).alt_text == caterpillar_plot(m).alt_text
    pd.testing.assert_frame_equal(forest_table(again.tidy()), forest_table(m.tidy()), check_exact=True)
    pd.testing.assert_frame_equal(again.conf_int(0.9), m.conf_int(0.9), check_exact=True)
    assert again.singular_detail == m.singular_detail and again.ngroups == m.ngroups
    assert repr(again) == repr(m)


def test_lmm_loaded_keeps_satterthwaite_df_without_recomputing(slopes_data, tmp_path, monkeypatch):
    m = _quiet(cimstats.lmm, "y ~ x + (1 | g)", slopes_data)
    m.save(tmp_path / "fit")
    from cimstats.models.mixed import results as mixed_results

    def refuse(*a, **k):
        raise AssertionError("the saved df must be read, not recomputed")

    monkeypatch.setattr(mixed_results, "satterthwaite", refuse)
    again = cimstats.load_result(tmp_path / "fit")
    np.testing.assert_array_equal(again.df.to_numpy(), m.df.to_numpy())
    with pytest.raises(ResultNotAvailableError, match="fit the model again"):
        cimstats.anova(again, _quiet(cimstats.lmm, "y ~ 1 + (1 | g)", slopes_data.dropna(subset=["x"])))
    with pytest.raises(ResultNotAvailableError):
        again.predict(slopes_data)


def test_lmm_asymptotic_df(slopes_data, tmp_path):
    m = _quiet(cimstats.lmm, "y ~ x + (1 | g)", slopes_data, df_method="asymptotic")
    check_contract(m, tmp_path, unavailable=LMM_UNAVAILABLE)
    assert "z value" in str(m.summary())


@pytest.fixture(scope="module")
def bernoulli_data():
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(60), 8)
    x = rng.normal(size=g.size)
    d = pd.DataFrame({"y": rng.binomial(1, special.expit(-0.3 + 0.7 * x + rng.normal(0, 1, 60)[g])),
                      "x": x, "g": g})
    d.loc[[5, 6], "x"] = np.nan
    return d


def test_glmm_binomial(bernoulli_data, tmp_path):
    m = _quiet(cimstats.glmm, "y ~ x + (1 | g)", bernoulli_data, family="binomial")
    again = check_contract(m, tmp_path, unavailable=("fitted", "predict"))
    pd.testing.assert_frame_equal(again.tidy(exponentiate=True, level=0.9), m.tidy(exponentiate=True, level=0.9),
                                  check_exact=True)
    pd.testing.assert_frame_equal(again.ranef(), m.ranef(), check_exact=True)
    pd.testing.assert_frame_equal(again.icc(), m.icc(), check_exact=True)
    pd.testing.assert_frame_equal(again.median_odds_ratio(), m.median_odds_ratio(), check_exact=True)
    assert caterpillar_plot(again).alt_text == caterpillar_plot(m).alt_text
    assert "Odds ratio" in str(m.summary())


def test_glmm_poisson(tmp_path):
    rng = np.random.default_rng(9)
    g = np.repeat(np.arange(40), 6)
    expo = rng.uniform(1, 8, g.size)
    z = rng.binomial(1, 0.5, g.size)
    d = pd.DataFrame({"n": rng.poisson(expo * np.exp(-1 + 0.4 * z + rng.normal(0, 0.5, 40)[g])), "z": z,
                      "expo": expo, "g": g})
    m = _quiet(cimstats.glmm, "n ~ z + offset(log(expo)) + (1 | g)", d, family="poisson")
    again = check_contract(m, tmp_path, unavailable=("fitted", "predict"))
    pd.testing.assert_frame_equal(again.ranef(), m.ranef(), check_exact=True)
    assert "Rate ratio" in str(again.summary())


def test_gee(bernoulli_data, tmp_path):
    m = _quiet(cimstats.gee, "y ~ x + (1 | g)", bernoulli_data, family="binomial")
    assert m.optimizer.converged and m.optimizer.iterations == m.iterations
    again = check_contract(m, tmp_path, unavailable=("predict",))
    assert again.working_correlation == m.working_correlation


@pytest.mark.parametrize("verb", ["lmm", "glmm", "gee"])
def test_old_tidy_level_forms_still_work_with_a_deprecation_warning(slopes_data, bernoulli_data, verb):
    if verb == "lmm":
        m = _quiet(cimstats.lmm, "y ~ x + (1 | g)", slopes_data)
    else:
        m = _quiet(getattr(cimstats, verb), "y ~ x + (1 | g)", bernoulli_data)
    new = m.tidy(level=0.9)
    with pytest.warns(DeprecationWarning, match=r"tidy\(level=0.9\)"):
        old_keyword = m.tidy(conf_level=0.9)
    with pytest.warns(DeprecationWarning, match="positional"):
        old_positional = m.tidy(0.9)
    pd.testing.assert_frame_equal(old_keyword, new)
    pd.testing.assert_frame_equal(old_positional, new)
    with pytest.raises(cimstats.errors.ModelSpecificationError, match="level"):
        m.tidy(level=95)
