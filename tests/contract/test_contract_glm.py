"""The GLM result (ordinary and survey-weighted) honours the result contract and survives save -> load."""

import numpy as np
import pandas as pd
import pytest

import cimstats
from conftest import REFERENCE
from contract import check_contract

DATA = REFERENCE / "data" / "survey"


@pytest.fixture(scope="module")
def apiclus2():
    return pd.read_csv(DATA / "apiclus2.csv")


def test_survey_glm_contract(apiclus2, tmp_path):
    design = cimstats.SurveyDesign(cluster=["dnum", "snum"], fpc=["fpc1", "fpc2"])
    fit = cimstats.glm("sw ~ ell + meals + enroll", apiclus2, family="quasibinomial", design=design)
    assert fit.kind == "glm" and fit.dropped["variable"].tolist() == ["enroll"]
    again = check_contract(fit, tmp_path, unavailable=("predict",))
    assert again.design == fit.design and again.is_survey


def test_ordinary_glm_contract(apiclus2, tmp_path):
    fit = cimstats.glm("emer ~ meals + stype", apiclus2, family="poisson")
    assert np.isinf(fit.df) and np.isfinite(fit.aic)
    again = check_contract(fit, tmp_path, unavailable=("predict",))
    assert again.tidy(exponentiate=True).equals(fit.tidy(exponentiate=True))
    assert len(fit.predict()) == fit.nobs
