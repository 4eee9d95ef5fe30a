"""Match the variables of several studies to one target per concept, with evidence.

Used by :func:`cimstats.dictionary.draft_dictionary` when two or more source
files are drafted together. Every pair of variables from two different
studies is scored on four signals:

``name``
    the variable names, normalised (case, ``_``/``-``, camelCase and digits
    split into words, optional translation) and compared by edit distance and
    word overlap; names that differ only in a number (``q1``/``q2``) score half.
``label``
    the variable labels, normalised and translated, compared by the overlap
    of their content words (small words such as "the", "van", "de" ignored).
``value labels``
    the texts of the value labels (missing-value codes left out), compared
    as sets: identical texts under different codes still match, and the code
    pattern is described (swapped codes, reversed scale, codes shifted).
``level``
    the measurement level and value range of :func:`~cimstats.dictionary.draft.infer_level`;
    a proportion (0-1) and a percentage (0-100) of the same thing agree.

The name and label give the *concept* score (labels count more when they
disagree with the name; identical names keep at least 0.75); value labels and
level *support* it: ``score = concept x (0.7 + 0.3 x support)``, between 0
and 1. Confidence is ``high`` from 0.85, ``medium`` from 0.65 and ``low``
from 0.45 (the default threshold below which variables are not matched).

Studies are matched in the order given: the second study's variables are
assigned to the first study's by the Hungarian method
(:func:`scipy.optimize.linear_sum_assignment`) on the scores above the
threshold, so one variable never matches two targets; each later study is
assigned in the same way to the targets built so far (a target scores as its
best-scoring member). Variables left unassigned become study-specific targets.

A translation table maps words or phrases of one language to another
(``geslacht: sex``, ``van de: of the``); it is applied to names, variable
labels and value labels of every study before comparing, whole words only,
longest phrase first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from cimstats.errors import DictionaryError

#: confidence levels and the lowest score each needs
CONFIDENCE = {"high": 0.85, "medium": 0.65, "low": 0.45}
#: largest translation table read (bytes)
MAX_TRANSLATION_BYTES = 5_000_000

_STOP = frozenset("""a an the of in on at to for and or is are was were by with from as per
de het een van op en in der die das und den dem des le la les du et
""".split())

_MISSING_LABEL = re.compile(r"(don'?t know|do not know|refus|no answer|not answered|not collected|not asked|"
                            r"not applicable|\bn/?a\b|missing|unknown|weet niet|geen antwoord|onbekend|"
                            r"weiß nicht|keine angabe|ne sait pas|sans réponse|no sabe|no contesta)", re.I)


def confidence_of(score: float) -> str:
    """``high``, ``medium``, ``low`` or ``none`` for a match score.

    Examples
    --------
    >>> confidence_of(0.9), confidence_of(0.7), confidence_of(0.5), confidence_of(0.2)
    ('high', 'medium', 'low', 'none')
    """
    for name, lo in CONFIDENCE.items():
        if score >= lo:
            return name
    return "none"


def threshold_of(min_confidence, *, argument: str = "`min_confidence`") -> float:
    """The lowest score matched for ``min_confidence`` (``low``, ``medium``, ``high`` or a number in 0-1).

    Examples
    --------
    >>> threshold_of("medium"), threshold_of(0.5), threshold_of("0.7")
    (0.65, 0.5, 0.7)
    """
    if min_confidence is None:
        return CONFIDENCE["low"]
    if isinstance(min_confidence, str):
        key = min_confidence.strip().lower()
        if key in CONFIDENCE:
            return CONFIDENCE[key]
        try:
            value = float(key)
        except ValueError:
            value = None
    elif isinstance(min_confidence, (int, float)) and not isinstance(min_confidence, bool):
        value = float(min_confidence)
    else:
        value = None
    if value is None or not (0.0 < value <= 1.0):
        raise DictionaryError(f"{argument} is {min_confidence!r}; expected low, medium, high or a number above 0 and "
                              "at most 1, so give one of those (e.g. medium or 0.7).")
    return value


# -- text normalisation and translation -------------------------------------------------
def _fold(text: str) -> str:
    """Case-folded text without accents, punctuation turned into spaces."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("%", " percent ")
    return " ".join(re.sub(r"[^\w]+|_", " ", text).split())


