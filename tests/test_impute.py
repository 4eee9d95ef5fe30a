"""cimstats.impute: kinds of variables, declared missing codes, passive scores, clusters, hostile inputs,
and a small seeded simulation of interval coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import cimstats
from cimstats import Imputations, Survey, VariableMeta
from cimstats.errors import CimstatsError, ModelSpecificationError


def _mixed(n=240, seed=1):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"x": rng.normal(size=n)})
    d["y"] = 1 + 0.5 * d["x"] + rng.normal(size=n)
    d["sex"] = np.where(rng.random(n) < 0.5, "f", "m")
    d["smoker"] = (d["y"] + rng.normal(size=n) > 1).astype(float)
    d["region"] = pd.Categorical(rng.choice(["north", "east", "south", "west"], n))
    d["health"] = pd.Categorical(np.digitize(d["y"] + rng.normal(size=n), [0, 1, 2]), ordered=True)
    for c in ("x", "y", "sex", "smoker", "region", "health"):
        d.loc[rng.random(n) < 0.15, c] = np.nan
    return d


def ols(formula, data):
    return smf.ols(formula, data).fit()


def test_every_kind_of_variable_is_imputed_with_its_own_method_and_keeps_its_type():
    d = _mixed()
    imp = cimstats.impute(d, m=3, seed=2, iterations=3)
    assert imp.methods == {"x": "pmm", "y": "pmm", "sex": "logreg", "smoker": "logreg", "region": "polyreg",
                           "health": "polr"}
    assert imp.where.equals(d.isna())
    for k in range(1, 4):
        c = imp.complete(k)
        assert not c.isna().any().any()
        # observed cells are untouched
        pd.testing.assert_frame_equal(c.where(d.notna()), d.where(d.notna()), check_dtype=False)
        assert set(c["sex"]) == {"f", "m"} and set(c["smoker"]) == {0.0, 1.0}
        assert c["region"].dtype == d["region"].dtype and c["health"].cat.ordered
        # predictive mean matching imputes observed values only
        assert set(c.loc[imp.where["x"], "x"]) <= set(d["x"].dropna())
    chains = imp.chains
    assert len(chains) == 3 * 3 * 6 and set(chains.columns) == {"chain", "iteration", "variable", "mean", "sd"}
    assert chains["mean"].notna().all()


def test_the_same_seed_repeats_the_imputations_and_another_seed_does_not():
    d = _mixed()
    a = cimstats.impute(d, m=2, seed=7, iterations=2)
    b = cimstats.impute(d, m=2, seed=7, iterations=2)
    c = cimstats.impute(d, m=2, seed=8, iterations=2)
    for k in (1, 2):
        pd.testing.assert_frame_equal(a.complete(k), b.complete(k))
    assert not a.complete(1).equals(c.complete(1))
    pd.testing.assert_frame_equal(a.chains, b.chains)
    assert a.seed == 7
    # without a seed, the seed drawn is recorded and repeats the run
    free = cimstats.impute(d, m=2, iterations=2)
    again = cimstats.impute(d, m=2, iterations=2, seed=free.seed)
    pd.testing.assert_frame_equal(free.complete(2), again.complete(2))


def test_methods_can_be_chosen_and_wrong_ones_are_refused():
    d = _mixed()
    imp = cimstats.impute(d, m=2, seed=1, iterations=2, method={"y": "norm", "health": "polyreg", "x": ""})
    assert imp.methods["y"] == "norm" and imp.methods["health"] == "polyreg" and imp.methods["x"] == ""
    assert imp.complete(1)["x"].isna().sum() == d["x"].isna().sum()  # carried unchanged
    assert not set(imp.complete(1).loc[imp.where["y"], "y"]) <= set(d["y"].dropna())  # norm draws new values
    with pytest.raises(ModelSpecificationError, match="region"):
        cimstats.impute(d, m=2, method={"region": "pmm"})
    with pytest.raises(ModelSpecificationError, match="nosuch"):
        cimstats.impute(d, m=2, method={"nosuch": "pmm"})


@pytest.mark.parametrize("m", [1, 0, -3, True, 2.5, "20", 10**9])
def test_fewer_than_two_imputations_are_refused(m):
    with pytest.raises(ModelSpecificationError, match="`m`"):
        cimstats.impute(_mixed(), m=m)


def test_an_all_missing_column_is_refused_with_the_remedy():
    d = _mixed()
    d["empty"] = np.nan
    with pytest.raises(ModelSpecificationError, match="'empty' is missing in all"):
        cimstats.impute(d, m=2, seed=1)
    imp = cimstats.impute(d, m=2, seed=1, iterations=1, method={"empty": ""})
    assert imp.complete(1)["empty"].isna().all()


def test_a_column_of_free_text_is_refused_unless_carried_unchanged():
    d = _mixed(n=60)
    d["comment"] = [f"said thing number {i}" for i in range(60)]
    d.loc[3, "comment"] = None
    with pytest.raises(ModelSpecificationError, match="'comment' is text with 59 different values") as err:
        cimstats.impute(d, m=2, seed=1)
    assert isinstance(err.value, CimstatsError) and isinstance(err.value, ValueError)
    imp = cimstats.impute(d, m=2, seed=1, iterations=1, method={"comment": ""})
    assert imp.complete(2)["comment"].equals(d["comment"])


def test_text_that_looks_like_code_is_only_data():
    d = _mixed(n=80)
    d["sex"] = d["sex"].map({"f": "__import__('os').system('false')", "m": "${HOME}"})
    imp = cimstats.impute(d, m=2, seed=1, iterations=1)
    assert set(imp.complete(1)["sex"]) == {"__import__('os').system('false')", "${HOME}"}


def test_declared_missing_codes_stay_distinguishable_and_the_user_chooses_which_to_impute():
    rng = np.random.default_rng(4)
    n = 200
    x = rng.normal(size=n)
    q = np.round(3 + x + rng.normal(size=n)).clip(1, 5)
    q[:20] = -9  # don't know
    q[20:30] = -8  # not applicable
    q[30:45] = np.nan  # empty
    raw = pd.DataFrame({"x": x, "q": q})
    s = Survey.from_raw(raw, meta={"q": VariableMeta("q", missing_codes=(-9, -8))})
    every = cimstats.impute(s, m=2, seed=1, iterations=2)
    assert (every.missingness["q"].iloc[:30] == "declared").all()
    assert (every.missingness["q"].iloc[30:45] == "system").all()
    assert every.where["q"].iloc[:45].all() and not every.complete(1)["q"].isna().any()
    assert every.codes["q"].iloc[:30].tolist() == [-9] * 20 + [-8] * 10

    dont_know = cimstats.impute(s, m=2, seed=1, iterations=2, impute_codes=[-9])
    c = dont_know.complete(1)["q"]
    assert c.iloc[:20].notna().all() and c.iloc[20:30].isna().all() and c.iloc[30:45].notna().all()
    assert dont_know.summary_table.set_index("variable").loc["q", "n_kept_missing"] == 10

    none = cimstats.impute(s, m=2, seed=1, iterations=2, impute_codes=None)
    assert none.complete(1)["q"].iloc[:30].isna().all() and none.complete(2)["q"].iloc[30:45].notna().all()
    per_var = cimstats.impute(s, m=2, seed=1, iterations=2, impute_codes={"q": [-8]})
    assert per_var.complete(1)["q"].iloc[20:30].notna().all() and per_var.complete(1)["q"].iloc[:20].isna().all()


def test_a_passive_score_is_the_mean_of_its_imputed_items_in_every_completed_set():
    rng = np.random.default_rng(5)
    n = 150
    f = rng.normal(size=n)
    d = pd.DataFrame({f"i{k}": np.round(3 + f + rng.normal(size=n)) for k in (1, 2, 3)})
    d["y"] = f + rng.normal(size=n)
    for c in ("i1", "i2", "i3"):
        d.loc[rng.random(n) < 0.2, c] = np.nan
    imp = cimstats.impute(d, m=3, seed=2, iterations=3, passive={"score": ("mean", ["i1", "i2", "i3"])})
    for k in (1, 2, 3):
        c = imp.complete(k)
        np.testing.assert_allclose(c["score"], c[["i1", "i2", "i3"]].mean(axis=1))
    assert imp.where["score"].equals(d[["i1", "i2", "i3"]].isna().any(axis=1))
    assert imp.methods["score"] == "passive mean of i1, i2, i3"


@pytest.mark.parametrize("rule", ["lambda r: r.i1", ("mean", "i1 + i2"), ("eval", ["i1"]), ("mean", ["nosuch"]),
                                  ("mean", [])])
def test_passive_rules_are_declared_never_code(rule):
    d = pd.DataFrame({"i1": [1.0, 2, np.nan, 4], "i2": [2.0, np.nan, 3, 1]})
    with pytest.raises(ModelSpecificationError, match="passive"):
        cimstats.impute(d, m=2, passive={"s": rule})


def test_cluster_means_keep_the_between_cluster_relation():
    rng = np.random.default_rng(9)
    J, nj = 60, 10
    g = np.repeat(np.arange(J), nj)
    u = rng.normal(size=J)[g]
    d = pd.DataFrame({"school": g, "x": u + rng.normal(size=J * nj)})
    d["y"] = u + 0.3 * d["x"] + rng.normal(size=J * nj)
    d.loc[rng.random(J * nj) < 0.3, "y"] = np.nan
    imp = cimstats.impute(d, m=5, cluster="school", seed=3, iterations=5)
    full = cimstats.impute(d, m=5, seed=3, iterations=5)

    def icc(frame):
        means = frame.groupby("school")["y"].transform("mean")
        return np.var(means) / np.var(frame["y"])

    with_cl = np.mean([icc(imp.complete(k)) for k in range(1, 6)])
    without = np.mean([icc(full.complete(k)) for k in range(1, 6)])
    observed = icc(d.dropna())
    assert abs(with_cl - observed) < abs(without - observed)
    assert imp.methods["school"] == "" and not imp.where["school"].any()
    with pytest.raises(ModelSpecificationError, match="cluster"):
        cimstats.impute(d.assign(school=d["school"].where(d.index > 0)), m=2, cluster="school")


def test_pooling_refuses_fits_with_different_terms_and_results_without_estimates():
    imp = cimstats.impute(_mixed(), m=2, seed=1, iterations=1)
    calls = iter(["y ~ x", "y ~ x + smoker"])
    with pytest.raises(ModelSpecificationError, match="terms"):
        imp.fit(lambda data: ols(next(calls), data))
    with pytest.raises(ModelSpecificationError, match="tidy"):
        imp.fit(lambda data: 42)
    with pytest.raises(ModelSpecificationError, match="verb"):
        imp.fit("lm")


def test_from_long_refuses_what_is_not_long_form():
    long = cimstats.impute(_mixed(n=50), m=2, seed=1, iterations=1).long(include=True)
    assert list(long.columns[:2]) == [".imp", ".id"] and len(long) == 150
    back = Imputations.from_long(long)
    assert back.m == 2 and back.where.sum().sum() > 0
    with pytest.raises(ModelSpecificationError, match="'.imp'"):
        Imputations.from_long(long.drop(columns=".imp"))
    with pytest.raises(ModelSpecificationError, match="at least 2"):
        Imputations.from_long(long[long[".imp"] < 2])
    with pytest.raises(ModelSpecificationError, match="repeats case ids"):
        Imputations.from_long(pd.concat([long, long[long[".imp"] == 1].head(1)]))


def test_coverage_of_a_regression_slope_under_mar_in_a_small_seeded_simulation():
    """50 replications (the benchmark runs 1,000): pooled 95% intervals cover the true slope about 95% of the time."""
    rng = np.random.default_rng(2024)
    covered, estimates = 0, []
    for r in range(50):
        n = 120
        x = rng.normal(size=n)
        z = 0.5 * x + rng.normal(size=n)
        y = 1 + 0.5 * x + 0.5 * z + rng.normal(size=n)
        d = pd.DataFrame({"x": x, "z": z, "y": y})
        # missing at random: x is missing more often when y is large
        d.loc[rng.random(n) < 1 / (1 + np.exp(-(y - 1.5))) * 0.6, "x"] = np.nan
        imp = cimstats.impute(d, m=5, seed=r, iterations=5)
        t = imp.fit(lambda data: sm.OLS(data["y"], sm.add_constant(data[["x", "z"]])).fit()).tidy() \
            .set_index("term").loc["x"]
        covered += t["ci_lower"] <= 0.5 <= t["ci_upper"]
        estimates.append(t["estimate"])
    assert covered >= 43  # at least 86% (a correct method covers 95%; 43 of 50 is its 1st percentile)
    assert abs(np.mean(estimates) - 0.5) < 0.05


def test_the_completed_data_go_to_the_verbs_data_argument_wherever_it_stands():
    seen = []

    def data_first(data, model, *, scale=1.0):
        seen.append((type(data).__name__, model, scale))
        return ols(model, data)

    imp = cimstats.impute(_mixed(n=80), m=2, seed=3, iterations=1)
    pooled = imp.fit(data_first, "y ~ x", scale=2.0)
    assert seen == [("DataFrame", "y ~ x", 2.0)] * 2 and list(pooled.tidy()["term"]) == ["Intercept", "x"]
    assert imp.fit(ols, "y ~ x").tidy()["estimate"].equals(pooled.tidy()["estimate"])


def test_nullable_pandas_types_keep_their_type():
    rng = np.random.default_rng(0)
    n = 100
    d = pd.DataFrame({"a": pd.array(rng.integers(0, 10, n), dtype="Int64"),
                      "b": pd.array(rng.normal(size=n), dtype="Float64"),
                      "c": pd.array(rng.random(n) < 0.5, dtype="boolean"),
                      "s": pd.array(rng.choice(["x", "y", "z"], n), dtype="string")})
    for c in d:
        d.loc[rng.random(n) < 0.2, c] = pd.NA
    imp = cimstats.impute(d, m=2, seed=1, iterations=2)
    c = imp.complete(1)
    assert c.dtypes.to_dict() == d.dtypes.to_dict()
    assert not c.isna().any().any()
    assert imp.methods == {"a": "pmm", "b": "pmm", "c": "logreg", "s": "polyreg"}


def test_declared_codes_of_a_real_spss_file_are_kept_apart_from_empty_cells():
    from conftest import LABELLED, need

    s = cimstats.read_survey(need(LABELLED / "pyreadstat" / "basic_sample_missing.sav"))
    carried = {c: "" for c in ("mychar", "mydate", "dtime", "mytime")}
    kept = cimstats.impute(s, m=2, seed=1, iterations=2, method=carried, impute_codes=None)
    # row 5 holds code -1 in mynum, mylabl and myord; row 6 holds 2500 (a declared range) in mynum,
    # code -3 in myord, and an empty cell in mylabl
    assert kept.missingness.loc[5, ["mynum", "mylabl", "myord"]].tolist() == ["declared"] * 3
    assert kept.missingness.loc[6, ["mynum", "mylabl", "myord"]].tolist() == ["declared", "system", "declared"]
    c = kept.complete(1)
    assert c.loc[5:6, "mynum"].isna().all() and c.loc[5:6, "myord"].isna().all()
    assert c.loc[6, "mylabl"] in (1.0, 2.0) and np.isnan(c.loc[5, "mylabl"])
    assert kept.codes["mynum"].tolist()[5:] == [-1, 2500]
    every = cimstats.impute(s, m=2, seed=1, iterations=2, method=carried)
    assert not every.complete(2)[["mynum", "mylabl", "myord"]].isna().any().any()
    with pytest.raises(ModelSpecificationError, match="mydate"):
        cimstats.impute(s, m=2, seed=1, method={k: v for k, v in carried.items() if k != "mydate"})


def test_the_convergence_plot_draws_every_chain():
    imp = cimstats.impute(_mixed(n=80), m=3, seed=1, iterations=4)
    fig = imp.plot_chains(["x", "region"])
    assert fig.kind == "chains" and len(fig.data) == 3 * 4 * 2
    assert fig.svg().startswith("<?xml") or "<svg" in fig.svg()[:500]
    with pytest.raises(ModelSpecificationError, match="nosuch"):
        imp.plot_chains(["nosuch"])


def test_d3_refuses_unknown_methods_and_fits_it_cannot_evaluate_at_pooled_estimates():
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100)})
    d["y"] = 0.4 * d["x"] + rng.normal(size=100)
    d.loc[rng.random(100) < 0.2, "x"] = np.nan
    imp = cimstats.impute(d, m=3, seed=2, iterations=3)
    with pytest.raises(ModelSpecificationError, match="'D2'"):
        imp.likelihood_ratio(ols, "y ~ x", "y ~ 1", method="D4")
    class NoDesign:  # a result with a log-likelihood but nothing to evaluate it at other coefficients
        def __init__(self, formula, data):
            self._f = smf.ols(formula, data).fit()

        def tidy(self):
            return pd.DataFrame({"term": self._f.params.index, "estimate": self._f.params.to_numpy(),
                                 "std_error": self._f.bse.to_numpy()})

        def glance(self):
            return pd.DataFrame([{"loglik": self._f.llf, "nobs": self._f.nobs}])

    assert imp.likelihood_ratio(NoDesign, "y ~ x", "y ~ 1").iloc[0]["test"] == "D2"
    with pytest.raises(ModelSpecificationError, match="method='D2'"):
        imp.likelihood_ratio(NoDesign, "y ~ x", "y ~ 1", method="D3")
    wls = imp.likelihood_ratio(lambda f, data: smf.wls(f, data, weights=np.arange(1, 101)).fit(), "y ~ x", "y ~ 1",
                               method="D2")
    assert wls.iloc[0]["test"] == "D2"
    with pytest.raises(ModelSpecificationError, match="weighted"):
        imp.likelihood_ratio(lambda f, data: smf.wls(f, data, weights=np.arange(1, 101)).fit(), "y ~ x", "y ~ 1",
                             method="D3")


def test_mediation_bootstrap_is_stacked_over_imputations_around_the_planted_indirect_effect(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    d = pd.DataFrame({"x": rng.normal(size=n)})
    d["m"] = 0.5 * d["x"] + rng.normal(size=n)
    d["y"] = 0.4 * d["m"] + 0.2 * d["x"] + rng.normal(size=n)
    d.loc[rng.random(n) < 0.2, "m"] = np.nan
    d.loc[rng.random(n) < 0.1, "y"] = np.nan
    imp = cimstats.impute(d, m=3, seed=1, iterations=5)
    n_boot = 300
    pooled = imp.fit(cimstats.mediation, x="x", m="m", y="y", n_boot=n_boot, seed=7, sensitivity=False)
    t = pooled.tidy().set_index("term")
    draws = pooled.bootstrap_draws()
    assert len(draws) == imp.m * n_boot and (t["n_resamples"] == imp.m * n_boot).all()
    assert list(draws["imputation"].value_counts().sort_index()) == [n_boot] * imp.m
    ind = t.loc["indirect"]
    assert ind["ci_lower"] < 0.5 * 0.4 < ind["ci_upper"]
    assert ind["ci_method"] == "stacked percentile"
    # the point estimate is Rubin's mean of the per-imputation estimates; each imputation has its own resamples
    fits = [cimstats.mediation(dd, x="x", m="m", y="y", n_boot=n_boot, seed=7 + k, sensitivity=False)
            for k, dd in enumerate(imp.datasets)]
    name = ind.name
    assert ind["estimate"] == pytest.approx(np.mean([f.params[name] for f in fits]), rel=1e-12)
    np.testing.assert_allclose(draws.loc[draws["imputation"] == 2, name], fits[1].bootstrap_draws()[name])
    lo, hi = np.quantile(draws[name], [0.025, 0.975])
    assert (ind["ci_lower"], ind["ci_upper"]) == pytest.approx((lo, hi), rel=1e-12)
    # saved and loaded, the stacked resamples come back
    pooled.save(tmp_path / "med")
    again = cimstats.load_result(tmp_path / "med")
    pd.testing.assert_frame_equal(again.tidy(), pooled.tidy())
    with pytest.raises(ModelSpecificationError, match="mediation"):
        imp.fit(ols, "y ~ x").bootstrap_draws()
