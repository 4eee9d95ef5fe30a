"""Two-level SEM results honour the result contract and survive save -> load unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cimstats.models.sem import TwoLevelResult, sem
from conftest import REFERENCE
from contract import check_contract

MODEL = """
level: 1
    fw =~ y1 + y2 + y3
    fw ~ x1 + x2 + x3
level: 2
    fb =~ y1 + y2 + y3
    fb ~ w1 + w2
"""


def test_twolevel_contract(tmp_path):
    d = pd.read_csv(REFERENCE / "data" / "sem_twolevel_demo.csv.gz")
    d = d[d["cluster"] <= 60].copy()
    d.loc[d.index[:3], "y2"] = np.nan
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sem(MODEL, d, cluster="cluster")
    again = check_contract(fit, tmp_path)
    assert isinstance(again, TwoLevelResult)
    assert again.fit_measures() == fit.fit_measures()
    for lev in ("within", "between"):
        pd.testing.assert_frame_equal(again.implied()[lev]["cov"], fit.implied()[lev]["cov"], check_exact=True)
