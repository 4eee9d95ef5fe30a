"""lme4-style model formulas: parsing, expansion and design matrices.

This module is the one formula front end of the model verbs (``lmm``,
``glmm``, ``gee``, ``glm``) and of the mechanism-plan checker. It has three layers:

1. :func:`parse_formula` turns text such as
   ``"y ~ x * sex + I(age^2) + (x | practice/ego)"`` into a :class:`FormulaSpec`
   (response, fixed-effect terms, random-effect terms) without looking at data.
2. :func:`build_design` evaluates a spec on a data frame: it drops rows with
   missing values in the columns the model uses (and counts them per column),
   codes categorical variables with treatment contrasts, and returns a
   :class:`ModelFrame` holding the response, the fixed-effect matrix ``X`` and
   one :class:`RandomBlock` per random-effect term.
3. :meth:`ModelFrame.new_fixed_matrix` / :meth:`ModelFrame.new_random_blocks`
   rebuild the same columns on new data (for predictions), reusing the levels
   and centring constants learnt on the fitted data.

Grammar (as in R / lme4)
------------------------
``+`` adds terms, ``-`` removes them (``- 1`` or ``0 +`` removes the
intercept), ``a:b`` is the interaction, ``a*b`` is ``a + b + a:b``, ``a/b`` is
``a + a:b``, ``(a + b)^2`` all terms up to order 2. ``(lhs | g)`` is a random
effect with correlated terms, ``(lhs || g)`` one with independent terms,
``(1 | a/b)`` nested random intercepts ``(1 | a) + (1 | a:b)``, ``(1 | a:b)``
an intercept per observed combination of ``a`` and ``b``.

Functions on the fixed side: ``I(expr)`` (arithmetic with ``+ - * / ^``),
``log``, ``log2``, ``log10``, ``exp``, ``sqrt``, ``abs``, ``as.numeric``,
``C(x)`` / ``factor(x)`` (treat as categorical), and the centring helpers used
for cross-level interactions: ``gmc(x)`` (grand-mean centred), ``cwc(x, g)``
(centred within the clusters of ``g``) and ``clustermean(x, g)`` (the mean of
``x`` in each cluster of ``g``). Centring constants are computed on the rows
used in the fit. ``glmm`` and ``gee`` also read ``offset(expr)`` terms and a
``cbind(successes, failures)`` outcome (``parse_formula(..., glm_terms=True)``);
their columns come from the parsed formula like every other variable.

Arithmetic (inside ``I()``, the functions above, ``offset()``, ``cbind()`` and
the ``weights=``/``offset=`` expressions of ``glmm``) is read by this module's
own parser (:func:`parse_expression`) and checked against that list of
functions; no user text is ever run as Python code. Formulas longer than
``MAX_FORMULA_CHARS`` characters, nested deeper than ``MAX_FORMULA_DEPTH`` levels
or chaining more than ``MAX_FORMULA_CHAIN`` terms are refused with a message.

Categorical variables are coded with treatment contrasts; the reference is the
first category in code order (the categories of a pandas ``Categorical``, else
the sorted distinct values), as R does for factors.

Examples
--------
>>> from cimstats.models.formula import parse_formula
>>> spec = parse_formula("Reaction ~ Days + (Days | Subject)")
>>> spec.response, [t.label for t in spec.fixed_terms], spec.random[0].group
('Reaction', ['Days'], 'Subject')
>>> [r.group for r in parse_formula("y ~ 1 + (1 | practice/ego)").random]
['practice', 'ego:practice']
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import ModelSpecificationError
from .checks import check_model_columns, check_unique_columns

__all__ = [
    "FormulaSpec",
    "FixedTerm",
    "RandomTerm",
    "ModelFrame",
    "RandomBlock",
    "parse_formula",
    "build_design",
    "NumericExpression",
    "parse_expression",
    "formula_variables",
    "FORMULA_FUNCTIONS",
]

# ---------------------------------------------------------------------------
# tokenizer and parser (Pratt parser over R's formula operators)
# ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_.][A-Za-z0-9_.]*)"
    r"|`(?P<quoted>[^`]+)`"
    r"|(?P<str>\"[^\"]*\"|'[^']*')"
    r"|(?P<op>\|\||%in%|\*\*|[~+\-*/:^|(),]))"
)

# binding powers (higher binds tighter), following R's operator precedence
_BINARY = {"~": 5, "|": 10, "||": 10, "+": 20, "-": 20, "*": 30, "/": 30,
           "%in%": 35, ":": 40, "^": 50, "**": 50}
_RIGHT_ASSOC = {"^", "**"}


@dataclass(frozen=True)
class _Node:
    kind: str  # "name", "num", "str", "call", "binop", "neg", "paren"
    value: object = None
    args: tuple = ()
    #: (start, end) of the node's text in the parsed string (``text[start:end]`` is the node as written)
    span: tuple = field(default=(0, 0), compare=False, repr=False)

    def text(self) -> str:
        """Deparse the node (R-like spelling, used for term labels)."""
        if self.kind == "name":
            return str(self.value)
        if self.kind == "num":
            v = self.value
            return str(int(v)) if float(v).is_integer() else repr(v)
        if self.kind == "str":
            return repr(self.value)
        if self.kind == "call":
            return f"{self.value}({', '.join(a.text() for a in self.args)})"
        if self.kind == "neg":
            return f"-{self.args[0].text()}"
        if self.kind == "paren":
            return f"({self.args[0].text()})"
        op = self.value
        sep = op if op in (":", "^") else f" {op} "
        return f"{self.args[0].text()}{sep}{self.args[1].text()}"


def _tokenize(text: str, where: str | None = None) -> tuple[list[tuple[str, object]], list[tuple[int, int]]]:
    """Tokens of ``text`` and, per token, its (start, end) position in ``text``."""
    where = where or f"formula {_short(text)}"
    tokens, spans = [], []
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ModelSpecificationError(
                f"The {where} has an unexpected character {text[pos:].strip()[:1]!r} at position "
                f"{pos}; expected names, numbers and the operators ~ + - * / : ^ | || ( ), so check the spelling."
            )
        pos = m.end()
        g0 = m.group(0)
        span = (lead + m.start() + len(g0) - len(g0.lstrip()), lead + m.end())
        if m.group("num") is not None:
            tokens.append(("num", float(m.group("num"))))
        elif m.group("name") is not None:
            tokens.append(("name", m.group("name")))
        elif m.group("quoted") is not None:
            tokens.append(("name", m.group("quoted")))
        elif m.group("str") is not None:
            tokens.append(("str", m.group("str")[1:-1]))
        elif m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        else:  # trailing whitespace
            break
        spans.append(span)
    return tokens, spans


#: longest formula or expression text read (characters), deepest nesting of parentheses, calls
#: and operators, and longest chain of terms (each bound keeps parsing within Python's call depth)
MAX_FORMULA_CHARS = 10_000
MAX_FORMULA_DEPTH = 100
MAX_FORMULA_CHAIN = 300


def _short(text: str, n: int = 120) -> str:
    """``repr`` of a text, cut to about ``n`` characters for messages."""
    return repr(text) if len(text) <= n else repr(text[:n]) + "..."


def _tree_depth(node) -> int:
    """Depth of a parsed tree, counted without recursion (a long chain of '+' counts one per term)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        nd, d = stack.pop()
        if not isinstance(nd, _Node):
            continue
        deepest = max(deepest, d)
        stack.extend((a, d + 1) for a in nd.args)
    return deepest


