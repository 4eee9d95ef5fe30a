"""Where each hypothesis comes from: source fields and theme directions in the plan, the fidelity table, the
documentation page generated from it, and the support-process measures the shipped plan tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cimstats import networks
from cimstats.errors import NetworkDataError, PlanError
from cimstats.mechanisms import default_plan, read_mechanism_plan
from cimstats.mechanisms.fidelity import SOURCES, fidelity_table, plan_page_markdown

ROOT = Path(__file__).resolve().parents[1]


def _plan(**hyp) -> dict:
    h = {"id": "H1", "mechanism": "negotiation", "model": "m", "estimand": "x", "expected": "positive", **hyp}
    return {"models": {"m": {"template": "lmm", "formula": "y ~ x + (1 | g)"},
                       "inv": {"template": "invariance", "construct": "ce", "group": "country"}},
            "constructs": {"ce": {"kind": "scale", "instrument": "ce_personal8", "score": "ce"}},
            "hypotheses": [h]}


def test_theme_links_with_directions_are_parsed_and_round_trip():
    p = read_mechanism_plan(_plan(themes={"T1": "supports", "T3": "mixed"}))
    h = p.hypothesis("H1")
    assert h.theme_directions == {"T1": "supports", "T3": "mixed"}
    assert h.theme_ids == ["T1", "T3"]
    assert p.hypotheses.loc[0, "theme_ids"] == "T1;T3"
    again = read_mechanism_plan(p.to_dict())
    assert again.hypothesis("H1").theme_directions == {"T1": "supports", "T3": "mixed"}
    # the list form still links each theme with the theme's own direction
    old = read_mechanism_plan(_plan(themes=["T1", "T2"])).hypothesis("H1")
    assert old.theme_directions == {"T1": None, "T2": None}
    assert read_mechanism_plan(_plan(themes=["T1", "T2"])).to_dict()["hypotheses"][0]["themes"] == ["T1", "T2"]
    assert read_mechanism_plan(_plan()).hypothesis("H1").theme_directions == {}
    with pytest.raises(PlanError, match="not a hypothesis"):
        p.hypothesis("H9")


@pytest.mark.parametrize("themes, code", [({"T1": "strongly"}, "M021"), (7, "M021"), ([{"T1": 1}], "M021")])
def test_bad_theme_links_are_reported(themes, code):
    with pytest.raises(PlanError) as ei:
        read_mechanism_plan(_plan(themes=themes))
    assert code in [i.code for i in ei.value.report.errors]


def test_invariance_check_is_never_linked_to_a_theme():
    doc = _plan()
    doc["hypotheses"].append({"id": "H2", "mechanism": "collective_efficacy", "model": "inv", "estimand": "scalar",
                              "expected": "holds", "themes": {"T3": "supports"}})
    with pytest.raises(PlanError) as ei:
        read_mechanism_plan(doc)
    assert [i.code for i in ei.value.report.errors] == ["M022"]
    assert all(not h.theme_directions for h in default_plan().hypothesis_list()
               if default_plan().models[h.model]["template"] == "invariance")


def test_source_fields_are_optional_checked_and_kept():
    p = read_mechanism_plan(_plan(text="vassilev2014", concept="negotiation within networks",
                                  definition="re-shaping relationships, roles, expectations,\n means of engagement "
                                             "and communication between network members",
                                  operationalisation="roles gained", fidelity="partial"))
    h = p.hypothesis("H1")
    assert h.definition.startswith("re-shaping relationships, roles, expectations, means")  # white space folded
    assert read_mechanism_plan(p.to_dict()).hypothesis("H1") == h
    for bad, code in (({"fidelity": "perfect"}, "M023"), ({"concept": ["a"]}, "M023"), ({"colour": "red"}, "M023")):
        with pytest.raises(PlanError) as ei:
            read_mechanism_plan(_plan(**bad))
        assert code in [i.code for i in ei.value.report.errors]


def test_shipped_plan_is_faithful_or_partial_with_exact_quotes():
    t = fidelity_table()
    plan = default_plan()
    assert t["hypothesis_id"].tolist() == plan.hypotheses["hypothesis_id"].tolist()
    assert set(t["verdict"]) <= {"faithful", "partial"}, t.loc[~t["verdict"].isin(["faithful", "partial"])]
    for h in plan.hypothesis_list():
        passages = " ".join(" ".join(p.split()) for p in SOURCES[h.text]["passages"])
        assert h.definition in passages, h.hypothesis_id
        assert h.operationalisation and h.concept
    # the elements of collective efficacy and the theme of continuous interaction cite the second text
    ce = {h.element: h.text for h in plan.hypothesis_list() if h.element}
    assert ce == {"timing": "ce_metasynthesis", "trust": "ce_metasynthesis", "legitimising": "ce_metasynthesis",
                  "continuous_interaction": "ce_metasynthesis"}


def test_paraphrase_and_absent_fields_are_flagged():
    doc = default_plan().to_dict()
    hyps = copy.deepcopy(doc["hypotheses"])
    hyps[0]["definition"] = "finding and using the resources of a network"   # a paraphrase, not a quote
    hyps[1].pop("operationalisation")
    hyps[2]["concept"] = "network steering"
    hyps[3]["text"] = "some_book"
    doc["hypotheses"] = hyps
    t = fidelity_table(doc).set_index("hypothesis_id")
    ids = [h["id"] for h in hyps]
    assert t.loc[ids[0], "verdict"] == "distorted" and "word for word" in t.loc[ids[0], "reason"]
    assert t.loc[ids[1], "verdict"] == "missing" and "operationalisation" in t.loc[ids[1], "reason"]
    assert t.loc[ids[2], "verdict"] == "distorted" and "network steering" in t.loc[ids[2], "reason"]
    assert t.loc[ids[3], "verdict"] == "missing"


def test_every_process_hypothesis_of_the_shipped_plan_tests_its_own_measure():
    plan = default_plan()
    est = {h.hypothesis_id: h.estimand for h in plan.hypothesis_list()}
    assert {est[k] for k in ("NAV1", "NAV2", "CE4", "CE5", "CE6", "CE7", "NEG1")} == {
        "knowledge_share", "brokerage", "early_engagement", "group_trust", "legitimacy", "contact_change",
        "role_reallocation"}
    # change hypotheses adjust for the baseline value (ANCOVA); collective-efficacy models adjust for self-efficacy
    # (level followup: the outcome at follow-up, its baseline value added as a covariate by default)
    from cimstats.mechanisms.plan import change_formula
    assert change_formula(plan.models["negotiation"], plan.constructs)[0].startswith("sm ~ sm_baseline +")
    assert change_formula(plan.models["ce_sustaining"], plan.constructs)[0].startswith("ce ~ ce_baseline +")
    for mid in ("ce_building", "ce_sustaining"):
        assert " se " in plan.models[mid]["formula"]
    assert "se" in plan.models["ce_mediation"]["covariates"]
    # deprivation by the within-nation quintile
    assert plan.models["ce_mediation"]["moderator"] == "deprivation_q"
    assert "area_deprivation" not in " ".join(str(m) for m in plan.models.values())


def test_documentation_page_is_generated_from_the_plan():
    page = (ROOT / "docs" / "mechanisms.md").read_text(encoding="utf-8")
    assert page == plan_page_markdown(), ("regenerate docs/mechanisms.md with "
                                          "cimstats.mechanisms.fidelity.plan_page_markdown()")
    assert "distorted" not in page.split("## Hypotheses")[0].split("## Fidelity table")[1].split("|---|")[1]


def test_processes_match_the_tie_table_measures():
    """Effective size from each alter's reported number of others known equals Burt's from the tie table."""
    import networkx as nx

    rng = np.random.default_rng(5)
    rows, ties = [], []
    for e in range(30):
        k = int(rng.integers(0, 6))
        ids = [f"{e}-{j}" for j in range(k)]
        for j in range(k):
            rows.append({"patient_id": f"P{e}", "wave": 0, "alter_id": ids[j], "tie_type": "friend",
                         "knowledge_work": int(rng.integers(0, 2)), "help_onset": int(rng.integers(1, 4)),
                         "alter_trust": float(rng.integers(1, 6))})
        for a in range(k):
            for b in range(a + 1, k):
                if rng.random() < 0.4:
                    ties.append({"patient_id": f"P{e}", "wave": 0, "alter_a": ids[a], "alter_b": ids[b]})
    alters = pd.DataFrame(rows)
    tie_df = pd.DataFrame(ties)
    deg = pd.concat([tie_df["alter_a"], tie_df["alter_b"]]).value_counts()
    alters["n_known_others"] = alters["alter_id"].map(deg).fillna(0).astype(int)
    egos = pd.DataFrame({"patient_id": [f"P{e}" for e in range(30)], "wave": 0})
    net = networks.ego_networks(alters, egos=egos)
    got = networks.processes(net)
    # networkx: Burt's effective size of the ego in its ego network (ego tied to every alter)
    want = []
    for e in range(30):
        g = nx.Graph()
        g.add_node("ego")
        for a in alters.loc[alters["patient_id"] == f"P{e}", "alter_id"]:
            g.add_edge("ego", a)
        for r in tie_df.loc[tie_df["patient_id"] == f"P{e}"].itertuples():
            g.add_edge(r.alter_a, r.alter_b)
        want.append(nx.effective_size(g, nodes=["ego"])["ego"] if g.degree("ego") else 0.0)
    np.testing.assert_allclose(got["effective_size_reported"].to_numpy(), np.nan_to_num(want, nan=0.0), rtol=1e-12)
    known = alters.groupby("patient_id")["knowledge_work"].mean()
    np.testing.assert_allclose(got.set_index("patient_id").loc[known.index, "p_knowledge"], known, rtol=1e-12)
    early = alters.assign(e=alters["help_onset"].eq(1)).groupby("patient_id")["e"].mean()
    np.testing.assert_allclose(got.set_index("patient_id").loc[early.index, "early_help_share"], early, rtol=1e-12)
    assert got.loc[~got["patient_id"].isin(alters["patient_id"]), "p_knowledge"].isna().all()
    # the measures reach the wide table when their columns exist, and are absent otherwise
    assert "effective_size_reported" in networks.ego_measures(net).columns
    plain = networks.ego_networks(alters[["patient_id", "wave", "alter_id", "tie_type"]], egos=egos)
    assert "p_knowledge" not in networks.ego_measures(plain).columns
    with pytest.raises(NetworkDataError, match="knowledge_work"):
        networks.processes(plain)


def test_demo_study_carries_the_process_variables():
    from cimstats import datasets

    s = datasets.demo_study()
    for c in ("trust_1", "trust_3", "legit_1", "legit_4"):
        assert s.patients[c].between(1, 5).all()
    a = s.alters
    assert set(a["knowledge_work"].unique()) <= {0, 1} and set(a["help_onset"].unique()) <= {1, 2, 3}
    # reported degrees are those of a simple graph: even sum per patient and wave, at most size - 1
    g = a.groupby(["patient_id", "wave"])
    assert (g["n_known_others"].sum() % 2 == 0).all()
    assert (a["n_known_others"] <= a.groupby(["patient_id", "wave"])["alter_id"].transform("size") - 1).all()
    t = datasets.planted_truth()
    assert t["collective_efficacy"]["early_help_share"] > 0 and t["self_management"]["p_knowledge"] > 0
