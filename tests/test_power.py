"""Simulation-based power: agreement with analytic power and with simulations in R, the CLI, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import ModelSpecificationError, PlanError
from cimstats.models.power import analytic_cluster_power

REF = Path(__file__).parent / "reference"


def _within(p_sim, n_sim, p_ref, n_ref, k=3.5):
    se = math.sqrt(p_sim * (1 - p_sim) / n_sim + p_ref * (1 - p_ref) / n_ref)
    return abs(p_sim - p_ref) <= k * max(se, 1e-3)


def test_cluster_randomised_power_matches_the_design_effect_formula():
    # balanced, half of 20 clusters exposed: power from the noncentral t with J - 2 df and
    # the variance 4 (icc + (1 - icc) / m) / J, i.e. the design effect 1 + (m - 1) icc
    res = cimstats.power("two_level", effect=0.5, icc=0.1, exposure_level=2, binary_exposure=True,
                         n_clusters=20, cluster_size=10, nsim=300, seed=11, client="process", progress=False)
    t = res.tidy().iloc[0]
    expected = analytic_cluster_power(0.5, 0.1, 20, 10)
    assert t["n_valid"] == 300
    assert _within(t["estimate"], 300, expected, 10**9), (t["estimate"], expected)
    assert t["ci_lower"] < expected < t["ci_upper"] or _within(t["estimate"], 300, expected, 10**9)


@pytest.mark.parametrize("name", ["member_exposure", "binary_outcome"])
def test_power_agrees_with_simulation_in_r(name):
    ref = json.loads((REF / "power.json").read_text())
    d = next(x for x in ref["power"] if x["name"] == name)
    res = cimstats.power("two_level", effect=d["effect"], icc=d["icc"], exposure_level=d["level"],
                         binary_exposure=d["binary_exposure"], outcome=d["outcome"], prevalence=d["prevalence"],
                         n_clusters=d["J"], cluster_size=d["m"], nsim=200, seed=3, client="process", progress=False)
    t = res.tidy().iloc[0]
    assert _within(t["estimate"], t["n_valid"], d["power"], d["n_valid"]), (t["estimate"], d["power"])


def test_parametric_bootstrap_standard_errors_agree_with_bootmer():
    ref = json.loads((REF / "power.json").read_text())["bootstrap"]
    data = pd.read_csv(REF / ref["data"])
    fit = cimstats.lmm(ref["model"], data)
    boot = cimstats.parametric_bootstrap(fit, nsim=200, seed=4, client="process", progress=False)
    t = boot.tidy()
    assert t["term"].tolist() == ref["terms"]
    np.testing.assert_allclose(t["estimate"], ref["estimate"], rtol=2e-4, atol=1e-4)
    # the SD of 200 draws is within about 5% of the truth (and R's 1,000 within about 2%)
    np.testing.assert_allclose(t["std_error"], ref["std_error"], rtol=0.2)


def test_more_clusters_give_more_power_and_curve_is_drawn():
    res = cimstats.power("mediation", a=0.4, b=0.4, n_clusters=[6, 30], cluster_size=6, nsim=40, seed=2,
                         client="process", progress=False)
    t = res.tidy()
    assert t["estimate"].iloc[1] > t["estimate"].iloc[0]
    fig = res.plot()
    assert fig.kind == "power" and len(fig.data) == 2 and fig.svg().startswith("<?xml")


@pytest.mark.parametrize("kw, match", [
    ({"design": "three_level"}, "design"),
    ({"n_clusters": [2]}, "at least 4"),
    ({"n_clusters": "many"}, "n_clusters"),
    ({"icc": 1.0}, "icc"),
    ({"nsim": 1}, "nsim"),
    ({"alpha": 0}, "alpha"),
    ({"outcome": "count"}, "outcome"),
    ({"exposure_level": 3}, "exposure_level"),
])
def test_bad_designs_get_one_sentence(kw, match):
    args = dict(nsim=5, seed=1, progress=False, client="process")
    design = kw.pop("design", "two_level")
    args.update(kw)
    with pytest.raises(ModelSpecificationError, match=match):
        cimstats.power(design, **args)


def test_pilot_model_needs_its_data_and_a_known_term():
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"g": np.repeat(np.arange(10), 6), "x": rng.normal(size=60)})
    d["y"] = 0.4 * d["x"] + rng.normal(size=10)[d["g"]] + rng.normal(size=60)
    fit = cimstats.lmm("y ~ x + (1 | g)", d)
    with pytest.raises(ModelSpecificationError, match="term"):
        cimstats.power(pilot=fit, data=d, term="z", nsim=4, progress=False)
    with pytest.raises(ModelSpecificationError, match="DataFrame"):
        cimstats.power(pilot=fit, term="x", nsim=4, progress=False)
    res = cimstats.power(pilot=fit, data=d, term="x", effect=0.0, n_clusters=[10], cluster_size=6, nsim=30,
                         seed=1, client="process", progress=False)
    t = res.tidy().iloc[0]
    assert t["n_valid"] == 30 and t["estimate"] <= 0.3  # no effect: about alpha
    assert abs(t["mean_estimate"]) < 0.2


def test_power_command_writes_its_files_and_rejects_unknown_keys(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("design: two_level\neffect: 0.5\nexposure_level: 2\nbinary_exposure: true\n"
                    "n_clusters: [6, 8]\ncluster_size: 4\nnsim: 6\nseed: 1\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cimstats.cli.main", "power", str(plan), "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("power.csv", "power.html", "power.md", "power_curve.svg", "power_curve.png", "result/result.json"):
        assert (out / name).is_file(), name
    assert cimstats.load_result(out / "result").tidy()["n_sim"].tolist() == [6, 6]
    bad = tmp_path / "bad.yaml"
    bad.write_text("design: two_level\n__import__: os\n")
    done = subprocess.run(cmd[:4] + [str(bad), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown key(s) __import__" in done.stderr


def test_read_power_plan_refuses_what_is_not_a_mapping(tmp_path):
    from cimstats.cli.cmd_power import read_power_plan

    p = tmp_path / "p.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(PlanError, match="mapping"):
        read_power_plan(p)
    p.write_text("design: [unclosed\n")
    with pytest.raises(PlanError, match="YAML"):
        read_power_plan(p)


def test_bootstrap_lrt_agrees_with_pbkrtest():
    ref = json.loads((REF / "bootstrap_lrt.json").read_text())
    data = pd.read_csv(REF / ref["data"])
    for case in ref["tests"]:
        null = cimstats.lmm(case["null"], data, reml=False)
        alt = cimstats.lmm(case["alternative"], data, reml=False)
        res = cimstats.bootstrap_lrt(null, alt, nsim=200, seed=6, client="process", progress=False)
        t = res.tidy().iloc[0]
        assert t["estimate"] == pytest.approx(case["lrt"], rel=1e-4, abs=1e-5), case["name"]
        assert t["df"] == case["df"]
        assert t["p_chisq"] == pytest.approx(case["p_chisq"], rel=1e-3)
        assert _within(t["p_value"], t["n_used"], case["p_bootstrap"], case["nsim"]), (case["name"], t["p_value"])
