"""Brokerage from alter-alter ties: Gould-Fernandez roles on hand-computed networks and against a
pair-by-pair count, and Burt's effective size and constraint against networkx on random ego networks."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimstats import networks
from cimstats.errors import NetworkDataError

NOWAVE = {"wave": None}

# ego A: two family members (not tied), a friend tied to the first of them, a neighbour (weak tie);
# ego B: one alter; ego C: nobody; ego D: two tied friends
EGOS = pd.DataFrame({"patient_id": ["A", "B", "C", "D"]})
ALTERS = pd.DataFrame({
    "patient_id": ["A", "A", "A", "A", "B", "D", "D"], "alter_id": [1, 2, 3, 4, 5, 6, 7],
    "tie_type": ["family", "family", "friend", "weak_tie", "partner", "friend", "friend"],
    "circle": [1, 1, 2, 3, 1, 2, 2]})
TIES = pd.DataFrame({"patient_id": ["A", "D"], "alter_a": [1, 6], "alter_b": [3, 7]})


def _net(alters=ALTERS, ties=TIES):
    return networks.ego_networks(alters, egos=EGOS, ties=ties, columns=NOWAVE)


def test_roles_by_hand_without_an_ego_group():
    b = networks.brokerage(_net()).set_index("patient_id")
    # A: 6 pairs, 1 tied -> 5 brokered: family-family (itinerant); family-friend (2-3), family-weak (1-4, 2-4),
    # friend-weak (3-4) -> 4 liaison
    assert b.loc["A", "n_brokered_pairs"] == 5
    assert b.loc["A", "n_itinerant"] == 1 and b.loc["A", "n_liaison"] == 4
    assert b.loc["A", "p_itinerant"] == pytest.approx(1 / 5) and b.loc["A", "p_liaison"] == pytest.approx(4 / 5)
    # one alter, nobody, two tied alters: no pair to broker, proportions undefined
    for e in ("B", "C", "D"):
        assert b.loc[e, "n_brokered_pairs"] == 0 and b.loc[e, "n_itinerant"] == 0 and b.loc[e, "n_liaison"] == 0
        assert np.isnan(b.loc[e, "p_itinerant"]) and np.isnan(b.loc[e, "p_liaison"])
    assert (b["n_brokered_unknown"] == 0).all()
    assert "n_coordinator" not in b.columns  # the ego is in no alter group: two roles only


def test_roles_by_hand_with_the_ego_group():
    b = networks.brokerage(_net(), ego_group="family").set_index("patient_id")
    # A: family-family coordinator (1-2); family-other: 2-3, 1-4, 2-4 gatekeeper/representative; 3-4 liaison
    assert [b.loc["A", f"n_{r}"] for r in ("coordinator", "itinerant", "gatekeeper_representative", "liaison")] \
        == [1, 0, 3, 1]
    assert b.loc["A", ["p_coordinator", "p_itinerant", "p_gatekeeper_representative", "p_liaison"]].sum() \
        == pytest.approx(1.0)
    by_circle = networks.brokerage(_net(), group="circle").set_index("patient_id")
    # circles of A: 1, 1, 2, 3 -> the same split as by tie type
    assert by_circle.loc["A", "n_itinerant"] == 1 and by_circle.loc["A", "n_liaison"] == 4


def test_missing_group_is_counted_apart_not_dropped():
    alters = ALTERS.assign(tie_type=ALTERS["tie_type"].astype(object))
    alters.loc[3, "circle"] = np.nan
    b = networks.brokerage(_net(alters), group="circle").set_index("patient_id")
    # A: alter 4's circle unknown: pairs 1-4, 2-4, 3-4 are brokered but of unknown role
    assert b.loc["A", "n_brokered_unknown"] == 3 and b.loc["A", "n_brokered_pairs"] == 5
    assert b.loc["A", "n_itinerant"] == 1 and b.loc["A", "n_liaison"] == 1
    assert b.loc["A", "p_itinerant"] == pytest.approx(1 / 2)


def test_brokerage_errors():
    with pytest.raises(NetworkDataError, match="ties="):
        networks.brokerage(networks.ego_networks(ALTERS, egos=EGOS, columns=NOWAVE))
    with pytest.raises(NetworkDataError, match="'ward'"):
        networks.brokerage(_net(), group="ward")
    with pytest.raises(NetworkDataError, match="'famly'"):
        networks.brokerage(_net(), ego_group="famly")


def test_ego_measures_and_catalogue_include_brokerage():
    w = networks.ego_measures(_net(), join=False)
    assert {"n_brokered_pairs", "n_itinerant", "n_liaison", "p_liaison", "constraint"} <= set(w.columns)
    cat = networks.measure_catalogue(expand=True)
    assert {"n_coordinator", "p_gatekeeper_representative", "n_brokered_unknown"} <= set(cat["column"])
    assert set(networks.brokerage(_net(), ego_group="family").columns[1:]) <= set(cat["column"])


# ---------------------------------------------------------------- random ego networks
def _random_study(spec):
    """spec: per ego a list of (group or None) per alter and a list of tie flags over its alter pairs."""
    egos, alters, ties = [], [], []
    aid = 0
    for e, (groups, flags) in enumerate(spec):
        egos.append(f"E{e}")
        ids = list(range(aid, aid + len(groups)))
        aid += len(groups)
        alters += [(f"E{e}", i, "friend", g) for i, g in zip(ids, groups)]
        for (x, y), f in zip(itertools.combinations(ids, 2), flags):
            if f:
                ties.append((f"E{e}", x, y))
    return (pd.DataFrame({"patient_id": egos}),
            pd.DataFrame(alters, columns=["patient_id", "alter_id", "tie_type", "grp"]),
            pd.DataFrame(ties, columns=["patient_id", "alter_a", "alter_b"]))


ego_spec = st.integers(0, 7).flatmap(lambda n: st.tuples(
    st.lists(st.one_of(st.none(), st.sampled_from("xyz")), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2)))


def _pairwise_roles(groups, tied, own):
    """The roles by their definition, pair by pair (the reference the vectorised counts must match)."""
    out = dict.fromkeys(["open", "coordinator", "itinerant", "gatekeeper_representative", "liaison", "unknown"], 0)
    for (i, gi), (j, gj) in itertools.combinations(enumerate(groups), 2):
        if (i, j) in tied:
            continue
        out["open"] += 1
        if gi is None or gj is None:
            out["unknown"] += 1
        elif own is not None and gi == own and gj == own:
            out["coordinator"] += 1
        elif own is not None and (gi == own) != (gj == own):
            out["gatekeeper_representative"] += 1
        elif gi == gj:
            out["itinerant"] += 1
        else:
            out["liaison"] += 1
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(ego_spec, min_size=1, max_size=8), st.sampled_from([None, "x"]))
def test_property_roles_match_the_pair_by_pair_definition(spec, own):
    egos, alters, ties = _random_study(spec)
    net = networks.ego_networks(alters, egos=egos, ties=ties, columns=NOWAVE)
    if own is not None and not (alters["grp"] == own).any():
        own = None
    b = networks.brokerage(net, group="grp", ego_group=own)
    for e, (groups, flags) in enumerate(spec):
        tied = {p for p, f in zip(itertools.combinations(range(len(groups)), 2), flags) if f}
        ref = _pairwise_roles(groups, tied, own)
        row = b.iloc[e]
        assert row["n_brokered_pairs"] == ref["open"] and row["n_brokered_unknown"] == ref["unknown"]
        roles = ["itinerant", "liaison"] + (["coordinator", "gatekeeper_representative"] if own else [])
        for r in roles:
            assert row[f"n_{r}"] == ref[r], r
            known = ref["open"] - ref["unknown"]
            if known:
                assert row[f"p_{r}"] == pytest.approx(ref[r] / known)
            else:
                assert np.isnan(row[f"p_{r}"])


@settings(max_examples=40, deadline=None)
@given(st.lists(ego_spec, min_size=1, max_size=8))
def test_property_effective_size_and_constraint_match_networkx(spec):
    nx = pytest.importorskip("networkx")
    egos, alters, ties = _random_study(spec)
    s = networks.structure(networks.ego_networks(alters, egos=egos, ties=ties, columns=NOWAVE))
    for e, (groups, flags) in enumerate(spec):
        n = len(groups)
        if n == 0:  # no alters: effective size 0 (a count), constraint undefined
            assert s["effective_size"].iloc[e] == 0 and np.isnan(s["constraint"].iloc[e])
            continue
        G = nx.Graph()
        G.add_edges_from(("ego", i) for i in range(n))
        G.add_edges_from(p for p, f in zip(itertools.combinations(range(n), 2), flags) if f)
        assert s["effective_size"].iloc[e] == pytest.approx(nx.effective_size(G, ["ego"])["ego"], abs=1e-12)
        assert s["constraint"].iloc[e] == pytest.approx(nx.constraint(G, ["ego"])["ego"], abs=1e-12)
        # a brokered pair is a pair of the ego's neighbours not joined by an edge
        open_pairs = sum(1 for x, y in itertools.combinations(range(n), 2) if not G.has_edge(x, y))
        assert networks.brokerage(networks.ego_networks(alters, egos=egos, ties=ties, columns=NOWAVE)
                                  )["n_brokered_pairs"].iloc[e] == open_pairs
