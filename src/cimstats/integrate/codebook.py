"""Theme codebooks: themes, sub-themes, mechanisms, exemplar excerpts and links.

A theme codebook is the qualitative strand's central table. It lists themes
(and sub-themes or elements nested under them) with definitions, the
mechanism each belongs to, the direction the qualitative finding states for
its linked hypotheses, exemplar excerpts with source and participant, and
links from themes to mechanism hypotheses or quantitative constructs.

YAML format
-----------
::

    name: Network mechanisms synthesis          # optional
    sources:                                     # optional: published sources the codebook cites
      - id: vassilev2014
        label: Vassilev et al. 2014 metasynthesis
        citation: "Vassilev I, Rogers A, Kennedy A, Koetsenruijter J. ... BMC Public Health 2014;14:719."
        doi: 10.1186/1471-2458-14-719
    invented_excerpts: false                     # true: every display says the excerpts are invented
    mechanisms:                                  # optional; a list or an id -> fields mapping
      - id: navigation
        name: Network navigation
        definition: Identifying and connecting with relevant existing resources.
    themes:
      - id: T1
        name: Finding the right people
        mechanism: navigation
        definition: ...
        source: vassilev2014     # whose finding the theme is (omitted: this study's own)
        quote: "..."             # the source's own words for the theme
        direction: supports      # supports | contradicts | mixed | none
        hypotheses: [H1, H2]     # mechanism-table hypothesis ids
        constructs: [network_diversity]
        exemplars:
          - id: Q1
            text: "My neighbour told me about the walking group."
            source: interview 12
            participant: EN-0012
        subthemes:               # also accepted: children, elements
          - id: T1a
            name: ...

Keys are matched case-insensitively and a few synonyms are accepted
(``theme_id``/``id``, ``label``/``name``, ``description``/``definition``,
``hypothesis_ids``/``hypotheses``/``links``, ``quotes``/``exemplars``,
``case_id``/``participant``). ``parent`` may be given instead of nesting.

CSV format
----------
A themes CSV with columns ``theme_id, name`` and optionally ``parent_id,
kind, mechanism, definition, direction, hypothesis_ids, constructs``
(lists separated by ``;``); exemplars in a second CSV (``exemplars=``)
with ``theme_id, text`` and optionally ``excerpt_id, source, case_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cimstats.errors import Report
from cimstats.integrate._errors import CodebookError
from cimstats.integrate.excerpts import read_excerpts
from cimstats.render.notebook import notebook_html

__all__ = [
    "ThemeCodebook",
    "CodebookError",
    "read_theme_codebook",
    "theme_codebook_from_dict",
    "THEME_COLUMNS",
    "EXEMPLAR_COLUMNS",
    "LINK_COLUMNS",
    "DIRECTIONS",
]

#: stated direction of a qualitative finding relative to the linked hypotheses
DIRECTIONS = ("supports", "contradicts", "mixed", "none")
_DIRECTION_SYNONYMS = {
    "support": "supports", "supports": "supports", "supporting": "supports", "positive": "supports",
    "confirms": "supports", "+": "supports",
    "contradict": "contradicts", "contradicts": "contradicts", "contrary": "contradicts", "negative": "contradicts",
    "opposes": "contradicts", "-": "contradicts",
    "mixed": "mixed", "complex": "mixed", "partial": "mixed", "both": "mixed", "conditional": "mixed",
    "none": "none", "silent": "none", "": "none", "na": "none", "n/a": "none", "unstated": "none",
}
THEME_COLUMNS = ["theme_id", "name", "kind", "parent_id", "level", "mechanism", "definition", "direction",
                 "hypothesis_ids", "constructs", "source_id", "source_wording"]
SOURCE_COLUMNS = ["source_id", "label", "citation", "doi"]
#: the note every display built from invented excerpts carries (unless the codebook words its own)
INVENTED_NOTE = ("The excerpts are invented for illustration; they are not quotations of real participants "
                 "and no real interviews were done.")
EXEMPLAR_COLUMNS = ["excerpt_id", "theme_id", "text", "source", "case_id", "code", "mechanism", "element"]
LINK_COLUMNS = ["theme_id", "target_type", "target_id"]
MECHANISM_COLUMNS = ["mechanism_id", "name", "definition", "expectation"]
ELEMENT_COLUMNS = ["element_id", "mechanism_id", "name", "definition"]
CONSTRUCT_COLUMNS = ["construct_id", "name", "table", "variables", "measure"]


@dataclass(frozen=True)
class ThemeCodebook:
    """A theme codebook as tables.

    Attributes
    ----------
    themes : pandas.DataFrame
        One row per theme or sub-theme: ``theme_id, name, kind`` (``theme``,
        ``subtheme``, ``element``...), ``parent_id, level, mechanism,
        definition, direction`` (one of ``DIRECTIONS``), ``hypothesis_ids``
        and ``constructs`` (``;``-separated strings).
    exemplars : pandas.DataFrame
        ``excerpt_id, theme_id, text, source, case_id, code, mechanism,
        element``.
    links : pandas.DataFrame
        Long table ``theme_id, target_type`` (``hypothesis`` or
        ``construct``), ``target_id``.
    mechanisms : pandas.DataFrame
        ``mechanism_id, name, definition, expectation``.
    elements : pandas.DataFrame
        Elements of a mechanism (e.g. of collective efficacy):
        ``element_id, mechanism_id, name, definition``.
    constructs : pandas.DataFrame
        Quantitative constructs themes link to: ``construct_id, name, table,
        variables, measure``.
    participants : pandas.DataFrame
        Interviewed participants (``case_id`` and any listed attributes).
    sources : pandas.DataFrame
        Published sources the codebook cites: ``source_id, label,
        citation, doi``. A theme's ``source_id`` names the source its
        finding comes from (empty: the finding is this study's own) and
        ``source_wording`` holds the source's own words for it.
    invented_excerpts : bool
        True when the codebook says ``invented_excerpts: true``: its
        excerpts are invented, and every display built from them says so.
    excerpt_note : str
        The note such displays carry (``excerpt_note:``, else
        :data:`INVENTED_NOTE`); empty for real excerpts.
    name : str
    source : str
        Where the codebook was read from.
    """

    themes: Any
    exemplars: Any
    links: Any
    mechanisms: Any
    name: str = ""
    source: str = ""
    elements: Any = None
    constructs: Any = None
    participants: Any = None
    sources: Any = None
    invented_excerpts: bool = False
    excerpt_note: str = ""

    def __post_init__(self):
        import pandas as pd

        if self.elements is None:
            object.__setattr__(self, "elements", pd.DataFrame(columns=ELEMENT_COLUMNS))
        if self.constructs is None:
            object.__setattr__(self, "constructs", pd.DataFrame(columns=CONSTRUCT_COLUMNS))
        if self.participants is None:
            object.__setattr__(self, "participants", pd.DataFrame(columns=["case_id"]))
        if self.sources is None:
            object.__setattr__(self, "sources", pd.DataFrame(columns=SOURCE_COLUMNS))
        if self.invented_excerpts and not self.excerpt_note:
            object.__setattr__(self, "excerpt_note", INVENTED_NOTE)

    def source_label(self, source_id) -> str:
        """The short label of a cited source (e.g. ``Vassilev et al. 2014 metasynthesis``); the id when unknown."""
        if source_id is None or (isinstance(source_id, float) and source_id != source_id) or not str(source_id):
            return "This study"
        hit = self.sources.loc[self.sources["source_id"] == str(source_id), "label"]
        return str(hit.iloc[0]) if len(hit) and hit.iloc[0] else str(source_id)

    def excerpts(self):
        """The codebook's excerpts as a coded-excerpt table (see :func:`cimstats.integrate.read_excerpts`)."""
        ex = self.exemplars.rename(columns={"code": "code"})
        out = read_excerpts(ex[["excerpt_id", "case_id", "theme_id", "text", "source", "code", "mechanism", "element"]])
        out["invented"] = bool(self.invented_excerpts)
        return out

    def theme(self, theme_id: str) -> dict:
        """One theme's row as a dict."""
        hit = self.themes.loc[self.themes["theme_id"] == theme_id]
        if hit.empty:
            raise CodebookError(
                f"Theme {theme_id!r} is not in codebook {self.source or self.name!r}; "
                f"known themes: {', '.join(self.themes['theme_id'].astype(str).tolist())}."
            )
        return hit.iloc[0].to_dict()

    def themes_for_hypothesis(self, hypothesis_id: str) -> list[str]:
        """Theme ids linked to a hypothesis (from the codebook side)."""
        lk = self.links
        return lk.loc[(lk["target_type"] == "hypothesis") & (lk["target_id"] == hypothesis_id), "theme_id"].tolist()

    def summary(self) -> str:
        return (f"Codebook {self.name or self.source!r}: {len(self.themes)} themes, "
                f"{len(self.mechanisms)} mechanisms, {len(self.exemplars)} exemplars, {len(self.links)} links.")

    def _repr_html_(self) -> str:
        return notebook_html("Theme codebook", lines=[self.summary()])


def _norm_keys(d: dict) -> dict:
    return {str(k).strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in d.items()}


def _pick(d: dict, *names, default=None):
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return default


def _as_list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, float):
        import math

        return [] if math.isnan(v) else [str(v)]
    if isinstance(v, str):
        return [p.strip() for p in v.replace(",", ";").split(";") if p.strip()]
    if isinstance(v, dict):
        return [str(k) for k in v]
    return [str(x).strip() for x in v if x is not None and str(x).strip()]


