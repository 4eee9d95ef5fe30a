"""Instrument definitions: the central table of the measure stage.

An instrument is declared as data (a YAML file), never as code. The file
names the items, their response range, the reverse-keyed items, and one entry
per score (subscale or total) with its items, scoring method, transform,
minimum number of valid items and the rule in words. Files shipped with
cimstats live in ``cimstats/measures/scales/instruments``; users can load their
own file with :func:`load_instrument`.

File format (keys in brackets are optional)::

    id: my_scale
    name: My scale
    [construct, licence, references: [...], sources: [...]]
    response: {min: 1, max: 5}          # default range of every item
    items:
      - {id: q1, label: "..."}
      - {id: q2, [min: 0, max: 3] | [values: [2, 4]]}
    reverse: [q2]                       # reversed as min + max - x
    scores:
      - id: total
        items: [q1, q2]                 # or  scores: [other, scores]
        method: mean | sum | profile | value_set
        [transform: "0-100"]
        min_valid: 2                    # fewer valid items -> missing
        [prorate: true]                 # sum scales: n_items * mean of valid items
        rule: "the rule in words"

Validation collects every problem into a :class:`~cimstats.errors.Report`
(codes S101-S115) and raises :class:`~cimstats.errors.ScaleError` carrying it.

Examples
--------
>>> from cimstats.measures.scales import load_instrument
>>> semcd = load_instrument("semcd6")
>>> semcd.score_ids
('semcd',)
>>> semcd.item_range("semcd_1")
(1.0, 10.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from cimstats.errors import Report, ScaleError

METHODS = ("mean", "sum", "profile", "value_set")
TRANSFORMS = (None, "0-100")
_TOP_KEYS = {"id", "name", "construct", "licence", "license", "references", "sources",
             "response", "items", "reverse", "scores", "version", "notes"}
_ITEM_KEYS = {"id", "label", "min", "max", "values"}
_SCORE_KEYS = {"id", "label", "items", "scores", "method", "transform", "min_valid",
               "prorate", "rule"}


@dataclass(frozen=True)
class Item:
    """One questionnaire item: id, label and its valid responses."""

    id: str
    label: str
    min: float
    max: float
    values: tuple[float, ...] | None = None  # allowed values when not every integer in range


@dataclass(frozen=True)
class ScoreRule:
    """How one score (subscale, total, index) is computed from items or other scores."""

    id: str
    label: str
    method: str
    items: tuple[str, ...] = ()
    scores: tuple[str, ...] = ()
    transform: str | None = None
    min_valid: int = 0
    prorate: bool = True
    rule: str = ""

    @property
    def n_items(self) -> int:
        return len(self.items) if self.items else len(self.scores)


@dataclass(frozen=True)
class Instrument:
    """A validated instrument definition (see the module docstring for the file format)."""

    id: str
    name: str
    items: tuple[Item, ...]
    reverse: tuple[str, ...]
    scores: tuple[ScoreRule, ...]
    construct: str = ""
    licence: str = ""
    references: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    source_file: str = ""

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.items)

    @property
    def score_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.scores)

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def score(self, score_id: str) -> ScoreRule:
        for s in self.scores:
            if s.id == score_id:
                return s
        raise KeyError(score_id)

    def item_range(self, item_id: str) -> tuple[float, float]:
        it = self.item(item_id)
        return (it.min, it.max)

    def to_frame(self):
        """One row per item x score: the instrument as an inspectable table.

        Columns: ``score, item, reverse, min, max, method, transform, min_valid, prorate, rule``.
        """
        import pandas as pd

        rows = []
        for s in self.scores:
            for member in (s.items or s.scores):
                it = self.item(member) if s.items else None
                rows.append({
                    "score": s.id, "item": member,
                    "reverse": bool(it and it.id in self.reverse),
                    "min": it.min if it else float("nan"),
                    "max": it.max if it else float("nan"),
                    "method": s.method, "transform": s.transform,
                    "min_valid": s.min_valid, "prorate": s.prorate, "rule": s.rule,
                })
        return pd.DataFrame(rows)

    def describe(self) -> str:
        """A short text description: scores, items, keys, rules, licence and references."""
        lines = [f"{self.name} [{self.id}]", f"  items: {len(self.items)}; reverse-keyed: "
                 f"{', '.join(self.reverse) or 'none'}"]
        for s in self.scores:
            lines.append(f"  {s.id}: {s.label} -- {s.rule}")
        if self.licence:
            lines.append(f"  licence: {self.licence}")
        for r in self.references:
            lines.append(f"  reference: {r}")
        return "\n".join(lines)


def _instrument_dir():
    return resources.files("cimstats.measures.scales") / "instruments"


def list_instruments():
    """Table of the instruments shipped with cimstats.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, name, n_items, scores, licence``.

    Examples
    --------
    >>> from cimstats.measures.scales import list_instruments
    >>> "semcd6" in set(list_instruments()["id"])
    True
    """
    import pandas as pd

    rows = []
    for entry in sorted(_instrument_dir().iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        ins = load_instrument(entry.name[:-5])
        rows.append({"id": ins.id, "name": ins.name, "n_items": len(ins.items),
                     "scores": ", ".join(ins.score_ids), "licence": ins.licence})
    return pd.DataFrame(rows, columns=["id", "name", "n_items", "scores", "licence"])


def load_instrument(instrument: "str | Path | Mapping | Instrument") -> Instrument:
    """Load and validate an instrument.

    Parameters
    ----------
    instrument : str, path, mapping or Instrument
        The id of a shipped instrument (``"semcd6"``), the path of a YAML file,
        or an already-parsed mapping with the same keys.

    Returns
    -------
    Instrument

    Raises
    ------
    ScaleError
        When the id is unknown, the file cannot be read, or the definition has
        problems; ``report`` lists every problem with codes S101-S115.

    Examples
    --------
    >>> load_instrument("lsns6").score("lsns_total").method
    'sum'
    """
    if isinstance(instrument, Instrument):
        return instrument
    if isinstance(instrument, Mapping):
        return _build(dict(instrument), source="<mapping>")
    text_path = str(instrument)
    path = Path(text_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ScaleError(f"Instrument file '{text_path}' does not exist; give the path of a YAML "
                             "instrument file or the id of a shipped instrument.")
        text = path.read_text(encoding="utf-8")
        source = path.name
    else:
        return _load_shipped(text_path)
    return _parse(text, source)


@lru_cache(maxsize=64)
def _load_shipped(name: str) -> Instrument:
    res = _instrument_dir() / f"{name}.yaml"
    if not res.is_file():
        known = sorted(p.name[:-5] for p in _instrument_dir().iterdir() if p.name.endswith(".yaml"))
        raise ScaleError(f"`instrument='{name}'` is not a shipped instrument; expected one of "
                         f"{', '.join(known)} or the path of a YAML instrument file.")
    return _parse(res.read_text(encoding="utf-8"), f"{name}.yaml")


def _parse(text: str, source: str) -> Instrument:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScaleError(f"Instrument file '{source}' is not valid YAML ({exc}); fix the syntax "
                         "and load it again.") from None
    if not isinstance(raw, dict):
        raise ScaleError(f"Instrument file '{source}' holds {type(raw).__name__}, expected a mapping "
                         "with keys id, name, items and scores.")
    return _build(raw, source=source)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _build(raw: dict, *, source: str) -> Instrument:
    rep = Report()

    def err(code, msg, remedy=None):
        rep.add(code, msg, file=source, remedy=remedy)

    for key in ("id", "name", "items", "scores"):
        if key not in raw:
            err("S101", f"the required key '{key}' is missing.", f"Add '{key}:' to the file.")
    for key in sorted(set(raw) - _TOP_KEYS):
        err("S110", f"the key '{key}' is not an instrument key.", f"Use one of {sorted(_TOP_KEYS)}.")
    resp = raw.get("response") or {}
    dmin, dmax = _num(resp.get("min")), _num(resp.get("max"))

    items: list[Item] = []
    seen: set[str] = set()
    for k, it in enumerate(raw.get("items") or []):
        if isinstance(it, str):
            it = {"id": it}
        if not isinstance(it, dict) or "id" not in it:
            err("S101", f"item {k + 1} has no 'id'.", "Write each item as {id: name, label: text}.")
            continue
        iid = str(it["id"])
        for key in sorted(set(it) - _ITEM_KEYS):
            err("S110", f"item '{iid}' has the unknown key '{key}'.", f"Use one of {sorted(_ITEM_KEYS)}.")
        if iid in seen:
            err("S102", f"item '{iid}' is listed twice.", "Give every item a unique id.")
            continue
        seen.add(iid)
        values = it.get("values")
        vals = None
        if values is not None:
            vals_num = [_num(v) for v in values] if isinstance(values, list) else [None]
            if not vals_num or any(v is None for v in vals_num):
                err("S106", f"item '{iid}' has values {values!r}; expected a list of numbers.",
                    "Write values: [2, 4].")
                continue
            vals = tuple(sorted(set(vals_num)))
            lo, hi = vals[0], vals[-1]
        else:
            lo = _num(it.get("min", dmin)) if it.get("min", dmin) is not None else None
            hi = _num(it.get("max", dmax)) if it.get("max", dmax) is not None else None
            if lo is None or hi is None:
                err("S106", f"item '{iid}' has no numeric response range (min/max).",
                    "Give 'response: {min: .., max: ..}' or per-item min and max.")
                continue
            if not lo < hi:
                err("S106", f"item '{iid}' has response range {lo:g}-{hi:g}; expected min < max.",
                    "Correct min and max.")
                continue
        items.append(Item(id=iid, label=str(it.get("label", iid)), min=float(lo), max=float(hi),
                          values=vals))
    item_ids = {i.id for i in items}

    reverse_raw = raw.get("reverse") or []
    reverse: list[str] = []
    for r in reverse_raw:
        r = str(r)
        if r in reverse:
            err("S103", f"reverse-keyed item '{r}' is listed twice in 'reverse'.",
                "List each reverse-keyed item once.")
            continue
        if r not in item_ids:
            err("S104", f"reverse-keyed item '{r}' is not one of the items.", "Fix the item id.")
            continue
        reverse.append(r)

    scores: list[ScoreRule] = []
    score_ids: set[str] = set()
    for k, sc in enumerate(raw.get("scores") or []):
        if not isinstance(sc, dict) or "id" not in sc:
            err("S101", f"score {k + 1} has no 'id'.", "Give each score an id.")
            continue
        sid = str(sc["id"])
        for key in sorted(set(sc) - _SCORE_KEYS):
            err("S110", f"score '{sid}' has the unknown key '{key}'.", f"Use one of {sorted(_SCORE_KEYS)}.")
        if sid in score_ids or sid in item_ids:
            err("S111", f"score id '{sid}' is used twice (or equals an item id).",
                "Give every score a unique id.")
            continue
        method = sc.get("method")
        if method not in METHODS:
            err("S108", f"score '{sid}' has method {method!r}; expected one of {', '.join(METHODS)}.",
                "Set method: mean or method: sum.")
            continue
        transform = sc.get("transform")
        if transform not in TRANSFORMS:
            err("S108", f"score '{sid}' has transform {transform!r}; expected '0-100' or none.",
                "Remove transform or write transform: \"0-100\".")
            continue
        members_items = [str(x) for x in (sc.get("items") or [])]
        members_scores = [str(x) for x in (sc.get("scores") or [])]
        if bool(members_items) == bool(members_scores):
            err("S105", f"score '{sid}' must list either 'items' or 'scores' (not both, not neither).",
                "List the items it is computed from.")
            continue
        bad = False
        for m in members_items:
            if m not in item_ids:
                err("S105", f"score '{sid}' lists the unknown item '{m}'.", "Fix the item id.")
                bad = True
        if len(set(members_items)) != len(members_items):
            err("S105", f"score '{sid}' lists an item twice.", "List each item once.")
            bad = True
        for m in members_scores:
            if m not in score_ids:
                err("S105", f"score '{sid}' lists '{m}', which is not a score defined above it.",
                    "Define component scores before the score that combines them.")
                bad = True
        if members_scores and method != "mean":
            err("S108", f"score '{sid}' combines scores with method '{method}'; only 'mean' is supported.",
                "Use method: mean.")
            bad = True
        if bad:
            continue
        n = len(members_items) or len(members_scores)
        mv = sc.get("min_valid", n)
        if isinstance(mv, bool) or not isinstance(mv, int) or not 1 <= mv <= n:
            err("S107", f"score '{sid}' has min_valid {mv!r}; expected a whole number from 1 to {n}.",
                "Set min_valid to the fewest valid items that still give a score.")
            continue
        if members_scores:
            mv = n
        prorate = sc.get("prorate", True)
        if not isinstance(prorate, bool):
            err("S107", f"score '{sid}' has prorate {prorate!r}; expected true or false.", "Write true/false.")
            continue
        if method == "sum" and not prorate and mv < n:
            err("S109", f"score '{sid}' is a sum without prorating but allows {mv} of {n} items, which "
                "would mix sums over different numbers of items.",
                f"Set prorate: true or min_valid: {n}.")
            continue
        if method in ("profile", "value_set") and mv != n:
            err("S107", f"score '{sid}' ({method}) needs every item; min_valid is {mv}, expected {n}.",
                f"Set min_valid: {n}.")
            continue
        score_ids.add(sid)
        scores.append(ScoreRule(id=sid, label=str(sc.get("label", sid)), method=method,
                                items=tuple(members_items), scores=tuple(members_scores),
                                transform=transform, min_valid=int(mv), prorate=prorate,
                                rule=str(sc.get("rule", ""))))
    if rep.has_errors:
        first = rep.errors[0]
        raise ScaleError(f"Instrument file '{source}' has {len(rep.errors)} problem(s), the first being "
                         f"[{first.code}] {first.message[:-1] if first.message.endswith('.') else first.message}; "
                         "see `.report` for all of them and fix the file.", report=rep)
    return Instrument(
        id=str(raw["id"]), name=str(raw["name"]), items=tuple(items), reverse=tuple(reverse),
        scores=tuple(scores), construct=str(raw.get("construct", "")),
        licence=str(raw.get("licence", raw.get("license", ""))),
        references=tuple(str(r) for r in raw.get("references") or ()),
        sources=tuple(str(s) for s in raw.get("sources") or ()), source_file=source,
    )
