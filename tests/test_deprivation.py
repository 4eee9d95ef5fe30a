"""Deprivation: within-nation quantiles with direction, Townsend and Carstairs, individual SES measures."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimstats.dictionary import deprivation as dep
from cimstats.errors import MissingDataWarning

# five hand-made census areas (percentages)
AREAS = {
    "unemployment": [2.0, 5.0, 8.0, 12.0, 20.0],
    "overcrowding": [0.5, 1.0, 2.0, 4.0, 9.0],
    "no_car": [10.0, 20.0, 30.0, 45.0, 60.0],
    "not_owner_occupied": [15.0, 25.0, 35.0, 50.0, 70.0],
    "male_unemployment": [3.0, 6.0, 9.0, 14.0, 24.0],
    "low_social_class": [5.0, 10.0, 20.0, 25.0, 35.0],
}


def z(xs):
    m, s = statistics.fmean(xs), statistics.stdev(xs)
    return [(x - m) / s for x in xs]


def test_townsend_by_hand():
    a = AREAS
    parts = [z([math.log(x + 1) for x in a["unemployment"]]), z([math.log(x + 1) for x in a["overcrowding"]]),
             z(a["no_car"]), z(a["not_owner_occupied"])]
    expected = [sum(p[i] for p in parts) for i in range(5)]
    t = dep.townsend(a["unemployment"], a["overcrowding"], a["no_car"], a["not_owner_occupied"])
    np.testing.assert_allclose(t.scores, expected, rtol=1e-12)
    assert t.reference["transform"].tolist() == ["log(x+1)", "log(x+1)", "none", "none"]
    assert t.n_reference == 5 and abs(t.scores.sum()) < 1e-9


def test_carstairs_by_hand():
    a = AREAS
    parts = [z(a["overcrowding"]), z(a["male_unemployment"]), z(a["no_car"]), z(a["low_social_class"])]
    expected = [sum(p[i] for p in parts) for i in range(5)]
    c = dep.carstairs(a["overcrowding"], a["male_unemployment"], a["no_car"], a["low_social_class"])
    np.testing.assert_allclose(c.scores, expected, rtol=1e-12)


def test_reference_population_is_used_for_mean_and_sd():
    a = AREAS
    ref = [True, True, True, False, False]
    t = dep.townsend(a["unemployment"], a["overcrowding"], a["no_car"], a["not_owner_occupied"], reference=ref)
    nc = a["no_car"][:3]
    m, s = statistics.fmean(nc), statistics.stdev(nc)
    np.testing.assert_allclose(t.components["no_car"], [(x - m) / s for x in a["no_car"]])
    assert t.n_reference == 3


def test_area_score_errors():
    with pytest.raises(dep.DeprivationError, match="different lengths"):
        dep.townsend([1, 2], [1, 2, 3], [1, 2], [1, 2])
    with pytest.raises(dep.DeprivationError, match="does not vary"):
        dep.carstairs([1, 1, 1], [1, 2, 3], [1, 2, 3], [1, 2, 3])


@pytest.mark.parametrize("direction", dep.DIRECTIONS)
def test_quantiles_one_means_most_deprived(direction):
    x = np.arange(1.0, 21.0)
    q = dep.within_nation_quantiles(x, n=5, direction=direction, index="IMD", version="2019", vintage="LSOA 2011")
    codes = q.codes.to_numpy(dtype=float)
    most = x.argmax() if direction == "higher_more_deprived" else x.argmin()
    assert codes[most] == 1
    assert np.bincount(codes.astype(int))[1:].tolist() == [4, 4, 4, 4, 4]
    assert q.metadata == {"index": "IMD", "version": "2019", "vintage": "LSOA 2011", "direction": direction,
                          "n": 5, "per": "row", "coding": "1 = most deprived"}


def test_quantiles_within_nation_and_per_area():
    # nation A: areas with values 1..5, nation B: 100..104; area 'a5' has three respondents
    vals = [1, 2, 3, 4, 5, 5, 5, 100, 101, 102, 103, 104]
    nation = ["A"] * 7 + ["B"] * 5
    area = ["a1", "a2", "a3", "a4", "a5", "a5", "a5", "b1", "b2", "b3", "b4", "b5"]
    q = dep.within_nation_quantiles(vals, nation=nation, per=area, n=5, direction="higher_more_deprived")
    assert q.codes.tolist() == [5, 4, 3, 2, 1, 1, 1, 5, 4, 3, 2, 1]
    # without per=, respondents of a5 weigh three times and shift the cut points
    q2 = dep.within_nation_quantiles(vals, nation=nation, n=5, direction="higher_more_deprived")
    assert q2.codes.tolist()[:7] != q.codes.tolist()[:7]
    assert set(q.tidy()["nation"]) == {"A", "B"}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=60), st.integers(2, 10))
def test_quantile_codes_are_monotone_and_in_range(values, n):
    x = np.asarray(values)
    hi = dep.quantile_codes(x, None, n, True)
    assert np.all((hi >= 1) & (hi <= n))
    order = np.argsort(-x, kind="stable")
    assert np.all(np.diff(hi[order]) >= 0)  # more deprived never gets a higher code
    lo = dep.quantile_codes(-x, None, n, False)
    np.testing.assert_array_equal(hi, lo)


def test_quantile_argument_errors():
    with pytest.raises(dep.DeprivationError, match="direction"):
        dep.within_nation_quantiles([1, 2], direction="up")
    with pytest.raises(dep.DeprivationError, match="`n`"):
        dep.within_nation_quantiles([1, 2], direction="higher_more_deprived", n=1)
    with pytest.warns(MissingDataWarning):
        q = dep.within_nation_quantiles([1, None, 3], direction="higher_more_deprived", n=2)
    assert q.n_missing == 1 and q.codes.isna().tolist() == [False, True, False]


def test_known_indices_state_direction():
    assert dep.KNOWN_INDICES["IMD2019"].direction == "higher_more_deprived"
    assert all(i.direction == "lower_more_deprived" for k, i in dep.KNOWN_INDICES.items() if k.endswith("_rank"))


def test_equivalised_income_oecd_modified():
    # 2 adults + 2 children: 1 + 0.5 + 0.6 = 2.1
    got = dep.equivalised_income([21000.0, 10000.0, 30000.0], [2, 1, 3], [2, 0, 1])
    np.testing.assert_allclose(got, [21000 / 2.1, 10000.0, 30000 / (1 + 1.0 + 0.3)])
    with pytest.warns(MissingDataWarning):
        bad = dep.equivalised_income([100.0], [0], [1])
    assert bad.isna().all()


def test_isced_and_financial_strain():
    assert dep.isced_broad(list(range(9))).tolist() == [1, 1, 1, 2, 2, 3, 3, 3, 3]
    with pytest.warns(MissingDataWarning):
        assert dep.isced_broad([9]).isna().all()
    fs = dep.financial_strain([1, 2, 3, 4, 5, None])
    assert fs.tolist()[:5] == [0, 0, 0, 1, 1] and pd.isna(fs.iloc[5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dep.financial_strain([1, 5])
