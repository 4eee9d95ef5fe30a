"""Parse lavaan model syntax into statements.

The grammar follows lavaan's model syntax:

=====================  ==========================================================
``f =~ x1 + x2``       latent variable ``f`` measured by ``x1`` and ``x2``
``y ~ x + z``          regression of ``y`` on ``x`` and ``z``
``y ~ 1``              intercept (mean) of ``y``
``x1 ~~ x2``           (residual) covariance; ``x1 ~~ x1`` is a (residual) variance
``ab := a*b``          defined parameter, a function of labelled parameters
``a == b``             equality constraint between labelled parameters
``a > 0``, ``a < 1``   inequality constraint
=====================  ==========================================================

Each right-hand term may carry modifiers joined by ``*``: a label (``a*x``),
a fixed value (``1*x``, ``0*x``), ``NA`` (free a parameter fixed by default),
a start value (``start(0.5)*x``), ``label("a")*x`` and, for multigroup models,
one value per group: ``c(a1, a2)*x`` or ``c(1, NA)*x``.  Comments start with
``#`` or ``!``; statements are separated by new lines or ``;``; a line ending
with an operator or ``+`` continues on the next line.

Anything the parser does not understand raises
:class:`~cimstats.errors.ModelSpecificationError` naming the line.

Examples
--------
>>> stmts = parse_model("f =~ x1 + a*x2 + start(0.7)*x3\\nab := a*2")
>>> [(s.lhs, s.op, s.rhs) for s in stmts]
[('f', '=~', 'x1'), ('f', '=~', 'x2'), ('f', '=~', 'x3'), ('ab', ':=', 'a*2')]
>>> stmts[1].label, stmts[2].start
(['a'], [0.7])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from cimstats.errors import ModelSpecificationError
from cimstats.models.formula import MAX_FORMULA_CHAIN, MAX_FORMULA_CHARS, MAX_FORMULA_DEPTH

__all__ = ["Statement", "parse_model", "Expression", "split_levels"]

_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"
_NAME_RE = re.compile(rf"^{_NAME}$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# order matters: longest operators first
_OPERATORS = ["=~", "~~", ":=", "==", "<~", "~*~", "|", "~", "<", ">"]
_UNSUPPORTED = {
    "<~": "composite variables ('<~')",
    "~*~": "scaling factors ('~*~')",
    "|": "thresholds of ordinal indicators ('|')",
}


@dataclass
class Statement:
    """One expanded line of model syntax (one left-hand, operator and right-hand term).

    ``label``, ``fixed`` and ``start`` hold one entry per group, or a single
    entry applying to every group, or are empty when no modifier was given.
    ``fixed`` entries are floats, ``None`` (no value) or ``nan`` meaning ``NA``
    (explicitly free).
    """

    lhs: str
    op: str
    rhs: str
    line: int
    text: str
    label: list = field(default_factory=list)
    fixed: list = field(default_factory=list)
    start: list = field(default_factory=list)
    expr: "Expression | None" = None
    expr_lhs: "Expression | None" = None


def _err(line: int, text: str, what: str, remedy: str) -> ModelSpecificationError:
    return ModelSpecificationError(
        f"Model syntax line {line} ('{text.strip()}'): {what}; {remedy}."
    )


def _split_statements(model: str) -> list[tuple[int, str]]:
    """Split syntax into (line number, statement text), joining continued lines."""
    if not isinstance(model, str):
        raise ModelSpecificationError(
            f"`model` must be a string of lavaan model syntax, found {type(model).__name__}; "
            "pass the model as text, e.g. 'f =~ x1 + x2 + x3'."
        )
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for lineno, raw in enumerate(model.splitlines(), start=1):
        # strip comments (outside quotes)
        text = re.split(r"[#!]", raw, maxsplit=1)[0]
        for part in text.split(";"):
            part = part.strip()
            if not part:
                continue
            if pending is not None:
                prev_line, prev = pending
                part = prev + " " + part
                lineno_use = prev_line
                pending = None
            else:
                lineno_use = lineno
            if re.search(r"(\+|\*|=~|~~|~|:=|==|<|>|,|\()\s*$", part):
                pending = (lineno_use, part)
                continue
            out.append((lineno_use, part))
    if pending is not None:
        out.append(pending)
    return out


def _find_operator(text: str) -> tuple[str, int]:
    # skip content inside parentheses / quotes when searching for the operator
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in "\"'":
            j = text.find(ch, i + 1)
            i = j if j > 0 else len(text)
        elif depth == 0:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    if op in ("<", ">") and text.startswith(op + "=", i):
                        return op + "=", i
                    return op, i
        i += 1
    return "", -1


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _parse_value(tok: str, line: int, text: str):
    """A modifier value: float (fixed), nan (NA, free) or str (label)."""
    tok = tok.strip().strip("\"'")
    if tok == "NA":
        return math.nan
    if _NUMBER_RE.match(tok):
        return float(tok)
    if _NAME_RE.match(tok):
        return tok
    raise _err(line, text, f"the modifier value '{tok}' is neither a number, NA nor a label",
               "use e.g. 0.5*x, NA*x, a*x or c(a1, a2)*x")


def _parse_term(term: str, line: int, text: str):
    """Return (variable, labels, fixed, starts) for one right-hand term."""
    pieces = [p.strip() for p in _split_top(term, "*")]
    if any(p == "" for p in pieces):
        raise _err(line, text, f"the term '{term.strip()}' has an empty modifier",
                   "write modifiers as value*variable")
    var = pieces[-1]
    labels: list = []
    fixed: list = []
    starts: list = []
    for mod in pieces[:-1]:
        m = re.match(r"^(start|label|equal|c)\s*\((.*)\)$", mod)
        if m:
            fn, inner = m.group(1), m.group(2)
            vals = [_parse_value(v, line, text) for v in _split_top(inner, ",")] if inner.strip() else []
            if fn == "start":
                if not all(isinstance(v, float) and not math.isnan(v) for v in vals):
                    raise _err(line, text, f"start() needs numbers, found '{inner}'", "write start(0.5)*x")
                starts = vals
            elif fn in ("label", "equal"):
                if not all(isinstance(v, str) for v in vals):
                    raise _err(line, text, f"{fn}() needs labels, found '{inner}'", 'write label("a")*x')
                labels = vals
            else:  # c(...)
                if all(isinstance(v, str) for v in vals):
                    labels = vals
                elif all(isinstance(v, float) for v in vals):
                    fixed = vals
                else:
                    raise _err(line, text, f"c({inner}) mixes labels and numbers",
                               "give one c() of labels and another of values, e.g. c(a1,a2)*c(1,NA)*x")
            continue
        v = _parse_value(mod, line, text)
        if isinstance(v, str):
            labels = [v]
        else:
            fixed = [v]
    if not _NAME_RE.match(var) and var != "1":
        raise _err(line, text, f"'{var}' is not a valid variable name",
                   "variable names start with a letter, '.' or '_' and contain letters, digits, '.' or '_'")
    return var, labels, fixed, starts


def parse_model(model: str) -> list[Statement]:
    """Parse lavaan model syntax into a list of :class:`Statement` (one per term).

    Parameters
    ----------
    model : str
        lavaan model syntax.

    Returns
    -------
    list of Statement

    Raises
    ------
    ModelSpecificationError
        When a line cannot be understood; the message names the line.
    """
    statements: list[Statement] = []
    for line, text in _split_statements(model):
        if _LEVEL_RE.match(text):
            raise _err(line, text, "a 'level:' block needs the cluster identifier",
                       "give the column of cluster identifiers, e.g. sem(model, data, cluster='neighbourhood')")
        op, pos = _find_operator(text)
        if not op:
            raise _err(line, text, "no model operator was found",
                       "use one of =~, ~, ~~, ~ 1, :=, ==, <, >")
        if op in _UNSUPPORTED:
            raise _err(line, text, f"{_UNSUPPORTED[op]} are not supported by cimstats' SEM core",
                       "remove the line or fit the model in lavaan")
        lhs = text[:pos].strip()
        rhs = text[pos + len(op):].strip()
        if op in ("<=", ">="):
            op = op[0]
        if op in (":=", "==", "<", ">"):
            if not rhs or not lhs:
                raise _err(line, text, f"the operator '{op}' needs a left and a right side",
                           "write e.g. ab := a*b or a == b")
            try:
                expr = Expression(rhs)
                if op == ":=":
                    if not _NAME_RE.match(lhs):
                        raise ValueError(f"'{lhs}' is not a valid name for a defined parameter")
                    expr_lhs = None
                else:
                    expr_lhs = Expression(lhs)
            except ValueError as exc:
                raise _err(line, text, str(exc), "use labels, numbers, + - * / ^ and parentheses") from None
            statements.append(Statement(lhs, op, rhs, line, text, expr=expr, expr_lhs=expr_lhs))
            continue
        if not _NAME_RE.match(lhs):
            raise _err(line, text, f"the left-hand side '{lhs}' is not a single variable name",
                       "write one variable left of the operator")
        if not rhs:
            raise _err(line, text, "the right-hand side is empty", "list at least one variable")
        for term in _split_top(rhs, "+"):
            if not term.strip():
                raise _err(line, text, "a '+' has no term next to it", "remove the extra '+'")
            var, labels, fixed, starts = _parse_term(term, line, text)
            this_op = op
            if var == "1":
                if op != "~":
                    raise _err(line, text, "the constant 1 is only allowed after '~' (an intercept)",
                               "write y ~ 1")
                this_op = "~1"
                var = ""
            statements.append(Statement(lhs, this_op, var, line, text, labels, fixed, starts))
    return statements


_LEVEL_RE = re.compile(r"^\s*level\s*:\s*([A-Za-z0-9_]*)\s*$", re.IGNORECASE)
_LEVEL_NAMES = {"1": 1, "within": 1, "2": 2, "between": 2}


def split_levels(model: str) -> dict[int, str] | None:
    """Split two-level syntax into its ``level: 1`` and ``level: 2`` blocks.

    Returns ``None`` when the model has no ``level:`` line; otherwise a dict
    mapping 1 (within) and 2 (between) to the block's syntax, with the lines of
    the other block blanked so that line numbers in error messages still refer
    to the whole model. ``level: within`` and ``level: between`` are accepted too.

    Examples
    --------
    >>> blocks = split_levels("level: 1\\n f =~ y1 + y2 + y3\\nlevel: 2\\n g =~ y1 + y2 + y3")
    >>> sorted(blocks), blocks[2].strip()
    ([1, 2], 'g =~ y1 + y2 + y3')
    """
    if not isinstance(model, str):
        return None
    lines = model.splitlines()
    marks = []
    for i, raw in enumerate(lines):
        text = re.split(r"[#!]", raw, maxsplit=1)[0]
        m = _LEVEL_RE.match(text)
        if m:
            name = m.group(1).lower()
            if name not in _LEVEL_NAMES:
                raise _err(i + 1, text.strip(), f"the level '{m.group(1)}' is not known",
                           "write 'level: 1' (within clusters) or 'level: 2' (between clusters)")
            marks.append((i, _LEVEL_NAMES[name]))
    if not marks:
        return None
    before = [ln for ln in lines[:marks[0][0]] if re.split(r"[#!]", ln, maxsplit=1)[0].strip()]
    if before:
        raise _err(1, before[0].strip(), "a statement comes before the first 'level:' line",
                   "put every statement inside a 'level: 1' or 'level: 2' block")
    blocks: dict[int, str] = {}
    for k, (start, lev) in enumerate(marks):
        if lev in blocks:
            raise _err(start + 1, lines[start].strip(), f"level {lev} is given twice",
                       "write each level's statements in one block")
        end = marks[k + 1][0] if k + 1 < len(marks) else len(lines)
        blocks[lev] = "\n".join(ln if start < i < end else "" for i, ln in enumerate(lines))
    if sorted(blocks) != [1, 2]:
        missing = 2 if 1 in blocks else 1
        raise ModelSpecificationError(
            f"`model` has a 'level:' block but no 'level: {missing}' block; a two-level model needs both "
            "'level: 1' (within clusters) and 'level: 2' (between clusters)."
        )
    return blocks


# --------------------------------------------------------------------------
# a small, safe arithmetic expression language for := and constraints
# --------------------------------------------------------------------------

def _tuple_depth(tree) -> int:
    """Depth of an expression tree of tuples, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((a, d + 1) for a in node[1:] if isinstance(a, tuple))
    return deepest


