"""cimstats.mediation: exact agreement with plain least squares on the same resamples,
closed forms for moderated mediation and sensitivity, planted truth, and error paths."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import cimstats
from cimstats.errors import CimstatsWarning, MissingDataWarning, ModelSpecificationError
from cimstats.models.mediation import kernel as K


def make_data(n=300, seed=0, clusters=None):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    w = rng.uniform(1, 5, size=n)
    x = 0.3 * z + rng.normal(size=n) + 2.0  # far from zero on purpose (conditioning)
    m1 = 0.2 + 0.3 * x + 0.1 * x * w + 0.2 * z + rng.normal(size=n)
    m2 = 0.4 * x + 0.3 * m1 + rng.normal(size=n)
    y = 0.1 * x + 0.35 * m1 + 0.25 * m2 + 0.05 * m1 * w + 0.2 * z + rng.normal(size=n) + 50.0
    df = pd.DataFrame({"x": x, "m1": m1, "m2": m2, "y": y, "z": z, "w": w})
    if clusters:
        df["cl"] = rng.integers(0, clusters, size=n)
        df["st"] = df["cl"] % 3
    return df


def ols(y, *cols):
    X = np.column_stack([np.ones(len(y)), *cols])
    return np.linalg.lstsq(X, y, rcond=None)[0]


# ----------------------------------------------------------------- the independent computation
def effects_by_lstsq(d: pd.DataFrame, case: str, wvals=()):
    """Effects of one (re)sample computed from scratch with numpy lstsq."""
    x, m1, m2, y, z, w = (d[c].to_numpy() for c in ("x", "m1", "m2", "y", "z", "w"))
    out = {}
    if case == "single":
        a = ols(m1, x, z)[1]
        cp, b = ols(y, x, m1, z)[1:3]
        c = ols(y, x, z)[1]
        out.update({"a": a, "b": b, "c'": cp, "c": c, "indirect": a * b, "direct": cp, "total": cp + a * b})
    elif case == "parallel":
        a1 = ols(m1, x, z)[1]
        a2 = ols(m2, x, z)[1]
        cp, b1, b2 = ols(y, x, m1, m2, z)[1:4]
        out.update({"indirect[m1]": a1 * b1, "indirect[m2]": a2 * b2, "total_indirect": a1 * b1 + a2 * b2,
                    "direct": cp, "total": cp + a1 * b1 + a2 * b2, "c": ols(y, x, z)[1]})
    elif case == "serial":
        a1 = ols(m1, x, z)[1]
        a2, d21 = ols(m2, x, m1, z)[1:3]
        cp, b1, b2 = ols(y, x, m1, m2, z)[1:4]
        out.update({"indirect[m1]": a1 * b1, "indirect[m2]": a2 * b2, "indirect[m1 -> m2]": a1 * d21 * b2,
                    "total": cp + a1 * b1 + a2 * b2 + a1 * d21 * b2, "c": ols(y, x, z)[1]})
    elif case == "first_stage":
        a1, _, a3 = ols(m1, x, w, x * w, z)[1:4]
        b1 = ols(y, x, m1, z)[2]
        out["index_of_moderated_mediation"] = a3 * b1
        for v in wvals:
            out[f"conditional_indirect[w={v:.4g}]"] = (a1 + a3 * v) * b1
    elif case == "parallel_second_stage":
        a1 = ols(m1, x, z)[1]
        a2 = ols(m2, x, z)[1]
        coef = ols(y, x, m1, m2, w, m1 * w, m2 * w, z)
        b1, b2, b13, b23 = coef[2], coef[3], coef[5], coef[6]
        out["index_of_moderated_mediation[m1]"] = a1 * b13
        out["index_of_moderated_mediation[m2]"] = a2 * b23
        for v in wvals:
            out[f"conditional_indirect[m1 | w={v:.4g}]"] = a1 * (b1 + b13 * v)
            out[f"conditional_indirect[m2 | w={v:.4g}]"] = a2 * (b2 + b23 * v)
    elif case == "both_stages":
        a1, _, a3 = ols(m1, x, w, x * w, z)[1:4]
        cp, b1, _, cxw, b3 = ols(y, x, m1, w, x * w, m1 * w, z)[1:6]
        for v in wvals:
            out[f"conditional_indirect[w={v:.4g}]"] = (a1 + a3 * v) * (b1 + b3 * v)
            out[f"conditional_direct[w={v:.4g}]"] = cp + cxw * v
    elif case == "within_between":
        g = d.groupby("cl")
        xb, mb = g["x"].transform("mean").to_numpy(), g["m1"].transform("mean").to_numpy()
        aw, ab = ols(m1, x - xb, xb, z)[1:3]
        cw, cb, bw, bb = ols(y, x - xb, xb, m1 - mb, mb, z)[1:5]
        out.update({"indirect_within": aw * bw, "indirect_between": ab * bb, "direct_within": cw,
                    "direct_between": cb, "total_within": cw + aw * bw})
    return out


CASES = {
    "single": dict(m="m1", covariates=["z"]),
    "parallel": dict(m=["m1", "m2"], covariates=["z"]),
    "serial": dict(m=["m1", "m2"], covariates=["z"], serial=True),
    "first_stage": dict(m="m1", covariates=["z"], moderator="w", moderated_paths=("a",)),
    "both_stages": dict(m="m1", covariates=["z"], moderator="w", moderated_paths=("a", "b", "direct")),
    "parallel_second_stage": dict(m=["m1", "m2"], covariates=["z"], moderator="w", moderated_paths=("b",),
                                  moderator_values=[1.5, 4.0]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bootstrap_equals_lstsq_on_the_same_resamples(case):
    df = make_data(n=250, seed=3)
    B, seed = 40, 11
    res = cimstats.mediation(df, x="x", y="y", n_boot=B, seed=seed, **CASES[case])
    draws = res.bootstrap_draws()
    n = len(df)
    counts = K.counts_from_seeds(np.random.SeedSequence(seed).spawn(B), np.arange(n), n, None)
    wvals = res.moderator_values
    full = effects_by_lstsq(df, case, wvals)
    est = res.tidy().set_index("term")["estimate"]
    for k, v in full.items():
        assert est[k] == pytest.approx(v, rel=1e-10, abs=1e-12), k
    for b in range(B):
        rows = np.repeat(np.arange(n), counts[b].astype(int))
        ref = effects_by_lstsq(df.iloc[rows], case, wvals)
        for k, v in ref.items():
            assert draws.loc[b, k] == pytest.approx(v, rel=1e-8, abs=1e-10), (b, k)


@pytest.mark.parametrize("case", ["within_between", "first_stage"])
def test_cluster_bootstrap_within_strata_equals_lstsq(case):
    df = make_data(n=300, seed=4, clusters=40)
    B, seed = 30, 5
    kw = (dict(within_between=True) if case == "within_between"
          else dict(moderator="w", moderator_values=[2.0, 4.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CimstatsWarning)
        res = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["z"], cluster="cl", strata="st",
                                 n_boot=B, seed=seed, **kw)
    unit, levels = pd.factorize(df["cl"], sort=True)
    st_of_unit = np.asarray(levels) % 3
    counts = K.counts_from_seeds(np.random.SeedSequence(seed).spawn(B), unit, len(levels), st_of_unit)
    draws = res.bootstrap_draws()
    est = res.tidy().set_index("term")["estimate"]
    wvals = res.moderator_values
    for k, v in effects_by_lstsq(df, case, wvals).items():
        assert est[k] == pytest.approx(v, rel=1e-10), k
    cl_counts = np.bincount(unit, minlength=len(levels))
    n_per_stratum = pd.Series(st_of_unit).value_counts().sort_index().to_numpy()
    for b in range(B):
        # a resampled cluster keeps its rows together; every stratum keeps its number of clusters
        rows = np.repeat(np.arange(len(df)), counts[b].astype(int))
        per_stratum = pd.Series(counts[b] / cl_counts[unit], index=df.index).groupby(df["st"]).sum()
        assert np.allclose(per_stratum.to_numpy(), n_per_stratum)
        ref = effects_by_lstsq(df.iloc[rows], case, wvals)
        for k, v in ref.items():
            assert draws.loc[b, k] == pytest.approx(v, rel=1e-8, abs=1e-10), (b, k)
    assert res.glance().loc[0, "resampling"] == "clusters within strata"


def test_paths_match_statsmodels_and_total_identity():
    df = make_data(n=200, seed=1)
    res = cimstats.mediation(df, x="x", m=["m1", "m2"], y="y", covariates=["z"], serial=True, n_boot=20, seed=1)
    p = res.paths()
    fit = sm.OLS(df["y"], sm.add_constant(df[["x", "m1", "m2", "z"]])).fit()
    got = p.loc[p["role"] == "outcome"].set_index("term")
    assert np.allclose(got["estimate"].to_numpy(), fit.params.to_numpy(), rtol=1e-10)
    assert np.allclose(got["std_error"].to_numpy(), fit.bse.to_numpy(), rtol=1e-10)
    assert np.allclose(got["p_value"].to_numpy(), fit.pvalues.to_numpy(), rtol=1e-8, atol=1e-300)
    t = res.tidy().set_index("term")
    # c = c' + sum of indirect effects, exactly, on the sample and on every resample
    assert t.loc["total", "estimate"] == pytest.approx(t.loc["c", "estimate"], rel=1e-10)
    d = res.bootstrap_draws()
    assert np.allclose(d["total"], d["c"], rtol=1e-8)


def test_moderated_mediation_closed_forms_and_value_rules():
    df = make_data(n=400, seed=2)
    a1, _, a3 = ols(df.m1, df.x, df.w, df.x * df.w, df.z)[1:4]
    b1 = ols(df.y, df.x, df.m1, df.z)[2]
    res = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["z"], moderator="w", n_boot=200, seed=3)
    t = res.tidy().set_index("term")
    assert t.loc["index_of_moderated_mediation", "estimate"] == pytest.approx(a3 * b1, rel=1e-10)
    mu, sd = df.w.mean(), df.w.std(ddof=1)
    assert res.moderator_values == pytest.approx((mu - sd, mu, mu + sd), rel=1e-12)
    cond = t.loc[t["effect"] == "conditional_indirect"]
    assert np.allclose(cond["estimate"], (a1 + a3 * cond["moderator_value"]) * b1, rtol=1e-10)
    # the index is the slope of the conditional indirect effect in w, on every resample too
    d = res.bootstrap_draws()
    cols = list(cond.index)
    slope = (d[cols[2]] - d[cols[0]]) / (res.moderator_values[2] - res.moderator_values[0])
    assert np.allclose(slope, d["index_of_moderated_mediation"], rtol=1e-8)
    pct = cimstats.mediation(df, x="x", m="m1", y="y", moderator="w", moderator_values="percentiles",
                             n_boot=20, seed=3)
    assert pct.moderator_values == pytest.approx(tuple(np.percentile(df.w, [16, 50, 84], method="weibull")),
                                                 rel=1e-12)
    df2 = df.assign(wb=(df.w > 3).astype(int))
    binr = cimstats.mediation(df2, x="x", m="m1", y="y", moderator="wb", n_boot=20, seed=3)
    assert binr.moderator_values == (0.0, 1.0)
    assert "binary" in binr.glance().loc[0, "moderator_values_rule"]
    both = cimstats.mediation(df, x="x", m="m1", y="y", moderator="w", moderated_paths=("a", "b"),
                              n_boot=20, seed=3)
    assert "index_of_moderated_mediation" not in set(both.tidy()["term"])


def test_sensitivity_closed_form_and_planted_confounding():
    rng = np.random.default_rng(9)
    n, rho_true = 20000, 0.4
    x = rng.normal(size=n)
    e = rng.multivariate_normal([0, 0], [[1, rho_true], [rho_true, 1]], size=n)
    m = 0.5 * x + e[:, 0]
    y = 0.3 * m + 0.2 * x + e[:, 1]
    df = pd.DataFrame({"x": x, "m": m, "y": y})
    res = cimstats.mediation(df, x="x", m="m", y="y", n_boot=200, seed=1, rho=[-0.2, 0.0, 0.2, rho_true])
    sens = res.sensitivity()
    # independent computation from statsmodels residuals
    fm = sm.OLS(m, sm.add_constant(x)).fit()
    ft = sm.OLS(y, sm.add_constant(x)).fit()
    rt = np.corrcoef(fm.resid, ft.resid)[0, 1]
    s1, s2 = np.std(ft.resid), np.std(fm.resid)
    expect = fm.params[1] * s1 / s2 * (rt - sens["rho"] * np.sqrt((1 - rt**2) / (1 - sens["rho"] ** 2)))
    assert np.allclose(sens["acme"], expect, rtol=1e-9)
    assert sens.attrs["rho_at_zero_acme"] == pytest.approx(rt, rel=1e-10)
    t = res.tidy().set_index("term")
    assert sens.set_index("rho").loc[0.0, "acme"] == pytest.approx(t.loc["indirect", "estimate"], rel=1e-9)
    # the naive ACME is biased by the planted confounding; at the true rho it recovers 0.5 * 0.3
    assert abs(t.loc["indirect", "estimate"] - 0.15) > 0.1
    assert sens.set_index("rho").loc[rho_true, "acme"] == pytest.approx(0.15, abs=0.02)
    lo, hi = sens.attrs["rho_at_zero_ci"]
    assert lo < rt < hi


def xb_hat(v, cl):
    return pd.Series(v).groupby(cl).transform("mean").to_numpy()


def test_multilevel_planted_within_and_between_effects():
    rng = np.random.default_rng(5)
    J, nj = 150, 12
    cl = np.repeat(np.arange(J), nj)
    xb = rng.normal(size=J)[cl]
    x = xb + rng.normal(size=J * nj)
    u = rng.normal(size=J)[cl]
    m = 0.5 * (x - xb) + 0.2 * xb + 0.3 * u + rng.normal(size=J * nj)  # within a=0.5, between a~0.2
    mbar = pd.Series(m).groupby(cl).transform("mean").to_numpy()
    y = 0.4 * (m - mbar) + 1.0 * mbar + 0.1 * x + rng.normal(size=J * nj) + 0.3 * rng.normal(size=J)[cl]
    df = pd.DataFrame({"x": x, "m": m, "y": y, "practice": cl})
    res = cimstats.mediation(df, x="x", m="m", y="y", cluster="practice", within_between=True,
                             n_boot=400, seed=2)
    t = res.tidy().set_index("term")
    assert t.loc["indirect_within", "estimate"] == pytest.approx(0.2, abs=0.04)
    assert t.loc["indirect_within", "ci_lower"] < 0.2 < t.loc["indirect_within", "ci_upper"]
    # the within path equals the fixed-effects (demeaned) estimate
    fe = np.polyfit(x - xb_hat(x, cl), m - mbar, 1)[0]
    assert t.loc["a_within", "estimate"] == pytest.approx(fe, rel=1e-8)
    assert res.n_clusters == J
    # with clusters, path standard errors are cluster-robust (CR1), as statsmodels' cluster covariance
    p = res.paths()
    out = p.loc[p["role"] == "outcome"]
    X = sm.add_constant(np.column_stack([x - xb_hat(x, cl), xb_hat(x, cl), m - mbar, mbar]))
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cl})
    assert np.allclose(out["estimate"], fit.params, rtol=1e-9)
    assert np.allclose(out["std_error"], fit.bse, rtol=1e-9)
    assert (out["df"] == J - 1).all() and (out["se_type"] == "cluster-robust").all()
    assert res.glance().loc[0, "resampling"] == "clusters"


def test_bca_matches_textbook_formula_with_explicit_jackknife():
    df = make_data(n=60, seed=8)
    res = cimstats.mediation(df, x="x", m="m1", y="y", n_boot=999, seed=4, ci="bca")
    est = res.tidy().set_index("term").loc["indirect"]
    boot = res.bootstrap_draws()["indirect"].to_numpy()
    jack = []
    for i in df.index:  # leave one row out, refit both equations
        d = df.drop(index=i)
        jack.append(ols(d.m1, d.x)[1] * ols(d.y, d.x, d.m1)[2])
    jack = np.array(jack)
    dj = jack.mean() - jack
    a = (dj**3).sum() / (6 * ((dj**2).sum()) ** 1.5)
    z0 = stats.norm.ppf(np.mean(boot < est["estimate"]))
    zq = stats.norm.ppf([0.025, 0.975])
    p = stats.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
    assert [est["ci_lower"], est["ci_upper"]] == pytest.approx(list(np.quantile(boot, p)), rel=1e-10)


def test_missing_rows_counted_and_seed_reproducible():
    df = make_data(n=120, seed=6)
    df.loc[[3, 7], "m1"] = np.nan
    df.loc[[7, 9], "z"] = np.nan
    with pytest.warns(MissingDataWarning):
        r1 = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["z"], n_boot=50, seed=42)
    g = r1.glance().loc[0]
    assert (g["nobs"], g["n_dropped"]) == (117, 3)
    assert set(r1.dropped["variable"]) == {"m1", "z"}
    with pytest.warns(MissingDataWarning):
        r2 = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["z"], n_boot=50, seed=42)
        r3 = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["z"], n_boot=50, seed=43)
    assert r1.bootstrap_draws().equals(r2.bootstrap_draws())
    assert not r1.bootstrap_draws().equals(r3.bootstrap_draws())
    r4 = cimstats.mediation(make_data(n=50), x="x", m="m1", y="y", n_boot=10)
    assert isinstance(r4.seed, int)
    assert "Mediation analysis" in str(r1.summary()) and "n dropped: 3" in str(r1.summary())
    with pytest.raises(ModelSpecificationError, match="sensitivity"):
        cimstats.mediation(make_data(n=50), x="x", m=["m1", "m2"], y="y", n_boot=10, seed=1).sensitivity()


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(0.01, 100), shift=st.floats(-1e3, 1e3))
def test_indirect_scales_with_outcome_units(scale, shift):
    df = make_data(n=80, seed=1)
    r0 = cimstats.mediation(df, x="x", m="m1", y="y", n_boot=30, seed=2)
    r1 = cimstats.mediation(df.assign(y=df.y * scale + shift), x="x", m="m1", y="y", n_boot=30, seed=2)
    a, b = r0.tidy().set_index("term"), r1.tidy().set_index("term")
    for col in ("estimate", "std_error", "ci_lower", "ci_upper"):
        assert b.loc["indirect", col] == pytest.approx(scale * a.loc["indirect", col], rel=1e-7)


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, pattern", [
    (dict(x="nope", m="m1", y="y"), r"`x=` names 'nope'"),
    (dict(x="x", m=["m1", "zz"], y="y"), r"`m=` names 'zz'"),
    (dict(x="x", m="m1", y="y", covariates=["txt"]), r"`covariates=` column 'txt' has"),
    (dict(x="x", m="m1", y="const"), r"`y=` column 'const' is constant"),
    (dict(x="x", m="m1", y="y", covariates=["z", "z2"]), r"`covariates=` term 'z2'.*collinear"),
    (dict(x="x", m="m1", y="y", covariates=["x"]), r"already used as `x=`"),
    (dict(x="x", m="m1", y="y", cluster="few", within_between=True), r"`cluster=` 'few' has 3 clusters"),
    (dict(x="x", m="m1", y="y", within_between=True), r"`within_between=True` needs `cluster=`"),
    (dict(x="x", m="m1", y="y", ci="normal"), r"`ci=` is 'normal'"),
    (dict(x="x", m="m1", y="y", moderator="w", moderated_paths=("c",)), r"`moderated_paths=` contains 'c'"),
    (dict(x="x", m=["m1", "m2"], y="y", moderator="w", serial=True), r"`serial=True` cannot"),
    (dict(x="x", m="m1", y="y", level=95.0), r"`level=` is 95.0"),
    (dict(x="x", m="m1", y="y", strata="few"), r"`strata=` 'few' has a level with 1"),
    (dict(x="x", m="m1", y="y", resample_index=np.zeros((5, 59), int)), r"`resample_index=` has shape"),
])
def test_errors_name_the_argument(kwargs, pattern):
    df = make_data(n=60, seed=1).assign(txt="a", const=1.0)
    df["z2"] = 2 * df["z"] + 1
    df["few"] = np.r_[np.zeros(58), 1, 2].astype(int)
    with pytest.raises(ModelSpecificationError, match=pattern) as info:
        cimstats.mediation(df, n_boot=10, seed=1, **kwargs)
    msg = str(info.value)
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence


def test_singular_resamples_are_set_aside_and_counted():
    df = make_data(n=40, seed=2)
    df["rare"] = 0.0
    df.loc[[0, 1], "rare"] = 1.0  # absent from about 13% of resamples -> singular design there
    with pytest.warns(CimstatsWarning, match="singular design"):
        res = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["rare"], n_boot=300, seed=3)
    failed = res.n_boot_failed
    assert 10 < failed < 100
    draws = res.bootstrap_draws()
    assert int(draws["indirect"].isna().sum()) == failed
    t = res.tidy().set_index("term")
    assert np.isfinite(t.loc["indirect", ["std_error", "ci_lower", "ci_upper"]].astype(float)).all()
    assert res.glance().loc[0, "n_boot_failed"] == failed


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(seed="s"), r"`seed=` is 's'"),
    (dict(seed=-3), r"`seed=` is -3"),
    (dict(moderator="w", moderator_values=["lo"]), r"`moderator_values=` is \['lo'\]"),
])
def test_seed_and_moderator_values_errors(kwargs, pattern):
    df = make_data(n=60, seed=1)
    with pytest.raises(ModelSpecificationError, match=pattern) as info:
        cimstats.mediation(df, x="x", m="m1", y="y", n_boot=10, **{"seed": 1, **kwargs})
    assert str(info.value).endswith(".")


# ---------------------------------------------------------------------------------- publication table
def test_summary_renders_through_table_spec(tmp_path):
    from cimstats.render import TableSpec, render

    df = make_data(n=200, seed=4)
    res = cimstats.mediation(df, x="x", m="m1", y="y", covariates=["z"], moderator="w", n_boot=200, seed=2)
    spec = res.to_table_spec()
    assert isinstance(spec, TableSpec)
    cells = [c.text for row in spec.grid() for c in row if c is not None]
    # every effect and every path coefficient appears once, in the estimate's formatting convention
    for term in res.tidy()["term"]:
        assert term in cells
    assert sum(c.startswith("m1: ") or c.startswith("y: ") for c in cells) == len(res.paths())
    assert "index_of_moderated_mediation" in cells
    notes = " ".join(spec.notes)
    assert "200 resamples" in notes and "seed 2" in notes and "Moderator values" in notes
    html = res.summary().to_html()
    assert "<table" in html and "conditional_indirect" in html and "<script" not in html
    tex = res.summary().to_latex()
    assert r"\begin{tabular}" in tex and r"index\_of\_moderated\_mediation" in tex
    assert "| Term |" in res.summary().to_markdown()
    assert res.to_html(tmp_path / "med.html").startswith("<!DOCTYPE") or (tmp_path / "med.html").exists()
    assert (tmp_path / "med.html").stat().st_size > 0
    out = render(spec, tmp_path / "med.docx")
    assert out.exists()
    with pytest.warns(DeprecationWarning), pytest.raises(ModelSpecificationError, match="`format` is 'pdf'"):
        res.summary("pdf")
    # the text summary is unchanged by the table forms
    assert str(res.summary()).startswith("Mediation analysis")
