"""The construct table: each measure declared once, computed once, and handed from the measure stage to the
mechanism tests with the same numbers."""

from __future__ import annotations

import ast
import collections
import sys

import pandas as pd
import pytest
import yaml

import cimstats
from cimstats.errors import PlanError
from cimstats.measures.constructs import ConstructTable, Measures, network_constructs, scale_constructs
from cimstats.mechanisms import default_plan, model_frame, read_mechanism_plan, test_mechanisms

from conftest import ROOT

datasets = pytest.importorskip("cimstats.datasets")

#: LMM hypotheses of the default plan that use every kind of construct (scale, network, change, wave difference)
FAST = ["NAV1", "NEG1", "CE4", "CE5"]
INSTRUMENTS = [{"instrument": "ce_personal8", "scores": None, "items": None},
               {"instrument": "heiq", "scores": ["self_monitoring_insight"], "items": None},
               {"instrument": "semcd6", "scores": None, "items": None},
               {"instrument": "ce_group_process", "scores": ["group_trust", "legitimacy"], "items": None}]


@pytest.fixture(scope="module")
def study():
    return datasets.demo_study()


def _stage_measures(study) -> Measures:
    """Measures as the scales and networks steps compute them (their functions, their options)."""
    from cimstats.measures import networks as nw, score_scale

    P, A = study.patients, study.alters
    ego = P[["patient_id", "wave"]].copy()
    for spec in INSTRUMENTS:
        sc = score_scale(P, spec["instrument"], scores=spec["scores"], out_of_range="report")
        for c in sc.scores.columns:
            ego[c] = sc.scores[c].to_numpy()
    net = nw.ego_networks(A, egos=P[["patient_id", "wave", "country", "practice_id"]], ties=study.alter_ties)
    m = nw.ego_measures(net, join=False)
    ego = ego.merge(m, on=["patient_id", "wave"], how="outer")
    ch = nw.change(net, waves=(0, 1))
    table = ConstructTable(scale_constructs(INSTRUMENTS)).merged(
        ConstructTable(network_constructs([c for c in m.columns if c not in ("patient_id", "wave")])))
    return Measures(ego, change=ch.egos, change_alters=ch.alters, constructs=table)


def test_mechanism_table_is_the_same_with_precomputed_measures(study):
    own = test_mechanisms(study, hypotheses=FAST, n_boot=50, seed=3)
    given = _stage_measures(study)
    handed = test_mechanisms(study, hypotheses=FAST, n_boot=50, seed=3, measures=given)
    assert given.computed == []  # nothing computed again
    pd.testing.assert_frame_equal(handed.table, own.table)
    pd.testing.assert_frame_equal(handed.models.drop(columns="seconds"), own.models.drop(columns="seconds"))
    assert (own.table["verdict"] != "not testable").all(), own.table["verdict_reason"].tolist()
    # every model's frame, at every level (invariance items, alter-level change included)
    for mid in default_plan().models:
        pd.testing.assert_frame_equal(model_frame(study, mid, measures=given), model_frame(study, mid), obj=mid)


def test_only_missing_measures_are_computed(study):
    full = _stage_measures(study)
    # a plain table: columns found by construct name (the scale scores CE5 needs are given, not its network measures)
    part = Measures(full.ego[["patient_id", "wave", "ce", "group_trust", "semcd"]].rename(columns={"semcd": "se"}))
    res = test_mechanisms(study, hypotheses=["CE5"], n_boot=50, seed=3, measures=part)
    assert part.computed == ["ego networks", "network measures"]  # the scores were given; the network measures were not
    assert res.table["verdict"].iloc[0] != "not testable"
    short = full.ego.iloc[5:]
    with pytest.raises(PlanError, match="no row for 5 patient-wave"):
        test_mechanisms(study, hypotheses=["CE5"], n_boot=50, measures=Measures(short, constructs=full.constructs))


def test_one_name_one_definition():
    t = ConstructTable(scale_constructs([{"instrument": "heiq", "scores": ["self_monitoring_insight"]}]))
    t = t.merged({"sm": {"kind": "scale", "instrument": "heiq", "score": "self_monitoring_insight"}})
    assert t.aliases("sm") == ["self_monitoring_insight", "sm"]
    with pytest.raises(PlanError, match="declared twice"):
        t.merged({"sm": {"kind": "scale", "instrument": "heiq", "score": "health_directed_activity"}})
    with pytest.raises(PlanError, match="unknown key"):
        ConstructTable.from_spec({"x": {"kind": "network", "measure": "size", "instrument": "heiq"}})
    assert set(t.to_frame()["computed_by"]) == {"cimstats.score_scale"}


