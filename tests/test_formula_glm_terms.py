"""One formula front end: offset() terms, cbind() outcomes, I(), log10() and factor() read by the parser.

The mechanism plan checker, ``glmm`` and ``gee`` take their variables from the
parsed formula (``parse_formula(..., glm_terms=True)``), not from the text: the
same model written with derived terms or with explicit columns gives the same
fit, a ``groups=`` cluster joins the parsed formula, and a misplaced or unknown
function is named together with the formula.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import MissingDataWarning, ModelSpecificationError, PlanError
from cimstats.mechanisms import read_mechanism_plan
from cimstats.mechanisms.plan import formula_names
from cimstats.models.formula import build_design, formula_variables, parse_formula


def _data(seed=11, n_groups=40, per=8):
    """Counts with exposure, binomial successes/failures and a binary outcome in clusters ``g``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    n = g.size
    u = rng.normal(0, 0.5, n_groups)[g]
    x = rng.normal(size=n)
    dose = rng.uniform(1, 100, n)
    age = rng.uniform(2, 8, n)
    t = rng.uniform(0.5, 4, n)
    size = rng.integers(2, 9, n)
    s = rng.binomial(size, 1 / (1 + np.exp(-(-0.3 + 0.5 * x + 0.1 * x ** 2 + u))))
    return pd.DataFrame({
        "n": rng.poisson(t * np.exp(-1 + 0.4 * np.log10(dose) + 0.02 * (age - 5) ** 2 + u)).astype(float),
        "dose": dose, "age": age, "t": t, "x": x, "s": s.astype(float), "f": (size - s).astype(float),
        "size": size, "grp": rng.choice(["a", "b", "c"], n),
        "yb": rng.binomial(1, 1 / (1 + np.exp(-(0.2 + 0.6 * x + u)))), "g": g,
    })


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ---- the parser ----------------------------------------------------------------------------

def test_parser_reads_offsets_and_cbind_as_parts_of_the_formula():
    f = "cbind(s, size - s) ~ log10(dose) + I(x^2) + offset(log(t)) + as.factor(grp) + offset(age / 10) + (1 | g)"
    spec = parse_formula(f, glm_terms=True)
    assert spec.response_text == "cbind(s, size - s)"
    assert [e.text for e in spec.cbind] == ["s", "size - s"]
    assert [e.columns for e in spec.cbind] == [["s"], ["size", "s"]]
    assert [e.text for e in spec.offsets] == ["log(t)", "age / 10"]
    assert [t.label for t in spec.fixed_terms] == ["log10(dose)", "I(x^2)", "as.factor(grp)"]
    assert spec.variables() == ["s", "size", "dose", "x", "grp", "g", "t", "age"]
    # only offsets on the right keep the intercept, as in R
    only = parse_formula("n ~ offset(log(t)) + (1 | g)", glm_terms=True)
    assert only.fixed_terms == () and only.intercept and [e.text for e in only.offsets] == ["log(t)"]


@pytest.mark.parametrize("formula, word", [
    ("n ~ x:offset(t) + (1 | g)", "a term of its own"),
    ("n ~ x - offset(t) + (1 | g)", "a term of its own"),
    ("n ~ (x + offset(t)) * grp + (1 | g)", "a term of its own"),
    ("yb ~ cbind(s, f) + (1 | g)", "on the left of '~'"),
    ("n ~ x + offset(t, x) + (1 | g)", "gives offset() 2 arguments"),
    ("cbind(s, f, s) ~ x + (1 | g)", "expected two"),
])
def test_misplaced_offset_and_cbind_are_named_with_the_formula(formula, word):
    with pytest.raises(ModelSpecificationError) as err:
        parse_formula(formula, glm_terms=True)
    assert word in str(err.value) and repr(formula) in str(err.value)


def test_without_glm_terms_offset_and_cbind_are_refused_as_for_lmm():
    for f in ("y ~ x + offset(t) + (1 | g)", "cbind(s, f) ~ x + (1 | g)"):
        with pytest.raises(ModelSpecificationError, match="not supported"):
            parse_formula(f)