class _Parser:
    """Pratt parser over the formula tokens; ``where`` names the text in messages
    (``"formula 'y ~ x'"``, ``"offset 'log(t)' in formula 'y ~ ...'"``)."""

    def __init__(self, text: str, where: str | None = None):
        self.text = text
        self.where = where or f"formula {_short(text)}"
        if len(text) > MAX_FORMULA_CHARS:
            raise ModelSpecificationError(
                f"The {self.where} has {len(text)} characters; expected at most {MAX_FORMULA_CHARS}, "
                f"so shorten it (compute long expressions as columns of `data` beforehand)."
            )
        self.tokens, self.spans = _tokenize(text, self.where)
        self.i = 0
        self.depth = 0

    def _fail(self, what: str) -> ModelSpecificationError:
        return ModelSpecificationError(
            f"The {self.where} could not be read: {what}; write it as in R, "
            f"e.g. 'y ~ x + (1 | group)'."
        )

    def _too_deep(self, chain: bool = False) -> ModelSpecificationError:
        what = (f"chains more than {MAX_FORMULA_CHAIN} terms" if chain else
                f"nests parentheses, calls or operators more than {MAX_FORMULA_DEPTH} levels deep")
        return ModelSpecificationError(
            f"The {self.where} {what}; expected a shorter formula, so compute long or deeply nested "
            f"expressions as columns of `data` beforehand."
        )

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def _span(self, first: int) -> tuple[int, int]:
        """Text span from token ``first`` to the last token taken."""
        return (self.spans[first][0], self.spans[self.i - 1][1])

    def parse(self) -> _Node:
        node = self.expr(0)
        if self.i != len(self.tokens):
            raise self._fail(f"unexpected {self.peek()[1]!r} after {node.text()!r}")
        if _tree_depth(node) > MAX_FORMULA_CHAIN:
            raise self._too_deep(chain=True)
        return node

    def expr(self, min_bp: int) -> _Node:
        self.depth += 1
        if self.depth > MAX_FORMULA_DEPTH:
            raise self._too_deep()
        try:
            return self._expr(min_bp)
        finally:
            self.depth -= 1

    def _expr(self, min_bp: int) -> _Node:
        left = self.prefix()
        while True:
            kind, val = self.peek()
            if kind != "op" or val not in _BINARY:
                break
            bp = _BINARY[val]
            if bp < min_bp or (bp == min_bp and val not in _RIGHT_ASSOC):
                break
            self.take()
            right = self.expr(bp if val in _RIGHT_ASSOC else bp + 1)
            left = _Node("binop", "^" if val == "**" else val, (left, right), (left.span[0], right.span[1]))
        return left

    def prefix(self) -> _Node:
        first = self.i
        kind, val = self.take()
        if kind is None:
            raise self._fail("it ends too early")
        if kind == "num":
            return _Node("num", val, (), self._span(first))
        if kind == "str":
            return _Node("str", val, (), self._span(first))
        if kind == "name":
            if self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    while True:
                        # allow keyword-style arguments by skipping 'name ='
                        args.append(self.expr(6))
                        if self.peek() == ("op", ","):
                            self.take()
                            continue
                        break
                if self.take() != ("op", ")"):
                    raise self._fail(f"the call {val}(...) is not closed with ')'")
                return _Node("call", val, tuple(args), self._span(first))
            return _Node("name", val, (), self._span(first))
        if kind == "op" and val == "(":
            inner = self.expr(0)
            if self.take() != ("op", ")"):
                raise self._fail("a '(' is not closed")
            return _Node("paren", None, (inner,), self._span(first))
        if kind == "op" and val == "-":
            inner = self.expr(45)
            return _Node("neg", None, (inner,), (self.spans[first][0], inner.span[1]))
        if kind == "op" and val == "+":
            return self.expr(45)
        if kind == "op" and val == "~":
            inner = self.expr(6)
            return _Node("binop", "~", (None, inner), (self.spans[first][0], inner.span[1]))
        raise self._fail(f"unexpected {val!r}")


# ---------------------------------------------------------------------------
# specification objects
# ---------------------------------------------------------------------------

_CATEGORICAL_CALLS = {"C", "factor", "as.factor"}
#: the only functions arithmetic may call (inside I(), offset(), cbind(), `weights=`, `offset=`)
_ARITHMETIC_FUNCS = {
    "log": np.log, "log2": np.log2, "log10": np.log10, "exp": np.exp,
    "sqrt": np.sqrt, "abs": np.abs,
}
_IDENTITY_CALLS = {"I", "as.numeric"}
_ARITHMETIC_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}
_NUMERIC_CALLS = _IDENTITY_CALLS | set(_ARITHMETIC_FUNCS)
_CENTRING_CALLS = {"gmc", "cwc", "clustermean"}
#: every function name the formula grammar knows (``offset`` and ``cbind`` in glmm/gee formulas)
FORMULA_FUNCTIONS = frozenset(_CATEGORICAL_CALLS | _NUMERIC_CALLS | _CENTRING_CALLS | {"offset", "cbind"})
_ALLOWED_ARITHMETIC = "I(), as.numeric(), log(), log2(), log10(), exp(), sqrt(), abs()"
#: where offset() and cbind() belong in a glmm/gee formula (used when they turn up elsewhere)
_GLM_TERM_HINT = {
    "offset": "an offset is a term of its own, joined to the others with '+', e.g. 'y ~ x + offset(log(t))'",
    "cbind": "cbind(successes, failures) is written as the outcome, on the left of '~'",
}
_UNSUPPORTED_HINT = {
    "poly": "write the powers explicitly with I(x^2)",
    "ns": "compute the spline basis beforehand and add its columns",
    "bs": "compute the spline basis beforehand and add its columns",
    "offset": "offsets are not used in linear mixed models; subtract the offset from the response",
    "scale": "use gmc(x) for grand-mean centring or standardise the column beforehand",
}


def _check_arithmetic(node: "_Node", label: str, where: str) -> None:
    """Accept only numbers, column names, + - * / ^, unary minus, parentheses and the
    functions of ``_ARITHMETIC_FUNCS`` / ``_IDENTITY_CALLS`` with one argument each.

    Raises ModelSpecificationError naming the term and the allowed functions otherwise.
    The tree depth is already bounded by the parser, so the walk uses an explicit stack.
    """
    stack = [node]
    while stack:
        nd = stack.pop()
        if nd.kind in ("num", "name"):
            continue
        if nd.kind in ("paren", "neg"):
            stack.append(nd.args[0])
            continue
        if nd.kind == "call":
            fn = str(nd.value)
            if fn not in _NUMERIC_CALLS:
                hint = _UNSUPPORTED_HINT.get(fn)
                raise ModelSpecificationError(
                    f"The term {label!r} in {where} calls {fn}(), which is not allowed in arithmetic; "
                    f"expected only {_ALLOWED_ARITHMETIC}" + (f" ({hint})." if hint and fn != "offset" else ".")
                )
            if len(nd.args) != 1:
                raise ModelSpecificationError(
                    f"The term {label!r} in {where} gives {fn}() {len(nd.args)} arguments; expected one, "
                    f"e.g. {fn}(x) (allowed functions: {_ALLOWED_ARITHMETIC})."
                )
            stack.append(nd.args[0])
            continue
        if nd.kind == "binop" and nd.value in _ARITHMETIC_OPS:
            stack.extend(nd.args)
            continue
        shown = nd.text() if nd.kind != "binop" or nd.args[0] is not None else f"~ {nd.args[1].text()}"
        raise ModelSpecificationError(
            f"The term {label!r} in {where} contains {shown!r}, which is not arithmetic; expected numbers, "
            f"numeric columns, + - * / ^, parentheses and the functions {_ALLOWED_ARITHMETIC}."
        )


