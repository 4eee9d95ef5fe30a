"""Draft dictionary tables from the metadata of source files, as a starting point.

The draft lists every source variable once as a target (same name), its
value labels as categories (declared missing codes with ``is_missing=yes``)
and a ``direct`` mapping for each study that has the variable (``impossible``
for those that do not). Where a study's value labels differ from the first
study's, a ``recode`` is proposed by matching the labels' text (codes whose
labels match nothing are named in the comment and the mapping is marked
partial). Each variable's measurement level is inferred from its values and
labels (:func:`infer_level`): a continuous score with one labelled code such
as -99 "not collected" is a number with a proposed missing code, not a
category, and its valid range is rounded outward (:func:`nice_range`).
Review before use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cimstats.errors import DictionaryError
from cimstats.io.survey import Survey
from cimstats import io as _io

_STORAGE_TO_TYPE = {"string": "string", "date": "string", "datetime": "string", "time": "string"}


def draft_dictionary(sources: Iterable, *, study_ids: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Draft ``studies``, ``variables``, ``categories`` and ``mappings`` from source files.

    Parameters
    ----------
    sources : iterable of path or Survey
        Source files (read with :func:`cimstats.read_survey`) or surveys.
    study_ids : iterable of str, optional
        One id per source (default: the file name without extension, or
        ``study1``, ``study2``... for surveys without a path).

    Returns
    -------
    dict of str to DataFrame
        The four tables, ready for :func:`write_draft`.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.io import Survey, VariableMeta
    >>> s = Survey(pd.DataFrame({"sex": [1, 2]}), {"sex": VariableMeta("sex", value_labels={1: "male", 2: "female"})})
    >>> t = draft_dictionary([s], study_ids=["A"])
    >>> t["categories"][["variable", "code", "label"]].values.tolist()
    [['sex', 1, 'male'], ['sex', 2, 'female']]
    """
    sources = list(sources)
    ids = list(study_ids) if study_ids is not None else None
    if ids is not None and len(ids) != len(sources):
        raise DictionaryError(f"`study_ids` has {len(ids)} ids for {len(sources)} sources; give one id per source.")
    surveys: list[tuple[str, Survey, str]] = []
    for i, src in enumerate(sources):
        if isinstance(src, Survey):
            s, fname = src, (Path(src.source.path).name if src.source.path else "")
        else:

            s, fname = _io.read_survey(src), Path(src).name
        sid = ids[i] if ids else (Path(fname).stem if fname else f"study{i + 1}")
        surveys.append((sid, s, fname))
    studies, variables, categories, mappings = [], [], [], []
    first: dict[str, tuple[str, dict]] = {}
    for sid, s, fname in surveys:
        studies.append({"study": sid, "file": fname, "format": Path(fname).suffix.lstrip(".").lower(), "country": "",
                        "wave": "", "language": "", "id_variable": "", "description": s.source.file_label or ""})
        for name in s.variables:
            m = s.variable(name)
            col = s.data[name]
            comment = "drafted from source metadata; review"
            if name not in first:
                first[name] = (sid, dict(m.value_labels))
                kind = infer_level(col, m)
                typ = kind.type
                lo = hi = ""
                if typ in ("integer", "decimal") and kind.bulk_min is not None:
                    lo, hi = nice_range(kind.bulk_min, kind.bulk_max, integer=typ == "integer")
                variables.append({"name": name, "type": typ, "label": m.label or "", "unit": "", "min": lo, "max": hi,
                                  "required": "no", "construct": "", "description": kind.note})
                for code, lab in m.value_labels.items():
                    declared = m.is_declared_missing(code)
                    proposed = not declared and code in kind.missing_candidates
                    if typ in ("integer", "decimal") and not (declared or proposed):
                        continue  # a labelled point on a continuous scale is not a category
                    categories.append({"variable": name, "code": _num(code), "label": lab, "order": "",
                                       "is_missing": "yes" if declared or proposed else "no"})
                for code in m.missing_codes:
                    if code not in m.value_labels and not isinstance(code, str):
                        categories.append({"variable": name, "code": _num(code), "label": f"missing ({_num(code)})",
                                           "order": "", "is_missing": "yes"})
            elif m.value_labels != first[name][1]:
                rule, args, status, comment = _propose_recode(m, first[name])
                mappings.append({"target": name, "study": sid, "rule": rule, "source": name, "arguments": args,
                                 "status": status, "comment": comment})
                continue
            mappings.append({"target": name, "study": sid, "rule": "direct", "source": name, "arguments": "",
                             "status": "complete", "comment": comment})
    present = {(m["target"], m["study"]) for m in mappings}
    for v in variables:
        for sid, _, _ in surveys:
            if (v["name"], sid) not in present:
                mappings.append({"target": v["name"], "study": sid, "rule": "impossible", "source": "", "arguments": "",
                                 "status": "impossible", "comment": "variable not found in this study; map it if it exists under another name"})
    return {"studies": pd.DataFrame(studies), "variables": pd.DataFrame(variables),
            "categories": pd.DataFrame(categories, columns=["variable", "code", "label", "order", "is_missing"]),
            "mappings": pd.DataFrame(mappings)}


#: words in a value label that mark a missing-value code
_MISSING_WORDS = re.compile(r"(don'?t know|do not know|refus|no answer|not answered|not collected|not asked|"
                            r"not applicable|\bn/?a\b|missing|unknown|weet niet|geen antwoord|onbekend|"
                            r"weiß nicht|keine angabe|ne sait pas|sans réponse|no sabe|no contesta)", re.I)


