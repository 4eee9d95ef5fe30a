"""Change in personal networks between two waves (negotiation within networks).

Alters keep their id across waves, so each ego's alters at the two waves can be
matched: retained (named at both), added (only at the later wave) and lost (only
at the earlier wave). For retained alters the support roles (illness, everyday,
emotional work) are compared: gained (0 -> 1) or dropped (1 -> 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cimstats.errors import NetworkDataError
from cimstats.measures.networks.core import EgoNetworks
from cimstats.measures.networks.core import SUPPORT


@dataclass(frozen=True)
class NetworkChange:
    """Network change between two waves.

    Attributes
    ----------
    egos : DataFrame
        One row per ego present in the ego table at both waves: ``size_from, size_to,
        n_retained, n_added, n_lost, turnover`` ((added + lost) / alters at either wave;
        NaN when none), ``roles_gained, roles_dropped`` (summed over retained alters),
        ``<kind>_gained, <kind>_dropped`` per kind, and ``role_change_index`` =
        (roles gained + dropped) / (kinds x retained alters), the share of role slots of
        retained alters that changed (NaN without retained alters).
    alters : DataFrame
        One row per ego x alter named at either wave: ``status`` (retained / added /
        lost), tie type at each wave, and for retained alters ``<kind>_from``,
        ``<kind>_to`` and ``<kind>_change`` (+1 gained, -1 dropped, 0 same; NaN when
        either value is unknown), ``roles_gained`` (kinds of support work taken on),
        ``role_gained`` and ``role_dropped`` (1 when any kind was taken on or given
        up; all three NaN unless every kind is known at both waves; see
        :func:`alter_role_changes`), and ``circle_from, circle_to, circle_change``
        (negative = moved inward) when a circle column exists.
    n_dropped : dict
        Egos left out and why (present at one wave only).
    """

    egos: pd.DataFrame
    alters: pd.DataFrame
    waves: tuple
    n_dropped: dict = field(default_factory=dict)

    def summary(self) -> str:
        g = self.glance().iloc[0]
        return (f"Network change from wave {self.waves[0]} to {self.waves[1]}: {int(g['n_egos'])} egos; per ego "
                f"{g['mean_retained']:.2f} alters retained, {g['mean_added']:.2f} added, {g['mean_lost']:.2f} lost; "
                f"mean role-change index {g['mean_role_change_index']:.3f}; egos left out: "
                + ", ".join(f"{k} {v}" for k, v in self.n_dropped.items()))

    def glance(self) -> pd.DataFrame:
        e = self.egos
        return pd.DataFrame([{"wave_from": self.waves[0], "wave_to": self.waves[1], "n_egos": len(e),
                              "mean_retained": e["n_retained"].mean(), "mean_added": e["n_added"].mean(),
                              "mean_lost": e["n_lost"].mean(),
                              "mean_role_change_index": e["role_change_index"].mean(),
                              **{f"n_dropped: {k}": v for k, v in self.n_dropped.items()}}])


#: ego-level columns of :attr:`NetworkChange.egos` besides the key (``<kind>`` expands to each support kind)
EGO_CHANGE_COLUMNS = ("wave_from", "wave_to", "size_from", "size_to", "n_retained", "n_added", "n_lost", "turnover",
                      "<kind>_gained", "<kind>_dropped", "roles_gained", "roles_dropped", "any_role_gained",
                      "n_moved_inward", "n_moved_outward", "role_change_index")
#: alter-level columns of :attr:`NetworkChange.alters` besides the key
ALTER_CHANGE_COLUMNS = ("status", "tie_type_from", "tie_type_to", "circle_from", "circle_to", "circle_change",
                        "<kind>_from", "<kind>_to", "<kind>_change", "roles_gained", "role_gained", "role_dropped")


def change_columns(level: str = "ego", kinds=None) -> list[str]:
    """The columns :func:`change` computes at one level (``"ego"`` or ``"alter"``), placeholders expanded.

    Parameters
    ----------
    level : {"ego", "alter"}
        ``"ego"``: :attr:`NetworkChange.egos`; ``"alter"``: :attr:`NetworkChange.alters`.
    kinds : sequence of str, optional
        Support kinds (default the three of :data:`~cimstats.measures.networks.core.SUPPORT`).

    Examples
    --------
    >>> from cimstats.measures.networks.change import change_columns
    >>> "any_role_gained" in change_columns("ego"), "role_gained" in change_columns("alter")
    (True, True)
    """

    if level not in ("ego", "alter"):
        raise ValueError(f"`level` is {level!r}; expected 'ego' or 'alter'.")
    kinds = list(SUPPORT) if kinds is None else list(kinds)
    out: list[str] = []
    for col in (EGO_CHANGE_COLUMNS if level == "ego" else ALTER_CHANGE_COLUMNS):
        out += [col.replace("<kind>", k) for k in kinds] if "<kind>" in col else [col]
    return out


def alter_role_changes(alters: pd.DataFrame, kinds) -> pd.DataFrame:
    """Add ``roles_gained``, ``role_gained`` and ``role_dropped`` to a per-alter change table.

    A kind of support work is gained when it goes from 0 to 1 between the
    waves and dropped when it goes from 1 to 0. ``roles_gained`` counts the
    kinds gained, ``role_gained`` / ``role_dropped`` are 1 when any kind was
    gained / dropped; all three are missing unless every kind is known at both
    waves (so always for alters added or lost).

    Parameters
    ----------
    alters : DataFrame
        With ``<kind>_from`` and ``<kind>_to`` columns (as :attr:`NetworkChange.alters`).
    kinds : sequence of str
        The support kinds; those without both columns are left out.

    Returns
    -------
    DataFrame
        A copy of ``alters`` with the three columns (missing when no kind is present).
    """
    out = alters.copy()
    works = [k for k in kinds if f"{k}_from" in out.columns and f"{k}_to" in out.columns]
    if not works:
        for col in ("roles_gained", "role_gained", "role_dropped"):
            out[col] = np.nan
        return out
    f = np.column_stack([pd.to_numeric(out[f"{w}_from"], errors="coerce").to_numpy(dtype=float) for w in works])
    t = np.column_stack([pd.to_numeric(out[f"{w}_to"], errors="coerce").to_numpy(dtype=float) for w in works])
    gained = (f == 0) & (t == 1)
    dropped = (f == 1) & (t == 0)
    known = ~(np.isnan(f) | np.isnan(t)).any(axis=1)
    out["roles_gained"] = np.where(known, gained.sum(axis=1), np.nan)
    out["role_gained"] = np.where(known, gained.any(axis=1).astype(float), np.nan)
    out["role_dropped"] = np.where(known, dropped.any(axis=1).astype(float), np.nan)
    return out


def change(net: EgoNetworks, *, waves: tuple = (0, 1)) -> NetworkChange:
    """Alters added, lost and retained, and support roles gained or dropped, between two waves.

    Parameters
    ----------
    net : EgoNetworks
        Built with a wave column and persistent alter ids.
    waves : (from, to)
        The two wave values to compare.

    Returns
    -------
    NetworkChange

    Raises
    ------
    NetworkDataError
        When the data have no wave column, or a requested wave is absent.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats import networks
    >>> egos = pd.DataFrame({"patient_id": ["A", "A"], "wave": [0, 1]})
    >>> alters = pd.DataFrame({"patient_id": ["A", "A", "A"], "wave": [0, 0, 1],
    ...     "alter_id": [1, 2, 1], "tie_type": ["partner", "friend", "partner"],
    ...     "illness_work": [0, 1, 1], "everyday_work": [1, 0, 1], "emotional_work": [1, 1, 1]})
    >>> ch = networks.change(networks.ego_networks(alters, egos=egos))
    >>> ch.egos[["n_retained", "n_lost", "n_added", "role_change_index"]].iloc[0].tolist()
    [1.0, 1.0, 0.0, 0.3333333333333333]
    """
    c = net.columns
    if len(net.keys) < 2:
        raise NetworkDataError("`change` needs waves: build the networks with a wave column "
                               f"(columns={{'wave': ...}}; the default is '{c.wave}').")
    wcol = net.keys[1]
    w0, w1 = waves
    ew = net.egos[wcol]
    for w in (w0, w1):
        if not (ew == w).any():
            raise NetworkDataError(f"`waves=` asks for wave {w!r}, which is not in the ego table's '{wcol}' "
                                   f"column (found {', '.join(map(str, pd.unique(ew)))}).")
    ego_ids = net.egos[c.ego]
    in0 = set(ego_ids[ew == w0])
    in1 = set(ego_ids[ew == w1])
    both = in0 & in1
    n_only = {"ego at the first wave only": len(in0 - in1), "ego at the second wave only": len(in1 - in0)}

    kinds = list(c.support())
    a = net.alters
    base_cols = [c.ego, c.alter, c.tie_type] + [c.support()[k] for k in kinds] + ([c.circle] if c.circle else [])
    aw = a[wcol].to_numpy()
    A0 = a.loc[aw == w0, base_cols]
    A1 = a.loc[aw == w1, base_cols]
    A0 = A0[A0[c.ego].isin(both)]
    A1 = A1[A1[c.ego].isin(both)]
    m = A0.merge(A1, on=[c.ego, c.alter], how="outer", suffixes=("_from", "_to"), indicator=True)
    status = np.select([m["_merge"].to_numpy() == "both", m["_merge"].to_numpy() == "right_only"],
                       ["retained", "added"], "lost")
    out = pd.DataFrame({c.ego: m[c.ego].to_numpy(), c.alter: m[c.alter].to_numpy(), "status": status,
                        "tie_type_from": m[f"{c.tie_type}_from"].to_numpy(),
                        "tie_type_to": m[f"{c.tie_type}_to"].to_numpy()})
    retained = status == "retained"
    if c.circle:
        cf = pd.to_numeric(m[f"{c.circle}_from"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ct = pd.to_numeric(m[f"{c.circle}_to"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out["circle_from"] = cf
        out["circle_to"] = ct
        out["circle_change"] = np.where(retained, ct - cf, np.nan)  # negative = moved inward
    gained_tot = np.zeros(len(m))
    dropped_tot = np.zeros(len(m))
    per_kind = {}
    for k in kinds:
        col = c.support()[k]
        f = pd.to_numeric(m[f"{col}_from"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        t = pd.to_numeric(m[f"{col}_to"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        chg = np.where(retained, t - f, np.nan)
        out[f"{k}_from"] = f
        out[f"{k}_to"] = t
        out[f"{k}_change"] = chg
        g = (chg == 1).astype(float)
        d = (chg == -1).astype(float)
        gained_tot += g
        dropped_tot += d
        per_kind[k] = (g, d)
    out = alter_role_changes(out, kinds)
    out = out.sort_values([c.ego, c.alter], kind="stable").reset_index(drop=True) if len(out) else out

    # ego level, vectorised over egos via factorised ids
    egos_both = net.egos.loc[(ew == w0) & ego_ids.isin(both), [c.ego]].reset_index(drop=True)
    pos = pd.Index(egos_both[c.ego]).get_indexer(m[c.ego])
    E = len(egos_both)

    def per(mask_or_w):
        return np.bincount(pos, weights=np.asarray(mask_or_w, dtype=float), minlength=E)

    n_ret = per(retained)
    n_add = per(status == "added")
    n_lost = per(status == "lost")
    res = egos_both.copy()
    res["wave_from"] = w0
    res["wave_to"] = w1
    res["size_from"] = n_ret + n_lost
    res["size_to"] = n_ret + n_add
    res["n_retained"] = n_ret
    res["n_added"] = n_add
    res["n_lost"] = n_lost
    union = n_ret + n_add + n_lost
    with np.errstate(invalid="ignore", divide="ignore"):
        res["turnover"] = np.where(union > 0, (n_add + n_lost) / np.where(union > 0, union, 1), np.nan)
        g_all, d_all = per(gained_tot), per(dropped_tot)
        for k, (g, d) in per_kind.items():
            res[f"{k}_gained"] = per(g)
            res[f"{k}_dropped"] = per(d)
        res["roles_gained"] = g_all
        res["roles_dropped"] = d_all
        res["any_role_gained"] = (g_all > 0).astype(float)
        if c.circle:
            chg_c = np.where(retained, ct - cf, np.nan)
            res["n_moved_inward"] = per(chg_c < 0)
            res["n_moved_outward"] = per(chg_c > 0)
        slots = n_ret * max(len(kinds), 1)
        res["role_change_index"] = np.where(slots > 0, (g_all + d_all) / np.where(slots > 0, slots, 1), np.nan)
    return NetworkChange(egos=res, alters=out, waves=(w0, w1), n_dropped=n_only)