@dataclass(frozen=True)
class FixedTerm:
    """One fixed-effect term: an interaction of one or more variables.

    ``variables`` holds the deparsed variable expressions (``'x'``,
    ``'I(x^2)'``, ``'cwc(x, g)'``); a main effect has one.
    """

    variables: tuple[str, ...]

    @property
    def label(self) -> str:
        return ":".join(self.variables)

    @property
    def order(self) -> int:
        return len(self.variables)


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(lhs | group)`` after expansion.

    ``terms`` are the fixed-style terms on the left of the bar, ``intercept``
    whether a random intercept is included, ``group`` the grouping factor label
    (``'ego:practice'`` for the inner level of ``practice/ego``) and
    ``group_vars`` the data columns that define it.
    """

    terms: tuple[FixedTerm, ...]
    intercept: bool
    group: str
    group_vars: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class FormulaSpec:
    """A parsed formula: response, fixed terms, intercept flag, random terms.

    For ``glmm`` and ``gee`` formulas (``parse_formula(..., glm_terms=True)``)
    ``offsets`` holds one :class:`NumericExpression` per ``offset()`` term and
    ``cbind`` the two count expressions (successes, failures) of a
    ``cbind(successes, failures)`` outcome; both are empty otherwise.
    """

    text: str
    response: str
    fixed_terms: tuple[FixedTerm, ...]
    intercept: bool
    random: tuple[RandomTerm, ...]
    nodes: dict = field(default_factory=dict, compare=False, repr=False)
    offsets: tuple = ()
    cbind: tuple = ()

    @property
    def response_text(self) -> str:
        """The outcome as written in the formula (e.g. ``'cbind(k, size - k)'``)."""
        node = self.nodes[self.response]
        start, end = node.span
        return self.text[start:end] if end > start else self.response

    def variables(self) -> list[str]:
        """All data columns the model uses: outcome (both counts of a cbind() outcome),
        predictors, grouping factors, then the columns of offset() terms."""
        cols = self._model_columns(response=True)
        for e in self.offsets:
            cols.extend(c for c in e.columns if c not in cols)
        return cols

    def _model_columns(self, response: bool) -> list[str]:
        """Columns of the outcome (when ``response``), the fixed and random terms and the grouping factors."""
        cols: list[str] = []
        exprs = [self.response] if response else []
        for expr in exprs + [v for t in self.fixed_terms for v in t.variables] + [
            v for r in self.random for t in r.terms for v in t.variables
        ]:
            for c in _columns_of(self.nodes[expr]):
                if c not in cols:
                    cols.append(c)
        for r in self.random:
            for g in r.group_vars:
                if g not in cols:
                    cols.append(g)
        return cols


def _columns_of(node: _Node) -> list[str]:
    if node is None:
        return []
    if node.kind == "name":
        return [str(node.value)]
    out: list[str] = []
    for a in node.args:
        if isinstance(a, _Node):
            for c in _columns_of(a):
                if c not in out:
                    out.append(c)
    return out


class _Expander:
    """Turns a right-hand-side node into terms (R's terms() algebra)."""

    def __init__(self, text: str, nodes: dict, glm_terms: bool = False):
        self.text = text
        self.nodes = nodes
        self.glm_terms = glm_terms

    def fail(self, term: str, why: str) -> ModelSpecificationError:
        return ModelSpecificationError(
            f"The term {term!r} in formula {_short(self.text)} cannot be represented: {why}."
        )

    def variable(self, node: _Node) -> str:
        if node.kind == "paren":
            return self.variable(node.args[0])
        label = node.text()
        if node.kind == "call":
            fn = str(node.value)
            if fn not in _CATEGORICAL_CALLS | _NUMERIC_CALLS | _CENTRING_CALLS:
                if self.glm_terms and fn in _GLM_TERM_HINT:
                    raise self.fail(label, f"{fn}() cannot stand there ({_GLM_TERM_HINT[fn]})")
                hint = _UNSUPPORTED_HINT.get(fn, "supported functions are I(), log(), log2(), log10(), exp(), "
                                                  "sqrt(), abs(), C()/factor(), gmc(), cwc() and clustermean()")
                raise self.fail(label, f"the function {fn}() is not supported ({hint})")
            if fn in ("cwc", "clustermean") and len(node.args) != 2:
                raise self.fail(label, f"{fn}() needs two arguments, the variable and the cluster column")
            if fn not in ("cwc", "clustermean") and len(node.args) != 1:
                raise self.fail(label, f"{fn}() takes one argument")
            where = f"formula {_short(self.text)}"
            if fn in _NUMERIC_CALLS:
                _check_arithmetic(node, label, where)
            else:
                _check_arithmetic(node.args[0], label, where)
            if fn in ("cwc", "clustermean") and node.args[1].kind != "name":
                raise self.fail(label, f"the cluster argument of {fn}() must be a column name; "
                                       f"found {node.args[1].text()!r}")
        elif node.kind not in ("name",):
            raise self.fail(label, "expected a column name or a function call here")
        self.nodes[label] = node
        return label

    def terms(self, node: _Node) -> tuple[list[tuple[str, ...]], bool | None, list]:
        """Return (terms, intercept flag or None if unspecified, random parts)."""
        randoms: list = []
        terms, icpt = self._terms(node, randoms)
        return terms, icpt, randoms

    def _terms(self, node: _Node, randoms: list):
        if node.kind == "num":
            if node.value == 1:
                return [], True
            if node.value == 0:
                return [], False
            raise self.fail(node.text(), "only 0 and 1 may stand alone (intercept switches)")
        if node.kind == "paren":
            inner = node.args[0]
            if inner.kind == "binop" and inner.value in ("|", "||"):
                randoms.append(inner)
                return [], None
            return self._terms(inner, randoms)
        if node.kind in ("name", "call"):
            return [(self.variable(node),)], None
        if node.kind == "neg":
            terms, icpt = self._terms(node.args[0], randoms)
            if terms:
                raise self.fail(node.text(), "a leading minus can only remove the intercept (- 1)")
            return [], (False if icpt else icpt)
        if node.kind == "binop":
            op, (a, b) = node.value, node.args
            if op in ("|", "||"):
                raise self.fail(node.text(), "a random-effect term must be wrapped in parentheses, "
                                             "e.g. (1 | group)")
            if op == "+":
                ta, ia = self._terms(a, randoms)
                tb, ib = self._terms(b, randoms)
                return _union(ta, tb), (ib if ib is not None else ia)
            if op == "-":
                ta, ia = self._terms(a, randoms)
                tb, ib = self._terms(b, [])
                if ib is True:
                    ia = False
                elif ib is False:
                    ia = True
                keys = {frozenset(t) for t in tb}
                return [t for t in ta if frozenset(t) not in keys], ia
            if op in (":", "*", "/", "%in%", "^"):
                ta, _ = self._terms(a, randoms)
                if op == "^":
                    if b.kind != "num" or not float(b.value).is_integer() or b.value < 1:
                        raise self.fail(node.text(), "the power of a term group must be a whole number")
                    out = list(ta)
                    for _ in range(int(b.value) - 1):
                        out = _union(out, _interact(out, ta))
                    return out, None
                tb, _ = self._terms(b, randoms)
                if op == ":":
                    return _interact(ta, tb), None
                if op == "*":
                    return _union(_union(ta, tb), _interact(ta, tb)), None
                if op == "%in%":
                    return _interact(ta, tb), None
                # a / b  =  a + (all variables of a):b
                allvars = tuple(dict.fromkeys(v for t in ta for v in t))
                return _union(ta, _interact([allvars], tb)), None
        raise self.fail(node.text(), "it is not a term R's formula language defines")


def _union(a, b):
    out = list(a)
    keys = {frozenset(t) for t in out}
    for t in b:
        if frozenset(t) not in keys:
            out.append(t)
            keys.add(frozenset(t))
    return out


def _interact(a, b):
    out = []
    for ta in a:
        for tb in b:
            t = tuple(dict.fromkeys(ta + tb))
            out = _union(out, [t])
    return out


def _group_factors(exp: _Expander, node: _Node, source: str) -> list[tuple[str, tuple[str, ...]]]:
    """Grouping side of a bar: 'g', 'a:b', 'a/b' (-> a, b:a as lme4 names it)."""
    if node.kind == "paren":
        return _group_factors(exp, node.args[0], source)
    if node.kind == "name":
        return [(str(node.value), (str(node.value),))]
    if node.kind == "binop" and node.value == ":":
        parts: list[str] = []
        for side in node.args:
            for label, cols in _group_factors(exp, side, source):
                if len(cols) != 1 and ":" not in label:
                    raise exp.fail(source, "nesting '/' cannot be used inside ':'")
                parts.extend(cols)
        return [(":".join(parts), tuple(parts))]
    if node.kind == "binop" and node.value == "/":
        outer = _group_factors(exp, node.args[0], source)
        inner = _group_factors(exp, node.args[1], source)
        top_label, top_cols = outer[-1]
        out = list(outer)
        for label, cols in inner:
            out.append((":".join(list(cols) + list(top_cols)) if len(cols) == 1 else
                        label + ":" + ":".join(top_cols), tuple(cols) + tuple(top_cols)))
        return out
    raise exp.fail(source, f"the grouping factor {node.text()!r} must be a column name, "
                           "an interaction a:b or a nesting a/b")


def parse_formula(formula: str, *, glm_terms: bool = False) -> FormulaSpec:
    """Parse an lme4-style formula into a :class:`FormulaSpec`.

    Parameters
    ----------
    formula : str
        For example ``"support ~ contact_freq * gmc(age) + (1 | practice/ego)"``.
    glm_terms : bool, default False
        Also read what ``glmm`` and ``gee`` formulas may hold: ``offset(expr)``
        terms joined to the others with ``+`` (kept in ``FormulaSpec.offsets``,
        not in the fixed effects) and a ``cbind(successes, failures)`` outcome
        (its two count expressions in ``FormulaSpec.cbind``). Without it (as for
        ``lmm``) both are refused with a message.

    Returns
    -------
    FormulaSpec

    Raises
    ------
    ModelSpecificationError
        When the text is not a formula or uses a term that cannot be represented
        (the message names the term and the formula).

    Examples
    --------
    >>> s = parse_formula("y ~ a*b + (x || g)")
    >>> [t.label for t in s.fixed_terms]
    ['a', 'b', 'a:b']
    >>> [(r.group, r.intercept, [t.label for t in r.terms]) for r in s.random]
    [('g', True, []), ('g', False, ['x'])]
    >>> s = parse_formula("cbind(k, size - k) ~ x + offset(log(t)) + (1 | g)", glm_terms=True)
    >>> [e.text for e in s.cbind], [e.text for e in s.offsets], [t.label for t in s.fixed_terms]
    (['k', 'size - k'], ['log(t)'], ['x'])
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise ModelSpecificationError(
            f"`formula` is {formula!r}, which has no '~'; expected a formula such as "
            f"'y ~ x + (1 | group)' with the outcome on the left."
        )
    root = _Parser(formula).parse()
    if root.kind != "binop" or root.value != "~" or root.args[0] is None:
        raise ModelSpecificationError(
            f"`formula` {formula!r} has no outcome on the left of '~'; write it as 'outcome ~ predictors'."
        )
    nodes: dict = {}
    exp = _Expander(formula, nodes, glm_terms)
    lhs, rhs = root.args
    counts: tuple = ()
    if glm_terms and lhs.kind == "call" and lhs.value == "cbind":
        counts = _cbind_counts(lhs, formula)
        response = lhs.text()
    elif lhs.kind not in ("name", "call"):
        raise exp.fail(lhs.text(), "the outcome must be one column or a function of one column")
    else:
        response = exp.variable(lhs) if lhs.kind == "call" else lhs.text()
    offsets: tuple = ()
    if glm_terms:
        found: list = []
        rhs = _take_offsets(rhs, found)
        offsets = tuple(_offset_expression(o, formula) for o in found)
        if rhs is None:  # only offsets on the right: the intercept remains, as in R
            rhs = _Node("num", 1.0)
    terms, icpt, random_nodes = exp.terms(rhs)
    nodes[response] = lhs  # after the right-hand side, which may name the same variable
    fixed = tuple(FixedTerm(t) for t in sorted(terms, key=len))  # R orders terms by degree
    randoms: list[RandomTerm] = []
    for rn in random_nodes:
        source = f"({rn.text()})"
        rterms, ricpt, inner_random = exp.terms(rn.args[0])
        if inner_random:
            raise exp.fail(source, "random-effect terms cannot be nested inside each other")
        ricpt = True if ricpt is None else ricpt
        rterms = sorted(rterms, key=len)
        if not rterms and not ricpt:
            raise exp.fail(source, "it has neither an intercept nor a variable on the left of the bar")
        for label, cols in _group_factors(exp, rn.args[1], source):
            if rn.value == "||":
                if ricpt:
                    randoms.append(RandomTerm((), True, label, cols, source))
                for t in rterms:
                    randoms.append(RandomTerm((FixedTerm(t),), False, label, cols, source))
            else:
                randoms.append(RandomTerm(tuple(FixedTerm(t) for t in rterms), ricpt, label, cols, source))
    return FormulaSpec(
        text=formula, response=response, fixed_terms=fixed,
        intercept=True if icpt is None else icpt, random=tuple(randoms), nodes=nodes,
        offsets=offsets, cbind=counts,
    )


def _take_offsets(node: _Node, found: list) -> _Node | None:
    """The right-hand side without its offset() terms (appended to ``found`` left to right).

    Only terms joined by ``+`` at the top level are offsets (as lme4 reads them);
    elsewhere (``x:offset(t)``, ``- offset(t)``, inside parentheses) offset() is
    left in place and refused by the term expansion. Returns None when nothing
    but offsets remains.
    """
    if node.kind == "call" and node.value == "offset":
        found.append(node)
        return None
    if node.kind == "binop" and node.value == "+":
        a = _take_offsets(node.args[0], found)
        b = _take_offsets(node.args[1], found)
        if a is None or b is None:
            return b if a is None else a
        return _Node("binop", "+", (a, b), node.span)
    return node


def _written(formula: str, node: _Node) -> str:
    """A node's text as written in ``formula``."""
    return formula[node.span[0]:node.span[1]]


def _offset_expression(call: _Node, formula: str) -> "NumericExpression":
    """The checked expression inside one ``offset(...)`` term."""
    if len(call.args) != 1:
        raise ModelSpecificationError(
            f"The term {_written(formula, call)!r} in formula {_short(formula)} gives offset() {len(call.args)} "
            f"arguments; expected one, e.g. offset(log(exposure))."
        )
    arg = call.args[0]
    text = _written(formula, arg)
    where = f"offset {text!r} in formula {formula!r}"
    if len(where) > 300:
        where = f"offset {text[:100]!r}... in formula {formula[:100]!r}..."
    _check_arithmetic(arg, text, where)
    return NumericExpression(text, where, arg)


def _cbind_counts(call: _Node, formula: str) -> tuple["NumericExpression", "NumericExpression"]:
    """The two checked count expressions of a ``cbind(successes, failures)`` outcome."""
    if len(call.args) != 2:
        raise ModelSpecificationError(
            f"The response {_written(formula, call)!r} of formula {_short(formula)} has {len(call.args)} argument(s) "
            f"in cbind(); expected two: cbind(successes, failures)."
        )
    out = []
    for arg, what in zip(call.args, ("successes", "failures")):
        text = _written(formula, arg)
        where = f"cbind() {what} {_short(text)} in formula {_short(formula)}"
        _check_arithmetic(arg, text, where)
        out.append(NumericExpression(text, where, arg))
    return tuple(out)


# ---------------------------------------------------------------------------
# arithmetic expressions outside the formula's terms (offsets, cbind(), weights)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class NumericExpression:
    """An arithmetic expression of data columns, checked against the formula grammar.

    The text is read by the formula's own tokenizer and parser; only numbers,
    column names (backquoted when they hold spaces), ``+ - * / ^`` (``**`` is
    read as ``^``), unary minus, parentheses and the functions ``I()``,
    ``as.numeric()``, ``log()``, ``log2()``, ``log10()``, ``exp()``, ``sqrt()``
    and ``abs()`` are accepted; nothing in it is run as Python code.
    Create one with :func:`parse_expression`.
    """

    text: str
    where: str
    node: _Node = field(repr=False)

    @property
    def columns(self) -> list[str]:
        """The data columns the expression reads, in order of appearance."""
        return _columns_of(self.node)

    def evaluate(self, data: pd.DataFrame) -> np.ndarray:
        """Values on every row of ``data`` (float; NaN where an input is missing)."""
        ev = _Evaluator(data, self.text, where=self.where)
        return np.array(ev.numeric(self.node, self.text.strip()), dtype=float)


def parse_expression(text: str, *, where: str | None = None) -> NumericExpression:
    """Read an arithmetic expression of columns (an offset, a cbind() count, a weight).

    Parameters
    ----------
    text : str
        For example ``"log(months)"`` or ``"size - incidence"``.
    where : str, optional
        How the expression is named in error messages, e.g.
        ``"offset 'log(t)' in formula 'y ~ x + offset(log(t)) + (1 | g)'"``.

    Returns
    -------
    NumericExpression

    Raises
    ------
    ModelSpecificationError
        For characters outside the grammar, an unknown function, syntax that is
        not arithmetic (``~``, ``|``, ``:``, text in quotes), or a text longer
        than ``MAX_FORMULA_CHARS`` or nested deeper than ``MAX_FORMULA_DEPTH``;
        the message names the term and the allowed functions.

    Examples
    --------
    >>> import pandas as pd
    >>> e = parse_expression("log(months) - 1")
    >>> e.columns
    ['months']
    >>> e.evaluate(pd.DataFrame({"months": [1.0, 10.0]})).round(3).tolist()
    [-1.0, 1.303]
    >>> try:
    ...     parse_expression("system('ls')")
    ... except Exception as exc:
    ...     print(type(exc).__name__)
    ModelSpecificationError
    """
    if not isinstance(text, str) or not text.strip():
        raise ModelSpecificationError(
            f"The {where or 'expression'} is {text!r}; expected an arithmetic expression of numeric columns "
            f"such as 'log(months)' or 'size - incidence'."
        )
    where = where or f"expression {_short(text)}"
    node = _Parser(text, where).parse()
    _check_arithmetic(node, text.strip(), where)
    return NumericExpression(text, where, node)


def formula_variables(formula: str) -> list[str]:
    """The data columns an lmm, glmm or gee formula uses, read by the formula parser.

    Function names (``log``, ``I``, ``offset``, ``cbind``, ``gmc`` ...) are
    not variables; the columns inside ``offset()`` and ``cbind()`` are. Order:
    outcome, predictors, grouping factors, offset columns.

    Raises
    ------
    ModelSpecificationError
        When the formula cannot be read or uses a function or syntax outside the grammar.

    Examples
    --------
    >>> formula_variables("n ~ log10(dose) + I(age^2) + offset(log(t)) + (1 | practice/ego)")
    ['n', 'dose', 'age', 'practice', 'ego', 't']
    >>> formula_variables("cbind(k, size - k) ~ x + (1 | herd)")
    ['k', 'size', 'x', 'herd']
    """
    return parse_formula(formula, glm_terms=True).variables()


# ---------------------------------------------------------------------------
# evaluation on data
# ---------------------------------------------------------------------------

@dataclass
class _VarInfo:
    """How one variable expression was evaluated (kept for new data)."""

    label: str
    categorical: bool
    levels: tuple = ()
    grand_mean: float | None = None
    cluster_means: dict | None = None
    #: the column a factor was read from, and each level's name in terms ("sex: boy"); empty: R's "sexboy"
    column: str | None = None
    level_names: tuple = ()


def _is_categorical_series(s: pd.Series) -> bool:
    return (isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == bool
            or pd.api.types.is_string_dtype(s.dtype) or s.dtype == object)


def _category_levels(s: pd.Series) -> tuple:
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        return tuple(c for c in s.cat.categories if c in present)
    vals = s.dropna().unique()
    try:
        return tuple(sorted(vals))
    except TypeError:
        return tuple(sorted(vals, key=str))


def _code_text(v) -> str:
    """A level code as written in a term: 2.0 -> "2"."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (np.integer, np.bool_)):
        return str(v.item())
    return str(v)


def _value_labels(data: pd.DataFrame, column: str) -> dict:
    """Code -> label of ``column`` from ``data.attrs["value_labels"]`` (a Survey's labels), or {}."""
    found = data.attrs.get("value_labels") if isinstance(getattr(data, "attrs", None), dict) else None
    labels = found.get(column) if isinstance(found, dict) else None
    return dict(labels) if isinstance(labels, dict) else {}


def _named_levels(column: str, levels: tuple, labels: dict) -> tuple:
    """Term names of a factor's levels: ``"column: label"``, the code where no label exists; always unique."""
    def label_of(v):
        for key in (v, _plain_code(v)):
            try:
                if key in labels:
                    return str(labels[key])
            except TypeError:
                pass
        return _code_text(v)

    texts = [label_of(v) for v in levels]
    counts = {t: texts.count(t) for t in texts}
    # two codes sharing a label stay apart by their codes
    return tuple(f"{column}: {t}" if counts[t] == 1 else f"{column}: {t} [{_code_text(v)}]"
                 for t, v in zip(texts, levels))


def _plain_code(v):
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _float_values(s: pd.Series) -> np.ndarray:
    """Values of a numeric column as float64 (a read-only view when already float64)."""
    if s.dtype == np.float64:
        return s.to_numpy()
    return s.to_numpy(dtype=float, na_value=np.nan)


class _Evaluator:
    """Evaluates variable expressions on ``data`` (only the rows in the boolean mask ``rows``).

    Columns are subset one at a time as they are needed, so the rows used in a
    fit never require a copy of the whole data frame.
    """

    def __init__(self, data: pd.DataFrame, formula: str, infos: dict | None = None,
                 rows: np.ndarray | None = None, where: str | None = None):
        self.data = data
        self.formula = formula
        self.where = where or f"formula {_short(formula)}"
        self.infos = infos  # fitted infos when evaluating new data
        self.rows = rows
        self._codes: dict = {}  # grouping column -> (int32 codes, sorted uniques)

    @property
    def nrows(self) -> int:
        return len(self.data) if self.rows is None else int(np.count_nonzero(self.rows))

    @property
    def index(self) -> pd.Index:
        return self.data.index if self.rows is None else self.data.index[self.rows]

    def column(self, name: str) -> pd.Series:
        if name not in self.data.columns:
            cols = ", ".join(map(str, list(self.data.columns)[:12]))
            raise ModelSpecificationError(
                f"The {self.where} uses {name!r}, which is not a column of `data`; "
                f"available: {cols}{' ...' if self.data.shape[1] > 12 else ''}."
            )
        s = self.data[name]
        if isinstance(s, pd.DataFrame):  # the name labels several columns
            check_unique_columns(self.data, [name])
        return s if self.rows is None else s[self.rows]

    def numeric(self, node: _Node, label: str) -> np.ndarray:
        if node.kind == "num":
            return np.full(self.nrows, float(node.value))
        if node.kind == "name":
            s = self.column(str(node.value))
            if _is_categorical_series(s):
                raise ModelSpecificationError(
                    f"The term {label!r} does arithmetic on the categorical column {node.value!r}; "
                    f"expected a numeric column, so convert it first or use it as a factor."
                )
            return _float_values(s)
        if node.kind == "paren":
            return self.numeric(node.args[0], label)
        if node.kind == "neg":
            return -self.numeric(node.args[0], label)
        if node.kind == "call" and str(node.value) in _ARITHMETIC_FUNCS and len(node.args) == 1:
            with np.errstate(all="ignore"):
                return _ARITHMETIC_FUNCS[str(node.value)](self.numeric(node.args[0], label))
        if node.kind == "call" and str(node.value) in _IDENTITY_CALLS and len(node.args) == 1:
            return self.numeric(node.args[0], label)
        if node.kind == "binop" and node.value in _ARITHMETIC_OPS:
            a = self.numeric(node.args[0], label)
            b = self.numeric(node.args[1], label)
            with np.errstate(all="ignore"):
                return _ARITHMETIC_OPS[node.value](a, b)
        raise ModelSpecificationError(
            f"The term {label!r} contains {node.text()!r}, which cannot be evaluated; "
            f"inside I() use numbers, numeric columns, + - * / ^ and {_ALLOWED_ARITHMETIC}."
        )

    def raw_columns(self, node: _Node) -> list[str]:
        return _columns_of(node)

    def variable(self, label: str, node: _Node, fit_mask: np.ndarray | None = None):
        """Evaluate one variable: returns (values, info). Categorical -> codes."""
        info = self.infos.get(label) if self.infos is not None else None
        if node.kind == "call" and str(node.value) in _CATEGORICAL_CALLS:
            inner = node.args[0]
            if inner.kind == "name":
                s = self.column(str(inner.value))
                return self._categorical(label, s, info, column=str(inner.value))
            s = pd.Series(self.numeric(inner, label), index=self.index)
            return self._categorical(label, s, info)
        if node.kind == "name":
            s = self.column(str(node.value))
            if _is_categorical_series(s):
                labels = _value_labels(self.data, str(node.value))
                named = labels or isinstance(s.dtype, pd.CategoricalDtype)
                return self._categorical(label, s, info, column=str(node.value) if named else None)
            return _float_values(s), info or _VarInfo(label, False)
        if node.kind == "call" and str(node.value) in _CENTRING_CALLS:
            return self._centring(label, node, info)
        return self.numeric(node, label), info or _VarInfo(label, False)

    def _categorical(self, label, s: pd.Series, info, column: str | None = None):
        if info is None:
            levels = _category_levels(s)
            info = _VarInfo(label, True, levels)
            if column is not None:
                # the one place a factor's levels get their names: value labels, not codes ("sex: boy")
                info.column = column
                info.level_names = _named_levels(column, levels, _value_labels(self.data, column))
        # code the distinct values once, then map them to the levels (no per-row Python objects)
        c, uniques = pd.factorize(s, use_na_sentinel=True)
        lut = pd.Index(list(info.levels), dtype=object).get_indexer(
            pd.Index(np.asarray(uniques, dtype=object), dtype=object))
        if (lut < 0).any():
            unseen = sorted({str(v) for v in np.asarray(uniques, dtype=object)[lut < 0].tolist()})[:5]
            raise ModelSpecificationError(
                f"The column for {label!r} has categories {unseen} that were not in the fitted data; "
                f"expected one of {list(map(str, info.levels))[:10]}, so recode or drop those rows."
            )
        small = np.int32 if len(info.levels) < 2**31 - 1 else np.int64
        codes = np.append(lut, -1).astype(small)[c]  # index -1 (missing) picks the appended -1
        return codes, info

    def _centring(self, label, node: _Node, info):
        fn = str(node.value)
        x = self.numeric(node.args[0], label)
        if fn == "gmc":
            if info is None:
                info = _VarInfo(label, False, grand_mean=float(np.nanmean(x)) if self._fit_rows is None
                                else float(np.mean(x[self._fit_rows])))
            return x - info.grand_mean, info
        gnode = node.args[1]
        if gnode.kind != "name":
            raise ModelSpecificationError(
                f"The term {label!r} needs a column name as its cluster argument; found {gnode.text()!r}."
            )
        g = self.column(str(gnode.value))
        if info is None:
            rows = self._fit_rows if self._fit_rows is not None else ~np.isnan(x)
            frame = pd.DataFrame({"g": g.to_numpy()[rows], "x": x[rows]})
            means = frame.groupby("g", sort=False)["x"].mean()
            info = _VarInfo(label, False, cluster_means=dict(zip(means.index.tolist(), means.to_numpy())))
        keys = g.tolist()
        cm = np.array([info.cluster_means.get(k, np.nan) for k in keys], dtype=float)
        if self.infos is not None:  # new data: unseen clusters use their own mean
            unseen = np.isnan(cm) & ~np.isnan(x)
            if unseen.any():
                frame = pd.DataFrame({"g": np.asarray(keys, dtype=object)[unseen], "x": x[unseen]})
                own = frame.groupby("g", sort=False)["x"].transform("mean").to_numpy()
                cm[unseen] = own
        return (x - cm if fn == "cwc" else cm), info

    _fit_rows: np.ndarray | None = None


@dataclass(frozen=True)
class RandomBlock:
    """Columns and grouping of one random-effect term on the used rows.

    ``Z`` is the n x k matrix of the term's columns (``term_names``),
    ``codes`` maps each row to a level (0-based), ``levels`` are the level
    labels (``'a:A'`` for interactions), ``group`` is the grouping label as lme4
    prints it.
    """

    group: str
    term_names: tuple[str, ...]
    Z: np.ndarray
    codes: np.ndarray
    level_parts: tuple = field(repr=False)  # ((uniques, index into uniques), ...) per grouping column

    @property
    def k(self) -> int:
        return self.Z.shape[1]

    @property
    def nlevels(self) -> int:
        return len(self.level_parts[0][1])

    @cached_property
    def levels(self) -> tuple:
        labels = None
        for u, i in self.level_parts:
            lab = _labels_of(u)[i]
            labels = lab if labels is None else np.char.add(np.char.add(labels, ":"), lab)
        return tuple(labels.tolist())


@dataclass(frozen=True)
class ModelFrame:
    """The model evaluated on data: response, fixed and random designs.

    ``n_dropped`` is the number of rows set aside for missing values and
    ``dropped_by_column`` how many rows each used column made unusable (a row
    missing in two columns counts for both columns but once in the total).
    """

    spec: FormulaSpec
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    random: tuple[RandomBlock, ...]
    n_dropped: int
    dropped_by_column: dict
    _infos: dict = field(default_factory=dict, repr=False)
    _columns: tuple = field(default=(), repr=False)
    _row_index: pd.Index | None = field(default=None, repr=False)
    _row_keep: np.ndarray | None = field(default=None, repr=False)  # None: every row used

    @property
    def rows(self) -> np.ndarray:
        """Index labels of the used rows (formed on request, not stored)."""
        labels = self._row_index.to_numpy()
        return labels if self._row_keep is None else labels[self._row_keep]

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def term_codes(self) -> dict:
        """Fixed-effect term -> {column: code} for the factor levels in it (the codes behind "sex: boy").

        Terms without a factor map to ``{}``; a numeric variable in an
        interaction is not listed. The codes are the values in the data (a
        labelled survey column's numeric codes, a Categorical's categories).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"y": [1., 2, 3, 4, 5, 6], "sex": [1., 2, 1, 2, 1, 2]})
        >>> df.attrs["value_labels"] = {"sex": {1: "boy", 2: "girl"}}
        >>> mf = build_design(parse_formula("y ~ C(sex)"), df)
        >>> mf.fixed_names, mf.term_codes["sex: girl"]
        (('(Intercept)', 'sex: girl'), {'sex': 2.0})
        """
        out = {}
        for name, recipe in self._columns:
            codes = {}
            for v, level in recipe:
                info = self._infos.get(v)
                if level is not None and info is not None and info.categorical:
                    code = info.levels[level]
                    codes[info.column or v] = code.item() if isinstance(code, np.generic) else code
            out[name] = codes
        return out

    def new_fixed_matrix(self, newdata: pd.DataFrame) -> np.ndarray:
        """Fixed-effect columns on new data, coded as in the fit."""
        ev = _Evaluator(newdata, self.spec.text, self._infos)
        X, _ = _model_matrix(ev, self.spec, self.spec.fixed_terms, self.spec.intercept,
                             self._infos, self._columns)
        return X

    def new_random_blocks(self, newdata: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """(Z, codes) per random term on new data; code -1 marks an unseen level."""
        ev = _Evaluator(newdata, self.spec.text, self._infos)
        out = []
        for rt, blk in zip(_ordered_random(self.spec), self.random):
            Z, _ = _model_matrix(ev, self.spec, rt.terms, rt.intercept, self._infos,
                                 self._infos.get(("__random_cols__", rt.source, rt.group)))
            codes = _group_codes(ev, rt, known=blk.levels)
            out.append((Z, codes))
        return out


def _ordered_random(spec: FormulaSpec):
    return spec.random


def _model_matrix(ev: _Evaluator, spec: FormulaSpec, terms, intercept: bool, infos: dict,
                  columns_plan=None):
    """Build a model matrix for ``terms``; returns (matrix, plan).

    The plan lists, per output column, its name and how to compute it
    (term index, per-variable level or None), so new data get the same columns.
    """
    n = ev.nrows
    values: dict[str, np.ndarray] = {}

    def evaluate(v):
        vals, info = ev.variable(v, spec.nodes[v])
        infos.setdefault(v, info)
        return vals

    if columns_plan is None:
        # every variable's coding is needed for the plan; keep values that are costly to
        # recompute (factor codes, derived expressions), re-read plain numeric columns later
        for v in dict.fromkeys(v for t in terms for v in t.variables):
            vals = evaluate(v)
            if infos[v].categorical or spec.nodes[v].kind != "name":
                values[v] = vals
    if columns_plan is None:
        plan = []
        if intercept:
            plan.append(("(Intercept)", ()))
        present = {frozenset(t.variables) for t in terms}
        for t in terms:
            parts = []
            for v in t.variables:
                info = infos[v]
                if info.categorical:
                    margin = frozenset(x for x in t.variables if x != v)
                    contrast = (not margin and intercept) or (margin and margin in present)
                    lv = info.levels[1:] if contrast else info.levels
                    if contrast and len(info.levels) < 2:
                        raise ModelSpecificationError(
                            f"The factor {v!r} has a single category ({info.levels[0]!r}) in the rows used; "
                            f"expected at least two, so drop it from the formula."
                        )
                    first = 1 if contrast else 0
                    names = info.level_names[first:] if info.level_names else [f"{v}{lvl}" for lvl in lv]
                    parts.append([(v, i + first, name) for i, name in enumerate(names)])
                else:
                    parts.append([(v, None, v)])
            # R: first factor varies fastest
            combos = itertools.product(*reversed(parts))
            for combo in combos:
                combo = tuple(reversed(combo))
                plan.append((":".join(c[2] for c in combo), tuple((c[0], c[1]) for c in combo)))
        columns_plan = tuple(plan)
    # fill the matrix column by column; a variable's values are released after their last use
    last = {}
    for j, (_, recipe) in enumerate(columns_plan):
        for v, _ in recipe:
            last[v] = j
    M = np.empty((n, len(columns_plan)), dtype=float)
    for j, (_, recipe) in enumerate(columns_plan):
        out = M[:, j]
        if not recipe:
            out[:] = 1.0
            continue
        for i, (v, level) in enumerate(recipe):
            vals = values.get(v)
            if vals is None:
                vals = evaluate(v)
                if last[v] > j:
                    values[v] = vals
            factor = vals if level is None else (vals == level)
            if i == 0:
                out[:] = factor
            else:
                out *= factor
            if level is not None:
                neg = vals < 0
                if neg.any():
                    out[neg] = np.nan
            if last[v] == j:
                values.pop(v, None)
    return M, columns_plan


_CHUNK_ROWS = 1 << 14  # rows per chunk when coding grouping factors


def _dense_codes(keys, n: int, span: int, missing: bool):
    """Codes 0.. of the distinct keys in ``range(span)``, in increasing key order.

    ``keys(i, j)`` returns the int64 keys of rows ``i:j`` (negative for missing).
    Works chunk by chunk through a lookup table of length ``span``, so no
    n-length temporaries besides the int32 result. Returns (codes, present keys).
    """
    present = np.zeros(span, dtype=bool)
    for i in range(0, n, _CHUNK_ROWS):
        k = keys(i, min(n, i + _CHUNK_ROWS))
        present[k[k >= 0] if missing else k] = True
    lut = np.cumsum(present, dtype=np.int32)
    lut -= 1
    codes = np.empty(n, dtype=np.int32)
    for i in range(0, n, _CHUNK_ROWS):
        j = min(n, i + _CHUNK_ROWS)
        k = keys(i, j)
        if missing:
            c = lut[np.maximum(k, 0)]
            c[k < 0] = -1
            codes[i:j] = c
        else:
            codes[i:j] = lut[k]
    return codes, np.flatnonzero(present)


def _sorted_codes(keys, n: int, missing: bool):
    """As :func:`_dense_codes` for keys spread over a wide range: the distinct keys of
    each chunk are merged and every row's key is then located among them by binary search."""
    distinct = []
    for i in range(0, n, _CHUNK_ROWS):
        k = keys(i, min(n, i + _CHUNK_ROWS))
        distinct.append(np.unique(k[k >= 0] if missing else k))
    uniq = np.unique(np.concatenate(distinct)) if distinct else np.zeros(0, dtype=np.int64)
    del distinct
    codes = np.empty(n, dtype=np.int32 if len(uniq) < 2**31 - 1 else np.int64)
    for i in range(0, n, _CHUNK_ROWS):
        j = min(n, i + _CHUNK_ROWS)
        k = keys(i, j)
        c = np.searchsorted(uniq, k)
        if missing:
            c[k < 0] = -1
        codes[i:j] = c
    return codes, uniq


def _column_codes(s: pd.Series):
    """(int32 codes, sorted distinct values) of one grouping column; code -1 for missing.

    Integer columns with a compact range and categorical columns are coded
    through a lookup table; other columns by hashing (``pandas.factorize``).
    """
    n = len(s)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cc = s.cat.codes.to_numpy()
        cats = s.cat.categories
        if n and len(cats):
            codes, pos = _dense_codes(lambda i, j: cc[i:j].astype(np.int64), n, len(cats), bool((cc < 0).any()))
            return codes, np.asarray(cats[pos])
    elif isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu" and n:
        v = s.to_numpy()
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < 2 * n + 1024:
            codes, pos = _dense_codes(lambda i, j: v[i:j].astype(np.int64) - lo, n, hi - lo + 1, False)
            return codes, (pos + lo).astype(v.dtype)
        if v.dtype.kind == "i" or hi < 2**63:
            codes, uniq = _sorted_codes(lambda i, j: v[i:j].astype(np.int64) - lo, n, False)
            return codes, (uniq + lo).astype(v.dtype)
    c, u = pd.factorize(s, sort=True)
    return c.astype(np.int32 if len(u) < 2**31 - 1 else np.int64), np.asarray(u)


def _group_codes(ev: _Evaluator, rt: RandomTerm, known: tuple | None = None):
    """Integer codes of the grouping factor (sorted levels); -1 for missing.

    Returns (codes, level_parts): int32 codes and, per grouping column, its
    sorted distinct values with each level's index into them. With ``known``
    (the fitted level labels) returns int64 codes into those labels, -1 for
    levels not seen in the fit.
    """
    if known is not None:
        labels = _row_labels(ev, rt)
        codes = pd.Index(list(known), dtype=object).get_indexer(pd.Index(labels, dtype=object))
        return codes.astype(np.int64)
    per = []
    for g in rt.group_vars:
        if g not in ev._codes:
            ev._codes[g] = _column_codes(ev.column(g))
        per.append(ev._codes[g])
    if len(per) == 1:
        codes, u = per[0]
        return codes, ((u, np.arange(len(u))),)
    # interaction a:b: one key per combination, coded in increasing key order (= sorted levels)
    sizes = [len(u) for _, u in per]
    n = len(per[0][0])
    missing = any(bool((c < 0).any()) for c, _ in per)

    def keys(i, j):
        k = per[0][0][i:j].astype(np.int64)
        bad = k < 0 if missing else None
        for (c, _), size in zip(per[1:], sizes[1:]):
            cj = c[i:j]
            k *= size
            k += cj
            if missing:
                bad |= cj < 0
        if missing:
            k[bad] = -1
        return k

    span = int(np.prod(np.array(sizes, dtype=object)))
    if span < 2 * n + 1024:
        codes, uniq = _dense_codes(keys, n, span, missing)
    else:  # many possible combinations (e.g. egos within practices): sort the keys present
        codes, uniq = _sorted_codes(keys, n, missing)
    # decode combined keys into an index per grouping column
    idx = []
    rest = uniq.astype(np.int64)
    for size in reversed(sizes):
        idx.append(rest % size)
        rest = rest // size
    idx = list(reversed(idx))
    return codes, tuple(zip([u for _, u in per], idx))


def _labels_of(values: list) -> np.ndarray:
    """Text labels of level values (whole-number floats written without '.0')."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype(str)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64).astype(str)
    return np.asarray([_level_label(v) for v in np.asarray(values, dtype=object).tolist()], dtype=str)


def _row_labels(ev: _Evaluator, rt: RandomTerm) -> list:
    cols = [ev.column(g).astype(object).tolist() for g in rt.group_vars]
    out = []
    for vals in zip(*cols):
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in vals):
            out.append(None)
        else:
            out.append(_level_label(vals[0] if len(vals) == 1 else tuple(vals)))
    return out


def _level_label(key) -> str:
    if isinstance(key, tuple):
        return ":".join(_level_label(k) for k in key)
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def build_design(spec: FormulaSpec, data: pd.DataFrame, *, min_levels: int = 2,
                 response=None) -> ModelFrame:
    """Evaluate ``spec`` on ``data`` (rows with missing used values are dropped).

    Offset terms (``spec.offsets``) are not part of the design; the verbs that
    read them (``glmm``, ``gee``) evaluate them themselves.

    Parameters
    ----------
    spec : FormulaSpec
    data : pandas.DataFrame
    min_levels : int
        Smallest number of levels a grouping factor may have.
    response : array-like, optional
        The outcome's values on every row of ``data``, when the caller computes
        them from the parsed outcome (``glmm`` turns ``cbind(successes,
        failures)`` into proportions); the outcome's columns are then not read.
        Needed for a ``cbind()`` outcome.

    Returns
    -------
    ModelFrame

    Raises
    ------
    ModelSpecificationError
        For unknown columns, a non-numeric response, a grouping factor with
        fewer than ``min_levels`` levels, or as many levels as observations.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": [1., 2, 3, None, 5, 6], "x": [0., 1, 0, 1, 0, 1],
    ...                    "g": list("aabbcc")})
    >>> mf = build_design(parse_formula("y ~ x + (1 | g)"), df)
    >>> mf.nobs, mf.n_dropped, mf.dropped_by_column
    (5, 1, {'y': 1})
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError(
            f"`data` is a {type(data).__name__}; expected a pandas DataFrame with one row per observation."
        )
    if spec.cbind and response is None:
        raise ModelSpecificationError(
            f"The outcome {spec.response_text!r} of formula {_short(spec.text)} is cbind(successes, failures), "
            f"which only glmm() reads; fit it with glmm(..., family='binomial')."
        )
    used = spec._model_columns(response=response is None)
    for c in used:
        if c not in data.columns:
            _Evaluator(data, spec.text).column(c)  # raises the informative error
    # a name used twice, infinite values, values whose squares overflow: named before any arithmetic
    check_model_columns(data, used)
    # response
    ev0 = _Evaluator(data, spec.text)
    ynode = spec.nodes[spec.response]
    if response is not None:
        y_all = np.array(response, dtype=float)
        if y_all.shape != (len(data),):
            raise ModelSpecificationError(
                f"The outcome values given for formula {_short(spec.text)} number {y_all.size}; expected one per "
                f"row of `data` ({len(data)})."
            )
    elif ynode.kind == "name":
        ys = data[str(ynode.value)]
        if _is_categorical_series(ys):
            raise ModelSpecificationError(
                f"The outcome {spec.response!r} has non-numeric values (dtype {ys.dtype}); a linear mixed model "
                f"needs a numeric outcome, so convert it or use glmm() for a binary outcome."
            )
        y_all = ys.to_numpy(dtype=float, na_value=np.nan)
    else:
        y_all = ev0.numeric(ynode, spec.response)
    # missingness per raw column
    miss = np.zeros(len(data), dtype=bool)
    by_col: dict[str, int] = {}
    for c in used:
        m = data[c].isna().to_numpy()
        if m.any():
            by_col[c] = int(m.sum())
        miss |= m
    # derived values can be missing too (log of a negative number, ...)
    nonfinite = ~np.isfinite(y_all)
    if nonfinite.any():
        raw_na = np.zeros(len(data), dtype=bool)
        for c in (_columns_of(ynode) if response is None else ()):
            raw_na |= data[c].isna().to_numpy()
        extra = int((nonfinite & ~raw_na).sum())  # e.g. log(0): not missing in the data itself
        if extra:
            by_col[spec.response] = by_col.get(spec.response, 0) + extra
        miss |= nonfinite
    keep = ~miss
    del miss
    if not keep.any():
        empty = [c for c in used if by_col.get(c, 0) == len(data)]
        if empty and len(data):
            role = "outcome" if empty[0] in _columns_of(ynode) else "column"
            raise ModelSpecificationError(
                f"The {role} {empty[0]!r} of formula {_short(spec.text)} has no observed values (all {len(data)} "
                f"rows are missing); expected some observed values, so check the column name and its "
                f"missing-value codes."
            )
        detail = ", ".join(f"{k}: {v}" for k, v in by_col.items())
        raise ModelSpecificationError(
            f"Every row of `data` has a missing value in a model variable ({detail}); expected complete rows, "
            f"so check the column names and missing-value codes."
        )
    # the used rows are evaluated column by column (no copy of the data frame)
    infos: dict = {}
    ev = _Evaluator(data, spec.text, rows=None if keep.all() else keep)
    X, plan = _model_matrix(ev, spec, spec.fixed_terms, spec.intercept, infos)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        # non-finite derived values (e.g. log(0)): drop and count them under the term
        for j, (name, _) in enumerate(plan):
            nb = int((~np.isfinite(X[:, j])).sum())
            if nb:
                by_col[name] = by_col.get(name, 0) + nb
        del X
        keep_idx = np.flatnonzero(keep)
        keep[keep_idx[bad]] = False
        infos = {}
        ev = _Evaluator(data, spec.text, rows=keep)
        X, plan = _model_matrix(ev, spec, spec.fixed_terms, spec.intercept, infos)
    del bad
    y = y_all if keep.all() else y_all[keep]
    del y_all
    if y.base is not None or not y.flags.writeable:
        y = y.copy()  # the model frame owns its outcome values
    blocks = []
    for rt in spec.random:
        if not rt.terms and rt.intercept:
            # intercept only: a broadcast column of ones, no memory per row
            rplan = (("(Intercept)", ()),)
            Z = np.broadcast_to(np.ones((1, 1)), (len(y), 1))
        else:
            Z, rplan = _model_matrix(ev, spec, rt.terms, rt.intercept, infos)
        infos[("__random_cols__", rt.source, rt.group)] = rplan
        codes, parts = _group_codes(ev, rt)
        nlev = len(parts[0][1])
        if nlev < min_levels:
            raise ModelSpecificationError(
                f"The grouping factor {rt.group!r} in {rt.source} has {nlev} level(s) in the rows used; "
                f"expected at least {min_levels}, so remove that random effect or check the data."
            )
        if nlev >= len(y):
            raise ModelSpecificationError(
                f"The grouping factor {rt.group!r} in {rt.source} has {nlev} levels for {len(y)} "
                f"observations; a random effect needs fewer levels than observations, so remove it."
            )
        if not np.isfinite(Z).all():
            raise ModelSpecificationError(
                f"The random-effect term {rt.source} has non-finite values; check its variables."
            )
        blocks.append(RandomBlock(rt.group, tuple(p[0] for p in rplan), Z, codes, parts))
    del ev
    if X.shape[1] == 0:
        raise ModelSpecificationError(
            f"The formula {spec.text!r} has no fixed effects; expected at least an intercept, so remove '- 1' or '0 +'."
        )
    return ModelFrame(
        spec=spec, y=y, X=X, fixed_names=tuple(p[0] for p in plan), random=tuple(blocks),
        n_dropped=int((~keep).sum()), dropped_by_column=by_col, _infos=infos, _columns=plan,
        _row_index=data.index, _row_keep=None if keep.all() else keep,
    )
