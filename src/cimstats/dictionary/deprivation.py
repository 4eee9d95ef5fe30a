"""Area deprivation and individual socio-economic position.

Area indices are not comparable across nations (England's IMD, Scotland's
SIMD, Wales's WIMD, Northern Ireland's MDM and national indices elsewhere
differ in domains, weights and area units). The comparable quantity is the
position *within* a nation: :func:`within_nation_quantiles` turns any index
into within-nation quantiles where 1 always means most deprived, keeping the
index name, version, area vintage and direction as metadata.

Census-area scores (:func:`townsend`, :func:`carstairs`) are sums of
z-scores over a stated reference population. Individual measures:
:func:`equivalised_income` (OECD-modified scale), :func:`isced_broad`
(ISCED 2011 levels) and :func:`financial_strain`.

Examples
--------
>>> import numpy as np
>>> q = within_nation_quantiles([10, 20, 30, 40, 50, 5, 6], nation=["EN"] * 5 + ["NL"] * 2, n=5,
...                             direction="higher_more_deprived", index="IMD", version="2019")
>>> q.codes.tolist()
[5, 4, 3, 2, 1, 3, 1]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cimstats.errors import CimstatsError, MissingDataWarning

DIRECTIONS = ("higher_more_deprived", "lower_more_deprived")


class DeprivationError(CimstatsError, ValueError):
    """Inputs to a deprivation measure are inconsistent."""


@dataclass(frozen=True)
class DeprivationIndex:
    """Metadata of an area deprivation index."""

    name: str
    nation: str
    version: str
    vintage: str
    measure: str  # "score" or "rank"
    direction: str


#: common UK indices; their ranks run from 1 = most deprived, their scores rise with deprivation
KNOWN_INDICES: dict[str, DeprivationIndex] = {
    "IMD2019": DeprivationIndex("English Index of Multiple Deprivation", "England", "2019", "LSOA 2011", "score", "higher_more_deprived"),
    "IMD2019_rank": DeprivationIndex("English Index of Multiple Deprivation", "England", "2019", "LSOA 2011", "rank", "lower_more_deprived"),
    "WIMD2019_rank": DeprivationIndex("Welsh Index of Multiple Deprivation", "Wales", "2019", "LSOA 2011", "rank", "lower_more_deprived"),
    "SIMD2020_rank": DeprivationIndex("Scottish Index of Multiple Deprivation", "Scotland", "2020", "Data Zone 2011", "rank", "lower_more_deprived"),
    "NIMDM2017_rank": DeprivationIndex("Northern Ireland Multiple Deprivation Measure", "Northern Ireland", "2017", "SOA 2001", "rank", "lower_more_deprived"),
}


# -- kernel -----------------------------------------------------------------------------
def quantile_codes(values: np.ndarray, groups: np.ndarray | None, n: int, higher_is_more_deprived: bool,
                   units: np.ndarray | None = None) -> np.ndarray:
    """Within-group quantile codes 1..n with 1 = most deprived (float array, NaN where missing).

    Values are ranked from most to least deprived within each group (ties
    share the lowest rank) and rank ``r`` of ``N`` goes to quantile
    ``floor((r - 1) * n / N) + 1``, so groups are as equal as ties allow.
    With ``units`` (area identifiers) each area is ranked once and its code
    given to every row of that area.
    """
    x = np.asarray(values, dtype=float)
    nrow = len(x)
    g = np.zeros(nrow, dtype=np.int64) if groups is None else pd.factorize(pd.Series(groups), use_na_sentinel=False)[0]
    key = -x if higher_is_more_deprived else x
    if units is not None:
        u = pd.factorize(pd.Series(units), use_na_sentinel=False)[0]
        frame = pd.DataFrame({"g": g, "u": u, "k": key})
        first = frame.dropna(subset=["k"]).drop_duplicates(["g", "u"])
        codes = _codes(first["k"].to_numpy(), first["g"].to_numpy(), n)
        lut = pd.Series(codes, index=pd.MultiIndex.from_arrays([first["g"], first["u"]]))
        out = lut.reindex(pd.MultiIndex.from_arrays([g, u])).to_numpy(dtype=float, copy=True)
        out[np.isnan(key)] = np.nan
        return out
    return _codes(key, g, n)


def _codes(key: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    s = pd.Series(key)
    grp = s.groupby(g)
    r = grp.rank(method="min").to_numpy()
    N = grp.transform("count").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.floor((r - 1) * n / N) + 1
    out[np.isnan(key)] = np.nan
    return out


@dataclass(frozen=True)
class DeprivationQuantiles:
    """Within-nation quantiles of an area deprivation index (1 = most deprived).

    Attributes
    ----------
    codes : pandas.Series
        Quantile per row (nullable integer).
    metadata : dict
        ``index``, ``version``, ``vintage``, ``direction``, ``n``, ``per``.
    n_missing : int
        Rows without an index value (their code is missing).
    """

    codes: pd.Series
    metadata: dict
    n_missing: int
    cutpoints: pd.DataFrame = field(repr=False)

    def tidy(self) -> pd.DataFrame:
        """One row per nation x quantile: ``nation, quantile, n, min, max`` of the index."""
        return self.cutpoints.copy()


def within_nation_quantiles(values: Sequence[float], *, nation: Sequence[Any] | None = None, n: int = 5,
                            direction: str, per: Sequence[Any] | None = None, index: str | None = None,
                            version: str | None = None, vintage: str | None = None) -> DeprivationQuantiles:
    """Quantiles of a deprivation index within each nation, 1 = most deprived.

    Parameters
    ----------
    values : sequence of float
        Index values (scores or ranks) per row.
    nation : sequence, optional
        Nation (or any grouping, e.g. nation x wave) per row; quantiles are
        formed within each. Omit when all rows come from one nation.
    n : int
        Number of groups (5 = quintiles, 10 = deciles).
    direction : {"higher_more_deprived", "lower_more_deprived"}
        Which end of ``values`` is more deprived (IMD scores: higher; IMD
        ranks: lower, rank 1 being the most deprived area).
    per : sequence, optional
        Area identifier per row; each area is ranked once, so areas with many
        respondents do not shift the cut points.
    index, version, vintage : str, optional
        Index name, release and area geography, kept as metadata.

    Returns
    -------
    DeprivationQuantiles

    Notes
    -----
    Ranks ``r = 1..N`` in deprivation order (ties share the lowest rank) map to
    ``floor((r - 1) n / N) + 1``.

    Examples
    --------
    >>> q = within_nation_quantiles([1, 2, 3, 4], n=2, direction="lower_more_deprived", index="IMD rank")
    >>> q.codes.tolist(), q.metadata["direction"]
    ([1, 1, 2, 2], 'lower_more_deprived')
    """
    if direction not in DIRECTIONS:
        raise DeprivationError(f"`direction` is '{direction}'; expected one of {', '.join(DIRECTIONS)} so that 1 means most deprived.")
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise DeprivationError(f"`n` is {n!r}; expected a whole number of at least 2 (5 for quintiles).")
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    for name, arg in (("nation", nation), ("per", per)):
        if arg is not None and len(arg) != len(x):
            raise DeprivationError(f"`{name}` has {len(arg)} values but `values` has {len(x)}; give one per row.")
    codes = quantile_codes(x, None if nation is None else np.asarray(nation, dtype=object), int(n),
                           direction == "higher_more_deprived", None if per is None else np.asarray(per, dtype=object))
    s = pd.Series(codes).astype("Int64")
    nat = pd.Series(["all"] * len(x) if nation is None else list(nation))
    cut = (pd.DataFrame({"nation": nat, "quantile": s, "value": x}).dropna(subset=["quantile"])
           .groupby(["nation", "quantile"]).agg(n=("value", "size"), min=("value", "min"), max=("value", "max")).reset_index())
    n_missing = int(np.isnan(x).sum())
    if n_missing:
        warnings.warn(f"{n_missing} row(s) have no index value; their quantile is missing.", MissingDataWarning, stacklevel=2)
    meta = {"index": index, "version": version, "vintage": vintage, "direction": direction, "n": int(n),
            "per": "area" if per is not None else "row", "coding": "1 = most deprived"}
    return DeprivationQuantiles(s, meta, n_missing, cut)


# -- census-area scores ---------------------------------------------------------------------
@dataclass(frozen=True)
class AreaScore:
    """A z-score sum over census-area indicators.

    Attributes
    ----------
    scores : pandas.Series
        The score per area (missing where any indicator is missing).
    components : pandas.DataFrame
        The z-score of each (transformed) indicator.
    reference : pandas.DataFrame
        Per indicator: ``transform, mean, sd`` used (over the reference areas).
    n_reference : int
        Areas in the reference population.
    n_missing : int
        Areas without a score because an indicator was missing.
    """

    name: str
    scores: pd.Series
    components: pd.DataFrame
    reference: pd.DataFrame
    n_reference: int
    n_missing: int

    def glance(self) -> pd.DataFrame:
        return pd.DataFrame([{"score": self.name, "n_areas": len(self.scores), "n_reference": self.n_reference,
                              "n_missing": self.n_missing, "mean": float(self.scores.mean()), "sd": float(self.scores.std())}])


def _zsum(name: str, indicators: dict[str, tuple[np.ndarray, str]], reference, weights, ddof: int) -> AreaScore:
    lengths = {k: len(v[0]) for k, v in indicators.items()}
    if len(set(lengths.values())) != 1:
        raise DeprivationError(f"{name} indicators have different lengths {lengths}; give one value per area for each.")
    n = next(iter(lengths.values()))
    ref = np.ones(n, dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    if len(ref) != n:
        raise DeprivationError(f"`reference` has {len(ref)} values but there are {n} areas; give one True/False per area.")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    comps, rows = {}, []
    for key, (raw, transform) in indicators.items():
        x = np.asarray(raw, dtype=float)
        if transform == "log(x+1)":
            if np.nanmin(x) <= -1:
                raise DeprivationError(f"`{key}` has values <= -1, which log(x+1) cannot take; give percentages (0-100).")
            x = np.log(x + 1)
        ok = ref & ~np.isnan(x) & ~np.isnan(w)
        if ok.sum() <= ddof:
            raise DeprivationError(f"`{key}` has {int(ok.sum())} reference areas with values; at least {ddof + 1} are needed.")
        ww = w[ok]
        mean = float(np.sum(ww * x[ok]) / ww.sum())
        var = float(np.sum(ww * (x[ok] - mean) ** 2) / (ww.sum() - ddof))
        sd = var ** 0.5
        if sd == 0:
            raise DeprivationError(f"`{key}` does not vary over the reference areas, so it cannot be standardised.")
        comps[key] = (x - mean) / sd
        rows.append({"indicator": key, "transform": transform, "mean": mean, "sd": sd})
    comp = pd.DataFrame(comps)
    score = comp.sum(axis=1, skipna=False)
    return AreaScore(name, score.rename(name), comp, pd.DataFrame(rows), int(ref.sum()), int(score.isna().sum()))


def townsend(unemployment, overcrowding, no_car, not_owner_occupied, *, reference=None, weights=None,
             ddof: int = 1) -> AreaScore:
    """Townsend material deprivation score of census areas.

    Parameters
    ----------
    unemployment : array-like
        Percentage of economically active residents who are unemployed.
    overcrowding : array-like
        Percentage of households with more than one person per room.
    no_car : array-like
        Percentage of households without a car or van.
    not_owner_occupied : array-like
        Percentage of households not owner-occupied.
    reference : array-like of bool, optional
        Areas forming the reference population for the means and standard
        deviations (default: all areas given). State it when reporting.
    weights : array-like, optional
        Area weights (e.g. population) for the reference means and SDs;
        unweighted by default, as in Townsend's definition.
    ddof : int
        Delta degrees of freedom of the SD (1 = sample SD, as R's ``scale``).

    Returns
    -------
    AreaScore
        Higher scores mean more deprivation.

    Notes
    -----
    ``T = z(log(u + 1)) + z(log(o + 1)) + z(c) + z(h)`` with ``z(x) = (x - mean) / sd``
    over the reference areas (Townsend, Phillimore & Beattie 1988).

    Examples
    --------
    >>> t = townsend([5, 10, 15], [1, 3, 5], [20, 30, 40], [30, 40, 50])
    >>> round(float(t.scores.iloc[2]), 3)
    3.815
    """
    return _zsum("townsend", {"unemployment": (unemployment, "log(x+1)"), "overcrowding": (overcrowding, "log(x+1)"),
                              "no_car": (no_car, "none"), "not_owner_occupied": (not_owner_occupied, "none")},
                 reference, weights, ddof)


def carstairs(overcrowding, male_unemployment, no_car, low_social_class, *, reference=None, weights=None,
              ddof: int = 1) -> AreaScore:
    """Carstairs deprivation score of census areas.

    Parameters
    ----------
    overcrowding : array-like
        Percentage of people in households with more than one person per room.
    male_unemployment : array-like
        Percentage of economically active men who are unemployed.
    no_car : array-like
        Percentage of people in households without a car.
    low_social_class : array-like
        Percentage of people in households headed by social class IV or V.
    reference, weights, ddof
        As in :func:`townsend`.

    Notes
    -----
    ``C = z(o) + z(m) + z(c) + z(s)`` without transformation (Carstairs & Morris 1991).

    Examples
    --------
    >>> c = carstairs([1, 2, 3], [5, 10, 15], [20, 30, 40], [10, 20, 30])
    >>> c.scores.round(6).tolist()
    [-4.0, 0.0, 4.0]
    """
    return _zsum("carstairs", {"overcrowding": (overcrowding, "none"), "male_unemployment": (male_unemployment, "none"),
                               "no_car": (no_car, "none"), "low_social_class": (low_social_class, "none")},
                 reference, weights, ddof)


# -- individual socio-economic position --------------------------------------------------------
def oecd_modified_scale(n_adults, n_children) -> np.ndarray:
    """OECD-modified equivalence scale: 1 + 0.5 per extra person aged 14+ + 0.3 per child under 14.

    Examples
    --------
    >>> oecd_modified_scale([1, 2, 2], [0, 0, 2]).tolist()
    [1.0, 1.5, 2.1]
    """
    a = np.asarray(n_adults, dtype=float)
    c = np.asarray(n_children, dtype=float)
    out = 1.0 + 0.5 * (a - 1) + 0.3 * c
    bad = (a < 1) | (c < 0) | (a != np.floor(a)) | (c != np.floor(c))
    out[bad] = np.nan
    return out


def equivalised_income(household_income, n_adults, n_children) -> pd.Series:
    """Household income divided by the OECD-modified equivalence scale.

    Parameters
    ----------
    household_income : array-like
        Household income (any currency and period; the result keeps them).
    n_adults : array-like
        Household members aged 14 and over, the respondent included (>= 1).
    n_children : array-like
        Household members under 14.

    Returns
    -------
    pandas.Series
        Missing where any input is missing or household sizes are impossible
        (fewer than one adult, negative or fractional counts); a
        :class:`~cimstats.errors.MissingDataWarning` gives the count.

    Examples
    --------
    >>> equivalised_income([30000, 42000], [2, 2], [0, 2]).tolist()
    [20000.0, 20000.0]
    """
    inc = np.asarray(household_income, dtype=float)
    scale = oecd_modified_scale(n_adults, n_children)
    if not len(inc) == len(scale):
        raise DeprivationError(f"`household_income` has {len(inc)} values and household sizes {len(scale)}; give one per household.")
    bad = int((np.isnan(scale) & ~np.isnan(np.asarray(n_adults, dtype=float))).sum())
    if bad:
        warnings.warn(f"{bad} household(s) have impossible sizes (fewer than one adult, negative or fractional counts); "
                      "their equivalised income is missing.", MissingDataWarning, stacklevel=2)
    return pd.Series(inc / scale, name="income_equiv")


ISCED_2011 = {0: "Early childhood education", 1: "Primary education", 2: "Lower secondary education",
              3: "Upper secondary education", 4: "Post-secondary non-tertiary education",
              5: "Short-cycle tertiary education", 6: "Bachelor's or equivalent", 7: "Master's or equivalent",
              8: "Doctoral or equivalent"}
ISCED_BROAD = {1: "Low (ISCED 0-2)", 2: "Medium (ISCED 3-4)", 3: "High (ISCED 5-8)"}


def isced_broad(levels) -> pd.Series:
    """Collapse ISCED 2011 levels 0-8 into low (1), medium (2) and high (3) education.

    Values outside 0-8 become missing, with a :class:`MissingDataWarning` giving the count.

    Examples
    --------
    >>> isced_broad([0, 2, 3, 4, 5, 8]).tolist()
    [1, 1, 2, 2, 3, 3]
    """
    x = pd.to_numeric(pd.Series(levels), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isnan(x) & ~np.isin(x, np.arange(9))
    if bad.any():
        warnings.warn(f"{int(bad.sum())} value(s) are not ISCED 2011 levels 0-8; they become missing.", MissingDataWarning, stacklevel=2)
    out = np.select([x <= 2, x <= 4, x <= 8], [1, 2, 3], default=0).astype(float)
    out[np.isnan(x) | bad] = np.nan
    return pd.Series(out, name="education_isced_broad").astype("Int64")


def financial_strain(responses, *, strained=(4, 5), valid=(1, 2, 3, 4, 5)) -> pd.Series:
    """Financial strain indicator (1 = strained) from a subjective financial situation item.

    The default follows the 5-point item "How well would you say you are
    managing financially these days?" (1 living comfortably, 2 doing alright,
    3 just about getting by, 4 finding it quite difficult, 5 finding it very
    difficult), with 4-5 counted as strain.

    Examples
    --------
    >>> financial_strain([1, 3, 4, 5]).tolist()
    [0, 0, 1, 1]
    """
    x = pd.to_numeric(pd.Series(responses), errors="coerce")
    bad = x.notna() & ~x.isin(valid)
    if bad.any():
        warnings.warn(f"{int(bad.sum())} response(s) are not among the valid codes {list(valid)}; they become missing.",
                      MissingDataWarning, stacklevel=2)
    out = x.isin(strained).astype("Int64")
    out[x.isna() | bad] = pd.NA
    return out.rename("financial_strain")
