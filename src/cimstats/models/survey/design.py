"""Survey designs: sampling weights, strata, clusters (one or more stages) and finite-population corrections.

A :class:`SurveyDesign` names the columns that describe how the sample was
drawn; it holds no data. When an estimate is asked for, the design is checked
against the data and turned into a :class:`BoundDesign`: integer codes for the
strata and the sampling units of each stage, the number of units sampled in
each stratum, the population sizes, and the sampling weights. The numeric
kernel (:mod:`cimstats.models.survey.linearise`) takes only those arrays.

The conventions are those of R's ``survey`` package (``svydesign``):

* ``cluster`` lists the sampling units stage by stage (``["district",
  "school"]``); without it every row is its own primary sampling unit (PSU).
  Units of a later stage are always read within the unit of the stage before
  (school 3 of district 1 differs from school 3 of district 2).
* ``strata`` names the first-stage strata. Without ``nest=True`` a PSU
  identifier must not appear in two strata (the design is then refused, as
  ``svydesign`` does); ``nest=True`` reads PSU identifiers within strata
  (PSU 1 of stratum 1 differs from PSU 1 of stratum 2, as in NHANES).
* ``fpc`` gives, per stage, either the population size (all values >= 1) or
  the sampling fraction (all values <= 1). Without ``weights`` the weights
  are the inverse sampling fractions implied by ``fpc``; with neither, every
  row has weight 1.
* ``lonely_psu`` says what a stratum with a single PSU contributes to the
  variance, as ``options(survey.lonely.psu=)``: ``"fail"`` (an error naming
  the stratum), ``"remove"`` and ``"certainty"`` (nothing), ``"adjust"`` (the
  PSU's deviation from zero rather than from its stratum mean) and
  ``"average"`` (the average variance of the other strata).

Examples
--------
>>> import pandas as pd
>>> from cimstats.models.survey.design import SurveyDesign
>>> d = pd.DataFrame({"w": [2.0, 2, 3, 3], "h": [1, 1, 2, 2], "psu": [1, 2, 3, 4]})
>>> b = SurveyDesign(weights="w", strata="h", cluster="psu").bind(d)
>>> b.n_strata, b.n_psu, b.degrees_of_freedom()
(2, 4, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ...errors import ModelSpecificationError
from cimstats.render.notebook import notebook_html

__all__ = ["SurveyDesign", "BoundDesign", "SurveyDesignError", "LONELY_PSU_RULES"]

#: what a stratum with one sampled PSU contributes to a variance (R: options(survey.lonely.psu=))
LONELY_PSU_RULES = ("fail", "adjust", "average", "certainty", "remove")


class SurveyDesignError(ModelSpecificationError):
    """A survey design does not fit the data (missing or negative weights, crossing clusters, lonely PSUs...)."""


def _names(value, arg: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SurveyDesignError(
        f"`{arg}=` is {value!r}; expected a column name or a list of column names (one per sampling stage).")


@dataclass(frozen=True)
class SurveyDesign:
    """How a survey sample was drawn: weights, strata, clusters and finite-population corrections.

    Parameters
    ----------
    weights : str, optional
        Column of sampling weights (the number of population members each
        respondent stands for). Zero weights are allowed (the row then counts
        for nothing); missing, negative or non-numeric weights are refused.
    strata : str, optional
        Column of first-stage strata.
    cluster : str or list of str, optional
        Column of primary sampling units, or one column per stage for a
        multistage design (``["district", "school"]``). Without it every row
        is its own PSU.
    fpc : str or list of str, optional
        Finite-population correction per stage: the population size of the
        stratum (values >= 1) or the sampling fraction (values <= 1). The
        value must be the same for every row of a stratum.
    nest : bool
        ``True`` reads PSU identifiers within strata (identifiers reused
        across strata, as in NHANES); ``False`` (default) requires every PSU
        to lie in one stratum.
    lonely_psu : {"fail", "adjust", "average", "certainty", "remove"}
        What a stratum with a single PSU contributes to the variance (as R's
        ``options(survey.lonely.psu=)``); see the module notes.

    Notes
    -----
    The R equivalent is ``svydesign(ids = ~cluster, strata = ~strata,
    weights = ~weights, fpc = ~fpc, nest = nest)``. Variances are computed by
    Taylor linearisation with the between-PSU (ultimate cluster) estimator at
    the first stage; later stages add their own term only when ``fpc`` is
    given for them, as in ``survey``.

    Validated against: survey::svydesign, svymean, svyglm
    (tests/reference/survey.R).

    Examples
    --------
    >>> import cimstats
    >>> cimstats.SurveyDesign(weights="pw", strata="stype", fpc="fpc")
    SurveyDesign(weights='pw', strata='stype', cluster=None, fpc='fpc', nest=False, lonely_psu='fail')
    """

    weights: str | None = None
    strata: str | None = None
    cluster: str | Sequence[str] | None = None
    fpc: str | Sequence[str] | None = None
    nest: bool = False
    lonely_psu: str = "fail"

    def __post_init__(self):
        for arg in ("weights", "strata"):
            v = getattr(self, arg)
            if v is not None and not isinstance(v, str):
                raise SurveyDesignError(f"`{arg}=` is {v!r}; expected the name of one column of the data.")
        cl = _names(self.cluster, "cluster")
        fp = _names(self.fpc, "fpc")
        if isinstance(self.cluster, list):
            object.__setattr__(self, "cluster", tuple(self.cluster))
        if isinstance(self.fpc, list):
            object.__setattr__(self, "fpc", tuple(self.fpc))
        if fp and len(fp) != max(len(cl), 1):
            raise SurveyDesignError(
                f"`fpc=` names {len(fp)} column(s) for a design with {max(len(cl), 1)} sampling stage(s); "
                f"expected one finite-population correction per stage, so give one per `cluster=` column.")
        if not isinstance(self.nest, (bool, np.bool_)):
            raise SurveyDesignError(f"`nest=` is {self.nest!r}; expected True or False.")
        if self.lonely_psu not in LONELY_PSU_RULES:
            raise SurveyDesignError(
                f"`lonely_psu=` is {self.lonely_psu!r}; expected one of {', '.join(map(repr, LONELY_PSU_RULES))}.")

    @property
    def cluster_columns(self) -> tuple:
        return _names(self.cluster, "cluster")

    @property
    def fpc_columns(self) -> tuple:
        return _names(self.fpc, "fpc")

    @property
    def columns(self) -> tuple:
        """Every data column the design uses."""
        out = []
        for c in ((self.weights,) if self.weights else ()) + ((self.strata,) if self.strata else ()) \
                + self.cluster_columns + self.fpc_columns:
            if c not in out:
                out.append(c)
        return tuple(out)

    def _repr_html_(self) -> str:
        return notebook_html("Survey design", lines=[self.describe()])

    def describe(self) -> str:
        """The design in words (for summaries)."""
        parts = []
        cl = self.cluster_columns
        if self.strata:
            parts.append(f"strata {self.strata}" + (" (PSUs nested)" if self.nest else ""))
        if cl:
            parts.append("clusters " + " > ".join(cl))
        else:
            parts.append("no clusters")
        parts.append(f"weights {self.weights}" if self.weights else
                     ("weights from fpc" if self.fpc else "equal weights"))
        if self.fpc:
            parts.append("fpc " + " > ".join(self.fpc_columns))
        if self.strata:
            parts.append(f"lonely PSUs: {self.lonely_psu}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"weights": self.weights, "strata": self.strata,
                "cluster": list(self.cluster_columns) or None, "fpc": list(self.fpc_columns) or None,
                "nest": bool(self.nest), "lonely_psu": self.lonely_psu}

    @classmethod
    def from_dict(cls, d) -> "SurveyDesign":
        cl, fp = d.get("cluster"), d.get("fpc")
        return cls(weights=d.get("weights"), strata=d.get("strata"),
                   cluster=None if not cl else (cl[0] if len(cl) == 1 else tuple(cl)),
                   fpc=None if not fp else (fp[0] if len(fp) == 1 else tuple(fp)),
                   nest=bool(d.get("nest", False)), lonely_psu=d.get("lonely_psu", "fail"))

    # ------------------------------------------------------------------ binding
    def bind(self, data: pd.DataFrame) -> "BoundDesign":
        """Check the design against ``data`` and return its arrays.

        Raises
        ------
        SurveyDesignError
            For a design column that is absent, has missing values or (weights,
            fpc) non-numeric, negative or infinite values; all-zero weights; a
            PSU that lies in two strata when ``nest=False``; a single PSU in the
            whole design; an ``fpc`` that mixes population sizes and fractions,
            varies within a stratum or is smaller than the sample.
        """
        if not isinstance(data, pd.DataFrame):
            raise SurveyDesignError(
                f"`data` is a {type(data).__name__}; expected a pandas DataFrame with one row per respondent.")
        n = len(data)
        for c in self.columns:
            if c not in data.columns:
                raise SurveyDesignError(
                    f"The design names column {c!r}, which is not a column of `data`; check the spelling "
                    f"(columns include {', '.join(map(repr, list(data.columns)[:8]))}).")
            if isinstance(data[c], pd.DataFrame):
                raise SurveyDesignError(
                    f"The design column {c!r} appears more than once in `data`; rename the duplicates.")
        if n == 0:
            raise SurveyDesignError("`data` has no rows; a survey design needs the sampled respondents.")
        # ids per stage ---------------------------------------------------------------
        cl = self.cluster_columns
        raw_ids = [_codes(data[c], c, "cluster")[0] for c in cl] if cl else [np.arange(n)]
        nstage = len(raw_ids)
        if self.strata:
            strata0, strata_values = _codes(data[self.strata], self.strata, "strata")
        else:
            strata0, strata_values = np.zeros(n, dtype=np.int64), np.array(["(whole sample)"], dtype=object)
        # stage i ids are read within the ids of stages 1..i-1 (and within strata when nested)
        ids = []
        prev = strata0 if (self.nest and self.strata) else None
        for i, r in enumerate(raw_ids):
            if i == 0:
                cur = r if prev is None else _combine(prev, r)
            else:
                cur = _combine(ids[-1], r)
            ids.append(cur)
        if self.strata and not self.nest:
            per = pd.DataFrame({"psu": ids[0], "h": strata0}).drop_duplicates()
            dup = per["psu"].duplicated(keep=False)
            if dup.any():  # only possible with clusters: without them every row is its own PSU
                first_row = int(np.flatnonzero(ids[0] == per.loc[dup, "psu"].iloc[0])[0])
                bad = data[cl[0]].iloc[first_row]
                raise SurveyDesignError(
                    f"The cluster column {cl[0]!r} has PSU {bad!r} in more than one stratum of {self.strata!r}; "
                    f"expected each PSU within one stratum, so pass nest=True if PSU numbers restart in each "
                    f"stratum, or check the columns.")
        if len(np.unique(ids[0])) == 1 and not (self.nest and self.strata):
            what = f"the cluster column {cl[0]!r} has" if cl else "`data` has"
            raise SurveyDesignError(
                f"The design has a single primary sampling unit ({what} one value); expected at least two PSUs, "
                f"so check `cluster=` or leave it out for a design without clusters.")
        # strata per stage: stage i>1 strata are the units of stage i-1
        stratas = [strata0] + [ids[i - 1] for i in range(1, nstage)]
        sampsize = [_count_per_group(ids[i], stratas[i]) for i in range(nstage)]
        # fpc ----------------------------------------------------------------------------
        popsize = None
        fcols = self.fpc_columns
        if fcols:
            vals = np.column_stack([_numeric(data[c], c, "fpc") for c in fcols])
            if (vals <= 0).any():
                c = fcols[int(np.argwhere(vals <= 0)[0, 1])]
                raise SurveyDesignError(
                    f"The fpc column {c!r} has zero or negative values; expected population sizes (>= 1) or "
                    f"sampling fractions (between 0 and 1).")
            is_size = bool((vals > 1).any())
            if is_size and not (vals >= 1).all():
                raise SurveyDesignError(
                    f"The fpc column(s) {', '.join(map(repr, fcols))} mix population sizes (> 1) and sampling "
                    f"fractions (< 1); expected all values >= 1 (sizes) or all <= 1 (fractions), so use one kind.")
            popsize = []
            for i, c in enumerate(fcols):
                pop = vals[:, i] if is_size else sampsize[i] / vals[:, i]
                varies = pd.Series(pop).groupby(stratas[i]).nunique()
                if (varies > 1).any():
                    where = "stratum" if i == 0 else f"unit of stage {i}"
                    raise SurveyDesignError(
                        f"The fpc column {c!r} takes different values within one {where}; expected one population "
                        f"size per stratum, so check the column.")
                if (pop < sampsize[i] - 1e-8 * sampsize[i]).any():
                    j = int(np.flatnonzero(pop < sampsize[i] - 1e-8 * sampsize[i])[0])
                    raise SurveyDesignError(
                        f"The fpc column {c!r} implies a population of {pop[j]:g} in row {j} where {int(sampsize[i][j])} "
                        f"units were sampled (more than 100% sampling); expected population sizes or sampling "
                        f"fractions, so check the column.")
                popsize.append(np.asarray(pop, dtype=float))
        # weights -------------------------------------------------------------------------
        if self.weights:
            w = _numeric(data[self.weights], self.weights, "weights")
            if (w < 0).any():
                j = int(np.flatnonzero(w < 0)[0])
                raise SurveyDesignError(
                    f"The weights column {self.weights!r} has {int((w < 0).sum())} negative value(s) (first in row "
                    f"{data.index[j]!r}); expected sampling weights >= 0, so check the column.")
            if not (w > 0).any():
                raise SurveyDesignError(
                    f"The weights column {self.weights!r} is zero in every row; expected positive sampling weights.")
        elif popsize is not None:
            w = np.ones(n)
            for i in range(nstage):
                w = w * popsize[i] / sampsize[i]
        else:
            w = np.ones(n)
        labels = [strata_values]
        for k in range(1, nstage):
            first = pd.Series(np.arange(n)).groupby(ids[k - 1]).first().to_numpy()
            labels.append(data[cl[k - 1]].to_numpy()[first])
        return BoundDesign(spec=self, n=n, weights=np.asarray(w, dtype=float), ids=tuple(ids),
                           strata=tuple(stratas), sampsize=tuple(np.asarray(s, dtype=float) for s in sampsize),
                           popsize=None if popsize is None else tuple(popsize), lonely_psu=self.lonely_psu,
                           labels=tuple(labels))


@dataclass(frozen=True)
class BoundDesign:
    """A design checked against data: integer codes and sizes per row and stage (numbers only).

    ``ids[k]`` are the sampling units of stage ``k`` (unique over the whole
    sample), ``strata[k]`` the strata they were drawn in (at stage ``k > 0``
    the unit of stage ``k - 1``), ``sampsize[k]`` the number of units drawn in
    the row's stratum and ``popsize[k]`` the number in the population (``None``
    without an fpc).
    """

    spec: SurveyDesign
    n: int
    weights: np.ndarray = field(repr=False)
    ids: tuple = field(repr=False)
    strata: tuple = field(repr=False)
    sampsize: tuple = field(repr=False)
    popsize: tuple | None = field(repr=False)
    lonely_psu: str = "fail"
    labels: tuple = field(default=(), repr=False)

    def stratum_label(self, stage: int, code) -> str:
        """Words naming stratum ``code`` of ``stage`` (0-based) in error messages."""
        value = self.labels[stage][int(code)] if stage < len(self.labels) else code
        if stage == 0:
            return f"Stratum {value!r} of {self.spec.strata!r}" if self.spec.strata else "The whole sample"
        return f"The unit {value!r} of {self.spec.cluster_columns[stage - 1]!r}"

    @property
    def n_strata(self) -> int:
        return int(len(np.unique(self.strata[0])))

    @property
    def n_psu(self) -> int:
        return int(len(np.unique(self.ids[0])))

    def degrees_of_freedom(self, rows: np.ndarray | None = None) -> int:
        """Design degrees of freedom: PSUs minus strata among the rows used with non-zero weight (R's ``degf``)."""
        inset = self.weights != 0
        if rows is not None:
            inset = inset & rows
        return int(len(np.unique(self.ids[0][inset])) - len(np.unique(self.strata[0][inset])))


# ---------------------------------------------------------------------------- helpers
def _codes(s: pd.Series, name: str, role: str) -> np.ndarray:
    miss = s.isna().to_numpy()
    if miss.any():
        j = int(np.flatnonzero(miss)[0])
        raise SurveyDesignError(
            f"The {role} column {name!r} has {int(miss.sum())} missing value(s) (first in row {s.index[j]!r}); "
            f"expected every respondent to have a {role} identifier, so fill them in or drop those rows first.")
    codes, uniques = pd.factorize(s, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _numeric(s: pd.Series, name: str, role: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
        raise SurveyDesignError(
            f"The {role} column {name!r} holds {s.dtype} values, not numbers; expected numeric {role}, so convert "
            f"the column with pd.to_numeric first.")
    v = s.to_numpy(dtype=float, na_value=np.nan)
    miss = np.isnan(v)
    if miss.any():
        j = int(np.flatnonzero(miss)[0])
        raise SurveyDesignError(
            f"The {role} column {name!r} has {int(miss.sum())} missing value(s) (first in row {s.index[j]!r}); "
            f"expected a value for every respondent, so fill them in or drop those rows before the analysis.")
    if not np.isfinite(v).all():
        raise SurveyDesignError(f"The {role} column {name!r} has infinite values; expected finite numbers.")
    return v


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Codes of the observed (a, b) pairs."""
    key = a.astype(np.int64) * (int(b.max()) + 1) + b.astype(np.int64)
    codes, _ = pd.factorize(key, sort=True)
    return codes.astype(np.int64)


def _count_per_group(ids: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each row, the number of distinct ``ids`` in its group."""
    pairs = pd.DataFrame({"g": groups, "i": ids}).drop_duplicates()
    counts = pairs.groupby("g")["i"].size()
    return counts.reindex(groups).to_numpy(dtype=float)
