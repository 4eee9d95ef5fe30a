"""Ego-level network measures, each vectorised over all egos at once.

Every function takes an :class:`~cimstats.measures.networks.core.EgoNetworks`
and returns a DataFrame with one row per ego (per wave), in the ego table's
order, starting with the key columns (ego id, wave). Egos without alters have
size 0 and zero counts; shares and indices that divide by the number of alters
are NaN for them (undefined, not zero), as documented per function.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cimstats.errors import NetworkDataError
from cimstats.measures.networks.core import EgoNetworks, _as_float


def _frame(net: EgoNetworks, cols: dict) -> pd.DataFrame:
    keys = net.key_frame()
    return pd.concat([keys, pd.DataFrame(cols, index=keys.index)], axis=1)


def _div(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _type_index(net: EgoNetworks, types: Sequence[str], argname: str) -> list[int]:
    if isinstance(types, str):
        types = [types]
    unknown = [t for t in types if t not in net.tie_types]
    if unknown:
        raise NetworkDataError(f"`{argname}=` names {', '.join(map(repr, unknown))}, not tie types of these "
                               f"data; expected some of {', '.join(net.tie_types)}.")
    return [net.tie_types.index(t) for t in types]


def _count_types(net: EgoNetworks, types: Sequence[str], argname: str) -> np.ndarray:
    """Alters of the given tie types per ego (from the cached ego x type count matrix)."""
    idx = _type_index(net, types, argname)
    return net.per_ego_type()[:, idx].sum(axis=1)


def size(net: EgoNetworks, *, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Network size: number of named alters per ego (0 for egos with none).

    Parameters
    ----------
    net : EgoNetworks
    exclude : sequence of str
        Tie types not counted (e.g. ``("pet",)``).

    Returns
    -------
    DataFrame
        Key columns and ``size``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats import networks
    >>> egos = pd.DataFrame({"patient_id": ["A", "B"]})
    >>> alters = pd.DataFrame({"patient_id": ["A", "A"], "alter_id": [1, 2],
    ...                        "tie_type": ["partner", "pet"]})
    >>> net = networks.ego_networks(alters, egos=egos, columns={"wave": None})
    >>> networks.size(net, exclude=["pet"])["size"].tolist()
    [1.0, 0.0]
    """
    n = net.per_ego()
    if exclude:
        n = n - _count_types(net, exclude, "exclude")
    return _frame(net, {"size": n})


def composition(net: EgoNetworks) -> pd.DataFrame:
    """Counts and proportions of alters per tie type.

    Returns
    -------
    DataFrame
        Key columns, ``n_<type>`` (0 for egos without alters) and ``p_<type>``
        (``n_<type> / size``; NaN when size is 0) for every tie type.
    """
    counts = net.per_ego_type()
    sz = counts.sum(axis=1)
    cols = {}
    for j, t in enumerate(net.tie_types):
        cols[f"n_{t}"] = counts[:, j]
    for j, t in enumerate(net.tie_types):
        cols[f"p_{t}"] = _div(counts[:, j], sz)
    return _frame(net, cols)


def heterogeneity(net: EgoNetworks) -> pd.DataFrame:
    """Blau's heterogeneity index and the index of qualitative variation (IQV) of tie types.

    Returns
    -------
    DataFrame
        Key columns, ``n_tie_types`` (number of distinct tie types named: role
        diversity, 0 for egos without alters), ``blau`` = 1 - sum_k p_k^2 and
        ``iqv`` = blau / (1 - 1/K), with K the number of tie types
        (``net.tie_types``). Blau and IQV are 0 for a network of one type and NaN
        for egos without alters.

    Notes
    -----
    Blau (1977); Agresti and Agresti (1978) for the IQV normalisation to 0-1.
    """
    counts = net.per_ego_type()
    sz = counts.sum(axis=1)
    p = counts / np.where(sz > 0, sz, 1.0)[:, None]
    blau = np.where(sz > 0, 1 - (p**2).sum(axis=1), np.nan)
    K = len(net.tie_types)
    return _frame(net, {"n_tie_types": (counts > 0).sum(axis=1).astype(float), "blau": blau,
                        "iqv": blau / (1 - 1 / K)})


