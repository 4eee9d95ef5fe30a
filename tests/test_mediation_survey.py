"""Mediation under a complex survey design: weighted paths, design-based standard errors and the
Rao-Wu (n_h - 1) bootstrap, against R's survey package (tests/reference/survey_mediation.R)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import ModelSpecificationError
from cimstats.models.survey import SurveyDesign
from cimstats.models.survey.replicates import subbootstrap_factors
from conftest import REFERENCE

REF = json.loads((REFERENCE / "survey_mediation.json").read_text())
DESIGNS = {
    "strata_rows": SurveyDesign(weights="pw", strata="stype"),
    "clusters": SurveyDesign(weights="pw", cluster="dnum"),
    "strata_clusters": SurveyDesign(weights="pw", strata="stype", cluster="dnum", nest=True),
}
ARGS = dict(x="ell", m="meals", y="api00", sensitivity=False)


def _data(case):
    return pd.DataFrame(REF["cases"][case]["data"])


def _terms(res):
    return res.tidy().set_index("term")


@pytest.mark.parametrize("case", sorted(DESIGNS))
def test_fixed_replicate_weights_match_svrepdesign(case):
    ref = REF["cases"][case]
    rw = np.asarray(ref["replicate_weights"], dtype=float)
    res = cimstats.mediation(_data(case), design=DESIGNS[case], replicate_weights=rw, **ARGS)
    t = _terms(res)
    lin, rep = ref["linearised"], ref["replicate"]
    # point estimates: svyglm's weighted least squares
    for term, key in (("a", "a"), ("b", "b"), ("direct", "direct"), ("total", "total")):
        assert t.loc[term, "estimate"] == pytest.approx(lin[key], rel=1e-10)
    assert t.loc["indirect", "estimate"] == pytest.approx(rep["indirect"], rel=1e-10)
    # replicate-based standard errors (survey: scale 1/(R - 1), centred at the replicates' mean)
    assert rep["scale"] == pytest.approx(1 / (rw.shape[0] - 1)) and rep["mse"] is False
    for term, key in (("a", "a_se"), ("b", "b_se"), ("direct", "direct_se"), ("indirect", "indirect_se")):
        assert t.loc[term, "std_error"] == pytest.approx(rep[key], rel=1e-8), term
    # the path table: svyglm's linearised standard errors and design degrees of freedom
    p = res.paths().set_index(["role", "term"])
    assert p.loc[("mediator", "ell"), "std_error"] == pytest.approx(lin["a_se"], rel=1e-8)
    assert p.loc[("outcome", "meals"), "std_error"] == pytest.approx(lin["b_se"], rel=1e-8)
    assert p.loc[("total", "ell"), "std_error"] == pytest.approx(lin["total_se"], rel=1e-8)
    assert (p["df"] == lin["df"]).all()
    assert res.glance().loc[0, "resampling"] == "given replicate weights"


def test_point_estimates_are_an_independent_weighted_regression():
    d = _data("strata_clusters")
    res = cimstats.mediation(d, design=DESIGNS["strata_clusters"], n_boot=20, seed=1, **ARGS)
    w = d["pw"].to_numpy()
    X = np.column_stack([np.ones(len(d)), d["ell"], d["meals"]])
    # weighted normal equations, solved directly
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * d["api00"].to_numpy()))
    a = np.linalg.solve(X[:, :2].T @ (X[:, :2] * w[:, None]), X[:, :2].T @ (w * d["meals"].to_numpy()))
    t = _terms(res)
    assert t.loc["a", "estimate"] == pytest.approx(a[1], rel=1e-10)
    assert t.loc["b", "estimate"] == pytest.approx(beta[2], rel=1e-10)
    assert t.loc["direct", "estimate"] == pytest.approx(beta[1], rel=1e-10)
    assert t.loc["indirect", "estimate"] == pytest.approx(a[1] * beta[2], rel=1e-10)


@pytest.mark.parametrize("case", sorted(DESIGNS))
def test_design_bootstrap_agrees_with_r_subbootstrap(case):
    # cimstats' own Rao-Wu draws (1500) against R's subbootstrap with 2000 replicates: the standard
    # errors agree within Monte Carlo error (about 2-3% relative for each)
    ref = REF["cases"][case]["subbootstrap_2000"]
    res = cimstats.mediation(_data(case), design=DESIGNS[case], n_boot=1500, seed=11, **ARGS)
    t = _terms(res)
    for term, key in (("a", "a_se"), ("b", "b_se"), ("direct", "direct_se"), ("total", "total_se")):
        assert t.loc[term, "std_error"] == pytest.approx(ref[key], rel=0.1), term


def test_subbootstrap_factors_follow_rao_wu():
    psu_of_row = np.repeat(np.arange(6), 3)
    stratum_of_psu = np.array([0, 0, 0, 1, 1, 1])
    seeds = np.random.SeedSequence(5).spawn(4000)
    f = subbootstrap_factors(seeds, psu_of_row, stratum_of_psu)
    assert f.shape == (4000, 18)
    # rows of a PSU share its factor; n_h - 1 = 2 draws of 3 PSUs, each scaled by 3/2
    np.testing.assert_array_equal(f[:, 0], f[:, 2])
    by_psu = f[:, ::3]
    np.testing.assert_allclose(by_psu[:, :3].sum(axis=1), 3.0)
    np.testing.assert_allclose(by_psu[:, 3:].sum(axis=1), 3.0)
    assert set(np.unique(by_psu)) <= {0.0, 1.5, 3.0}
    assert by_psu.mean() == pytest.approx(1.0, abs=0.03)
    # the same seed gives the same replicate whatever else is drawn with it
    np.testing.assert_array_equal(subbootstrap_factors(seeds[7:8], psu_of_row, stratum_of_psu), f[7:8])


def _one_sentence(msg: str) -> bool:
    return msg.endswith(".") and not re.search(r"[.;]\s+[A-Z][a-z]", msg)


@pytest.mark.parametrize("change, kw, match", [
    (None, {"cluster": "dnum"}, "cannot be combined with `cluster=`"),
    (None, {"ci": "bca"}, "not available with `design=`"),
    (None, {"design": "pw"}, "expected a cimstats.SurveyDesign"),
    (None, {"design": None, "replicate_weights": np.ones((3, 200))}, "needs `design=`"),
    (None, {"replicate_weights": np.ones((3, 7))}, "replicates x 200 complete rows"),
    (None, {"replicate_weights": -np.ones((3, 200))}, "negative"),
    (lambda d: d.assign(pw=np.where(d.index == 3, -1.0, d["pw"])), {}, "negative"),
    (lambda d: d.assign(pw=np.where(d.index == 3, np.nan, d["pw"])), {}, "missing"),
    (lambda d: d.assign(stype=np.where(d.index == 3, "X", d["stype"])), {}, "single primary sampling unit"),
    (None, {"design": SurveyDesign(weights="ell")}, "also a model variable"),
])
def test_hostile_designs(change, kw, match):
    d = _data("strata_rows")
    if change is not None:
        d = change(d)
    kw = {"design": DESIGNS["strata_rows"], "n_boot": 10, "seed": 1, **kw}
    with pytest.raises(ModelSpecificationError, match=match) as e:
        cimstats.mediation(d, **ARGS, **kw)
    assert _one_sentence(str(e.value))
