"""A restricted condition language for ``case_when`` rules (no Python evaluation).

Grammar (keywords are case-insensitive)::

    rules      := branch (";"? branch)* (";"? "else" value)?
    branch     := "when" condition "then" value
    condition  := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" condition ")" | test
    test       := operand op operand
                | operand ["not"] "in" "(" literal ("," literal)* ")"
                | operand "between" literal "and" literal
                | operand "is" ["not"] "missing"
    op         := "==" | "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    operand    := NAME | literal
    literal    := NUMBER | STRING
    value      := literal | "NA" | NAME

Conditions use three-valued logic: a comparison involving a missing value is
*unknown*. A branch fires only where its condition is true and every earlier
condition is known to be false; a row whose first undecided condition is
unknown stays missing (reason ``source_missing``) instead of falling through
to ``else``. ``x is missing`` is always known, so missing values can be
routed explicitly.

Parentheses and ``not`` may be nested at most :data:`MAX_DEPTH` (100) deep;
deeper nesting is reported as a parse error instead of exhausting Python's
stack.

A quoted string compared with a labelled numeric variable is matched against
its value labels (``sex == 'Female'``), case and spacing ignored.

Examples
--------
>>> import pandas as pd
>>> rules = parse_case_when("when age < 18 then 1; when age >= 18 and sex in (1, 2) then 2; else 3")
>>> sorted(rules.names())
['age', 'sex']
>>> df = pd.DataFrame({"age": [10, 40, None, 50], "sex": [1, 2, 1, 9]})
>>> rules.evaluate(df).values.tolist()
[1.0, 2.0, nan, 3.0]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd


class ExpressionError(ValueError):
    """A condition could not be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<>|<=|>=|<|>|=|\(|\)|,|;)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)

#: deepest nesting of parentheses and ``not`` a condition may have
MAX_DEPTH = 100

KEYWORDS = {"when", "then", "else", "and", "or", "not", "in", "is", "missing", "between", "na"}


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, name, keyword, end
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raises :class:`ExpressionError` at the first bad character."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExpressionError(f"unexpected character {text[pos]!r} at position {pos + 1}", pos)
        kind = m.lastgroup
        raw = m.group(kind)
        if kind == "number":
            val = float(raw)
            out.append(Token("number", int(val) if val.is_integer() and "." not in raw and "e" not in raw.lower() else val, pos))
        elif kind == "string":
            out.append(Token("string", re.sub(r"\\(.)", r"\1", raw[1:-1]), pos))
        elif kind == "op":
            out.append(Token("op", {"=": "==", "<>": "!="}.get(raw, raw), pos))
        elif kind == "name":
            low = raw.lower()
            out.append(Token("keyword", low, pos) if low in KEYWORDS else Token("name", raw, pos))
        pos = m.end()
    out.append(Token("end", None, len(text)))
    return out


# -- syntax tree ---------------------------------------------------------------
@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Lit:
    value: Any  # number, str, or None for NA


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class InList:
    operand: Any
    values: tuple
    negate: bool = False


@dataclass(frozen=True)
class IsMissing:
    operand: Any
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: Any


@dataclass(frozen=True)
class Branch:
    condition: Any
    value: Any  # Lit or Var


