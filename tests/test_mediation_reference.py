"""cimstats.mediation against trusted software: lavaan (committed JSON) and pingouin (same resamples)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import stats

import cimstats
from conftest import REFERENCE, need

REF_JSON = REFERENCE / "mediation.json"

# lavaan label -> cimstats term, per case of tests/reference/mediation.R
LABELS = {k: v for k, v in json.loads((REFERENCE / "mediation_labels.json").read_text()).items() if k != "_about"}
N_BOOT = 5000


@pytest.fixture(scope="module")
def ref():
    with open(need(REF_JSON)) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def data(ref):
    return pd.read_csv(REFERENCE.parent.parent / ref["data"])


def _rows(ref, case, data, ci):
    """Fit the case with the arguments the R script recorded; pair lavaan rows with ours."""
    args = dict(ref["cases"][case]["args"])
    res = cimstats.mediation(data, n_boot=N_BOOT, seed=2024, ci=ci, **args)
    tidy = res.tidy()
    cond = tidy.loc[tidy["effect"] == "conditional_indirect"].reset_index(drop=True)
    t = tidy.set_index("term")
    params = pd.DataFrame(ref["cases"][case]["params"])
    params = params.loc[params["label"].isin(list(LABELS[case]))]
    out = []
    for p in params.itertuples():
        key = LABELS[case][p.label]
        ours = cond.loc[key] if isinstance(key, int) else t.loc[key]
        out.append((p, ours))
    return res, out


@pytest.mark.parametrize("case", list(LABELS))
def test_point_estimates_equal_lavaan_ml(ref, data, case):
    res, rows = _rows(ref, case, data, "percentile")
    assert len(rows) >= 5
    for p, ours in rows:
        assert ours["estimate"] == pytest.approx(p.est, rel=1e-6, abs=1e-8), p.label
    if res.spec.moderator:
        assert res.moderator_values == pytest.approx(tuple(ref["moderator_values"]), rel=1e-12)


def _mc_quantile_sd(q, sd, b1, b2):
    """Monte Carlo SD of the difference of two bootstrap quantiles (normal approximation)."""
    zq = stats.norm.ppf(q)
    return np.sqrt(q * (1 - q)) / stats.norm.pdf(zq) * sd * np.sqrt(1 / b1 + 1 / b2)


@pytest.mark.parametrize("ci, lav", [("percentile", "perc"), ("bc", "bc")])
@pytest.mark.parametrize("case", list(LABELS))
def test_bootstrap_se_and_intervals_within_monte_carlo_error(ref, data, case, ci, lav):
    res, rows = _rows(ref, case, data, ci)
    b_lav = ref["cases"][case]["n_boot"]
    rel_se_tol = 4 * np.sqrt(1 / (2 * N_BOOT) + 1 / (2 * b_lav))
    for p, ours in rows:
        assert ours["std_error"] == pytest.approx(p.se, rel=rel_se_tol), p.label
        sd = p.se
        for q, mine, theirs in ((0.025, ours["ci_lower"], getattr(p, f"{lav}_lower")),
                                (0.975, ours["ci_upper"], getattr(p, f"{lav}_upper"))):
            tol = 4.5 * _mc_quantile_sd(q, sd, N_BOOT, b_lav)
            assert abs(mine - theirs) <= tol, (p.label, q, mine, theirs, tol)


# ------------------------------------------------------------------------------ pingouin
@pytest.mark.parametrize("covar", [None, ["z"]])
def test_pingouin_parity_on_the_same_resamples(ref, data, covar):
    n_boot, seed = 800, 7
    stats_pg, dist = pingouin.mediation_analysis(data=data, x="x", m="m1", y="y", covar=covar,
                                                 n_boot=n_boot, seed=seed, return_dist=True)
    idx = np.random.RandomState(seed).choice(np.arange(len(data)), replace=True, size=(n_boot, len(data)))
    res = cimstats.mediation(data, x="x", m="m1", y="y", covariates=covar, resample_index=idx, ci="bc")
    t = res.tidy().set_index("term")
    pg = stats_pg.set_index("path")
    assert t.loc["a", "estimate"] == pytest.approx(pg.loc["m1 ~ X", "coef"], rel=1e-10)
    assert t.loc["a", "delta_se"] == pytest.approx(pg.loc["m1 ~ X", "se"], rel=1e-8)
    assert t.loc["c", "estimate"] == pytest.approx(pg.loc["Total", "coef"], rel=1e-10)
    assert t.loc["direct", "estimate"] == pytest.approx(pg.loc["Direct", "coef"], rel=1e-10)
    assert t.loc["indirect", "estimate"] == pytest.approx(pg.loc["Indirect", "coef"], rel=1e-10)
    np.testing.assert_allclose(res.bootstrap_draws()["indirect"].to_numpy(), dist, rtol=1e-9)
    assert t.loc["indirect", "std_error"] == pytest.approx(pg.loc["Indirect", "se"], rel=1e-9)
    # pingouin names its limits 'CI[2.5%]'/'CI[97.5%]' (0.5.x) or 'CI2.5'/'CI97.5' (later releases)
    lo, hi = [c for c in pg.columns if c.startswith("CI")]
    assert t.loc["indirect", "ci_lower"] == pytest.approx(pg.loc["Indirect", lo], rel=1e-9)
    assert t.loc["indirect", "ci_upper"] == pytest.approx(pg.loc["Indirect", hi], rel=1e-9)