def name_words(name: str) -> str:
    """A variable name as words: ``pctCorrect_2`` -> ``pct correct 2``."""
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    s = re.sub(r"([A-Za-z])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([A-Za-z])", r"\1 \2", s)
    return _fold(s)


class Translator:
    """Replace words and phrases by their translation, whole words only, longest phrase first.

    Examples
    --------
    >>> t = Translator({"geslacht": "sex", "van de": "of the", "leerling": "pupil"})
    >>> t("Geslacht van de leerling")
    ('sex of the pupil', 3)
    """

    def __init__(self, table: Mapping[str, str] | None = None):
        self.table = {_fold(k): _fold(v) for k, v in (table or {}).items() if _fold(k)}
        keys = sorted(self.table, key=lambda k: (-len(k.split()), -len(k)))
        self._re = (re.compile(r"(?<!\S)(" + "|".join(re.escape(k) for k in keys) + r")(?!\S)") if keys else None)

    def __call__(self, text: str, *, name: bool = False) -> tuple[str, int]:
        """The normalised, translated text and the number of words or phrases translated."""
        s = name_words(text) if name else _fold(text)
        if self._re is None or not s:
            return s, 0
        n = 0

        def sub(m):
            nonlocal n
            n += 1
            return self.table[m.group(1)]

        return self._re.sub(sub, s), n


