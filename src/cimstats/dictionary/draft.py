"""Draft dictionary tables from the metadata of source files, as a starting point.

With one file, the draft lists every source variable once as a target (same
name), its value labels as categories (declared missing codes with
``is_missing=yes``) and a ``direct`` mapping. With several files, the
variables are matched across studies to one target per concept
(:mod:`cimstats.dictionary.matching`: names, variable labels, value labels and
measurement levels, with an optional translation table) and each other
study's variable gets a proposed rule: where its value labels differ from the
target's, a ``recode`` found by matching the labels' text (codes whose labels
match nothing are named in the comment and the mapping is marked partial); a
percentage onto a proportion gets a ``rescale``. Each mapping's comment holds
the match's confidence and evidence, also listed in a review table
(``draft_review.csv``); variables that match nothing stay study-specific
targets (``impossible`` in the other studies, with the reason). Each
variable's measurement level is inferred from its values and labels
(:func:`infer_level`): a continuous score with one labelled code such as -99
"not collected" is a number whose code is recoded to missing, not a category,
and its valid range is rounded outward (:func:`nice_range`). Review before use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cimstats.dictionary import matching as mt
from cimstats.errors import DictionaryError
from cimstats.io.survey import Survey
from cimstats import io as _io

_STORAGE_TO_TYPE = {"string": "string", "date": "string", "datetime": "string", "time": "string"}


class DraftTables(dict):
    """The drafted tables (``studies``, ``variables``, ``categories``, ``mappings``) and a review table.

    A dict of the four tables (so ``Dictionary.from_frames(**tables)`` works),
    with the review table as the attribute ``review``: one row per source
    variable with its proposed target, rule, confidence, score, the score of
    each signal and the evidence in words. :func:`write_draft` writes it as
    ``draft_review.csv`` beside the tables.
    """

    review: pd.DataFrame

    def __init__(self, tables, review: pd.DataFrame | None = None):
        super().__init__(tables)
        self.review = review if review is not None else pd.DataFrame(columns=REVIEW_COLUMNS)


#: columns of the review table written beside a draft
REVIEW_COLUMNS = ["target", "study", "source", "source_label", "role", "matched_to", "rule", "arguments", "status",
                  "confidence", "score", "name_score", "label_score", "value_labels_score", "level_score", "evidence"]
REVIEW_FILE = "draft_review.csv"


def draft_dictionary(sources: Iterable, *, study_ids: Iterable[str] | None = None, translations=None,
                     min_confidence="low") -> DraftTables:
    """Draft ``studies``, ``variables``, ``categories`` and ``mappings`` from source files.

    With one source, every variable becomes a target of the same name. With
    two or more, the variables of the studies are matched to one target per
    concept (:mod:`cimstats.dictionary.matching`): names, variable labels,
    value labels (after the optional translation table) and measurement
    levels are scored, and the Hungarian method assigns each variable to at
    most one target. The target takes its name, label and codes from the
    member whose texts needed the fewest translations (ties: the earliest
    file), so with a Dutch-to-English table the English study's names are
    kept. For the other studies a rule is proposed: ``direct``, a ``recode``
    matching value labels by text (swapped codes, reversed scales), a
    ``rescale`` between a proportion and a percentage, or a recode of an
    undeclared missing code such as -99 to NA. Each mapping's ``comment``
    holds the confidence and evidence; variables that match nothing stay
    study-specific targets, and the other studies' ``impossible`` rows say why.

    Parameters
    ----------
    sources : iterable of path or Survey
        Source files (read with :func:`cimstats.read_survey`) or surveys.
    study_ids : iterable of str, optional
        One id per source (default: the file name without extension, or
        ``study1``, ``study2``... for surveys without a path).
    translations : mapping or path, optional
        Words or phrases of the studies' languages mapped to one language
        (``{"geslacht": "sex", "meisje": "girl"}``), or a YAML file holding
        such a mapping (:func:`~cimstats.dictionary.matching.read_translations`).
    min_confidence : {"low", "medium", "high"} or float
        The lowest match score accepted (``low`` = 0.45, ``medium`` = 0.65,
        ``high`` = 0.85, or a number above 0 and at most 1).

    Returns
    -------
    DraftTables
        The four tables, ready for :func:`write_draft`, with the review table
        as ``.review``.

    Raises
    ------
    DictionaryError
        The study ids are not one per source or repeat, a file is given twice,
        the translation table cannot be read, or ``min_confidence`` is not valid.

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
    threshold = mt.threshold_of(min_confidence)
    if translations is None or isinstance(translations, dict):
        table = translations or {}
    else:
        table = mt.read_translations(translations)
    translate = mt.Translator(table)
    seen: dict = {}
    for i, src in enumerate(sources):
        if not isinstance(src, Survey):
            key = Path(src).resolve()
            if key in seen:
                raise DictionaryError(f"`sources` lists '{Path(src).name}' twice (positions {seen[key] + 1} and {i + 1}); "
                                      "give each file once.")
            seen[key] = i
    surveys: list[tuple[str, Survey, str]] = []
    for i, src in enumerate(sources):
        if isinstance(src, Survey):
            s, fname = src, (Path(src.source.path).name if src.source.path else "")
        else:

            s, fname = _io.read_survey(src), Path(src).name
        sid = ids[i] if ids else (Path(fname).stem if fname else f"study{i + 1}")
        surveys.append((sid, s, fname))
    if ids is None:  # two files named alike (a.sav, a.dta): their ids keep the extension
        stems = [sid for sid, _, _ in surveys]
        surveys = [(f"{sid}_{Path(fn).suffix.lstrip('.').lower()}" if fn and stems.count(sid) > 1 else sid, s, fn)
                   for sid, s, fn in surveys]
    dup = [sid for k, (sid, _, _) in enumerate(surveys) if sid in [x for x, _, _ in surveys[:k]]]
    if dup:
        raise DictionaryError(f"Two sources have the study id '{dup[0]}'; give `study_ids` with one distinct id per source.")
    studies = []
    order = {sid: k for k, (sid, _, _) in enumerate(surveys)}
    per_study = []
    for sid, s, fname in surveys:
        studies.append({"study": sid, "file": fname, "format": Path(fname).suffix.lstrip(".").lower(), "country": "",
                        "wave": "", "language": "", "id_variable": "", "description": s.source.file_label or ""})
        per_study.append((sid, [mt.features(sid, n, s.variable(n), infer_level(s.data[n], s.variable(n)), translate)
                                for n in s.variables]))
    groups, cache = mt.match(per_study, threshold)
    several = len(surveys) > 1
    # the member whose texts needed the fewest translations gives the target its name, label and codes
    anchors = [min(g.members.values(), key=lambda f: (f.n_translated, order[f.study])) for g in groups]
    names, used = [], set()
    for a in anchors:
        name = a.name
        if name in used:
            name = f"{a.name}_{a.study}"
            k = 2
            while name in used:
                name, k = f"{a.name}_{a.study}{k}", k + 1
        used.add(name)
        names.append(name)
    target_of = {id(f): n for g, n in zip(groups, names) for f in g.members.values()}
    variables, categories, mappings, review = [], [], [], []
    for g, a, name in zip(groups, anchors, names):
        m, kind = a.meta, a.level
        typ = kind.type
        lo = hi = ""
        members = [(sid, g.members[sid]) for sid, _, _ in surveys if sid in g.members]
        if typ in ("integer", "decimal") and kind.bulk_min is not None:
            lo_v, hi_v, integer = kind.bulk_min, kind.bulk_max, typ == "integer"
            for _, f in members:
                if f is a or f.level.type not in ("integer", "decimal") or f.level.bulk_min is None:
                    continue
                fac = mt.scale_factor(a, f) or 1.0
                lo_v, hi_v = min(lo_v, f.level.bulk_min * fac), max(hi_v, f.level.bulk_max * fac)
                integer = integer and f.level.type == "integer" and fac == 1.0
            typ = "integer" if integer else "decimal"
            lo, hi = nice_range(lo_v, hi_v, integer=integer)
        desc = kind.note
        if len(members) > 1:
            desc = "; ".join(x for x in (desc, f"matched across studies {', '.join(sid for sid, _ in members)}: "
                                                  "see the mappings' comments; review") if x)
        variables.append({"name": name, "type": typ, "label": m.label or "", "unit": "", "min": lo, "max": hi,
                          "required": "no", "construct": "", "description": desc})
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
        for (sid, s, _), (_, feats) in zip(surveys, per_study):
            f = g.members.get(sid)
            if f is None:
                mappings.append({"target": name, "study": sid, "rule": "impossible", "source": "", "arguments": "",
                                 "status": "impossible", "comment": _absent_reason(mt, g, feats, cache, target_of,
                                                                                  threshold, several)})
                continue
            row = {"target": name, "study": sid, "source": f.name, "source_label": f.label}
            if f is a:
                rule, args, status, comment = _anchor_rule(a, typ)
                if len(members) > 1:
                    comment = (f"target drafted from this variable; matched in {len(members) - 1} other "
                               f"stud{'y' if len(members) == 2 else 'ies'}; review") + comment
                    row.update(role="target", evidence="target takes this variable's name, label and codes")
                else:
                    comment = "drafted from source metadata; " + (_alone_reason(mt, a, per_study, cache, target_of, threshold)
                                                                   + "; " if several else "") + "review" + comment
                    row.update(role="study-specific",
                               evidence=(_alone_reason(mt, a, per_study, cache, target_of, threshold) if several
                                         else "only one study drafted"))
            else:
                ps = mt.score_pair(a, f)
                rule, args, status, comment = _member_rule(mt, a, f, typ, translate)
                conf = mt.confidence_of(ps.score)
                comment = (f"{comment}; matched to {a.study} '{a.name}': confidence {conf} ({ps.score:.2f}): "
                           f"{ps.evidence}")
                row.update(role="matched", matched_to=f"{a.study}:{a.name}", confidence=conf, score=round(ps.score, 3),
                           name_score=round(ps.name, 3), label_score=_r3(ps.label), value_labels_score=_r3(ps.value_labels),
                           level_score=round(ps.level, 3), evidence=ps.evidence)
            mappings.append({"target": name, "study": sid, "rule": rule, "source": f.name, "arguments": args,
                             "status": status, "comment": comment})
            row.update(rule=rule, arguments=args, status=status)
            review.append(row)
    tables = {"studies": pd.DataFrame(studies), "variables": pd.DataFrame(variables),
              "categories": pd.DataFrame(categories, columns=["variable", "code", "label", "order", "is_missing"]),
              "mappings": pd.DataFrame(mappings)}
    return DraftTables(tables, pd.DataFrame(review, columns=REVIEW_COLUMNS))


