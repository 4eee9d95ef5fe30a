"""ICC(1), ICC(2), rwg and rwg(j) against multilevel 2.7 / base R aov (tests/reference/agreement.R)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import warnings

from cimstats.errors import MissingDataWarning, ScaleError
from cimstats.measures.agreement import icc, rwg, uniform_null_variance
from conftest import REFERENCE

REF = json.loads((REFERENCE / "agreement.json").read_text())
TOL = 1e-10


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "data" / "agreement_efficacy.csv")


@pytest.mark.parametrize("case,column", [("icc_score", "score"), ("icc_ce1", "ce1")])
def test_icc_matches_multilevel(data, case, column):
    ref = REF[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)   # the score is missing where ce4 is
        r = icc(data, column, "hood")
        adj = icc(data, column, "hood", group_size="adjusted")
    for key in ("icc1", "icc2", "msb", "msw"):
        assert getattr(r, key) == pytest.approx(ref[key], abs=TOL), key
    assert (r.df_between, r.df_within, r.n, r.groups) == (ref["df_between"], ref["df_within"], ref["n"],
                                                          ref["groups"])
    assert r.k == pytest.approx(ref["k_mean"], abs=TOL)
    assert adj.k == pytest.approx(ref["k_adjusted"], abs=TOL)
    assert adj.icc1 == pytest.approx(ref["icc1_adjusted"], abs=TOL)
    assert adj.icc2 == pytest.approx(ref["icc2"], abs=TOL)
    assert r.n_dropped == len(data) - ref["n"]


def _compare(res, ref, key):
    got = res.groups.set_index(res.groups["group"].astype(str))
    assert list(got.index) == ref["group"]
    np.testing.assert_array_equal(got["size"].to_numpy(), ref["size"])
    want = np.array([np.nan if v is None else v for v in ref[key]], dtype=float)
    np.testing.assert_allclose(got["rwg"].to_numpy(dtype=float), want, rtol=0, atol=TOL)
    assert res.mean == pytest.approx(np.nanmean(want), abs=TOL)
    assert res.median == pytest.approx(np.nanmedian(want), abs=TOL)


def test_rwg_uniform_null(data):
    res = rwg(data, "ce1", "hood", options=5)
    assert res.null_variance == 2.0
    _compare(res, REF["rwg_ce1_uniform5"], "rwg")
    assert res.n_truncated >= 1 and (res.groups.loc[res.groups["truncated"], "rwg"] == 0).all()


def test_rwg_other_null_variance(data):
    _compare(rwg(data, "ce1", "hood", null_variance=1.34), REF["rwg_ce1_skewed"], "rwg")


def test_rwg_j(data):
    with pytest.warns(MissingDataWarning, match="set aside"):
        res = rwg(data, ["ce1", "ce2", "ce3", "ce4"], "hood", options=5)
    _compare(res, REF["rwgj_uniform5"], "rwg_j")
    assert res.n_dropped == int(data["ce4"].isna().sum())
    _compare(rwg(data, ["ce1", "ce2", "ce3"], "hood", options=5), REF["rwgj_three_items"], "rwg_j")
    s = res.summary_frame().iloc[0]
    assert s["index"] == "rwg(j)" and s["groups"] == REF["icc_score"]["groups"]


def test_uniform_null_variance():
    assert uniform_null_variance(5) == 2.0
    assert uniform_null_variance(7) == 4.0


def test_hostile_inputs(data):
    with pytest.raises(ScaleError, match="exactly one"):
        rwg(data, "ce1", "hood")
    with pytest.raises(ScaleError, match="exactly one"):
        rwg(data, "ce1", "hood", options=5, null_variance=2.0)
    with pytest.raises(ScaleError, match="options"):
        rwg(data, "ce1", "hood", options=1)
    with pytest.raises(ScaleError, match="positive"):
        rwg(data, "ce1", "hood", null_variance=-1)
    with pytest.raises(ScaleError, match="not a column"):
        icc(data, "ce9", "hood")
    with pytest.raises(ScaleError, match="not numeric"):
        icc(data, "hood", "ce1")
    with pytest.raises(ScaleError, match="single respondent"):
        icc(data.groupby("hood").head(1), "ce1", "hood")
    with pytest.raises(ScaleError, match="at least two groups"):
        icc(data.assign(hood="N01"), "ce1", "hood")
    with pytest.raises(ScaleError, match="group_size"):
        icc(data, "ce1", "hood", group_size="harmonic")
