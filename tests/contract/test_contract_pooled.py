"""Estimates pooled over imputations (kind "pooled") honour the result contract."""

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from contract import check_contract

import cimstats


def _data():
    rng = np.random.default_rng(11)
    d = pd.DataFrame({"g": np.repeat(np.arange(25), 6), "x": rng.normal(size=150)})
    d["y"] = 0.4 * d["x"] + rng.normal(size=25)[d["g"]] + rng.normal(size=150)
    d.loc[rng.random(150) < 0.25, "x"] = np.nan
    return d


def test_pooled_mixed_model_honours_the_contract(tmp_path):
    imp = cimstats.impute(_data(), m=3, cluster="g", seed=5, iterations=3)
    pooled = imp.fit(cimstats.lmm, "y ~ x + (1 | g)")
    again = check_contract(pooled, tmp_path)
    assert pooled.kind == "pooled"
    pd.testing.assert_frame_equal(again.wald_test(), pooled.wald_test())
    pd.testing.assert_frame_equal(again.estimates, pooled.estimates)


def test_pooled_statsmodels_fit_honours_the_contract(tmp_path):
    imp = cimstats.impute(_data(), m=2, seed=6, iterations=2)
    pooled = imp.fit(lambda data: smf.ols("y ~ x", data).fit())
    check_contract(pooled, tmp_path)
    assert pooled.dfcom == 148
