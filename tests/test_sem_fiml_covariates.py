"""FIML with exogenous observed covariates against lavaan 0.6-14 (numbers in
tests/reference/sem_fiml_x.json, written by tests/reference/sem_fiml_x.R; data committed as
tests/reference/data/sem_fiml_x_*.csv).

With ``fixed_x=True`` (lavaan's default) rows with a missing covariate are set aside and
counted, and the model is conditional on the covariates; with ``fixed_x=False`` the
covariates are random (their means, variances and covariances are parameters) and every row
with an observed model variable is kept. ML and MLR (Yuan-Bentler scaled test, robust CFI, TLI
and RMSEA after Savalei's FIML correction), one group and two, with cluster-robust inference.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from cimstats.errors import MissingDataWarning, ModelSpecificationError
from cimstats.models.sem import sem
from cimstats.models.sem.fit import X_MISSING_REASON, estimate_free, prepare
from conftest import REFERENCE

REF = json.loads((REFERENCE / "sem_fiml_x.json").read_text())
RTOL = 1e-4
ATOL = 1e-6
CASES = sorted(REF["cases"])
FIT_KEYS = ["npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli", "rni", "nfi",
            "logl", "unrestricted.logl", "aic", "bic", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "srmr",
            "chisq.scaled", "chisq.scaling.factor", "pvalue.scaled", "baseline.chisq.scaled",
            "baseline.chisq.scaling.factor", "cfi.scaled", "tli.scaled", "rmsea.scaled",
            "cfi.robust", "tli.robust", "rni.robust", "rmsea.robust", "rmsea.ci.lower.robust",
            "rmsea.ci.upper.robust"]

_CACHE: dict = {}


def _fit(case):
    if case not in _CACHE:
        c = REF["cases"][case]
        data = pd.read_csv(REFERENCE / "data" / f"sem_fiml_x_{c['data']}.csv")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = sem(c["model"], data, **c["call"])
        _CACHE[case] = (fit, caught)
    return _CACHE[case][0]


def _close(mine, ref, rtol=RTOL, atol=ATOL):
    mine = np.asarray(mine, dtype=float)
    ref = np.asarray(ref, dtype=float)
    return np.abs(mine - ref) <= rtol * np.abs(ref) + atol


@pytest.mark.parametrize("case", CASES)
def test_rows_used_and_set_aside(case):
    c = REF["cases"][case]
    fit = _fit(case)
    nobs = np.sum(c["nobs"])
    norig = np.sum(c["norig"])
    assert fit.nobs == nobs
    assert fit.n_dropped == norig - nobs
    if c["call"].get("fixed_x") and c["call"]["missing"] == "fiml" and norig > nobs:
        assert dict(fit.dropped_reasons) == {X_MISSING_REASON: norig - nobs}
        # the warning names the count as lavaan's does
        msgs = [str(w.message) for w in _CACHE[case][1] if issubclass(w.category, MissingDataWarning)]
        assert any(f"{norig - nobs} of {norig} rows" in m and "exogenous covariate" in m for m in msgs), msgs
        # lavaan's warnings (one per group) give the same count
        warns = [c["warnings"]] if isinstance(c["warnings"], str) else c["warnings"]
        counts = [int(n) for w in warns for n in re.findall(r"(\d+) cases were deleted", w)]
        assert sum(counts) == norig - nobs
    else:
        assert fit.n_dropped == 0


@pytest.mark.parametrize("case", CASES)
def test_estimates_and_standard_errors(case):
    c = REF["cases"][case]
    ref = pd.DataFrame(c["partable"])
    if "group" not in ref:
        ref["group"] = 1
    ref["rhs"] = ref["rhs"].fillna("")
    mine = _fit(case).tidy()
    m = ref.merge(mine, on=["lhs", "op", "rhs", "group"], how="left", validate="one_to_one")
    assert m["estimate"].notna().all(), m.loc[m["estimate"].isna(), ["lhs", "op", "rhs"]]
    bad = ~_close(m["estimate"], m["est"])
    assert not bad.any(), m.loc[bad, ["lhs", "op", "rhs", "group", "est", "estimate"]]
    bad = ~_close(m["std_error"], m["se"].fillna(0.0))
    assert not bad.any(), m.loc[bad, ["lhs", "op", "rhs", "group", "se", "std_error"]]
    assert len(mine) == len(ref)


@pytest.mark.parametrize("case", CASES)
def test_fit_measures(case):
    c = REF["cases"][case]
    fm = _fit(case).fit_measures()
    bad = {}
    for k in FIT_KEYS:
        if k not in c["fit"]:
            continue
        ref = c["fit"][k]
        if ref is None:
            if not (fm.get(k) is None or math.isnan(fm[k])):
                bad[k] = (fm.get(k), ref)
            continue
        if not _close(fm[k], ref, atol=1e-7):
            bad[k] = (fm[k], ref)
    assert not bad, bad


def test_fixed_covariate_rows_refit_equal_complete_covariate_subset():
    """Setting rows aside by hand gives the same fit: nothing else changes with fixed covariates."""
    c = REF["cases"]["hs_mlr_fixed"]
    data = pd.read_csv(REFERENCE / "data" / "sem_fiml_x_holzinger.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = sem(c["model"], data.dropna(subset=["age", "grade"]), **c["call"])
    full = _fit("hs_mlr_fixed")
    assert sub.n_dropped == 0
    assert np.allclose(sub.tidy()["estimate"], full.tidy()["estimate"], rtol=1e-10, atol=1e-12)
    assert math.isclose(sub.fit_measures()["chisq.scaled"], full.fit_measures()["chisq.scaled"], rel_tol=1e-10)


def _at_lavaan(case):
    """(prep, z at cimstats' optimum, z at lavaan's estimates, table merged with lavaan's)."""
    c = REF["cases"][case]
    data = pd.read_csv(REFERENCE / "data" / f"sem_fiml_x_{c['data']}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(data, c["model"], **c["call"])
    z, _ = estimate_free(prep)
    ref = pd.DataFrame(c["partable"])
    if "group" not in ref:
        ref["group"] = 1
    ref["rhs"] = ref["rhs"].fillna("")
    tab = prep.table.assign(rhs=prep.table["rhs"].fillna(""))
    m = tab.merge(ref, on=["lhs", "op", "rhs", "group"], how="left", validate="one_to_one")
    x_lavaan = np.zeros(prep.problem.nfree)
    for f, est in zip(m["free"], m["est"]):
        if f > 0:
            x_lavaan[f - 1] = est
    return prep, z, prep.problem.z_of(x_lavaan), m


@pytest.mark.parametrize("case", CASES)
def test_optimum_no_worse_than_lavaan(case):
    """The FIML criterion at cimstats' estimates is never worse than at lavaan's (its nlminb
    solution polished by Newton steps in tests/reference/sem_fiml_x.R)."""
    prep, z, z_lavaan, _ = _at_lavaan(case)
    f_mine, _ = prep.problem.fz(z)
    f_lavaan, _ = prep.problem.fz(z_lavaan)
    assert f_mine <= f_lavaan + 1e-12 * abs(f_lavaan)


def test_every_row_missing_a_fixed_covariate_names_the_remedy():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40)})
    d.loc[1:, "x"] = np.nan
    with pytest.raises(ModelSpecificationError, match=r"keeps 1 of 40 rows .*fixed_x=False"), \
            pytest.warns(MissingDataWarning, match="39 of 40 rows were set aside: missing exogenous covariate"):
        sem("y ~ x", d, missing="fiml")
    # random covariates keep every row
    d["x"] = np.where(np.arange(40) % 4 == 0, np.nan, rng.normal(size=40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = sem("y ~ x", d, missing="fiml", fixed_x=False)
    assert fit.nobs == 40 and fit.n_dropped == 0


def _ref_rows(rows):
    ref = pd.DataFrame(rows)
    if "group" not in ref:
        ref["group"] = 1
    ref["rhs"] = ref["rhs"].fillna("")
    return ref


@pytest.mark.parametrize("case", CASES)
def test_standardized_estimates(case):
    m = _ref_rows(REF["cases"][case]["partable"]).merge(
        _fit(case).tidy(), on=["lhs", "op", "rhs", "group"], how="left", validate="one_to_one")
    for ref_col, col in (("std.all", "std_all"), ("std.lv", "std_lv")):
        bad = ~_close(m[col], m[ref_col])
        assert not bad.any(), m.loc[bad, ["lhs", "op", "rhs", "group", ref_col, col]]


@pytest.mark.parametrize("case", CASES)
def test_modification_indices(case):
    """Score tests with fixed covariates' moments left out of the (pattern-wise) information."""
    ref = _ref_rows(REF["cases"][case]["mi"])
    mine = _fit(case).modification_indices()
    m = ref.merge(mine, on=["lhs", "op", "rhs", "group"], how="outer", suffixes=("_r", ""), indicator=True)
    assert (m["_merge"] == "both").all(), m.loc[m["_merge"] != "both", ["lhs", "op", "rhs", "group", "_merge"]]
    for col in ("mi", "epc"):
        bad = ~_close(m[col], m[f"{col}_r"], atol=1e-5)
        assert not bad.any(), m.loc[bad, ["lhs", "op", "rhs", "group", f"{col}_r", col]]


@pytest.mark.parametrize("case", [c for c in CASES if "group" not in REF["cases"][c]["call"]])
def test_r_squared(case):
    r2 = _fit(case).r_squared()
    got = dict(zip(r2["variable"], r2["r2"]))
    ref = REF["cases"][case]["r2"]
    bad = {k: (got.get(k), v) for k, v in ref.items() if not _close(got.get(k, np.nan), v)}
    assert not bad, bad