def ei_index(net: EgoNetworks, *, internal: Sequence[str] = ("partner", "family"),
             external: Sequence[str] | None = None) -> pd.DataFrame:
    """Krackhardt-Stern E-I index of ties outside versus inside the ego's kin group.

    Parameters
    ----------
    internal : sequence of str
        Tie types counted as internal (default: partner and family, i.e. kin).
    external : sequence of str, optional
        Tie types counted as external; default: every other type except ``pet``.
        Types in neither group are left out of the index.

    Returns
    -------
    DataFrame
        Key columns, ``n_internal``, ``n_external`` and ``ei_index`` =
        (E - I) / (E + I), from -1 (all internal) to +1 (all external); NaN when E + I = 0.
    """
    internal = tuple(internal)
    if external is None:
        external = tuple(t for t in net.tie_types if t not in internal and t != "pet")
    both = set(internal) & set(external)
    if both:
        raise NetworkDataError(f"Tie type(s) {', '.join(sorted(both))} are both internal and external in "
                               "`ei_index`; put each type in one group.")
    i = _count_types(net, internal, "internal")
    e = _count_types(net, external, "external")
    return _frame(net, {"n_internal": i, "n_external": e, "ei_index": _div(e - i, e + i)})


def weak_tie_share(net: EgoNetworks, *, weak: Sequence[str] = ("weak_tie",)) -> pd.DataFrame:
    """Number and share of weak ties.

    Returns
    -------
    DataFrame
        Key columns, ``n_weak`` and ``weak_tie_share`` = n_weak / size (NaN when size is 0).
    """
    n = _count_types(net, weak, "weak")
    return _frame(net, {"n_weak": n, "weak_tie_share": _div(n, net.per_ego())})


def group_ties(net: EgoNetworks, *, types: Sequence[str] = ("group",)) -> pd.DataFrame:
    """Ties to groups and organisations (access to collective resources).

    Returns
    -------
    DataFrame
        Key columns, ``n_group_ties``, ``any_group_tie`` (0/1) and
        ``group_tie_share`` (NaN when size is 0).
    """
    n = _count_types(net, types, "types")
    return _frame(net, {"n_group_ties": n, "any_group_tie": (n > 0).astype(float),
                        "group_tie_share": _div(n, net.per_ego())})


def circles(net: EgoNetworks) -> pd.DataFrame:
    """Alters per circle of closeness (1 inner, 2 middle, 3 outer), contact and co-residence.

    Returns
    -------
    DataFrame
        Key columns, ``n_circle_<c>`` for each circle value found, ``mean_contact_freq``
        (over alters with a known value; NaN when none) and ``n_coresident``,
        for the columns present.
    """
    cols = {}
    c = net.columns
    if c.circle:
        v = _as_float(net.alters[c.circle])
        for level in sorted(pd.unique(v[~np.isnan(v)])):
            cols[f"n_circle_{level:g}"] = net.per_ego(mask=v == level)
    if c.contact:
        v = _as_float(net.alters[c.contact])
        ok = ~np.isnan(v)
        cols["mean_contact_freq"] = _div(net.per_ego(weights=np.where(ok, v, 0.0)), net.per_ego(mask=ok))
    if c.coresident:
        v = _as_float(net.alters[c.coresident])
        cols["n_coresident"] = net.per_ego(mask=v == 1)
    return _frame(net, cols)