def _names(node) -> set[str]:
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, Compare):
        return _names(node.left) | _names(node.right)
    if isinstance(node, (InList, IsMissing)):
        return _names(node.operand)
    if isinstance(node, BoolOp):
        return set().union(*(_names(p) for p in node.parts))
    if isinstance(node, Not):
        return _names(node.part)
    return set()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def _fail(self, expected: str):
        t = self.tok
        found = "the end of the text" if t.kind == "end" else repr(self.text[t.pos:t.pos + 12].split()[0] if self.text[t.pos:].split() else t.value)
        raise ExpressionError(f"expected {expected} at position {t.pos + 1} but found {found}", t.pos)

    def accept(self, kind: str, value: Any = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (value is None or t.value == value):
            self.i += 1
            return t
        return None

    def expect(self, kind: str, value: Any = None, what: str | None = None) -> Token:
        t = self.accept(kind, value)
        if t is None:
            self._fail(what or (repr(value) if value else kind))
        return t

    # rules := branch+ [else value]
    def parse_rules(self) -> "CaseWhen":
        branches: list[Branch] = []
        default = None
        has_else = False
        while True:
            self.accept("op", ";")
            if self.accept("keyword", "when"):
                cond = self.condition()
                self.expect("keyword", "then", "'then'")
                branches.append(Branch(cond, self.value()))
                continue
            if self.accept("keyword", "else"):
                default = self.value()
                has_else = True
                self.accept("op", ";")
                self.expect("end", what="the end of the rule after 'else'")
                break
            if self.tok.kind == "end":
                break
            self._fail("'when' or 'else'")
        if not branches:
            raise ExpressionError("expected at least one 'when CONDITION then VALUE' branch", 0)
        return CaseWhen(tuple(branches), default, has_else, self.text)

    def value(self):
        t = self.tok
        if t.kind in ("number", "string"):
            self.i += 1
            return Lit(t.value)
        if t.kind == "keyword" and t.value == "na":
            self.i += 1
            return Lit(None)
        if t.kind == "name":
            self.i += 1
            return Var(t.value)
        self._fail("a value (number, quoted text, NA or a variable name)")

    def condition(self):
        parts = [self.and_expr()]
        while self.accept("keyword", "or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_expr(self):
        parts = [self.not_expr()]
        while self.accept("keyword", "and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            t = self.toks[self.i - 1]
            raise ExpressionError(f"parentheses and 'not' are nested more than {MAX_DEPTH} deep at position "
                                  f"{t.pos + 1}", t.pos)

    def not_expr(self):
        if self.accept("keyword", "not"):
            self._deeper()
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        if self.accept("op", "("):
            self._deeper()
            inner = self.condition()
            self.expect("op", ")", "')'")
            self.depth -= 1
            return inner
        return self.test()

    def operand(self):
        t = self.tok
        if t.kind == "name":
            self.i += 1
            return Var(t.value)
        if t.kind in ("number", "string"):
            self.i += 1
            return Lit(t.value)
        self._fail("a variable name, number or quoted text")

    def literal(self):
        t = self.tok
        if t.kind in ("number", "string"):
            self.i += 1
            return t.value
        self._fail("a number or quoted text")

    def test(self):
        left = self.operand()
        t = self.tok
        if t.kind == "op" and t.value in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return Compare(t.value, left, self.operand())
        negate = False
        if self.accept("keyword", "not"):
            negate = True
            if not self.tok.kind == "keyword" or self.tok.value != "in":
                self._fail("'in' after 'not'")
        if self.accept("keyword", "in"):
            self.expect("op", "(", "'('")
            vals = [self.literal()]
            while self.accept("op", ","):
                vals.append(self.literal())
            self.expect("op", ")", "')'")
            return InList(left, tuple(vals), negate)
        if self.accept("keyword", "between"):
            lo = self.literal()
            self.expect("keyword", "and", "'and'")
            hi = self.literal()
            return BoolOp("and", (Compare(">=", left, Lit(lo)), Compare("<=", left, Lit(hi))))
        if self.accept("keyword", "is"):
            neg = bool(self.accept("keyword", "not"))
            self.expect("keyword", "missing", "'missing'")
            return IsMissing(left, neg)
        self._fail("a comparison (==, !=, <, <=, >, >=), 'in (...)', 'between' or 'is missing'")


def parse_condition(text: str):
    """Parse one condition (the part between ``when`` and ``then``)."""
    p = _Parser(text)
    node = p.condition()
    p.expect("end", what="the end of the condition")
    return node


def parse_case_when(text: str) -> "CaseWhen":
    """Parse a full ``case_when`` rule; raises :class:`ExpressionError` with the position."""
    return _Parser(text).parse_rules()


# -- evaluation (vectorised, three-valued) ---------------------------------------
Resolver = Callable[[str, Any], Any]  # (variable, literal) -> literal in the variable's coding


@dataclass(frozen=True)
class CaseWhen:
    branches: tuple
    default: Any
    has_else: bool
    text: str = field(default="", compare=False)

    def names(self) -> set[str]:
        out: set[str] = set()
        for b in self.branches:
            out |= _names(b.condition) | _names(b.value)
        if self.default is not None:
            out |= _names(self.default)
        return out

    def values(self) -> list:
        vals = [b.value for b in self.branches]
        if self.has_else:
            vals.append(self.default)
        return vals

    def evaluate(self, frame: pd.DataFrame, resolve: Resolver | None = None):
        """Evaluate on ``frame``; returns (values Series, reason array).

        Reason: 0 = value assigned (possibly NA on purpose), 1 = an unknown
        condition (missing source value) decided the row, 2 = no branch matched.
        The Series alone is returned by :meth:`evaluate` for convenience via
        ``.values``; use :meth:`evaluate_with_reasons` for the reasons.
        """
        return self.evaluate_with_reasons(frame, resolve)[0]

    def evaluate_with_reasons(self, frame: pd.DataFrame, resolve: Resolver | None = None):
        n = len(frame)
        numeric_out = all(isinstance(v, Lit) and (v.value is None or not isinstance(v.value, str)) or
                          isinstance(v, Var) and pd.api.types.is_numeric_dtype(frame[v.name])
                          for v in self.values())
        out = np.full(n, np.nan) if numeric_out else np.full(n, None, dtype=object)
        reason = np.zeros(n, dtype=np.int8)
        undecided = np.ones(n, dtype=bool)
        for b in self.branches:
            true, known = _eval(b.condition, frame, resolve)
            fire = undecided & true
            unknown = undecided & ~known
            _assign(out, fire, b.value, frame)
            reason[unknown] = 1
            undecided &= known & ~true
        if self.has_else:
            _assign(out, undecided, self.default, frame)
        else:
            reason[undecided] = 2
        return pd.Series(out, index=frame.index), reason


def _assign(out, mask, value, frame):
    if not mask.any():
        return
    if isinstance(value, Var):
        out[mask] = frame[value.name].to_numpy()[mask]
    else:
        out[mask] = np.nan if value.value is None and out.dtype.kind == "f" else value.value


def _operand(node, frame, resolve, other):
    if isinstance(node, Var):
        return frame[node.name].to_numpy(), True
    val = node.value
    if isinstance(other, Var) and resolve is not None:
        val = resolve(other.name, val)
    return val, False


def _missing(arr) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    return pd.isna(arr)


def _eval(node, frame, resolve):
    """Return (true, known) boolean arrays."""
    n = len(frame)
    if isinstance(node, Compare):
        lv, lvec = _operand(node.left, frame, resolve, node.right)
        rv, rvec = _operand(node.right, frame, resolve, node.left)
        miss = np.zeros(n, dtype=bool)
        if lvec:
            miss |= _missing(lv)
        if rvec:
            miss |= _missing(rv)
        with np.errstate(invalid="ignore"):
            try:
                res = _OPS[node.op](lv, rv)
            except TypeError:
                res = np.zeros(n, dtype=bool)
        res = np.asarray(res, dtype=bool) if np.ndim(res) else np.full(n, bool(res))
        return res & ~miss, ~miss
    if isinstance(node, InList):
        arr = frame[node.operand.name].to_numpy() if isinstance(node.operand, Var) else np.full(n, node.operand.value, dtype=object)
        vals = list(node.values)
        if isinstance(node.operand, Var) and resolve is not None:
            vals = [resolve(node.operand.name, v) for v in vals]
        miss = _missing(arr)
        res = np.asarray(pd.Series(arr).isin(vals).to_numpy(), dtype=bool)
        if node.negate:
            res = ~res
        return res & ~miss, ~miss
    if isinstance(node, IsMissing):
        arr = frame[node.operand.name].to_numpy() if isinstance(node.operand, Var) else np.full(n, node.operand.value, dtype=object)
        m = _missing(arr)
        return (~m if node.negate else m), np.ones(n, dtype=bool)
    if isinstance(node, Not):
        t, k = _eval(node.part, frame, resolve)
        return ~t & k, k
    if isinstance(node, BoolOp):
        results = [_eval(p, frame, resolve) for p in node.parts]
        if node.op == "and":
            false = np.zeros(n, dtype=bool)
            true = np.ones(n, dtype=bool)
            for t, k in results:
                false |= k & ~t
                true &= t
            return true, true | false
        true = np.zeros(n, dtype=bool)
        allfalse = np.ones(n, dtype=bool)
        for t, k in results:
            true |= t
            allfalse &= k & ~t
        return true, true | allfalse
    raise TypeError(f"cannot evaluate {node!r}")  # pragma: no cover


_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
