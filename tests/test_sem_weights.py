"""SEM with sampling weights against lavaan 0.6 (``sampling.weights``): estimates, robust standard
errors, the scaled test and fit measures (tests/reference/sem_weights.R)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cimstats.errors import ModelSpecificationError
from cimstats.models.sem import sem
from conftest import REFERENCE

REF = json.loads((REFERENCE / "sem_weights.json").read_text())
HS = REF["models"]["holzinger_cfa"]["model"]
MEASURES = ["npar", "chisq", "df", "chisq.scaled", "chisq.scaling.factor", "baseline.chisq",
            "baseline.chisq.scaled", "baseline.chisq.scaling.factor", "cfi", "tli", "cfi.scaled",
            "tli.scaled", "cfi.robust", "tli.robust", "rmsea", "rmsea.scaled", "rmsea.robust", "srmr",
            "logl", "unrestricted.logl", "aic", "bic"]


def _data(name):
    file = {"holzinger": "sem_holzinger.csv", "poldem": "sem_politicaldemocracy.csv"}[name]
    d = pd.read_csv(REFERENCE / "data" / file)
    d["w"] = REF["weights"][name]
    if name in REF["clusters"]:
        d["unit"] = REF["clusters"][name]
    return d


@pytest.fixture(scope="module")
def hs():
    return _data("holzinger")


@pytest.mark.parametrize("case", sorted(REF["models"]))
def test_matches_lavaan(case):
    ref = REF["models"][case]
    fit = sem(ref["model"], _data(ref["data"]), sampling_weights="w", **(ref["args"] or {}))
    assert fit.spec.test == ref["options"]["test"]
    # lavaan names the cluster sandwich "robust.cluster"; cimstats records the sandwich and the cluster column
    assert fit.spec.se == ref["options"]["se"].replace("robust.cluster", "robust.huber.white")
    est = pd.DataFrame(ref["estimates"])
    got = fit.tidy().merge(est, on=["lhs", "op", "rhs", "group"], how="inner", validate="1:1")
    assert len(got) == len(est)
    np.testing.assert_allclose(got["estimate"], got["est"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got["std_error"].fillna(0.0), got["se"], rtol=1e-4, atol=1e-7)
    fm = fit.fit_measures()
    for k in MEASURES:
        assert fm[k] == pytest.approx(ref["fit"][k], rel=1e-4, abs=1e-8), k
    for k in ("pvalue", "pvalue.scaled"):
        assert fm[k] == pytest.approx(ref["fit"][k], rel=1e-3, abs=1e-8), k
    assert fit.nobs == sum(np.atleast_1d(ref["nobs"]))


def test_equal_weights_reproduce_the_unweighted_robust_fit(hs):
    d = hs.assign(w=2.5)
    a = sem(HS, d, sampling_weights="w")
    b = sem(HS, hs, estimator="MLR")
    np.testing.assert_allclose(a.tidy()["estimate"], b.tidy()["estimate"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.tidy()["std_error"], b.tidy()["std_error"], rtol=1e-6, atol=1e-12)
    for k in ("chisq", "chisq.scaled", "cfi.robust", "rmsea.robust", "logl"):
        assert a.fit_measures()[k] == pytest.approx(b.fit_measures()[k], rel=1e-7), k


def test_weights_survive_save_and_load(hs, tmp_path):
    from cimstats import load_result

    fit = sem(HS, hs, sampling_weights="w")
    fit.save(tmp_path / "fit")
    back = load_result(tmp_path / "fit")
    assert back.spec.sampling_weights == "w"
    np.testing.assert_allclose(back.tidy()["std_error"], fit.tidy()["std_error"])


def test_zero_weights_leave_rows_out(hs):
    d = hs.assign(w=np.where(hs["school"] == "Pasteur", 0.0, 1.0))
    a = sem(HS, d, sampling_weights="w")
    b = sem(HS, hs[hs["school"] != "Pasteur"])
    np.testing.assert_allclose(a.tidy()["estimate"], b.tidy()["estimate"], rtol=1e-7, atol=1e-10)


def test_weighted_bootstrap_resamples_with_the_weights(hs):
    # one school weighted out: resamples that kept the weights centre on the other school's estimates
    d = hs.assign(w=np.where(hs["school"] == "Pasteur", 0.0, 1.0))
    fit = sem(HS, d, sampling_weights="w")
    full = sem(HS, hs)
    with np.errstate(invalid="ignore"):
        boot = fit.bootstrap(n_boot=100, seed=3)
    free = fit.tidy()["std_error"].to_numpy() > 0
    centre = np.nanmedian(boot.replicates, axis=0)[: free.size][free]
    est = fit.tidy()["estimate"].to_numpy()[free]
    other = full.tidy()["estimate"].to_numpy()[free]
    assert np.mean(np.abs(centre - est)) < 0.5 * np.mean(np.abs(centre - other))


def _one_sentence(msg: str) -> bool:
    return msg.endswith(".") and not re.search(r"[.;]\s+[A-Z][a-z]", msg)


@pytest.mark.parametrize("change, kw, match", [
    (lambda d: d, {"sampling_weights": "weight"}, "not a column of `data`"),
    (lambda d: d.assign(w=np.where(d.index == 4, np.nan, d["w"])), {}, "1 missing or infinite weight"),
    (lambda d: d.assign(w=np.where(d.index == 7, -1.0, d["w"])), {}, "negative weight"),
    (lambda d: d.assign(w=0.0), {}, "sum to zero"),
    (lambda d: d.assign(w="heavy"), {}, "not numeric"),
    (lambda d: d, {"missing": "fiml"}, "listwise deletion only"),
    (lambda d: d, {"estimator": "WLSMV"}, "cannot take sampling weights"),
    (lambda d: d, {"se": "standard"}, "robust standard errors"),
    (lambda d: d, {"engine": "semopy"}, "cimstats engine"),
])
def test_hostile_weights(hs, change, kw, match):
    kw = {"sampling_weights": "w", **kw}
    with pytest.raises(ModelSpecificationError, match=match) as e:
        sem(HS, change(hs.copy()), **kw)
    assert _one_sentence(str(e.value))