def _r3(x):
    return "" if x is None else round(x, 3)


def _anchor_rule(a, typ: str) -> tuple[str, str, str, str]:
    """The rule of the variable a target was drafted from: direct, or a recode of undeclared missing codes."""
    cands = a.level.missing_candidates
    if typ in ("integer", "decimal") and cands:
        codes = ", ".join(str(_num(c)) for c in cands)
        return ("recode", "; ".join(f"{_num(c)}=NA" for c in cands) + "; else=copy", "complete",
                f"; code(s) {codes} are not declared missing in the source but look like missing codes: set to missing")
    return "direct", "", "complete", ""


def _member_rule(mt, a, f, typ: str, translate) -> tuple[str, str, str, str]:
    """The rule proposed for a matched variable ``f`` of another study onto the target drafted from ``a``."""
    if typ in ("integer", "decimal"):
        fac = mt.scale_factor(a, f)
        cands = f.level.missing_candidates if f.level.type in ("integer", "decimal") else ()
        codes = ", ".join(str(_num(c)) for c in cands)
        if fac is not None:
            args = "from=0:100; to=0:1" if fac < 1 else "from=0:1; to=0:100"
            what = "a percentage onto a proportion" if fac < 1 else "a proportion onto a percentage"
            if cands:
                return ("rescale", args, "partial",
                        f"rescale proposed ({what}); code(s) {codes} look like missing codes but a rescale cannot set "
                        "them missing: declare them missing in the source file (they would fall outside the valid range)")
            return "rescale", args, "complete", f"rescale proposed ({what}); review"
        if cands:
            return ("recode", "; ".join(f"{_num(c)}=NA" for c in cands) + "; else=copy", "complete",
                    f"code(s) {codes} are not declared missing in the source but look like missing codes: set to missing")
        return "direct", "", "complete", "drafted from source metadata"
    if typ != "string" and f.meta.value_labels != a.meta.value_labels:
        rule, args, status, comment = _propose_recode(f.meta, (a.study, dict(a.meta.value_labels)),
                                                      norm=lambda t: translate(str(t))[0])
        same = rule == "recode" and status == "complete" and all(
            k.strip() == v.strip() for k, v in (p.split("=", 1) for p in args.split(";")))
        if same:  # every label matches the target's label of the same code (after translation)
            return "direct", "", "complete", f"value labels match study {a.study}'s under the same codes; review"
        return rule, args, status, comment
    return "direct", "", "complete", "drafted from source metadata"