_TOKEN_RE = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_.][A-Za-z0-9_.]*)|(\*\*|[-+*/^()]))")
_FUNCS = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "abs": None}


class Expression:
    """An arithmetic expression over parameter labels, parsed without ``eval``.

    Supports numbers, labels, ``+ - * / ^`` (and ``**``), unary minus,
    parentheses and the functions ``sqrt``, ``exp`` and ``log``.  Evaluation
    works on floats, complex numbers (for complex-step derivatives) and numpy
    arrays (for bootstrap replicates).

    Examples
    --------
    >>> e = Expression("c + a*b")
    >>> sorted(e.names)
    ['a', 'b', 'c']
    >>> e.evaluate({"a": 2.0, "b": 3.0, "c": 1.0})
    7.0
    >>> Expression("a^2 / (1 - b)").evaluate({"a": 3.0, "b": 0.5})
    18.0
    """

    def __init__(self, text: str):
        self.text = text
        if len(text) > MAX_FORMULA_CHARS:
            raise ValueError(f"the expression has {len(text)} characters; at most {MAX_FORMULA_CHARS} are read, "
                             f"so shorten it")
        self._tokens = self._tokenize(text)
        self._pos = 0
        self._depth = 0
        self.tree = self._parse_sum()
        if self._pos != len(self._tokens):
            raise ValueError(f"unexpected '{self._tokens[self._pos][1]}' in the expression '{text}'")
        if _tuple_depth(self.tree) > MAX_FORMULA_CHAIN:
            raise ValueError(f"the expression chains more than {MAX_FORMULA_CHAIN} terms; shorten it")
        self.names = set()
        self._collect(self.tree)

    @staticmethod
    def _tokenize(text: str):
        toks, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"the character '{text[pos]}' is not allowed in the expression '{text}'")
            num, name, op = m.groups()
            if num is not None:
                toks.append(("num", float(num)))
            elif name is not None:
                toks.append(("name", name))
            else:
                toks.append(("op", "^" if op == "**" else op))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        if not toks:
            raise ValueError("the expression is empty")
        return toks

    def _peek(self):
        return self._tokens[self._pos] if self._pos < len(self._tokens) else (None, None)

    def _take(self):
        tok = self._peek()
        self._pos += 1
        return tok

    def _parse_sum(self):
        node = self._parse_product()
        while self._peek() in (("op", "+"), ("op", "-")):
            op = self._take()[1]
            node = (op, node, self._parse_product())
        return node

    def _parse_product(self):
        node = self._parse_unary()
        while self._peek() in (("op", "*"), ("op", "/")):
            op = self._take()[1]
            node = (op, node, self._parse_unary())
        return node

    def _parse_unary(self):
        self._depth += 1
        if self._depth > MAX_FORMULA_DEPTH:
            raise ValueError(f"the expression nests parentheses, signs, powers or calls more than "
                             f"{MAX_FORMULA_DEPTH} levels deep; simplify it")
        try:
            return self._parse_unary_inner()
        finally:
            self._depth -= 1

    def _parse_unary_inner(self):
        if self._peek() == ("op", "-"):
            self._take()
            return ("neg", self._parse_unary())
        if self._peek() == ("op", "+"):
            self._take()
            return self._parse_unary()
        return self._parse_power()

    def _parse_power(self):
        base = self._parse_atom()
        if self._peek() == ("op", "^"):
            self._take()
            return ("^", base, self._parse_unary())
        return base

    def _parse_atom(self):
        kind, val = self._take()
        if kind == "num":
            return ("num", val)
        if kind == "name":
            if self._peek() == ("op", "(") and val in _FUNCS and _FUNCS[val] is not None:
                self._take()
                arg = self._parse_sum()
                if self._take() != ("op", ")"):
                    raise ValueError(f"a ')' is missing in the expression '{self.text}'")
                return ("fn", val, arg)
            if self._peek() == ("op", "("):
                raise ValueError(f"the function '{val}' is not supported (only sqrt, exp, log)")
            return ("name", val)
        if (kind, val) == ("op", "("):
            node = self._parse_sum()
            if self._take() != ("op", ")"):
                raise ValueError(f"a ')' is missing in the expression '{self.text}'")
            return node
        raise ValueError(f"the expression '{self.text}' is incomplete or has '{val}' in the wrong place")

    def _collect(self, node):
        if node[0] == "name":
            self.names.add(node[1])
        elif node[0] == "num":
            return
        elif node[0] in ("neg",):
            self._collect(node[1])
        elif node[0] == "fn":
            self._collect(node[2])
        else:
            self._collect(node[1])
            self._collect(node[2])

    def evaluate(self, values):
        """Evaluate with ``values`` mapping each label to a number or array."""
        return self._eval(self.tree, values)

    def _eval(self, node, values):
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "name":
            return values[node[1]]
        if kind == "neg":
            return -self._eval(node[1], values)
        if kind == "fn":
            return _FUNCS[node[1]](self._eval(node[2], values))
        a = self._eval(node[1], values)
        b = self._eval(node[2], values)
        if kind == "+":
            return a + b
        if kind == "-":
            return a - b
        if kind == "*":
            return a * b
        if kind == "/":
            return a / b
        return a ** b

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
