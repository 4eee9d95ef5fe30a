"""Collective efficacy as a shared property of the network: agreement among members and a two-level CFA.

Collective efficacy is, by definition, a perception the group shares. When some of
the patient's network members answer the collective-efficacy items themselves, three
questions come before a network-level score is used: do networks differ (ICC(1), and
ICC(2), the reliability of a network's mean), do the members of a network agree
(rwg(j) against a uniform null), and does the common factor hold at the network level
(a two-level confirmatory factor analysis, items within members at level 1 and
networks at level 2)?
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from cimstats.errors import ScaleError
from cimstats.measures.agreement import ICCResult, RwgResult, icc, rwg
from cimstats.models.sem.fit import sem

#: the demo study's member-reported collective-efficacy items
MEMBER_CE_ITEMS = ("member_ce_1", "member_ce_2", "member_ce_3", "member_ce_4")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SharedEfficacyResult:
    """Agreement and two-level factor structure of member-reported collective efficacy.

    Attributes
    ----------
    items : tuple of str
        The item columns.
    members : pandas.DataFrame
        One row per reporting member with every item answered: the network
        (``group``), the items and ``member_score`` (the item mean).
    networks : pandas.DataFrame
        One row per network: ``group``, ``n_members``, ``mean_score``, ``rwg_j``
        (NaN with one member) and ``truncated``.
    icc : ICCResult
        ICC(1) and ICC(2) of the member score over networks.
    rwg : RwgResult
        rwg(j) per network against a uniform null on ``options`` answers.
    fit : TwoLevelResult or None
        The two-level CFA (None when ``cfa=False``).
    n_not_reporting : int
        Rows with none of the items answered (members who were not asked or did not report).
    n_partial : int
        Rows with some but not all items answered; set aside from every index.
    """

    items: tuple
    members: pd.DataFrame
    networks: pd.DataFrame
    icc: ICCResult
    rwg: RwgResult
    fit: object
    n_not_reporting: int
    n_partial: int

    def tidy(self) -> pd.DataFrame:
        """The two-level CFA's loadings, variances and intercepts (``level`` 1 = within, 2 = between networks)."""
        if self.fit is None:
            return pd.DataFrame(columns=["term", "lhs", "op", "rhs", "level", "estimate", "std_error",
                                         "p_value", "ci_lower", "ci_upper"])
        return self.fit.tidy()

    def factor_icc(self) -> float:
        """Share of the common factor's variance that lies between networks (NaN without the CFA)."""
        if self.fit is None:
            return float("nan")
        t = self.fit.tidy()
        var = t[(t["op"] == "~~") & (t["lhs"] == t["rhs"]) & t["lhs"].isin(["efficacy_w", "efficacy_b"])]
        w = float(var.loc[var["lhs"] == "efficacy_w", "estimate"].iloc[0])
        b = float(var.loc[var["lhs"] == "efficacy_b", "estimate"].iloc[0])
        return b / (b + w)

    def summary_frame(self) -> pd.DataFrame:
        """One row: members, networks, ICC(1), ICC(2), mean and median rwg(j), truncations, factor ICC."""
        return pd.DataFrame([{
            "items": ", ".join(self.items), "members": self.icc.n, "networks": self.icc.groups,
            "networks_2plus": int((self.networks["n_members"] >= 2).sum()),
            "mean_members": self.icc.k, "icc1": self.icc.icc1, "icc2": self.icc.icc2,
            "rwg_j_mean": self.rwg.mean, "rwg_j_median": self.rwg.median,
            "rwg_j_truncated": self.rwg.n_truncated, "rwg_null_variance": self.rwg.null_variance,
            "factor_icc": self.factor_icc(), "not_reporting": self.n_not_reporting, "partial": self.n_partial,
        }])


