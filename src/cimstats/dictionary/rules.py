"""The rule grammar: parse and check one mapping rule, then apply it (vectorised).

A mapping row names a ``rule``, its ``source`` variable(s) (comma-separated)
and its ``arguments``. Arguments are ``;``-separated; most rules take
``key=value`` pairs, ``recode`` takes ``SOURCE=TARGET`` pairs and
``case_when`` takes a condition list (see :mod:`cimstats.dictionary.expr`).
Values are numbers, quoted text, ranges ``low:high`` (inclusive), lists
``a, b, c``, ``NA`` (missing) or bare words (units, directions).

==============  =========  ======================================================
rule            sources    arguments
==============  =========  ======================================================
``direct``      1          none: the value is copied
``recode``      1          ``1=2; 2=1; 3,4=3; 5:9=4; 'Female'=2; 99=NA; 98=9;
                           else=NA`` (``else=copy`` keeps other values). A quoted
                           source is a value label of a labelled source (or the
                           text of a text source); a quoted target is a category
                           label of the target. Sources that are declared missing
                           codes of the source variable are matched against the
                           code the cell held, so ``98=9`` maps a source missing
                           code to a target missing code explicitly.
``reverse``     1          ``min=1; max=5`` (default: the target's valid range):
                           ``min + max - x``
``rescale``     1          ``from=1:7; to=0:100`` or ``scale=2.5; shift=-10``
``convert``     1          ``from=%; to=mmol/mol`` (``to`` defaults to the
                           target's unit); HbA1c ``%`` (NGSP/DCCT) <->
                           ``mmol/mol`` (IFCC) by IFCC = (NGSP - 2.15) x 10.929;
                           mass ``kg g lb st``; length ``m cm mm in ft``
``cut``         1          ``breaks=0, 18.5, 25, 30, inf; labels=1,2,3,4;
                           closed=right`` (``(a, b]``; ``left`` for ``[a, b)``)
``quantile``    1          ``n=5; direction=higher_more_deprived`` (or
                           ``lower_more_deprived``); optional ``by=wave`` (source
                           variables), ``per=area`` (rank each area once),
                           ``index=IMD; version=2019; vintage=LSOA 2011``.
                           Always within study; 1 = most deprived.
``sum``         >= 1       ``min_valid=4; prorate=yes``
``mean``        >= 1       ``min_valid=4``
``case_when``   >= 1       ``when age < 18 then 1; when sex == 'Female' then 2;
                           else 3``
``id``          >= 0       ``prefix=EN-; width=4`` (one source), or
                           ``template=EN-{1:4}-A{2:2}``: text with fields
                           ``{k}`` / ``{k:w}`` = source k, zero-padded to w;
                           with no source the rows are numbered 1, 2, ...
``constant``    0          ``value=EN``
``impossible``  0          none: the study cannot provide the target
==============  =========  ======================================================

Valid ranges of numeric arguments (checked when the dictionary is read,
before any data are touched; code ``R114`` unless noted):

* ``reverse`` ``min``/``max``, ``rescale`` ``from``/``to``/``scale``/``shift``:
  finite numbers of magnitude at most 10^15.
* ``cut``: 2 to 1,000 ``breaks`` (``-inf``/``inf`` allowed at the ends,
  code ``R108``); labels finite numbers, quoted text or ``NA``.
* ``quantile`` ``n``: a whole number from 2 to 1,000 (code ``R109``).
* ``sum``/``mean`` ``min_valid``: a whole number from 1 to the number of
  sources (code ``R102``).
* ``id`` ``width`` and template field widths ``{k:w}``: whole numbers from
  1 (0 for a field: no padding) to 64; template fields ``{k}`` number a
  source from 1 to the number of sources (code ``R102``).
* ``constant`` ``value``: a finite number, quoted text or ``NA``; text only
  for a ``string`` target (code ``R113``).
* ``case_when``: parentheses and ``not`` nested at most 100 deep (code
  ``R110``; see :mod:`cimstats.dictionary.expr`).

Examples
--------
>>> r = parse_rule("recode", "q1", "1=2; 2=1; 99=NA")
>>> r.name, r.sources, r.pairs[0]
('recode', ('q1',), (RecodeKey(kind='value', value=1.0, high=None), 2.0))
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cimstats.dictionary import expr as _expr
from cimstats.dictionary.codes import REASON_CODE

RULES = ("direct", "recode", "reverse", "rescale", "convert", "cut", "quantile", "sum", "mean",
         "case_when", "id", "constant", "impossible")

#: allowed keys per key=value rule; True marks required keys
_KEYS: dict[str, dict[str, bool]] = {
    "direct": {},
    "reverse": {"min": False, "max": False},
    "rescale": {"from": False, "to": False, "scale": False, "shift": False},
    "convert": {"from": True, "to": False},
    "cut": {"breaks": True, "labels": False, "closed": False},
    "quantile": {"n": True, "direction": True, "by": False, "per": False, "index": False,
                 "version": False, "vintage": False},
    "sum": {"min_valid": False, "prorate": False},
    "mean": {"min_valid": False},
    "id": {"prefix": False, "width": False, "template": False},
    "constant": {"value": True},
    "impossible": {},
}
_N_SOURCES = {"direct": (1, 1), "recode": (1, 1), "reverse": (1, 1), "rescale": (1, 1), "convert": (1, 1),
              "cut": (1, 1), "quantile": (1, None), "sum": (1, None), "mean": (1, None),
              "case_when": (1, None), "id": (0, None), "constant": (0, 0), "impossible": (0, 0)}
NUMERIC_RULES = {"reverse", "rescale", "convert", "cut", "quantile", "sum", "mean"}

DIRECTIONS = ("higher_more_deprived", "lower_more_deprived")

# unit -> (dimension, factor to the dimension's base unit); HbA1c handled apart
_UNITS = {
    "kg": ("mass", 1.0), "g": ("mass", 0.001), "lb": ("mass", 0.45359237), "st": ("mass", 6.35029318),
    "m": ("length", 1.0), "cm": ("length", 0.01), "mm": ("length", 0.001), "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "%": ("hba1c", "ngsp"), "mmol/mol": ("hba1c", "ifcc"),
}
_UNIT_ALIASES = {"percent": "%", "ngsp": "%", "dcct": "%", "ifcc": "mmol/mol", "kilogram": "kg",
                 "kilograms": "kg", "pound": "lb", "pounds": "lb", "lbs": "lb", "stone": "st",
                 "metre": "m", "meter": "m", "metres": "m", "centimetre": "cm", "cm.": "cm",
                 "inch": "in", "inches": "in", "feet": "ft", "foot": "ft", "gram": "g", "grams": "g"}


def canonical_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    u = str(unit).strip()
    return _UNIT_ALIASES.get(u.lower(), u if u in _UNITS else u.lower() if u.lower() in _UNITS else u)


def convert_units(x: np.ndarray, from_unit: str, to_unit: str) -> np.ndarray:
    """Convert values between units of mass, length or HbA1c.

    Examples
    --------
    >>> convert_units(np.array([6.5, 7.0]), "%", "mmol/mol").round(1).tolist()
    [47.5, 53.0]
    >>> convert_units(np.array([154.0]), "lb", "kg").round(2).tolist()
    [69.85]
    """
    f, t = canonical_unit(from_unit), canonical_unit(to_unit)
    if f not in _UNITS or t not in _UNITS or _UNITS[f][0] != _UNITS[t][0]:
        raise ValueError(f"cannot convert '{from_unit}' to '{to_unit}'")
    dim = _UNITS[f][0]
    x = np.asarray(x, dtype=float)
    if f == t:
        return x.copy()
    if dim == "hba1c":
        return (x - 2.15) * 10.929 if f == "%" else x / 10.929 + 2.15
    return x * (_UNITS[f][1] / _UNITS[t][1])


# -- argument parsing ----------------------------------------------------------------
class RuleSyntaxError(ValueError):
    def __init__(self, code: str, message: str, remedy: str | None = None):
        super().__init__(message)
        self.code = code
        self.remedy = remedy


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, buf, quote, depth = [], [], None, 0
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == "(":
            depth += 1
            buf.append(ch)
        elif ch == ")":
            depth -= 1
            buf.append(ch)
        elif ch == sep and depth == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise RuleSyntaxError("R102", f"a quote ({quote}) is not closed in '{text}'",
                              "Close the quoted text or remove the stray quote.")
    parts.append("".join(buf))
    return [p.strip() for p in parts]


_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_scalar(text: str) -> Any:
    """A number, quoted text, ``NA`` (None), ``inf`` or a bare word."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if _NUM.match(t):
        return float(t)
    low = t.lower()
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    if low == "na":
        return None
    return t


