"""The construct table: every derived measure of a study declared once, in one schema, and computed once.

A *construct* is a variable built from the harmonised data: a scale score, an
ego-network measure, a network-change measure or a change score between two
waves. The construct table lists each construct once with its name, its kind,
what it is built from and the function that computes it:

==================  ==========================  ======  ==================================================
kind                definition                  level   computed by
==================  ==========================  ======  ==================================================
``scale``           ``instrument``, ``score``   ego     :func:`cimstats.score_scale` (one score of an
                    (``items`` optional)                instrument; items mapped by ``items``)
``network``         ``measure``                 ego     :func:`cimstats.networks.ego_measures` (one column)
``change``          ``measure``                 change  :func:`cimstats.networks.change` (a column of ``.egos``)
``wave_difference`` ``of``                      change  follow-up minus baseline of another ego-level variable
``cluster_mean``    ``of``, ``by``              ego     mean of another ego-level variable over the rows
                                                        of the same cluster (``by``, e.g. school) and wave
``national_         ``of``, ``by``, ``n``,      ego     within-nation quantile (1 = most deprived) of an
quantile``          ``direction``                       individual or area measure, formed within each
                                                        ``by`` group (country) and wave
                                                        (:func:`cimstats.dictionary.deprivation.
                                                        within_nation_quantiles`)
``education_group`` ``of``                      ego     broad education group of ISCED 2011 levels:
                                                        ``low`` (0-2), ``medium`` (3-4), ``high`` (5-8)
                                                        (:func:`cimstats.dictionary.deprivation.
                                                        isced_broad`); a categorical covariate
==================  ==========================  ======  ==================================================

An area code or a national index is not a linear term shared across
countries: national indices differ in domains, weights and area units, so
the comparable quantity is the position within the nation
(``national_quantile``). The same holds for income in euros, whose meaning
differs between countries: ``{kind: national_quantile, of: income_equiv,
by: country, n: 5, direction: lower_more_deprived}`` gives national income
quintiles with 1 = the lowest fifth.

Both plans name constructs from this one table: the analysis plan's
``instruments:`` section is shorthand for one ``scale`` construct per score
(named by the score id), its ``networks:`` section for one ``network``
construct per measure column, and its ``constructs:`` section, like the
mechanism plan's, declares named constructs in the schema above. Two names
with the same definition (``sm`` and ``self_monitoring_insight``, say) are the
same construct and are computed once; one name with two definitions is an
error.

:class:`Measures` holds the computed values (one ego table keyed by
``patient_id`` and ``wave``, and the network change between two waves). It
computes only what it does not hold yet, so the measure stage's results can be
handed to :func:`cimstats.test_mechanisms` (``measures=``) instead of being
computed again.

Examples
--------
>>> from cimstats.measures.constructs import ConstructTable
>>> t = ConstructTable.from_spec({"sm": {"kind": "scale", "instrument": "heiq", "score": "self_monitoring_insight"},
...                               "diversity": {"kind": "network", "measure": "n_tie_types"}})
>>> t.to_frame()[["name", "kind", "level", "computed_by"]]
        name     kind level                     computed_by
0         sm    scale   ego            cimstats.score_scale
1  diversity  network   ego  cimstats.networks.ego_measures
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from cimstats.dictionary.deprivation import isced_broad, within_nation_quantiles
from cimstats.errors import PlanError
from cimstats.measures.networks import catalogue, core
from cimstats.measures.networks import measures
from cimstats.measures.scales import scoring
from cimstats.measures.scales.instrument import load_instrument

__all__ = ["KINDS", "ConstructKind", "Construct", "ConstructTable", "Measures", "scale_constructs",
           "network_constructs"]

_ID = "patient_id"
_KEYS = [_ID, "wave"]
#: network measures computed only from the alter-alter tie table (structure and brokerage)
_TIE_MEASURES = frozenset(r[1] for r in catalogue._ROWS if r[0] in ("structure", "brokerage")) | {
    f"p_{r}" for r in catalogue.BROKER_ROLES}


class Unavailable(Exception):
    """A construct cannot be computed from the data given; the message says why (in words for a verdict)."""


# ---------------------------------------------------------------------------------------- compute functions
def score_construct(patients: pd.DataFrame, instrument: str, score: str, *, items: Mapping | None = None,
                    out_of_range: str = "error") -> np.ndarray:
    """One score of an instrument, one value per row of ``patients`` (see :func:`cimstats.score_scale`)."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = scoring.score_scale(patients, instrument, items=dict(items) if items else None, scores=[score],
                                  out_of_range=out_of_range)
    return res.scores[score].to_numpy()


