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
    """Every excerpt points at a listed participant, theme, code, mechanism and element."""
    themes = {t["id"]: t for t in book["themes"]}
    codes = {c["id"]: t["id"] for t in book["themes"] for c in t["codes"]}
    mechs = {m["id"] for m in book["mechanisms"]}
    elems = {e["id"] for e in book["collective_efficacy_elements"]}
    people = {p["id"] for p in book["participants"]}
    constructs = set(book["constructs"])
    problems = []
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
        ``source`` (the published line-of-argument synthesis), ``themes``
        (id, key, name, description, linked mechanisms and constructs, codes),
        ``mechanisms`` (id, name, definition, themes, constructs, quantitative
        expectation), ``collective_efficacy_elements`` (timing, trust,
        legitimising), ``constructs`` (harmonised variables each construct
        uses), ``participants`` (id, country, surveyed) and ``excerpts``.
        Every excerpt is invented for the synthetic demo study.

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