def _absent_reason(mt, g, feats, cache, target_of, threshold, several) -> str:
    """Why a study has no variable for a target (the comment of its ``impossible`` row)."""
    best = mt.best_candidate(g, feats, cache) if several else None
    if best is None:
        return "variable not found in this study; map it if it exists under another name"
    f, ps = best
    mine = target_of.get(id(next(iter(g.members.values()))))
    other = target_of.get(id(f))
    if ps.score >= threshold and other != mine:
        return (f"variable not found in this study: the best candidate '{f.name}' (score {ps.score:.2f}) matched target "
                f"'{other}' better; map it if it exists under another name")
    return (f"variable not found in this study: the best candidate '{f.name}' scored {ps.score:.2f}, below the "
            f"threshold {threshold:.2f}; map it if it exists under another name")


def _alone_reason(mt, a, per_study, cache, target_of, threshold) -> str:
    """Why a variable matched nothing in the other studies (one clause per study)."""
    parts = []
    g = mt.Group({a.study: a})
    for sid, feats in per_study:
        if sid == a.study:
            continue
        best = mt.best_candidate(g, feats, cache)
        if best is None:
            parts.append(f"no variable of {sid} to compare")
            continue
        f, ps = best
        if ps.score >= threshold:
            parts.append(f"in {sid} '{f.name}' ({ps.score:.2f}) matched target '{target_of.get(id(f))}' better")
        else:
            parts.append(f"in {sid} the best candidate '{f.name}' scored {ps.score:.2f}, below {threshold:.2f}")
    return "matched no variable of the other studies (" + "; ".join(parts) + ")"


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


