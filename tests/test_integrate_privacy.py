"""Small-cell suppression, quote pseudonymisation and truncation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimstats.errors import RenderError
from cimstats.integrate import IDENTIFIER_PATTERNS, pseudonymise, suppress_small_counts, truncate_quote

tables = st.integers(1, 5).flatmap(
    lambda r: st.integers(1, 6).flatmap(
        lambda c: st.lists(st.lists(st.integers(0, 30), min_size=c, max_size=c), min_size=r, max_size=r)))


@settings(max_examples=300, deadline=None)
@given(tables, st.integers(2, 11), st.sampled_from(["both", "rows", "columns", "none"]))
def test_suppression_protects_every_line(counts, threshold, totals):
    c = np.array(counts)
    s = suppress_small_counts(c, threshold=threshold, totals=totals)
    # primary cells are exactly the small non-zero counts
    assert (s.primary == ((c > 0) & (c < threshold))).all()
    assert not (s.primary & s.secondary).any()
    hidden = s.hidden
    if totals in ("both", "rows"):
        for i in range(c.shape[0]):
            k = int(hidden[i].sum()) + int(s.row_total_hidden[i])
            assert k != 1, (c, hidden)
    if totals in ("both", "columns"):
        for j in range(c.shape[1]):
            k = int(hidden[:, j].sum()) + int(s.col_total_hidden[j])
            assert k != 1, (c, hidden)
    if totals == "both":
        assert int(s.row_total_hidden.sum()) + int(s.grand_total_hidden) != 1
        assert int(s.col_total_hidden.sum()) + int(s.grand_total_hidden) != 1
    if totals == "none":
        assert not s.secondary.any()


def test_suppression_example_and_footnote():
    s = suppress_small_counts([[12, 3, 20], [15, 18, 25]], threshold=5)
    assert s.primary.sum() == 1 and s.n_secondary == 3
    # with the row total, 3 = 35 - 12 - 20 would be revealed unless a second cell is hidden
    assert s.hidden[0].sum() >= 2 and s.hidden[:, 1].sum() >= 2
    assert "counts from 1 to 4" in s.footnote() and "derived from totals" in s.footnote()
    assert s.footnote().startswith("[c] ")
    forced = suppress_small_counts([[10, 12, 30]], threshold=5, also_hide=[[False, True, False]])
    assert forced.primary.tolist() == [[False, True, False]] and forced.secondary.tolist() == [[True, False, False]]
    # a row whose only other cells are zero: the total itself must go
    s2 = suppress_small_counts([[3, 0], [10, 12]], threshold=5, totals="rows")
    assert s2.row_total_hidden.tolist() == [True, False]
    z = suppress_small_counts([[0, 7]], threshold=5, suppress_zeros=True)
    assert z.primary.tolist() == [[True, False]]
    with pytest.raises(RenderError, match="2-D"):
        suppress_small_counts(np.zeros((2, 2, 2)))
    with pytest.raises(RenderError, match="totals"):
        suppress_small_counts([[1]], totals="diagonal")


# ------------------------------------------------------------ pseudonymise
names = st.lists(st.text(alphabet="abcdefghijklmnopqrsáéőű", min_size=2, max_size=8), min_size=1, max_size=4, unique=True)


@settings(max_examples=200, deadline=None)
@given(names, st.lists(st.sampled_from(["said", "and", "the", ",", ".", "x", "!"]), max_size=10), st.randoms())
def test_pseudonymise_removes_every_listed_name(ns, fill, rnd):
    words = fill + [n.capitalize() if rnd.random() < 0.5 else n.upper() for n in ns]
    rnd.shuffle(words)
    text = " ".join(words)
    out = pseudonymise(text, ns, placeholder="[#]")
    for n in ns:
        assert not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", out, flags=re.IGNORECASE), (n, out)
    # the other words are untouched, in order
    kept = [w for w in out.split(" ") if w != "[#]"]
    assert kept == [w for w in words if w.casefold() not in {n.casefold() for n in ns}]


def test_pseudonymise_examples():
    out = pseudonymise("Anna and ANNA Kovács met annabelle; call +44 20 7946 0958 or anna@x.hu",
                       {"Anna Kovács": "P12", "Anna": "P7"},
                       patterns={k: IDENTIFIER_PATTERNS[k] for k in ("email", "phone")})
    assert out == "P7 and P12 met annabelle; call [phone] or [email]"
    assert pseudonymise("Dr. Szabó helped", ["Szabó"]) == "Dr. [name] helped"
    assert pseudonymise("nothing", []) == "nothing"


# --------------------------------------------------------------- truncate
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc défgh,.;") + [" ", "\n"]), max_size=120), st.integers(5, 60),
       st.one_of(st.none(), st.integers(1, 12)))
def test_truncate_respects_limits_and_word_boundaries(text, max_chars, max_words):
    norm = " ".join(text.split())
    out = truncate_quote(text, max_chars=max_chars, max_words=max_words)
    assert len(out) <= max(max_chars, len(norm) if len(norm) <= max_chars and (max_words is None or len(norm.split()) <= max_words) else max_chars)
    if out.endswith("\u2026") and not norm.endswith("\u2026"):
        body = out[:-1]
        assert norm.startswith(body)
        nxt = norm[len(body):len(body) + 1]
        # the cut falls at a word boundary (or inside punctuation), unless one word was longer than the limit
        if len(norm.split(" ")[0]) < max_chars - 1:
            assert nxt in (" ", ",", ".", ";", "") or not body or body[-1] in " ,.;" or norm[len(body) - 1] in ",.;"
    else:
        assert out == norm
    if max_words is not None:
        assert len(out.rstrip("\u2026").split()) <= max_words


def test_truncate_examples():
    assert truncate_quote("We go to the group because the nurse asked us.", max_chars=30) == "We go to the group because\u2026"
    assert truncate_quote("one two three four", max_words=2) == "one two\u2026"
    assert truncate_quote("Supercalifragilistic", max_chars=10) == "Supercali\u2026"
    assert truncate_quote("a, b, c, d", max_chars=6) == "a, b\u2026"
    assert truncate_quote("fits", max_chars=10, ellipsis="...") == "fits"
