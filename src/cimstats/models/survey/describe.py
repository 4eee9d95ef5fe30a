"""``describe``: design-based means, proportions, totals and quantiles in one tidy table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...errors import ModelSpecificationError
from ...render.spec import TableSpec
from .._result import dropped_frame
from .design import SurveyDesign, SurveyDesignError
from .linearise import quantile_woodruff, t_quantile, weighted_mean, weighted_total
from cimstats.render.text_formats import to_html
from cimstats.render.text_formats import to_text

__all__ = ["describe", "SurveyDescription", "STATISTICS"]

#: the statistics describe() can give
STATISTICS = ("mean", "total", "quantile")
TABLE_COLUMNS = ("variable", "level", "statistic", "quantile", "estimate", "std_error", "ci_lower", "ci_upper",
                 "df", "n", "n_missing")


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) \
        or isinstance(s.dtype, pd.CategoricalDtype)


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    vals = pd.unique(s.dropna())
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _quantile_label(p: float) -> str:
    if p == 0.5:
        return "median"
    pct = 100 * p
    pct_text = f"{pct:g}"
    last = int(round(pct)) % 100 if float(pct).is_integer() else None
    suffix = "th"
    if last is not None and last not in (11, 12, 13):
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(last % 10, "th")
    return f"{pct_text}{suffix} percentile"


@dataclass(frozen=True, eq=False)
class SurveyDescription:
    """What :func:`describe` returns: the tidy table and its publication form.

    ``table`` (also ``tidy()``) has one row per group, variable, level and
    statistic; ``to_table_spec()`` lays it out for a report; ``dropped``
    counts rows set aside because a ``by`` column was missing.
    """

    table: pd.DataFrame = field(repr=False)
    by: tuple = ()
    design_text: str = ""
    level: float = 0.95
    dropped: pd.DataFrame = field(default_factory=lambda: dropped_frame({}), repr=False)

    def tidy(self) -> pd.DataFrame:
        """The table (a copy): by columns, then variable, level, statistic, quantile, estimate, std_error,
        ci_lower, ci_upper, df, n, n_missing."""
        return self.table.copy()

    def to_table_spec(self, *, title: str | None = None, **kw) -> TableSpec:
        """A publication table: one row per statistic, grouped by the ``by`` groups."""
        t = self.table
        stat_text = []
        for _, r in t.iterrows():
            if r["statistic"] == "quantile":
                s = _quantile_label(float(r["quantile"]))
            elif r["statistic"] == "proportion":
                s = f"proportion: {r['level']}"
            elif r["statistic"] == "total" and r["level"] is not None and not pd.isna(r["level"]):
                s = f"total: {r['level']}"
            else:
                s = str(r["statistic"])
            stat_text.append(s)
        pct = f"{100 * self.level:g}%"
        frame = pd.DataFrame({"Variable": t["variable"].astype(object).to_numpy(), "Statistic": stat_text,
                              "Estimate": t["estimate"].to_numpy(), "SE": t["std_error"].to_numpy(),
                              f"{pct} CI lower": t["ci_lower"].to_numpy(), f"{pct} CI upper": t["ci_upper"].to_numpy(),
                              "n": t["n"].to_numpy()})
        group = None
        if self.by:
            frame.insert(0, "_group", [", ".join(f"{b} = {r[b]}" for b in self.by) for _, r in t.iterrows()])
            group = "_group"
        notes = (f"Design: {self.design_text}. Standard errors by Taylor linearisation; intervals for means, "
                 f"proportions and totals are Wald intervals, for quantiles Woodruff intervals with the design's "
                 f"degrees of freedom; n is the number of respondents with a value.",)
        return TableSpec.from_frame(frame, title=title or "Survey estimates", group_by=group,
                                    kinds={"n": "count", "Estimate": "estimate"}, notes=notes, **kw)

    def __repr__(self) -> str:

        return to_text(self.to_table_spec())

    def _repr_html_(self) -> str:

        return to_html(self.to_table_spec(), standalone=False)


def describe(data: pd.DataFrame, variables, by=None, design: SurveyDesign | None = None, *,
             statistics=STATISTICS, quantiles=(0.25, 0.5, 0.75), level: float = 0.95) -> SurveyDescription:
    """Weighted means, proportions, totals and quantiles with design-based standard errors.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    variables : str or list of str
        Columns to describe. Numeric columns get means, totals and quantiles;
        categorical columns (text, categorical, boolean) get the proportion and
        total of each level.
    by : str or list of str, optional
        Columns defining subgroups (domains); estimates are given per group,
        with the whole design kept for the standard errors (as ``svyby``).
    design : SurveyDesign, optional
        The sampling design; without one, the rows are a simple random sample
        (equal weights, no clusters, no fpc).
    statistics : sequence of {"mean", "total", "quantile"}
        Which statistics to give ("mean" gives proportions for categorical columns).
    quantiles : sequence of float
        Quantile probabilities (between 0 and 1).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    SurveyDescription
        ``.table`` / ``.tidy()`` columns: the ``by`` columns, variable, level
        (the category, None for numeric variables), statistic ("mean",
        "proportion", "total", "quantile"), quantile (its probability), estimate,
        std_error, ci_lower, ci_upper, df (inf for Wald intervals, the design's
        degrees of freedom for quantiles), n (respondents with a value), n_missing;
        ``.to_table_spec()`` gives the publication table.

    Raises
    ------
    ModelSpecificationError
        For an unknown column, statistic or quantile.
    SurveyDesignError
        When the design does not fit the data (see :class:`SurveyDesign`).

    Notes
    -----
    Missing values of a variable are left out of that variable's estimates
    (``na.rm = TRUE`` in ``survey``) and counted in ``n_missing``; the design
    keeps its PSU counts, so a PSU without observed values counts as a zero
    total. Means and proportions are ratio estimators linearised as in
    ``svymean``; totals as ``svytotal``; intervals for both are Wald intervals
    with the normal critical value (``confint`` of ``survey``). Quantiles use
    ``svyquantile``'s defaults: the smallest value whose cumulative weight share
    reaches p, with Woodruff's interval (the design-based interval for the
    proportion below the quantile, mapped back through the quantile rule) on
    the design's degrees of freedom, and standard error = interval width /
    (2 x critical value).

    Validated against: survey::svymean, svytotal and svyquantile
    (tests/reference/survey.R).

    Examples
    --------
    >>> import pandas as pd, cimstats
    >>> d = pd.DataFrame({"age": [30., 40, 50, 60, 70, 80], "sex": list("fmfmfm"),
    ...                   "w": [1., 2, 1, 2, 1, 2], "psu": [1, 1, 2, 2, 3, 3]})
    >>> out = cimstats.describe(d, ["age", "sex"], design=cimstats.SurveyDesign(weights="w", cluster="psu"),
    ...                         statistics=("mean",))
    >>> out.table[["variable", "level", "statistic", "estimate"]]
      variable level   statistic   estimate
    0      age  None        mean  56.666667
    1      sex     f  proportion   0.333333
    2      sex     m  proportion   0.666667
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError(
            f"`data` is a {type(data).__name__}; expected a pandas DataFrame with one row per respondent.")
    variables = [variables] if isinstance(variables, str) else list(variables)
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    for c in variables + by_cols:
        if not isinstance(c, str) or c not in data.columns:
            raise ModelSpecificationError(
                f"`describe` was given {c!r}, which is not a column of `data`; check the spelling.")
    if not variables:
        raise ModelSpecificationError("`variables=` is empty; expected at least one column to describe.")
    stats_wanted = [statistics] if isinstance(statistics, str) else list(statistics)
    bad = [s for s in stats_wanted if s not in STATISTICS]
    if bad or not stats_wanted:
        raise ModelSpecificationError(
            f"`statistics=` has {bad or stats_wanted!r}; expected some of {', '.join(map(repr, STATISTICS))}.")
    qs = [float(q) for q in np.atleast_1d(quantiles)]
    if any(not 0 < q < 1 for q in qs):
        raise ModelSpecificationError(f"`quantiles=` is {list(quantiles)!r}; expected probabilities between 0 and 1.")
    if not 0 < level < 1:
        raise ModelSpecificationError(f"`level` is {level!r}; expected a number between 0 and 1, such as 0.95.")
    if design is not None and not isinstance(design, SurveyDesign):
        raise SurveyDesignError(
            f"`design=` is a {type(design).__name__}; expected a cimstats.SurveyDesign(weights=..., strata=..., "
            f"cluster=...).")
    spec = design if design is not None else SurveyDesign()
    bound = spec.bind(data)
    n = len(data)
    # domains ---------------------------------------------------------------------------
    dropped = {}
    if by_cols:
        miss = np.zeros(n, dtype=bool)
        for b in by_cols:
            m = data[b].isna().to_numpy()
            if m.any():
                dropped[b] = int(m.sum())
            miss |= m
        keys = data.loc[~miss, by_cols].drop_duplicates()
        try:
            keys = keys.sort_values(by_cols)
        except TypeError:
            keys = keys.astype(str).sort_values(by_cols)
        domains = []
        for _, k in keys.iterrows():
            mask = ~miss
            for b in by_cols:
                mask = mask & (data[b] == k[b]).to_numpy()
            domains.append(({b: k[b] for b in by_cols}, mask))
    else:
        domains = [({}, np.ones(n, dtype=bool))]
    crit = t_quantile(level, np.inf)
    rows = []
    for labels, dom in domains:
        for v in variables:
            s = data[v]
            present = ~s.isna().to_numpy()
            use = dom & present
            n_use, n_miss = int(use.sum()), int((dom & ~present).sum())
            base = dict(labels, variable=v, n=n_use, n_missing=n_miss)
            if _is_categorical(s):
                levels = _levels(s)
                Y = np.column_stack([(s == lev).to_numpy(dtype=float) for lev in levels]) if levels else np.zeros((n, 0))
                pieces = [("mean", "proportion", weighted_mean), ("total", "total", weighted_total)]
                for key, name, fn in pieces:
                    if key not in stats_wanted or not levels:
                        continue
                    est, V = fn(Y, bound, use) if n_use else (np.full(len(levels), np.nan), np.full((len(levels),) * 2, np.nan))
                    se = np.sqrt(np.diag(V))
                    for j, lev in enumerate(levels):
                        rows.append(dict(base, level=lev, statistic=name, quantile=np.nan, estimate=est[j],
                                         std_error=se[j], ci_lower=est[j] - crit * se[j],
                                         ci_upper=est[j] + crit * se[j], df=np.inf))
                continue
            y = s.to_numpy(dtype=float, na_value=np.nan)
            for key, fn in (("mean", weighted_mean), ("total", weighted_total)):
                if key not in stats_wanted:
                    continue
                if n_use:
                    est, V = fn(y, bound, use)
                    e, se = float(est[0]), float(np.sqrt(V[0, 0]))
                else:
                    e = se = np.nan
                rows.append(dict(base, level=None, statistic=key, quantile=np.nan, estimate=e, std_error=se,
                                 ci_lower=e - crit * se, ci_upper=e + crit * se, df=np.inf))
            if "quantile" in stats_wanted:
                for p in qs:
                    if n_use:
                        q, se, lo, hi, df = quantile_woodruff(y, bound, use, p, level)
                    else:
                        q = se = lo = hi = df = np.nan
                    rows.append(dict(base, level=None, statistic="quantile", quantile=p, estimate=q, std_error=se,
                                     ci_lower=lo, ci_upper=hi, df=float(df)))
    cols = by_cols + list(TABLE_COLUMNS)
    table = pd.DataFrame(rows, columns=cols)
    table["level"] = table["level"].astype(object).where(table["level"].notna(), None)
    for c in ("n", "n_missing"):
        table[c] = table[c].astype("int64")
    return SurveyDescription(table=table, by=tuple(by_cols), design_text=spec.describe(), level=level,
                             dropped=dropped_frame(dropped))