def _propose_recode(meta, first: tuple[str, dict], norm=None) -> tuple[str, str, str, str]:
    """A recode from this study's codes to the reference study's codes, matching value labels by text.

    ``norm`` turns a label into the text compared (default: trimmed and
    case-folded; the cross-study draft also translates it).
    """
    norm = norm or (lambda t: str(t).strip().casefold())
    ref_sid, ref_labels = first
    by_label = {}
    for code, lab in ref_labels.items():
        by_label.setdefault(norm(lab), code)
    pairs, unmatched = [], []
    for code, lab in meta.value_labels.items():
        if meta.is_declared_missing(code):
            continue
        tgt = by_label.get(norm(lab))
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
    """Write drafted tables as CSV files into ``folder``; never overwrites unless asked.

    The review table of a :class:`DraftTables` is written as ``draft_review.csv``
    (the dictionary reader ignores it).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{t}.csv" for t in tables]
    existing = [p.name for p in paths if p.exists()]
    if existing and not overwrite:
        raise DictionaryError(f"Folder '{folder}' already has {', '.join(existing)}; choose another folder or pass overwrite.")
    review = getattr(tables, "review", None)
    if review is not None:
        paths.append(folder / REVIEW_FILE)
        if paths[-1].exists() and not overwrite:
            raise DictionaryError(f"Folder '{folder}' already has {REVIEW_FILE}; choose another folder or pass overwrite.")
    frames = list(tables.values()) + ([review] if review is not None else [])
    for df, p in zip(frames, paths):
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
