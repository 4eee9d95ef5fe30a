"""The qualitative inputs of the demo study: theme codebook and coded excerpts."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml

EXCERPT_COLUMNS = ["excerpt_id", "participant_id", "country", "surveyed", "theme", "theme_name", "code",
                   "code_name", "mechanism", "element", "excerpt", "invented"]


@lru_cache(maxsize=1)
def _load() -> dict:
    text = resources.files("cimstats.datasets").joinpath("data/themes.yaml").read_text(encoding="utf-8")
    book = yaml.safe_load(text)
    _check(book)
    return book


def _check(book: dict) -> None:
    """Every excerpt points at a listed participant, theme, code, mechanism and element; every theme,
    mechanism and element cites a listed source and says what the package added."""
    themes = {t["id"]: t for t in book["themes"]}
    sources = {s["id"] for s in book["sources"]}
    codes = {c["id"]: t["id"] for t in book["themes"] for c in t["codes"]}
    mechs = {m["id"] for m in book["mechanisms"]}
    elems = {e["id"] for e in book["collective_efficacy_elements"]}
    people = {p["id"] for p in book["participants"]}
    constructs = set(book["constructs"])
    problems = []
    cited = book["themes"] + book["mechanisms"] + book["collective_efficacy_elements"]
    for item in cited:
        if item.get("source") not in sources:
            problems.append(f"{item['id']} cites unlisted source {item.get('source')}")
        if not item.get("cimstats_adds"):
            problems.append(f"{item['id']} does not list what the package added (cimstats_adds)")
    for item in book["themes"] + book["collective_efficacy_elements"]:
        if not item.get("quote"):
            problems.append(f"{item['id']} lacks the source's own words (quote)")
    if not book.get("invented_excerpts") or not book.get("excerpt_note"):
        problems.append("the invented excerpts are not labelled (invented_excerpts, excerpt_note)")
    for t in book["themes"]:
        problems += [f"theme {t['id']} names unknown mechanism {m}" for m in t["mechanisms"] if m not in mechs]
        problems += [f"theme {t['id']} names unknown construct {c}" for c in t["constructs"] if c not in constructs]
    for m in book["mechanisms"]:
        problems += [f"mechanism {m['id']} names unknown theme {t}" for t in m["themes"] if t not in themes]
        problems += [f"mechanism {m['id']} names unknown construct {c}" for c in m["constructs"] if c not in constructs]
    for x in book["excerpts"]:
        if x["participant"] not in people:
            problems.append(f"excerpt {x['id']} names unlisted participant {x['participant']}")
        if codes.get(x["code"]) != x["theme"]:
            problems.append(f"excerpt {x['id']} has code {x['code']} outside theme {x['theme']}")
        if x["mechanism"] not in mechs:
            problems.append(f"excerpt {x['id']} names unknown mechanism {x['mechanism']}")
        if x.get("element") is not None and x["element"] not in elems:
            problems.append(f"excerpt {x['id']} names unknown element {x['element']}")
    if problems:  # pragma: no cover - guards the shipped file
        raise ValueError("The shipped theme codebook is inconsistent: " + "; ".join(problems) + ".")


def theme_codebook() -> dict:
    """The theme codebook of the demo study (package data ``data/themes.yaml``).

    Returns
    -------
    dict
        ``sources`` (the two published syntheses the codebook cites:
        ``vassilev2014``, the 2014 metasynthesis that gives the three themes
        and the three network mechanisms with their definitions, and
        ``vassilev2019``, the collective-efficacy meta-synthesis that gives
        the three central elements of collective efficacy), ``themes`` (id,
        key, name, ``source``, ``quote``: the source's own words,
        description, direction, linked mechanisms and constructs, codes),
        ``mechanisms`` (id, name, ``source``, definition quoted from the
        source, themes, constructs, quantitative expectation),
        ``collective_efficacy_elements`` (timing, trust, legitimising, each
        with ``source`` and ``quote``), ``constructs`` (harmonised variables
        each construct uses), ``participants`` (id, country, surveyed) and
        ``excerpts``. Each theme, mechanism and element lists under
        ``cimstats_adds`` the fields that are the package's own (not the
        source's): descriptions, codes, directions, construct links and
        quantitative expectations. Every excerpt is invented for the
        synthetic demo study (``invented_excerpts: true``), written in
        English; no interviews were done.

    Examples
    --------
    >>> from cimstats.datasets import theme_codebook
    >>> book = theme_codebook()
    >>> [m["id"] for m in book["mechanisms"]]
    ['network_navigation', 'negotiation', 'collective_efficacy']
    >>> [e["name"] for e in book["collective_efficacy_elements"]][0]
    'Timing of engagement with others'
    """
    return copy.deepcopy(_load())


def theme_codebook_text() -> str:
    """The shipped YAML text of the theme codebook (written as ``themes.yaml`` by the demo)."""
    return resources.files("cimstats.datasets").joinpath("data/themes.yaml").read_text(encoding="utf-8")


def coded_excerpts() -> pd.DataFrame:
    """The coded excerpts as a table, one row per excerpt.

    Returns
    -------
    pandas.DataFrame
        Columns ``excerpt_id, participant_id, country, surveyed, theme,
        theme_name, code, code_name, mechanism, element, excerpt, invented``.
        ``surveyed`` is True when the participant id is also a row of the
        demo patient table; ``invented`` is always True.

    Examples
    --------
    >>> from cimstats.datasets import coded_excerpts
    >>> x = coded_excerpts()
    >>> bool(x["invented"].all()), sorted(x["theme"].unique())
    (True, ['T1', 'T2', 'T3'])
    """
    book = _load()
    themes = {t["id"]: t["name"] for t in book["themes"]}
    codes = {c["id"]: c["name"] for t in book["themes"] for c in t["codes"]}
    people = {p["id"]: p for p in book["participants"]}
    rows = []
    for x in book["excerpts"]:
        p = people[x["participant"]]
        rows.append({
            "excerpt_id": x["id"], "participant_id": x["participant"], "country": p["country"],
            "surveyed": bool(p["surveyed"]), "theme": x["theme"], "theme_name": themes[x["theme"]],
            "code": x["code"], "code_name": codes[x["code"]], "mechanism": x["mechanism"],
            "element": x.get("element"), "excerpt": x["text"], "invented": True,
        })
    return pd.DataFrame(rows, columns=EXCERPT_COLUMNS)
