"""Public validation corpus: mixed models and SEM on data sets shipped with R packages.

References: ``tests/reference/corpus.R`` -> ``tests/reference/corpus.json`` (lme4 with
lmerTest's Satterthwaite df, glmer with its inner loop converged tightly, lavaan), data
under ``tests/reference/data/corpus/``. Each case is fitted once with cimstats; each
quantity is one test, so a report names the case and the quantity that disagrees.

Tolerances (one per quantity):

- criterion (REML criterion, deviance, -2 log-likelihood of a GLMM including the
  normalising constants, as below, minus the SEM log-likelihood) at cimstats' optimum never
  worse than R's by more than 1e-6;
- fixed effects 1e-4 relative to the larger of the estimate and its standard error (an
  estimate near zero, such as -0.0135 with a standard error of 0.79, is otherwise held to
  differences far below what either optimiser resolves), their standard errors 1e-3 relative;
- variance components (standard deviations and correlations, as ``varcorr()`` reports
  them; the residual SD of a linear model included) 1e-3 relative, or absolute where
  the reference is below 1e-3 in magnitude (a variance on its boundary);
- log-likelihood 1e-6 absolute (for GLMMs with a canonical link fitted by the Laplace
  approximation, the reference is the Laplace log-likelihood evaluated in R at glmer's
  estimates with the conditional modes converged to 1e-13, which can be a few 1e-6 above
  the value glmer reports); Satterthwaite df 1e-3 relative;
- SEM estimates, standard errors and fit measures (chi-square, df, CFI, TLI, RMSEA,
  SRMR, AIC, BIC and, for MLR, the scaled and robust versions) 1e-4 relative, or 1e-7
  absolute below 1e-3 in magnitude (the SRMR of a saturated model is zero up to rounding).

The comparisons are also what the documentation's validation page shows
(``docs/_hooks/validation.py`` imports :func:`comparisons`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cimstats

REFERENCE = Path(__file__).resolve().parent / "reference"
DATA = REFERENCE / "data" / "corpus"
REF = json.loads((REFERENCE / "corpus.json").read_text())
CASES = REF["cases"]

TOL = {"criterion": 1e-6, "fixef": 1e-4, "se": 1e-3, "varcomp": 1e-3, "loglik": 1e-6, "df": 1e-3,
       "sem": 1e-4}
# below these magnitudes a reference value is compared absolutely (a variance on its boundary,
# a covariance or RMSEA of zero)
FLOOR = {"varcomp": 1e-3, "sem": 1e-3}

SEM_FIT = ["chisq", "df", "cfi", "tli", "rmsea", "srmr", "aic", "bic"]
SEM_SCALED = ["chisq.scaled", "chisq.scaling.factor", "cfi.scaled", "tli.scaled", "rmsea.scaled",
              "cfi.robust", "tli.robust", "rmsea.robust"]

# Cases whose cimstats fit takes more than a few seconds (they still run in CI).
SLOW = {"guimmun_nested"}



def _list(v):
    """jsonlite writes vectors of length one as scalars: make them lists again."""
    return v if isinstance(v, list) else [v]


def read_data(name: str) -> pd.DataFrame:
    """A corpus data set exactly as R read it back (text columns stay text)."""
    info = REF["datasets"][name]
    return pd.read_csv(DATA / info["file"], **_EXACT)


# decimal text parsed to the nearest double, as R reads it (pandas 3 does so by default and
# deprecates the option)
_EXACT = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _sem_kwargs(call: dict) -> dict:
    kw = {}
    for key in ("estimator", "missing", "group", "meanstructure", "fixed_x", "std_lv"):
        if key in call:
            kw[key] = call[key]
    if "group_equal" in call:
        kw["group_equal"] = tuple(_list(call["group_equal"]))
    return kw


def fit_case(name: str):
    """Fit one corpus case with cimstats (warnings about dropped rows or boundaries silenced)."""
    c = CASES[name]
    data = read_data(c["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if c["kind"] == "lmm":
            return cimstats.lmm(c["formula"], data, reml=c["reml"])
        if c["kind"] == "glmm":
            return cimstats.glmm(c["formula"], data, family=c["family"], link=c["link"], nagq=c["nagq"],
                                 weights=c.get("weights"))
        return cimstats.sem(c["model"], data, **_sem_kwargs(c["call"]))


_FITS: dict = {}


def fitted(name: str):
    if name not in _FITS:
        _FITS[name] = fit_case(name)
    return _FITS[name]


def _criterion(kind: str, m) -> float:
    if kind == "lmm":
        return float(m.criterion)
    if kind == "glmm":
        return -2.0 * float(m.loglik)
    return -float(m.fit_measures()["logl"])


def _by_term(table: pd.DataFrame, terms: list, column: str) -> np.ndarray:
    t = table.set_index("term")
    missing = [x for x in terms if x not in t.index]
    if missing:
        raise AssertionError(f"cimstats has no fixed effect(s) {missing}; it has {list(t.index)}")
    return t.loc[terms, column].to_numpy(dtype=float)


def _varcorr(m, ref: dict) -> tuple[np.ndarray, np.ndarray]:
    vc = m.varcorr()
    key = lambda g, a, b: (str(g), "" if a is None or a != a else str(a), "" if b is None or b != b else str(b))
    ours = {key(*r): v for *r, v in zip(vc["group"], vc["term1"], vc["term2"], vc["sdcor"])}
    refs = [key(g, a, b) for g, a, b in zip(_list(ref["group"]), _list(ref["term1"]), _list(ref["term2"]))]
    missing = [k for k in refs if k not in ours]
    if missing:
        raise AssertionError(f"cimstats' varcorr() has no row(s) {missing}; it has {list(ours)}")
    return np.array([ours[k] for k in refs], dtype=float), np.asarray(_list(ref["sdcor"]), dtype=float)


def _sem_table(m, partable: dict) -> pd.DataFrame:
    ref = pd.DataFrame({k: _list(v) for k, v in partable.items()})
    ref["rhs"] = ref["rhs"].fillna("")
    mine = m.tidy()[["lhs", "op", "rhs", "group", "estimate", "std_error"]].copy()
    mine["rhs"] = mine["rhs"].fillna("")
    mine["group"] = mine["group"].astype(int)
    ref["group"] = ref["group"].astype(int)
    out = ref.merge(mine, on=["lhs", "op", "rhs", "group"], how="left", validate="one_to_one")
    # parameters lavaan fixes (exogenous covariates' moments under fixed.x, marker loadings) may be
    # absent from cimstats' table; a free parameter absent from it stays, as a missing value that
    # fails the comparison
    free = out["se"].fillna(0) > 0
    return out.loc[out["estimate"].notna() | free]


def comparisons(name: str, m=None) -> list[tuple[str, np.ndarray, np.ndarray, object]]:
    """(quantity, cimstats' values, R's values, floor) for every compared quantity of one case.

    ``floor``: reference values smaller than it in magnitude are compared absolutely (None: purely
    relative; for fixed effects it is the reference standard error of each estimate).
    """
    c = CASES[name]
    m = fitted(name) if m is None else m
    out = [("criterion", np.array([_criterion(c["kind"], m)]), np.array([c["criterion"]], dtype=float), None)]
    if c["kind"] in ("lmm", "glmm"):
        fx = c["fixef"]
        terms = _list(fx["term"])
        td = m.tidy()
        ref_se = np.asarray(_list(fx["std_error"]), float)
        out.append(("fixed effects", _by_term(td, terms, "estimate"), np.asarray(_list(fx["estimate"]), float),
                    ref_se))
        out.append(("standard errors", _by_term(td, terms, "std_error"), ref_se, None))
        out.append(("variance components", *_varcorr(m, c["varcorr"]), FLOOR["varcomp"]))
        ref_ll = c["loglik"] if c["kind"] == "lmm" else c.get("loglik_exact") or c["loglik_full"]
        out.append(("log-likelihood", np.array([float(m.loglik)]), np.array([ref_ll], dtype=float), None))
        if c["kind"] == "lmm":
            out.append(("Satterthwaite df", _by_term(td, terms, "df"), np.asarray(_list(fx["df"]), float), None))
        return out
    t = _sem_table(m, c["partable"])
    out.append(("estimates", t["estimate"].to_numpy(float), t["est"].to_numpy(float), FLOOR["sem"]))
    free = t["se"].fillna(0) > 0
    out.append(("standard errors", t.loc[free, "std_error"].to_numpy(float), t.loc[free, "se"].to_numpy(float),
                None))
    fm = m.fit_measures()
    keys = [k for k in SEM_FIT + SEM_SCALED if c["fit"].get(k) is not None]
    out.append(("fit measures", np.array([fm[k] for k in keys], dtype=float),
                np.array([c["fit"][k] for k in keys], dtype=float), FLOOR["sem"]))
    return out


QUANTITY_TOL = {"fixed effects": "fixef", "standard errors": "se", "variance components": "varcomp",
                "log-likelihood": "loglik", "Satterthwaite df": "df"}


def discrepancy(kind: str, quantity: str, ours, theirs, floor=None) -> tuple[float, float]:
    """(worst scaled difference, tolerance): the quantity agrees when the first is at most the second."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    tol = TOL["sem"] if kind == "sem" and quantity != "criterion" else TOL[QUANTITY_TOL.get(quantity, "criterion")]
    if quantity == "criterion":
        return float(np.max(ours - theirs)), tol   # signed: lower is better
    if ours.shape != theirs.shape or (~np.isfinite(ours) & np.isfinite(theirs)).any():
        return float("inf"), tol
    diff = np.abs(ours - theirs)
    if quantity == "log-likelihood":
        scaled = diff
    else:
        scale = np.abs(theirs) if floor is None else np.maximum(np.abs(theirs), floor)
        scaled = diff / np.maximum(scale, 1e-300)
    return float(np.nanmax(scaled)) if scaled.size else 0.0, tol


