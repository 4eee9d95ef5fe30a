"""The lme4-style formula front end: parsing, expansion, coding, missing rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from cimstats.errors import ModelSpecificationError
from cimstats.models.formula import build_design, parse_formula


def labels(f):
    s = parse_formula(f)
    return [t.label for t in s.fixed_terms], s.intercept, [
        (r.group, r.intercept, [t.label for t in r.terms]) for r in s.random]


@pytest.mark.parametrize("formula, fixed, icpt, random", [
    ("y ~ x", ["x"], True, []),
    ("y ~ a*b", ["a", "b", "a:b"], True, []),
    ("y ~ a:b + a", ["a", "a:b"], True, []),
    ("y ~ (a + b + c)^2", ["a", "b", "c", "a:b", "a:c", "b:c"], True, []),
    ("y ~ a/b", ["a", "a:b"], True, []),
    ("y ~ x - 1", ["x"], False, []),
    ("y ~ 0 + x", ["x"], False, []),
    ("y ~ a*b - a:b", ["a", "b"], True, []),
    ("y ~ I(x^2) + log(z)", ["I(x^2)", "log(z)"], True, []),
    ("y ~ x + (1 | g)", ["x"], True, [("g", True, [])]),
    ("y ~ x + (x | g)", ["x"], True, [("g", True, ["x"])]),
    ("y ~ x + (0 + x | g)", ["x"], True, [("g", False, ["x"])]),
    ("y ~ x + (x - 1 | g)", ["x"], True, [("g", False, ["x"])]),
    ("y ~ x + (x || g)", ["x"], True, [("g", True, []), ("g", False, ["x"])]),
    ("y ~ 1 + (1 | a/b)", [], True, [("a", True, []), ("b:a", True, [])]),
    ("y ~ 1 + (1 | a:b)", [], True, [("a:b", True, [])]),
    ("y ~ 1 + (1 | a) + (1 | b)", [], True, [("a", True, []), ("b", True, [])]),
    ("y ~ 1 + (1 | a/b/c)", [], True, [("a", True, []), ("b:a", True, []), ("c:b:a", True, [])]),
    ("y ~ cwc(x, g) * clustermean(x, g) + (cwc(x, g) | g)",
     ["cwc(x, g)", "clustermean(x, g)", "cwc(x, g):clustermean(x, g)"], True,
     [("g", True, ["cwc(x, g)"])]),
])
def test_expansion_matches_r(formula, fixed, icpt, random):
    assert labels(formula) == (fixed, icpt, random)


@pytest.mark.parametrize("formula, word", [
    ("y x", "~"),
    ("~ x", "outcome"),
    ("y ~ poly(x, 2)", "poly"),
    ("y ~ x + 1 | g", "parentheses"),
    ("y ~ x + (1 | g + h)", "g + h"),
    ("y ~ x + ((1 | g) | h)", "nested"),
    ("y ~ x + (0 | g)", "neither"),
    ("y ~ x $ z", "unexpected"),
    ("y ~ x + (1 | g", "not closed"),
    ("y ~ 2", "intercept"),
])
def test_unrepresentable_terms_are_named(formula, word):
    with pytest.raises(ModelSpecificationError, match=None) as e:
        parse_formula(formula)
    assert word in str(e.value)


def frame():
    return pd.DataFrame({
        "y": [1.0, 2.5, 3.1, 4.2, 5.0, 6.3, 2.2, 3.3, np.nan, 1.1],
        "x": [0.5, 1.0, np.nan, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0],
        "sex": ["m", "f", "f", "m", "m", "f", "f", "m", "f", "m"],
        "grp": pd.Categorical(["lo", "hi", "mid", "lo", "hi", "mid", "lo", "hi", "mid", "lo"],
                              categories=["lo", "mid", "hi"]),
        "g": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3],
    })


def test_treatment_contrasts_in_code_order_and_missing_rows():
    mf = build_design(parse_formula("y ~ x * sex + grp + (1 | g)"), frame())
    assert mf.fixed_names == ("(Intercept)", "x", "sexm", "grp: mid", "grp: hi", "x:sexm")
    assert mf.nobs == 8 and mf.n_dropped == 2
    assert mf.dropped_by_column == {"y": 1, "x": 1}
    sub = frame().dropna()
    np.testing.assert_array_equal(mf.X[:, 2], (sub.sex == "m").to_numpy(float))
    np.testing.assert_array_equal(mf.X[:, 5], sub.x.to_numpy() * (sub.sex == "m").to_numpy(float))


def test_factor_without_main_effect_gets_full_coding():
    # R: y ~ x:sex has columns x:sexf and x:sexm (no main effect of sex to contrast against)
    mf = build_design(parse_formula("y ~ x:sex + (1 | g)"), frame())
    assert mf.fixed_names == ("(Intercept)", "x:sexf", "x:sexm")
    mf = build_design(parse_formula("y ~ 0 + sex + (1 | g)"), frame())
    assert mf.fixed_names == ("sexf", "sexm")


def test_factor_call_and_arithmetic():
    mf = build_design(parse_formula("y ~ factor(g) + I(x^2 - 1) + log(x) + (1 | sex)"), frame())
    assert mf.fixed_names == ("(Intercept)", "g: 2", "g: 3", "I(x^2 - 1)", "log(x)")
    sub = frame().dropna()
    np.testing.assert_allclose(mf.X[:, 3], sub.x ** 2 - 1)
    np.testing.assert_allclose(mf.X[:, 4], np.log(sub.x))


def test_centring_helpers_use_rows_in_the_fit():
    df = frame()
    mf = build_design(parse_formula("y ~ gmc(x) + cwc(x, g) + clustermean(x, g) + (1 | g)"), df)
    sub = df.dropna()
    cm = sub.groupby("g")["x"].transform("mean").to_numpy()
    np.testing.assert_allclose(mf.X[:, 1], sub.x - sub.x.mean())
    np.testing.assert_allclose(mf.X[:, 2], sub.x - cm)
    np.testing.assert_allclose(mf.X[:, 3], cm)


def test_nested_and_interaction_grouping_levels():
    mf = build_design(parse_formula("y ~ 1 + (1 | sex/g)"), frame())
    assert [b.group for b in mf.random] == ["sex", "g:sex"]
    assert mf.random[1].levels == ("1:f", "1:m", "2:f", "2:m", "3:f", "3:m")


@pytest.mark.parametrize("formula, data_change, word", [
    ("y ~ nope + (1 | g)", None, "not a column"),
    ("sex ~ x + (1 | g)", None, "non-numeric"),
    ("y ~ x + (1 | one)", "one", "1 level"),
    ("y ~ I(sex + 1) + (1 | g)", None, "categorical"),
])
def test_data_errors(formula, data_change, word):
    df = frame()
    if data_change == "one":
        df["one"] = "a"
    with pytest.raises(ModelSpecificationError) as e:
        build_design(parse_formula(formula), df)
    assert word in str(e.value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True),
       st.sampled_from(["+", "*", ":"]))
def test_expansion_is_order_free_and_duplicate_free(vars_, op):
    f1 = "y ~ " + f" {op} ".join(vars_)
    f2 = "y ~ " + f" {op} ".join(reversed(vars_))
    t1 = [frozenset(t.variables) for t in parse_formula(f1).fixed_terms]
    t2 = [frozenset(t.variables) for t in parse_formula(f2).fixed_terms]
    assert len(t1) == len(set(t1)) and set(t1) == set(t2)
    expected = {"+": len(vars_), ":": 1, "*": 2 ** len(vars_) - 1}[op]
    assert len(t1) == expected
