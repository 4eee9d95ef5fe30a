"""Power simulations and parametric bootstraps honour the result contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cimstats
from contract import check_contract


def _data():
    rng = np.random.default_rng(8)
    d = pd.DataFrame({"g": np.repeat(np.arange(15), 8), "x": rng.normal(size=120)})
    d["y"] = (0.3 + rng.normal(0, 0.6, 15)[d["g"]]) * d["x"] + rng.normal(size=15)[d["g"]] + rng.normal(size=120)
    return d


def test_power_result_contract(tmp_path):
    res = cimstats.power("two_level", effect=0.6, n_clusters=[6, 10], cluster_size=4, nsim=12, seed=2,
                         client="process", progress=False)
    again = check_contract(res, tmp_path)
    assert again.plot().data.equals(res.plot().data)


def test_mediation_power_result_contract(tmp_path):
    res = cimstats.power("mediation", a=0.5, b=0.5, n_clusters=[6], cluster_size=5, nsim=6, seed=2,
                         client="process", progress=False)
    check_contract(res, tmp_path)


def test_bootstrap_results_contract(tmp_path):
    d = _data()
    alt = cimstats.lmm("y ~ x + (1 + x | g)", d, reml=False)
    null = cimstats.lmm("y ~ x + (1 | g)", d, reml=False)
    boot = cimstats.parametric_bootstrap(null, nsim=20, seed=3, client="process", progress=False)
    check_contract(boot, tmp_path)
    lrt = cimstats.bootstrap_lrt(null, alt, nsim=20, seed=3, client="process", progress=False)
    check_contract(lrt, tmp_path)
