"""Network typology: k-means on standardised size and composition features.

Egos without alters form their own type (0, "no network members"): their
composition is undefined, so they are not clustered. The remaining egos are
clustered with k-means (k-means++ starts, several restarts, fixed seed) on
z-standardised features; the number of types is the k with the largest mean
silhouette width (Rousseeuw 1987) over ``k_range``. Types are numbered 1..k in
increasing order of mean network size, so labels do not depend on the
optimiser's arbitrary cluster order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from cimstats.errors import NetworkDataError
from cimstats.measures.networks.core import EgoNetworks
from cimstats.measures.networks.measures import composition, size


@dataclass(frozen=True)
class Typology:
    """Result of :func:`typology`.

    Attributes
    ----------
    labels : DataFrame
        Key columns and ``network_type`` (0 = no network members, 1..k by mean size).
    centres : DataFrame
        One row per type: ``n`` and the mean of each feature in original units.
    criterion : DataFrame
        ``k, silhouette, inertia`` for every k tried.
    k : int
        Number of types chosen (largest silhouette), excluding type 0.
    features : tuple of str
    seed : int
    n_dropped : dict
        Egos not clustered and why.
    """

    labels: pd.DataFrame
    centres: pd.DataFrame
    criterion: pd.DataFrame
    k: int
    features: tuple[str, ...]
    seed: int
    n_dropped: dict = field(default_factory=dict)

    @property
    def at_boundary(self) -> bool:
        """True when the chosen k is the largest (or smallest) k tried: widen ``k_range`` to check."""
        ks = self.criterion["k"]
        return len(ks) > 1 and self.k in (ks.min(), ks.max())

    def glance(self) -> pd.DataFrame:
        """One row: number of types, silhouette of the chosen k, seed, egos per reason not clustered."""
        sil = self.criterion.set_index("k")["silhouette"].get(self.k, np.nan)
        return pd.DataFrame([{"k": self.k, "silhouette": sil, "seed": self.seed, "at_boundary": self.at_boundary,
                              "n_egos": len(self.labels), **{f"n_dropped: {r}": n for r, n in self.n_dropped.items()}}])

    def summary(self) -> str:
        lines = [f"Network typology: {self.k} types chosen by the largest mean silhouette "
                 f"(k tried: {', '.join(map(str, self.criterion['k']))}; seed {self.seed})"]
        if self.at_boundary:
            lines.append("  note: the chosen k is at the edge of the range tried; widen k_range to see "
                         "whether the silhouette keeps rising.")
        lines.append(self.centres.round(3).to_string())
        return "\n".join(lines)


def typology(net_or_features, *, features: Sequence[str] | None = None, k: int | None = None,
             k_range: Sequence[int] = range(2, 9), seed: int = 0, n_init: int = 10,
             silhouette_sample: int = 5000, id_columns: Sequence[str] | None = None) -> Typology:
    """Classify egos into network types by k-means on standardised features.

    Parameters
    ----------
    net_or_features : EgoNetworks or DataFrame
        Networks (features are computed: ``size`` and ``p_<type>`` for each tie
        type), or a ready ego-level table containing ``features`` and ``size``.
    features : sequence of str, optional
        Feature columns (default ``size`` plus every ``p_<type>`` column).
    k : int, optional
        Fix the number of types instead of choosing it.
    k_range : sequence of int
        Candidate numbers of types for the silhouette criterion.
    seed : int
        Seed of k-means starts and of the silhouette subsample (reproducible).
    n_init : int
        k-means restarts per k.
    silhouette_sample : int
        Egos sampled (with ``seed``) to compute the silhouette when there are more.
    id_columns : sequence of str, optional
        For a DataFrame input: columns copied to ``labels`` (default: those of
        ``patient_id`` and ``wave`` present).

    Returns
    -------
    Typology

    Raises
    ------
    NetworkDataError
        When features are missing, or there are fewer egos with alters than types.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats import networks
    >>> rows = [(f"E{i}", f"E{i}-{j}", "family" if i % 2 else "friend")
    ...         for i in range(40) for j in range(2 + 4 * (i % 2))]
    >>> alters = pd.DataFrame(rows, columns=["patient_id", "alter_id", "tie_type"])
    >>> egos = pd.DataFrame({"patient_id": [f"E{i}" for i in range(41)]})
    >>> ty = networks.typology(networks.ego_networks(alters, egos=egos, columns={"wave": None}),
    ...                        k_range=range(2, 5), seed=1)
    >>> ty.k, ty.labels["network_type"].value_counts().sort_index().tolist()
    (2, [1, 20, 20])
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    if isinstance(net_or_features, EgoNetworks):
        net = net_or_features
        comp = composition(net)
        table = pd.concat([size(net), comp.iloc[:, len(net.keys):]], axis=1)
        keys = list(net.keys)
    elif isinstance(net_or_features, pd.DataFrame):
        table = net_or_features.reset_index(drop=True)
        keys = list(id_columns) if id_columns is not None else \
            [c for c in ("patient_id", "wave") if c in table.columns]
        absent = [c for c in keys if c not in table.columns]
        if absent:
            raise NetworkDataError(f"`id_columns=` lists {', '.join(map(repr, absent))}, not columns of the "
                                   "table.")
    else:
        raise NetworkDataError(f"`typology` takes EgoNetworks or an ego-level DataFrame, not "
                               f"{type(net_or_features).__name__}.")
    if features is None:
        features = ["size"] + [c for c in table.columns if c.startswith("p_")]
    features = list(features)
    missing = [f for f in features + ["size"] if f not in table.columns]
    if missing:
        raise NetworkDataError(f"`features=` needs column(s) {', '.join(map(repr, missing))}, which the table "
                               "lacks; compute them with networks.ego_measures().")
    X = table[features].to_numpy(dtype=float, na_value=np.nan)
    empty = table["size"].to_numpy(dtype=float) == 0
    incomplete = np.isnan(X).any(axis=1) & ~empty
    use = ~empty & ~incomplete
    Xu = X[use]
    mu, sd = Xu.mean(axis=0), Xu.std(axis=0, ddof=0)
    sd = np.where(sd > 0, sd, 1.0)
    Z = (Xu - mu) / sd
    ks = [k] if k is not None else [int(x) for x in k_range]
    n_distinct = len(np.unique(np.round(Z, 12), axis=0)) if len(Z) else 0
    if k is None:
        ks = [x for x in ks if x <= n_distinct]  # more types than distinct profiles cannot be formed
    if not ks or min(ks) < 1 or max(ks) > min(n_distinct, max(len(Z) - 1, 0)):
        raise NetworkDataError(f"Cannot form {max(ks) if ks else 'the requested'} types from {len(Z)} egos with "
                               f"alters ({n_distinct} distinct feature profiles); use fewer types (k= or k_range=).")
    rng = np.random.default_rng(seed)
    samp = rng.choice(len(Z), size=min(silhouette_sample, len(Z)), replace=False)
    rows, fits = [], {}
    # one thread: results do not depend on the machine's core count, and small problems
    # are much faster without thread start-up costs
    with threadpool_limits(1):
        for kk in ks:
            km = KMeans(n_clusters=kk, n_init=n_init, random_state=seed).fit(Z)
            fits[kk] = km
            sil = silhouette_score(Z[samp], km.labels_[samp]) if kk > 1 and len(set(km.labels_[samp])) > 1 \
                else np.nan
            rows.append({"k": kk, "silhouette": float(sil), "inertia": float(km.inertia_)})
    crit = pd.DataFrame(rows)
    chosen = int(k) if k is not None else int(crit.loc[crit["silhouette"].idxmax(), "k"])
    lab = fits[chosen].labels_
    # renumber by increasing mean size (then by the other features) for stable labels
    order = pd.DataFrame(Xu).groupby(lab).mean().sort_values(list(range(Xu.shape[1]))).index
    remap = {old: new + 1 for new, old in enumerate(order)}
    types = np.zeros(len(table), dtype=int)
    types[use] = [remap[x] for x in lab]
    types_series = pd.Series(types, dtype="Int64")
    types_series[incomplete] = pd.NA
    labels = table[keys].copy() if keys else pd.DataFrame(index=table.index)
    labels["network_type"] = types_series.to_numpy()
    cen = pd.DataFrame(X, columns=features)
    cen["network_type"] = types_series.to_numpy()
    centres = cen.dropna(subset=["network_type"]).groupby("network_type")[features].mean()
    centres.insert(0, "n", cen.groupby("network_type").size())
    return Typology(labels=labels, centres=centres, criterion=crit, k=chosen, features=tuple(features),
                    seed=seed, n_dropped={"no alters (type 0)": int(empty.sum()),
                                          "missing feature values": int(incomplete.sum())})
