"""Hostile and awkward inputs to survey designs, describe() and glm(): each refused with one sentence
naming the column and the remedy, or handled as R's survey package handles it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import CimstatsError, ModelSpecificationError
from cimstats.models.survey.design import SurveyDesignError
from conftest import REFERENCE

DATA = REFERENCE / "data" / "survey"


@pytest.fixture
def strat():
    return pd.read_csv(DATA / "apistrat.csv")


def _one_sentence(err) -> str:
    msg = str(err.value)
    assert msg.count(". ") == 0 and msg.endswith("."), msg
    return msg


def test_design_errors_are_cimstats_and_value_errors():
    assert issubclass(SurveyDesignError, CimstatsError) and issubclass(SurveyDesignError, ValueError)


def test_missing_weights_are_refused_naming_the_column(strat):
    strat.loc[[3, 7], "pw"] = np.nan
    with pytest.raises(SurveyDesignError, match=r"'pw' has 2 missing value\(s\)") as err:
        cimstats.describe(strat, "api00", design=cimstats.SurveyDesign(weights="pw", strata="stype"))
    assert "drop those rows" in _one_sentence(err)


def test_negative_weights_are_refused(strat):
    strat.loc[5, "pw"] = -1.0
    with pytest.raises(SurveyDesignError, match="negative value") as err:
        cimstats.glm("api00 ~ ell", strat, design=cimstats.SurveyDesign(weights="pw"))
    _one_sentence(err)


def test_string_weights_are_refused(strat):
    strat["pw"] = strat["pw"].astype(str)
    with pytest.raises(SurveyDesignError, match="not numbers") as err:
        cimstats.describe(strat, "api00", design=cimstats.SurveyDesign(weights="pw"))
    assert "pd.to_numeric" in _one_sentence(err)


def test_all_zero_weights_are_refused(strat):
    strat["pw"] = 0.0
    with pytest.raises(SurveyDesignError, match="zero in every row"):
        cimstats.describe(strat, "api00", design=cimstats.SurveyDesign(weights="pw"))


def test_zero_weights_count_for_nothing_in_the_estimates(strat):
    design = cimstats.SurveyDesign(weights="pw", strata="stype", fpc="fpc")
    zeroed = strat.copy()
    zeroed.loc[zeroed.index[:10], "pw"] = 0.0
    zeroed.loc[zeroed.index[:10], "api00"] = 10_000  # would move any estimate that used them
    kept = strat.iloc[10:]
    m0 = cimstats.describe(zeroed, "api00", design=design, statistics="mean").table["estimate"].iloc[0]
    m1 = cimstats.describe(kept, "api00", design=design, statistics="mean").table["estimate"].iloc[0]
    assert m0 == pytest.approx(m1, rel=1e-12)
    q0 = cimstats.describe(zeroed, "api00", design=design, statistics="quantile", quantiles=[0.5]).table
    q1 = cimstats.describe(kept, "api00", design=design, statistics="quantile", quantiles=[0.5]).table
    assert q0["estimate"].iloc[0] == q1["estimate"].iloc[0]
    g0 = cimstats.glm("api00 ~ ell", zeroed, design=design).params
    g1 = cimstats.glm("api00 ~ ell", kept, design=design).params
    np.testing.assert_allclose(g0, g1, rtol=1e-10)
    # zero-weight rows are not observations for the design's degrees of freedom
    assert cimstats.glm("api00 ~ ell", zeroed, design=design).design_df == len(strat) - 10 - 3


def test_missing_strata_and_cluster_ids_are_refused(strat):
    s = strat.copy()
    s.loc[2, "stype"] = None
    with pytest.raises(SurveyDesignError, match="strata column 'stype' has 1 missing"):
        cimstats.describe(s, "api00", design=cimstats.SurveyDesign(weights="pw", strata="stype"))
    c = strat.copy()
    c["dnum"] = c["dnum"].astype(float)
    c.loc[4, "dnum"] = np.nan
    with pytest.raises(SurveyDesignError, match="cluster column 'dnum' has 1 missing"):
        cimstats.describe(c, "api00", design=cimstats.SurveyDesign(weights="pw", cluster="dnum"))


def test_clusters_crossing_strata_need_nest(strat):
    d = pd.DataFrame({"w": 1.0, "h": np.repeat([1, 2], 6), "psu": np.tile([1, 1, 2, 2, 3, 3], 2),
                      "y": np.arange(12.0)})
    with pytest.raises(SurveyDesignError, match="more than one stratum") as err:
        cimstats.describe(d, "y", design=cimstats.SurveyDesign(weights="w", strata="h", cluster="psu"))
    assert "nest=True" in _one_sentence(err)
    nested = cimstats.describe(d, "y", design=cimstats.SurveyDesign(weights="w", strata="h", cluster="psu",
                                                                    nest=True), statistics="mean")
    # six PSUs in two strata: 4 design degrees of freedom, and the mean of 0..11
    assert nested.table["estimate"].iloc[0] == pytest.approx(5.5)
    q = cimstats.describe(d, "y", design=cimstats.SurveyDesign(weights="w", strata="h", cluster="psu", nest=True),
                          statistics="quantile", quantiles=[0.5]).table
    assert q["df"].iloc[0] == 4


def test_single_psu_is_refused(strat):
    with pytest.raises(SurveyDesignError, match="single primary sampling unit"):
        cimstats.describe(strat.assign(one=1), "api00", design=cimstats.SurveyDesign(weights="pw", cluster="one"))


def test_lonely_psu_fail_names_the_stratum(strat):
    design = cimstats.SurveyDesign(weights="pw", strata="cname")
    with pytest.raises(SurveyDesignError, match=r"Stratum 'Alpine'|Stratum '\w+' of 'cname' has a single PSU") as err:
        cimstats.describe(strat, "api00", design=design)
    assert "lonely_psu='adjust'" in _one_sentence(err)
    with pytest.raises(SurveyDesignError, match="single PSU"):
        cimstats.glm("api00 ~ ell", strat, design=design)


@pytest.mark.parametrize("rule", ["adjust", "average", "certainty", "remove"])
def test_each_lonely_psu_rule_gives_a_finite_variance(strat, rule):
    design = cimstats.SurveyDesign(weights="pw", strata="cname", lonely_psu=rule)
    t = cimstats.describe(strat, "api00", design=design, statistics="mean").table
    fit = cimstats.glm("api00 ~ ell", strat, design=design)
    assert np.isfinite(t["std_error"]).all() and np.isfinite(fit.std_errors).all()


def test_a_domain_without_the_lonely_stratum_does_not_fail(strat):
    # R's survey fails only when the lonely stratum has rows in the estimate
    lonely = strat["cname"].map(strat["cname"].value_counts()) == 1
    d = strat.assign(group=np.where(lonely, "lonely", "rest"))
    design = cimstats.SurveyDesign(weights="pw", strata="cname")
    with pytest.raises(SurveyDesignError, match="single PSU"):
        cimstats.describe(d, "api00", by="group", design=design, statistics="mean")
    rest = cimstats.describe(d.loc[~lonely], "api00", design=design, statistics="mean")
    assert np.isfinite(rest.table["std_error"]).all()


def test_fpc_checks(strat):
    mixed = strat.assign(f=np.where(strat["stype"] == "E", 0.5, 2000.0))
    with pytest.raises(SurveyDesignError, match="mix population sizes"):
        cimstats.describe(mixed, "api00", design=cimstats.SurveyDesign(weights="pw", strata="stype", fpc="f"))
    varying = strat.assign(f=strat["fpc"] + np.arange(len(strat)))
    with pytest.raises(SurveyDesignError, match="different values within one stratum"):
        cimstats.describe(varying, "api00", design=cimstats.SurveyDesign(weights="pw", strata="stype", fpc="f"))
    small = strat.assign(f=10.0)
    with pytest.raises(SurveyDesignError, match="more than 100% sampling"):
        cimstats.describe(small, "api00", design=cimstats.SurveyDesign(weights="pw", strata="stype", fpc="f"))


def test_design_arguments_are_checked():
    with pytest.raises(SurveyDesignError, match="lonely_psu"):
        cimstats.SurveyDesign(lonely_psu="drop")
    with pytest.raises(SurveyDesignError, match="one finite-population correction per stage"):
        cimstats.SurveyDesign(cluster=["a", "b"], fpc="f")
    with pytest.raises(SurveyDesignError, match="not a column of `data`"):
        cimstats.describe(pd.DataFrame({"y": [1.0, 2.0]}), "y", design=cimstats.SurveyDesign(weights="wt"))


def test_glm_refuses_random_effects_unknown_families_and_bad_outcomes(strat):
    with pytest.raises(ModelSpecificationError, match=r"random-effect term \(1 \| dnum\)"):
        cimstats.glm("api00 ~ ell + (1 | dnum)", strat)
    with pytest.raises(ModelSpecificationError, match="`family=`"):
        cimstats.glm("api00 ~ ell", strat, family="gamma")
    with pytest.raises(ModelSpecificationError, match="outside 0-1"):
        cimstats.glm("api00 ~ ell", strat, family="binomial")
    with pytest.raises(ModelSpecificationError, match="negative values"):
        cimstats.glm("I(ell - 50) ~ meals", strat, family="poisson")
    with pytest.raises(SurveyDesignError, match="expected a cimstats.SurveyDesign"):
        cimstats.glm("api00 ~ ell", strat, design={"weights": "pw"})


def test_glm_names_collinear_predictors(strat):
    d = strat.assign(ell2=2 * strat["ell"])
    with pytest.raises(ModelSpecificationError, match="'ell2' is a linear combination"):
        cimstats.glm("api00 ~ ell + meals + ell2", d)


def test_glm_prior_weights_are_checked(strat):
    w = strat["pw"].copy()
    w.iloc[[0, 5]] = np.nan
    fit = cimstats.glm("api00 ~ ell", strat.assign(w=w), weights="w")   # set aside and counted, as R's glm
    assert fit.nobs == len(strat) - 2 and fit.dropped.to_dict("list") == {"variable": ["w"], "n_missing": [2]}
    assert len(fit.predict()) == fit.nobs
    w.iloc[3] = -1.0
    with pytest.raises(ModelSpecificationError, match="negative or infinite"):
        cimstats.glm("api00 ~ ell", strat.assign(w=w), weights="w")
    with pytest.raises(ModelSpecificationError, match="not numbers"):
        cimstats.glm("api00 ~ ell", strat.assign(w=strat["pw"].astype(str)), weights="w")
    with pytest.raises(ModelSpecificationError, match="one weight per row"):
        cimstats.glm("api00 ~ ell", strat, weights=[1.0, 2.0])


def test_describe_counts_rows_with_a_missing_group(strat):
    d = strat.copy()
    d.loc[[0, 1, 2], "stype"] = None
    out = cimstats.describe(d, "api00", by="stype", statistics="mean")
    assert out.dropped.to_dict("list") == {"variable": ["stype"], "n_missing": [3]}
    assert out.table["n"].sum() == len(d) - 3
    with pytest.raises(ModelSpecificationError, match="probabilities between 0 and 1"):
        cimstats.describe(d, "api00", quantiles=[50])
    with pytest.raises(ModelSpecificationError, match="not a column"):
        cimstats.describe(d, "api01")


def test_without_a_design_describe_is_a_simple_random_sample(strat):
    out = cimstats.describe(strat, "api00", statistics="mean").table
    y = strat["api00"].to_numpy(float)
    assert out["estimate"].iloc[0] == pytest.approx(y.mean(), rel=1e-12)
    assert out["std_error"].iloc[0] == pytest.approx(y.std(ddof=1) / np.sqrt(len(y)), rel=1e-12)


def test_describe_table_spec_renders(strat):
    out = cimstats.describe(strat, ["api00", "stype"], by="stype",
                            design=cimstats.SurveyDesign(weights="pw", strata="stype", fpc="fpc"))
    spec = out.to_table_spec()
    assert isinstance(spec, cimstats.TableSpec)
    text = repr(out)
    assert "median" in text and "stype = E" in text and "proportion: H" in text


def test_a_lonely_unit_at_the_second_stage_names_its_first_stage_unit():
    d = pd.read_csv(DATA / "apiclus2.csv")
    one = d.groupby("dnum")["snum"].transform("size") == 1
    d.loc[one, "fpc2"] = 3  # a district with one sampled school out of three: no within-district variance
    design = cimstats.SurveyDesign(cluster=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    with pytest.raises(SurveyDesignError, match=r"The unit \S+ of 'dnum' has a single PSU at sampling stage 2"):
        cimstats.describe(d, "api00", design=design, statistics="mean")
    fine = cimstats.describe(d, "api00", design=cimstats.SurveyDesign(cluster=["dnum", "snum"], fpc=["fpc1", "fpc2"],
                                                                      lonely_psu="certainty"), statistics="mean")
    assert np.isfinite(fine.table["std_error"]).all()


def test_glm_outcome_types(strat):
    yes = strat.assign(sw_text=np.where(strat["sw"] == 1, "Yes", "No"), sw_bool=strat["sw"] == 1)
    with pytest.raises(ModelSpecificationError, match="'sw_text' holds .* values, not numbers") as err:
        cimstats.glm("sw_text ~ ell", yes, family="binomial")
    _one_sentence(err)
    a = cimstats.glm("sw_bool ~ ell", yes, family="binomial").params.to_numpy()
    b = cimstats.glm("sw ~ ell", yes, family="binomial").params.to_numpy()
    np.testing.assert_array_equal(a, b)
