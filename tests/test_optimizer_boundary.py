"""Mixed-model optimiser on the boundary of the parameter space, and Hessian-based standard errors.

References (tests/reference/boundary.R -> boundary.json): lme4/lmerTest run to convergence on
random-slope models where a quasi-Newton search steps onto "variance 0" or "correlation +-1"
although the optimum lies elsewhere (mlmRev's Exam and Hsb82 school-effects data, and mice's
popularity data), and glmer run to convergence (tolPwrss = 1e-13) on mlmRev's guImmun
immunisation data, whose community-level standard errors need an accurate Hessian.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import cimstats
from cimstats.models.mixed.inference import _bounded_min
from cimstats.models.mixed.optimize import minimize_theta, probe_boundary
from conftest import REFERENCE, ROOT

REF = json.loads((REFERENCE / "boundary.json").read_text())
DATA = REFERENCE / "data"

TOL = {"criterion": 1e-6,  # cimstats' criterion may not exceed R's by more than this (absolute)
       "fixef": 1e-4,      # relative
       "se": 1e-3,         # relative
       "varcomp": 1e-3,    # relative (absolute where R's value is 0)
       "loglik": 1e-6,     # absolute
       "df": 1e-3}         # Satterthwaite df, relative


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


def close_varcomp(a, b, tol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.all(np.abs(a - b) <= tol * np.maximum(np.abs(b), 1e-3))


def _read(name):
    return pd.read_csv(DATA / name, dtype={"school": str, "mom": str, "comm": str})


# ---------------------------------------------------------------- synthetic criteria
def _saddle_at_zero(t):
    """Depends on the second coordinate through its square (as a variance does through theta^2),
    with a maximum along it at 0 and the minimum at (1, 0.5)."""
    return 50.0 * (t[0] - 1.0) ** 2 + (t[1] ** 2 - 0.25) ** 2


def _minimum_at_zero(t):
    return 50.0 * (t[0] - 1.0) ** 2 + (t[1] ** 2 + 0.25) ** 2


def test_quasi_newton_alone_stops_on_the_bound():
    """The trap itself: on the bound the gradient along a squared coordinate vanishes."""
    res = minimize(_saddle_at_zero, [0.3, 0.0], method="L-BFGS-B", jac="2-point",
                   bounds=[(0, None), (0, None)])
    assert res.x[1] == 0.0 and res.success


def test_minimize_theta_leaves_a_boundary_that_is_not_an_optimum():
    x, fx, opt = minimize_theta(_saddle_at_zero, [0.3, 0.0], [0.0, 0.0])
    assert np.allclose(x, [1.0, 0.5], atol=1e-6)
    assert fx < 1e-10
    assert opt.converged
    assert any("lowered the criterion" in c for c in opt.checks)


def test_minimize_theta_keeps_a_boundary_optimum_and_says_it_checked():
    x, fx, opt = minimize_theta(_minimum_at_zero, [0.3, 0.4], [0.0, 0.0])
    assert x[1] < 1e-4 and abs(x[0] - 1.0) < 1e-6
    assert opt.converged
    assert any(c.startswith("boundary:") and "no lower criterion" in c for c in opt.checks)
    assert any(c.startswith("projected gradient") for c in opt.checks)


def test_probe_reports_the_boundary_coordinates():
    x = np.array([1.0, 0.0])
    xp, fp, idx, nev = probe_boundary(_saddle_at_zero, x, _saddle_at_zero(x), np.array([0.0, 0.0]))
    assert list(idx) == [1] and nev > 0 and fp < _saddle_at_zero(x) and xp[1] > 0


def test_profile_minimiser_leaves_the_bound():
    fx, x = _bounded_min(_saddle_at_zero, np.array([0.3, 0.0]), np.array([0.0, 0.0]))
    assert np.allclose(x, [1.0, 0.5], atol=1e-5) and fx < 1e-9


# ---------------------------------------------------------------- lmm against lme4 / lmerTest
def _assert_fixed_effects_match(tb, fx):
    """Same terms in the same order; estimates and SEs within the reference tolerances."""
    assert tb["term"].tolist() == fx["term"]
    assert np.all(rel(tb["estimate"], fx["estimate"]) < TOL["fixef"])
    assert np.all(rel(tb["std_error"], fx["std_error"]) < TOL["se"])


@pytest.mark.parametrize("case", sorted(REF["lmm"]))
def test_lmm_boundary_cases_match_lme4(case):
    r = REF["lmm"][case]
    m = cimstats.lmm(r["formula"], _read(r["data"]), reml=r["reml"])
    assert m.optimizer.converged
    assert m.criterion <= r["criterion"] + TOL["criterion"]
    assert abs(m.loglik - r["loglik"]) < TOL["loglik"]
    tb, fx = m.tidy(), r["fixef"]
    _assert_fixed_effects_match(tb, fx)
    assert np.all(rel(tb["df"], fx["df"]) < TOL["df"])
    vc = m.varcorr()
    assert vc["term1"].tolist() == r["varcorr"]["term1"] and vc["term2"].tolist() == r["varcorr"]["term2"]
    assert close_varcomp(vc["vcov"], r["varcorr"]["vcov"], TOL["varcomp"])
    assert close_varcomp(vc["sdcor"], r["varcorr"]["sdcor"], TOL["varcomp"])
    assert close_varcomp(m.theta, r["theta"], TOL["varcomp"])
    assert bool(m.singular) == bool(r["singular"])


# ---------------------------------------------------------------- glmm: Hessian-based SEs
@pytest.mark.slow
def test_glmm_guimmun_standard_errors_match_converged_glmer():
    r = REF["glmm"]["guimmun"]
    m = cimstats.glmm(r["formula"], _read(r["data"]), family=r["family"], nagq=r["nagq"])
    assert m.optimizer.converged
    assert m.loglik >= r["loglik"] - TOL["loglik"]
    assert abs(m.loglik - r["loglik"]) < TOL["loglik"]
    tb, fx = m.tidy(), r["fixef"]
    _assert_fixed_effects_match(tb, fx)
    # glmer's reported SEs are those of a Richardson-extrapolated Hessian of its deviance
    assert np.all(rel(tb["std_error"], fx["std_error_richardson"]) < TOL["se"])
    assert close_varcomp(m.theta, r["theta"], TOL["varcomp"])


# ---------------------------------------------------------------- glmm: first stage onto the boundary
# 40 clusters of 6 Bernoulli outcomes with a random-intercept SD of 0.15 (logit scale): the sweep's design
_spec = importlib.util.spec_from_file_location("boundary_sweep", ROOT / "benchmarks" / "boundary_sweep.py")
sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweep)


@pytest.mark.parametrize("seed", [22, 44])
def test_glmm_small_variance_is_not_left_at_zero(seed):
    """The PIRLS-profiled first stage can stop at theta = 0 although the Laplace optimum is inside;
    the fit must reach the optimum a start inside finds."""
    d = sweep.simulate("bernoulli_small", seed)
    m = cimstats.glmm("y ~ x + (1 | g)", d)
    inside = cimstats.glmm("y ~ x + (1 | g)", d, start=np.r_[0.3, m.params.to_numpy()])
    assert m.optimizer.converged
    assert -2 * m.loglik <= -2 * inside.loglik + TOL["criterion"]
    assert m.theta[0] > 1e-3 and not m.singular
