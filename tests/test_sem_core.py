"""SEM core: syntax, parameter table, errors, planted-truth recovery, invariances, bootstrap."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from cimstats.errors import (
    InadmissibleSolutionWarning, MissingDataWarning, ModelSpecificationError,
)
from cimstats.models._result import OptimizerSummary, ResultSummary
from cimstats.models.sem import invariance, parse_model, sem
from cimstats.models.sem.syntax import Expression
from conftest import REFERENCE

HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


@pytest.fixture(scope="module")
def hs():
    return pd.read_csv(REFERENCE / "data" / "sem_holzinger.csv")


def _cfa_data(n=3000, seed=11, loadings=(1.0, 0.8, 0.6), resid=0.5):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    return pd.DataFrame({f"y{i + 1}": l * f + rng.normal(scale=np.sqrt(resid), size=n)
                         for i, l in enumerate(loadings)})


# --------------------------------------------------------------------------- syntax
def test_parse_modifiers():
    stmts = parse_model(
        "# a comment\n f =~ x1 + a*x2 + start(0.4)*x3 + c(l1, l2)*x4 + NA*x5 ! trailing\n"
        "y ~ 0*x1 +\n  f\n y ~ 1; x1 ~~ x2\n ab := a * 2\n a > 0\n a == l1"
    )
    got = [(s.lhs, s.op, s.rhs) for s in stmts]
    assert ("f", "=~", "x5") in got and ("y", "~", "f") in got and ("y", "~1", "") in got
    by = {(s.lhs, s.op, s.rhs): s for s in stmts}
    assert by[("f", "=~", "x2")].label == ["a"]
    assert by[("f", "=~", "x3")].start == [0.4]
    assert by[("f", "=~", "x4")].label == ["l1", "l2"]
    assert np.isnan(by[("f", "=~", "x5")].fixed[0])
    assert by[("y", "~", "x1")].fixed == [0.0]
    assert [s.op for s in stmts if s.op in (":=", ">", "==")] == [":=", ">", "=="]


@pytest.mark.parametrize("bad, line", [
    ("f =~ x1 + x2\ny | t1", 2),
    ("f =~ x1 + x2\n\ny <~ x1 + x2", 3),
    ("f =~ x1 + + x2", 1),
    ("f =~ x1\nthis is not syntax", 2),
    ("f =~ x1 + x2 + x3\nab := a*b", 2),
    ("f =~ 2x1", 1),
])
def test_syntax_errors_name_the_line(bad, line, hs):
    with pytest.raises(ModelSpecificationError, match=f"line {line}"):
        prep_data = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["x1", "x2", "x3"])
        sem(bad, prep_data.assign(y=prep_data["x1"]))


def test_expression_parser_has_no_eval():
    with pytest.raises(ValueError):
        Expression("__import__('os').system('true')")
    with pytest.raises(ValueError):
        Expression("a +")
    e = Expression("-(a - b)^2 / 4 + sqrt(c)")
    assert e.evaluate({"a": 3.0, "b": 1.0, "c": 9.0}) == pytest.approx(-1.0 + 3.0)


# --------------------------------------------------------------------------- parameter table defaults
def test_partable_defaults(hs):
    t = sem(HS, hs).table
    load = t[t["op"] == "=~"]
    first = load.groupby("lhs").head(1)
    assert (first["free"] == 0).all() and (first["estimate"] == 1).all()
    lvcov = t[(t["op"] == "~~") & t["lhs"].isin(["visual", "textual", "speed"]) & (t["lhs"] != t["rhs"])]
    assert len(lvcov) == 3 and (lvcov["free"] > 0).all()
    t2 = sem(HS, hs, std_lv=True).table
    assert (t2[t2["op"] == "=~"]["free"] > 0).all()
    lvvar = t2[(t2["op"] == "~~") & (t2["lhs"] == t2["rhs"]) & t2["lhs"].isin(["visual", "speed"])]
    assert (lvvar["estimate"] == 1).all() and (lvvar["free"] == 0).all()


def test_general_linear_constraint_matches_shared_label(hs):
    ref = json.loads((REFERENCE / "sem.json").read_text())["cases"]["hs_eq"]
    a = sem("visual =~ x1 + a*x2 + b*x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n2*a - 2*b == 0", hs)
    assert a.fit_measures()["chisq"] == pytest.approx(ref["fit"]["chisq"], rel=1e-6)
    assert a.fit_measures()["df"] == ref["fit"]["df"]
    tid = a.tidy().set_index("term")
    assert tid.loc["visual=~x2", "std_error"] == pytest.approx(
        [r["se"] for r in ref["partable"] if r["rhs"] == "x2" and r["op"] == "=~"][0], rel=1e-4)


def test_bounds_are_respected(hs):
    fit = sem("visual =~ x1 + a*x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\na > 0.7", hs)
    t = fit.tidy().set_index("term")
    assert t.loc["visual=~x2", "estimate"] == pytest.approx(0.7, abs=1e-8)
    # a parameter pinned at a binding inequality has no standard error (as lavaan)
    assert np.isnan(t.loc["visual=~x2", "std_error"]) and np.isnan(t.loc["visual=~x2", "p_value"])
    # binding inequalities do not change the degrees of freedom (as lavaan)
    assert fit.fit_measures()["df"] == 24


def test_inactive_inequality_changes_nothing(hs):
    free = sem(HS, hs)
    fit = sem("visual =~ x1 + a*x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\na > 0", hs)
    assert fit.fit_measures()["chisq"] == pytest.approx(free.fit_measures()["chisq"], rel=1e-9)
    np.testing.assert_allclose(fit.tidy()["std_error"], free.tidy()["std_error"], rtol=1e-6)


def test_nonlinear_constraint_holds_and_bootstrap_respects_constraints(hs):
    model = ("visual =~ x1 + a1*x2 + b1*x3\ntextual =~ x4 + a2*x5 + b2*x6\nspeed =~ x7 + x8 + x9\n"
             "a1*b1 == a2*b2\nb2 < 0.8")
    fit = sem(model, hs)
    est = fit.tidy().set_index("term")["estimate"]
    assert est["visual=~x2"] * est["visual=~x3"] == pytest.approx(est["textual=~x5"] * est["textual=~x6"], abs=1e-9)
    assert est["textual=~x6"] == pytest.approx(0.8, abs=1e-8)
    assert fit.fit_measures()["df"] == 25
    bs = fit.bootstrap(20, seed=3, client="process")
    reps = pd.DataFrame(bs.replicates, columns=bs.table["term"])
    assert np.all(reps["textual=~x6"] <= 0.8 + 1e-7)
    np.testing.assert_allclose(reps["visual=~x2"] * reps["visual=~x3"],
                               reps["textual=~x5"] * reps["textual=~x6"], atol=1e-7)


def test_infeasible_constraints_warn(hs):
    from cimstats.errors import ConvergenceWarning

    with pytest.warns(ConvergenceWarning):
        sem("visual =~ x1 + a*x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\na > 1\na < 0.5", hs)


# --------------------------------------------------------------------------- errors
def test_non_numeric_column(hs):
    with pytest.raises(ModelSpecificationError, match="school"):
        sem("f =~ x1 + x2 + school", hs)


def _one_sentence(msg: str) -> bool:
    import re

    return msg.endswith(".") and not re.search(r"[.;]\s+[A-Z][a-z]", msg)


@pytest.mark.parametrize("model, kw, match", [
    ("f =~ x1 + x2", {}, "4 free parameters but the data give only 3"),
    ("f =~ NA*x1 + x2 + x3 + x4", {}, r"not identified.*'f =~ x1'"),
    ("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5\nspeed =~ x7 + x8 + x9\n"
     "textual ~~ 0*visual\ntextual ~~ 0*speed", {}, r"not identified.*textual"),
])
def test_unidentified_model(hs, model, kw, match):
    with pytest.raises(ModelSpecificationError, match=match) as e:
        sem(model, hs, **kw)
    assert _one_sentence(str(e.value)), str(e.value)


@pytest.mark.parametrize("extra, kw, match", [
    ({"x10": "x1+x2"}, {}, r"not positive definite \(x1, x2, x10 are"),
    ({"x10": "x1+x2"}, {"missing": "fiml"}, "not positive definite"),
    ({"x10": "const"}, {}, "Variable 'x10' is constant"),
    ({"x10": "const"}, {"missing": "fiml"}, "Variable 'x10' is constant"),
    ({"x10": "const_pasteur"}, {"group": "school"}, "constant .* in group 'Pasteur'"),
])
def test_non_positive_definite_data(hs, extra, kw, match):
    d = hs.copy()
    rule = extra["x10"]
    d["x10"] = {"x1+x2": hs["x1"] + hs["x2"], "const": 1.0,
                "const_pasteur": np.where(hs["school"] == "Pasteur", 2.0, hs["x3"])}[rule]
    with pytest.raises(ModelSpecificationError, match=match) as e:
        sem("f =~ x1 + x2 + x10", d, **kw)
    assert _one_sentence(str(e.value)), str(e.value)


def test_fewer_rows_than_variables(hs):
    with pytest.raises(ModelSpecificationError, match="5 rows for 9 variables") as e:
        sem(HS, hs.head(5))
    assert _one_sentence(str(e.value))


@pytest.mark.parametrize("model, kw, match", [
    ("f =~ x1 + x2 + x99", {}, "x99"),
    ("f =~ x1 + x2 + x3\nf ~ ses", {}, "ses, which is not a column"),
    (HS, {"group": "country"}, "`group=` is 'country'"),
    (HS, {"cluster": "practice", "estimator": "MLR"}, "`cluster=` is 'practice'"),
])
def test_variables_not_in_data(hs, model, kw, match):
    with pytest.raises(ModelSpecificationError, match=match) as e:
        sem(model, hs, **kw)
    assert _one_sentence(str(e.value)), str(e.value)


def test_empty_groups(hs):
    unused = hs.assign(school=pd.Categorical(hs["school"], categories=["Pasteur", "Grant-White", "Other"]))
    with pytest.raises(ModelSpecificationError, match="Group 'Other' .* has no rows") as e:
        sem(HS, unused, group="school")
    assert _one_sentence(str(e.value))
    gone = hs.assign(x3=np.where(hs["school"] == "Pasteur", np.nan, hs["x3"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        with pytest.raises(ModelSpecificationError, match="'Pasteur' .* keeps 0 of 156 rows .*x3") as e:
            sem(HS, gone, group="school")
        assert _one_sentence(str(e.value))
        with pytest.raises(ModelSpecificationError, match="'x3' has no observed value in group 'Pasteur'"):
            sem(HS, gone, group="school", missing="fiml")
    solo = hs.assign(school=np.where(np.arange(len(hs)) == 0, "Solo", hs["school"]))
    with pytest.raises(ModelSpecificationError, match="'Solo' .* has 1 row"):
        sem(HS, solo, group="school")
    with pytest.raises(ModelSpecificationError, match="`data` has no rows"):
        sem(HS, hs.iloc[:0])


def test_listwise_deletion_is_counted(hs):
    d = hs.copy()
    d.loc[:9, "x1"] = np.nan
    with pytest.warns(MissingDataWarning, match="10 of 301"):
        fit = sem(HS, d)
    assert fit.nobs == 291 and fit.n_dropped == 10
    assert "listwise" in next(iter(fit.dropped_reasons))
    assert fit.dropped.to_dict("list") == {"variable": ["x1"], "n_missing": [10]}


def test_heywood_case_warns():
    corr = np.array([[1, .8, .8], [.8, 1, .5], [.8, .5, 1]])
    rng = np.random.default_rng(5)
    d = pd.DataFrame(rng.multivariate_normal(np.zeros(3), corr, size=2000), columns=["a", "b", "c"])
    with pytest.warns(InadmissibleSolutionWarning, match="negative"):
        sem("f =~ a + b + c", d)


# --------------------------------------------------------------------------- planted truth and invariances
def test_planted_truth_recovery():
    d = _cfa_data(n=4000)
    fit = sem("f =~ y1 + y2 + y3", d)
    t = fit.tidy().set_index("term")
    for term, truth in (("f=~y2", 0.8), ("f=~y3", 0.6), ("y1~~y1", 0.5), ("f~~f", 1.0)):
        assert abs(t.loc[term, "estimate"] - truth) < 4 * t.loc[term, "std_error"], term


@settings(max_examples=15, deadline=None)
@given(k=st.floats(0.2, 20.0), shift=st.floats(-50, 50))
def test_rescaling_an_indicator(k, shift):
    d = _cfa_data(n=400, seed=3, loadings=(1.0, 0.8, 0.6, 0.7))
    base = sem("f =~ y1 + y2 + y3 + y4", d, meanstructure=True)
    d2 = d.assign(y3=d["y3"] * k + shift)
    alt = sem("f =~ y1 + y2 + y3 + y4", d2, meanstructure=True)
    tb, ta = base.tidy().set_index("term"), alt.tidy().set_index("term")
    assert alt.fit_measures()["chisq"] == pytest.approx(base.fit_measures()["chisq"], rel=1e-5, abs=1e-7)
    assert ta.loc["f=~y3", "estimate"] == pytest.approx(k * tb.loc["f=~y3", "estimate"], rel=1e-5)
    assert ta.loc["f=~y3", "std_all"] == pytest.approx(tb.loc["f=~y3", "std_all"], rel=1e-5)


def test_std_lv_and_marker_give_same_fit(hs):
    a, b = sem(HS, hs), sem(HS, hs, std_lv=True)
    assert a.fit_measures()["chisq"] == pytest.approx(b.fit_measures()["chisq"], rel=1e-7)
    np.testing.assert_allclose(a.tidy()["std_all"], b.tidy()["std_all"], rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- invariance and bootstrap
def test_invariance_table_columns(hs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inv = invariance(HS, hs, group="school", steps=("configural", "metric"))
    assert list(inv.table["model"]) == ["configural", "metric"]
    for col in ("chisq_diff", "df_diff", "p_diff", "delta_cfi", "delta_rmsea"):
        assert col in inv.table
    assert inv.table["df_diff"].iloc[1] == 6


@pytest.fixture(scope="module")
def mediation():
    rng = np.random.default_rng(9)
    n = 600
    x = rng.normal(size=n)
    m = 0.5 * x + rng.normal(size=n)
    y = 0.4 * m + 0.2 * x + rng.normal(size=n)
    practice = np.repeat(np.arange(60), 10)
    d = pd.DataFrame({"x": x, "m": m, "y": y, "practice": practice, "area": practice % 3})
    return d


MED = "m ~ a*x\ny ~ b*m + c*x\nab := a*b\ntotal := c + a*b"


def test_bootstrap_agrees_with_delta_method_and_is_reproducible(mediation):
    fit = sem(MED, mediation)
    b1 = fit.bootstrap(300, seed=4, client="process")
    with pytest.warns(DeprecationWarning, match="client="):
        b2 = fit.bootstrap(300, seed=4, n_jobs=1)
    np.testing.assert_array_equal(b1.replicates, b2.replicates)
    t = b1.table.set_index("term")
    d = fit.tidy().set_index("term")
    for term in ("m~x", "y~m", "ab:=a*b"):
        assert t.loc[term, "boot_se"] == pytest.approx(d.loc[term, "std_error"], rel=0.2)
        assert t.loc[term, "bca_lower"] < t.loc[term, "estimate"] < t.loc[term, "bca_upper"]
        assert t.loc[term, "std_all_ci_lower"] < d.loc[term, "std_all"] < t.loc[term, "std_all_ci_upper"]
    assert b1.n_failed == 0


def test_cluster_bootstrap_within_strata(mediation):
    fit = sem(MED, mediation, estimator="MLR", cluster="practice")
    bs = fit.bootstrap(200, seed=2, client="process", strata="area", data=mediation)
    t = bs.table.set_index("term")
    assert bs.cluster == "practice"
    assert t.loc["ab:=a*b", "boot_se"] == pytest.approx(fit.tidy().set_index("term").loc["ab:=a*b", "std_error"], rel=0.3)


def test_summary_formats_and_glance(hs):
    fit = sem("vis_ual =~ x1 + x2 + x3", hs)
    s = fit.summary()
    assert isinstance(s, ResultSummary) and "Chi-square" in str(s)
    assert r"vis\_ual =\textasciitilde{} x1" in s.to_latex()
    assert "<table" in s.to_html() and "| vis\\_ual =\\~ x1 |" in s.to_markdown()
    g = fit.glance()
    assert g.loc[0, "nobs"] == 301 and g.loc[0, "df"] == 0 and "p_value" in g.columns and "pvalue" not in g.columns
    with pytest.raises(ValueError):
        fit.summary("pdf")


@pytest.mark.parametrize("fmt, method", [("text", "to_text"), ("html", "to_html"), ("latex", "to_latex"),
                                         ("markdown", "to_markdown")])
def test_summary_format_keyword_is_deprecated(hs, fmt, method):
    fit = sem("visual =~ x1 + x2 + x3", hs)
    with pytest.warns(DeprecationWarning, match="summary\\(format"):
        text = fit.summary(fmt)
    assert text == getattr(fit.summary(), method)()


def test_tidy_level_and_deprecated_conf_level(hs):
    fit = sem(HS, hs)
    t90 = fit.tidy(level=0.9)
    free = t90["std_error"] > 0
    q = stats.norm.ppf(0.95)
    np.testing.assert_allclose(t90.loc[free, "ci_upper"], t90.loc[free, "estimate"] + q * t90.loc[free, "std_error"],
                               rtol=1e-12)
    with pytest.warns(DeprecationWarning, match="conf_level"):
        old = fit.tidy(conf_level=0.9)
    pd.testing.assert_frame_equal(old, t90)
    with pytest.raises(ValueError, match="level"):
        fit.tidy(level=95)
    with pytest.raises(TypeError):
        fit.tidy(0.9)  # keyword-only


def test_model_first_then_data(hs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = sem(HS, hs)
        inv_new = invariance(HS, hs, group="school", steps=("configural", "metric"))
    with pytest.warns(DeprecationWarning, match=r"sem\(data, model\) is deprecated"):
        old = sem(hs, HS)
    pd.testing.assert_frame_equal(old.tidy(), new.tidy())
    with pytest.warns(DeprecationWarning, match=r"invariance\(data, model\) is deprecated"):
        inv_old = invariance(hs, HS, group="school", steps=("configural", "metric"))
    pd.testing.assert_frame_equal(inv_old.table, inv_new.table)
    # everything after the data is keyword-only
    with pytest.raises(TypeError):
        sem(HS, hs, "school")
    with pytest.raises(TypeError):
        invariance(HS, hs, "school")
    with pytest.raises(ModelSpecificationError, match="`model` is a DataFrame"):
        sem(hs, hs)


def test_optimizer_summary_and_dropped_shape(hs):
    fit = sem(HS, hs)
    op = fit.optimizer
    assert isinstance(op, OptimizerSummary) and op.converged and op.iterations > 0
    assert op.evaluations >= op.iterations and op.gradient_norm < 1e-6
    assert len(op.final) == len(op.start) == len(fit.params)
    assert list(fit.dropped.columns) == ["variable", "n_missing"] and len(fit.dropped) == 0


@pytest.mark.parametrize("equal, extra_df", [
    (("lv.variances",), 3), (("lv.covariances",), 3), (("residuals",), 9),
    (("loadings", "lv.variances", "lv.covariances"), 12),
])
def test_group_equal_types_add_constraints(hs, equal, extra_df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = sem(HS, hs, group="school")
        eq = sem(HS, hs, group="school", group_equal=equal)
    assert eq.fit_measures()["df"] - free.fit_measures()["df"] == extra_df
    assert eq.fit_measures()["chisq"] >= free.fit_measures()["chisq"] - 1e-8


def test_group_specific_fixed_values(hs):
    fit = sem("visual =~ x1 + c(1, NA)*x2 + x3\ntextual =~ x4 + x5 + x6", hs, group="school")
    t = fit.tidy().set_index(["term", "group"])
    assert t.loc[("visual=~x2", 1), "estimate"] == 1.0 and t.loc[("visual=~x2", 1), "std_error"] == 0
    assert t.loc[("visual=~x2", 2), "std_error"] > 0


def test_wrong_number_of_group_values(hs):
    with pytest.raises(ModelSpecificationError, match="line 1.*one value per group"):
        sem("visual =~ x1 + c(a, b, c)*x2 + x3", hs, group="school")