def _demo_doc(**mechanisms) -> dict:
    doc = yaml.safe_load(cimstats.pipeline.demo_plan_path().read_text(encoding="utf-8"))
    mech = yaml.safe_load((ROOT / "src/cimstats/mechanisms/default_plan.yaml").read_text(encoding="utf-8"))
    keep = {h["model"] for h in mech["hypotheses"] if h["id"] in FAST + ["NEG2"]}
    mech["models"] = {k: v for k, v in mech["models"].items() if k in keep}
    mech["hypotheses"] = [h for h in mech["hypotheses"] if h["model"] in keep]
    doc["mechanisms"] = {"plan": mech, "adjust": "holm", "n_boot": 50, **mechanisms}
    doc.pop("qualitative")
    doc.pop("joint_displays")
    doc["outputs"] = {"data": ["parquet"], "tables": [], "figures": [], "report": False}
    return doc


def test_one_run_computes_each_measure_once(tmp_path, monkeypatch):
    """One ``cimstats run`` of the demo plan: every score, the ego networks, their measures and the network change
    are computed exactly once, and the dictionary and the mechanism plan are each read once."""
    import cimstats.dictionary as D
    import cimstats.measures as M
    import cimstats.measures.networks as N
    import cimstats.measures.scales as S
    import cimstats.mechanisms as MECH
    import importlib

    from cimstats.measures.networks import core
    from cimstats.measures.scales import scoring

    change_mod = importlib.import_module("cimstats.measures.networks.change")  # the package's `change` is the function
    measures_mod = importlib.import_module("cimstats.measures.networks.measures")

    counts: collections.Counter = collections.Counter()

    def counting(name, fn, key=None):
        def wrapper(*args, **kwargs):
            res = fn(*args, **kwargs)
            for k in (key(args, kwargs, res) if key else [name]):
                counts[k] += 1
            return res
        return wrapper

    def scored(args, kwargs, res):
        return [f"score {res.instrument.id}/{c}" for c in res.scores.columns]

    targets = [("score_scale", [scoring, S, M], scored), ("ego_networks", [core, N], None),
               ("ego_measures", [measures_mod, N], None), ("change", [change_mod, N], None)]
    def everywhere(name, original, replacement):
        # every cimstats module that holds the function (imported by name at module level) gets the counter
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("cimstats") and getattr(mod, name, None) is original:
                monkeypatch.setattr(mod, name, replacement)

    for name, modules, key in targets:
        original = getattr(modules[0], name)
        everywhere(name, original, counting(name, original, key))
    reads = collections.Counter()
    real_dictionary, real_plan = D.read_dictionary, MECH.read_mechanism_plan
    everywhere("read_dictionary", real_dictionary,
               lambda *a, **k: reads.update(["dictionary"]) or real_dictionary(*a, **k))
    everywhere("read_mechanism_plan", real_plan,
               lambda plan, **k: (reads.update(["mechanism plan"]) if not isinstance(plan, MECH.MechanismPlan) else None)
               or real_plan(plan, **k))

    res = cimstats.run(_demo_doc(), out=tmp_path / "out")
    assert res.ran == ["demo_files", "data", "scales", "networks", "mechanisms"]
    scores = {k: v for k, v in counts.items() if k.startswith("score ")}
    assert {"score ce_personal8/ce", "score heiq/self_monitoring_insight"} <= set(scores)
    assert set(scores.values()) == {1}, scores
    assert counts["ego_networks"] == counts["ego_measures"] == counts["change"] == 1, counts
    assert reads == {"dictionary": 1, "mechanism plan": 1}, reads
    table = pd.read_csv(tmp_path / "out/mechanisms/mechanism_table.csv")
    assert (table["verdict"] != "not testable").all(), table["verdict_reason"].tolist()


def test_options_are_checked_in_one_place(tmp_path):
    from cimstats.pipeline import read_analysis_plan

    for option, value in (("n_boot", 10**6), ("adjust", "bonferroni"), ("level", 95)):
        with pytest.raises(PlanError) as direct:
            test_mechanisms(pd.DataFrame({"patient_id": [1]}), **{option: value})  # options are checked first
        with pytest.raises(PlanError) as planned:
            read_analysis_plan(_demo_doc(**{option: value}))
        rows = [i.message for i in planned.value.report.errors]
        assert rows == [str(direct.value).replace(f"`{option}`", f"mechanisms.{option}")]