def test_cbind_outcome_needs_the_values_from_the_caller():
    d = _data()
    spec = parse_formula("cbind(s, f) ~ x + (1 | g)", glm_terms=True)
    with pytest.raises(ModelSpecificationError, match="only glmm"):
        build_design(spec, d)
    p = (d["s"] / (d["s"] + d["f"])).to_numpy()
    frame = build_design(spec, d, response=p)
    np.testing.assert_array_equal(frame.y, p)
    ref = build_design(parse_formula("p ~ x + (1 | g)"), d.assign(p=p))
    np.testing.assert_array_equal(frame.X, ref.X)
    assert frame.fixed_names == ref.fixed_names


# ---- the mechanism plan checker ------------------------------------------------------------

def _plan(models):
    hyps = [{"id": f"H{i}", "mechanism": "negotiation", "model": m, "estimand": "x", "expected": "positive"}
            for i, m in enumerate(models, start=1)]
    return {"models": models, "hypotheses": hyps}


def test_plan_formulas_with_functions_pass_and_list_exactly_their_variables():
    models = {
        "rates": {"template": "glmm", "family": "poisson",
                  "formula": "n ~ log10(dose) + I(age^2) + offset(log(t)) + (1 | practice_id)"},
        "props": {"template": "glmm", "formula": "cbind(s, f) ~ I(x^2) + factor(grp) + (1 | practice_id)"},
        "lin": {"template": "lmm", "formula": "log10(y) ~ I(x^2) + as.factor(sex) + (1 | practice_id/ego)"},
    }
    plan = read_mechanism_plan(_plan(models))
    assert plan.required_variables("rates") == ["n", "dose", "age", "practice_id", "t"]
    assert plan.required_variables("props") == ["s", "f", "x", "grp", "practice_id"]
    assert plan.required_variables("lin") == ["y", "x", "sex", "practice_id", "ego"]
    assert plan.hypotheses["required_variables"].tolist() == [
        "n;dose;age;practice_id;t", "s;f;x;grp;practice_id", "y;x;sex;practice_id;ego"]
    # function names are never variables
    names = set(formula_variables(models["rates"]["formula"])) | set(formula_variables(models["props"]["formula"]))
    assert not names & {"log10", "I", "offset", "log", "cbind", "factor"}


def test_lmm_plan_formula_with_offset_or_cbind_is_reported():
    models = {"m1": {"template": "lmm", "formula": "y ~ x + offset(log(t)) + (1 | g)"},
              "m2": {"template": "lmm", "formula": "cbind(s, f) ~ x + (1 | g)"},
              "m3": {"template": "glmm", "formula": "cbind(s, f) ~ x + offset(log(t)) + (1 | g)"}}
    with pytest.raises(PlanError) as err:
        read_mechanism_plan(_plan(models))
    found = [(i.code, i.message.split(" has a formula")[0]) for i in err.value.report.errors]
    assert found == [("M019", "model 'm1'"), ("M019", "model 'm2'")]
    assert formula_names("y ~ x + offset(log(t)) + (1 | g)") == ["y", "x", "g", "t"]


def test_unknown_function_in_a_plan_formula_names_the_formula():
    formula = "n ~ log10(dose) + spline(age) + (1 | g)"
    with pytest.raises(PlanError) as err:
        read_mechanism_plan(_plan({"m1": {"template": "glmm", "family": "poisson", "formula": formula}}))
    (issue,) = err.value.report.errors
    assert issue.code == "M019" and repr(formula) in issue.message and "spline()" in issue.message


# ---- glmm and gee: the same fits whether terms are derived or given as columns --------------

#: the same model fitted from the same numbers; only the order of floating-point sums may differ
SAME = dict(rtol=1e-8, atol=1e-10)


def _same_fit(a, b, names=True):
    assert not names or list(a.params.index) == list(b.params.index)
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), **SAME)
    np.testing.assert_allclose(a.std_errors.to_numpy(), b.std_errors.to_numpy(), **SAME)
    assert a.nobs == b.nobs


