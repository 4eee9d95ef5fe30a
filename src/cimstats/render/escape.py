"""Escaping of cell text for every output format.

Text in tables comes from users, QDA projects and interview quotes, so it
may contain markup or formula syntax. Each function returns text that the
target format shows literally, never as markup, commands or formulas.

Examples
--------
>>> from cimstats.render.escape import escape_html, escape_latex, escape_markdown, spreadsheet_text
>>> escape_html('<b>"x" & y</b>')
'&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;'
>>> escape_latex("50% of $x_1$ & {y}")
'50\\\\% of \\\\$x\\\\_1\\\\$ \\\\& \\\\{y\\\\}'
>>> escape_markdown("a|b *c*")
'a\\\\|b \\\\*c\\\\*'
>>> spreadsheet_text("=HYPERLINK(1)")
('=HYPERLINK(1)', True)
"""

from __future__ import annotations

import html
import re

__all__ = [
    "escape_html",
    "escape_latex",
    "escape_markdown",
    "spreadsheet_text",
    "xml_safe",
    "FORMULA_PREFIXES",
]

from cimstats._sheets import FORMULA_PREFIXES  # one list for every spreadsheet writer

# XML 1.0 forbids C0 controls other than tab/newline/CR, lone surrogates and U+FFFE/U+FFFF
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Replace characters XML 1.0 cannot hold (control characters) with U+FFFD.

    Word, Excel and HTML documents are XML or XML-like; a raw control
    character would corrupt the file. The replacement is visible so nothing
    is dropped silently.
    """
    return _XML_ILLEGAL.sub("\ufffd", text)


def escape_html(text: str) -> str:
    """Escape text for HTML element content and attribute values; newlines become ``<br>``."""
    return html.escape(xml_safe(text), quote=True).replace("\r\n", "\n").replace("\n", "<br>")


_LATEX_MAP = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': r"\textquotedbl{}",
    "[": r"{[}",
    "]": r"{]}",
    "-": r"-{}",
    "`": r"\textasciigrave{}",
    "'": r"\textquotesingle{}",
    "\u2212": r"\ensuremath{-}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_MAP))


def escape_latex(text: str) -> str:
    """Escape every LaTeX special character so text is typeset literally.

    Handles ``\\ { } $ & # ^ _ % ~``, the characters that OT1 fonts show as
    other glyphs (``< > | "``), brackets (which would start optional
    arguments after ``\\\\``), hyphens (ligatures ``--``/``---``), quotes
    (ligatures) and the Unicode minus. Newlines become ``\\newline`` and
    control characters are replaced.
    """
    text = xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")
    out = _LATEX_RE.sub(lambda m: _LATEX_MAP[m.group(0)], text)
    return out.replace("\n", r"\newline{}")


# inline Markdown syntax (cells and the paragraphs cimstats writes never start a block with user text)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]!|<>~&$])")


def escape_markdown(text: str) -> str:
    """Escape text for a cell of a Markdown (GFM) pipe table.

    Every ASCII punctuation character that inline Markdown (and common
    extensions: strikethrough, math, attributes) may interpret is
    backslash-escaped, pipes cannot close the cell, and line breaks become
    ``<br>`` (the only line break a pipe-table cell can hold).
    """
    text = xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")
    parts = [_MD_SPECIAL.sub(r"\\\1", p) for p in text.split("\n")]
    # leading/trailing whitespace would be stripped by the table parser; keep it visible
    return "<br>".join(p.replace("\t", " ") for p in parts)


def spreadsheet_text(text: str) -> tuple[str, bool]:
    """Text for a spreadsheet cell and whether it must be stored as quoted text.

    Returns the text (with XML-illegal characters replaced) and ``True``
    when it starts with a formula prefix (``= + - @``, tab, CR or their
    full-width forms), in which case the xlsx renderer stores it as a string
    cell with Excel's quote prefix, so it is shown literally and never
    evaluated, even after editing.
    """
    t = xml_safe(text)
    return t, t.startswith(FORMULA_PREFIXES)