def read_translations(path, *, argument: str = "`translations`") -> dict[str, str]:
    """Read a translation table: a YAML (or JSON) mapping of words or phrases to their translation.

    Every key and value is read as text (``nee: no`` stays the word "no", not
    false). A nested mapping, a list or an empty file is refused.

    Parameters
    ----------
    path : str or Path
        The ``.yaml``/``.yml``/``.json`` file.
    argument : str
        How the caller names the argument in error messages (the CLI passes
        ``--translations``).

    Raises
    ------
    DictionaryError
        The file is missing, too large, not UTF-8, not valid YAML, or not a flat mapping of text to text.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise DictionaryError(f"{argument} names '{p}', which is not a file; give a YAML file mapping words to their "
                              "translation (e.g. 'geslacht: sex').")
    if p.stat().st_size > MAX_TRANSLATION_BYTES:
        raise DictionaryError(f"{argument} file '{p.name}' has {p.stat().st_size} bytes, more than the "
                              f"{MAX_TRANSLATION_BYTES} a translation table may have; keep only the words the labels use.")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # every scalar stays text
    except UnicodeDecodeError as exc:
        raise DictionaryError(f"{argument} file '{p.name}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML.") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise DictionaryError(f"{argument} file '{p.name}' is not valid YAML{line}; write one 'word: translation' "
                              "pair per line (quote texts holding ':' or '#').") from None
    if not isinstance(data, dict) or not data:
        kind = "empty" if not data else f"a {type(data).__name__}"
        raise DictionaryError(f"{argument} file '{p.name}' is {kind}, not a mapping of words to translations; write one "
                              "'word: translation' pair per line.")
    out = {}
    for k, v in data.items():
        if not isinstance(v, str) or not isinstance(k, str):
            raise DictionaryError(f"{argument} file '{p.name}' maps '{k}' to {type(v).__name__} {str(v)[:40]!r}, not to a "
                                  "text; write one 'word: translation' pair per line, without nesting or lists.")
        if not _fold(k):
            raise DictionaryError(f"{argument} file '{p.name}' has the key {k!r}, which has no letters or digits; "
                                  "remove it.")
        out[k] = v
    return out


# -- features and scores ----------------------------------------------------------------
@dataclass
class Features:
    """What is compared of one source variable."""

    study: str
    name: str
    label: str
    level: object  # draft.Level
    name_text: str
    name_raw: str
    label_words: tuple
    value_labels: dict  # code -> normalised translated label text (valid codes only)
    vl_raw: dict
    n_translated: int = 0
    vl_translated: bool = False
    label_translated: bool = False
    hints: frozenset = frozenset()
    meta: object = None


def features(study: str, name: str, meta, level, translate: Translator) -> Features:
    """Normalised name, label words, value-label texts and level of one variable."""
    nt, n1 = translate(name, name=True)
    raw = name_words(name)
    lt, n2 = translate(meta.label or "")
    vl, vl_raw, n3 = {}, {}, 0
    for code, lab in meta.value_labels.items():
        if meta.is_declared_missing(code) or _MISSING_LABEL.search(str(lab)) or code in level.missing_candidates:
            continue
        t, k = translate(str(lab))
        n3 += k
        vl[code] = t
        vl_raw[code] = _fold(lab)
    words = tuple(w for w in lt.split() if w not in _STOP)
    hints = frozenset(w for w in (nt + " " + lt).split() if w in _SCALE_WORDS)
    return Features(study, name, meta.label or "", level, nt, raw, words, vl, vl_raw, n1 + n2 + n3, n3 > 0, n2 > 0, hints,
                    meta)


_SCALE_WORDS = {"percent", "percentage", "pct", "proportion", "prop", "fraction", "share", "ratio", "rate"}


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions).

    Examples
    --------
    >>> levenshtein("kitten", "sitting")
    3
    """
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@lru_cache(maxsize=200_000)
def _sim(a: str, b: str) -> float:
    """1 - edit distance / length of the longer text (words repeat across labels: cached)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def _dice(a, b) -> float:
    """Word overlap 2m / (|a| + |b|); words of 4+ letters count as the same at edit similarity 0.8 (plurals, typos)."""
    a, b = list(dict.fromkeys(a)), list(dict.fromkeys(b))
    if not a or not b:
        return 0.0
    left = list(b)
    m = 0
    for w in a:
        hit = next((x for x in left if x == w), None)
        if hit is None and len(w) >= 4:
            hit = next((x for x in left if len(x) >= 4 and abs(len(x) - len(w)) <= 0.2 * max(len(x), len(w))
                        and _sim(w, x) >= 0.8), None)
        if hit is not None:
            left.remove(hit)
            m += 1
    return 2 * m / (len(a) + len(b))


def name_similarity(a: str, b: str) -> float:
    """Similarity of two normalised names (words separated by spaces), 0-1.

    Examples
    --------
    >>> name_similarity("sex", "sex"), name_similarity("q 1", "q 2"), round(name_similarity("pupil id", "pupil nr"), 2)
    (1.0, 0.25, 0.71)
    """
    ja, jb = a.replace(" ", ""), b.replace(" ", "")
    if ja == jb:
        return 1.0
    s = max(_sim(ja, jb), _dice(a.split(), b.split()))
    da, db = {w for w in a.split() if w.isdigit()}, {w for w in b.split() if w.isdigit()}
    if (da or db) and da != db:
        s *= 0.5
    return s


def _is_prop(lv) -> bool:
    return lv.type == "decimal" and lv.bulk_min is not None and lv.bulk_min >= 0 and lv.bulk_max <= 1


def _is_pct(lv) -> bool:
    return lv.type in ("integer", "decimal") and lv.bulk_min is not None and lv.bulk_min >= 0 and 1 < lv.bulk_max <= 100


def scale_factor(target: Features, source: Features) -> float | None:
    """100 or 0.01 when one is a proportion (0-1) and the other a percentage (0-100), else None.

    The factor turns the source's values into the target's: a percentage
    source onto a proportion target is multiplied by 0.01.
    """
    if _is_prop(target.level) and _is_pct(source.level) and (source.hints or target.hints):
        return 0.01
    if _is_pct(target.level) and _is_prop(source.level) and (source.hints or target.hints):
        return 100.0
    return None


_FAMILY = {"categorical": "cat", "ordinal": "cat", "integer": "num", "decimal": "num", "string": "text"}


def level_similarity(a: Features, b: Features) -> tuple[float, str]:
    """How well the measurement levels and value ranges agree, with a short description."""
    la, lb = a.level, b.level
    fa, fb = _FAMILY[la.type], _FAMILY[lb.type]
    if fa != fb:
        return (0.0 if "text" in (fa, fb) else 0.3), f"levels differ ({la.type} vs {lb.type})"
    if fa == "cat":
        return (1.0, f"both {la.type}") if la.type == lb.type else (0.9, f"{la.type} vs {lb.type}")
    if fa == "text":
        return 1.0, "both text"
    f = scale_factor(a, b)
    if f is not None:
        return 1.0, "a proportion (0-1) and a percentage (0-100)"
    if la.bulk_min is None or lb.bulk_min is None:
        return 0.5, "no values to compare"
    lo, hi = max(la.bulk_min, lb.bulk_min), min(la.bulk_max, lb.bulk_max)
    union = max(la.bulk_max, lb.bulk_max) - min(la.bulk_min, lb.bulk_min)
    r = 1.0 if union == 0 else max(0.0, hi - lo) / union
    s = 0.5 + 0.5 * r
    if la.type != lb.type:
        s *= 0.9
    return s, f"value ranges overlap {r:.2f}"


def code_pattern(pairs: dict) -> str:
    """Describe a mapping of source codes to target codes: identical, swapped, reversed, shifted or differ.

    Examples
    --------
    >>> code_pattern({0: 2, 1: 1}), code_pattern({1: 5, 2: 4, 3: 3, 4: 2, 5: 1}), code_pattern({0: 1, 1: 2})
    ('swapped codes', 'reversed scale', 'codes shifted')
    """
    if not all(isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for kv in pairs.items() for x in kv):
        return "identical codes" if all(k == v for k, v in pairs.items()) else "codes differ"  # text codes
    if all(float(k) == float(v) for k, v in pairs.items()):
        return "identical codes"
    src = sorted(pairs, key=float)
    tgt = [float(pairs[k]) for k in src]
    if len(src) >= 2 and all(x > y for x, y in zip(tgt, tgt[1:])):
        return "swapped codes" if len(src) == 2 else "reversed scale"
    if len(src) >= 2 and all(x < y for x, y in zip(tgt, tgt[1:])):
        return "codes shifted"
    return "codes differ"


def value_label_similarity(target: Features, source: Features) -> tuple[float | None, str, dict]:
    """Agreement of the value-label texts, a description, and the source-code -> target-code pairs."""
    if not target.value_labels or not source.value_labels:
        return None, "", {}
    by_text = {}
    for c, t in target.value_labels.items():
        by_text.setdefault(t, c)
    pairs = {c: by_text[t] for c, t in source.value_labels.items() if t in by_text}
    ta, tb = set(target.value_labels.values()), set(source.value_labels.values())
    score = len(ta & tb) / len(ta | tb)
    via = " after translation" if (target.vl_translated or source.vl_translated) else ""
    if not pairs:
        return score, "no value label in common", pairs
    pattern = code_pattern(pairs)
    if score == 1.0:
        if pattern == "identical codes":
            return score, f"value labels identical{via}", pairs
        return score, f"value labels identical{via}, recoded ({pattern})", pairs
    return score, f"{len(ta & tb)} of {len(ta | tb)} value labels in common{via} ({pattern})", pairs


@dataclass
class PairScore:
    """The score of one pair of variables and its parts."""

    score: float
    name: float
    label: float | None
    value_labels: float | None
    level: float
    evidence: str
    parts: dict = field(default_factory=dict)


def score_pair(target: Features, source: Features) -> PairScore:
    """Score how likely ``source`` measures the same concept as ``target`` (0-1), with the evidence in words."""
    name = name_similarity(target.name_text, source.name_text)
    name_via = ((target.name_text != target.name_raw or source.name_text != source.name_raw)
                and name > name_similarity(target.name_raw, source.name_raw))
    label = None
    if target.label_words and source.label_words:
        label = _dice(target.label_words, source.label_words)
    if label is None:
        concept = name
    elif name == 1.0:
        concept = 0.75 + 0.25 * label
    else:
        concept = max(label, 0.6 * label + 0.4 * name)
    vl, vl_text, _ = value_label_similarity(target, source)
    lev, lev_text = level_similarity(target, source)
    support = lev if vl is None else 0.6 * vl + 0.4 * lev
    score = concept * (0.7 + 0.3 * support)
    ev = [f"name {name:.2f}" + (" via translation" if name_via else "")]
    if label is not None:
        ev.append(f"label {label:.2f}" + (" via translation" if (target.label_translated or source.label_translated) else ""))
    if vl is not None:
        ev.append(vl_text)
    ev.append(lev_text)
    return PairScore(float(score), name, label, vl, lev, ", ".join(ev))


# -- assignment -------------------------------------------------------------------------
@dataclass
class Group:
    """One proposed target: its members (study -> Features) and each member's score against the group."""

    members: dict = field(default_factory=dict)  # study -> Features
    scores: dict = field(default_factory=dict)  # study -> (PairScore, Features it matched best)