def _kv(args: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in split_top(args or "", ";"):
        if not part:
            continue
        if "=" not in part:
            raise RuleSyntaxError("R102", f"'{part}' is not a key=value pair",
                                  "Write arguments as key=value separated by ';', e.g. 'min=1; max=5'.")
        k, v = part.split("=", 1)
        k = k.strip().lower()
        if k in out:
            raise RuleSyntaxError("R102", f"argument '{k}' is given twice", "Keep one value per argument.")
        out[k] = v.strip()
    return out


#: largest magnitude of a numeric rule argument (min, max, scale, shift, rescale ranges)
MAX_MAGNITUDE = 1e15
#: largest number of quantile groups (``quantile n=``)
MAX_QUANTILES = 1000
#: largest zero-padding width of an identifier (``id width=``, template ``{k:w}``)
MAX_ID_WIDTH = 64
#: largest number of ``cut`` breaks
MAX_BREAKS = 1000


def _number(key: str, text: str) -> float:
    v = parse_scalar(text)
    if not isinstance(v, float):
        raise RuleSyntaxError("R102", f"argument '{key}' is '{text}', which is not a number",
                              f"Give a number for '{key}'.")
    return v


def _bounded(key: str, text: str) -> float:
    """A finite number of magnitude at most :data:`MAX_MAGNITUDE` (code R114 otherwise)."""
    v = _number(key, text)
    if not math.isfinite(v) or abs(v) > MAX_MAGNITUDE:
        raise RuleSyntaxError("R114", f"argument '{key}' is '{text.strip()[:40]}', outside the valid range "
                                      f"-1e15 to 1e15", f"Give a finite number for '{key}'.")
    return v


def _range(key: str, text: str) -> tuple[float, float]:
    if ":" not in text:
        raise RuleSyntaxError("R102", f"argument '{key}' is '{text}'; expected a range low:high",
                              f"Write '{key}=1:5'.")
    lo, hi = text.split(":", 1)
    return _bounded(key, lo), _bounded(key, hi)


def _bool(key: str, text: str) -> bool:
    t = text.strip().lower()
    if t in ("yes", "true", "1", "y"):
        return True
    if t in ("no", "false", "0", "n"):
        return False
    raise RuleSyntaxError("R102", f"argument '{key}' is '{text}'; expected yes or no", f"Write '{key}=yes' or '{key}=no'.")


@dataclass(frozen=True)
class RecodeKey:
    kind: str  # value, label, range, else
    value: Any = None
    high: Any = None


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``params`` hold checked arguments; ``pairs`` hold recode pairs."""

    name: str
    sources: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    pairs: tuple = ()
    case: Any = None  # expr.CaseWhen
    text: str = ""

    def produced_codes(self) -> list:
        """Codes this rule can write (for checking against target categories), when knowable."""
        if self.name == "recode":
            return [t for _, t in self.pairs if t is not None and t != "copy"]
        if self.name == "cut":
            return list(self.params["labels"])
        if self.name == "quantile":
            return [float(i) for i in range(1, int(self.params["n"]) + 1)]
        if self.name == "case_when":
            return [v.value for v in self.case.values() if isinstance(v, _expr.Lit) and v.value is not None]
        if self.name == "constant":
            return [self.params["value"]]
        return []

    def describe(self) -> str:
        src = ", ".join(self.sources)
        return f"{self.name}({src}{'; ' + self.text if self.text else ''})"


def parse_rule(name: str | None, source: str | None, args: str | None) -> Rule:
    """Parse one mapping rule; raises :class:`RuleSyntaxError` (with a stable code)."""
    raw_name = (name or "").strip()
    rname = raw_name.lower().replace("-", "_").replace(" ", "_")
    rname = {"direct_mapping": "direct", "id_creation": "id", "casewhen": "case_when", "reverse_score": "reverse",
             "unit": "convert", "bands": "cut", "quantiles": "quantile"}.get(rname, rname)
    if rname not in RULES:
        close = difflib.get_close_matches(rname, RULES, n=1)
        raise RuleSyntaxError("R101", f"rule '{raw_name}' is not a known rule",
                              (f"Did you mean '{close[0]}'? " if close else "") + "Known rules: " + ", ".join(RULES) + ".")
    sources = tuple(s for s in (x.strip() for x in split_top(source or "", ",")) if s)
    lo, hi = _N_SOURCES[rname]
    if len(sources) < lo or (hi is not None and len(sources) > hi):
        want = f"exactly {lo}" if lo == hi else f"at least {lo}"
        raise RuleSyntaxError("R105", f"rule '{rname}' has {len(sources)} source variable(s); expected {want}",
                              "List source variables in the 'source' column, separated by commas." if lo else
                              "Leave the 'source' column empty for this rule.")
    args = (args or "").strip()
    if rname == "recode":
        return Rule(rname, sources, {}, _parse_recode(args), text=args)
    if rname == "case_when":
        try:
            case = _expr.parse_case_when(args)
        except _expr.ExpressionError as e:
            raise RuleSyntaxError("R110", f"case_when arguments: {e}",
                                  "Write 'when CONDITION then VALUE; ...; else VALUE' using ==, !=, <, <=, >, >=, in (...), "
                                  "between, is missing, and, or, not.") from None
        extra = sorted(case.names() - set(sources))
        if extra:
            raise RuleSyntaxError("R111", f"case_when uses {extra}, which are not listed in the 'source' column",
                                  "Add them to 'source' (comma-separated) or correct the spelling.")
        return Rule(rname, sources, {}, (), case, text=args)
    kv = _kv(args)
    allowed = _KEYS[rname]
    for k in kv:
        if k not in allowed:
            close = difflib.get_close_matches(k, list(allowed), n=1)
            raise RuleSyntaxError("R104", f"rule '{rname}' has no argument '{k}'",
                                  (f"Did you mean '{close[0]}'? " if close else "")
                                  + ("Allowed: " + ", ".join(allowed) + "." if allowed else "This rule takes no arguments."))
    for k, req in allowed.items():
        if req and k not in kv:
            raise RuleSyntaxError("R103", f"rule '{rname}' needs argument '{k}'", f"Add '{k}=...' to the arguments.")
    p: dict[str, Any] = {}
    if rname == "reverse":
        for k in ("min", "max"):
            if k in kv:
                p[k] = _bounded(k, kv[k])
        if ("min" in p) != ("max" in p):
            raise RuleSyntaxError("R103", "rule 'reverse' needs both 'min' and 'max' or neither",
                                  "Give both, e.g. 'min=1; max=5', or neither to use the target's valid range.")
    elif rname == "rescale":
        if "from" in kv or "to" in kv:
            if not ("from" in kv and "to" in kv) or "scale" in kv or "shift" in kv:
                raise RuleSyntaxError("R103", "rule 'rescale' needs 'from' and 'to' together (and not with scale/shift)",
                                      "Write 'from=1:7; to=0:100' or 'scale=2; shift=0'.")
            (a, b), (c, d) = _range("from", kv["from"]), _range("to", kv["to"])
            if a == b:
                raise RuleSyntaxError("R102", "rule 'rescale' has a 'from' range of zero width", "Give low < high.")
            p["scale"] = (d - c) / (b - a)
            p["shift"] = c - a * p["scale"]
        elif "scale" in kv or "shift" in kv:
            p["scale"] = _bounded("scale", kv.get("scale", "1"))
            p["shift"] = _bounded("shift", kv.get("shift", "0"))
        else:
            raise RuleSyntaxError("R103", "rule 'rescale' needs 'from' and 'to', or 'scale'/'shift'",
                                  "Write 'from=1:7; to=0:100'.")
    elif rname == "convert":
        p["from"] = canonical_unit(kv["from"])
        if p["from"] not in _UNITS:
            raise RuleSyntaxError("R107", f"unit '{kv['from']}' is not known", "Known units: " + ", ".join(_UNITS) + ".")
        if "to" in kv:
            p["to"] = canonical_unit(kv["to"])
            _check_conversion(p["from"], p["to"])
    elif rname == "cut":
        breaks = []
        parts = split_top(kv["breaks"], ",")
        if len(parts) > MAX_BREAKS:
            raise RuleSyntaxError("R108", f"{len(parts)} breaks are more than the {MAX_BREAKS} allowed",
                                  "Give at most 1000 breaks; use quantile for many equal-sized groups.")
        for b in parts:
            v = parse_scalar(b)
            if not isinstance(v, float):
                raise RuleSyntaxError("R108", f"break '{b}' is not a number", "Give breaks as numbers, e.g. '0, 18.5, 25, inf'.")
            breaks.append(v)
        if len(breaks) < 2 or any(b2 <= b1 for b1, b2 in zip(breaks, breaks[1:])):
            raise RuleSyntaxError("R108", f"breaks {kv['breaks']} are not at least two strictly increasing numbers",
                                  "Give increasing breaks; use -inf/inf for open ends.")
        if "labels" in kv:
            labels = [parse_scalar(x) for x in split_top(kv["labels"], ",")]
            bad = [x for x in labels if isinstance(x, float) and not math.isfinite(x)]
            if bad:
                raise RuleSyntaxError("R108", f"label {bad[0]} is not a finite number",
                                      "Give each band a finite code, quoted text or NA.")
            if len(labels) != len(breaks) - 1:
                raise RuleSyntaxError("R108", f"{len(labels)} labels for {len(breaks) - 1} bands",
                                      "Give one label (target code) per band: one fewer than the breaks.")
        else:
            labels = [float(i) for i in range(1, len(breaks))]
        closed = kv.get("closed", "right").lower()
        if closed not in ("left", "right"):
            raise RuleSyntaxError("R108", f"closed='{closed}'; expected left or right", "Write 'closed=right' for (a, b].")
        p.update(breaks=breaks, labels=labels, closed=closed)
    elif rname == "quantile":
        n = parse_scalar(kv["n"])
        if not isinstance(n, float) or not n.is_integer() or not 2 <= n <= MAX_QUANTILES:
            raise RuleSyntaxError("R109", f"n='{kv['n'][:40]}'; expected a whole number from 2 to {MAX_QUANTILES}",
                                  "Write 'n=5' for quintiles.")
        d = kv["direction"].strip().lower()
        if d not in DIRECTIONS:
            raise RuleSyntaxError("R109", f"direction='{kv['direction']}'; expected one of {', '.join(DIRECTIONS)}",
                                  "State which end of the source is more deprived so that 1 always means most deprived.")
        p.update(n=int(n), direction=d,
                 by=tuple(x for x in split_top(kv.get("by", ""), ",") if x),
                 per=kv.get("per") or None,
                 index=kv.get("index"), version=kv.get("version"), vintage=kv.get("vintage"))
        if len(sources) != 1 + len(p["by"]) + (1 if p["per"] else 0) and len(sources) != 1:
            raise RuleSyntaxError("R105", "rule 'quantile' lists extra source variables",
                                  "List only the index variable in 'source'; give grouping variables in 'by=' and 'per='.")
    elif rname in ("sum", "mean"):
        mv = parse_scalar(kv.get("min_valid", str(len(sources))))
        if not isinstance(mv, float) or not mv.is_integer() or not 1 <= mv <= len(sources):
            raise RuleSyntaxError("R102", f"min_valid='{str(kv.get('min_valid'))[:40]}'; expected a whole number from 1 to {len(sources)}",
                                  "Give the minimum number of valid items.")
        p["min_valid"] = int(mv)
        if rname == "sum":
            p["prorate"] = _bool("prorate", kv["prorate"]) if "prorate" in kv else False
    elif rname == "id":
        if "template" in kv:
            if "prefix" in kv or "width" in kv:
                raise RuleSyntaxError("R102", "rule 'id' takes either 'template' or 'prefix'/'width', not both",
                                      "Write the prefix into the template, e.g. 'template=EN-{1:4}'.")
            p["template"] = parse_template(str(parse_scalar(kv["template"])), len(sources))
            return Rule(rname, sources, p, text=args)
        # no identifier in the file: the rows are numbered 1, 2, ... (with the prefix and width given)
        p["row_number"] = not sources
        if len(sources) > 1:
            raise RuleSyntaxError("R103", "rule 'id' with several sources needs 'template'",
                                  "Write e.g. 'template=EN-{1:4}-A{2:2}' (source 1 padded to 4 digits, source 2 to 2).")
        p["prefix"] = str(parse_scalar(kv["prefix"])) if "prefix" in kv else ""
        if "width" in kv:
            w = _number("width", kv["width"])
            if not w.is_integer() or not 1 <= w <= MAX_ID_WIDTH:
                raise RuleSyntaxError("R114", f"width='{kv['width'][:40]}'; expected a whole number from 1 to "
                                              f"{MAX_ID_WIDTH}", "Write 'width=4'.")
            p["width"] = int(w)
        else:
            p["width"] = 0
    elif rname == "constant":
        p["value"] = parse_scalar(kv["value"])
        if isinstance(p["value"], float) and not math.isfinite(p["value"]):
            raise RuleSyntaxError("R114", f"value='{kv['value'][:40]}' is not a finite number",
                                  "Give a finite number, quoted text or NA.")
    return Rule(rname, sources, p, text=args)


_FIELD = re.compile(r"\{(\d+)(?::(\d+))?\}")


def parse_template(text: str, n_sources: int) -> tuple:
    """Split an id template into literal text and ``(source index, width)`` fields.

    Examples
    --------
    >>> parse_template("EN-{1:4}-A{2:2}", 2)
    ('EN-', (0, 4), '-A', (1, 2))
    """
    parts: list = []
    pos = 0
    for m in _FIELD.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        if len(m.group(1)) > 6 or len(m.group(2) or "") > 6 or int(m.group(2) or 0) > MAX_ID_WIDTH:
            raise RuleSyntaxError("R114", f"template field {m.group(0)[:40]} has a source number or width outside "
                                          f"the valid range (width 0 to {MAX_ID_WIDTH})",
                                  "Write fields as {1} or {1:4}.")
        k = int(m.group(1))
        if not 1 <= k <= n_sources:
            raise RuleSyntaxError("R102", f"template field {m.group(0)} refers to source {k}, but the rule has {n_sources} source(s)",
                                  "Number the sources from 1 in the order of the 'source' column.")
        parts.append((k - 1, int(m.group(2) or 0)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    if any(isinstance(x, str) and ("{" in x or "}" in x) for x in parts):
        raise RuleSyntaxError("R102", f"template '{text}' has braces that are not fields {{k}} or {{k:width}}",
                              "Write fields as {1} or {1:4}.")
    if not any(isinstance(x, tuple) for x in parts):
        raise RuleSyntaxError("R102", f"template '{text}' has no source field", "Include at least one field such as {1:4}.")
    return tuple(parts)


def _check_conversion(f: str, t: str) -> None:
    if t not in _UNITS:
        raise RuleSyntaxError("R107", f"unit '{t}' is not known", "Known units: " + ", ".join(_UNITS) + ".")
    if _UNITS[f][0] != _UNITS[t][0]:
        raise RuleSyntaxError("R107", f"cannot convert {_UNITS[f][0]} unit '{f}' to {_UNITS[t][0]} unit '{t}'",
                              "Convert between units of the same quantity.")


def _parse_recode(args: str) -> tuple:
    pairs = []
    if not args:
        raise RuleSyntaxError("R103", "rule 'recode' has no SOURCE=TARGET pairs", "Write pairs such as '1=2; 2=1; 99=NA'.")
    seen: dict = {}
    for part in split_top(args, ";"):
        if not part:
            continue
        bits = split_top(part, "=")
        if len(bits) != 2 or not bits[0] or not bits[1]:
            raise RuleSyntaxError("R102", f"'{part}' is not a SOURCE=TARGET pair",
                                  "Write pairs such as '1=2', '3,4=3', '5:9=4', \"'Female'=2\" or 'else=NA'.")
        tgt = parse_scalar(bits[1])
        if isinstance(tgt, str) and tgt.lower() == "copy":
            tgt = "copy"
        elif isinstance(tgt, str) and not (bits[1].strip()[0] in "'\""):
            raise RuleSyntaxError("R102", f"target '{bits[1]}' in '{part}' is neither a number, quoted text, NA nor copy",
                                  "Quote category labels, e.g. 'Yes', or give the code.")
        for s in split_top(bits[0], ","):
            s = s.strip()
            if s.lower() == "else":
                key = RecodeKey("else")
            elif len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
                key = RecodeKey("label", s[1:-1])
            elif ":" in s:
                lo, hi = s.split(":", 1)
                key = RecodeKey("range", _number("recode", lo), _number("recode", hi))
                if key.value > key.high:
                    raise RuleSyntaxError("R102", f"range '{s}' has low > high", "Write ranges as low:high.")
            else:
                v = parse_scalar(s)
                if isinstance(v, float):
                    key = RecodeKey("value", v)
                elif v is None:
                    key = RecodeKey("na")
                elif isinstance(v, str) and s.startswith("."):
                    key = RecodeKey("value", s)  # Stata extended missing such as .a
                else:
                    raise RuleSyntaxError("R102", f"source '{s}' in '{part}' is neither a number, a range, quoted text nor else",
                                          "Quote labels, e.g. 'Female'=2.")
            if key in seen:
                raise RuleSyntaxError("R102", f"source {s} is mapped twice", "Map each source code once.")
            if tgt == "copy" and key.kind != "else":
                raise RuleSyntaxError("R102", "'copy' is only allowed as 'else=copy'", "Write the target code instead.")
            seen[key] = tgt
            pairs.append((key, tgt))
    return tuple(pairs)