def _params(kinds: tuple[str, ...], quantity: str):
    out = []
    for name in sorted(CASES):
        c = CASES[name]
        if c["kind"] not in kinds:
            continue
        if quantity == "Satterthwaite df" and c["kind"] != "lmm":
            continue
        marks = []
        if name in SLOW:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(name, quantity, marks=marks, id=f"{name}-{quantity.replace(' ', '_')}"))
    return out


def _check(name: str, quantity: str):
    for q, ours, theirs, floor in comparisons(name):
        if q == quantity:
            worst, tol = discrepancy(CASES[name]["kind"], q, ours, theirs, floor)
            assert worst <= tol, (f"{name}: {quantity} differs from R by {worst:.3g} (tolerance {tol:g}); "
                                  f"cimstats {np.round(ours, 8).tolist()}, R {np.round(theirs, 8).tolist()}")
            return
    raise AssertionError(f"{name}: no comparison named {quantity}")


def test_corpus_size_and_versions():
    assert len(CASES) >= 60 and len(REF["datasets"]) >= 20
    v = REF["versions"]
    assert v["R"].startswith("R version") and {"lme4", "lmerTest", "lavaan"} <= set(v)
    for info in REF["datasets"].values():
        assert (DATA / info["file"]).exists()
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 5 * 2**20


MIXED = ("lmm", "glmm")


@pytest.mark.parametrize("name,quantity", _params(MIXED + ("sem",), "criterion"))
def test_criterion_not_worse_than_r(name, quantity):
    _check(name, quantity)


@pytest.mark.parametrize("name,quantity", _params(MIXED, "fixed effects") + _params(MIXED, "standard errors"))
def test_fixed_effects_and_standard_errors(name, quantity):
    _check(name, quantity)


@pytest.mark.parametrize("name,quantity", _params(MIXED, "variance components"))
def test_variance_components(name, quantity):
    _check(name, quantity)


@pytest.mark.parametrize("name,quantity", _params(MIXED, "log-likelihood"))
def test_log_likelihood(name, quantity):
    _check(name, quantity)


@pytest.mark.parametrize("name,quantity", _params(("lmm",), "Satterthwaite df"))
def test_satterthwaite_df(name, quantity):
    _check(name, quantity)


@pytest.mark.parametrize("name,quantity", _params(("sem",), "estimates") + _params(("sem",), "standard errors")
                         + _params(("sem",), "fit measures"))
def test_sem_estimates_standard_errors_and_fit(name, quantity):
    _check(name, quantity)
