"""Pooling with Rubin's rules agrees with mice::pool, D1 and D2 on imputations stored from mice.

tests/reference/mice.R imputes nhanes2 and popmis with mice, stores the imputations in long form
under tests/reference/data/mice/ and records mice's pooled numbers in tests/reference/mice.json; here
the same completed data sets are read with ``Imputations.from_long``, the same models are fitted with
statsmodels (any fitting function can be pooled) and pooled by cimstats.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from cimstats import Imputations

REF = Path(__file__).parent / "reference"
MICE = json.loads((REF / "mice.json").read_text())
TOL = 1e-8


def _long(name):
    return pd.read_csv(REF / "data" / "mice" / name)


def ols(formula, data):
    return smf.ols(formula, data).fit()


def logit(formula, data):
    d = data.assign(hyp=(data["hyp"] == "yes").astype(float))
    return smf.glm(formula, d, family=sm.families.Binomial()).fit(tol=1e-14, maxiter=100)


FITS = {
    "nhanes2_lm_chl": (ols, "chl ~ C(age) + bmi"),
    "nhanes2_lm_bmi": (ols, "bmi ~ C(hyp) + chl"),
    "nhanes2_glm_hyp": (logit, "hyp ~ bmi + chl"),
    "popmis_lm": (ols, "popular ~ sex + texp"),
}


def _close(ours, theirs, what):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL * np.maximum(1, np.abs(theirs)).max(), err_msg=what)


@pytest.mark.parametrize("case", sorted(FITS))
def test_pooled_estimates_match_mice_pool(case):
    ref = MICE["cases"][case]
    imp = Imputations.from_long(_long(ref["data"]))
    assert imp.m == ref["m"]
    verb, formula = FITS[case]
    t = imp.fit(verb, formula).tidy()
    assert len(t) == len(ref["term"])
    for ours, theirs in (("estimate", "estimate"), ("std_error", "std_error"), ("df", "df"), ("riv", "riv"),
                         ("lambda", "lambda"), ("fmi", "fmi"), ("ubar", "ubar"), ("b", "b"),
                         ("statistic", "statistic"), ("p_value", "p_value"), ("ci_lower", "ci_lower"),
                         ("ci_upper", "ci_upper")):
        _close(t[ours], ref[theirs], f"{case}: {ours}")
    assert imp.fit(verb, formula).dfcom == ref["dfcom"]


def test_d1_wald_test_matches_mice_d1():
    ref = MICE["tests"]["nhanes2_d1_age"]
    imp = Imputations.from_long(_long(ref["data"]))
    pooled = imp.fit(ols, "chl ~ C(age) + bmi")
    got = pooled.wald_test(["C(age)[T.40-59]", "C(age)[T.60-99]"]).iloc[0]
    for key in ("statistic", "df1", "df2", "p_value", "riv"):
        _close(got[key], ref[key], f"D1 {key}")


def test_d2_likelihood_ratio_matches_mice_d2():
    ref = MICE["tests"]["nhanes2_d2_age"]
    imp = Imputations.from_long(_long(ref["data"]))
    got = imp.likelihood_ratio(ols, "chl ~ C(age) + bmi", "chl ~ bmi").iloc[0]
    for key in ("statistic", "df1", "df2", "p_value", "riv"):
        _close(got[key], ref[key], f"D2 {key}")


def test_from_long_marks_the_cells_mice_imputed():
    long = _long("nhanes2_long.csv")
    imp = Imputations.from_long(long)
    original = long[long[".imp"] == 0].drop(columns=[".imp", ".id"]).reset_index(drop=True)
    assert imp.where.equals(original.isna())
    assert imp.complete(3).equals(long[long[".imp"] == 3].drop(columns=[".imp", ".id"]).reset_index(drop=True))
    # without .imp 0 the imputed cells are the ones that differ between imputations
    no_zero = Imputations.from_long(long[long[".imp"] > 0])
    assert (no_zero.where.to_numpy() <= original.isna().to_numpy()).all()
    assert no_zero.where["bmi"].sum() > 0


def test_from_long_reads_stata_flong_names():
    long = _long("nhanes2_long.csv").rename(columns={".imp": "_mi_m", ".id": "_mi_id"})
    long["_mi_miss"] = np.where(long["_mi_m"] == 0, long[["bmi", "hyp", "chl"]].isna().any(axis=1), np.nan)
    imp = Imputations.from_long(long, imp="_mi_m", id="_mi_id")
    assert imp.m == 5 and list(imp.data.columns) == ["age", "bmi", "hyp", "chl"]


def test_pooled_linear_mixed_model_matches_mice_pool_of_lmer():
    """cimstats.lmm on each completed set, pooled, against lme4::lmer pooled by mice (REML).

    mice takes the complete-data df from broom.mixed (rows minus fixed effects minus variance
    parameters: 1995); cimstats' default is rows minus estimates (1997), so the reference df is given.
    The two programs' REML optima agree to about 1e-7, hence the looser tolerance here.
    """
    import cimstats

    ref = MICE["cases"]["popmis_lmer"]
    imp = Imputations.from_long(_long(ref["data"]))
    t = imp.fit(cimstats.lmm, "popular ~ sex + texp + (1 | school)", dfcom=ref["dfcom"]).tidy()
    assert list(t["term"]) == ref["term"]
    for col in ("estimate", "std_error", "df", "riv", "fmi", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(t[col], ref[col], rtol=1e-5, err_msg=col)
    default = imp.fit(cimstats.lmm, "popular ~ sex + texp + (1 | school)")
    assert default.dfcom == 1997
    np.testing.assert_allclose(default.tidy()["df"], ref["df"], rtol=1e-2)


D3_FITS = {
    "nhanes2_d3_age": (ols, "chl ~ C(age) + bmi", "chl ~ bmi"),
    "nhanes2_d3_glm_chl": (logit, "hyp ~ bmi + chl", "hyp ~ bmi"),
    "popmis_d3_texp": (ols, "popular ~ sex + texp", "popular ~ sex"),
}


@pytest.mark.parametrize("case", sorted(D3_FITS))
def test_d3_likelihood_ratio_matches_mice_d3(case):
    """Meng and Rubin's D3 (lm and binomial glm) against mice::D3 on the same completed data sets."""
    ref = MICE["tests"][case]
    imp = Imputations.from_long(_long(ref["data"]))
    verb, full, reduced = D3_FITS[case]
    got = imp.likelihood_ratio(verb, full, reduced, method="D3").iloc[0]
    assert got["test"] == "D3"
    for key in ("statistic", "df1", "df2", "p_value", "riv"):
        _close(got[key], ref[key], f"{case} {key}")
    # D2 stays the default and is labelled as such
    assert imp.likelihood_ratio(verb, full, reduced).iloc[0]["test"] == "D2"


def test_d3_deviances_at_pooled_estimates_match_mice():
    from cimstats.models.impute.pooled import loglik_at

    ref = MICE["tests"]["nhanes2_d3_glm_chl"]
    imp = Imputations.from_long(_long(ref["data"]))
    fits = [logit("hyp ~ bmi + chl", d) for d in imp.datasets]
    qbar = np.mean([f.params.to_numpy() for f in fits], axis=0)
    _close([-2 * loglik_at(f, qbar) for f in fits], ref["deviances"]["dev1.L"], "deviance at pooled estimates")
    _close([-2 * f.llf for f in fits], ref["deviances"]["dev1.M"], "deviance at own estimates")
