"""Two-level SEM extensions against lavaan 0.6-14: standardized solution per level, labels and
constraints across levels, defined parameters, and robust ML (MLR).

References: tests/reference/sem_twolevel_extensions.R (writes sem_twolevel_extensions.json; the data are
those of tests/reference/sem_twolevel.R). Estimates, standard errors and standardized solutions are
lavaan's with a tight optimiser. The chi-square and the measures built on it, and under MLR the
saturated-model part of the Yuan-Bentler trace, are compared with lavaan's numbers recomputed (by lavaan's
own functions, in the R script) from its saturated-model EM run to convergence ("fit_h1_converged").
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cimstats.errors import ModelSpecificationError
from cimstats.models.sem import TwoLevelResult, sem
from conftest import REFERENCE

REF = json.loads((REFERENCE / "sem_twolevel_extensions.json").read_text())
MODELS = sorted(REF["models"])
TOL = 1e-4
KEYS = ["lhs", "op", "rhs", "level"]
# lavaan's cluster scores leave out the within-level mean of the variables measured at both levels; that
# mean is zero unless within-only covariates with non-zero means are regressed on (demo_doc: x1-x3, means
# about 0.01), where cimstats' exact scores differ from lavaan's by ~1e-4 (relative) for those regressions.
# This moves that model's MLR standard errors by ~5e-6, its Yuan-Bentler trace by ~1e-3 and its scaled
# chi-square by ~1e-3 (with the covariates centred, lavaan's trace and cimstats' agree to 3e-7). The other
# models agree to TOL.
SCALED_TOL = {"demo_doc_mlr": 2e-3}


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / f"sem_twolevel_{name}.csv.gz")


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name in MODELS:
        m = REF["models"][name]
        out[name] = sem(m["model"], _data(m["data"]), cluster=m["cluster"], estimator=m["estimator"])
    return out


def _merge(ref: pd.DataFrame, mine: pd.DataFrame) -> pd.DataFrame:
    # defined parameters: lavaan writes the expression without spaces
    mine = mine.assign(rhs=[r.replace(" ", "") if o == ":=" else r for o, r in zip(mine["op"], mine["rhs"])])
    merged = ref.merge(mine, on=KEYS, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    return merged


@pytest.mark.parametrize("name", MODELS)
def test_estimates_and_standard_errors_match_lavaan(fits, name):
    m = REF["models"][name]
    merged = _merge(pd.DataFrame(m["params"]), fits[name].tidy())
    np.testing.assert_allclose(merged["estimate"], merged["est"], rtol=0, atol=TOL)
    np.testing.assert_allclose(merged["std_error"], merged["se"], rtol=0, atol=TOL)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kind", ["std.all", "std.lv"])
def test_standardized_solution_matches_lavaan(fits, name, kind):
    m = REF["models"][name]
    ref = pd.DataFrame(m[kind.replace(".", "_")])
    merged = _merge(ref, fits[name].standardized_solution(kind))
    np.testing.assert_allclose(merged["estimate"], merged["est"], rtol=0, atol=TOL)
    np.testing.assert_allclose(merged["std_error"], merged["se"], rtol=0, atol=TOL)
    # the same numbers in tidy()
    t = fits[name].tidy()
    col = kind.replace(".", "_")
    np.testing.assert_array_equal(t[col].to_numpy(), fits[name].standardized_solution(kind)["estimate"].to_numpy())


@pytest.mark.parametrize("name", MODELS)
def test_fit_measures_match_lavaan(fits, name):
    m = REF["models"][name]
    fm = fits[name].fit_measures()
    for key in ("npar", "df", "baseline.df", "ntotal", "logl", "aic", "bic"):
        assert fm[key] == pytest.approx(m["fit"][key], abs=TOL), key
    tol = SCALED_TOL.get(name, TOL)
    for key, value in m["fit_h1_converged"].items():
        scaled = ".scaled" in key or "scaling" in key or ".robust" in key
        assert fm[key] == pytest.approx(value, abs=tol if scaled else TOL, rel=1e-6), key


def test_mlr_reports_what_lavaan_reports(fits):
    fit = fits["demo_misfit_mlr"]
    g = fit.glance().iloc[0]
    assert g["estimator"] == "MLR"
    for col in ("chisq_scaled", "p_value_scaled", "cfi_robust", "tli_robust", "rmsea_robust"):
        assert np.isfinite(g[col]), col
    text = str(fit.summary())
    assert "Yuan-Bentler" in text and "fitted by MLR" in text
    # ML and MLR share the estimates, not the standard errors
    ml = sem(REF["models"]["demo_misfit_mlr"]["model"], _data("demo"), cluster="cluster")
    assert ml.glance().iloc[0]["estimator"] == "ML" and "chisq_scaled" not in ml.glance()
    np.testing.assert_allclose(ml.tidy()["estimate"], fit.tidy()["estimate"], atol=1e-6)
    assert not np.allclose(ml.tidy()["std_error"], fit.tidy()["std_error"], atol=1e-4)


def test_constraints_hold_and_defined_parameters_are_listed(fits):
    fit = fits["efficacy_constraints"]
    t = fit.tidy().set_index(["lhs", "op", "rhs", "level"])["estimate"]
    assert t[("efficacy_b", "=~", "ce2", 2)] == pytest.approx(t[("efficacy_w", "=~", "ce2", 1)], abs=1e-12)
    assert t[("efficacy_b", "=~", "ce3", 2)] == pytest.approx(t[("efficacy_w", "=~", "ce3", 1)] + 0.2, abs=1e-10)
    d = fit.defined()
    assert list(d["lhs"]) == ["effect"] and list(d["level"]) == [0]
    eq = fits["demo_equal_loadings"].tidy().set_index(["lhs", "op", "rhs", "level"])["estimate"]
    assert eq[("fw", "=~", "y2", 1)] == eq[("fb", "=~", "y2", 2)]
    assert "Defined parameters" in str(fits["demo_equal_loadings"].summary())


def test_saved_result_keeps_standardized_defined_and_robust(fits, tmp_path):
    from cimstats import load_result
    for name in ("demo_equal_loadings", "efficacy_mlr"):
        fit = fits[name]
        fit.save(tmp_path / name)
        again = load_result(tmp_path / name)
        assert isinstance(again, TwoLevelResult) and again.estimator == fit.estimator
        pd.testing.assert_frame_equal(again.standardized_solution(), fit.standardized_solution())
        pd.testing.assert_frame_equal(again.glance(), fit.glance())


def test_unsupported_constraints_are_refused():
    d = _data("efficacy")
    base = "level: 1\n f_w =~ ce1 + a*ce2 + ce3 + ce4\nlevel: 2\n f_b =~ ce1 + b*ce2 + ce3 + ce4\n"
    with pytest.raises(ModelSpecificationError, match="inequality constraints"):
        sem(base + " a > 0.5\n", d, cluster="neighbourhood")
    with pytest.raises(ModelSpecificationError, match="non-linear equality"):
        sem(base + " a == b*b\n", d, cluster="neighbourhood")
    with pytest.raises(ModelSpecificationError, match="label no parameter of either level"):
        sem(base + " c := a * zz\n", d, cluster="neighbourhood")
    with pytest.raises(ModelSpecificationError, match="label no parameter of either level"):
        sem(base + " a == zz\n", d, cluster="neighbourhood")
    with pytest.raises(ModelSpecificationError, match="already a label"):
        sem(base + " a := 2 * b\n", d, cluster="neighbourhood")


def test_result_saved_before_standardized_columns_still_reads(fits):
    import dataclasses

    fit = fits["efficacy"]
    old = dataclasses.replace(fit, table=fit.table.drop(columns=["std_lv", "std_lv_se", "std_all", "std_all_se"]))
    t = old.tidy()
    assert t["std_all"].isna().all()
    pd.testing.assert_frame_equal(t.drop(columns=["std_lv", "std_all"]), fit.tidy().drop(columns=["std_lv", "std_all"]))
    assert old.standardized_solution()["estimate"].isna().all()
