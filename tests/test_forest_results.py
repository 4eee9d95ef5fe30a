"""Forest plots drawn straight from fitted results, several models grouped, and hostile tables refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import RenderError
from cimstats.render.figures import forest_plot, forest_table


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100), "z": rng.normal(size=100)})
    d["y"] = 0.5 * d["x"] + rng.normal(size=20)[d["g"]] + rng.normal(size=100)
    d["b"] = (d["y"] > 0).astype(int)
    return {"LMM": cimstats.lmm("y ~ x + (1 | g)", d),
            "GEE": cimstats.gee("b ~ x + z", d, groups="g", family="binomial")}


def test_forest_takes_a_fitted_result(fits):
    fit = fits["LMM"]
    fig = forest_plot(fit, level=0.9)
    t = fit.tidy(level=0.9)
    assert fig.data["label"].tolist() == t["term"].tolist()
    assert np.array_equal(fig.data["ci_lower"].to_numpy(), t["ci_lower"].to_numpy(float))
    assert fig.data.attrs["level"] == 0.9 and "90%" in fig.alt_text


def test_forest_groups_several_results(fits):
    rows = forest_table(fits)
    assert list(dict.fromkeys(rows["group"])) == ["LMM", "GEE"]
    assert len(rows) == sum(len(f.tidy()) for f in fits.values())
    gee = rows[rows["group"] == "GEE"]
    assert np.array_equal(gee["estimate"].to_numpy(), fits["GEE"].tidy()["estimate"].to_numpy(float))
    named = forest_table(list(fits.values()), names=["A", "B"])
    assert list(dict.fromkeys(named["group"])) == ["A", "B"]
    default = forest_table([fits["LMM"], fits["GEE"].tidy()])
    assert list(dict.fromkeys(default["group"])) == ["Model 1", "Model 2"]
    fig = forest_plot(fits, title="Two models")
    assert "grouped by LMM, GEE" in fig.alt_text


@pytest.mark.parametrize("frame, words", [
    (pd.DataFrame({"term": ["a"], "estimate": [1.0]}), "no 'ci_lower' and no 'ci_upper' column"),
    (pd.DataFrame({"term": ["a"], "estimate": [1.0], "ci_lower": [0.5]}), "no 'ci_upper' column"),
    (pd.DataFrame({"term": ["a"], "coef": [1.0]}), "no 'estimate' column"),
])
def test_hostile_frames_get_one_sentence(frame, words):
    with pytest.raises(RenderError) as err:
        forest_plot(frame)
    msg = str(err.value)
    assert words in msg and msg.endswith(".") and msg.count(". ") == 0


def test_hostile_lists_and_names(fits):
    with pytest.raises(RenderError, match="of type str") as err:
        forest_plot([fits["LMM"], "not a result"])
    assert str(err.value).count(". ") == 0
    with pytest.raises(RenderError, match="`names` has 1 entries"):
        forest_plot(list(fits.values()), names=["one"])
    with pytest.raises(RenderError, match="empty"):
        forest_plot([])
