"""Linear mixed models against lme4 1.1 / lmerTest (tests/reference/lmm.R -> lmm.json)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import cimstats
from conftest import REFERENCE

REF = json.loads((REFERENCE / "lmm.json").read_text())


def _listify(obj, key=None):
    """jsonlite writes vectors of length one as scalars: make them lists again."""
    if isinstance(obj, dict):
        return {k: _listify(v, k) for k, v in obj.items()}
    if key in ("term", "estimate", "std_error", "df", "statistic", "p_value", "theta", "level",
               "condval", "condsd", "group", "term1", "term2", "vcov", "sdcor") and not isinstance(obj, list):
        return [obj]
    return obj


REF["cases"] = {k: _listify(v) for k, v in REF["cases"].items()}
CASES = sorted(REF["cases"])
DATA = REFERENCE / "data"

# one tolerance per quantity
TOL_FIXEF = 1e-5      # estimates and standard errors, relative
TOL_VARCOMP = 1e-4    # variances, covariances, sds, correlations, relative
TOL_LOGLIK = 1e-4     # log-likelihood, AIC, BIC, criterion, absolute
TOL_DF = 1e-4         # Satterthwaite df and p-values, relative
TOL_RANEF = 1e-4      # conditional modes (relative to their largest) and conditional sds


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


_FITS: dict = {}


def fit(name):
    if name not in _FITS:
        c = REF["cases"][name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cimstats.errors.MissingDataWarning)
            warnings.simplefilter("ignore", cimstats.errors.SingularFitWarning)
            _FITS[name] = cimstats.lmm(c["formula"], pd.read_csv(DATA / c["data"]), reml=c["reml"])
    return _FITS[name], REF["cases"][name]


def test_versions_recorded():
    v = REF["versions"]
    assert v["lme4"].startswith("1.1") and "lmerTest" in v and v["R"].startswith("R version")


@pytest.mark.parametrize("name", CASES)
def test_fixed_effects(name):
    m, c = fit(name)
    fx = c["fixef"]
    td = m.tidy()
    assert len(td) == len(fx["term"])
    if not name.startswith("exam_c") and not name.startswith("exam_g"):
        assert td.term.tolist() == fx["term"]
    assert rel(td.estimate, fx["estimate"]).max() < TOL_FIXEF
    assert rel(td.std_error, fx["std_error"]).max() < TOL_FIXEF
    assert rel(td.statistic, fx["statistic"]).max() < TOL_FIXEF


@pytest.mark.parametrize("name", CASES)
def test_satterthwaite_df_and_p_values(name):
    m, c = fit(name)
    td = m.tidy()
    assert rel(td.df, c["fixef"]["df"]).max() < TOL_DF
    assert rel(td.p_value, c["fixef"]["p_value"]).max() < TOL_DF


@pytest.mark.parametrize("name", CASES)
def test_variance_components(name):
    m, c = fit(name)
    vc, ref = m.varcorr(), c["varcorr"]
    assert vc.group.tolist() == ref["group"]
    assert vc.term1.tolist() == [t if t else "" for t in ref["term1"]] or name.startswith("exam_c")
    assert rel(vc.vcov, ref["vcov"]).max() < TOL_VARCOMP
    assert rel(vc.sdcor, ref["sdcor"]).max() < TOL_VARCOMP
    ref_theta = np.atleast_1d(c["theta"])  # boundary values are exactly 0 in lme4
    assert (np.abs(m.theta - ref_theta) <= TOL_VARCOMP * np.maximum(np.abs(ref_theta), 1e-3)).all()
    assert rel(m.sigma, c["sigma"]) < TOL_VARCOMP


@pytest.mark.parametrize("name", CASES)
def test_likelihood_and_information_criteria(name):
    m, c = fit(name)
    assert abs(m.loglik - c["loglik"]) < TOL_LOGLIK
    assert abs(m.aic - c["aic"]) < TOL_LOGLIK
    assert abs(m.bic - c["bic"]) < TOL_LOGLIK
    crit = c["reml_criterion"] if c["reml"] else c["deviance"]
    assert abs(m.criterion - crit) < TOL_LOGLIK
    g = m.glance().iloc[0]
    assert g["nobs"] == c["nobs"] and bool(g["converged"])
    for grp, k in c["ngroups"].items():
        assert g["ngroups_" + grp.replace(":", "_")] == k


@pytest.mark.parametrize("name", CASES)
def test_random_effects_and_predictions(name):
    m, c = fit(name)
    re, ref = m.ranef(), c["ranef"]
    assert re.level.tolist() == ref["level"]
    cv = np.asarray(ref["condval"])
    assert np.abs(re.condval - cv).max() < TOL_RANEF * np.abs(cv).max()
    assert rel(re.condsd, ref["condsd"]).max() < TOL_RANEF
    k = min(50, m.nobs)
    assert rel(m.fitted()[:k], c["fitted_head"][:k]).max() < TOL_FIXEF
    assert rel(m.predict(include_random=False)[:k], c["predict_fixed_head"][:k]).max() < TOL_FIXEF


def test_boundary_fit_is_flagged_singular_as_in_lme4():
    # lme4 estimates theta = 0 for the last element (correlation of +1): isSingular() is TRUE
    m, c = fit("alters3_slopes")
    assert np.atleast_1d(c["theta"])[-1] == 0 and m.singular
    assert not fit("alters3")[0].singular


def test_rows_with_missing_values_are_counted():
    m, c = fit("alters3")
    raw = pd.read_csv(DATA / c["data"])
    assert m.nobs == c["nobs"] and m.n_dropped == len(raw) - c["nobs"]
    assert m.dropped_by_column == {"contact_freq": m.n_dropped}
    assert m.glance().loc[0, "n_dropped"] == m.n_dropped


@pytest.mark.parametrize("name", sorted(REF["anova"]))
def test_likelihood_ratio_test_refits_with_ml(name):
    a = REF["anova"][name]
    df = pd.read_csv(DATA / a["data"]).dropna()
    m0 = cimstats.lmm(a["formula0"], df)
    m1 = cimstats.lmm(a["formula1"], df)
    out = cimstats.anova(m1, m0)
    assert out.npar.tolist() == a["npar"]
    assert np.abs(out.loglik - a["loglik"]).max() < TOL_LOGLIK
    assert np.abs(out.aic - a["aic"]).max() < TOL_LOGLIK
    assert abs(out.chisq[1] - a["chisq"]) < TOL_LOGLIK
    assert out.df[1] == a["df"]
    assert rel(out.p_value[1], a["p_value"]) < 1e-3


@pytest.mark.parametrize("name", sorted(REF["term_tests"]))
def test_joint_f_tests_match_lmertest_contest(name):
    r = REF["term_tests"][name]
    m = cimstats.lmm(r["formula"], pd.read_csv(DATA / r["data"]).dropna())
    row = m.term_tests().set_index("term").loc[r["term"]]
    assert row.numdf == r["numdf"]
    assert rel(row.statistic, r["statistic"]) < TOL_FIXEF
    assert rel(row.df, r["dendf"]) < TOL_DF
    assert rel(row.p_value, r["p_value"]) < TOL_DF


@pytest.mark.parametrize("name", sorted(REF["profile_ci"]))
def test_profile_intervals_match_lme4_confint(name):
    r = REF["profile_ci"][name]
    m = cimstats.lmm(r["formula"], pd.read_csv(DATA / r["data"]), reml=r["reml"])
    ci = m.varcomp_ci(method="profile")
    # lme4 interpolates its profile with splines: agreement to 1e-3 relative
    assert rel(ci.ci_lower, r["ci_lower"]).max() < 1e-3
    assert rel(ci.ci_upper, r["ci_upper"]).max() < 1e-3
