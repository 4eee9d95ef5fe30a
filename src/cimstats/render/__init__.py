"""Rendering: one immutable :class:`TableSpec`, one renderer per format.

Every table cimstats produces (model summaries, mechanism tables, joint
displays) is first built as a :class:`TableSpec`: formatted cell text with
cell kinds, header rows with spans, body rows with merged cells and group
headings, footnotes, notes and orientation. Renderers take only that spec:

=============  ==========================================================
``to_docx``    Word: captioned real table, repeated header, merges, landscape section
``to_xlsx``    Excel: merged cells, numbers as numbers, no formula injection
``to_html``    self-contained, escaped, accessible HTML
``to_latex``   booktabs; longtable for long tables; landscape
``to_markdown`` GitHub-flavoured pipe table
``to_text``    aligned plain text
=============  ==========================================================

:func:`render` picks the renderer from the file suffix. :func:`model_table` lays
several fitted models side by side in one spec (one column per model). Figures of fitted
results (forest plot, caterpillar plot, path diagram, invariance summary) are
in :mod:`cimstats.render.figures`. Numbers are formatted
when the spec is built, by a :class:`NumberFormat` (journal conventions).

Examples
--------
>>> import tempfile, pathlib
>>> from cimstats.render import TableSpec, Cell, Row, render
>>> spec = TableSpec(title="Demo", header=((Cell("Term"), Cell("p", kind="p_value")),),
...                  body=(Row((Cell("x"), Cell("<0.001", kind="p_value"))),))
>>> with tempfile.TemporaryDirectory() as d:
...     paths = [render(spec, pathlib.Path(d) / f"t.{ext}") for ext in ("docx", "xlsx", "html", "tex", "md", "txt")]
...     [p.suffix for p in paths]
['.docx', '.xlsx', '.html', '.tex', '.md', '.txt']
"""

from __future__ import annotations

import os
from pathlib import Path

from cimstats.errors import RenderError
from cimstats.render.escape import escape_html, escape_latex, escape_markdown, spreadsheet_text
from cimstats.render.numbers import PRESETS, NumberFormat
from cimstats.render.office import to_docx, to_xlsx
from cimstats.render.model_table import model_table, model_table_frame
from cimstats.render.spec import CELL_KINDS, Cell, Footnote, Row, TableSpec
from cimstats.render.text_formats import to_html, to_latex, to_markdown, to_text

__all__ = [
    "TableSpec",
    "Cell",
    "Row",
    "Footnote",
    "CELL_KINDS",
    "NumberFormat",
    "PRESETS",
    "render",
    "model_table",
    "model_table_frame",
    "to_docx",
    "to_xlsx",
    "to_html",
    "to_latex",
    "to_markdown",
    "to_text",
    "escape_html",
    "escape_latex",
    "escape_markdown",
    "spreadsheet_text",
    "FORMATS",
    "Figure",
    "forest_plot",
    "caterpillar_plot",
    "path_diagram",
    "invariance_plot",
]

# figures need matplotlib; load them on first use so tables render without it
_FIGURES = {"Figure", "forest_plot", "caterpillar_plot", "path_diagram", "invariance_plot"}


def __getattr__(name: str):
    if name in _FIGURES:
        from cimstats.render import figures  # deferred: figures load matplotlib

        return getattr(figures, name)
    raise AttributeError(f"module 'cimstats.render' has no attribute '{name}'")

#: file suffix -> renderer
FORMATS = {
    ".docx": to_docx,
    ".xlsx": to_xlsx,
    ".html": to_html,
    ".htm": to_html,
    ".tex": to_latex,
    ".md": to_markdown,
    ".txt": to_text,
}


def render(spec: TableSpec, path: str | os.PathLike, *, format: str | None = None, **options) -> Path:
    """Write a table to ``path`` in the format its suffix names (or ``format=``).

    Parameters
    ----------
    spec : TableSpec
        The table (for Word, also a list of specs).
    path : path-like
        Output file; written atomically.
    format : str, optional
        One of ``docx, xlsx, html, tex, md, txt`` when the suffix is different.
    **options
        Passed to the renderer (e.g. ``long=True`` for LaTeX).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    key = ("." + format.lstrip(".").lower()) if format else path.suffix.lower()
    fn = FORMATS.get(key)
    if fn is None:
        raise RenderError(
            f"Cannot tell the output format of '{path}' (suffix {path.suffix!r}); "
            f"use one of {', '.join(sorted(FORMATS))} or pass `format=`."
        )
    fn(spec, path, **options)
    return path
