"""Two-level SEM (level: 1 / level: 2 blocks with cluster=) against lavaan 0.6-14.

References: tests/reference/sem_twolevel.R (lavaan's Demo.twolevel with the documentation's model, two
CFAs on it, and a simulated collective-efficacy data set with a neighbourhood-level factor). The
estimates and standard errors are lavaan's converged to a tight tolerance; the chi-square and the
measures built on it are compared with lavaan's saturated-model EM run to convergence (lavaan's
default stops that EM early, which moves its chi-square by up to ~1e-3; see the R script).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from cimstats.errors import EstimationError, MissingDataWarning, ModelSpecificationError
from cimstats.models.sem import TwoLevelResult, sem
from conftest import REFERENCE

REF = json.loads((REFERENCE / "sem_twolevel.json").read_text())
MODELS = sorted(REF["models"])
TOL = 1e-4


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / f"sem_twolevel_{name}.csv.gz")


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name in MODELS:
        m = REF["models"][name]
        out[name] = sem(m["model"], _data(m["data"]), cluster=m["cluster"])
    return out


@pytest.mark.parametrize("name", MODELS)
def test_estimates_and_standard_errors_match_lavaan(fits, name):
    m = REF["models"][name]
    ref = pd.DataFrame(m["params"])
    mine = fits[name].tidy()
    merged = ref.merge(mine, on=["lhs", "op", "rhs", "level"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    np.testing.assert_allclose(merged["estimate"], merged["est"], rtol=0, atol=TOL)
    np.testing.assert_allclose(merged["std_error"], merged["se"], rtol=0, atol=TOL)


@pytest.mark.parametrize("name", MODELS)
def test_fit_measures_match_lavaan(fits, name):
    m = REF["models"][name]
    fm = fits[name].fit_measures()
    for key in ("npar", "df", "baseline.df", "ntotal", "logl", "aic", "bic", "srmr", "srmr_within",
                "srmr_between"):
        assert fm[key] == pytest.approx(m["fit"][key], abs=TOL), key
    for key, value in m["fit_h1_converged"].items():
        assert fm[key] == pytest.approx(value, abs=TOL), key
    # lavaan's default (early-stopped EM for the saturated model) is close, not equal
    assert fm["chisq"] == pytest.approx(m["default"]["fit"]["chisq"], abs=2e-3)


def test_misfit_gives_non_trivial_indices(fits):
    fm = fits["demo_misfit"].fit_measures()
    assert 0 < fm["cfi"] < 1 and fm["rmsea"] > 0 and fm["pvalue"] < 0.001


def test_result_shapes(fits):
    fit = fits["demo_doc"]
    assert isinstance(fit, TwoLevelResult)
    g = fit.glance().iloc[0]
    assert g["nobs"] == 2500 and g["nclusters"] == 200 and g["n_dropped"] == 0
    imp = fit.implied()
    assert list(imp["within"]["cov"].columns) == ["y1", "y2", "y3", "x1", "x2", "x3"]
    assert list(imp["between"]["cov"].columns) == ["y1", "y2", "y3", "w1", "w2"]
    assert fit.vcov().shape == (20, 20)
    assert "Level 2 (between clusters)" in str(fit.summary())


def _simulate(seed=11, J=250, lo=3, hi=14):
    """Planted truth: within factor (loadings 1, .8, .7; variance .6), between factor (loadings 1, .9, .6;
    variance .5) predicted by a between-only covariate (slope -.4), residual variances .5 within and
    .05-.1 between, means 2, 2.5, 3; unbalanced clusters."""
    rng = np.random.default_rng(seed)
    size = rng.integers(lo, hi + 1, size=J)
    hood = np.repeat(np.arange(J), size)
    n = len(hood)
    dep = rng.normal(size=J)
    fb = -0.4 * dep + rng.normal(scale=math.sqrt(0.5), size=J)
    fw = rng.normal(scale=math.sqrt(0.6), size=n)
    lw, lb = (1.0, 0.8, 0.7), (1.0, 0.9, 0.6)
    mu, rb = (2.0, 2.5, 3.0), (0.05, 0.1, 0.08)
    d = pd.DataFrame({f"ce{i + 1}": mu[i] + lb[i] * fb[hood] + rng.normal(scale=math.sqrt(rb[i]), size=J)[hood]
                      + lw[i] * fw + rng.normal(scale=math.sqrt(0.5), size=n) for i in range(3)})
    d["deprivation"] = dep[hood]
    d["hood"] = hood
    truth = {("ce_w", "=~", "ce2", 1): 0.8, ("ce_w", "=~", "ce3", 1): 0.7, ("ce_w", "~~", "ce_w", 1): 0.6,
             ("ce_b", "=~", "ce2", 2): 0.9, ("ce_b", "=~", "ce3", 2): 0.6, ("ce_b", "~~", "ce_b", 2): 0.5,
             ("ce_b", "~", "deprivation", 2): -0.4, ("ce1", "~1", "", 2): 2.0, ("ce2", "~1", "", 2): 2.5,
             ("ce3", "~1", "", 2): 3.0}
    for i in range(3):
        truth[(f"ce{i + 1}", "~~", f"ce{i + 1}", 1)] = 0.5
        truth[(f"ce{i + 1}", "~~", f"ce{i + 1}", 2)] = rb[i]
    return d, truth


EFFICACY = """
level: 1
    ce_w =~ ce1 + ce2 + ce3
