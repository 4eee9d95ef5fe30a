"""Survey designs against R's survey package: svymean, svytotal, svyquantile and svyglm, plus stats::glm.

The numbers come from tests/reference/survey.R (which also writes the data sets to
tests/reference/data/survey/); estimates and standard errors agree to 1e-6 relative.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import cimstats
from conftest import REFERENCE

REF = json.loads((REFERENCE / "survey.json").read_text(encoding="utf-8"))
DATA = REFERENCE / "data" / "survey"
RTOL = 1e-6
#: fractions implied by apistrat's fpc (R: fpc = ~I(...) in the strat_fraction design)
FRACTION = {"E": 100 / 4421, "H": 50 / 755, "M": 50 / 1018}


@lru_cache(maxsize=None)
def _data(name: str) -> pd.DataFrame:
    d = pd.read_csv(DATA / f"{name}.csv")
    if name == "apistrat":
        d["fraction"] = d["stype"].map(FRACTION)
    return d


def _case(name):
    case = REF["designs"][name]
    a = case["design"]
    design = cimstats.SurveyDesign(weights=a["weights"], strata=a["strata"], cluster=a["cluster"], fpc=a["fpc"],
                                   nest=a["nest"], lonely_psu=case["lonely_psu"])
    return case, _data(a["data"]).copy(), design


def _close(actual, expected, what, rtol=RTOL, atol=None):
    """Relative agreement; values that are zero in R (a stratum's own share) are compared absolutely at
    rounding level (1e-10 of the largest value compared, or of 1)."""
    expected = np.ravel(np.asarray(expected, dtype=float))
    if atol is None:
        atol = 1e-10 * max(1.0, float(np.nanmax(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(np.ravel(np.asarray(actual, dtype=float)), expected, rtol=rtol, atol=atol, err_msg=what)


def _r_formula(f: str) -> str:
    return f.replace("factor(race)", "C(race)")


API = [k for k, v in REF["designs"].items() if v["design"]["data"] != "nhanes"]
GLM_CASES = [(k, i) for k, v in REF["designs"].items() for i in range(len(v["glm"]))]


def test_reference_records_versions():
    assert REF["versions"]["survey"] and REF["versions"]["R"].startswith("R version")


@pytest.mark.parametrize("name", API)
def test_means_totals_and_proportions(name):
    case, d, design = _case(name)
    out = cimstats.describe(d, ["api00", "ell", "meals", "stype"], design=design,
                            statistics=("mean", "total"), quantiles=()).table
    means = out[out["statistic"] == "mean"]
    _close(means["estimate"], case["mean"]["estimate"], "svymean")
    _close(means["std_error"], case["mean"]["se"], "svymean SE")
    props = out[out["statistic"] == "proportion"]
    _close(props["estimate"], case["prop_stype"]["estimate"], "proportions")
    _close(props["std_error"], case["prop_stype"]["se"], "proportion SEs")
    totals = out[(out["statistic"] == "total") & (out["variable"] == "stype")]
    _close(totals["estimate"], case["total_stype"]["estimate"], "level totals")
    _close(totals["std_error"], case["total_stype"]["se"], "level total SEs")
    tot = cimstats.describe(d, ["api00", "enroll"], design=design, statistics="total").table
    _close(tot["estimate"], case["total"]["estimate"], "svytotal")
    _close(tot["std_error"], case["total"]["se"], "svytotal SE")


@pytest.mark.parametrize("name", API)
def test_missing_values_are_left_out_as_svymean_na_rm(name):
    case, d, design = _case(name)
    out = cimstats.describe(d, "enroll", design=design, statistics="mean").table
    _close(out["estimate"], case["mean_enroll"]["estimate"], "svymean na.rm")
    _close(out["std_error"], case["mean_enroll"]["se"], "svymean na.rm SE")
    assert out["n_missing"].iloc[0] == d["enroll"].isna().sum()


@pytest.mark.parametrize("name", API)
def test_quantiles_match_svyquantile_defaults(name):
    case, d, design = _case(name)
    for var, key in (("api00", "quantile_api00"), ("enroll", "quantile_enroll")):
        ref = case[key]
        out = cimstats.describe(d, var, design=design, statistics="quantile", quantiles=ref["probs"]).table
        _close(out["estimate"], ref["estimate"], f"{var} quantiles")
        _close(out["ci_lower"], ref["ci_lower"], f"{var} Woodruff lower")
        _close(out["ci_upper"], ref["ci_upper"], f"{var} Woodruff upper")
        _close(out["std_error"], ref["se"], f"{var} quantile SEs")
        assert (out["df"] == case["degf"]).all() or var == "enroll"


@pytest.mark.parametrize("name", API)
def test_domains_keep_the_whole_design(name):
    case, d, design = _case(name)
    out = cimstats.describe(d, ["api00", "ell"], by="stype", design=design, statistics="mean").table
    for dom in case["domain_mean"]:
        sub = out[out["stype"] == dom["stype"]]
        _close(sub["estimate"], dom["estimate"], f"domain {dom['stype']}")
        _close(sub["std_error"], dom["se"], f"domain {dom['stype']} SE")
    q = cimstats.describe(d, "api00", by="stype", design=design, statistics="quantile", quantiles=[0.5]).table
    for dom in case["domain_quantile"]:
        sub = q[q["stype"] == dom["stype"]]
        for col, key in (("estimate", "estimate"), ("std_error", "se"), ("ci_lower", "ci_lower"),
                         ("ci_upper", "ci_upper")):
            _close(sub[col], dom[key], f"domain median {dom['stype']} {col}")


def test_nhanes_strata_and_nested_clusters_without_fpc():
    case, d, design = _case("nhanes")
    out = cimstats.describe(d, ["HI_CHOL", "agecat"], design=design, statistics=("mean", "total"),
                            quantiles=()).table
    m = out[(out["variable"] == "HI_CHOL") & (out["statistic"] == "mean")]
    _close(m["estimate"], case["mean"]["estimate"], "HI_CHOL mean")
    _close(m["std_error"], case["mean"]["se"], "HI_CHOL mean SE")
    t = out[(out["variable"] == "HI_CHOL") & (out["statistic"] == "total")]
    _close(t["std_error"], case["total"]["se"], "HI_CHOL total SE")
    p = out[out["statistic"] == "proportion"]
    _close(p["estimate"], case["prop_agecat"]["estimate"], "agecat proportions")
    _close(p["std_error"], case["prop_agecat"]["se"], "agecat proportion SEs")
    by = cimstats.describe(d, "HI_CHOL", by="RIAGENDR", design=design, statistics="mean").table
    for dom in case["domain_mean"]:
        sub = by[by["RIAGENDR"] == dom["RIAGENDR"]]
        _close(sub["std_error"], dom["se"], "domain SE")


@pytest.mark.parametrize("name,i", GLM_CASES)
def test_svyglm(name, i):
    case, d, design = _case(name)
    ref = case["glm"][i]
    fit = cimstats.glm(_r_formula(ref["formula"]), d, family=ref["family"], design=design,
                       weights=ref.get("weights"))
    t = fit.tidy()
    # R names a factor's levels "factor(race)2"; cimstats names them by label, here the code: "race: 2"
    assert list(t["term"]) == [re.sub(r"^factor\((\w+)\)(.+)$", r"\1: \2", n) for n in ref["names"]]
    _close(t["estimate"], ref["estimate"], "coefficients")
    _close(t["std_error"], ref["se"], "design-based SEs")
    _close(fit.vcov().to_numpy(), ref["vcov"], "vcov", atol=1e-6 * np.max(np.abs(ref["vcov"])))
    assert fit.df == ref["df_residual"] and fit.design_df == ref["design_df"]
    assert fit.nobs == ref["nobs"]
    _close(fit.deviance, ref["deviance"], "deviance")
    ci = np.asarray(ref["confint"])
    # relative to the limit, or to the SE for limits near zero (which lose digits by cancellation)
    se = np.asarray(ref["se"])
    for j, side in enumerate(("ci_lower", "ci_upper")):
        np.testing.assert_array_less(np.abs(t[side].to_numpy() - ci[:, j]), RTOL * np.maximum(np.abs(ci[:, j]), se),
                                     err_msg=f"t interval {side}")


@pytest.mark.parametrize("i", range(len(REF["glm"])))
def test_ordinary_glm_matches_r_glm(i):
    ref = REF["glm"][i]
    f = ref["formula"]
    data = _data(ref["data"])
    fit = cimstats.glm(_r_formula(f), data, family=ref["family"], weights=ref["weights"])
    t = fit.tidy()
    _close(t["estimate"], ref["estimate"], "coefficients")
    _close(t["std_error"], ref["se"], "SEs")
    _close(t["statistic"], ref["statistic"], "statistics")
    _close(t["p_value"], ref["p_value"], "p-values", rtol=1e-4)
    _close(fit.dispersion, ref["dispersion"], "dispersion")
    _close(fit.deviance, ref["deviance"], "deviance")
    _close(fit.null_deviance, ref["null_deviance"], "null deviance")
    assert fit.df_residual == ref["df_residual"] and fit.nobs == ref["nobs"]
    if ref["aic"] is not None:
        _close(fit.aic, ref["aic"], "AIC")
        _close(fit.loglik, ref["loglik"], "log-likelihood")
    else:
        assert np.isnan(fit.aic)
