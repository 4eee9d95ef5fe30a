"""Draft dictionary tables from the metadata of source files, as a starting point.

The draft lists every source variable once as a target (same name), its
value labels as categories (declared missing codes with ``is_missing=yes``)
and a ``direct`` mapping for each study that has the variable (``impossible``
for those that do not). Where a study's value labels differ from the first
study's, a ``recode`` is proposed by matching the labels' text (codes whose
labels match nothing are named in the comment and the mapping is marked
partial). Review before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cimstats.errors import DictionaryError
from cimstats.io.survey import Survey

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
            from cimstats import io as _io

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
                if m.value_labels:
                    typ = "ordinal" if m.measure == "ordinal" else "categorical"
                elif m.storage in _STORAGE_TO_TYPE or not pd.api.types.is_numeric_dtype(col):
                    typ = "string"
                else:
                    vals = col.dropna().to_numpy(dtype=float)
                    typ = "integer" if len(vals) and np.all(vals == np.floor(vals)) else "decimal"
                lo = hi = ""
                if typ in ("integer", "decimal") and col.notna().any():
                    lo, hi = _num(col.min()), _num(col.max())
                variables.append({"name": name, "type": typ, "label": m.label or "", "unit": "", "min": lo, "max": hi,
                                  "required": "no", "construct": "", "description": ""})
                for code, lab in m.value_labels.items():
                    categories.append({"variable": name, "code": _num(code), "label": lab, "order": "",
                                       "is_missing": "yes" if m.is_declared_missing(code) else "no"})
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
