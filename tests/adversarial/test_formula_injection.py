"""Formula injection: offsets, cbind() counts, weights and plan formulas are parsed, never run as code.

Every hostile formula below once reached ``DataFrame.eval(engine="python")``
through ``offset()``; each must now fail with a clean
:class:`~cimstats.errors.CimstatsError` before anything runs, and the marker
file the payload would create must not appear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

import cimstats
from cimstats.errors import CimstatsError, ModelSpecificationError, PlanError
from cimstats.mechanisms import read_mechanism_plan
from cimstats.mechanisms.plan import formula_names
from cimstats.models.formula import MAX_FORMULA_DEPTH, formula_variables, parse_expression

MARK = "pwned"
PAYLOADS = [
    f"@pd.io.common.os.system('touch {MARK}')",
    f"__import__('os').system('touch {MARK}')",
    f"open('{MARK}', 'w').write('x')",
    "x.__class__.__base__.__subclasses__()",
    f"system('touch {MARK}')",
    f"`x` + @os.system('touch {MARK}')",
    "x; import os",
    f"lambda: open('{MARK}', 'w')",
    f"[open('{MARK}', 'w') for i in x]",
    "x" + "+x" * 20 + " if True else 0",
]


def _counts(seed=7, n_groups=12, per=6):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    expo = rng.uniform(1, 5, size=g.size)
    y = rng.poisson(expo * np.exp(0.2 + 0.3 * x + rng.normal(0, 0.4, n_groups)[g]))
    return pd.DataFrame({"y": y, "yb": (y > np.median(y)).astype(int), "x": x, "expo": expo, "g": g})


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / MARK).exists(), "the payload ran"


@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"payload{i}" for i in range(len(PAYLOADS))])
@pytest.mark.parametrize("verb", ["glmm", "gee", "lmm"])
def test_offset_payload_is_refused_by_every_verb(verb, payload, in_tmp):
    d = _counts()
    formula = f"y ~ x + offset({payload}) + (1 | g)"
    kwargs = {"family": "poisson"} if verb != "lmm" else {}
    with pytest.raises(CimstatsError) as err:
        getattr(cimstats, verb)(formula, d, **kwargs)
    assert isinstance(err.value, ModelSpecificationError)
    assert "offset" in str(err.value) and str(err.value).endswith(".")


@pytest.mark.parametrize("where", ["offset_arg", "weights_arg", "cbind", "gee_groups"])
def test_other_expression_inputs_are_refused(where, in_tmp):
    d = _counts()
    payload = PAYLOADS[0]
    with pytest.raises(ModelSpecificationError):
        if where == "offset_arg":
            cimstats.glmm("y ~ x + (1 | g)", d, family="poisson", offset=payload)
        elif where == "weights_arg":
            cimstats.glmm("yb ~ x + (1 | g)", d, weights=payload)
        elif where == "cbind":
            cimstats.glmm(f"cbind(yb, {payload}) ~ x + (1 | g)", d)
        else:
            cimstats.gee("y ~ x", d, family="poisson", groups=f"g) + offset({payload}")


def test_unknown_function_names_the_term_and_the_allowed_functions():
    with pytest.raises(ModelSpecificationError) as err:
        parse_expression("log(expo) + getattr(x, 'y')", where="offset 'log(expo) + getattr(x, 'y')'")
    msg = str(err.value)
    assert "getattr()" in msg and "log()" in msg and "sqrt()" in msg and "exp()" in msg


@pytest.mark.parametrize("text, word", [
    ("(" * (MAX_FORMULA_DEPTH + 5) + "x" + ")" * (MAX_FORMULA_DEPTH + 5), "levels deep"),
    ("-" * (MAX_FORMULA_DEPTH + 5) + "x", "levels deep"),
    ("x" + "^x" * (MAX_FORMULA_DEPTH + 5), "levels deep"),
    ("log(" * (MAX_FORMULA_DEPTH + 5) + "x" + ")" * (MAX_FORMULA_DEPTH + 5), "levels deep"),
    ("+".join(["x"] * 400), "chains more than"),
    ("x" * 20000, "characters"),
], ids=["parentheses", "unary-minus", "powers", "calls", "long-sum", "long-text"])
def test_depth_and_length_are_bounded_with_a_clear_message(text, word):
    with pytest.raises(ModelSpecificationError) as err:
        parse_expression(text)
    assert word in str(err.value)
    with pytest.raises(ModelSpecificationError) as err:
        cimstats.glmm(f"y ~ x + offset({text}) + (1 | g)", _counts(), family="poisson")
    assert word in str(err.value)


def test_offsets_still_computed_and_reused_for_predictions():
    d = _counts()
    a = cimstats.glmm("y ~ x + offset(log(expo)) + (1 | g)", d, family="poisson")
    b = cimstats.glmm("y ~ x + (1 | g)", d, family="poisson", offset=np.log(d["expo"].to_numpy()))
    np.testing.assert_allclose(a.params, b.params, rtol=1e-8)
    # ``**`` is read as ``^``; arithmetic of columns works as before
    c = cimstats.glmm("y ~ x + offset(2 * log(expo**0.5)) + (1 | g)", d, family="poisson")
    np.testing.assert_allclose(a.params, c.params, rtol=1e-8)
    # predictions on new data recompute the offset from the new rows
    np.testing.assert_allclose(a.predict(d, type="link"), a.predict(type="link"), rtol=1e-10)
    e = cimstats.gee("y ~ x + offset(log(expo)) + (1 | g)", d, family="poisson")
    np.testing.assert_allclose(e.predict(d, type="link"), e.predict(type="link"), rtol=1e-10)


def test_plan_checker_reads_variables_from_the_parser():
    assert formula_names("n ~ log10(dose) + I(age^2) + scale_score + offset(log(t)) + (1 | practice_id)") == [
        "n", "dose", "age", "scale_score", "practice_id", "t"]
    assert formula_variables("cbind(k, size - k) ~ C(period) + (1 | herd)") == ["k", "size", "period", "herd"]
    with pytest.raises(ModelSpecificationError):
        formula_names(f"y ~ x + offset({PAYLOADS[0]}) + (1 | g)")


def _mechanism_plan(formula):
    return {"models": {"m1": {"template": "glmm", "family": "poisson", "formula": formula}},
            "hypotheses": [{"id": "H1", "mechanism": "negotiation", "model": "m1", "estimand": "x",
                            "expected": "positive"}]}


@pytest.mark.parametrize("payload", PAYLOADS[:3], ids=["pandas-at", "dunder-import", "open"])
def test_mechanism_plan_with_an_injected_formula_is_refused(payload, in_tmp):
    with pytest.raises(PlanError) as err:
        read_mechanism_plan(_mechanism_plan(f"y ~ x + offset({payload}) + (1 | g)"))
    assert [i.code for i in err.value.report.errors] == ["M019"]
    assert "offset" in err.value.report.errors[0].message


def test_analysis_plan_with_an_injected_formula_is_refused_before_any_work(in_tmp):
    from cimstats.pipeline import demo_plan_path

    doc = yaml.safe_load(demo_plan_path().read_text(encoding="utf-8"))
    doc["mechanisms"]["plan"] = _mechanism_plan(f"y ~ x + offset({PAYLOADS[0]}) + (1 | g)")
    out = in_tmp / "out"
    with pytest.raises(PlanError) as err:
        cimstats.run(doc, out=out)
    assert "M019" in [i.code for i in err.value.report]
    assert not out.exists()



@pytest.mark.parametrize("rhs", [
    "(" * 3000 + "a1" + ")" * 3000,
    "-" * 3000 + "a1",
    "+".join(["a1"] * 3000),
    f"__import__('os').system('touch {MARK}')",
    f"open('{MARK}')",
], ids=["parentheses", "unary-minus", "long-sum", "dunder-import", "open"])
def test_sem_defined_parameters_are_parsed_and_bounded(rhs, in_tmp):
    rng = np.random.default_rng(3)
    f = rng.normal(size=60)
    d = pd.DataFrame({f"i{k}": f + rng.normal(0, 0.5, 60) for k in range(1, 4)})
    with pytest.raises(ModelSpecificationError) as err:
        cimstats.sem(f"F =~ i1 + a1*i2 + i3\nq := {rhs}", d)
    assert "line 2" in str(err.value)
