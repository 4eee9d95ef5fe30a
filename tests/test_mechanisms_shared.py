"""The two-level template of an analysis plan (``twolevel_sem``) and hypothesis CE8: collective efficacy as a
property the members of the patient's network share, against lavaan, checked when the plan is read, and not
testable when too few networks have two or more reporting members."""

from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import PlanError
from cimstats.mechanisms import default_plan, model_frame, read_mechanism_plan, test_mechanisms
from cimstats.mechanisms.evaluate import _Fit
from cimstats.mechanisms.twolevel_template import fit_twolevel_sem, twolevel_syntax

datasets = pytest.importorskip("cimstats.datasets")

REFERENCE = Path(__file__).parent / "reference" / "mechanisms_ce8.json"
FRAME = Path(__file__).parent / "reference" / "data" / "mechanisms_ce8.csv.gz"
ITEMS = [f"member_ce_{k}" for k in range(1, 5)]


@pytest.fixture(scope="module")
def ref():
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ce8_fit():
    """The plan's model ce_shared fitted by the template on the stored frame of the demo study."""
    spec = default_plan().models["ce_shared"]
    frame = pd.read_csv(FRAME)
    fit = _Fit("ce_shared", "twolevel_sem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_twolevel_sem(fit, spec, frame, 0.95)
    return fit


@pytest.fixture(scope="module")
def study():
    return datasets.demo_study()


def _one_sentence(text: str) -> bool:
    return text.endswith(".") and not re.search(r"\.\s+[A-Z]", text)


def _key(lhs, op, rhs, level):
    return (int(level), op, *(sorted((lhs, rhs)) if op == "~~" else (lhs, rhs)))


def test_ce8_model_agrees_with_lavaan(ce8_fit, ref):
    """Every parameter, its standard error and the log-likelihood as lavaan gives them, to 1e-4."""
    res = ce8_fit.result
    covs = [c for c in ref["model"].splitlines()[-1].split("~")[1].split("+")]
    assert twolevel_syntax(default_plan().models["ce_shared"], [c.strip() for c in covs]) == ref["model"]
    assert res.model == ref["model"]
    assert (res.nobs, res.nclusters) == (ref["nobs"], ref["nclusters"])
    theirs = {_key(p["lhs"], p["op"], p["rhs"], p["level"]): p for p in ref["params"]}
    t = res.table
    assert len(t) == len(theirs)
    for r in t.itertuples(index=False):
        p = theirs[_key(r.lhs, r.op, r.rhs if r.op != "~1" else "", r.level)]
        assert r.estimate == pytest.approx(p["est"], abs=1e-4), (r.lhs, r.op, r.rhs, r.level)
        if r.free > 0:
            assert r.std_error == pytest.approx(p["se"], abs=1e-4), (r.lhs, r.op, r.rhs, r.level)
    fm = res.fit_measures()
    assert fm["logl"] == pytest.approx(ref["fit"]["logl"], abs=1e-4)
    assert fm["npar"] == ref["fit"]["npar"] and fm["df"] == ref["fit"]["df"]
    # lavaan's own saturated model stops early (its EM tolerance is fixed); fitted as a model it agrees
    assert fm["unrestricted.logl"] == pytest.approx(ref["fit"]["unrestricted.logl.saturated_model"], abs=1e-4)
    assert fm["chisq"] == pytest.approx(ref["fit"]["chisq.saturated_model"], abs=1e-4)
    # the estimand is the labelled parameter, under its label
    lab = next(p for p in ref["params"] if p["label"] == "shared_ce")
    hit = ce8_fit.terms.set_index("term").loc["shared_ce"]
    assert hit["estimate"] == pytest.approx(lab["est"], abs=1e-4)
    assert hit["std_error"] == pytest.approx(lab["se"], abs=1e-4)


def test_agreement_before_aggregation_agrees_with_multilevel(ce8_fit, ref):
    a, want = ce8_fit.extra["agreement"], ref["agreement"]
    assert (a["rows"], a["clusters"], ce8_fit.extra["clusters_2plus"]) == (want["rows"], want["clusters"],
                                                                          want["clusters_2plus"])
    for k in ("icc1", "icc2", "rwg_median", "rwg_mean"):
        assert a[k] == pytest.approx(want[k.replace("rwg_", "rwg_j_")], abs=1e-10), k
    d = ce8_fit.diagnostics
    assert f"ICC(1) {want['icc1']:.3f}" in d and f"rwg(j) median {want['rwg_j_median']:.3f}" in d
    assert "aggregation to the cluster is supported" in d and a["aggregation_supported"]
    assert f"{want['clusters_2plus']} with 2+ complete rows (at least 50 required)" in d


def test_ce8_row_of_the_mechanism_table(study):
    res = test_mechanisms(study, hypotheses=["CE8"])
    r = res.table.set_index("hypothesis_id").loc["CE8"]
    assert r["template"] == "twolevel_sem" and r["estimand"] == "shared_ce"
    fit = res.fit("ce_shared")
    assert fit.kind == "sem_twolevel"
    lab = fit.tidy().set_index("label").loc["shared_ce"]
    assert r["estimate"] == lab["estimate"] and r["ci_lower"] == lab["ci_lower"] and r["p_value"] == lab["p_value"]
    # every row of the frame is either used or counted as set aside
    frame = model_frame(study, "ce_shared")
    assert r["n"] + r["n_dropped"] == len(frame)
    assert "ICC(1)" in r["diagnostics"] and "rwg(j)" in r["diagnostics"]
    assert r["verdict"] == "supported", r["verdict_reason"]


def test_ce8_result_saves_loads_and_feeds_displays(study, tmp_path):
    from cimstats.integrate import joint_display, read_theme_codebook
    from cimstats.render.figures.forest import forest_plot, forest_table
    from importlib import resources

    res = test_mechanisms(study, hypotheses=["NAV1", "CE8"])
    res.save(tmp_path / "mech")
    back = cimstats.load_result(tmp_path / "mech")
    pd.testing.assert_frame_equal(back.table, res.table)
    assert "CE8" in back.to_text()
    res.fit("ce_shared").save(tmp_path / "ce_shared")
    fit = cimstats.load_result(tmp_path / "ce_shared")
    pd.testing.assert_frame_equal(fit.tidy(), res.fit("ce_shared").tidy())
    cb = read_theme_codebook(resources.files("cimstats.datasets") / "data" / "themes.yaml")
    jd = joint_display(back, kind="side_by_side", codebook=cb)
    assert "CE8" in jd.to_frame().to_string()
    rows = forest_table(back)
    assert "CE8" in " ".join(map(str, rows.to_numpy().ravel()))
    assert forest_plot(back).kind


def _plan_with(**changes) -> dict:
    doc = default_plan().subset(["CE8"]).to_dict()
    doc["models"]["ce_shared"].update(changes)
    for k, v in list(changes.items()):
        if v is None:
            doc["models"]["ce_shared"].pop(k)
    return doc


@pytest.mark.parametrize("changes, code, words", [
    ({"within": "level: 1\nce_w =~ member_ce_1 + member_ce_2"}, "M024", "'level:' line in within"),
    ({"between": "ce_b =~ member_ce_1 +"}, "M024", "between block that cannot be read"),
    ({"between": "ce_b =~ member_ce_1 + member_ce_2; sm ~ shared_ce*ce_b; d := shared_ce*2"}, "M024",
     "defined parameters and constraints"),
    ({"within": "ce_b =~ member_ce_1 + member_ce_2"}, "M024", "in both within and between"),
    ({"cluster": "patient id"}, "M024", "has cluster"),
    ({"cluster": "sm"}, "M024", "cluster column 'sm' as a model variable"),
    ({"cluster": "country"}, "M024", "cluster column 'country' as a model variable"),
    ({"covariates": "country"}, "M024", "has covariates"),
    ({"covariates": ["member_ce_1"]}, "M024", "which the within block uses too"),
    ({"between": "ce_b =~ member_ce_1 + member_ce_2 + member_ce_3"}, "M024", "no regression"),
    ({"min_clusters": 1}, "M025", "min_clusters 1"),
    ({"min_clusters": "many"}, "M025", "min_clusters 'many'"),
    ({"min_clusters": True}, "M025", "min_clusters True"),
    ({"options": 1}, "M025", "options 1"),
    ({"within": None}, "M006", "lacks 'within'"),
])
def test_bad_two_level_entries_are_reported(changes, code, words):
    with pytest.raises(PlanError) as ei:
        read_mechanism_plan(_plan_with(**changes))
    issues = [i for i in ei.value.report.errors if i.code == code]
    assert issues, [(i.code, i.message) for i in ei.value.report.errors]
    assert any(words in i.message for i in issues), [i.message for i in issues]
    assert all(_one_sentence(i.message) for i in issues), [i.message for i in issues]


def test_estimand_must_be_a_label_of_the_model():
    doc = default_plan().subset(["CE8"]).to_dict()
    doc["hypotheses"][0]["estimand"] = "ce_b"
    with pytest.raises(PlanError) as ei:
        read_mechanism_plan(doc)
    (issue,) = ei.value.report.errors
    assert issue.code == "M014" and "labels: shared_ce" in issue.message and _one_sentence(issue.message)


def test_the_shipped_entry_reads_and_round_trips():
    p = default_plan()
    spec = p.models["ce_shared"]
    assert spec["template"] == "twolevel_sem" and spec["min_clusters"] == 50
    h = p.hypothesis("CE8")
    assert h.estimand == "shared_ce" and h.mechanism == "collective_efficacy"
    assert p.required_variables("ce_shared") == ITEMS + ["sm", "se", "country", "patient_id"]
    assert read_mechanism_plan(p.subset(["CE8"]).to_dict()).models["ce_shared"] == spec


def test_too_few_networks_with_two_reporting_members_is_not_testable(study):
    # hostile data: keep the members' answers of one member per network only
    A = study.alters.copy()
    rep = A[ITEMS].notna().all(axis=1)
    second = rep & A.loc[rep].groupby("patient_id").cumcount().reindex(A.index).gt(0)
    A.loc[second, ITEMS] = np.nan
    res = test_mechanisms((study.patients, A), hypotheses=["CE8"])
    r = res.table.iloc[0]
    assert r["verdict"] == "not testable"
    assert "only 0 of the" in r["verdict_reason"] and "at least 50 (min_clusters)" in r["verdict_reason"]
    assert res.models.set_index("model_id").loc["ce_shared", "status"] == "not testable"
    # the plan's threshold decides: the demo's networks with two or more reporting members fall short of a
    # stricter plan
    f = model_frame(study, "ce_shared").dropna()
    sizes = f.groupby("patient_id").size()
    n2 = int((sizes >= 2).sum())
    res = test_mechanisms(study, _plan_with(min_clusters=n2 + 1))
    r = res.table.iloc[0]
    assert r["verdict"] == "not testable" and f"at least {n2 + 1} (min_clusters)" in r["verdict_reason"]
    assert f"only {n2} of the {len(sizes)} clusters ('patient_id')" in r["verdict_reason"]
    assert _one_sentence(r["verdict_reason"] + ".")
    assert test_mechanisms(study, _plan_with(min_clusters=n2)).table.iloc[0]["verdict"] != "not testable"


def test_categorical_covariates_enter_as_indicators_with_usable_names():
    rng = np.random.default_rng(5)
    J, n = 120, 4
    g = np.repeat(np.arange(J), n)
    shared = rng.normal(size=J)
    region = np.array(["north-west", "south east", "centre"])[rng.integers(0, 3, J)]
    y = 0.5 * shared + (region == "centre") * 0.3 + rng.normal(scale=0.5, size=J)
    own = rng.normal(size=J * n)
    d = pd.DataFrame({f"x{i}": shared[g] + 0.8 * own + rng.normal(scale=0.6, size=J * n) for i in (1, 2, 3)})
    d["g"], d["y"], d["region"] = g, y[g], region[g]
    spec = {"template": "twolevel_sem", "cluster": "g", "within": "fw =~ x1 + x2 + x3",
            "between": "fb =~ x1 + x2 + x3; y ~ b*fb", "covariates": ["region"], "min_clusters": 20}
    fit = _Fit("m", "twolevel_sem")
    fit_twolevel_sem(fit, spec, d, 0.95)
    terms = fit.result.tidy()
    assert {"regionnorth_west", "regionsouth_east"} <= set(terms["rhs"])
    assert fit.terms.set_index("term").loc["b", "estimate"] == pytest.approx(0.5, abs=0.15)
    assert "rwg(j)" not in fit.diagnostics and "ICC(1)" in fit.diagnostics  # no options: no rwg(j)


def test_ce8_pools_over_imputations_with_rubins_rules(study):
    from cimstats.mechanisms.pooled import impute_patients, test_mechanisms_imputed

    P = study.patients.copy()
    rng = np.random.default_rng(4)
    for c in ("semcd_1", "semcd_2"):
        P.loc[rng.random(len(P)) < 0.15, c] = np.nan
    imputation = {"m": 2, "seed": 11, "iterations": 2, "method": {"income_equiv": "norm"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = test_mechanisms_imputed({"patients": P, "alters": study.alters}, hypotheses=["CE8"],
                                         imputation=imputation).table.iloc[0]
        _, tables = impute_patients(P, imputation)
        runs = [test_mechanisms({"patients": t, "alters": study.alters}, hypotheses=["CE8"]).table.iloc[0]
                for t in tables]
    q = np.array([r["estimate"] for r in runs])
    u = np.array([r["std_error"] for r in runs]) ** 2
    total = u.mean() + (1 + 1 / len(q)) * q.var(ddof=1)
    assert pooled["estimate"] == pytest.approx(q.mean(), rel=1e-12)
    assert pooled["std_error"] == pytest.approx(np.sqrt(total), rel=1e-10)
    assert pooled["verdict"] == "supported" and "pooled over 2 imputations" in pooled["verdict_reason"]


def test_categorical_covariates_become_indicators_named_for_model_syntax():
    """One rule for the covariates of every template: indicators per category after the first, missing where
    the covariate is; names written into model syntax are made safe, and one that is already a column is refused."""
    from cimstats.errors import ModelSpecificationError
    from cimstats.mechanisms._covariates import indicator_columns

    d = pd.DataFrame({"age": [60.0, 70.0, 65.0, 61.0], "education": ["high", "low-mid", None, "high"]})
    out, names = indicator_columns(d, ["age", "education"])
    assert names == ["age", "educationlow-mid"]
    assert out["educationlow-mid"].tolist()[:2] == [0.0, 1.0] and np.isnan(out["educationlow-mid"].iloc[2])
    out, names = indicator_columns(d, ["age", "education"], syntax_names=True)
    assert names == ["age", "educationlow_mid"] and "educationlow_mid" in out
    with pytest.raises(ModelSpecificationError, match="indicator name 'educationlow_mid' is already a column"):
        indicator_columns(d.assign(educationlow_mid=1.0), ["education"], syntax_names=True)
