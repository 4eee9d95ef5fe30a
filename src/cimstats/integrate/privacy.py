"""Privacy for published tables: small-cell suppression, quote pseudonymisation and truncation.

Small cells
-----------
:func:`suppress_small_counts` hides counts from 1 to ``threshold - 1``
(primary suppression) and then, so the hidden values cannot be recovered by
subtraction from shown totals, hides further cells (secondary, or
complementary, suppression): every line of published values tied by one
sum (a row with its total, a column with its total, and, when both margins
are shown, the row totals with the grand total and the column totals with
the grand total) must hide either none of its values or at least two. In a
line with exactly one hidden value the smallest remaining non-zero cell is
hidden next, else the smallest non-zero total, repeatedly, until every line
holds. This is the usual
line-by-line heuristic of statistical offices; it does not solve the full
linear-programming problem of interval disclosure.

Quotes
------
:func:`pseudonymise` replaces listed names and identifiers by pseudonyms
(whole words, case-insensitively, longest first); :func:`truncate_quote`
shortens a quote at a word boundary and marks the cut with an ellipsis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from cimstats.errors import RenderError

__all__ = ["suppress_small_counts", "Suppression", "pseudonymise", "truncate_quote", "IDENTIFIER_PATTERNS"]


@dataclass(frozen=True)
class Suppression:
    """Which cells of a count table are hidden and why.

    Attributes
    ----------
    counts : numpy.ndarray
        The counts (rows x columns), without totals.
    primary : numpy.ndarray of bool
        Cells hidden because 0 < count < threshold (or 0 when zeros are suppressed).
    secondary : numpy.ndarray of bool
        Cells hidden so primary cells cannot be recovered from totals.
    row_total_hidden, col_total_hidden : numpy.ndarray of bool
        Totals hidden (only when a line has no other cell left to hide).
    grand_total_hidden : bool
    threshold : int
    """

    counts: np.ndarray
    primary: np.ndarray
    secondary: np.ndarray
    row_total_hidden: np.ndarray
    col_total_hidden: np.ndarray
    grand_total_hidden: bool
    threshold: int

    @property
    def hidden(self) -> np.ndarray:
        """Cells hidden for either reason."""
        return self.primary | self.secondary

    @property
    def n_primary(self) -> int:
        return int(self.primary.sum())

    @property
    def n_secondary(self) -> int:
        return int(self.secondary.sum() + self.row_total_hidden.sum() + self.col_total_hidden.sum()
                   + int(self.grand_total_hidden))

    def footnote(self, symbol: str = "[c]") -> str:
        """Footnote text describing the suppression applied (one symbol for every hidden value)."""
        small = "counts of 1" if self.threshold == 2 else f"counts from 1 to {self.threshold - 1}"
        text = f"{symbol} Suppressed to protect participants' confidentiality: {small}"
        if self.n_secondary:
            text += " and further values that would allow a suppressed count to be derived from totals"
        return text + "."


def suppress_small_counts(counts, *, threshold: int = 5, totals: str = "both", suppress_zeros: bool = False,
                          also_hide=None) -> Suppression:
    """Decide which cells of a count table to hide.

    Parameters
    ----------
    counts : array-like of int, shape (rows, columns)
        Cell counts (without totals).
    threshold : int
        Counts below this (and above zero) are hidden; default 5.
    totals : {"both", "rows", "columns", "none"}
        Which totals the published table shows; secondary suppression
        protects against subtraction along those lines.
    suppress_zeros : bool
        Also hide zero counts (some disclosure policies treat a zero as
        disclosive); default False.
    also_hide : array-like of bool, optional
        Further cells to hide as primary (e.g. every cell of a group whose
        size is itself below the threshold).

    Returns
    -------
    Suppression

    Examples
    --------
    >>> s = suppress_small_counts([[12, 3, 20], [15, 18, 25]], threshold=5)
    >>> s.primary.astype(int).tolist()
    [[0, 1, 0], [0, 0, 0]]
    >>> s.secondary.astype(int).tolist()   # row 1, then columns 2 and 1, each need a second hidden cell
    [[1, 0, 0], [1, 1, 0]]
    """
    c = np.asarray(counts)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2:

        raise RenderError(f"`counts` must be a 2-D table of counts; got {c.ndim} dimensions.")
    c = c.astype(float)
    if threshold < 1:

        raise RenderError(f"`threshold={threshold}` must be at least 1.")
    primary = (c > 0) & (c < threshold)
    if suppress_zeros:
        primary |= c == 0
    if also_hide is not None:
        extra = np.asarray(also_hide, dtype=bool)
        if extra.shape != c.shape:

            raise RenderError(f"`also_hide` has shape {extra.shape}; expected the shape of `counts`, {c.shape}.")
        primary |= extra
    if totals not in ("both", "rows", "columns", "none"):

        raise RenderError(f"`totals={totals!r}` is not known; expected 'both', 'rows', 'columns' or 'none'.")
    R, C = c.shape
    # every published value is an entry; a line is a set of entries tied by one additive constraint
    value: dict[tuple, float] = {("cell", i, j): c[i, j] for i in range(R) for j in range(C)}
    hidden_e: set[tuple] = {("cell", i, j) for i in range(R) for j in range(C) if primary[i, j]}
    lines: list[list[tuple]] = []
    use_rows = totals in ("both", "rows")
    use_cols = totals in ("both", "columns")
    if use_rows:
        for i in range(R):
            value[("row", i)] = c[i].sum()
            lines.append([("cell", i, j) for j in range(C)] + [("row", i)])
    if use_cols:
        for j in range(C):
            value[("col", j)] = c[:, j].sum()
            lines.append([("cell", i, j) for i in range(R)] + [("col", j)])
    if use_rows and use_cols:
        value[("grand",)] = c.sum()
        lines.append([("row", i) for i in range(R)] + [("grand",)])
        lines.append([("col", j) for j in range(C)] + [("grand",)])

    def hide_one(line: list[tuple]) -> bool:
        free = [e for e in line if e not in hidden_e]
        if not free:
            return False
        # smallest non-zero cell first, then the smallest non-zero total; a hidden zero next to one
        # small count would still let the total bound it tightly, so zeros come last
        def rank(e):
            v = value[e]
            return (v == 0, e[0] != "cell", v)

        hidden_e.add(min(free, key=rank))
        return True

    changed, guard = True, 0
    while changed and guard < 4 * (len(value) + 1):
        changed = False
        guard += 1
        for line in lines:
            if sum(e in hidden_e for e in line) == 1 and hide_one(line):
                changed = True
    hidden = np.zeros((R, C), bool)
    for e in hidden_e:
        if e[0] == "cell":
            hidden[e[1], e[2]] = True
    row_tot_hidden = np.array([("row", i) in hidden_e for i in range(R)], bool)
    col_tot_hidden = np.array([("col", j) in hidden_e for j in range(C)], bool)
    grand_hidden = ("grand",) in hidden_e
    secondary = hidden & ~primary
    return Suppression(c.astype(int) if np.all(np.isfinite(c)) else c, primary, secondary,
                       row_tot_hidden, col_tot_hidden, grand_hidden, threshold)


#: optional patterns for common direct identifiers (pass to ``pseudonymise(patterns=...)``)
IDENTIFIER_PATTERNS: dict[str, str] = {
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "phone": r"(?<!\w)\+?\d[\d ()-]{7,}\d(?!\w)",
    "postcode_uk": r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b",
}


def pseudonymise(text: str, names: Mapping[str, str] | Iterable[str] = (), *, patterns: Mapping[str, str] | None = None,
                 placeholder: str = "[name]") -> str:
    """Replace participants' names and listed identifiers in a quote.

    Parameters
    ----------
    text : str
        The quote.
    names : mapping or iterable of str
        Names or identifiers to hide: a mapping ``real -> pseudonym`` or a
        list (each replaced by ``placeholder``). Matching is whole-word,
        case-insensitive and Unicode-aware; longer names win over shorter
        ones they contain ("Anna Kovács" before "Anna").
    patterns : mapping, optional
        ``label -> regular expression`` for further identifiers (see
        :data:`IDENTIFIER_PATTERNS`); each match becomes ``[label]``.
    placeholder : str
        Replacement for names given as a list.

    Returns
    -------
    str

    Examples
    --------
    >>> pseudonymise("Anna said Anna Kovács helps, mail anna@x.org", {"Anna Kovács": "P12", "Anna": "P7"},
    ...              patterns={"email": IDENTIFIER_PATTERNS["email"]})
    'P7 said P12 helps, mail [email]'
    """
    if text is None:
        return text
    mapping = dict(names) if isinstance(names, Mapping) else {n: placeholder for n in names}
    mapping = {k: v for k, v in mapping.items() if k and str(k).strip()}
    out = str(text)
    # identifiers by pattern first, so a name inside an e-mail address goes with the address
    for label, pat in (patterns or {}).items():
        out = re.sub(pat, f"[{label}]", out)
    if mapping:
        keys = sorted(mapping, key=len, reverse=True)
        lookup = {k.casefold(): mapping[k] for k in keys}
        rx = re.compile(r"(?<!\w)(" + "|".join(re.escape(k) for k in keys) + r")(?!\w)", re.IGNORECASE)
        out = rx.sub(lambda m: lookup.get(m.group(0).casefold(), placeholder), out)
    return out


def truncate_quote(text: str, *, max_chars: int | None = 200, max_words: int | None = None, ellipsis: str = "\u2026") -> str:
    """Shorten a quote at a word boundary, marking the cut with an ellipsis.

    The result, ellipsis included, is at most ``max_chars`` characters and
    ``max_words`` words; a quote that fits is returned unchanged (trimmed).
    Trailing punctuation before the cut is dropped so the ellipsis reads
    cleanly. A single word longer than the limit is cut inside the word.

    Examples
    --------
    >>> truncate_quote("We go to the group because the nurse asked us to come along.", max_chars=30)
    'We go to the group because…'
    >>> truncate_quote("Short.", max_chars=30)
    'Short.'
    """
    if text is None:
        return text
    t = " ".join(str(text).split())
    words = t.split(" ") if t else []
    cut = False
    if max_words is not None and len(words) > max_words:
        words = words[:max_words]
        cut = True
    t2 = " ".join(words)
    if max_chars is not None and len(t2) + (len(ellipsis) if cut else 0) > max_chars:
        budget = max(max_chars - len(ellipsis), 1)
        kept: list[str] = []
        size = 0
        for w in words:
            add = len(w) + (1 if kept else 0)
            if size + add > budget:
                break
            kept.append(w)
            size += add
        if not kept:
            kept = [words[0][:budget]] if words else []
        t2 = " ".join(kept)
        cut = True
    if cut:
        t2 = t2.rstrip(" ,;:.-\u2013\u2014") + ellipsis
    return t2
