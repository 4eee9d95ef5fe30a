"""Side-by-side model tables: any fitted results, terms aligned by name, every renderer, exact values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import RenderError
from cimstats.render import model_table, model_table_frame, render


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100), "z": rng.normal(size=100)})
    d["y"] = 0.5 * d["x"] + rng.normal(size=20)[d["g"]] + rng.normal(size=100)
    d["b"] = (d["y"] > 0).astype(int)
    return {"LMM": cimstats.lmm("y ~ x + (1 | g)", d),
            "GEE": cimstats.gee("b ~ x + z", d, groups="g", family="binomial"),
            "GLM": cimstats.glm("y ~ z", d)}


def _rows(spec):
    """term -> (estimate cells, cells beneath) from the body."""
    out = {}
    body = [r.cells for r in spec.body]
    i = 0
    while i < len(body) and spec.body[i].role == "data":
        out[body[i][0].text] = (body[i][1:], body[i + 1][1:])
        i += 2
    return out


def test_three_result_kinds_in_one_table_with_terms_aligned(fits):
    spec = model_table(fits)
    assert [c.text for c in spec.header[0]] == ["Term", "LMM", "GEE", "GLM"]
    rows = _rows(spec)
    # the union of the terms, in first-appearance order
    assert list(rows) == ["(Intercept)", "x", "z"]
    # a model without the term has blank cells in both of its rows
    est, se = rows["z"]
    assert est[0].text == "" and se[0].text == "" and est[0].value is None
    est, se = rows["x"]
    assert est[2].text == "" and est[0].text and est[1].text
    assert [r.cells[0].text for r in spec.body if r.role == "group"] == ["Fit"]


def test_values_equal_each_models_tidy(fits):
    spec = model_table(fits, statistic="std_error")
    rows = _rows(spec)
    for j, (name, fit) in enumerate(fits.items()):
        t = fit.tidy().set_index("term")
        for term, (est, se) in rows.items():
            if term in t.index:
                assert est[j].value == t.loc[term, "estimate"]
                assert se[j].value == t.loc[term, "std_error"]
            else:
                assert est[j].value is None
    # the exact numbers behind the table
    frame = model_table_frame(fits)
    for name, fit in fits.items():
        mine = frame[frame["model"] == name].drop(columns="model").reset_index(drop=True)
        tidy = fit.tidy().reset_index(drop=True)
        assert mine["term"].tolist() == tidy["term"].tolist()
        for col in ("estimate", "std_error", "p_value", "ci_lower", "ci_upper"):
            assert np.array_equal(mine[col].to_numpy(float), tidy[col].to_numpy(float), equal_nan=True), col
    # the fit block takes glance(); the GEE has no AIC and gets a blank
    fit_rows = {r.cells[0].text: r.cells[1:] for r in spec.body[spec.body.index(
        next(r for r in spec.body if r.role == "group")) + 1:]}
    assert [c.value for c in fit_rows["Observations"]] == [int(f.glance()["nobs"].iloc[0]) for f in fits.values()]
    assert fit_rows["AIC"][0].value == fits["LMM"].glance()["aic"].iloc[0]
    assert fit_rows["AIC"][1].text == ""


def test_ci_beneath_and_stars(fits):
    spec = model_table(list(fits.values()), statistic="ci", stars=True, level=0.9)
    assert [c.text for c in spec.header[0]][1:] == ["(1)", "(2)", "(3)"]
    fmt = cimstats.NumberFormat()
    t = fits["LMM"].tidy(level=0.9).set_index("term")
    est, ci = _rows(spec)["x"]
    assert ci[0].text == fmt.ci(t.loc["x", "ci_lower"], t.loc["x", "ci_upper"])
    assert t.loc["x", "p_value"] < 0.001 and est[0].text.endswith("***")
    assert any("90% confidence intervals" in n for n in spec.notes)
    assert any("*** p < 0.001" in n for n in spec.notes)


def test_every_format_renders(fits, tmp_path):
    spec = model_table(fits, title="Three models", stars=True)
    for ext in ("docx", "xlsx", "html", "tex", "md", "txt"):
        path = render(spec, tmp_path / f"models.{ext}")
        assert path.stat().st_size > 200, ext
    text = (tmp_path / "models.txt").read_text(encoding="utf-8")
    assert "Three models" in text and "Observations" in text


def test_sem_and_mediation_rows_kept_unique():
    rng = np.random.default_rng(1)
    f = rng.normal(size=300)
    d = pd.DataFrame({f"y{i}": 0.8 * f + rng.normal(scale=0.6, size=300) for i in range(1, 4)})
    d["x"] = rng.normal(size=300)
    sem = cimstats.sem("efficacy =~ y1 + y2 + y3", d)
    med = cimstats.mediation(d, x="x", m="y1", y="y2", n_boot=30, seed=1)
    spec = model_table({"CFA": sem, "Mediation": med}, glance=("nobs", "cfi"))
    terms = list(_rows(spec))
    assert set(sem.tidy()["term"]) | set(med.tidy()["term"]) == set(terms)
    # duplicated term names in one table (a multi-group model) stay as separate, named rows
    dup = pd.DataFrame({"term": ["a", "a"], "group": [1, 2], "estimate": [0.1, 0.2], "std_error": [0.01, 0.02]})
    assert list(_rows(model_table([dup]))) == ["a (group 1)", "a (group 2)"]
    dup2 = dup.drop(columns="group")
    assert list(_rows(model_table([dup2]))) == ["a", "a (2)"]


@pytest.mark.parametrize("bad, words", [
    (([object()],), "has no tidy() table"),
    (([pd.DataFrame({"estimate": [1.0]})],), "no 'term' column"),
    (([pd.DataFrame({"term": ["a"], "beta": [1.0]})],), "no 'estimate' column"),
    (([],), "is empty"),
])
def test_hostile_inputs_get_one_sentence(bad, words):
    with pytest.raises(RenderError) as err:
        model_table(*bad)
    msg = str(err.value)
    assert words in msg and msg.endswith(".") and msg.count(". ") == 0


def test_argument_errors_name_the_argument(fits):
    with pytest.raises(RenderError, match="`statistic="):
        model_table(fits, statistic="t")
    with pytest.raises(RenderError, match="`names` has 1 entries"):
        model_table(list(fits.values()), names=["one"])
    with pytest.raises(RenderError, match="`level="):
        model_table(fits, level=95)
    assert math.isfinite(len(model_table(fits, statistic=None).body))


def test_reml_likelihoods_in_the_fit_block_are_named(fits):
    """An LMM fitted by REML has a REML log likelihood and AIC; the table says so when it shows them."""
    spec = model_table(fits)  # nobs, aic, bic by default
    notes = " ".join(spec.notes)
    assert "LMM was fitted by REML" in notes and "AIC, BIC are REML values" in notes
    assert "GLM" not in notes.split("fitted by REML")[0]
    assert not any("REML" in n for n in model_table(fits, glance=("nobs",)).notes)
    ml = {"GLM": fits["GLM"]}
    assert not any("REML" in n for n in model_table(ml).notes)
