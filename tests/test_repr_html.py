"""Every user-facing object shows itself in a notebook as a short, escaped HTML fragment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.dictionary import Dictionary, harmonise
from cimstats.io import Survey, VariableMeta

EVIL = "<script>alert(1)</script>"
MAX_CHARS = 30_000


def _check(obj, *, shows=None):
    html = obj._repr_html_()
    assert isinstance(html, str) and html.startswith("<div") and len(html) < MAX_CHARS, type(obj).__name__
    assert "<script" not in html.lower(), type(obj).__name__
    if shows is not None:
        assert shows in html, (type(obj).__name__, shows)
    return html


def test_survey_and_harmonisation_result():
    many = pd.DataFrame({f"v{i}": [1, 2] for i in range(60)})
    meta = {"v0": VariableMeta("v0", label=EVIL, value_labels={1: "girl", 2: "boy"})}
    s = Survey.from_raw(many, meta)
    html = _check(s, shows="&lt;script&gt;")
    assert "40 more rows" in html  # cut to the first 20 variables
    raw = Survey.from_raw(pd.DataFrame({"sex": [1, 2, 2, 1]}),
                          {"sex": VariableMeta("sex", label=EVIL, value_labels={1: "girl", 2: "boy"})})
    d = Dictionary.from_frames(studies=[{"study": "S", "country": "EN", "wave": 0}],
                               variables=[{"name": "y", "type": "categorical"}],
                               categories=[{"variable": "y", "code": 1, "label": "Boy"},
                                           {"variable": "y", "code": 2, "label": EVIL}],
                               mappings=[{"study": "S", "target": "y", "rule": "direct", "source": "sex"}])
    res = harmonise({"S": raw}, d)
    _check(res, shows="HarmonisationResult")
    _check(res.report, shows="Harmonisation report")


def test_survey_design_imputations_and_fitted_results():
    _check(cimstats.SurveyDesign(weights=EVIL), shows="&lt;script&gt;")
    rng = np.random.default_rng(2)
    d = pd.DataFrame({"g": np.repeat(np.arange(10), 6), "x": rng.normal(size=60), "z": rng.normal(size=60)})
    d["y"] = d["x"] + rng.normal(size=10)[d["g"]] + rng.normal(size=60)
    d.loc[::7, "z"] = np.nan
    imp = cimstats.impute(d[["x", "z", "y"]], m=2, iterations=2, seed=1)
    _check(imp, shows="Imputations")
    _check(cimstats.lmm("y ~ x + (1 | g)", d), shows="Linear mixed model")
    med = d.rename(columns={"x": EVIL})
    _check(cimstats.mediation(med.dropna(), x=EVIL, m="z", y="y", n_boot=20, seed=1), shows="&lt;script&gt;")


def test_one_shared_implementation():
    from cimstats.models._result import FittedResult
    from cimstats.render.notebook import notebook_html

    html = notebook_html(EVIL, lines=[EVIL], table=pd.DataFrame({EVIL: [EVIL] * 30}), more="x.table")
    assert "<script" not in html and "10 more rows in x.table." in html
    assert FittedResult._repr_html_ is not None
