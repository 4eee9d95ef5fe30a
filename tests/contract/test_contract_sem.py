"""SEM and invariance results honour the result contract and survive save -> load unchanged.

Data are the committed lavaan reference sets (tests/reference/data/sem_*.csv); the figures a loaded
result draws (path diagram, invariance plot) are compared with the original's too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cimstats.models._result import ResultNotAvailableError
from cimstats.models.sem import InvarianceResult, SEMResult, invariance, longitudinal_invariance, sem
from cimstats.render.figures import invariance_table, path_diagram
from cimstats.render.figures.path import path_layout
from conftest import REFERENCE
from contract import check_contract

HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
# regressions among the factors with labelled paths and a defined indirect effect
HS_REG = HS + "\ntextual ~ a*visual\nspeed ~ b*textual + c*visual\nindirect := a*b\ntotal := c + a*b"
# FIML with fixed covariates: rows missing a covariate are set aside (as lavaan's missing = "ml")
HS_X = HS + "\nvisual ~ age + grade\ntextual ~ age\nspeed ~ grade"
NEEDS_DATA = ("modification_indices", "bootstrap", "implied", "residuals")


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / f"sem_{name}.csv")


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _same_figure_inputs(a, b, **kw) -> None:
    """What the path diagram draws (nodes, edges, notes) is identical for the two results."""
    for standardized in (False, True):
        pa = path_layout(a, standardized=standardized, intervals=True, **kw)
        pb = path_layout(b, standardized=standardized, intervals=True, **kw)
        for x, y in zip(pa, pb):
            if isinstance(x, pd.DataFrame):
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            else:
                assert x == y


def _check_sem(fit, tmp_path):
    again = check_contract(fit, tmp_path, unavailable=NEEDS_DATA)
    assert again.fit_measures() == fit.fit_measures()
    for kind in ("std.all", "std.lv"):
        pd.testing.assert_frame_equal(again.standardized_solution(kind), fit.standardized_solution(kind),
                                      check_exact=True)
    pd.testing.assert_frame_equal(again.r_squared(), fit.r_squared(), check_exact=True)
    pd.testing.assert_frame_equal(again.defined(), fit.defined(), check_exact=True)
    assert again.spec == fit.spec and again.dropped_reasons == fit.dropped_reasons
    _same_figure_inputs(again, fit)
    return again


def test_cfa_contract(tmp_path):
    fit = _quiet(sem, HS, _data("holzinger"))
    again = _check_sem(fit, tmp_path)
    assert isinstance(again, SEMResult) and fit.n_dropped == 0 and len(fit.dropped) == 0
    assert [t.title for t in fit.summary().tables] == ["Model fit", "Factor loadings", "Covariances", "Variances"]


def test_sem_with_regressions_and_defined_parameters_contract(tmp_path):
    fit = _quiet(sem, HS_REG, _data("holzinger"))
    _check_sem(fit, tmp_path)
    titles = [t.title for t in fit.summary().tables]
    assert "Regressions" in titles and "Defined parameters" in titles
    assert set(fit.defined()["lhs"]) == {"indirect", "total"}


def test_fiml_with_rows_set_aside_contract(tmp_path):
    d = _data("fiml_x_holzinger")
    fit = _quiet(sem, HS_X, d, missing="fiml")
    again = _check_sem(fit, tmp_path)
    # rows set aside are those missing a fixed covariate, counted per covariate
    assert fit.n_dropped == int(d[["age", "grade"]].isna().any(axis=1).sum()) > 0
    expect = {c: int(d[c].isna().sum()) for c in ("age", "grade") if d[c].isna().any()}
    assert dict(zip(fit.dropped["variable"], fit.dropped["n_missing"])) == expect
    assert again.n_dropped == fit.n_dropped and sum(fit.dropped_reasons.values()) == fit.n_dropped


def test_multigroup_contract(tmp_path):
    fit = _quiet(sem, HS, _data("holzinger"), group="school", group_equal=("loadings",))
    again = _check_sem(fit, tmp_path)
    # parameters of later groups are named apart (lavaan's .g2), so vcov has unique names
    assert fit.vcov().index.is_unique and any(n.endswith(".g2") for n in fit.vcov().index)
    for g in again.spec.group_labels:
        _same_figure_inputs(again, fit, group=g)


def test_invariance_contract(tmp_path):
    inv = _quiet(invariance, HS, _data("holzinger"), group="school", steps=("configural", "metric", "scalar"))
    again = check_contract(inv, tmp_path)
    assert isinstance(again, InvarianceResult)
    t = inv.tidy()
    assert t["term"].tolist() == ["configural", "metric", "scalar"]
    np.testing.assert_array_equal(t["statistic"].to_numpy()[1:], inv.table["chisq_diff"].to_numpy()[1:])
    np.testing.assert_array_equal(t["p_value"].to_numpy()[1:], inv.table["p_diff"].to_numpy()[1:])
    assert inv.vcov().shape == (0, 0)
    pd.testing.assert_frame_equal(invariance_table(again), invariance_table(inv), check_exact=True)
    for name, fit in inv.fits.items():
        pd.testing.assert_frame_equal(again.fits[name].tidy(), fit.tidy(), check_exact=True)
    assert inv.optimizer.iterations == sum(f.optimizer.iterations for f in inv.fits.values())


def test_longitudinal_invariance_contract(tmp_path):
    long = _data("long_planted")
    inv = _quiet(longitudinal_invariance, long, [f"y{i}" for i in range(1, 6)], id="person", wave="time",
                 steps=("configural", "metric"))
    again = check_contract(inv, tmp_path)
    assert again.across == "waves" and again.waves == tuple(inv.waves) and again.items == inv.items
    pd.testing.assert_frame_equal(again.columns, inv.columns, check_exact=True)
    assert again.wide is None and inv.wide is not None
    assert inv.n_dropped > 0 and set(inv.dropped["variable"]) <= set(inv.columns["column"])


def test_loaded_sem_refuses_what_needs_the_data(tmp_path):
    from cimstats import load_result

    fit = _quiet(sem, HS, _data("holzinger"))
    fit.save(tmp_path / "cfa")
    again = load_result(tmp_path / "cfa")
    for name in NEEDS_DATA:
        with pytest.raises(ResultNotAvailableError, match="data the model was fitted to"):
            getattr(again, name)()


def test_bootstrap_function_on_a_loaded_result_says_it_needs_the_data(tmp_path):
    from cimstats import load_result
    from cimstats.models.sem import bootstrap

    _quiet(sem, "m ~ a*x\ny ~ b*m + x\nab := a*b", _data("mediation")).save(tmp_path / "med")
    with pytest.raises(ResultNotAvailableError, match="bootstrap needs the data"):
        bootstrap(load_result(tmp_path / "med"), 10, client="process")
