"""Agreement and reliability of group means: ICC(1), ICC(2), rwg and rwg(j).

Collective efficacy is a property of a neighbourhood (a group), measured by
asking its residents. Before a group mean is used as the group's score, two
questions are usually asked:

* **Do groups differ?** ICC(1), the share of the variance of an individual
  answer that lies between groups, and ICC(2), the reliability of the group
  means, both from a one-way analysis of variance of the score on the group
  (Bliese 2000).
* **Do members agree?** rwg (one item) and rwg(j) (J parallel items; James,
  Demaree & Wolf 1984) compare the variance of the members' answers with the
  variance expected if they answered at random (the *null distribution*).

Formulas
--------
With ``MSB`` and ``MSW`` the between- and within-group mean squares of the
one-way ANOVA, ``N`` respondents in ``G`` groups:

* ``ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW)``, with ``k`` the group size:
  ``group_size="mean"`` (default) uses ``k = N / G``, as
  ``multilevel::ICC1`` and ``psych::statsBy`` do; ``group_size="adjusted"``
  uses ``k0 = (N - sum n_g^2 / N) / (G - 1)``, the usual correction for
  unequal group sizes (slightly smaller than ``N / G``).
* ``ICC(2) = (MSB - MSW) / MSB`` (``multilevel::ICC2``), the reliability of a
  group mean of about ``k`` members.
* ``rwg = 1 - s^2 / sigma_E^2`` per group, with ``s^2`` the (n - 1)
  variance of the members' answers.
* ``rwg(j) = J (1 - mean s^2 / sigma_E^2) / (J (1 - mean s^2 / sigma_E^2) + mean s^2 / sigma_E^2)``
  with ``mean s^2`` the mean of the J item variances in the group.
* Null variance: uniform ("rectangular") null by default,
  ``sigma_E^2 = (A^2 - 1) / 12`` for ``A`` answer options (2 for a 5-point
  item); give ``null_variance=`` for another null distribution (e.g. a
  skewed one from James et al.'s tables).
* Truncation: an observed variance larger than the null variance is set to
  the null variance, so rwg and rwg(j) are 0, never negative (as
  ``multilevel::rwg``); the number of groups truncated is reported. A group
  with one member has no rwg (NaN).

Validated against: ``multilevel`` 2.7 (``ICC1``, ``ICC2``, ``rwg``,
``rwg.j``) and base R ``aov`` to 1e-10 (``tests/reference/agreement.R``).

Examples
--------
>>> import pandas as pd
>>> d = pd.DataFrame({"hood": list("aaabbbccc"), "ce": [4, 4, 5, 2, 3, 2, 3, 3, 4]})
>>> r = icc(d, "ce", "hood")
>>> round(r.icc1, 3), round(r.icc2, 3)
(0.727, 0.889)
>>> a = rwg(d, "ce", "hood", options=5)
>>> a.groups["rwg"].round(3).tolist()
[0.833, 0.833, 0.833]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

import warnings

from cimstats.errors import MissingDataWarning, ScaleError

__all__ = ["icc", "rwg", "ICCResult", "RwgResult", "uniform_null_variance", "icc_from_anova"]


def uniform_null_variance(options: int) -> float:
    """Variance of a uniform (rectangular) answer distribution over ``options`` categories: (A^2 - 1) / 12."""
    if isinstance(options, bool) or not isinstance(options, (int, np.integer)) or options < 2:
        raise ScaleError(f"`options` is {options!r}; expected the number of answer options, an integer of 2 or more "
                         "(e.g. options=5 for a 5-point item).")
    return (options ** 2 - 1) / 12.0


def _frame(data, cols, group, verb):
    if not isinstance(data, pd.DataFrame):
        raise ScaleError(f"`data` is a {type(data).__name__}; expected a pandas DataFrame with one row per respondent.")
    for c in list(cols) + [group]:
        if c not in data.columns:
            raise ScaleError(f"{verb}: '{c}' is not a column of `data`; available columns: "
                             f"{', '.join(map(str, list(data.columns)[:12]))}.")
    for c in cols:
        if not pd.api.types.is_numeric_dtype(data[c]):
            raise ScaleError(f"{verb}: column '{c}' is {data[c].dtype}, not numeric; recode the answers to numbers.")
    return data


def icc_from_anova(y: np.ndarray, codes: np.ndarray, *, group_size: str = "mean") -> dict:
    """Kernel: one-way ANOVA mean squares and ICC(1), ICC(2) from scores and group codes 0..G-1."""
    y = np.asarray(y, dtype=float)
    n_g = np.bincount(codes)
    G, N = len(n_g), len(y)
    means = np.bincount(codes, weights=y) / n_g
    grand = y.mean()
    ssb = float(np.sum(n_g * (means - grand) ** 2))
    ssw = float(np.sum((y - means[codes]) ** 2))
    msb, msw = ssb / (G - 1), ssw / (N - G)
    k = N / G if group_size == "mean" else (N - np.sum(n_g ** 2) / N) / (G - 1)
    return {"icc1": (msb - msw) / (msb + (k - 1) * msw), "icc2": (msb - msw) / msb, "msb": msb, "msw": msw,
            "df_between": G - 1, "df_within": N - G, "k": float(k), "n": N, "groups": G}


@dataclass(frozen=True)
class ICCResult:
    """ICC(1) and ICC(2) of a score over groups (see :func:`icc`).

    Attributes
    ----------
    icc1, icc2 : float
    msb, msw : float
        Between- and within-group mean squares.
    df_between, df_within : int
    k : float
        The group size used in ICC(1).
    group_size : str
        ``"mean"`` (k = N / G) or ``"adjusted"`` (k0).
    n, groups : int
        Respondents and groups used.
    n_dropped : int
        Rows set aside for a missing score or group.
    """

    icc1: float
    icc2: float
    msb: float
    msw: float
    df_between: int
    df_within: int
    k: float
    group_size: str
    n: int
    groups: int
    n_dropped: int

    def to_frame(self) -> pd.DataFrame:
        """One row with every field."""
        return pd.DataFrame([self.__dict__])


def icc(data: pd.DataFrame, score: str, group: str, *, group_size: str = "mean") -> ICCResult:
    """ICC(1) and ICC(2) of ``score`` over the groups in ``group`` (one-way ANOVA, unequal sizes allowed).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    score : str
        Column of the individual score (e.g. the mean of the collective-efficacy items).
    group : str
        Column of the group (e.g. neighbourhood) identifiers.
    group_size : {"mean", "adjusted"}
        The ``k`` of ICC(1): ``"mean"`` = N / G (multilevel::ICC1, psych::statsBy);
        ``"adjusted"`` = (N - sum n_g^2 / N) / (G - 1).

    Returns
    -------
    ICCResult

    Raises
    ------
    ScaleError
        Missing or non-numeric columns, fewer than two groups, or no group with two members.

    Notes
    -----
    Rows with a missing score or group are set aside and counted (``n_dropped``).
    """
    if group_size not in ("mean", "adjusted"):
        raise ScaleError(f"`group_size` is {group_size!r}; expected 'mean' (N / G) or 'adjusted' (k0).")
    _frame(data, [score], group, "icc")
    ok = data[score].notna() & data[group].notna()
    sub = data.loc[ok]
    codes, uniq = pd.factorize(sub[group], sort=True)
    if len(uniq) < 2:
        raise ScaleError(f"icc: `{group}` has {len(uniq)} group(s) with an observed '{score}'; ICC needs at least "
                         "two groups.")
    if len(uniq) == len(sub):
        raise ScaleError(f"icc: every group of '{group}' has a single respondent with an observed '{score}'; the "
                         "within-group variance needs groups with two or more members.")
    if (~ok).any():
        warnings.warn(f"icc: {int((~ok).sum())} row(s) with a missing '{score}' or '{group}' were set aside "
                      "(counted in `n_dropped`).", MissingDataWarning, stacklevel=2)
    out = icc_from_anova(sub[score].to_numpy(dtype=float), codes, group_size=group_size)
    return ICCResult(icc1=float(out["icc1"]), icc2=float(out["icc2"]), msb=out["msb"], msw=out["msw"],
                     df_between=int(out["df_between"]), df_within=int(out["df_within"]), k=out["k"],
                     group_size=group_size, n=int(out["n"]), groups=int(out["groups"]),
                     n_dropped=int((~ok).sum()))


@dataclass(frozen=True)
class RwgResult:
    """Within-group agreement per group (see :func:`rwg`).

    Attributes
    ----------
    groups : pandas.DataFrame
        One row per group: ``group``, ``size`` (members with every item answered),
        ``variance`` (observed; the mean item variance for several items),
        ``rwg`` (rwg for one item, rwg(j) for several), ``truncated``
        (observed variance above the null variance, rwg set to 0).
    items : tuple of str
    null_variance : float
    null : str
        How the null variance was chosen.
    mean, median : float
        Mean and median of rwg over the groups that have one (two or more members).
    n_truncated : int
    n_dropped : int
        Rows set aside for a missing answer or group.
    """

    groups: pd.DataFrame
    items: tuple
    null_variance: float
    null: str
    mean: float
    median: float
    n_truncated: int
    n_dropped: int

    def summary_frame(self) -> pd.DataFrame:
        """One row: ``index`` (rwg or rwg(j)), ``items``, ``null_variance``, ``mean``, ``median``,
        ``groups``, ``groups_with_rwg``, ``n_truncated``, ``n_dropped``."""
        has = self.groups["rwg"].notna()
        return pd.DataFrame([dict(index="rwg" if len(self.items) == 1 else "rwg(j)", items=", ".join(self.items),
                                  null_variance=self.null_variance, mean=self.mean, median=self.median,
                                  groups=len(self.groups), groups_with_rwg=int(has.sum()),
                                  n_truncated=self.n_truncated, n_dropped=self.n_dropped)])


def rwg(data: pd.DataFrame, items: str | Sequence[str], group: str, *, options: int | None = None,
        null_variance: float | None = None) -> RwgResult:
    """Within-group agreement rwg (one item) or rwg(j) (several parallel items) per group.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    items : str or sequence of str
        One item column (rwg) or several (rwg(j)).
    group : str
        Column of group identifiers.
    options : int, optional
        Number of answer options A; the null is the uniform distribution with
        variance (A^2 - 1) / 12.
    null_variance : float, optional
        The expected variance under another null distribution (instead of ``options``).

    Returns
    -------
    RwgResult
        Per-group values, their mean and median, the null variance used and
        how many groups were truncated to 0.

    Notes
    -----
    A row with any of the items missing is set aside for rwg(j) (as
    ``multilevel::rwg.j``), and counted in ``n_dropped``. Groups with one
    member get NaN and are left out of the mean and median.
    """
    cols = [items] if isinstance(items, str) else list(items)
    if not cols:
        raise ScaleError("`items` is empty; give one item column (rwg) or several (rwg(j)).")
    if (options is None) == (null_variance is None):
        raise ScaleError("rwg: give exactly one of `options` (number of answer options; uniform null) or "
                         "`null_variance` (the expected variance under another null distribution).")
    if null_variance is not None:
        nv = float(null_variance)
        if not np.isfinite(nv) or nv <= 0:
            raise ScaleError(f"`null_variance` is {null_variance!r}; expected a positive number.")
        null = "given null variance"
    else:
        nv = uniform_null_variance(options)
        null = f"uniform over {options} options"
    _frame(data, cols, group, "rwg")
    ok = data[cols].notna().all(axis=1) & data[group].notna()
    sub = data.loc[ok]
    if (~ok).any():
        warnings.warn(f"rwg: {int((~ok).sum())} row(s) with a missing answer or '{group}' were set aside "
                      "(counted in `n_dropped`).", MissingDataWarning, stacklevel=2)
    rows = []
    J = len(cols)
    for g, block in sub.groupby(group, sort=True):
        n = len(block)
        if n < 2:
            rows.append(dict(group=g, size=n, variance=np.nan, rwg=np.nan, truncated=False))
            continue
        s2 = float(np.mean(block[cols].to_numpy(dtype=float).var(axis=0, ddof=1)))
        trunc = s2 > nv
        ratio = min(s2, nv) / nv
        value = 1.0 - ratio if J == 1 else J * (1 - ratio) / (J * (1 - ratio) + ratio)
        rows.append(dict(group=g, size=n, variance=s2, rwg=value, truncated=bool(trunc)))
    groups = pd.DataFrame(rows, columns=["group", "size", "variance", "rwg", "truncated"])
    vals = groups["rwg"].dropna()
    return RwgResult(groups=groups, items=tuple(cols), null_variance=nv, null=null,
                     mean=float(vals.mean()) if len(vals) else float("nan"),
                     median=float(vals.median()) if len(vals) else float("nan"),
                     n_truncated=int(groups["truncated"].sum()), n_dropped=int((~ok).sum()))
