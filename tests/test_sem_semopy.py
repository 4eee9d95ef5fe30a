"""Parity between cimstats' SEM engine and semopy where semopy handles the model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cimstats.models.sem import sem
from conftest import REFERENCE

semopy = pytest.importorskip("semopy")

HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


def _swap(t):
    # covariances are unordered pairs
    t = t.copy()
    cov = t["op"] == "~~"
    a = np.where(cov, np.minimum(t["lhs"], t["rhs"]), t["lhs"])
    b = np.where(cov, np.maximum(t["lhs"], t["rhs"]), t["rhs"])
    t["lhs"], t["rhs"] = a, b
    return t


@pytest.mark.parametrize("data, model", [
    ("holzinger", HS),
    ("politicaldemocracy", "ind60 =~ x1 + x2 + x3\ndem60 =~ y1 + y2 + y3 + y4\ndem60 ~ ind60"),
])
def test_semopy_and_cimstats_agree(data, model):
    d = pd.read_csv(REFERENCE / "data" / f"sem_{data}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _swap(sem(model, d).tidy())
        theirs = _swap(sem(model, d, engine="semopy").tidy())
    m = theirs.merge(ours, on=["lhs", "op", "rhs"], suffixes=("_semopy", ""))
    assert len(m) == len(theirs)
    # semopy's optimiser stops early (third-decimal differences), so the parity tolerance is loose
    np.testing.assert_allclose(m["estimate_semopy"], m["estimate"], rtol=5e-3, atol=2e-3)
    free = m["std_error_semopy"] > 0
    np.testing.assert_allclose(m.loc[free, "std_error_semopy"], m.loc[free, "std_error"], rtol=3e-2)


def test_semopy_engine_refuses_defined_parameters():
    d = pd.read_csv(REFERENCE / "data" / "sem_mediation.csv")
    with pytest.raises(ValueError, match="semopy"):
        sem("m ~ a*x\ny ~ b*m\nab := a*b", d, engine="semopy")
