"""Mediation results honour the result contract and survive save -> load unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from contract import check_contract

import cimstats
from cimstats import load_result
from cimstats.errors import MissingDataWarning
from cimstats.models._result import ResultSummary
from cimstats.render.figures.path import path_layout


def _data(n=240, seed=5, missing=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    w = rng.uniform(1, 5, size=n)
    x = 0.3 * z + rng.normal(size=n)
    m = 0.3 * x + 0.1 * x * w + 0.2 * z + rng.normal(size=n)
    y = 0.1 * x + 0.4 * m + 0.2 * z + rng.normal(size=n)
    d = pd.DataFrame({"x": x, "m": m, "y": y, "z": z, "w": w})
    if missing:
        d.loc[rng.choice(n, missing, replace=False), "m"] = np.nan
        d.loc[rng.choice(n, missing, replace=False), "z"] = np.nan
    return d


def _same_path_input(a, b):
    for x, y in zip(path_layout(a, intervals=True), path_layout(b, intervals=True)):
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        else:
            assert x == y


def test_simple_mediation(tmp_path):
    res = cimstats.mediation(_data(), x="x", m="m", y="y", covariates=["z"], n_boot=200, seed=3)
    again = check_contract(res, tmp_path)
    _same_path_input(again, res)
    pd.testing.assert_frame_equal(again.sensitivity(), res.sensitivity(), check_exact=True)
    assert again.sensitivity().attrs == res.sensitivity().attrs
    pd.testing.assert_frame_equal(again.bootstrap_draws(params=True), res.bootstrap_draws(params=True))
    pd.testing.assert_frame_equal(again.paths(), res.paths(), check_exact=True)
    # percentile intervals at another level come from the same draws
    t90 = res.tidy(level=0.9).set_index("term")
    draws = res.bootstrap_draws()
    for term in ("indirect", "a", "total"):
        assert t90.loc[term, "ci_lower"] == pytest.approx(np.quantile(draws[term], 0.05), rel=1e-12)
        assert t90.loc[term, "ci_upper"] == pytest.approx(np.quantile(draws[term], 0.95), rel=1e-12)
    # the covariance is that of the draws: its diagonal is the squared bootstrap SE
    v = res.vcov()
    se = res.tidy().set_index("term")["std_error"]
    assert list(v.index) == list(se.index)
    np.testing.assert_allclose(np.diag(v), se.to_numpy() ** 2, rtol=1e-12)
    assert res.optimizer.converged and res.optimizer.iterations == 0
    assert "closed-form" in res.optimizer.method


@pytest.mark.parametrize("ci", ["bca", "bc"])
def test_other_level_uses_the_same_interval_method(ci):
    d = _data()
    at95 = cimstats.mediation(d, x="x", m="m", y="y", n_boot=150, seed=9, ci=ci, sensitivity=False)
    at90 = cimstats.mediation(d, x="x", m="m", y="y", n_boot=150, seed=9, ci=ci, sensitivity=False, level=0.9)
    a, b = at95.tidy(level=0.9), at90.tidy()
    pd.testing.assert_frame_equal(a[["term", "ci_lower", "ci_upper"]], b[["term", "ci_lower", "ci_upper"]],
                                  check_exact=True)
    # the default is the analysis' own level
    pd.testing.assert_frame_equal(at90.tidy(), at90.tidy(level=0.9))


def test_moderated_mediation_with_moderator_values(tmp_path):
    res = cimstats.mediation(_data(), x="x", m="m", y="y", moderator="w", moderator_values=[1.5, 3.0, 4.5],
                             moderated_paths=("a",), n_boot=150, seed=4, ci="bca")
    assert res.moderator_values == (1.5, 3.0, 4.5)
    again = check_contract(res, tmp_path)
    assert again.moderator_values == res.moderator_values and repr(again.spec) == repr(res.spec)  # NaN-safe
    assert "index_of_moderated_mediation" in set(again.tidy()["term"])
    _same_path_input(again, res)
    np.testing.assert_array_equal(again.acceleration, res.acceleration)


def test_dropped_rows(tmp_path):
    with pytest.warns(MissingDataWarning):
        res = cimstats.mediation(_data(missing=7), x="x", m="m", y="y", covariates=["z"], n_boot=120, seed=2,
                                 ci="bc")
    d = res.dropped
    assert list(d.columns) == ["variable", "n_missing"]
    assert dict(zip(d["variable"], d["n_missing"])) == {"m": 7, "z": 7}
    assert res.n_dropped == int(_data(missing=7)[["m", "z"]].isna().any(axis=1).sum())
    again = check_contract(res, tmp_path)
    assert again.glance().loc[0, "dropped_reasons"] == res.glance().loc[0, "dropped_reasons"]
    assert "n dropped" in str(again.summary())


def test_summary_is_a_result_summary_and_format_is_deprecated():
    res = cimstats.mediation(_data(), x="x", m="m", y="y", n_boot=60, seed=1, sensitivity=False)
    s = res.summary()
    assert isinstance(s, ResultSummary) and s.title.startswith("Mediation analysis")
    assert str(res) == str(s)
    with pytest.warns(DeprecationWarning, match="format"):
        text = res.summary(format="text")
    assert text.startswith("Mediation analysis") and "Regressions (OLS):" in text
    with pytest.warns(DeprecationWarning):
        assert "<table" in res.summary(format="html")


def test_loaded_result_is_a_mediation_result(tmp_path):
    res = cimstats.mediation(_data(), x="x", m="m", y="y", n_boot=60, seed=1, sensitivity=False)
    res.save(tmp_path / "m")
    again = load_result(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(again.summary()) == str(res.summary())
    assert again.to_table_spec() == res.to_table_spec()


def test_survey_design_mediation(tmp_path):
    from cimstats.models.survey import SurveyDesign

    rng = np.random.default_rng(8)
    d = _data(n=240, seed=8).assign(stratum=np.repeat([1, 2, 3], 80), psu=np.repeat(np.arange(24), 10),
                                    wt=rng.uniform(1, 4, size=240))
    design = SurveyDesign(weights="wt", strata="stratum", cluster="psu")
    res = cimstats.mediation(d, x="x", m="m", y="y", covariates=["z"], design=design, n_boot=80, seed=2)
    again = check_contract(res, tmp_path)
    pd.testing.assert_frame_equal(again.paths(), res.paths(), check_exact=True)
    assert (again.strata, again.cluster, again.n_clusters) == ("stratum", "psu", 24)
    assert "Rao-Wu" in again.glance().loc[0, "resampling"]