def match(studies: list[tuple[str, list[Features]]], threshold: float) -> tuple[list[Group], dict]:
    """Group the variables of several studies into targets (see the module text).

    Returns
    -------
    groups : list of Group
        In order of first appearance (study order, then variable order).
    pair_scores : dict
        ``(id(a), id(b)) -> PairScore`` for every scored pair (a from an earlier study).
    """
    from scipy.optimize import linear_sum_assignment

    groups: list[Group] = []
    cache: dict = {}
    for k, (sid, feats) in enumerate(studies):
        if k == 0 or not groups or not feats:
            for f in feats:
                groups.append(Group({sid: f}))
            continue
        best = np.zeros((len(groups), len(feats)))
        who: dict = {}
        for gi, g in enumerate(groups):
            for vi, f in enumerate(feats):
                top = None
                for m in g.members.values():
                    ps = score_pair(m, f)
                    cache[(id(m), id(f))] = ps
                    if top is None or ps.score > top[0].score:
                        top = (ps, m)
                best[gi, vi] = top[0].score
                who[(gi, vi)] = top
        # maximise the summed excess over the threshold: two mediocre pairs never beat one clear match
        gain = np.where(best >= threshold, best - threshold + 1e-9, 0.0)
        rows, cols = linear_sum_assignment(-gain)
        taken = set()
        for gi, vi in zip(rows, cols):
            if best[gi, vi] >= threshold:
                groups[gi].members[sid] = feats[vi]
                groups[gi].scores[sid] = who[(gi, vi)]
                taken.add(vi)
        for vi, f in enumerate(feats):
            if vi not in taken:
                groups.append(Group({sid: f}))
    # list targets in study order, then variable order
    pos = {id(f): (k, i) for k, (_, feats) in enumerate(studies) for i, f in enumerate(feats)}
    groups.sort(key=lambda g: min(pos[id(f)] for f in g.members.values()))
    return groups, cache


def best_candidate(group: Group, feats: list[Features], cache: dict) -> tuple[Features, PairScore] | None:
    """The variable of one study that scored highest against a target's members (None when none was scored)."""
    top = None
    for m in group.members.values():
        for f in feats:
            ps = cache.get((id(m), id(f))) or cache.get((id(f), id(m)))
            if ps is not None and (top is None or ps.score > top[1].score):
                top = (f, ps)
    return top