def shared_efficacy(alters: pd.DataFrame, items: Sequence[str] = MEMBER_CE_ITEMS, *, group: str = "patient_id",
                    wave: int | None = 0, options: int = 5, cfa: bool = True) -> SharedEfficacyResult:
    """Is collective efficacy shared within the patient's network? Agreement indices and a two-level CFA.

    Parameters
    ----------
    alters : pandas.DataFrame
        The harmonised alters table: one row per network member (and wave),
        with the members' own answers to the collective-efficacy items.
    items : sequence of str, default the demo study's ``member_ce_1`` .. ``member_ce_4``
        Item columns (at least two), answered on a 1..``options`` scale.
    group : str, default "patient_id"
        The network (the patient who named the members).
    wave : int or None, default 0
        Keep the rows of this wave (column ``wave``); None keeps every row.
    options : int, default 5
        Number of answer options; the rwg(j) null is the uniform distribution
        on them, variance (options^2 - 1) / 12.
    cfa : bool, default True
        Also fit the two-level CFA (one factor ``efficacy_w`` of the items
        within networks, one ``efficacy_b`` between networks, clustered on ``group``).

    Returns
    -------
    SharedEfficacyResult
        ``summary_frame()`` (ICC(1), ICC(2), rwg(j) mean and median, the factor's
        between-network share), ``networks`` (per-network agreement) and ``tidy()``
        (the CFA estimates by level).

    Raises
    ------
    ScaleError
        A column is missing, an item name cannot be used in a model, fewer than
        two items, or no member answered every item.

    Notes
    -----
    Rows with none of the items answered (members who did not report) and rows
    with some items missing are set aside and counted (``n_not_reporting``,
    ``n_partial``); every index uses the members who answered every item.
    ICC(1) uses the mean number of reporting members per network; a network with
    one reporting member has no rwg(j) but counts in the ICCs and the CFA.

    Examples
    --------
    >>> from cimstats.datasets import demo_study
    >>> from cimstats.mechanisms.shared import shared_efficacy
    >>> r = shared_efficacy(demo_study(1).alters, cfa=False)
    >>> 0.2 < r.icc.icc1 < 0.4
    True
    """
    cols = list(items)
    if len(cols) < 2:
        raise ScaleError(f"shared_efficacy: `items` has {len(cols)} column(s); give at least two item columns, "
                         "e.g. member_ce_1 .. member_ce_4.")
    bad = [c for c in cols if not isinstance(c, str) or not _NAME.match(c)]
    if bad:
        raise ScaleError(f"shared_efficacy: item name(s) {bad} cannot be used in a model; expected letters, digits "
                         "and underscores only; rename the columns first.")
    need = cols + [group] + (["wave"] if wave is not None else [])
    missing = [c for c in need if c not in alters.columns]
    if missing:
        raise ScaleError(f"shared_efficacy: the alters table has no column(s) {missing}; expected the item "
                         f"columns, '{group}'" + (" and 'wave'" if wave is not None else "")
                         + "; give `items=` / `group=` or `wave=None`.")
    d = alters
    if wave is not None:
        d = d.loc[d["wave"] == wave]
    answered = d[cols].notna()
    n_any = answered.any(axis=1)
    full = answered.all(axis=1) & d[group].notna()
    n_not = int((~n_any).sum())
    n_partial = int((n_any & ~full).sum())
    if not full.any():
        raise ScaleError(f"shared_efficacy: no member {'at wave ' + str(wave) + ' ' if wave is not None else ''}"
                         f"answered every item of {cols}; expected members' own collective-efficacy answers.")
    members = d.loc[full, [group] + cols].reset_index(drop=True)
    members[cols] = members[cols].astype(float)
    members["member_score"] = members[cols].mean(axis=1)
    icc_r = icc(members, "member_score", group)
    rwg_r = rwg(members, cols, group, options=options)
    per = members.groupby(group, sort=True).agg(n_members=("member_score", "size"),
                                                mean_score=("member_score", "mean")).reset_index()
    g = rwg_r.groups.rename(columns={"rwg": "rwg_j"})[["group", "rwg_j", "truncated"]]
    networks = per.rename(columns={group: "group"}).merge(g, on="group", how="left")
    fit = None
    if cfa:
        loads = " + ".join(cols)
        model = f"level: 1\n    efficacy_w =~ {loads}\nlevel: 2\n    efficacy_b =~ {loads}\n"
        fit = sem(model, members, cluster=group)
    return SharedEfficacyResult(items=tuple(cols), members=members, networks=networks, icc=icc_r, rwg=rwg_r,
                                fit=fit, n_not_reporting=n_not, n_partial=n_partial)
