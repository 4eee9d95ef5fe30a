"""Benchmark: ego-level network measures for 100,000 egos and 1,000,000 alters.

Times cimstats (checking + encoding the tables, then every ego-level measure:
size, composition, Blau/IQV, E-I index, weak ties, group ties, circles, support
work by tie type) against a naive pandas ``groupby().apply`` that computes the
same measures one ego at a time. The naive version is timed on a random
subsample of egos and extrapolated linearly to all egos (it is far too slow to
run on all of them); the script says so in its output. It also checks that
both give the same numbers on the subsample.

Run:  python benchmarks/networks_ego.py [--egos 100000] [--alters 1000000] [--naive-egos 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from cimstats import networks
from cimstats.measures.networks import TIE_TYPES


def make_data(n_egos: int, n_alters: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    ego_ids = np.array([f"P{i:07d}" for i in range(n_egos)], dtype=object)
    # network sizes: Poisson around the mean, about 3% of egos with no alters
    lam = n_alters / n_egos
    sizes = rng.poisson(lam, n_egos)
    sizes[rng.random(n_egos) < 0.03] = 0
    diff = n_alters - sizes.sum()
    idx = rng.choice(np.flatnonzero(sizes > 0), size=abs(diff), replace=True)
    np.add.at(sizes, idx, np.sign(diff))
    sizes = np.maximum(sizes, 0)
    ego_of = np.repeat(np.arange(n_egos), sizes)
    n = len(ego_of)
    alters = pd.DataFrame({
        "patient_id": pd.array(ego_ids[ego_of], dtype="str"),
        "alter_id": np.arange(n),
        "wave": 0,
        "circle": rng.integers(1, 4, n),
        "tie_type": pd.array(np.array(TIE_TYPES, dtype=object)[rng.choice(len(TIE_TYPES), n,
                             p=[.08, .3, .25, .15, .1, .1, .02])], dtype="str"),
        "illness_work": rng.integers(0, 2, n),
        "everyday_work": rng.integers(0, 2, n),
        "emotional_work": rng.integers(0, 2, n),
        "contact_freq": rng.integers(1, 6, n),
        "coresident": (rng.random(n) < 0.1).astype(int),
    })
    egos = pd.DataFrame({"patient_id": pd.array(ego_ids, dtype="str"), "wave": 0,
                         "practice_id": rng.integers(0, 500, n_egos)})
    return egos, alters


def make_ties(alters: pd.DataFrame, n_ties: int, seed: int = 2) -> pd.DataFrame:
    """Random undirected ties between alters of the same ego (alters are grouped by ego)."""
    rng = np.random.default_rng(seed)
    ego = alters["patient_id"].to_numpy()
    codes, _ = pd.factorize(ego)
    start = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    size = np.diff(np.r_[start, len(codes)])
    first = np.repeat(start, size)
    n_of = np.repeat(size, size)
    i = rng.integers(0, len(codes), n_ties)
    j = first[i] + rng.integers(0, n_of[i])
    keep = i != j
    aid = alters["alter_id"].to_numpy()
    return pd.DataFrame({"patient_id": ego[i[keep]], "wave": 0, "alter_a": aid[i[keep]], "alter_b": aid[j[keep]]})


def naive_one(g: pd.DataFrame) -> pd.Series:
    n = len(g)
    out = {"size": float(n)}
    counts = g["tie_type"].value_counts()
    for t in TIE_TYPES:
        out[f"n_{t}"] = float(counts.get(t, 0))
    for t in TIE_TYPES:
        out[f"p_{t}"] = counts.get(t, 0) / n
    p = np.array([counts.get(t, 0) / n for t in TIE_TYPES])
    out["blau"] = 1 - (p**2).sum()
    i = counts.get("partner", 0) + counts.get("family", 0)
    e = sum(counts.get(t, 0) for t in ("friend", "weak_tie", "group", "professional"))
    out["ei_index"] = (e - i) / (e + i) if e + i else np.nan
    out["weak_tie_share"] = counts.get("weak_tie", 0) / n
    out["n_group_ties"] = float(counts.get("group", 0))
    for c in (1, 2, 3):
        out[f"n_circle_{c}"] = float((g["circle"] == c).sum())
    out["mean_contact_freq"] = g["contact_freq"].mean()
    out["n_coresident"] = float((g["coresident"] == 1).sum())
    for kind in ("illness", "everyday", "emotional"):
        does = g[f"{kind}_work"] == 1
        k = does.sum()
        out[f"n_{kind}"] = float(k)
        out[f"p_{kind}"] = k / n
        by = g.loc[does, "tie_type"].value_counts()
        for t in TIE_TYPES:
            out[f"n_{kind}_{t}"] = float(by.get(t, 0))
            out[f"share_{kind}_{t}"] = by.get(t, 0) / k if k else np.nan
    return pd.Series(out)


def naive(egos: pd.DataFrame, alters: pd.DataFrame) -> pd.DataFrame:
    res = alters.groupby("patient_id").apply(naive_one, include_groups=False)
    res = res.reindex(egos["patient_id"])  # egos without alters
    zero_cols = [c for c in res.columns if c.startswith("n_") or c == "size"]
    res[zero_cols] = res[zero_cols].fillna(0.0)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--egos", type=int, default=100_000)
    ap.add_argument("--alters", type=int, default=1_000_000)
    ap.add_argument("--naive-egos", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ties", type=int, default=1_000_000, help="alter-alter ties drawn (0 to skip)")
    args = ap.parse_args(argv)

    egos, alters = make_data(args.egos, args.alters)
    print(f"data: {len(egos):,} egos, {len(alters):,} alters, "
          f"{int((alters.groupby('patient_id').size().reindex(egos['patient_id']).isna()).sum()):,} egos without alters")

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        net = networks.ego_networks(alters, egos=egos)
        t1 = time.perf_counter()
        wide = networks.ego_measures(net, join=False)
        t2 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t2 - t0))
    best = min(times, key=lambda t: t[2])
    print(f"cimstats: check+encode {best[0]:.3f} s, all ego measures {best[1]:.3f} s, "
          f"total {best[2]:.3f} s (best of {args.repeats}); {wide.shape[1]} columns")

    rng = np.random.default_rng(7)
    sub_ids = rng.choice(egos["patient_id"].to_numpy(), size=min(args.naive_egos, len(egos)), replace=False)
    sub_e = egos[egos["patient_id"].isin(sub_ids)].reset_index(drop=True)
    sub_a = alters[alters["patient_id"].isin(sub_ids)].reset_index(drop=True)
    t0 = time.perf_counter()
    nv = naive(sub_e, sub_a)
    t_naive_sub = time.perf_counter() - t0
    t_naive = t_naive_sub * len(egos) / len(sub_e)
    print(f"naive pandas groupby-apply: {t_naive_sub:.2f} s on a subsample of {len(sub_e):,} egos, "
          f"extrapolated linearly to {len(egos):,} egos: {t_naive:.1f} s (not run on all egos: too slow)")
    print(f"ratio naive / cimstats (total): {t_naive / best[2]:.0f}x")

    # agreement on the subsample
    mine = networks.ego_measures(networks.ego_networks(sub_a, egos=sub_e), join=False).set_index("patient_id")
    common = [c for c in nv.columns if c in mine.columns]
    diff = np.nanmax(np.abs(mine.loc[nv.index, common].to_numpy(float) - nv[common].to_numpy(float)))
    same_nan = (mine.loc[nv.index, common].isna().to_numpy() == nv[common].isna().to_numpy()).all()
    print(f"agreement on the subsample: {len(common)} measures, max abs difference {diff:.2e}, "
          f"missing in the same places: {bool(same_nan)}")
    print(f"under 2 s: {best[2] < 2.0}")

    if args.ties:
        ties = make_ties(alters, args.ties)
        t0 = time.perf_counter()
        net_t = networks.ego_networks(alters, egos=egos, ties=ties)
        t1 = time.perf_counter()
        st = networks.structure(net_t)
        t2 = time.perf_counter()
        print(f"structure with {len(ties):,} alter-alter ties ({len(net_t.ties):,} distinct): check+encode "
              f"{t1 - t0:.3f} s, density/effective size/constraint {t2 - t1:.3f} s")
        try:
            import networkx as nx
        except ImportError:
            print("networkx not installed: no peer comparison for structure")
            return
        sub = rng.choice(egos["patient_id"].to_numpy(), size=min(300, len(egos)), replace=False)
        a_sub = alters[alters["patient_id"].isin(sub)]
        t_sub = ties[ties["patient_id"].isin(sub)]
        t0 = time.perf_counter()
        res = {}
        for pid, g in a_sub.groupby("patient_id"):
            G = nx.Graph()
            G.add_edges_from(("ego", a) for a in g["alter_id"])
            tt = t_sub[t_sub["patient_id"] == pid]
            G.add_edges_from(zip(tt["alter_a"], tt["alter_b"]))
            res[pid] = (nx.constraint(G, ["ego"])["ego"], nx.effective_size(G, ["ego"])["ego"])
        t_nx = (time.perf_counter() - t0) * len(egos) / len(sub)
        mine = st.set_index("patient_id")
        worst = max(max(abs(mine.loc[p, "constraint"] - c), abs(mine.loc[p, "effective_size"] - e))
                    for p, (c, e) in res.items())
        print(f"networkx per ego (constraint + effective size), timed on {len(sub)} egos and extrapolated to "
              f"{len(egos):,}: {t_nx:.1f} s; ratio {t_nx / (t2 - t1):.0f}x vs cimstats "
              f"structure; max abs difference {worst:.2e}")


if __name__ == "__main__":
    main()