def _direction(v, where: str, report: Report) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None  # not stated (joint displays may apply a default)
    key = str(v).strip().lower()
    if key in _DIRECTION_SYNONYMS:
        return _DIRECTION_SYNONYMS[key]
    report.add("C003", f"{where} states direction {v!r}, which is not one of {', '.join(DIRECTIONS)}.",
               remedy="Use supports, contradicts, mixed or none.")
    return "none"


def theme_codebook_from_dict(data: dict, *, source: str = "") -> ThemeCodebook:
    """Build a :class:`ThemeCodebook` from parsed YAML/JSON (see the module notes for keys).

    Raises
    ------
    CodebookError
        Listing every problem (duplicate ids, unknown parents, unknown
        directions, exemplars of unknown themes) in its ``report``.

    Examples
    --------
    >>> cb = theme_codebook_from_dict({"themes": [{"id": "T1", "name": "Trust", "direction": "supports",
    ...     "hypotheses": ["H3"], "subthemes": [{"id": "T1a", "name": "Timing"}],
    ...     "exemplars": [{"text": "We trusted the nurse.", "participant": "EN-0003"}]}]})
    >>> cb.themes[["theme_id", "parent_id", "level", "direction"]].fillna("-").values.tolist()
    [['T1', '-', 0, 'supports'], ['T1a', 'T1', 1, '-']]
    >>> cb.themes_for_hypothesis("H3")
    ['T1']
    """
    import pandas as pd

    if not isinstance(data, dict):
        raise CodebookError(f"Codebook {source!r} must be a mapping with a `themes` list; found {type(data).__name__}.")
    data = _norm_keys(data)
    report = Report()
    themes: list[dict] = []
    exemplars: list[dict] = []
    links: list[dict] = []
    mechs: list[dict] = []
    elements: list[dict] = []
    element_refs: list[tuple[str, str]] = []
    mech_theme_ids: list[tuple[str, str]] = []

    raw_mechs = _pick(data, "mechanisms", default=[])
    if isinstance(raw_mechs, dict):
        raw_mechs = [dict(v or {}, id=k) if isinstance(v, dict) else {"id": k, "definition": v} for k, v in raw_mechs.items()]
    for m in raw_mechs or []:
        if isinstance(m, str):
            m = {"id": m}
        m = _norm_keys(m)
        mid = _pick(m, "id", "mechanism_id", "name")
        mechs.append({"mechanism_id": str(mid), "name": str(_pick(m, "name", "label", default=mid)),
                      "definition": _pick(m, "definition", "description"),
                      "expectation": _pick(m, "quantitative_expectation", "expectation", "hypothesis")})
        # mechanisms may carry their own themes (as entries, or as ids of themes listed elsewhere)
        for key in ("themes", "subthemes", "children"):
            for t in m.get(key) or []:
                if isinstance(t, dict):
                    t = dict(t)
                    t.setdefault("mechanism", mid)
                    data.setdefault("_extra_themes", []).append(t)
                else:
                    mech_theme_ids.append((str(mid), str(t)))
        for e in m.get("elements") or []:
            if isinstance(e, dict):
                e = _norm_keys(e)
                elements.append({"element_id": str(_pick(e, "id", "name")), "mechanism_id": str(mid),
                                 "name": str(_pick(e, "name", "label", "id")),
                                 "definition": _pick(e, "definition", "description")})
            else:
                element_refs.append((str(mid), str(e)))

    def add_theme(t: dict, parent: dict | None, level: int, idx: str):
        if isinstance(t, str):
            t = {"id": t, "name": t}
        t = _norm_keys(t)
        tid = _pick(t, "id", "theme_id", "code")
        name = _pick(t, "name", "label", "title", default=tid)
        where = f"theme {tid!r}" if tid else f"theme at {idx}"
        if tid is None:
            report.add("C001", f"The {where} has no `id`.", remedy="Give every theme a unique id.")
            tid = f"?{idx}"
        tid = str(tid)
        parent_id = parent["theme_id"] if parent else _pick(t, "parent", "parent_id")
        kind = _pick(t, "kind", "type", default=("theme" if level == 0 and parent_id is None else "subtheme"))
        mech_list = _as_list(_pick(t, "mechanisms", "mechanism", "mechanism_id"))
        mech = ";".join(mech_list) if mech_list else (parent["mechanism"] if parent else None)
        hyps = _as_list(_pick(t, "hypotheses", "hypothesis_ids", "hypothesis", "links"))
        cons = _as_list(_pick(t, "constructs", "construct", "variables"))
        row = {
            "theme_id": tid, "name": None if name is None else str(name), "kind": str(kind),
            "parent_id": None if parent_id is None else str(parent_id), "level": level, "mechanism": None if mech is None else str(mech),
            "definition": _pick(t, "definition", "description"),
            "direction": _direction(_pick(t, "direction", "stated_direction"), where, report),
            "hypothesis_ids": ";".join(hyps), "constructs": ";".join(cons),
            # a sub-theme cites its own source: codes a study adds under a published theme are its own
            "source_id": _pick(t, "source", "source_id", "finding_source"),
            "source_wording": _pick(t, "quote", "source_wording", "published_wording"),
        }
        if row["source_id"] is not None:
            row["source_id"] = str(row["source_id"])
        themes.append(row)
        for h in hyps:
            links.append({"theme_id": tid, "target_type": "hypothesis", "target_id": h})
        for c in cons:
            links.append({"theme_id": tid, "target_type": "construct", "target_id": c})
        for k, e in enumerate(_pick(t, "exemplars", "quotes", "excerpts", default=[]) or []):
            if isinstance(e, str):
                e = {"text": e}
            e = _norm_keys(e)
            text = _pick(e, "text", "quote", "excerpt")
            if not text:
                report.add("C004", f"Exemplar {k + 1} of {where} has no text.", remedy="Add `text:`.")
                continue
            exemplars.append(_exemplar(e, tid, text, f"{tid}-{k + 1}"))
        for key in ("subthemes", "children", "codes", "elements", "themes"):
            for k, sub in enumerate(t.get(key) or []):
                add_theme(sub, row, level + 1, f"{idx}.{k + 1}")

    raw_themes = _pick(data, "themes", default=None)
    if raw_themes is None and not data.get("_extra_themes"):
        raise CodebookError(f"Codebook {source!r} has no `themes` list; expected `themes:` with one entry per theme.")
    if isinstance(raw_themes, dict):
        raw_themes = [dict(v or {}, id=k) if isinstance(v, dict) else {"id": k, "name": v} for k, v in raw_themes.items()]
    for k, t in enumerate((raw_themes or []) + data.get("_extra_themes", [])):
        add_theme(t, None, 0, str(k + 1))
    top_ex = list(_pick(data, "exemplars", "quotes", default=[]) or []) + list(_pick(data, "excerpts", default=[]) or [])
    for k, e in enumerate(top_ex):
        e = _norm_keys(e)
        tid = _pick(e, "theme_id", "theme")
        text = _pick(e, "text", "quote", "excerpt")
        if tid is None or not text:
            report.add("C004", f"Top-level excerpt {k + 1} needs `theme_id` (or `theme`) and `text`.")
            continue
        exemplars.append(_exemplar(e, str(tid), text, f"{tid}-x{k + 1}"))
    # elements of a mechanism listed at top level, e.g. `collective_efficacy_elements:` or `elements:`
    mech_ids = [m["mechanism_id"] for m in mechs]
    for key, val in data.items():
        if key == "elements" or key.endswith("_elements"):
            owner = key[: -len("_elements")] if key.endswith("_elements") else None
            for e in val or []:
                e = _norm_keys(e) if isinstance(e, dict) else {"id": e}
                eid = str(_pick(e, "id", "name"))
                m_owner = _pick(e, "mechanism", default=owner)
                if m_owner is None:
                    m_owner = next((m for m, x in element_refs if x == eid), None)
                elements.append({"element_id": eid, "mechanism_id": None if m_owner is None else str(m_owner),
                                 "name": str(_pick(e, "name", "label", default=eid)),
                                 "definition": _pick(e, "definition", "description")})
    known_el = {e["element_id"] for e in elements}
    for m, e in element_refs:
        if e not in known_el:
            elements.append({"element_id": e, "mechanism_id": m, "name": e, "definition": None})
    constructs = []
    raw_c = _pick(data, "constructs", default={}) or {}
    if isinstance(raw_c, dict):
        raw_c = [dict(v or {}, id=k) if isinstance(v, dict) else {"id": k, "name": v} for k, v in raw_c.items()]
    for c in raw_c:
        c = _norm_keys(c) if isinstance(c, dict) else {"id": c}
        constructs.append({"construct_id": str(_pick(c, "id", "name")), "name": _pick(c, "name", "label"),
                           "table": _pick(c, "table"), "variables": ";".join(_as_list(_pick(c, "variables"))),
                           "measure": _pick(c, "measure", "definition", "description")})
    participants = []
    for pt in _pick(data, "participants", "cases", default=[]) or []:
        pt = _norm_keys(pt) if isinstance(pt, dict) else {"id": pt}
        row = {"case_id": str(_pick(pt, "id", "case_id", "participant_id"))}
        row.update({k: v for k, v in pt.items() if k not in ("id", "case_id", "participant_id")})
        participants.append(row)
    # themes named by a mechanism take that mechanism
    by_id = {t["theme_id"]: t for t in themes}
    for m, tid in mech_theme_ids:
        t = by_id.get(tid)
        if t is None:
            report.add("C008", f"Mechanism {m!r} lists theme {tid!r}, which is not a theme.")
            continue
        have = _as_list(t["mechanism"])
        if m not in have:
            t["mechanism"] = ";".join(have + [m])
    for lk in _pick(data, "links", default=[]) or []:
        lk = _norm_keys(lk)
        links.append({"theme_id": str(_pick(lk, "theme_id", "theme")),
                      "target_type": str(_pick(lk, "target_type", "type", default="hypothesis")),
                      "target_id": str(_pick(lk, "target_id", "target", "hypothesis_id"))})
    sources = []
    raw_s = _pick(data, "sources", default=[]) or []
    if isinstance(raw_s, dict):
        raw_s = [dict(v or {}, id=k) if isinstance(v, dict) else {"id": k, "citation": v} for k, v in raw_s.items()]
    for k, sr in enumerate(raw_s):
        sr = _norm_keys(sr) if isinstance(sr, dict) else {"id": sr}
        sid = _pick(sr, "id", "source_id")
        if sid is None:
            report.add("C009", f"Source {k + 1} under `sources` has no `id`.", remedy="Give every source an id.")
            continue
        sources.append({"source_id": str(sid), "label": str(_pick(sr, "label", "short", default=sid)),
                        "citation": _pick(sr, "citation", "reference"), "doi": _pick(sr, "doi")})
    known_sources = {x["source_id"] for x in sources}
    for t in themes:
        if t["source_id"] is not None and t["source_id"] not in known_sources:
            report.add("C010", f"Theme {t['theme_id']!r} cites source {t['source_id']!r}, which is not under `sources`.",
                       remedy="List the source under `sources:` with an id, label and citation.")
    invented = _pick(data, "invented_excerpts", default=False)
    if not isinstance(invented, bool):
        report.add("C011", f"`invented_excerpts` is {invented!r}; expected true or false.")
        invented = True  # never let an unclear flag hide the note
    note = _pick(data, "excerpt_note", default="") or ""
    return _finish(themes, exemplars, links, mechs, name=str(_pick(data, "name", "title", "id", default="")),
                   source=source, report=report, elements=elements, constructs=constructs, participants=participants,
                   sources=sources, invented_excerpts=bool(invented), excerpt_note=str(note) if invented else "")


