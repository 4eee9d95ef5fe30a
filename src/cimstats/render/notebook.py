"""The one way cimstats objects show themselves in a notebook (``_repr_html_``).

A survey, a harmonisation result, a set of imputations, a survey design or a
fitted result is shown as a short HTML fragment: a heading, a few lines of
facts and, where it helps, the first rows of one table through the HTML table
renderer. Every piece of text is escaped (labels and names come from data
files), and tables are cut to ``max_rows`` rows with a line saying how many
more there are, so a large object never floods the notebook.

Examples
--------
>>> import pandas as pd
>>> from cimstats.render.notebook import notebook_html
>>> html = notebook_html("Survey <demo>", lines=["3 rows"], table=pd.DataFrame({"name": ["a", "b"]}))
>>> html.startswith("<div class='cimstats-object'>") and "Survey &lt;demo&gt;" in html
True
"""

from __future__ import annotations

from typing import Iterable

from cimstats.render.escape import escape_html
from cimstats.render.spec import TableSpec
from cimstats.render.text_formats import to_html

__all__ = ["notebook_html", "MAX_ROWS"]

#: rows of a table shown in a notebook before the rest is summarised in one line
MAX_ROWS = 20


def notebook_html(title: str, *, lines: Iterable[str] = (), table=None, max_rows: int = MAX_ROWS,
                  more: str = "", css_class: str = "cimstats-object") -> str:
    """A compact, escaped HTML fragment: heading, fact lines, the first rows of one table.

    Parameters
    ----------
    title : str
        What the object is ("Survey from wave1.sav").
    lines : iterable of str
        Short facts, one paragraph each.
    table : pandas.DataFrame or TableSpec, optional
        Shown through the HTML renderer; a DataFrame is cut to ``max_rows``
        rows (numbers formatted as in every cimstats table).
    max_rows : int
        Rows of a DataFrame shown.
    more : str
        Where the rest of the table can be found ("result.report.table"),
        named in the line that counts the rows not shown.
    css_class : str
        Class of the enclosing ``div`` (letters, digits and ``-``).

    Returns
    -------
    str
        ``<div class='cimstats-object'>...</div>``.
    """
    css_class = "".join(c for c in css_class if c.isalnum() or c == "-") or "cimstats-object"
    parts = [f"<div class='{css_class}'><p><strong>{escape_html(str(title))}</strong></p>"]
    parts += [f"<p>{escape_html(str(s))}</p>" for s in lines if str(s)]
    if table is not None:
        if isinstance(table, TableSpec):
            parts.append(to_html(table, standalone=False))
        elif len(table.columns):
            shown = table.head(max_rows).copy()
            shown.columns = [str(c) for c in shown.columns]
            parts.append(to_html(TableSpec.from_frame(shown.reset_index(drop=True)), standalone=False))
            if len(table) > max_rows:
                where = f" in {more}" if more else ""
                parts.append(f"<p>{escape_html(f'{len(table) - max_rows} more rows{where}.')}</p>")
    parts.append("</div>")
    return "".join(parts)
