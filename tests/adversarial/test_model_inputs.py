"""Hostile data for the model verbs: each must stop with a CimstatsError whose one sentence names the real cause.

Constant outcomes, a column name that appears twice, infinite values, values
whose squares overflow (or underflow) double precision, outcomes with no
observed value, boolean and text outcomes, badly scaled indicators. Every data
set is built here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import CimstatsError, ModelSpecificationError

N_GROUPS, PER = 20, 6
ITEMS = "F =~ i1 + i2 + i3 + i4"


def _mixed(seed=1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_GROUPS), PER)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.7, N_GROUPS)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "yb": (y > np.median(y)).astype(int), "x": x, "g": g})


def _items(seed=2, n=120):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    d = pd.DataFrame({f"i{k}": f + rng.normal(0, 0.6, n) for k in range(1, 5)})
    d["grp"] = np.repeat(["a", "b"], n // 2)
    d["m"] = 0.5 * d["i1"] + rng.normal(size=n)
    d["out"] = 0.4 * d["m"] + rng.normal(size=n)
    return d


def _long_items(seed=3, n=80):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    rows = []
    for w in (0, 1):
        fw = f + 0.2 * w + rng.normal(0, 0.3, n)
        rows.append(pd.DataFrame({"pid": np.arange(n), "wave": w,
                                  **{f"i{k}": fw + rng.normal(0, 0.6, n) for k in range(1, 4)}}))
    return pd.concat(rows, ignore_index=True)


# one call per public verb; ``col`` is the column the hostile value goes into
VERBS = {
    "lmm": (_mixed, "x", lambda d: cimstats.lmm("y ~ x + (1 | g)", d)),
    "glmm": (_mixed, "x", lambda d: cimstats.glmm("yb ~ x + (1 | g)", d, family="binomial")),
    "gee": (_mixed, "x", lambda d: cimstats.gee("yb ~ x + (1 | g)", d, family="binomial")),
    "sem": (_items, "i2", lambda d: cimstats.sem(ITEMS, d)),
    "invariance": (_items, "i2", lambda d: cimstats.invariance(ITEMS, d, group="grp", steps=("configural",))),
    "mediation": (_items, "m", lambda d: cimstats.mediation(d, x="i1", m="m", y="out", n_boot=20, seed=1)),
    "longitudinal_invariance": (_long_items, "i2", lambda d: cimstats.longitudinal_invariance(
        d, ["i1", "i2", "i3"], id="pid", wave="wave", steps=("configural",))),
}


def _raises(fn, d) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CimstatsError) as err:
            fn(d)
    assert isinstance(err.value, ModelSpecificationError), type(err.value)
    msg = str(err.value)
    assert msg.endswith(".") and "\n" not in msg, msg
    return msg


@pytest.mark.parametrize("verb", list(VERBS))
def test_duplicated_column_name_is_named(verb):
    make, col, fn = VERBS[verb]
    d = make()
    d = pd.concat([d, d[[col]]], axis=1)  # the column name now labels two columns
    msg = _raises(fn, d)
    assert f"'{col}' appears 2 times" in msg


@pytest.mark.parametrize("sign", [1, -1], ids=["plus_inf", "minus_inf"])
@pytest.mark.parametrize("verb", list(VERBS))
def test_infinite_values_are_named_not_called_missing_or_collinear(verb, sign):
    make, col, fn = VERBS[verb]
    d = make()
    d[col] = d[col].astype(float)
    d.loc[d.index[5], col] = sign * np.inf
    msg = _raises(fn, d)
    assert f"'{col}'" in msg and "infinite" in msg
    assert "missing values in model variables" not in msg and "collinear" not in msg


@pytest.mark.parametrize("scale", [1e300, 1e-200], ids=["overflow", "underflow"])
@pytest.mark.parametrize("verb", list(VERBS))
def test_values_whose_squares_overflow_are_named(verb, scale):
    make, col, fn = VERBS[verb]
    d = make()
    d[col] = d[col] * scale
    msg = _raises(fn, d)
    assert f"'{col}'" in msg and ("overflow" in msg if scale > 1 else "underflow" in msg)


@pytest.mark.parametrize("value", [0.0, 3.0])
def test_lmm_constant_outcome(value):
    d = _mixed().assign(y=value)
    msg = _raises(VERBS["lmm"][2], d)
    assert "'y' is constant" in msg


def test_lmm_infinite_outcome_is_not_counted_as_missing():
    d = _mixed()
    d.loc[3, "y"] = np.inf
    msg = _raises(VERBS["lmm"][2], d)
    assert "'y'" in msg and "infinite" in msg and "row 3" in msg


@pytest.mark.parametrize("verb", ["lmm", "glmm", "gee"])
def test_outcome_with_no_observed_value(verb):
    d = _mixed().assign(y=np.nan, yb=np.nan)
    msg = _raises(VERBS[verb][2], d)
    assert "no observed values" in msg


@pytest.mark.parametrize("verb", ["glmm", "gee"])
def test_constant_binary_outcome(verb):
    msg = _raises(VERBS[verb][2], _mixed().assign(yb=1))
    assert "'yb' is constant" in msg


@pytest.mark.parametrize("cluster", [None, "g"])
def test_mediation_outcome_with_no_observed_value_says_so(cluster):
    d = _items()
    d["g"] = np.repeat(np.arange(12), 10)
    d["out"] = np.nan
    msg = _raises(lambda f: cimstats.mediation(f, x="i1", m="m", y="out", cluster=cluster, n_boot=20, seed=1), d)
    assert "'out' has no observed values" in msg and "cluster" not in msg and "collinear" not in msg


def test_sem_variable_with_no_observed_value():
    msg = _raises(VERBS["sem"][2], _items().assign(i3=np.nan))
    assert "'i3' has no observed value" in msg


def test_sem_badly_scaled_indicator_is_not_called_linearly_dependent():
    d = _items()
    d["i1"] = d["i1"] * 1e10
    msg = _raises(VERBS["sem"][2], d)
    assert "differ by a factor" in msg and "'i1'" in msg and "linearly dependent" not in msg


@pytest.mark.parametrize("verb", ["glmm", "gee"])
def test_boolean_outcome_is_read_as_zero_one(verb):
    d = _mixed()
    fn = VERBS[verb][2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        as_int = fn(d)
        as_bool = fn(d.assign(yb=d["yb"].astype(bool)))
        nullable = fn(d.assign(yb=d["yb"].astype("boolean")))
    np.testing.assert_allclose(as_bool.params, as_int.params, rtol=1e-10)
    np.testing.assert_allclose(nullable.params, as_int.params, rtol=1e-10)


@pytest.mark.parametrize("verb", ["glmm", "gee"])
def test_text_outcome_says_how_to_recode_not_use_glmm(verb):
    d = _mixed()
    d["yb"] = np.where(d["yb"] == 1, "yes", "no")
    msg = _raises(VERBS[verb][2], d)
    assert "'yb'" in msg and "recode" in msg and "use glmm()" not in msg


def test_glmm_offset_of_log_zero_is_named():
    d = _mixed()
    d["expo"] = 1.0
    d.loc[7, "expo"] = 0.0
    d["n"] = np.random.default_rng(4).poisson(2.0, len(d))
    msg = _raises(lambda f: cimstats.glmm("n ~ x + offset(log(expo)) + (1 | g)", f, family="poisson"), d)
    assert "offset" in msg and "infinite" in msg