def test_mechanisms_and_constructs_are_plan_data():
    plan = yaml.safe_load((ROOT / "src/cimstats/mechanisms/default_plan.yaml").read_text(encoding="utf-8"))
    plan["mechanisms"] = {"peer_support": {"label": "Peer support", "elements": ["reciprocity"]}}
    for h in plan["hypotheses"]:
        h["mechanism"] = "peer_support"
        h.pop("element", None)
    plan["hypotheses"][0]["element"] = "reciprocity"
    p = read_mechanism_plan(plan)
    assert set(p.hypotheses["mechanism"]) == {"peer_support"} and p.mechanism_label("peer_support") == "Peer support"
    assert read_mechanism_plan(p.to_dict()).hypotheses.equals(p.hypotheses)
    plan["hypotheses"][1]["mechanism"] = "network_navigation"  # not declared by this plan
    with pytest.raises(PlanError) as err:
        read_mechanism_plan(plan)
    assert [i.code for i in err.value.report.errors] == ["M012"]
    # generic code names no mechanism, element or construct of the demo study
    demo = set(default_plan().mechanisms) | {e for v in default_plan().mechanisms.values() for e in v["elements"]}
    demo |= {n for n, c in default_plan().constructs.items() if c["kind"] in ("change", "wave_difference")}
    src = ROOT / "src/cimstats"
    for f in sorted((src / "measures").rglob("*.py")) + sorted((src / "mechanisms").glob("*.py")):
        strings = {n.value for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not strings & demo, (f.name, strings & demo)


def test_analysis_plan_constructs_are_named_by_the_mechanism_plan():
    """A construct of the analysis plan (a score of its instruments, or one of its constructs) is named by the
    mechanism plan without being declared again."""
    from cimstats.pipeline import read_analysis_plan

    doc = _demo_doc()
    doc["constructs"] = {"support_size": {"kind": "network", "measure": "size"}}
    mech = doc["mechanisms"]["plan"]
    mech["constructs"].pop("sm")
    mech["models"]["knowledge_navigation"]["formula"] = ("self_monitoring_insight ~ knowledge_share + support_size "
                                                         "+ country + (1 | practice_id)")
    mech["models"]["negotiation"]["formula"] = ("sm_change ~ self_monitoring_insight + role_reallocation + country "
                                                "+ (1 | practice_id)")
    mech["constructs"]["sm_change"] = {"kind": "wave_difference", "of": "self_monitoring_insight"}
    ap = read_analysis_plan(doc)
    assert {"self_monitoring_insight", "support_size", "ce"} <= set(ap.constructs)
    assert ap.mechanism_plan.constructs["support_size"] == {"kind": "network", "measure": "size"}
    doc["constructs"]["ce"] = {"kind": "scale", "instrument": "heiq", "score": "self_monitoring_insight"}
    doc["constructs"]["bad"] = {"kind": "magic"}
    with pytest.raises(PlanError) as err:
        read_analysis_plan(doc)
    codes = [i.code for i in err.value.report.errors]
    assert codes.count("P015") == 2, err.value.report.summary()  # a second definition of 'ce'; an unknown kind


def test_national_quantile_and_education_group_constructs(study):
    """Within-nation income quintiles (1 = lowest fifth) and broad ISCED groups, as the deprivation module gives."""
    import numpy as np

    from cimstats.dictionary.deprivation import isced_broad, within_nation_quantiles

    spec = {"income_q": {"kind": "national_quantile", "of": "income_equiv", "by": "country", "n": 5,
                         "direction": "lower_more_deprived"},
            "education": {"kind": "education_group", "of": "education_isced"}}
    plan = {"constructs": spec, "models": {"m": {"template": "lmm", "wave": 0,
                                                 "formula": "hba1c_mmol ~ income_q + education + (1 | practice_id)"}},
            "hypotheses": [{"id": "H1", "mechanism": "negotiation", "model": "m", "estimand": "income_q",
                            "expected": "negative"}]}
    f = model_frame(study, "m", plan)
    P = study.patients.loc[study.patients["wave"] == 0].reset_index(drop=True)
    with pytest.warns(Warning):
        want = within_nation_quantiles(P["income_equiv"], nation=P["country"], n=5,
                                       direction="lower_more_deprived").codes
    np.testing.assert_array_equal(f["income_q"].to_numpy(), want.to_numpy(dtype=float, na_value=np.nan))
    # within each country: quintile 1 holds the lowest incomes, and the five groups are about equal (incomes
    # are rounded, and tied values share a group)
    for _, g in P.assign(q=f["income_q"]).dropna(subset=["q"]).groupby("country"):
        by_q = g.groupby("q")["income_equiv"]
        assert (by_q.max().to_numpy()[:-1] <= by_q.min().to_numpy()[1:]).all()
        assert by_q.size().min() >= 0.8 * len(g) / 5
    groups = {1: "low", 2: "medium", 3: "high"}
    broad = isced_broad(P["education_isced"])
    assert f["education"].tolist() == [groups[int(b)] if pd.notna(b) else f["education"].iloc[i]
                                       for i, b in enumerate(broad)]
    assert f["education"].isna().sum() == P["education_isced"].isna().sum()
    bad = {**spec, "income_q": {**spec["income_q"], "direction": "richer"}}
    with pytest.raises(PlanError) as ei:
        read_mechanism_plan({**plan, "constructs": bad})
    assert "lower_more_deprived" in str(ei.value.report.errors[0].message)