def support_work(net: EgoNetworks) -> pd.DataFrame:
    """Who does which support work: counts, shares, and providers by tie type.

    For each kind of work (illness, everyday, emotional; the columns present):

    - ``n_<kind>``: alters doing it (0 for egos without alters);
    - ``p_<kind>``: share of alters with a known value who do it (NaN when none known);
    - ``n_<kind>_<type>``: providers of that tie type;
    - ``share_<kind>_<type>``: share of the ego's providers of that kind who are of
      that tie type (NaN when the ego has no provider of that kind).

    Also ``n_providers`` (alters doing any support work), ``n_multiplex`` (alters
    doing two or more kinds) and ``mean_roles`` (kinds per alter; NaN when size is 0).
    """
    kinds, vals, known = net.support_matrix()
    if not kinds:
        raise NetworkDataError("`support_work` needs support-work columns; none of illness_work, "
                               "everyday_work, emotional_work is present (name them with `columns=`).")
    cols = {}
    size_ = net.per_ego()
    roles = np.zeros(net.n_alters)
    for kind, v, kn in zip(kinds, vals, known):
        does = v == 1
        roles += does
        by_type = net.per_ego_type(mask=does)
        n = by_type.sum(axis=1)
        cols[f"n_{kind}"] = n
        cols[f"p_{kind}"] = _div(n, size_ if kn.all() else net.per_ego(mask=kn))
        for t_i, t in enumerate(net.tie_types):
            cols[f"n_{kind}_{t}"] = by_type[:, t_i]
        for t_i, t in enumerate(net.tie_types):
            cols[f"share_{kind}_{t}"] = _div(by_type[:, t_i], n)
    cols["n_providers"] = net.per_ego(mask=roles >= 1)
    cols["n_multiplex"] = net.per_ego(mask=roles >= 2)
    cols["mean_roles"] = _div(net.per_ego(weights=roles), size_)
    return _frame(net, cols)


def structure(net: EgoNetworks) -> pd.DataFrame:
    """Density, Burt's effective size and efficiency, and Burt's constraint (needs alter-alter ties).

    Returns
    -------
    DataFrame
        Key columns, ``n_alter_ties`` (t), ``density`` = t / (n(n-1)/2) (NaN for n < 2),
        ``effective_size`` = n - 2t/n (0 for n = 0), ``efficiency`` = effective size / n
        (NaN for n = 0) and ``constraint`` (NaN for n = 0; 1 for n = 1).

    Notes
    -----
    Ties are undirected and binary; the ego is tied to every alter. Effective size
    uses Borgatti's (1997) simplification of Burt (1992) for binary undirected
    ties. Constraint is Burt's ``c = sum_j (p_ej + sum_q p_eq p_qj)^2`` with
    ``p_ej = 1/n`` and ``p_qj = 1 / (1 + d_q)`` for a tie between alters q and j,
    ``d_q`` being q's number of ties to other alters (its tie to ego counts too),
    as in networkx.constraint on the ego network.
    """
    if net.ties is None:
        raise NetworkDataError("`structure` needs the alter-alter tie table; pass `ties=` to "
                               "`ego_networks` (pairs not listed are taken as not tied).")
    n = net.per_ego()
    a, b = net.ties[:, 0], net.ties[:, 1]
    tie_ego = net.ego_pos[a]
    t = np.bincount(tie_ego, minlength=net.n_egos).astype(float)
    deg = np.bincount(np.concatenate([a, b]), minlength=net.n_alters).astype(float)
    n_alter = n[net.ego_pos]  # size of each alter's ego network
    inv_n = _div(1.0, n_alter)
    indirect = np.zeros(net.n_alters)
    np.add.at(indirect, b, inv_n[a] / (1 + deg[a]))
    np.add.at(indirect, a, inv_n[b] / (1 + deg[b]))
    c_term = (inv_n + indirect) ** 2
    constraint = np.where(n > 0, np.bincount(net.ego_pos, weights=c_term, minlength=net.n_egos), np.nan)
    es = np.where(n > 0, n - 2 * np.nan_to_num(_div(t, n)), 0.0)
    return _frame(net, {"n_alter_ties": t, "density": _div(t, n * (n - 1) / 2),
                        "effective_size": es, "efficiency": _div(es, n), "constraint": constraint})


