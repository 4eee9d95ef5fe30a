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


HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


@pytest.fixture(scope="module")
def pooled_cfa():
    import cimstats

    ref = MICE["sem"]["holzinger_cfa"]
    assert ref["model"] == HS_MODEL
    imp = Imputations.from_long(_long(ref["data"]))
    return imp.fit(cimstats.sem, HS_MODEL)


def test_pooled_sem_fit_measures_match_semtools_d2(pooled_cfa):
    """cimstats.sem on each mice-completed set; the D2-pooled chi-square and the CFI, TLI and RMSEA computed
    from it against semTools' fitMeasures(cfa.mi(...), test = "D2")."""
    ref = MICE["sem"]["holzinger_cfa"]
    fm = pooled_cfa.fit_measures()
    assert fm["test"] == ref["test"] == "D2"
    for key, value in ref["fit_measures"].items():
        np.testing.assert_allclose(fm[key], value, rtol=1e-8, atol=1e-12, err_msg=key)
    g = pooled_cfa.glance().iloc[0]
    assert g["fit_test"] == "D2"
    for ours, theirs in (("chisq", "chisq"), ("p_value", "pvalue"), ("cfi", "cfi"), ("tli", "tli"),
                         ("rmsea", "rmsea"), ("baseline_chisq", "baseline.chisq")):
        np.testing.assert_allclose(g[ours], ref["fit_measures"][theirs], rtol=1e-8, err_msg=ours)


def test_pooled_sem_parameters_match_semtools_rubin_rules(pooled_cfa):
    """Rubin's rules (semTools' summary(..., scale.W = FALSE), large-sample df) on the free parameters; the two
    programs' ML optima differ by about 2e-6 relative (their convergence tolerances), which the between-imputation
    variance turns into up to 1e-5 in a standard error and 2e-4 in the df, riv and fmi (functions of the between
    variance over the within variance), while the chi-squares, flat at the optimum, agree to 1e-10."""
    ref = MICE["sem"]["holzinger_cfa"]["parameters"]
    t = pooled_cfa.tidy().set_index("term")
    terms = [f"{a}{op}{b}" for a, op, b in zip(ref["lhs"], ref["op"], ref["rhs"])]
    assert pooled_cfa.dfcom == np.inf
    # semTools' FMI is riv / (1 + riv) without the df correction: the lambda column here (fmi follows mice)
    for ours, theirs, tol in (("estimate", "estimate", 1e-5), ("std_error", "std_error", 3e-5), ("df", "df", 5e-4),
                              ("lambda", "fmi", 5e-4), ("riv", "riv", 5e-4)):
        np.testing.assert_allclose(t.loc[terms, ours], ref[theirs], rtol=tol, err_msg=ours)


def test_pooled_sem_fit_measures_survive_saving(pooled_cfa, tmp_path):
    import cimstats

    pooled_cfa.save(tmp_path / "cfa")
    again = cimstats.load_result(tmp_path / "cfa")
    assert again.fit_measures() == pytest.approx(pooled_cfa.fit_measures())
    with pytest.raises(cimstats.errors.ModelSpecificationError, match="structural equation"):
        Imputations.from_long(_long("nhanes2_long.csv")).fit(ols, "chl ~ bmi").fit_measures()


def test_d3_of_linear_mixed_models_matches_mice_d3_of_lmer():
    """cimstats.lmm (ML) refitted with the pooled fixed part as offset, as mice refits lmer fits; the two
    programs' ML optima differ slightly, so the D3 numbers agree to about 4e-9 (checked here to 1e-7)."""
    import cimstats

    ref = MICE["tests"]["popmis_d3_lmer_texp"]
    imp = Imputations.from_long(_long(ref["data"]))
    got = imp.likelihood_ratio(cimstats.lmm, "popular ~ sex + texp + (1 | school)", "popular ~ sex + (1 | school)",
                               method="D3", reml=False).iloc[0]
    assert got["test"] == "D3"
    for key in ("statistic", "df1", "df2", "riv"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-7, err_msg=key)
    np.testing.assert_allclose(got["p_value"], ref["p_value"], rtol=1e-7)