level: 2
    ce_b =~ ce1 + ce2 + ce3
    ce_b ~ deprivation
"""


def test_planted_truth_is_recovered():
    d, truth = _simulate()
    t = sem(EFFICACY, d, cluster="hood").tidy().set_index(["lhs", "op", "rhs", "level"])
    for key, value in truth.items():
        est, se = t.loc[key, "estimate"], t.loc[key, "std_error"]
        assert abs(est - value) < 4 * se, (key, est, se, value)


def test_missing_values_are_set_aside_and_counted():
    d, _ = _simulate(J=80)
    d.loc[[3, 10, 11], "ce2"] = np.nan
    d.loc[[10, 40], "hood"] = np.nan
    with pytest.warns(MissingDataWarning, match="set aside"):
        fit = sem(EFFICACY, d, cluster="hood")
    assert fit.nobs == len(d) - 4 and fit.n_dropped == 4
    counts = dict(zip(fit.dropped["variable"], fit.dropped["n_missing"]))
    assert counts == {"ce2": 3, "hood": 2}


def test_singleton_clusters_are_allowed_among_larger_ones():
    d, _ = _simulate(J=80)
    first = d.groupby("hood").head(1).index[:10]
    d = d[~d["hood"].isin(d.loc[first, "hood"]) | d.index.isin(first)]
    fit = sem(EFFICACY, d, cluster="hood")
    assert fit.optimizer.converged and fit.nclusters == 80


def test_hostile_inputs():
    d, _ = _simulate(J=60)
    # level blocks without a cluster column
    with pytest.raises(ModelSpecificationError, match="cluster"):
        sem(EFFICACY, d)
    # every cluster of size 1
    single = d.groupby("hood").head(1)
    with pytest.raises(ModelSpecificationError, match="single row"):
        sem(EFFICACY, single, cluster="hood")
    # a model variable absent from the data
    with pytest.raises(ModelSpecificationError, match="ce4"):
        sem(EFFICACY.replace("ce3\n", "ce3 + ce4\n", 1), d, cluster="hood")
    # the cluster column absent
    with pytest.raises(ModelSpecificationError, match="neighbourhood"):
        sem(EFFICACY, d, cluster="neighbourhood")
    # a between-only variable that varies within a cluster
    bad = d.copy()
    bad.loc[bad.index[1], "deprivation"] += 1.0
    with pytest.raises(ModelSpecificationError, match="constant within each cluster"):
        sem(EFFICACY, bad, cluster="hood")
    # one level only
    with pytest.raises(ModelSpecificationError, match="level: 2"):
        sem("level: 1\n ce_w =~ ce1 + ce2 + ce3", d, cluster="hood")
    # the same factor name at both levels
    with pytest.raises(ModelSpecificationError, match="both levels"):
        sem(EFFICACY.replace("ce_b", "ce_w"), d, cluster="hood")
    # options two-level models do not support
    with pytest.raises(ModelSpecificationError, match="missing='fiml' is not supported"):
        sem(EFFICACY, d, cluster="hood", missing="fiml")
    with pytest.raises(ModelSpecificationError, match="group="):
        sem(EFFICACY, d.assign(g=d["hood"] % 2), cluster="hood", group="g")
    with pytest.raises(ModelSpecificationError, match="se='robust.huber.white' with estimator='ML'"):
        sem(EFFICACY, d, cluster="hood", se="robust.huber.white")
    with pytest.raises(ModelSpecificationError, match="not known"):
        sem(EFFICACY.replace("level: 2", "level: 3"), d, cluster="hood")


def test_degenerate_within_factor_is_reported_not_called_unidentified():
    # items share only a neighbourhood component: there is no within-neighbourhood factor to find
    rng = np.random.default_rng(1)
    hood = np.repeat(np.arange(40), rng.integers(3, 15, size=40))
    shared = rng.normal(scale=0.6, size=40)[hood]
    d = pd.DataFrame({f"ce{i}": 3 + shared + rng.normal(scale=0.9, size=len(hood)) for i in (1, 2, 3, 4)})
    d["hood"] = hood
    model = "level: 1\n f_w =~ ce1 + ce2 + ce3 + ce4\nlevel: 2\n f_b =~ ce1 + ce2 + ce3 + ce4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(EstimationError, match="degenerate"):
            sem(model, d, cluster="hood")
