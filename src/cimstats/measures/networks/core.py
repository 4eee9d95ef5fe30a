"""The ego-network table: egos, their named network members (alters), alter-alter ties.

:func:`ego_networks` checks the tables against each other (every problem is
collected into a :class:`~cimstats.errors.Report` with codes N101-N115) and
encodes them once as integer positions, so that every measure is a vectorised
``numpy.bincount`` over all egos at once (no Python loop per ego).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cimstats.errors import NetworkDataError, Report
from cimstats.render.notebook import notebook_html

#: tie types of the harmonised alter table, in this order
TIE_TYPES: tuple[str, ...] = ("partner", "family", "friend", "weak_tie", "group", "professional", "pet")
#: support work kinds -> default column
SUPPORT: dict[str, str] = {"illness": "illness_work", "everyday": "everyday_work", "emotional": "emotional_work"}


@dataclass(frozen=True)
class NetworkColumns:
    """Column names of the ego, alter and alter-alter tie tables.

    Defaults follow the harmonised demo schema (patient table and alter table).
    ``wave=None`` treats the data as one wave. ``alter_a``/``alter_b`` name the
    two alters of a row of the alter-alter tie table (which also carries the
    ego column and, with waves, the wave column).
    """

    ego: str = "patient_id"
    alter: str = "alter_id"
    wave: str | None = "wave"
    tie_type: str = "tie_type"
    circle: str | None = "circle"
    illness: str | None = "illness_work"
    everyday: str | None = "everyday_work"
    emotional: str | None = "emotional_work"
    contact: str | None = "contact_freq"
    coresident: str | None = "coresident"
    alter_a: str = "alter_a"
    alter_b: str = "alter_b"

    @classmethod
    def of(cls, columns: "NetworkColumns | Mapping[str, str | None] | None") -> "NetworkColumns":
        if columns is None:
            return cls()
        if isinstance(columns, NetworkColumns):
            return columns
        names = {f.name for f in fields(cls)}
        bad = sorted(set(columns) - names)
        if bad:
            raise NetworkDataError(f"`columns=` has the key(s) {', '.join(map(repr, bad))}; expected some of "
                                   f"{', '.join(sorted(names))}.")
        return replace(cls(), **dict(columns))

    def support(self) -> dict[str, str]:
        """Support kind -> column, for the kinds whose column is set."""
        return {k: getattr(self, k) for k in SUPPORT if getattr(self, k)}


@dataclass(frozen=True, eq=False)
class EgoNetworks:
    """Checked and encoded ego, alter and (optional) alter-alter tie tables.

    Attributes
    ----------
    egos : DataFrame
        The ego table as given (one row per ego, or per ego x wave); row ``i`` is ego position ``i``.
    alters : DataFrame
        The alter table as given, in the same row order.
    ego_pos : ndarray
        Ego position of each alter row.
    type_code : ndarray
        Index into ``tie_types`` of each alter row.
    ties : ndarray or None
        Alter-alter ties as pairs of alter row positions (n_ties, 2), deduplicated.
    keys : list of str
        Columns identifying an ego row (ego id, and wave when used).
    report : Report
        Warnings and notes found while checking (errors raise instead).
    """

    egos: pd.DataFrame
    alters: pd.DataFrame
    ego_pos: np.ndarray
    type_code: np.ndarray
    alter_code: np.ndarray
    tie_types: tuple[str, ...]
    columns: NetworkColumns
    keys: tuple[str, ...]
    ties: np.ndarray | None = None
    report: Report = field(default_factory=Report)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_egos(self) -> int:
        return len(self.egos)

    @property
    def n_alters(self) -> int:
        return len(self.alters)

    def key_frame(self) -> pd.DataFrame:
        """The key columns of the ego table (ego id, wave), with a fresh index."""
        return self.egos[list(self.keys)].reset_index(drop=True)

    def per_ego(self, weights: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Vectorised sum over each ego's alters (count when ``weights`` is None)."""
        if weights is None and mask is None:
            if "size" not in self._cache:
                self._cache["size"] = np.bincount(self.ego_pos, minlength=self.n_egos).astype(float)
            return self._cache["size"]
        if mask is not None:
            w = mask.astype(float) if weights is None else np.where(mask, weights, 0.0)
        else:
            w = weights
        return np.bincount(self.ego_pos, weights=w, minlength=self.n_egos)

    def _ego_type_code(self) -> np.ndarray:
        if "ego_type" not in self._cache:
            self._cache["ego_type"] = self.ego_pos * len(self.tie_types) + self.type_code
        return self._cache["ego_type"]

    def per_ego_type(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Counts per ego x tie type, shape (n_egos, n_types)."""
        k = len(self.tie_types)
        if mask is None and "type_counts" in self._cache:
            return self._cache["type_counts"]
        w = None if mask is None else mask.astype(float)
        out = np.bincount(self._ego_type_code(), weights=w, minlength=self.n_egos * k)
        out = out.reshape(self.n_egos, k).astype(float)
        if mask is None:
            self._cache["type_counts"] = out
        return out

    def support_matrix(self) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
        """Kinds, per kind the 0/1 provision values (NaN where unknown), and per kind the known mask."""
        if "support" not in self._cache:
            kinds = list(self.columns.support())
            vals = [_as_float(self.alters[self.columns.support()[k]]) for k in kinds]
            self._cache["support"] = (kinds, vals, [~np.isnan(v) for v in vals])
        return self._cache["support"]

    def __repr__(self) -> str:
        t = f", {0 if self.ties is None else len(self.ties)} alter-alter ties" if self.ties is not None else ""
        return f"<EgoNetworks: {self.n_egos} egos, {self.n_alters} alters{t}>"

    def _repr_html_(self) -> str:
        return notebook_html(repr(self).strip("<>"), lines=[f"{len(self.report)} problem(s) noted"]
                             if len(self.report) else [])


def _as_float(s: pd.Series) -> np.ndarray:
    """Numeric values of a column as float (NaN for missing or non-numeric)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _codes(*series: pd.Series) -> list[np.ndarray]:
    """Factorize several series jointly; returns integer codes (-1 for missing) per series.

    Integer columns without missing values are used as they are (shifted to start
    at 0), which avoids hashing millions of values.
    """
    if all(pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any() for s in series):
        arrs = [s.to_numpy(dtype=np.int64) for s in series]
        lo = min((int(a.min()) for a in arrs if len(a)), default=0)
        hi = max((int(a.max()) for a in arrs if len(a)), default=0)
        if hi - lo < 2**31:  # small span: safe to combine with other codes without overflow
            return [a - lo for a in arrs]
    allv = pd.concat([s.reset_index(drop=True) for s in series], ignore_index=True)
    codes, _ = pd.factorize(allv, use_na_sentinel=True)
    out, start = [], 0
    for s in series:
        out.append(codes[start:start + len(s)].astype(np.int64))
        start += len(s)
    return out


def _combine(code_lists: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Mixed-radix combination of per-column codes into one int64 per row (-1 if any part missing)."""
    n_tables = len(code_lists[0])
    combined = [np.zeros(len(code_lists[0][t]), dtype=np.int64) for t in range(n_tables)]
    bad = [np.zeros(len(code_lists[0][t]), dtype=bool) for t in range(n_tables)]
    for col_codes in code_lists:
        radix = max((int(c.max()) if len(c) else -1) for c in col_codes) + 1
        for t in range(n_tables):
            combined[t] = combined[t] * max(radix, 1) + np.maximum(col_codes[t], 0)
            bad[t] |= col_codes[t] < 0
    return [np.where(b, -1, c) for c, b in zip(combined, bad)]


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row position of each query key in ``keys`` (first occurrence); -1 when absent or negative."""
    keys = np.asarray(keys, dtype=np.int64)
    query = np.asarray(query, dtype=np.int64)
    idx = pd.Index(keys)
    if idx.is_unique and not (keys < 0).any():
        out = idx.get_indexer(query).astype(np.int64)
    else:
        s = pd.Series(np.arange(len(keys)), index=keys)
        s = s[~s.index.duplicated() & (s.index >= 0)]
        out = pd.Index(s.index).get_indexer(query)
        out = np.where(out >= 0, s.to_numpy()[np.maximum(out, 0)], -1).astype(np.int64)
    out[query < 0] = -1
    return out


def _rows(mask: np.ndarray, index: pd.Index, limit: int = 5) -> str:
    rows = index[np.flatnonzero(mask)[:limit]]
    more = int(mask.sum()) - len(rows)
    return ", ".join(map(str, rows)) + (f" and {more} more" if more > 0 else "")


def ego_networks(alters: pd.DataFrame, *, egos: pd.DataFrame, ties: pd.DataFrame | None = None,
                 columns: "NetworkColumns | Mapping[str, str | None] | None" = None,
                 tie_types: Sequence[str] = TIE_TYPES) -> EgoNetworks:
    """Check and encode ego, alter and alter-alter tie tables for the network measures.

    Parameters
    ----------
    alters : DataFrame
        One row per named network member (per wave): ego id, alter id, tie type,
        and optionally circle, support work (0/1), contact frequency, co-residence.
    egos : DataFrame
        One row per ego (per wave when a wave column is used). Egos without alters
        get true zeros (size 0), which is why this table is required.
    ties : DataFrame, optional
        Alter-alter ties (undirected): ego id, ``alter_a``, ``alter_b`` (and wave).
        Pairs not listed are taken as not tied. Needed for density, effective size
        and constraint.
    columns : NetworkColumns or mapping, optional
        Column names; defaults follow the harmonised alter table
        (``patient_id, alter_id, wave, circle, tie_type, illness_work, everyday_work,
        emotional_work, contact_freq, coresident``).
    tie_types : sequence of str
        The allowed tie types (the composition categories).

    Returns
    -------
    EgoNetworks

    Raises
    ------
    NetworkDataError
        With ``report`` listing every problem: N101 alters whose ego is not in the
        ego table, N102 duplicate alter ids within an ego (and wave), N103 unknown
        tie types, N104 missing tie type, N105 support-work values other than 0/1,
        N107 duplicate ego rows, N108 missing ego id, N109 missing columns,
        N110 tie naming an alter not in that ego's network, N111 self-ties.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats import networks
    >>> egos = pd.DataFrame({"patient_id": ["A", "B"]})
    >>> alters = pd.DataFrame({"patient_id": ["A", "A"], "alter_id": [1, 2],
    ...                        "tie_type": ["partner", "friend"]})
    >>> net = networks.ego_networks(alters, egos=egos, columns={"wave": None})
    >>> networks.size(net)["size"].tolist()
    [2.0, 0.0]
    """
    cols = NetworkColumns.of(columns)
    rep = Report()
    if not isinstance(alters, pd.DataFrame) or not isinstance(egos, pd.DataFrame):
        raise NetworkDataError("`alters` and `egos` must be pandas DataFrames (one row per alter, one row "
                               "per ego).")
    use_wave = bool(cols.wave) and cols.wave in alters.columns
    if cols.wave and not use_wave and cols.wave in egos.columns and egos[cols.wave].nunique() > 1:
        raise NetworkDataError(f"`egos` has several waves in '{cols.wave}' but `alters` has no '{cols.wave}' "
                               "column; add the wave to the alter table or pass columns={'wave': None}.")
    if use_wave and cols.wave not in egos.columns:
        waves = pd.Series(pd.unique(alters[cols.wave].dropna()))
        rep.add("N112", f"`egos` has no '{cols.wave}' column, so each ego was repeated for every wave seen "
                f"in `alters` ({', '.join(map(str, waves.tolist()))}).", severity="info")
        egos = egos.merge(pd.DataFrame({cols.wave: waves}), how="cross")
    keys = (cols.ego, cols.wave) if use_wave else (cols.ego,)
    required_alter = list(keys) + [cols.alter, cols.tie_type]
    missing = [c for c in required_alter if c not in alters.columns]
    missing_e = [c for c in keys if c not in egos.columns]
    if missing or missing_e:
        where = ([f"`alters` lacks {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"`egos` lacks {', '.join(map(repr, missing_e))}"] if missing_e else [])
        raise NetworkDataError(f"{'; '.join(where)}; name the columns with `columns=` "
                               f"(e.g. columns={{'ego': 'pid'}}).")
    opt_missing = [c for c in [cols.circle, *cols.support().values(), cols.contact, cols.coresident]
                   if c and c not in alters.columns]
    if opt_missing:
        rep.add("N109", f"`alters` lacks the optional column(s) {', '.join(map(repr, opt_missing))}; "
                "measures that need them are left out.", severity="warning",
                remedy="Name them with `columns=` or set them to None.")
        cols = replace(cols, **{f.name: None for f in fields(cols)
                                if getattr(cols, f.name) in opt_missing and f.name not in
                                ("ego", "alter", "wave", "tie_type", "alter_a", "alter_b")})
    egos = egos.reset_index(drop=True)
    alters = alters.reset_index(drop=True)

    # --- ego keys
    per_col = [_codes(egos[k], alters[k]) for k in keys]
    e_key, a_key = _combine(per_col)
    if (e_key < 0).any():
        rep.add("N108", f"`egos` has {int((e_key < 0).sum())} row(s) with a missing ego id or wave "
                f"(rows {_rows(e_key < 0, egos.index)}).", remedy="Fill or remove these rows.")
    dup_e = pd.Series(e_key).duplicated(keep=False).to_numpy() & (e_key >= 0)
    if dup_e.any():
        rep.add("N107", f"`egos` lists the same ego{' and wave' if use_wave else ''} more than once "
                f"(rows {_rows(dup_e, egos.index)}).", remedy="Keep one row per ego (and wave).")
    ego_pos = _lookup(e_key, a_key)
    if (a_key < 0).any():
        m = a_key < 0
        rep.add("N108", f"`alters` has {int(m.sum())} row(s) with a missing ego id{' or wave' if use_wave else ''} "
                f"(rows {_rows(m, alters.index)}).", remedy="Fill in the ego id or remove these alters.")
    orphan = (ego_pos < 0) & (a_key >= 0)
    if orphan.any():
        ex = alters.loc[orphan, list(keys)].drop_duplicates().head(3)
        ex_txt = "; ".join(", ".join(f"{k}={v}" for k, v in r.items()) for r in ex.to_dict("records"))
        rep.add("N101", f"{int(orphan.sum())} alter row(s) belong to egos that are not in `egos` "
                f"(rows {_rows(orphan, alters.index)}; e.g. {ex_txt}).",
                remedy="Add these egos to the ego table or remove their alters.")

    # --- alter ids unique within ego (x wave)
    (alter_code,) = _codes(alters[cols.alter])
    if (alter_code < 0).any():
        m = alter_code < 0
        rep.add("N102", f"`alters` has {int(m.sum())} row(s) without an alter id (rows {_rows(m, alters.index)}).",
                remedy="Give every alter an id (persistent across waves).")
    n_alter_codes = int(alter_code.max()) + 1 if len(alter_code) else 1
    pair = np.where((ego_pos >= 0) & (alter_code >= 0), ego_pos * n_alter_codes + alter_code, -1)
    srt = np.sort(pair)
    if ((srt[1:] == srt[:-1]) & (srt[1:] >= 0)).any():
        dup = pd.Series(pair).duplicated(keep=False).to_numpy() & (pair >= 0)
        rep.add("N102", f"{int(dup.sum())} alter row(s) repeat an alter id within the same ego"
                f"{' and wave' if use_wave else ''} (rows {_rows(dup, alters.index)}).",
                remedy="Keep one row per alter per ego (and wave), or give distinct alters distinct ids.")

    # --- tie types
    tie_types = tuple(str(t) for t in tie_types)
    if len(set(tie_types)) != len(tie_types):
        raise NetworkDataError("`tie_types=` lists a type twice; list each tie type once.")
    tt = alters[cols.tie_type]
    tt_codes, tt_uniques = pd.factorize(tt, use_na_sentinel=True)
    to_type = pd.Index(list(tie_types)).get_indexer(pd.Index(tt_uniques).astype(object)).astype(np.int64)
    type_code = np.where(tt_codes >= 0, to_type[np.maximum(tt_codes, 0)] if len(to_type) else -1, -1)
    type_code = np.asarray(type_code, dtype=np.int64)
    unknown = (type_code < 0) & tt.notna().to_numpy()
    if unknown.any():
        vals = sorted(map(str, pd.unique(tt[unknown])))
        rep.add("N103", f"column '{cols.tie_type}' has unknown tie type(s) {', '.join(map(repr, vals[:8]))} "
                f"in {int(unknown.sum())} row(s) (rows {_rows(unknown, alters.index)}); expected one of "
                f"{', '.join(tie_types)}.", column=cols.tie_type,
                remedy="Recode them to a known type or pass tie_types= with the full list.")
    miss_tt = tt.isna().to_numpy()
    if miss_tt.any():
        rep.add("N104", f"column '{cols.tie_type}' is missing in {int(miss_tt.sum())} row(s) "
                f"(rows {_rows(miss_tt, alters.index)}).", column=cols.tie_type,
                remedy="Code the tie type or remove these alters (composition needs it).")

    # --- support work 0/1
    for kind, c in cols.support().items():
        v = _as_float(alters[c])
        nan = np.isnan(v)
        badv = (~nan & (v != 0) & (v != 1))
        if nan.any():
            badv |= nan & alters[c].notna().to_numpy()
        if badv.any():
            vals = sorted(map(str, pd.unique(alters.loc[badv, c])))[:6]
            rep.add("N105", f"column '{c}' ({kind} work) has value(s) {', '.join(vals)} in {int(badv.sum())} "
                    f"row(s) (rows {_rows(badv, alters.index)}); expected 0 or 1.", column=c,
                    remedy="Recode support work to 0 (no) / 1 (yes).")
        nmiss = int(nan.sum() - (badv & nan).sum())
        if nmiss > 0:
            rep.add("N106", f"column '{c}' ({kind} work) is missing for {nmiss} alter(s); they count as "
                    f"unknown, and shares of {kind} work use alters with a known value.", severity="warning",
                    column=c)

    # --- alter-alter ties
    tie_pairs = None
    if ties is not None:
        need = list(keys) + [cols.alter_a, cols.alter_b]
        miss_t = [c for c in need if c not in ties.columns]
        if miss_t:
            raise NetworkDataError(f"`ties` lacks {', '.join(map(repr, miss_t))}; expected the ego id"
                                   f"{', wave' if use_wave else ''} and the two alter ids of each tie "
                                   "(name them with columns={'alter_a': ..., 'alter_b': ...}).")
        ties = ties.reset_index(drop=True)
        e2, t2 = _combine([_codes(egos[k], ties[k]) for k in keys])
        t_ego = _lookup(e2, t2)
        ac = _codes(alters[cols.alter], ties[cols.alter_a], ties[cols.alter_b])
        na = int(max(c.max() if len(c) else -1 for c in ac)) + 1
        a_pair = np.where((ego_pos >= 0) & (ac[0] >= 0), ego_pos.astype(np.int64) * na + ac[0], -1)
        pa = _lookup(a_pair, np.where((t_ego >= 0) & (ac[1] >= 0), t_ego * na + ac[1], -1))
        pb = _lookup(a_pair, np.where((t_ego >= 0) & (ac[2] >= 0), t_ego * na + ac[2], -1))
        bad_t = (pa < 0) | (pb < 0)
        if bad_t.any():
            rep.add("N110", f"{int(bad_t.sum())} alter-alter tie(s) name an ego or alter that is not in that "
                    f"ego's alter table (rows {_rows(bad_t, ties.index)}).",
                    remedy="Check the ego and alter ids of these ties.")
        self_t = (pa == pb) & ~bad_t
        if self_t.any():
            rep.add("N111", f"{int(self_t.sum())} alter-alter tie(s) join an alter to itself "
                    f"(rows {_rows(self_t, ties.index)}).", remedy="Remove self-ties.")
        ok = ~bad_t & ~self_t
        lo, hi = np.minimum(pa[ok], pb[ok]), np.maximum(pa[ok], pb[ok])
        keyv = np.sort(lo.astype(np.int64) * max(len(alters), 1) + hi)  # one int64 per pair
        keyv = keyv[np.r_[True, keyv[1:] != keyv[:-1]]] if len(keyv) else keyv
        pairs = np.column_stack([keyv // max(len(alters), 1), keyv % max(len(alters), 1)])
        n_dup = int(ok.sum()) - len(pairs)
        if n_dup:
            rep.add("N113", f"{n_dup} alter-alter tie(s) repeat a pair already listed (in either order) and "
                    "were counted once.", severity="info")
        tie_pairs = pairs.astype(np.int64)

    if rep.has_errors:
        first = rep.errors[0]
        raise NetworkDataError(f"The network tables have {len(rep.errors)} problem(s), the first being "
                               f"[{first.code}] {first.message} See `.report` for all of them.", report=rep)
    return EgoNetworks(egos=egos, alters=alters, ego_pos=ego_pos.astype(np.int64), type_code=type_code,
                       alter_code=alter_code, tie_types=tie_types, columns=cols, keys=keys, ties=tie_pairs,
                       report=rep)