def test_glmm_derived_terms_and_offset_equal_explicit_columns():
    d = _data()
    a = cimstats.glmm("n ~ log10(dose) + I(age^2) + offset(log(t)) + (1 | g)", d, family="poisson")
    e = d.assign(ld=np.log10(d["dose"]), a2=d["age"] ** 2, lt=np.log(d["t"]))
    b = cimstats.glmm("n ~ ld + a2 + offset(lt) + (1 | g)", e, family="poisson")
    c = cimstats.glmm("n ~ ld + a2 + (1 | g)", e, family="poisson", offset="lt")
    _same_fit(a, b, names=False)
    _same_fit(b, c)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    assert list(a.params.index) == ["(Intercept)", "log10(dose)", "I(age^2)"]
    np.testing.assert_allclose(a.predict(d, type="link"), b.predict(e, type="link"), **SAME)


def test_glmm_cbind_equals_proportion_with_trials():
    d = _data()
    d.loc[[8, 9], "s"] = np.nan
    with pytest.warns(MissingDataWarning):
        a = cimstats.glmm("cbind(s, f) ~ x + I(x^2) + (1 | g)", d)
    e = d.assign(p=d["s"] / (d["s"] + d["f"]), trials=d["s"] + d["f"], x2=d["x"] ** 2)
    b = _quiet(cimstats.glmm, "p ~ x + x2 + (1 | g)", e, weights="trials")
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), **SAME)
    np.testing.assert_allclose(a.std_errors.to_numpy(), b.std_errors.to_numpy(), **SAME)
    assert a.response == "cbind(s, f)" and a.nobs == b.nobs == len(d) - 2


def test_gee_groups_joins_the_parsed_formula():
    d = _data()
    bar = cimstats.gee("n ~ log10(dose) + I(age^2) + offset(log(t)) + (1 | g)", d, family="poisson")
    grp = cimstats.gee("n ~ log10(dose) + I(age^2) + offset(log(t))", d, family="poisson", groups="g")
    _same_fit(bar, grp)
    assert grp.cluster == "g" and grp.n_clusters == bar.n_clusters == 40
    # any column name works as a cluster, including one a formula would need quoting for
    odd = cimstats.gee("n ~ log10(dose) + I(age^2) + offset(log(t))", d.rename(columns={"g": "clinic `a` | b"}),
                       family="poisson", groups="clinic `a` | b")
    _same_fit(bar, odd)


def test_gee_groups_that_is_not_a_column_is_named():
    with pytest.raises(ModelSpecificationError) as err:
        cimstats.gee("yb ~ x", _data(), groups="clinic")
    msg = str(err.value)
    assert msg.startswith("`groups` is 'clinic', which is not a column of `data`") and msg.endswith(".")


def test_glmm_errors_name_the_formula_as_written():
    d = _data()
    for formula, word in [("cbind(s, f) ~ nope + (1 | g)", "'nope'"),
                          ("n ~ foo(x) + offset(log(t)) + (1 | g)", "foo()"),
                          ("n ~ x + offset(foo(t)) + (1 | g)", "foo()"),
                          ("cbind(foo(s), f) ~ x + (1 | g)", "foo()")]:
        with pytest.raises(ModelSpecificationError) as err:
            cimstats.glmm(formula, d, family="poisson" if formula.startswith("n") else "binomial")
        msg = str(err.value)
        assert repr(formula) in msg and word in msg, msg
        assert "glmm_response__" not in msg
    with pytest.raises(ModelSpecificationError) as err:
        cimstats.gee("yb ~ spline(x) + (1 | g)", d)
    assert "'yb ~ spline(x) + (1 | g)'" in str(err.value) and "spline()" in str(err.value)


def test_missing_cbind_counts_are_set_aside_once_under_the_outcome():
    d = _data()
    d.loc[[8, 9], "s"] = np.nan
    d["w"] = 1.0
    d.loc[[20], "w"] = np.nan
    with pytest.warns(MissingDataWarning) as caught:
        a = cimstats.glmm("cbind(s, f) ~ x + (1 | g)", d)
    assert a.n_dropped == 2 and a.dropped_by_column == {"cbind(s, f)": 2}
    assert "(cbind(s, f): 2)" in str(caught[0].message)
    with pytest.warns(MissingDataWarning):
        b = cimstats.glmm("cbind(s, f) ~ x + (1 | g)", d, weights="w")
    assert b.n_dropped == 3 and b.dropped_by_column == {"weights": 1, "cbind(s, f)": 2}