def _exemplar(e: dict, tid: str, text, default_id: str) -> dict:
    case = _pick(e, "case_id", "participant", "participant_id", "case")
    return {
        "excerpt_id": str(_pick(e, "id", "excerpt_id", default=default_id)),
        "theme_id": tid, "text": str(text),
        "source": _pick(e, "source", "document", "interview"),
        "case_id": None if case is None else str(case),
        "code": _pick(e, "code", "subtheme"),
        "mechanism": _pick(e, "mechanism"),
        "element": _pick(e, "element"),
    }


def _finish(themes, exemplars, links, mechs, *, name, source, report, elements=(), constructs=(),
            participants=(), sources=(), invented_excerpts=False, excerpt_note="") -> ThemeCodebook:
    import pandas as pd

    seen: set[str] = set()
    for t in themes:
        if t["theme_id"] in seen:
            report.add("C002", f"Theme id {t['theme_id']!r} appears more than once.", remedy="Make theme ids unique.")
        seen.add(t["theme_id"])
    for t in themes:
        if t["parent_id"] is not None and t["parent_id"] not in seen:
            report.add("C005", f"Theme {t['theme_id']!r} names parent {t['parent_id']!r}, which is not a theme.")
    # levels from parents when given flat
    by_id = {t["theme_id"]: t for t in themes}
    for t in themes:
        depth, p, guard = 0, t["parent_id"], 0
        while p is not None and p in by_id and guard < 100:
            depth, p, guard = depth + 1, by_id[p]["parent_id"], guard + 1
        t["level"] = depth
        if t["mechanism"] is None and t["parent_id"] in by_id:
            t["mechanism"] = by_id[t["parent_id"]]["mechanism"]
    for e in exemplars:
        if e["theme_id"] not in seen:
            report.add("C006", f"Exemplar {e['excerpt_id']!r} belongs to theme {e['theme_id']!r}, which is not a theme.")
    mech_ids = {m["mechanism_id"] for m in mechs}
    for t in themes:
        for m in _as_list(t["mechanism"]):
            if mechs and m not in mech_ids:
                report.add("C007", f"Theme {t['theme_id']!r} names mechanism {m!r}, which is not listed under `mechanisms`.",
                           severity="warning")
    if report.has_errors:
        raise CodebookError(
            f"Codebook {source or name!r} has {len(report.errors)} problem(s); see `.report` "
            f"(first: {report.errors[0].message})", report=report)
    tdf = pd.DataFrame(themes, columns=THEME_COLUMNS)
    tdf["level"] = tdf["level"].astype("int64")
    return ThemeCodebook(
        themes=tdf,
        exemplars=pd.DataFrame(exemplars, columns=EXEMPLAR_COLUMNS),
        links=pd.DataFrame(links, columns=LINK_COLUMNS).drop_duplicates(ignore_index=True),
        mechanisms=pd.DataFrame(mechs, columns=MECHANISM_COLUMNS),
        name=name, source=source,
        elements=pd.DataFrame(list(elements), columns=ELEMENT_COLUMNS),
        constructs=pd.DataFrame(list(constructs), columns=CONSTRUCT_COLUMNS),
        participants=pd.DataFrame(list(participants)) if participants else pd.DataFrame(columns=["case_id"]),
        sources=pd.DataFrame(list(sources), columns=SOURCE_COLUMNS),
        invented_excerpts=invented_excerpts, excerpt_note=excerpt_note,
    )