def _pairs_within(ego: np.ndarray, code: np.ndarray, n_egos: int) -> np.ndarray:
    """Per ego, the number of unordered pairs of alters sharing a group code (codes < 0 left out)."""
    ok = code >= 0
    if not ok.any():
        return np.zeros(n_egos)
    width = int(code[ok].max()) + 1
    cell, counts = np.unique(ego[ok].astype(np.int64) * width + code[ok], return_counts=True)
    return np.bincount(cell // width, weights=counts * (counts - 1) / 2.0, minlength=n_egos)


def brokerage(net: EgoNetworks, *, group: str | None = None, ego_group=None) -> pd.DataFrame:
    """Gould-Fernandez brokerage roles of the ego between pairs of its alters (needs alter-alter ties).

    The ego is tied to every alter, so for every pair of its alters who are
    not tied to each other the ego is the only path between them: it brokers
    between them (a *brokered pair*, Burt's structural hole). Each brokered
    pair is classified by the groups of its two alters (Gould and Fernandez
    1989), ties being undirected:

    - without ``ego_group`` (the default: the ego belongs to none of the alter
      groups, as for tie types or circles, which describe alters relative to
      the ego) only two roles apply: **itinerant** (both alters in the same
      group: the ego, an outsider, brokers within a group; Gould and
      Fernandez's itinerant or consultant broker) and **liaison** (the alters
      in two different groups: the ego brokers between groups);
    - with ``ego_group`` (the value of ``group`` that counts as the ego's own
      group) two more apply: **coordinator** (both alters in the ego's group)
      and **gatekeeper_representative** (one alter in the ego's group, the
      other not; gatekeeper and representative differ only in the direction
      of flow, which undirected ties do not record). Itinerant and liaison then
      concern pairs with neither alter in the ego's group.

    Parameters
    ----------
    net : EgoNetworks
        Built with ``ties=`` (the alter-alter tie table).
    group : str, optional
        Alter column holding the group; default the tie type column (partner,
        family, friend, ...), so that liaison brokerage joins different social
        worlds (family and friends, say). ``"circle"`` groups by closeness instead.
    ego_group : scalar, optional
        The value of ``group`` counted as the ego's own group.

    Returns
    -------
    DataFrame
        Key columns, ``n_brokered_pairs`` (pairs of alters not tied to each
        other; 0 for fewer than 2 alters), per role ``n_<role>`` and
        ``p_<role>`` = n_<role> / pairs of known groups (NaN when there is no
        brokered pair of known groups, e.g. for fewer than 2 alters), and
        ``n_brokered_unknown`` (brokered pairs with an alter whose group is
        missing; in no role). Roles: ``itinerant``, ``liaison`` and, with
        ``ego_group``, ``coordinator`` and ``gatekeeper_representative``.

    Raises
    ------
    NetworkDataError
        No tie table was given, ``group`` is not an alter column, or
        ``ego_group`` is not a value of it.

    Notes
    -----
    Gould, R. V. and Fernandez, R. M. (1989). Structures of mediation: a formal
    approach to brokerage in transaction networks. *Sociological Methodology*
    19, 89-126. The counts are ``n(n-1)/2 - n_alter_ties`` pairs split by the
    groups of their alters; all egos at once from per-group pair counts, with no
    loop per ego.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats import networks
    >>> egos = pd.DataFrame({"patient_id": ["A"]})
    >>> alters = pd.DataFrame({"patient_id": ["A"] * 3, "alter_id": [1, 2, 3],
    ...                        "tie_type": ["family", "family", "friend"]})
    >>> ties = pd.DataFrame({"patient_id": ["A"], "alter_a": [1], "alter_b": [3]})
    >>> net = networks.ego_networks(alters, egos=egos, ties=ties, columns={"wave": None})
    >>> networks.brokerage(net)[["n_brokered_pairs", "n_itinerant", "n_liaison"]]
       n_brokered_pairs  n_itinerant  n_liaison
    0               2.0          1.0        1.0
    """
    if net.ties is None:
        raise NetworkDataError("`brokerage` needs the alter-alter tie table; pass `ties=` to `ego_networks` "
                               "(pairs not listed are taken as not tied).")
    group = net.columns.tie_type if group is None else group
    if group not in net.alters.columns:
        raise NetworkDataError(f"`group=` is {group!r}, not a column of the alter table; expected a column "
                               "such as 'tie_type' or 'circle'.")
    codes, uniques = pd.factorize(net.alters[group], use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    own = -1
    if ego_group is not None:
        hit = [i for i, u in enumerate(uniques) if u == ego_group]
        if not hit:
            raise NetworkDataError(f"`ego_group=` is {ego_group!r}, not a value of the alter column '{group}'; "
                                   f"expected one of {', '.join(map(repr, list(uniques)[:10]))}.")
        own = hit[0]
    E = net.n_egos
    n = net.per_ego()
    known = codes >= 0
    nk = net.per_ego(mask=known)
    a, b = net.ties[:, 0], net.ties[:, 1]
    tie_ego = net.ego_pos[a]
    ca, cb = codes[a], codes[b]
    both = (ca >= 0) & (cb >= 0)
    t_all = np.bincount(tie_ego, minlength=E).astype(float)

    def tied(mask):
        return np.bincount(tie_ego, weights=mask.astype(float), minlength=E)

    open_all = n * (n - 1) / 2 - t_all
    within = _pairs_within(net.ego_pos, codes, E)
    pairs_known = nk * (nk - 1) / 2
    open_within = within - tied(both & (ca == cb))
    open_known = pairs_known - tied(both)
    cols: dict[str, np.ndarray] = {"n_brokered_pairs": open_all}
    if own < 0:
        roles = {"itinerant": open_within, "liaison": open_known - open_within}
    else:
        n_own = net.per_ego(mask=codes == own)
        coord = n_own * (n_own - 1) / 2 - tied(both & (ca == own) & (cb == own))
        gate = n_own * (nk - n_own) - tied(both & ((ca == own) != (cb == own)))
        itin = open_within - coord
        roles = {"coordinator": coord, "itinerant": itin, "gatekeeper_representative": gate,
                 "liaison": open_known - coord - itin - gate}
    for r, v in roles.items():
        cols[f"n_{r}"] = v
    for r, v in roles.items():
        cols[f"p_{r}"] = _div(v, open_known)
    cols["n_brokered_unknown"] = open_all - open_known
    return _frame(net, cols)


#: optional alter columns read by :func:`processes`
PROCESS_COLUMNS = ("knowledge_work", "help_onset", "alter_trust", "n_known_others")


def processes(net: EgoNetworks) -> pd.DataFrame:
    """Support processes reported per alter, summarised per ego (the columns present are used).

    - ``knowledge_work`` (0/1: shares knowledge and experiences of the illness):
      ``n_knowledge`` and ``p_knowledge`` (share of alters with a known value);
    - ``help_onset`` (1 = began to help before or at the diagnosis or health
      event, 2 = within the first year after it, 3 = later): ``early_help_share``,
      the share of alters with a known onset who began at or before it (onset 1);
    - ``alter_trust`` (1-5): ``mean_alter_trust``;
    - ``n_known_others`` (how many of the ego's other named alters this alter
      knows, i.e. its alter-alter degree): ``n_alter_ties_reported`` = half the
      sum of degrees, Burt's ``effective_size_reported`` = size - 2t/size (0 for
      size 0) and ``efficiency_reported`` = effective size / size. Constraint
      needs who knows whom, not only how many: use :func:`structure` with the
      tie table for it.

    Shares and means are NaN for egos without alters (or without a known value).

    Raises
    ------
    NetworkDataError
        None of the process columns is in the alter table.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats import networks
    >>> egos = pd.DataFrame({"patient_id": ["A", "B"], "wave": 0})
    >>> alters = pd.DataFrame({"patient_id": ["A", "A", "A"], "wave": 0, "alter_id": [1, 2, 3],
    ...                        "tie_type": ["partner", "family", "friend"], "n_known_others": [2, 1, 1]})
    >>> networks.processes(networks.ego_networks(alters, egos=egos))[["effective_size_reported"]]
       effective_size_reported
    0                 1.666667
    1                 0.000000
    """
    present = [c for c in PROCESS_COLUMNS if c in net.alters.columns]
    if not present:
        raise NetworkDataError("`processes` needs at least one of the alter columns "
                               f"{', '.join(PROCESS_COLUMNS)}; none is in the alter table.")
    cols = {}
    size_ = net.per_ego()
    if "knowledge_work" in present:
        v = _as_float(net.alters["knowledge_work"])
        cols["n_knowledge"] = net.per_ego(mask=v == 1)
        cols["p_knowledge"] = _div(cols["n_knowledge"], net.per_ego(mask=~np.isnan(v)))
    if "help_onset" in present:
        v = _as_float(net.alters["help_onset"])
        cols["early_help_share"] = _div(net.per_ego(mask=v == 1), net.per_ego(mask=~np.isnan(v)))
    if "alter_trust" in present:
        v = _as_float(net.alters["alter_trust"])
        kn = ~np.isnan(v)
        cols["mean_alter_trust"] = _div(net.per_ego(weights=np.where(kn, v, 0.0)), net.per_ego(mask=kn))
    if "n_known_others" in present:
        v = _as_float(net.alters["n_known_others"])
        kn = ~np.isnan(v)
        t = net.per_ego(weights=np.where(kn, v, 0.0)) / 2.0
        t = np.where(net.per_ego(mask=~kn) > 0, np.nan, t)  # an unknown degree leaves the count unknown
        eff = np.where(size_ > 0, size_ - _div(2 * t, size_), 0.0)
        cols["n_alter_ties_reported"] = t
        cols["effective_size_reported"] = eff
        cols["efficiency_reported"] = _div(eff, size_)
    return _frame(net, cols)


def ego_measures(net: EgoNetworks, *, join: bool = True, internal: Sequence[str] = ("partner", "family"),
                 weak: Sequence[str] = ("weak_tie",), group: Sequence[str] = ("group",)) -> pd.DataFrame:
    """All ego-level measures in one wide table (one row per ego and wave), to join to the survey.

    Parameters
    ----------
    join : bool
        Keep every column of the ego table (so the result is the survey table with
        network measures added); otherwise only the key columns.
    internal, weak, group : sequence of str
        Passed to :func:`ei_index`, :func:`weak_tie_share`, :func:`group_ties`.

    Returns
    -------
    DataFrame
        Size, composition, heterogeneity, E-I index, weak ties, group ties, circles,
        support work (when its columns exist), structure and brokerage roles (when
        ties were given; :func:`brokerage` grouped by tie type) and support
        processes (:func:`processes`, when their columns exist).
    """
    parts = [size(net), composition(net), heterogeneity(net), ei_index(net, internal=internal),
             weak_tie_share(net, weak=weak), group_ties(net, types=group), circles(net)]
    if net.columns.support():
        parts.append(support_work(net))
    if net.ties is not None:
        parts += [structure(net), brokerage(net)]
    if any(c in net.alters.columns for c in PROCESS_COLUMNS):
        parts.append(processes(net))
    k = len(net.keys)
    base = net.egos.reset_index(drop=True) if join else net.key_frame()
    blocks = [base] + [p.iloc[:, k:] for p in parts]
    return pd.concat(blocks, axis=1)


def alter_table(net: EgoNetworks, *, ego_columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Long (alter-level) table for multilevel models: alters within egos within practices.

    Parameters
    ----------
    ego_columns : sequence of str, optional
        Ego-table columns copied onto each alter row (default: those of
        ``country, area_id, practice_id`` that exist).

    Returns
    -------
    DataFrame
        The alter table with ego-level columns, ``n_roles`` (kinds of support work
        done by the alter), ``ego_size`` (size of the alter's network) and
        ``alter_row`` (row of the alter table).
    """
    if ego_columns is None:
        ego_columns = [c for c in ("country", "area_id", "practice_id") if c in net.egos.columns]
    missing = [c for c in ego_columns if c not in net.egos.columns]
    if missing:
        raise NetworkDataError(f"`ego_columns=` lists {', '.join(map(repr, missing))}, not columns of the ego "
                               f"table; available: {', '.join(map(str, net.egos.columns[:12]))}.")
    out = net.alters.copy()
    out.insert(0, "alter_row", np.arange(net.n_alters))
    for c in ego_columns:
        if c in out.columns:
            continue
        out[c] = net.egos[c].to_numpy()[net.ego_pos]
    kinds, vals, _ = net.support_matrix()
    if kinds:
        out["n_roles"] = sum((v == 1).astype(int) for v in vals)
    out["ego_size"] = net.per_ego()[net.ego_pos]
    return out