@dataclass(frozen=True)
class Level:
    """What a source variable's values and labels say about its measurement level."""

    type: str
    bulk_min: float | None = None
    bulk_max: float | None = None
    missing_candidates: tuple = ()
    note: str = ""


def infer_level(col: pd.Series, meta) -> Level:
    """Infer the measurement level of a variable from its values and value labels.

    A variable whose labelled codes cover its values is categorical (ordinal
    when its metadata says so). A numeric variable with many unlabelled values
    is continuous (integer or decimal) even when a few codes carry labels:
    labelled codes outside the bulk of its values (such as -99 "not
    collected") or whose label reads as missing ("don't know", "refused") are
    proposed as missing codes, and the note says so. Text is a string.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.io import VariableMeta
    >>> score = pd.Series([12.5, 40.0, 77.25, 93.0, 55.5, 61.0, 38.75, 84.0, 20.0, 49.5, 66.0, -99.0])
    >>> lv = infer_level(score, VariableMeta("score", value_labels={-99: "not collected"}))
    >>> lv.type, lv.missing_candidates, (lv.bulk_min, lv.bulk_max)
    ('decimal', (-99,), (12.5, 93.0))
    """
    labels = dict(meta.value_labels)
    if meta.storage in _STORAGE_TO_TYPE or not pd.api.types.is_numeric_dtype(col):
        return Level("string")
    vals = col.dropna().to_numpy(dtype=float)
    labelled = {float(c) for c in labels if isinstance(c, (int, float))}
    declared = {float(c) for c in meta.missing_codes if isinstance(c, (int, float))}
    wordy = {float(c) for c, lab in labels.items() if isinstance(c, (int, float)) and _MISSING_WORDS.search(str(lab))}
    bulk = vals[~np.isin(vals, list(labelled | declared))]
    n_unlabelled = len(np.unique(bulk))
    if labels and n_unlabelled < max(10, 2 * len(labels)):
        typ = "ordinal" if meta.measure == "ordinal" else "categorical"
        cands = tuple(_num(c) for c in labels if isinstance(c, (int, float)) and float(c) in wordy - declared)
        note = (f"codes {', '.join(map(str, cands))} are labelled like missing values and are proposed as missing; review"
                if cands else "")
        return Level(typ, missing_candidates=cands, note=note)
    if not len(bulk):
        return Level("decimal")
    lo, hi = float(bulk.min()), float(bulk.max())
    outside = {c for c in labelled - declared if c < lo or c > hi}
    cands = tuple(_num(c) for c in sorted(outside | (wordy - declared)))
    typ = "integer" if np.all(bulk == np.floor(bulk)) else "decimal"
    note = (f"labelled code(s) {', '.join(map(str, cands))} lie outside the bulk of the values or are labelled like "
            f"missing values, and are proposed as missing codes; review" if cands else "")
    return Level(typ, lo, hi, cands, note)


def nice_range(lo: float, hi: float, *, integer: bool) -> tuple:
    """A valid range that contains the observed values, rounded outward to a sensible precision.

    Examples
    --------
    >>> nice_range(12.5, 93.0, integer=False), nice_range(0.1234567, 0.9876, integer=False), nice_range(3, 17, integer=True)
    ((12, 93), (0.12, 0.99), (3, 17))
    """
    if integer:
        return int(math.floor(lo)), int(math.ceil(hi))
    scale = max(abs(lo), abs(hi), hi - lo)
    d = 0 if scale == 0 else int(min(6, max(0, 1 - math.floor(math.log10(scale)))))
    f = 10 ** d
    a, b = math.floor(lo * f) / f, math.ceil(hi * f) / f
    return (_num(float(round(a, d))), _num(float(round(b, d))))


def _propose_recode(meta, first: tuple[str, dict]) -> tuple[str, str, str, str]:
    """A recode from this study's codes to the first study's codes, matching value labels by text."""
    ref_sid, ref_labels = first
    by_label = {str(lab).strip().casefold(): code for code, lab in ref_labels.items()}
    pairs, unmatched = [], []
    for code, lab in meta.value_labels.items():
        if meta.is_declared_missing(code):
            continue
        tgt = by_label.get(str(lab).strip().casefold())
        if tgt is None:
            unmatched.append(f"{_num(code)} {lab!r}")
        else:
            pairs.append(f"{_num(code)}={_num(tgt)}")
    if not pairs:
        return ("direct", "", "undetermined",
                f"value labels differ from study {ref_sid} and none match by text: write a recode")
    args = "; ".join(pairs)
    if unmatched:
        return ("recode", args, "partial",
                f"recode proposed by matching value labels with study {ref_sid}; no match for {', '.join(unmatched)}: "
                "add categories or extend the recode; review")
    return "recode", args, "complete", f"recode proposed by matching value labels with study {ref_sid}; review"


def write_draft(tables: dict[str, pd.DataFrame], folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write drafted tables as CSV files into ``folder``; never overwrites unless asked."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{t}.csv" for t in tables]
    existing = [p.name for p in paths if p.exists()]
    if existing and not overwrite:
        raise DictionaryError(f"Folder '{folder}' already has {', '.join(existing)}; choose another folder or pass overwrite.")
    for (t, df), p in zip(tables.items(), paths):
        tmp = p.with_suffix(".csv.tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(p)
    return paths


def _num(v):
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    if isinstance(v, np.generic):
        return v.item()
    return v