def read_theme_codebook(path, *, exemplars=None) -> ThemeCodebook:
    """Read a theme codebook from YAML (``.yaml``/``.yml``/``.json``) or CSV.

    Parameters
    ----------
    path : str or path-like
        The codebook file (see the module notes for both formats).
    exemplars : str or path-like, optional
        For CSV codebooks, a CSV of exemplar excerpts (``theme_id, text``
        and optionally ``excerpt_id, source, case_id``).

    Returns
    -------
    ThemeCodebook

    Raises
    ------
    CodebookError
        When the file is missing or unreadable, or its content has problems
        (all listed in ``report``).
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise CodebookError(f"The codebook file '{p}' does not exist; check the path.")
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        import yaml

        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CodebookError(f"The codebook '{p}' is not valid YAML/JSON ({exc}); fix the syntax.") from exc
        cb = theme_codebook_from_dict(data or {}, source=p.name)
        if exemplars is not None:
            extra = read_codebook_exemplars(exemplars)
            cb = replace(cb, exemplars=pd.concat([cb.exemplars, extra], ignore_index=True))
        return cb
    if suffix in (".csv", ".tsv", ".txt"):
        df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        df.columns = [c.strip().lower() for c in df.columns]
        missing = [c for c in ("theme_id", "name") if c not in df.columns]
        if missing:
            raise CodebookError(
                f"The codebook CSV '{p}' lacks column(s) {', '.join(missing)}; expected at least theme_id and name."
            )
        rows = []
        for r in df.to_dict("records"):
            rows.append({
                "id": r["theme_id"], "name": r["name"], "parent": r.get("parent_id") or None,
                "kind": r.get("kind") or None, "mechanism": r.get("mechanism") or None,
                "definition": r.get("definition") or None, "direction": r.get("direction") or None,
                "hypotheses": r.get("hypothesis_ids") or None, "constructs": r.get("constructs") or None,
            })
        data = {"themes": rows}
        cb = theme_codebook_from_dict(data, source=p.name)
        if exemplars is not None:
            cb = replace(cb, exemplars=read_codebook_exemplars(exemplars))
        return cb
    raise CodebookError(f"Cannot read codebook '{p}': suffix {p.suffix!r} is not .yaml, .yml, .json or .csv.")


def read_codebook_exemplars(path):
    """Read exemplar excerpts from CSV (``theme_id, text`` and optionally ``excerpt_id, source, case_id``)."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise CodebookError(f"The exemplars file '{p}' does not exist; check the path.")
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.columns = [c.strip().lower() for c in df.columns]
    missing = [c for c in ("theme_id", "text") if c not in df.columns]
    if missing:
        raise CodebookError(f"The exemplars CSV '{p}' lacks column(s) {', '.join(missing)}; expected theme_id and text.")
    out = pd.DataFrame({
        "excerpt_id": df["excerpt_id"] if "excerpt_id" in df else [f"{t}-{k + 1}" for k, t in enumerate(df["theme_id"])],
        "theme_id": df["theme_id"], "text": df["text"],
        "source": df["source"] if "source" in df else None,
        "case_id": df["case_id"] if "case_id" in df else None,
    }, columns=EXEMPLAR_COLUMNS)
    return out.replace({"": None})