def network_table(patients: pd.DataFrame, alters: pd.DataFrame, ties: pd.DataFrame | None = None):
    """The checked ego networks of the patients (one ego per ``patient_id`` and ``wave``).

    ``ties`` is the alter-alter tie table (``patient_id, wave, alter_a,
    alter_b``, as the demo study's harmonised ``alter_ties``); with it the
    network measures include density, effective size, constraint and the
    brokerage roles.
    """

    egos = patients[[c for c in _KEYS if c in patients.columns]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return core.ego_networks(alters, egos=egos, ties=ties)


def network_measures(net) -> pd.DataFrame:
    """Every ego-level network measure (:func:`cimstats.networks.ego_measures`), one row per ego and wave."""

    return measures.ego_measures(net)


def network_change(net, waves=(0, 1)):
    """Network change between two waves (:func:`cimstats.networks.change`)."""
    change = importlib.import_module("cimstats.measures.networks.change")  # the module, not the function

    return change.change(net, waves=tuple(waves))


def wave_difference(ego: pd.DataFrame, of: str, ids: pd.Series, waves=(0, 1)) -> np.ndarray:
    """Follow-up minus baseline of the ego-level column ``of``, for each patient id in ``ids``."""
    a = ego.loc[ego["wave"] == waves[0]].set_index(_ID)[of]
    b = ego.loc[ego["wave"] == waves[1]].set_index(_ID)[of]
    return (ids.map(b) - ids.map(a)).to_numpy(dtype=float)


def cluster_mean(ego: pd.DataFrame, of: str, by: str) -> np.ndarray:
    """The mean of ``of`` over the rows of each cluster ``by`` (within wave), one value per row of ``ego``.

    A contextual variable of a multilevel model: the school average of the
    pupils' intake scores, say. Missing values of ``of`` are left out of the
    mean (the mean of a cluster without any value is missing); rows whose
    cluster is missing get a missing mean.

    Examples
    --------
    >>> ego = pd.DataFrame({"school": ["a", "a", "b"], "score": [1.0, 3.0, 5.0]})
    >>> cluster_mean(ego, "score", "school").tolist()
    [2.0, 2.0, 5.0]
    """
    keys = [by] + (["wave"] if "wave" in ego.columns and ego["wave"].notna().any() else [])
    values = pd.to_numeric(ego[of], errors="coerce").astype(float)
    out = values.groupby([ego[k] for k in keys]).transform("mean")
    return out.reindex(ego.index).to_numpy(dtype=float)


def national_quantile(ego: pd.DataFrame, of: str, by: str, direction: str, n: int = 5) -> np.ndarray:
    """Within-nation quantiles of ``of`` (1 = most deprived), formed within each ``by`` group and wave.

    Parameters
    ----------
    ego : DataFrame
        One row per patient and wave.
    of : str
        The measure (e.g. ``income_equiv``, equivalised income in EUR per year).
    by : str
        The nation column (``country``); quantiles are formed within each nation and wave.
    direction : {"higher_more_deprived", "lower_more_deprived"}
        Which end of ``of`` is more deprived (income: lower).
    n : int, default 5
        Number of groups (5 = quintiles).

    Returns
    -------
    ndarray
        Codes 1..n as floats (NaN where ``of`` or ``by`` is missing).

    Examples
    --------
    >>> ego = pd.DataFrame({"country": ["A"] * 4 + ["B"] * 2, "income": [10, 20, 30, 40, 1, 2]})
    >>> national_quantile(ego, "income", "country", "lower_more_deprived", n=2).tolist()
    [1.0, 1.0, 2.0, 2.0, 1.0, 2.0]
    """
    keys = ego[by].astype(object).where(ego[by].notna(), None)
    if "wave" in ego.columns:
        keys = keys.astype(str) + "|" + ego["wave"].astype(str)
    vals = pd.to_numeric(ego[of], errors="coerce").astype(float)
    vals = vals.where(ego[by].notna())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = within_nation_quantiles(vals.to_numpy(), nation=keys.to_numpy(dtype=object), n=int(n),
                                    direction=direction)
    return pd.to_numeric(q.codes, errors="coerce").astype(float).to_numpy()


#: the broad education groups of ISCED 2011 levels (see :func:`education_group`)
EDUCATION_GROUPS = {1: "low", 2: "medium", 3: "high"}


def education_group(ego: pd.DataFrame, of: str) -> np.ndarray:
    """Broad education group (``low``: ISCED 0-2, ``medium``: 3-4, ``high``: 5-8) of the ISCED 2011 level ``of``.

    Values outside 0-8 become missing (with a warning from
    :func:`cimstats.dictionary.deprivation.isced_broad`).

    Examples
    --------
    >>> education_group(pd.DataFrame({"isced": [1, 3, 6, None]}), "isced").tolist()
    ['low', 'medium', 'high', nan]
    """
    codes = isced_broad(ego[of].to_numpy()).to_numpy(dtype=float, na_value=np.nan)
    return np.array([EDUCATION_GROUPS.get(int(c)) if c == c else np.nan for c in codes], dtype=object)


# ---------------------------------------------------------------------------------------- the kinds
@dataclass(frozen=True)
class ConstructKind:
    """One kind of construct: the keys its definition needs, its level and the function that computes it."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    level: str
    compute: Callable
    computed_by: str


KINDS: Mapping[str, ConstructKind] = MappingProxyType({
    "scale": ConstructKind("scale", ("instrument", "score"), ("items", "label"), "ego", score_construct,
                           "cimstats.score_scale"),
    "network": ConstructKind("network", ("measure",), ("label",), "ego", network_measures,
                             "cimstats.networks.ego_measures"),
    "change": ConstructKind("change", ("measure",), ("label",), "change", network_change,
                            "cimstats.networks.change"),
    "wave_difference": ConstructKind("wave_difference", ("of",), ("label",), "change", wave_difference,
                                     "follow-up minus baseline"),
    "cluster_mean": ConstructKind("cluster_mean", ("of", "by"), ("label",), "ego", cluster_mean,
                                  "mean over the cluster"),
    "national_quantile": ConstructKind("national_quantile", ("of", "by", "n", "direction"), ("label",), "ego",
                                       national_quantile, "cimstats.dictionary.deprivation.within_nation_quantiles"),
    "education_group": ConstructKind("education_group", ("of",), ("label",), "ego", education_group,
                                     "cimstats.dictionary.deprivation.isced_broad"),
})


@dataclass(frozen=True)
class Construct:
    """One row of the construct table.

    Attributes
    ----------
    name : str
        The variable name models and displays use.
    kind : str
        One of :data:`KINDS`.
    definition : mapping
        What it is built from (``instrument``/``score``/``items``, ``measure`` or ``of``).
    label : str
        A label for tables (optional).
    """

    name: str
    kind: str
    definition: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def level(self) -> str:
        return KINDS[self.kind].level

    @property
    def compute(self) -> Callable:
        """The function that computes this construct (see :data:`KINDS`)."""
        return KINDS[self.kind].compute

    @property
    def key(self) -> tuple:
        """What identifies the computation: constructs with the same key are one construct under two names."""
        items = self.definition.get("items")
        return (self.kind,) + tuple((k, str(self.definition.get(k))) for k in KINDS[self.kind].required) + (
            tuple(sorted((str(a), str(b)) for a, b in dict(items).items())) if isinstance(items, Mapping) else (),)

    def describe(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.definition.items() if v not in (None, {}, []))

    def to_dict(self) -> dict:
        d = {"kind": self.kind, **{k: v for k, v in self.definition.items() if v is not None}}
        if self.label:
            d["label"] = self.label
        return d

    @classmethod
    def from_spec(cls, name: str, spec: Mapping) -> "Construct":
        """A construct from its plan entry (``{kind: ..., ...}``); the entry must have been checked."""
        kind = spec["kind"]
        ck = KINDS[kind]
        definition = {k: spec[k] for k in ck.required + ck.optional if k in spec and k != "label"}
        return cls(name=str(name), kind=kind, definition=MappingProxyType(definition),
                   label=str(spec.get("label") or ""))


def construct_problems(name, spec) -> list[tuple[str, str]]:
    """Problems of one construct entry as ``(what, message)``; ``what`` is ``"kind"`` or ``"key"``.

    Only the schema is checked here (kind known, required keys present);
    whether an instrument, score or measure exists is checked by the plans,
    which know the data dictionary.
    """
    where = f"construct {name!r}"
    if not isinstance(spec, Mapping):
        return [("kind", f"{where} must be a mapping with a 'kind'.")]
    kind = spec.get("kind")
    if kind not in KINDS:
        return [("kind", f"{where} has kind {kind!r}.")]
    out = [("key", f"{where} (kind {kind}) lacks {key!r}.") for key in KINDS[kind].required if not spec.get(key)]
    if kind == "national_quantile":
        if spec.get("direction") and spec["direction"] not in ("higher_more_deprived", "lower_more_deprived"):
            out.append(("key", f"{where} has direction {spec['direction']!r}; expected higher_more_deprived or "
                               "lower_more_deprived (which end of the measure is more deprived)."))
        nq = spec.get("n")
        if nq is not None and isinstance(nq, bool) or not isinstance(nq, int) or not 2 <= nq <= 100:
            out.append(("key", f"{where} has n {nq!r}; expected a whole number of groups from 2 to 100 (5 for "
                               "quintiles)."))
    unknown = [k for k in spec if k not in ("kind",) + KINDS[kind].required + KINDS[kind].optional]
    if unknown:
        out.append(("key", f"{where} (kind {kind}) has unknown key(s) {', '.join(map(repr, unknown))}; expected "
                           f"{', '.join(('kind',) + KINDS[kind].required + KINDS[kind].optional)}."))
    return out


# ---------------------------------------------------------------------------------------- the table
class ConstructTable(Mapping):
    """The constructs of a study, by name (a read-only mapping name -> :class:`Construct`).

    Examples
    --------
    >>> from cimstats.measures.constructs import ConstructTable, scale_constructs
    >>> t = ConstructTable(scale_constructs([{"instrument": "heiq", "scores": ["self_monitoring_insight"]}]))
    >>> t = t.merged({"sm": {"kind": "scale", "instrument": "heiq", "score": "self_monitoring_insight"}})
    >>> t.aliases("sm")
    ['self_monitoring_insight', 'sm']
    """

    def __init__(self, constructs: Iterable[Construct] = ()):
        self._c: dict[str, Construct] = {}
        for c in constructs:
            self._add(c)

    def _add(self, c: Construct) -> None:
        old = self._c.get(c.name)
        if old is not None and old.key != c.key:
            raise PlanError(f"The construct {c.name!r} is declared twice with different definitions "
                            f"({old.describe()} and {c.describe()}); give one of them another name.")
        if old is None:
            self._c[c.name] = c

    @classmethod
    def from_spec(cls, spec: Mapping | None) -> "ConstructTable":
        """A table from a ``constructs:`` section (name -> ``{kind, ...}``).

        Raises
        ------
        PlanError
            An entry breaks the schema (every problem is named in the message).
        """
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise PlanError(f"The constructs section is a {type(spec).__name__}; expected a mapping of names to "
                            "{kind: ..., ...} entries.")
        problems = [m for n, s in spec.items() for _, m in construct_problems(n, s)]
        if problems:
            raise PlanError(f"The constructs section has {len(problems)} problem(s) (first: {problems[0]}); expected "
                            f"kinds {', '.join(KINDS)} with their keys.")
        return cls(Construct.from_spec(n, s) for n, s in spec.items())

    def merged(self, other) -> "ConstructTable":
        """This table with the constructs of ``other`` (a table or a ``constructs:`` mapping) added.

        Raises
        ------
        PlanError
            A name is defined differently in the two.
        """
        other = other if isinstance(other, ConstructTable) else ConstructTable.from_spec(other)
        out = ConstructTable(self.values())
        for c in other.values():
            out._add(c)
        return out

    def __getitem__(self, name: str) -> Construct:
        return self._c[name]

    def __iter__(self):
        return iter(self._c)

    def __len__(self) -> int:
        return len(self._c)

    def __repr__(self) -> str:
        return f"ConstructTable({', '.join(self._c)})"

    def aliases(self, name: str) -> list[str]:
        """Every name of the table with the same definition as ``name`` (itself included), sorted."""
        key = self._c[name].key
        return sorted(n for n, c in self._c.items() if c.key == key)

    def to_spec(self) -> dict:
        """The table as a ``constructs:`` mapping."""
        return {n: c.to_dict() for n, c in self._c.items()}

    def to_frame(self) -> pd.DataFrame:
        """One row per construct: name, kind, level, definition, computed_by, label."""
        return pd.DataFrame([{"name": c.name, "kind": c.kind, "level": c.level, "definition": c.describe(),
                              "computed_by": KINDS[c.kind].computed_by, "label": c.label}
                             for c in self._c.values()],
                            columns=["name", "kind", "level", "definition", "computed_by", "label"])


def scale_constructs(instruments: Iterable[Mapping]) -> list[Construct]:
    """One ``scale`` construct per score of each entry of an ``instruments:`` section, named by the score id.

    Parameters
    ----------
    instruments : list of mapping
        ``{instrument: ID or YAML path, scores: [...] or None, items: {...} or None}`` entries.
    """

    out = []
    for spec in instruments:
        ins = load_instrument(spec["instrument"])
        scores = spec.get("scores") or ins.score_ids
        for sid in _with_parts(ins, scores):
            d = {"instrument": spec["instrument"], "score": sid}
            if spec.get("items"):
                d["items"] = dict(spec["items"])
            out.append(Construct(name=sid, kind="scale", definition=MappingProxyType(d)))
    return out


def _with_parts(ins, scores) -> list[str]:
    """The scores asked for, plus the scores they combine (which :func:`score_scale` computes too)."""
    out: list[str] = []

    def add(sid):
        for sub in ins.score(sid).scores or ():
            add(sub)
        if sid not in out:
            out.append(sid)

    for s in scores:
        add(s)
    return [s for s in ins.score_ids if s in out]


def network_constructs(columns: Iterable[str]) -> list[Construct]:
    """One ``network`` construct per ego-level measure column, named by the column."""
    return [Construct(name=str(c), kind="network", definition=MappingProxyType({"measure": str(c)}))
            for c in columns]


# ---------------------------------------------------------------------------------------- computed values
class Measures:
    """Computed constructs of one study, filled on demand: each is computed at most once.

    Parameters
    ----------
    ego : DataFrame, optional
        One row per patient and wave (``patient_id``, ``wave``) with one column
        per computed ego-level construct or network measure (e.g. the scales
        step's ``scales/scores.parquet`` joined with the networks step's
        ``networks/ego_measures.parquet``).
    change : DataFrame, optional
        One row per patient seen at both change waves with the columns of
        :attr:`cimstats.networks.NetworkChange.egos`.
    change_alters : DataFrame, optional
        :attr:`cimstats.networks.NetworkChange.alters` of the same change.
    change_waves : (int, int)
        The waves ``change`` compares.
    constructs : ConstructTable, optional
        What the columns of ``ego`` are (so that a construct declared under
        another name with the same definition is found); without it a column
        is matched by the construct's name, or by the score or measure it
        is built from.

    Attributes
    ----------
    computed : list of str
        What this object computed itself (not what it was given), in order,
        e.g. ``"scale heiq/self_monitoring_insight"``, ``"network measures"``.
    """

    def __init__(self, ego: pd.DataFrame | None = None, *, change: pd.DataFrame | None = None,
                 change_alters: pd.DataFrame | None = None, change_waves=(0, 1),
                 constructs: ConstructTable | None = None):
        for what, v in (("ego", ego), ("change", change), ("change_alters", change_alters)):
            if v is not None and not isinstance(v, pd.DataFrame):
                raise PlanError(f"`measures` {what} table is a {type(v).__name__}; expected a DataFrame.")
        if ego is not None:
            miss = [k for k in _KEYS if k not in ego.columns]
            if miss:
                raise PlanError(f"The measures table lacks column(s) {', '.join(miss)}; expected one row per "
                                "patient and wave keyed by patient_id and wave, so add the key columns.")
            dup = ego.duplicated(_KEYS)
            if dup.any():
                raise PlanError(f"The measures table repeats (patient_id, wave) in {int(dup.sum())} row(s); "
                                "expected one row per patient and wave, so remove the duplicates.")
        if change is not None and _ID not in change.columns:
            raise PlanError("The change table of `measures` has no patient_id column; pass "
                            "cimstats.networks.change(...).egos.")
        self.ego = ego
        self.change = change
        self.change_alters = change_alters
        self.change_waves = tuple(change_waves)
        self.constructs = constructs
        self.computed: list[str] = []
        self._net = None
        self._net_measures: pd.DataFrame | None = None
        self._scores: dict[tuple, np.ndarray] = {}

    def __repr__(self) -> str:
        ego = "none" if self.ego is None else f"{self.ego.shape[1] - 2} column(s)"
        return f"Measures(ego: {ego}; change: {'none' if self.change is None else 'waves ' + str(self.change_waves)})"

    @classmethod
    def coerce(cls, obj) -> "Measures":
        """``obj`` as :class:`Measures`: a Measures, a DataFrame (the ego table), or ``None`` (empty)."""
        if obj is None:
            return cls()
        if isinstance(obj, Measures):
            return obj
        if isinstance(obj, pd.DataFrame):
            return cls(obj)
        raise PlanError(f"`measures` is a {type(obj).__name__}; expected a DataFrame keyed by patient_id and wave "
                        "or a cimstats.measures.constructs.Measures.")

    # ---- lookups in what was given
    def _given_column(self, construct: Construct) -> str | None:
        if self.ego is None:
            return None
        cols = self.ego.columns
        if self.constructs is not None:
            names = [n for n, c in self.constructs.items() if c.key == construct.key]
            names = sorted(names, key=lambda n: n != construct.name)  # its own name first
            hit = next((n for n in names if n in cols), None)
            if hit is not None:
                return hit
            if construct.name in self.constructs:
                return None  # the table says what the column of that name is, and it is something else
        src = construct.definition.get("score") if construct.kind == "scale" else construct.definition.get("measure")
        for n in (construct.name, src):
            if n is not None and n in cols:
                return n
        return None

    def check_rows(self, patients: pd.DataFrame) -> None:
        """Raise :class:`PlanError` unless the given ego table has a row for every patient and wave of ``patients``."""
        if self.ego is None:
            return
        m = patients[_KEYS].merge(self.ego[_KEYS], on=_KEYS, how="left", indicator=True)
        absent = m["_merge"].to_numpy() != "both"
        if absent.any():
            ex = patients.loc[absent, _KEYS].iloc[0].tolist()
            raise PlanError(f"The measures table has no row for {int(absent.sum())} patient-wave(s) of the patient "
                            f"table (first: {ex}); pass measures computed from the same patients.")

    def _aligned(self, keys: pd.DataFrame, col: str) -> np.ndarray:
        """``col`` of the given ego table in the row order of ``keys`` (patient_id, wave)."""
        self.check_rows(keys)
        return keys[_KEYS].merge(self.ego[_KEYS + [col]], on=_KEYS, how="left")[col].to_numpy()

    # ---- ego level
    def scale(self, construct: Construct, patients: pd.DataFrame, *, out_of_range: str = "error") -> np.ndarray:
        """A scale construct, one value per row of ``patients`` (given, or computed once)."""
        col = self._given_column(construct)
        if col is not None:
            return self._aligned(patients, col)
        key = construct.key
        if key not in self._scores:
            d = construct.definition

            ins = load_instrument(d["instrument"])
            rule = next((r for r in ins.scores if r.id == d["score"]), None)
            if rule is None:
                raise Unavailable(f"instrument '{ins.id}' has no score '{d['score']}' (construct '{construct.name}')")
            mapping = dict(d.get("items") or {})
            absent = [i for i in rule.items if mapping.get(i, i) not in patients.columns]
            if absent:
                raise Unavailable(f"construct '{construct.name}' needs item(s) {', '.join(absent)}, absent from the "
                                  "patient table")
            self._scores[key] = construct.compute(patients, d["instrument"], d["score"], items=d.get("items"),
                                                  out_of_range=out_of_range)
            self.computed.append(f"scale {ins.id}/{d['score']}")
        return self._scores[key]

    def network(self, construct: Construct, patients: pd.DataFrame, alters: pd.DataFrame | None,
                ties: pd.DataFrame | None = None) -> np.ndarray:
        """A network construct, one value per row of ``patients`` (given, or from measures computed once).

        ``ties`` (the alter-alter tie table) is needed for the structure and
        brokerage measures (effective size, constraint, brokerage roles).
        """
        col = self._given_column(construct)
        if col is not None:
            return self._aligned(patients, col)
        m = self._network_measures(patients, alters, ties)
        meas = construct.definition["measure"]
        if meas not in m.columns:
            if self._net.ties is None and meas in _TIE_MEASURES:
                raise Unavailable(f"network measure '{meas}' (construct '{construct.name}') needs the alter-alter "
                                  "tie table (who knows whom), and none was given")
            raise Unavailable(f"network measure '{meas}' (construct '{construct.name}') is not computed by "
                              "cimstats.networks.ego_measures")
        return m[meas].to_numpy()

    def _network(self, patients: pd.DataFrame, alters: pd.DataFrame | None, ties: pd.DataFrame | None = None):
        if self._net is None:
            if alters is None:
                raise Unavailable("no alter table was given, so network measures cannot be computed")
            self._net = network_table(patients, alters, ties)
            self.computed.append("ego networks")
        return self._net

    def _network_measures(self, patients: pd.DataFrame, alters: pd.DataFrame | None,
                          ties: pd.DataFrame | None = None) -> pd.DataFrame:
        if self._net_measures is None:
            m = network_measures(self._network(patients, alters, ties))
            self.computed.append("network measures")
            m = patients[_KEYS].merge(m, on=_KEYS, how="left", suffixes=("", "_net"))
            if len(m) != len(patients):
                raise Unavailable("the patient table repeats (patient_id, wave); network measures cannot be joined")
            self._net_measures = m
        return self._net_measures

    # ---- change between waves
    def network_change(self, patients: pd.DataFrame, alters: pd.DataFrame | None, waves=(0, 1),
                       ties: pd.DataFrame | None = None):
        """``(egos, alters)`` of the network change between ``waves`` (given, or computed once)."""
        waves = tuple(waves)
        if self.change is not None and self.change_alters is not None and self.change_waves == waves:
            return self.change, self.change_alters
        res = network_change(self._network(patients, alters, ties), waves)
        self.computed.append(f"network change {waves[0]}-{waves[1]}")
        self.change, self.change_alters, self.change_waves = res.egos, res.alters, waves
        return self.change, self.change_alters
