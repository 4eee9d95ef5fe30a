"""Ego-network measures on small hand-checkable networks, bad input, waves, typology,
and property tests (row-order invariance, zeros for egos without alters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cimstats
from cimstats import networks
from cimstats.errors import NetworkDataError

# ego A: partner, family, friend (partner-family tied); B: weak tie, group; C: nobody; D: a pet
EGOS = pd.DataFrame({"patient_id": ["A", "B", "C", "D"], "practice_id": [1, 1, 2, 2], "age": [60, 70, 65, 80]})
ALTERS = pd.DataFrame({
    "patient_id": ["A", "A", "A", "B", "B", "D"], "alter_id": [1, 2, 3, 4, 5, 6],
    "tie_type": ["partner", "family", "friend", "weak_tie", "group", "pet"],
    "illness_work": [1, 0, 1, 0, 0, 0], "everyday_work": [1, 1, 0, 0, 0, 0],
    "emotional_work": [1, 0, 1, 0, 1, 0], "circle": [1, 1, 2, 3, 3, 1],
    "contact_freq": [5, 4, 3, 1, 2, 5], "coresident": [1, 0, 0, 0, 0, 1]})
TIES = pd.DataFrame({"patient_id": ["A"], "alter_a": [1], "alter_b": [2]})
NOWAVE = {"wave": None}


@pytest.fixture
def net():
    return networks.ego_networks(ALTERS, egos=EGOS, ties=TIES, columns=NOWAVE)


def col(df, name):
    return df[name].tolist()


def test_size_keeps_true_zeros(net):
    s = networks.size(net)
    assert col(s, "patient_id") == ["A", "B", "C", "D"]
    assert col(s, "size") == [3, 2, 0, 1]
    assert col(networks.size(net, exclude=["pet"]), "size") == [3, 2, 0, 0]


def test_composition(net):
    c = networks.composition(net)
    assert col(c, "n_partner") == [1, 0, 0, 0]
    assert col(c, "n_pet") == [0, 0, 0, 1]
    assert c["p_friend"].iloc[0] == pytest.approx(1 / 3)
    assert np.isnan(c["p_friend"].iloc[2])  # no alters: share undefined, count zero
    props = c[[f"p_{t}" for t in networks.TIE_TYPES]]
    assert np.allclose(props.iloc[[0, 1, 3]].sum(axis=1), 1)


def test_blau_and_iqv(net):
    h = networks.heterogeneity(net)
    assert h["blau"].iloc[0] == pytest.approx(1 - 3 * (1 / 3) ** 2)
    assert h["blau"].iloc[1] == pytest.approx(0.5)
    assert h["blau"].iloc[3] == 0 and np.isnan(h["blau"].iloc[2])
    K = len(networks.TIE_TYPES)
    assert h["iqv"].iloc[0] == pytest.approx((2 / 3) / (1 - 1 / K))
    assert col(h, "n_tie_types") == [3, 2, 0, 1]


def test_ei_index(net):
    e = networks.ei_index(net)
    # A: internal partner+family = 2, external friend = 1 -> (1 - 2)/3
    assert e["ei_index"].iloc[0] == pytest.approx(-1 / 3)
    assert e["ei_index"].iloc[1] == 1  # weak tie + group: all external
    assert np.isnan(e["ei_index"].iloc[2]) and np.isnan(e["ei_index"].iloc[3])  # pet is in neither group
    e2 = networks.ei_index(net, internal=["partner"], external=["family", "friend"])
    assert e2["ei_index"].iloc[0] == pytest.approx((2 - 1) / 3)
    with pytest.raises(NetworkDataError, match="both internal and external"):
        networks.ei_index(net, internal=["partner"], external=["partner"])
    with pytest.raises(NetworkDataError, match="neighbour"):
        networks.ei_index(net, internal=["neighbour"])


def test_weak_and_group_ties(net):
    w = networks.weak_tie_share(net)
    assert col(w, "n_weak") == [0, 1, 0, 0]
    assert w["weak_tie_share"].iloc[1] == 0.5
    g = networks.group_ties(net)
    assert col(g, "n_group_ties") == [0, 1, 0, 0]
    assert col(g, "any_group_tie") == [0, 1, 0, 0]


def test_circles_contact_coresidence(net):
    c = networks.circles(net)
    assert col(c, "n_circle_1") == [2, 0, 0, 1]
    assert col(c, "n_circle_3") == [0, 2, 0, 0]
    assert c["mean_contact_freq"].iloc[0] == pytest.approx(4)
    assert np.isnan(c["mean_contact_freq"].iloc[2])
    assert col(c, "n_coresident") == [1, 0, 0, 1]


def test_support_work_who_provides(net):
    s = networks.support_work(net)
    assert col(s, "n_illness") == [2, 0, 0, 0]
    assert s["p_illness"].iloc[0] == pytest.approx(2 / 3)
    assert col(s, "n_illness_partner") == [1, 0, 0, 0]
    assert col(s, "n_illness_friend") == [1, 0, 0, 0]
    assert s["share_illness_friend"].iloc[0] == 0.5
    assert np.isnan(s["share_illness_friend"].iloc[1])  # B has no illness-work provider
    assert col(s, "n_emotional_group") == [0, 1, 0, 0]
    assert col(s, "n_providers") == [3, 1, 0, 0]
    assert col(s, "n_multiplex") == [2, 0, 0, 0]  # partner (3 kinds), friend (2 kinds)
    assert s["mean_roles"].iloc[0] == pytest.approx((3 + 1 + 2) / 3)


def test_structure_hand_values(net):
    st_ = networks.structure(net)
    # A: n = 3, one alter-alter tie
    assert st_["density"].iloc[0] == pytest.approx(1 / 3)
    assert st_["effective_size"].iloc[0] == pytest.approx(3 - 2 * 1 / 3)
    # constraint: alters 1, 2 each (1/3 + 1/3 * 1/2)^2, alter 3 (1/3)^2
    assert st_["constraint"].iloc[0] == pytest.approx(2 * (1 / 3 + 1 / 6) ** 2 + (1 / 3) ** 2)
    assert st_["constraint"].iloc[1] == pytest.approx(0.5)  # two unconnected alters
    assert st_["constraint"].iloc[3] == 1 and np.isnan(st_["constraint"].iloc[2])
    assert st_["effective_size"].iloc[2] == 0 and np.isnan(st_["density"].iloc[3])


def test_structure_needs_ties():
    net = networks.ego_networks(ALTERS, egos=EGOS, columns=NOWAVE)
    with pytest.raises(NetworkDataError, match="ties="):
        networks.structure(net)


def test_structure_matches_networkx_on_random_ego_networks():
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(3)
    egos, alters, ties = [], [], []
    graphs = {}
    aid = 0
    for e in range(25):
        n = int(rng.integers(1, 8))
        ids = list(range(aid, aid + n))
        aid += n
        egos.append(f"E{e}")
        G = nx.Graph()
        G.add_edges_from(("ego", i) for i in ids)
        for i in ids:
            alters.append((f"E{e}", i, "friend"))
        for x in range(n):
            for y in range(x + 1, n):
                if rng.random() < 0.4:
                    ties.append((f"E{e}", ids[x], ids[y]))
                    G.add_edge(ids[x], ids[y])
        graphs[f"E{e}"] = G
    net = networks.ego_networks(pd.DataFrame(alters, columns=["patient_id", "alter_id", "tie_type"]),
                                egos=pd.DataFrame({"patient_id": egos}),
                                ties=pd.DataFrame(ties, columns=["patient_id", "alter_a", "alter_b"]),
                                columns=NOWAVE)
    s = networks.structure(net).set_index("patient_id")
    for e, G in graphs.items():
        assert s.loc[e, "constraint"] == pytest.approx(nx.constraint(G, ["ego"])["ego"], abs=1e-12)
        assert s.loc[e, "effective_size"] == pytest.approx(nx.effective_size(G, ["ego"])["ego"], abs=1e-12)
        n = G.degree("ego")
        if n > 1:
            assert s.loc[e, "density"] == pytest.approx(nx.density(G.subgraph(set(G) - {"ego"})), abs=1e-12)


def test_wide_and_long_outputs(net):
    w = networks.ego_measures(net)
    assert len(w) == len(EGOS) and col(w, "age") == col(EGOS, "age")
    assert {"size", "blau", "ei_index", "p_illness", "constraint"} <= set(w.columns)
    w2 = networks.ego_measures(net, join=False)
    assert "age" not in w2 and "patient_id" in w2
    long = networks.alter_table(net)
    assert len(long) == len(ALTERS)
    assert col(long, "practice_id") == [1, 1, 1, 1, 1, 2]
    assert col(long, "n_roles") == [3, 1, 2, 0, 1, 0]
    assert col(long, "ego_size") == [3, 3, 3, 2, 2, 1]
    with pytest.raises(NetworkDataError, match="ward"):
        networks.alter_table(net, ego_columns=["ward"])


def test_public_names():
    assert cimstats.networks is networks


# ---------------------------------------------------------------- bad input
def test_bad_input_collected_with_codes():
    alters = pd.concat([ALTERS, pd.DataFrame({
        "patient_id": ["Z", "A", "B", "A"], "alter_id": [9, 1, 10, 11],
        "tie_type": ["friend", "friend", "neighbour", None],
        "illness_work": [0, 0, 2, 0], "everyday_work": 0, "emotional_work": 0,
        "circle": 1, "contact_freq": 1, "coresident": 0})], ignore_index=True)
    with pytest.raises(NetworkDataError) as exc:
        networks.ego_networks(alters, egos=EGOS, columns=NOWAVE)
    codes = {i.code for i in exc.value.report}
    assert {"N101", "N102", "N103", "N104", "N105"} <= codes
    msg = {i.code: i.message for i in exc.value.report}
    assert "patient_id=Z" in msg["N101"] and "'neighbour'" in msg["N103"]


def test_duplicate_egos_and_bad_ties():
    egos = pd.concat([EGOS, EGOS.iloc[[0]]], ignore_index=True)
    with pytest.raises(NetworkDataError) as exc:
        networks.ego_networks(ALTERS, egos=egos, columns=NOWAVE)
    assert "N107" in {i.code for i in exc.value.report}
    ties = pd.DataFrame({"patient_id": ["A", "A", "B"], "alter_a": [1, 1, 4], "alter_b": [1, 99, 1]})
    with pytest.raises(NetworkDataError) as exc:
        networks.ego_networks(ALTERS, egos=EGOS, ties=ties, columns=NOWAVE)
    codes = [i.code for i in exc.value.report]
    assert "N111" in codes and "N110" in codes


def test_missing_columns_named():
    with pytest.raises(NetworkDataError, match="'tie_type'"):
        networks.ego_networks(ALTERS.drop(columns="tie_type"), egos=EGOS, columns=NOWAVE)
    net = networks.ego_networks(ALTERS.drop(columns="circle"), egos=EGOS, columns=NOWAVE)
    assert "N109" in {i.code for i in net.report}
    assert "n_circle_1" not in networks.circles(net)


def test_custom_column_names():
    a = ALTERS.rename(columns={"patient_id": "pid", "tie_type": "kind"})
    e = EGOS.rename(columns={"patient_id": "pid"})
    net = networks.ego_networks(a, egos=e, columns={"ego": "pid", "tie_type": "kind", "wave": None})
    assert col(networks.size(net), "size") == [3, 2, 0, 1]
    with pytest.raises(NetworkDataError, match="ego_id"):
        networks.ego_networks(a, egos=e, columns={"ego_id": "pid"})


# ---------------------------------------------------------------- waves and change
def two_waves():
    egos = pd.DataFrame({"patient_id": ["A", "A", "B", "B", "C"], "wave": [0, 1, 0, 1, 0]})
    alters = pd.DataFrame({
        "patient_id": ["A", "A", "A", "A", "A", "B"], "wave": [0, 0, 0, 1, 1, 1],
        "alter_id": [1, 2, 3, 1, 4, 7],
        "tie_type": ["partner", "friend", "family", "partner", "group", "friend"],
        "illness_work": [1, 1, 0, 0, 0, 1], "everyday_work": [0, 0, 1, 1, 0, 0],
        "emotional_work": [1, 0, 0, 1, 1, 0], "circle": [2, 1, 1, 1, 3, 2]})
    return egos, alters


def test_waves_make_ego_wave_rows_with_zeros():
    egos, alters = two_waves()
    net = networks.ego_networks(alters, egos=egos)
    s = networks.size(net)
    assert s.columns.tolist() == ["patient_id", "wave", "size"]
    assert col(s, "size") == [3, 2, 0, 1, 0]


def test_change_between_waves():
    egos, alters = two_waves()
    ch = networks.change(networks.ego_networks(alters, egos=egos))
    e = ch.egos.set_index("patient_id")
    assert e.loc["A", ["n_retained", "n_added", "n_lost", "size_from", "size_to"]].tolist() == [1, 1, 2, 3, 2]
    assert e.loc["A", "turnover"] == pytest.approx(3 / 4)
    # retained partner: illness 1->0 dropped, everyday 0->1 gained, emotional 1->1 same
    assert e.loc["A", ["illness_dropped", "everyday_gained", "roles_gained", "roles_dropped"]].tolist() == [1, 1, 1, 1]
    assert e.loc["A", "role_change_index"] == pytest.approx(2 / 3)
    assert e.loc["A", "any_role_gained"] == 1 and e.loc["B", "any_role_gained"] == 0
    assert e.loc["A", ["n_moved_inward", "n_moved_outward"]].tolist() == [1, 0]  # partner: circle 2 -> 1
    assert e.loc["B", ["n_retained", "n_added", "n_lost"]].tolist() == [0, 1, 0]
    assert np.isnan(e.loc["B", "role_change_index"])
    assert "C" not in e.index and ch.n_dropped["ego at the first wave only"] == 1
    a = ch.alters.set_index(["patient_id", "alter_id"])
    assert a.loc[("A", 1), "status"] == "retained" and a.loc[("A", 1), "illness_change"] == -1
    assert a.loc[("A", 2), "status"] == "lost" and a.loc[("A", 4), "status"] == "added"
    assert np.isnan(a.loc[("A", 4), "illness_change"])
    assert a.loc[("A", 1), "circle_change"] == -1
    assert ch.glance()["n_egos"].iloc[0] == 2
    assert "wave 0 to 1" in ch.summary()


def test_change_errors():
    with pytest.raises(NetworkDataError, match="waves"):
        networks.change(networks.ego_networks(ALTERS, egos=EGOS, columns=NOWAVE))
    egos, alters = two_waves()
    with pytest.raises(NetworkDataError, match="wave 2"):
        networks.change(networks.ego_networks(alters, egos=egos), waves=(0, 2))


# ---------------------------------------------------------------- typology
def planted_types(seed=0, n=300):
    rng = np.random.default_rng(seed)
    rows, egos = [], []
    aid = 0
    for i in range(n):
        kind = i % 3  # 0: small family networks, 1: large friend networks, 2: weak-tie/group networks
        size = [3, 12, 8][kind] + int(rng.integers(-1, 2))
        probs = [[0, 1, 0, 0, 0, 0, 0], [.05, .1, .8, .05, 0, 0, 0], [.05, .05, .1, .45, .35, 0, 0]][kind]
        types = rng.choice(networks.TIE_TYPES, size=size, p=probs)
        for t in types:
            rows.append((f"P{i}", aid, t))
            aid += 1
        egos.append((f"P{i}", kind))
    egos.append(("EMPTY", -1))
    return (pd.DataFrame(egos, columns=["patient_id", "planted"]),
            pd.DataFrame(rows, columns=["patient_id", "alter_id", "tie_type"]))


def test_typology_recovers_planted_types_and_is_reproducible():
    egos, alters = planted_types()
    net = networks.ego_networks(alters, egos=egos, columns=NOWAVE)
    ty = networks.typology(net, seed=11, k_range=range(2, 6))
    assert ty.k == 3
    lab = ty.labels.merge(egos, on="patient_id")
    assert lab.loc[lab["patient_id"] == "EMPTY", "network_type"].iloc[0] == 0
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(lab["planted"], lab["network_type"]) > 0.95  # planted types recovered
    # types numbered by mean size: small family networks are type 1
    assert lab.loc[lab["planted"] == 0, "network_type"].iloc[0] == 1
    ty2 = networks.typology(net, seed=11, k_range=range(2, 6))
    assert ty.labels.equals(ty2.labels) and ty.criterion.equals(ty2.criterion)
    assert ty.n_dropped["no alters (type 0)"] == 1
    assert "silhouette" in ty.summary()
    assert ty.glance()["k"].iloc[0] == 3
    wide = networks.ego_measures(net)
    from_table = networks.typology(wide, seed=11, k_range=range(2, 6))
    assert from_table.labels.columns.tolist() == ["patient_id", "network_type"]
    assert from_table.labels["network_type"].tolist() == ty.labels["network_type"].tolist()
    fixed = networks.typology(net, k=4, seed=1)
    assert fixed.k == 4 and len(fixed.criterion) == 1


# ---------------------------------------------------------------- properties
alter_rows = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(networks.TIE_TYPES),
                                st.integers(0, 1), st.integers(0, 1), st.integers(0, 1)), max_size=40)


@settings(max_examples=30, deadline=None)
@given(alter_rows, st.randoms(use_true_random=False))
def test_property_measures_invariant_to_alter_row_order(rows, rnd):
    egos = pd.DataFrame({"patient_id": [f"E{i}" for i in range(6)]})
    alters = pd.DataFrame([(f"E{e}", k, t, a, b, c) for k, (e, t, a, b, c) in enumerate(rows)],
                          columns=["patient_id", "alter_id", "tie_type", "illness_work", "everyday_work",
                                   "emotional_work"])
    if alters.empty:
        alters = alters.astype({"alter_id": int, "illness_work": int, "everyday_work": int, "emotional_work": int})
    w1 = networks.ego_measures(networks.ego_networks(alters, egos=egos, columns=NOWAVE))
    perm = list(range(len(alters)))
    rnd.shuffle(perm)
    w2 = networks.ego_measures(networks.ego_networks(alters.iloc[perm], egos=egos, columns=NOWAVE))
    pd.testing.assert_frame_equal(w1, w2)
    # egos without alters: size and counts are true zeros, never missing
    counts = [c for c in w1.columns if c.startswith("n_") or c == "size"]
    assert not w1[counts].isna().any().any()
    assert (w1["size"] == alters.groupby("patient_id").size().reindex(egos["patient_id"]).fillna(0).to_numpy()).all()


def test_cli_networks(cli, tmp_path):
    ALTERS.to_csv(tmp_path / "alters.csv", index=False)
    EGOS.to_csv(tmp_path / "egos.csv", index=False)
    TIES.to_csv(tmp_path / "ties.csv", index=False)
    r = cli("networks", str(tmp_path / "alters.csv"), "--egos", str(tmp_path / "egos.csv"), "--ties",
            str(tmp_path / "ties.csv"), "--no-wave", "--out", str(tmp_path / "wide.csv"),
            "--long", str(tmp_path / "long.csv"))
    assert r.returncode == 0, r.stderr
    wide = pd.read_csv(tmp_path / "wide.csv")
    assert wide["size"].tolist() == [3, 2, 0, 1] and "constraint" in wide
    assert len(pd.read_csv(tmp_path / "long.csv")) == len(ALTERS)


def test_large_integer_and_string_alter_ids_give_same_measures(net):
    big = ALTERS.assign(alter_id=ALTERS["alter_id"] * 10**15)
    ties = TIES.assign(alter_a=TIES["alter_a"] * 10**15, alter_b=TIES["alter_b"] * 10**15)
    net_big = networks.ego_networks(big, egos=EGOS, ties=ties, columns=NOWAVE)
    pd.testing.assert_frame_equal(networks.ego_measures(net_big), networks.ego_measures(net))
    strs = ALTERS.assign(alter_id="X" + ALTERS["alter_id"].astype(str))
    ties_s = TIES.assign(alter_a="X" + TIES["alter_a"].astype(str), alter_b="X" + TIES["alter_b"].astype(str))
    net_s = networks.ego_networks(strs, egos=EGOS, ties=ties_s, columns=NOWAVE)
    pd.testing.assert_frame_equal(networks.ego_measures(net_s), networks.ego_measures(net))


def test_ties_per_wave():
    egos, alters = two_waves()
    ties = pd.DataFrame({"patient_id": ["A", "A"], "wave": [0, 1], "alter_a": [1, 1], "alter_b": [2, 4]})
    s = networks.structure(networks.ego_networks(alters, egos=egos, ties=ties))
    assert col(s, "n_alter_ties") == [1, 1, 0, 0, 0]
    assert s["density"].iloc[0] == pytest.approx(1 / 3) and s["density"].iloc[1] == 1


def test_measure_catalogue_covers_every_wide_column(net):
    cat = networks.measure_catalogue(expand=True)
    wide = networks.ego_measures(net, join=False)
    measure_cols = [c for c in wide.columns if c != "patient_id"]
    assert set(measure_cols) <= set(cat["column"])
    zero_rows = cat[cat["without_alters"] == "0"]["column"]
    egoC = wide[wide["patient_id"] == "C"]
    assert (egoC[[c for c in zero_rows if c in wide]] == 0).all().all()
