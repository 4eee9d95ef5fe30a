"""Factor levels appear in model terms by their value labels ("sex: girl"), never as float codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.io import Survey, VariableMeta
from cimstats.models.formula import build_design, parse_formula


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 120
    d = pd.DataFrame({"g": np.repeat(np.arange(20), 6), "x": rng.normal(size=n),
                      "sex": rng.choice([1.0, 2.0], size=n), "area": rng.choice([1.0, 2.0, 3.0], size=n)})
    d["y"] = 0.4 * d["x"] + 0.5 * (d["sex"] == 2) + rng.normal(size=20)[d["g"]] + rng.normal(size=n)
    d["b"] = (d["y"] > 0.3).astype(float)
    return d


@pytest.fixture(scope="module")
def survey(data):
    meta = {"sex": VariableMeta("sex", value_labels={1: "boy", 2: "girl"}),
            "area": VariableMeta("area", value_labels={1: "urban", 2: "rural", 3: "remote"})}
    return Survey(data, meta)


def _terms(fit):
    return fit.tidy()["term"].tolist()


def test_labelled_survey_column_named_by_its_labels_in_every_verb(data, survey):
    fits = {"lmm": cimstats.lmm("y ~ x + C(sex) + (1 | g)", survey),
            "glmm": cimstats.glmm("b ~ x + C(sex) + (1 | g)", survey, family="binomial"),
            "gee": cimstats.gee("b ~ x + C(sex)", survey, groups="g", family="binomial"),
            "glm": cimstats.glm("y ~ x + C(sex)", survey)}
    for kind, fit in fits.items():
        assert _terms(fit) == ["(Intercept)", "x", "sex: girl"], kind
    # the estimates are those of the same model with R's naming of a text factor ("sexgirl")
    text = data.assign(sex=data["sex"].map({1.0: "boy", 2.0: "girl"}))
    r_named = cimstats.lmm("y ~ x + sex + (1 | g)", text).tidy().set_index("term")
    mine = fits["lmm"].tidy().set_index("term")
    assert r_named.index.tolist() == ["(Intercept)", "x", "sexgirl"]
    assert mine.loc["sex: girl", "estimate"] == pytest.approx(r_named.loc["sexgirl", "estimate"], rel=1e-10)


def test_pandas_categorical_and_codes_without_labels(data):
    cat = data.assign(area=pd.Categorical(data["area"].map({1.0: "urban", 2.0: "rural", 3.0: "remote"}),
                                          categories=["urban", "rural", "remote"]))
    assert _terms(cimstats.glm("y ~ area", cat)) == ["(Intercept)", "area: rural", "area: remote"]
    # codes without labels: the code as a whole number, not "C(area)2.0"
    assert _terms(cimstats.glm("y ~ C(area)", data)) == ["(Intercept)", "area: 2", "area: 3"]
    # interactions keep ':' between variables
    assert _terms(cimstats.glm("y ~ x * area", cat))[-2:] == ["x:area: rural", "x:area: remote"]


def test_term_codes_give_back_the_codes(survey):
    from cimstats.io.survey import analysis_frame

    mf = build_design(parse_formula("y ~ x + C(sex) * C(area)"), analysis_frame(survey))
    codes = mf.term_codes
    assert codes["sex: girl"] == {"sex": 2.0}
    assert codes["sex: girl:area: remote"] == {"sex": 2.0, "area": 3.0}
    assert codes["x"] == {} and len(set(mf.fixed_names)) == len(mf.fixed_names)


def test_shared_labels_stay_unique(data):
    d = data.copy()
    d.attrs["value_labels"] = {"area": {1: "town", 2: "town", 3: "remote"}}
    mf = build_design(parse_formula("y ~ C(area)"), d)
    assert mf.fixed_names == ("(Intercept)", "area: town [2]", "area: remote")


def test_tables_and_figures_show_the_labels(survey):
    from cimstats.render.figures import forest_plot

    fit = cimstats.glm("y ~ x + C(area)", survey)
    spec = cimstats.model_table([fit])
    shown = [r.cells[0].text for r in spec.body]
    assert "area: rural" in shown and "area: remote" in shown
    assert {"area: rural", "area: remote"} <= set(forest_plot(fit).data["label"])
