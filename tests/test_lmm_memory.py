"""Memory use of lmm() on nested models, and the grouping-factor coding that keeps it low.

Peak memory is the peak of the numpy/pandas allocations traced by ``tracemalloc``
during a fit (after a warm-up fit, so imports and caches are excluded), compared
with the bytes of the columns the model uses in the user's DataFrame.
"""

from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cimstats
from cimstats.models.formula import _Evaluator, _group_codes, build_design, parse_formula


def alters_in_egos(n_rows=100_000, n_egos=12_000, n_practices=60, n_countries=6, seed=11):
    """Alters (rows) in egos in GP practices in countries, with a planted variance at each level."""
    rng = np.random.default_rng(seed)
    practice_country = rng.integers(0, n_countries, n_practices)
    ego_practice = rng.integers(0, n_practices, n_egos)
    ego = np.sort(np.concatenate([np.arange(n_egos), rng.integers(0, n_egos, n_rows - n_egos)]))
    practice = ego_practice[ego]
    country = practice_country[practice]
    x = rng.normal(size=n_rows)
    w = rng.normal(size=n_egos)[ego]
    y = (1 + 0.3 * x + 0.2 * w + rng.normal(0, 0.4, n_countries)[country]
         + rng.normal(0, 0.5, n_practices)[practice] + rng.normal(0, 0.8, n_egos)[ego] + rng.normal(size=n_rows))
    return pd.DataFrame({"y": y, "x": x, "w": w, "country": country, "practice": practice, "ego": ego})


def traced_peak(formula, data):
    """(peak additional bytes during the fit, bytes of the used columns, result)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cimstats.lmm(formula, data, df_method="asymptotic")  # warm-up
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            m = cimstats.lmm(formula, data, df_method="asymptotic")
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    used = parse_formula(formula).variables()
    return peak, int(data[used].memory_usage(deep=True, index=False).sum()), m


@pytest.mark.parametrize("formula", ["y ~ x + w + (1 | country/practice/ego)", "y ~ x + w + (1 | country/ego)"])
def test_peak_memory_of_a_nested_model_is_within_twice_the_data(formula):
    df = alters_in_egos()
    peak, size, m = traced_peak(formula, df)
    assert m.optimizer.converged
    assert peak <= 2 * size, f"peak {peak / size:.2f}x the {size / 2**20:.1f} MiB of used columns"


def test_rows_set_aside_do_not_copy_the_whole_data_frame():
    # a wide survey table with missing values in a predictor: only the used columns count
    df = alters_in_egos(n_rows=60_000, n_egos=7_000)
    rng = np.random.default_rng(2)
    df.loc[rng.random(len(df)) < 0.03, "x"] = np.nan
    wide = pd.concat([df, pd.DataFrame(rng.normal(size=(len(df), 30)),
                                       columns=[f"item_{i}" for i in range(30)])], axis=1)
    peak, size, m = traced_peak("y ~ x + w + (1 | practice/ego)", wide)
    assert m.n_dropped == int(df["x"].isna().sum()) > 0
    assert peak <= 2 * size, f"peak {peak / size:.2f}x the used columns"
    # the index labels of the used rows are still available
    assert np.array_equal(m._frame.rows, df.index[df["x"].notna()].to_numpy())


# --------------------------------------------------------------------------------
# grouping-factor codes: same levels and codes as sorting the distinct values
# --------------------------------------------------------------------------------

def _reference_codes(cols: list[pd.Series]):
    """Codes into the sorted distinct (combinations of) values; -1 where any part is missing."""
    keys = list(zip(*[c.tolist() for c in cols]))
    ok = [not any(pd.isna(v) for v in k) for k in keys]
    levels = sorted({k for k, good in zip(keys, ok) if good})
    pos = {k: i for i, k in enumerate(levels)}
    return np.array([pos[k] if good else -1 for k, good in zip(keys, ok)]), levels


def _codes(df, group):
    spec = parse_formula(f"y ~ 1 + (1 | {group})")
    return _group_codes(_Evaluator(df, spec.text), spec.random[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 40), st.integers(0, 5)), min_size=1, max_size=80),
       st.sampled_from([1, 10**9]))
def test_group_codes_match_sorted_levels(pairs, spread):
    # spread 1: compact integer range (lookup table); 10**9: wide range (sorted keys)
    a = np.array([p[0] for p in pairs], dtype=np.int64) * spread
    b = np.array([p[1] for p in pairs], dtype=np.int64) * spread
    df = pd.DataFrame({"a": a, "b": b, "y": 0.0})
    for group, cols in [("a", ["a"]), ("a:b", ["a", "b"])]:
        codes, parts = _codes(df, group)
        ref, levels = _reference_codes([df[c] for c in cols])
        assert codes.dtype == np.int32
        assert np.array_equal(codes, ref)
        got = [tuple(u[i] for u, i in zip([p[0] for p in parts], [p[1][j] for p in parts]))
               for j in range(len(parts[0][1]))]
        assert got == levels


def test_group_codes_of_text_and_categorical_columns_with_missing_values():
    text = pd.Series(["NL-02", "EN-10", None, "EN-02", "NL-02", "EN-10"], dtype="str")
    cat = pd.Series(pd.Categorical(["b", "a", "b", None, "c", "a"], categories=["c", "b", "a"]))
    df = pd.DataFrame({"t": text, "k": cat, "y": 0.0})
    codes, parts = _codes(df, "t")
    assert codes.tolist() == [2, 1, -1, 0, 2, 1]
    assert list(parts[0][0]) == ["EN-02", "EN-10", "NL-02"]
    codes, parts = _codes(df, "k")  # categories keep their declared order
    assert codes.tolist() == [1, 2, 1, -1, 0, 2]
    assert list(parts[0][0]) == ["c", "b", "a"]
    codes, parts = _codes(df, "t:k")  # text sorted, then the categories in their order
    assert codes.tolist() == [2, 0, -1, -1, 1, 0]
    assert [(parts[0][0][i], parts[1][0][j]) for i, j in zip(parts[0][1], parts[1][1])] == [
        ("EN-10", "a"), ("NL-02", "c"), ("NL-02", "b")]


def test_nested_labels_and_fit_are_unchanged_by_the_coding_path():
    # the same design coded from integer, text and categorical columns gives the same fit
    df = alters_in_egos(n_rows=3_000, n_egos=400, n_practices=12)
    as_text = df.assign(practice=df["practice"].map("P{:03d}".format), ego=df["ego"].map("E{:05d}".format))
    as_cat = as_text.assign(practice=as_text["practice"].astype("category"), ego=as_text["ego"].astype("category"))
    f = "y ~ x + w + (1 | practice/ego)"
    fits = [cimstats.lmm(f, d, df_method="asymptotic") for d in (df, as_text, as_cat)]
    for m in fits[1:]:
        assert np.allclose(m.params, fits[0].params, rtol=1e-10, atol=0)
        assert m.loglik == pytest.approx(fits[0].loglik, rel=1e-12)
    frame = build_design(parse_formula(f), as_text)
    assert frame.random[1].group == "ego:practice" and frame.random[1].levels[0].startswith("E00000:P")
