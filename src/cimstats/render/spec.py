"""The immutable table specification that every renderer takes.

A :class:`TableSpec` is the single input of the renderers (Word, Excel, HTML,
LaTeX, Markdown, plain text). It holds already formatted cell text, the kind
of each cell (so a renderer can align numbers and keep raw values in a
spreadsheet), header rows with column spans, body rows with row spans (merged
cells for grouped rows) and full-width group heading rows, footnotes, general
notes and the page orientation. Nothing in it is format-specific; each
renderer escapes the text for its own format.

Examples
--------
>>> from cimstats.render import TableSpec, Cell, Row
>>> spec = TableSpec(
...     title="Associations with self-management",
...     header=((Cell("Term"), Cell("Estimate [95% CI]", kind="ci")),),
...     body=(Row((Cell("Weak ties"), Cell("0.12 [0.03, 0.21]", kind="ci"))),),
...     notes=("CI = confidence interval.",),
... )
>>> spec.n_columns, spec.n_body_rows
(2, 1)
>>> spec.grid()[1][1].text
'0.12 [0.03, 0.21]'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from cimstats.errors import RenderError
from cimstats.render.numbers import NumberFormat

__all__ = ["Cell", "Row", "Footnote", "TableSpec", "CELL_KINDS", "ROW_ROLES"]

#: cell kinds a renderer knows how to align and store
CELL_KINDS = ("text", "number", "count", "estimate", "ci", "p_value", "percent", "quote")
#: row roles: ordinary data, a full-width group heading, a total/summary row
ROW_ROLES = ("data", "group", "total")
_NUMERIC_KINDS = ("number", "count", "estimate", "ci", "p_value", "percent")


@dataclass(frozen=True)
class Cell:
    """One table cell.

    Parameters
    ----------
    text : str
        The formatted text exactly as it should appear (renderers escape it).
    kind : str
        One of ``CELL_KINDS``; numeric kinds are right-aligned, ``quote`` cells
        are set in italics by renderers that can.
    value : float or int, optional
        The raw number behind ``text`` (spreadsheets store it as a number
        with a matching number format).
    colspan, rowspan : int
        How many columns/rows the cell covers (merged cells).
    footnotes : tuple of str
        Footnote markers attached to this cell (must be defined in
        ``TableSpec.footnotes``).
    bold, italic : bool
        Emphasis.
    """

    text: str = ""
    kind: str = "text"
    value: float | int | None = None
    colspan: int = 1
    rowspan: int = 1
    footnotes: tuple[str, ...] = ()
    bold: bool = False
    italic: bool = False

    def __post_init__(self):
        if not isinstance(self.text, str):
            object.__setattr__(self, "text", "" if self.text is None else str(self.text))
        if self.kind not in CELL_KINDS:
            raise RenderError(
                f"Cell kind {self.kind!r} is not known; expected one of {', '.join(CELL_KINDS)}."
            )
        for name in ("colspan", "rowspan"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise RenderError(f"Cell `{name}={v!r}` must be a positive integer.")
        if isinstance(self.footnotes, str):
            object.__setattr__(self, "footnotes", (self.footnotes,))
        else:
            object.__setattr__(self, "footnotes", tuple(self.footnotes))

    @property
    def numeric(self) -> bool:
        """Whether the cell holds a number-like kind (right-aligned)."""
        return self.kind in _NUMERIC_KINDS


@dataclass(frozen=True)
class Row:
    """One body row: its cells and its role (``data``, ``group`` heading or ``total``)."""

    cells: tuple[Cell, ...]
    role: str = "data"

    def __post_init__(self):
        cells = tuple(c if isinstance(c, Cell) else Cell(str(c)) for c in self.cells)
        object.__setattr__(self, "cells", cells)
        if self.role not in ROW_ROLES:
            raise RenderError(f"Row role {self.role!r} is not known; expected one of {', '.join(ROW_ROLES)}.")


@dataclass(frozen=True)
class Footnote:
    """A table footnote: its marker (``a``, ``b``, ``*``, ``†``...) and text."""

    marker: str
    text: str


def _as_cells(row: Iterable[Any]) -> tuple[Cell, ...]:
    return tuple(c if isinstance(c, Cell) else Cell("" if c is None else str(c)) for c in row)


@dataclass(frozen=True)
class TableSpec:
    """An immutable, renderer-independent table.

    Parameters
    ----------
    title : str
        The table title; renderers write it as the caption (``Table N. title``
        where a number is given).
    header : tuple of tuple of Cell
        Column header rows, top first; cells may span columns (``colspan``)
        and rows (``rowspan``).
    body : tuple of Row
        Body rows. A ``group`` row holds one cell spanning every column (a
        row-group heading); cells with ``rowspan`` > 1 merge vertically (e.g.
        one theme cell beside several hypothesis rows).
    number : str or int, optional
        The table number used in captions (``"1"`` -> ``Table 1.``).
    caption : str, optional
        Extra caption text after the title (a sentence describing the table).
    footnotes : tuple of Footnote
        Marker-keyed footnotes, written below the table in order.
    notes : tuple of str
        General notes (abbreviations, sources), written below the table
        before the footnotes, prefixed ``Note.``.
    orientation : {"portrait", "landscape"}
        Page orientation (Word section, LaTeX ``landscape`` environment).
    label : str, optional
        A machine label (HTML ``id``, LaTeX ``\\label``); letters, digits,
        ``-``, ``_`` and ``:`` only.
    column_widths : tuple of float, optional
        Relative column widths (normalised by renderers that use them).

    Raises
    ------
    cimstats.errors.RenderError
        When rows do not cover the same number of columns once spans are
        laid out, spans overlap or run past the table, or a cell refers to a
        footnote marker that is not defined.
    """

    title: str = ""
    header: tuple[tuple[Cell, ...], ...] = ()
    body: tuple[Row, ...] = ()
    number: str | None = None
    caption: str | None = None
    footnotes: tuple[Footnote, ...] = ()
    notes: tuple[str, ...] = ()
    orientation: str = "portrait"
    label: str | None = None
    column_widths: tuple[float, ...] | None = None
    _grid: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        header = tuple(_as_cells(r) for r in self.header)
        body = tuple(r if isinstance(r, Row) else Row(_as_cells(r)) for r in self.body)
        footnotes = tuple(f if isinstance(f, Footnote) else Footnote(*f) for f in self.footnotes)
        notes = (self.notes,) if isinstance(self.notes, str) else tuple(self.notes)
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "footnotes", footnotes)
        object.__setattr__(self, "notes", notes)
        if self.number is not None:
            object.__setattr__(self, "number", str(self.number))
        if self.column_widths is not None:
            object.__setattr__(self, "column_widths", tuple(float(w) for w in self.column_widths))
        if self.orientation not in ("portrait", "landscape"):
            raise RenderError(
                f"`orientation={self.orientation!r}` is not known; expected 'portrait' or 'landscape'."
            )
        if self.label is not None:
            import re

            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_:\-]*", self.label):
                raise RenderError(
                    f"`label={self.label!r}` must start with a letter and use only letters, digits, '-', '_' or ':'."
                )
        rows = list(header) + [r.cells for r in body]
        if not rows:
            raise RenderError("The table has no header and no body rows; give at least one row.")
        ncols = self._infer_ncols(rows)
        grid = self._layout(rows, ncols)
        object.__setattr__(self, "_grid", grid)
        object.__setattr__(self, "_ncols", ncols)
        for r in body:
            if r.role == "group" and (len(r.cells) != 1 or r.cells[0].colspan != ncols):
                raise RenderError(
                    f"A group row must hold exactly one cell spanning all {ncols} columns; "
                    f"found {len(r.cells)} cell(s); use `Row.group(text, n_columns)` to build it."
                )
        defined = {f.marker for f in footnotes}
        for row in rows:
            for c in row:
                for m in c.footnotes:
                    if m not in defined:
                        raise RenderError(
                            f"Cell {c.text[:40]!r} refers to footnote marker {m!r}, which is not in "
                            f"`footnotes`; add Footnote({m!r}, text)."
                        )
        if self.column_widths is not None and len(self.column_widths) != ncols:
            raise RenderError(
                f"`column_widths` has {len(self.column_widths)} entries but the table has {ncols} columns."
            )

    # ----------------------------------------------------------------- layout
    @staticmethod
    def _infer_ncols(rows) -> int:
        # the first row that has no cell covered from above determines the width
        first = rows[0]
        return sum(c.colspan for c in first)

    @staticmethod
    def _layout(rows, ncols):
        """Place cells on a grid; covered positions hold ``None``."""
        grid: list[list] = [[None] * ncols for _ in rows]
        occupied = [[False] * ncols for _ in rows]
        for i, row in enumerate(rows):
            j = 0
            for c in row:
                while j < ncols and occupied[i][j]:
                    j += 1
                if j + c.colspan > ncols:
                    raise RenderError(
                        f"Row {i + 1} of the table needs more than {ncols} columns at cell {c.text[:40]!r}; "
                        "every row must cover the same columns once spans are counted."
                    )
                if i + c.rowspan > len(rows):
                    raise RenderError(
                        f"Cell {c.text[:40]!r} in row {i + 1} spans {c.rowspan} rows, past the end of the table."
                    )
                for di in range(c.rowspan):
                    for dj in range(c.colspan):
                        if occupied[i + di][j + dj]:
                            raise RenderError(
                                f"Cell {c.text[:40]!r} in row {i + 1} overlaps another merged cell."
                            )
                        occupied[i + di][j + dj] = True
                grid[i][j] = c
                j += c.colspan
            if not all(occupied[i]):
                raise RenderError(
                    f"Row {i + 1} of the table covers {sum(occupied[i])} of {ncols} columns; "
                    "add cells or spans so every row covers every column."
                )
        return tuple(tuple(r) for r in grid)

    # ------------------------------------------------------------- accessors
    @property
    def n_columns(self) -> int:
        """Number of columns."""
        return self._ncols  # type: ignore[attr-defined]

    @property
    def n_header_rows(self) -> int:
        return len(self.header)

    @property
    def n_body_rows(self) -> int:
        return len(self.body)

    def grid(self) -> tuple[tuple[Cell | None, ...], ...]:
        """All rows (header first) laid out on the column grid; covered positions are ``None``."""
        return self._grid

    def merges(self) -> list[tuple[int, int, int, int]]:
        """Merged ranges as ``(first_row, first_col, last_row, last_col)`` on the full grid (0-based)."""
        out = []
        for i, row in enumerate(self._grid):
            for j, c in enumerate(row):
                if c is not None and (c.colspan > 1 or c.rowspan > 1):
                    out.append((i, j, i + c.rowspan - 1, j + c.colspan - 1))
        return out

    def caption_text(self) -> str:
        """``Table N. Title. Caption`` as plain text (renderers escape it)."""
        parts = []
        if self.number:
            parts.append(f"Table {self.number}.")
        if self.title:
            parts.append(self.title)
        if self.caption:
            parts.append(self.caption)
        return " ".join(parts)

    def joined_notes(self) -> tuple[str, ...]:
        """The general notes as one paragraph (journals print a single ``Note.``); empty when there are none."""
        notes = [n.strip() for n in self.notes if n and n.strip()]
        return (" ".join(notes),) if notes else ()

    def all_text(self) -> list[str]:
        """Every piece of text the table shows (title, caption, cells, notes, footnotes)."""
        out = [self.title, self.caption or ""]
        out += [c.text for row in self._grid for c in row if c is not None]
        out += list(self.notes) + [f.text for f in self.footnotes]
        return out

    def to_frame(self):
        """The body as a DataFrame of cell text, with the last header row as column names.

        Covered (merged) positions repeat the text of the covering cell so the
        frame can be filtered; group rows repeat their heading in column 0 only.
        """
        import pandas as pd

        nh = len(self.header)
        names = []
        if nh:
            last = self._grid[nh - 1]
            cur = ""
            for j in range(self.n_columns):
                if last[j] is not None:
                    cur = last[j].text
                names.append(cur)
        else:
            names = [f"column_{j + 1}" for j in range(self.n_columns)]
        # make names unique
        seen: dict[str, int] = {}
        uniq = []
        for n in names:
            k = seen.get(n, 0)
            uniq.append(n if k == 0 else f"{n}.{k}")
            seen[n] = k + 1
        filled = [list(r) for r in self._grid]
        for i, row in enumerate(self._grid):
            for j, c in enumerate(row):
                if c is not None and (c.rowspan > 1 or c.colspan > 1):
                    for di in range(c.rowspan):
                        for dj in range(c.colspan):
                            filled[i + di][j + dj] = c
        data = [[("" if c is None else c.text) for c in r] for r in filled[nh:]]
        df = pd.DataFrame(data, columns=uniq)
        df.insert(0, "row_role", [r.role for r in self.body])
        return df

    def replace(self, **changes) -> "TableSpec":
        """A copy with some fields changed (the spec itself never changes)."""
        return replace(self, **changes)

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_frame(
        cls,
        frame,
        *,
        title: str = "",
        kinds: dict[str, str] | None = None,
        number_format=None,
        group_by: str | None = None,
        header_labels: dict[str, str] | None = None,
        **kwargs,
    ) -> "TableSpec":
        """Build a spec from a DataFrame, formatting numbers by ``number_format``.

        Parameters
        ----------
        frame : pandas.DataFrame
            One table row per frame row.
        title : str
            Table title.
        kinds : dict, optional
            Column -> cell kind (``estimate``, ``p_value``, ``count``,
            ``percent``...) or number kind (``df``, ``fit_index``: written by
            :meth:`NumberFormat.df` / :meth:`NumberFormat.fit_index` in
            ``number`` cells); numeric columns default to ``number``.
        number_format : NumberFormat, optional
            Formatting convention (default :class:`NumberFormat`).
        group_by : str, optional
            A column whose values become full-width group heading rows (the
            column itself is then not shown).
        header_labels : dict, optional
            Column -> header text.
        **kwargs
            Other :class:`TableSpec` fields (notes, footnotes, orientation...).

        Examples
        --------
        >>> import pandas as pd
        >>> from cimstats.render import TableSpec
        >>> df = pd.DataFrame({"term": ["a", "b"], "p_value": [0.2, 0.0001]})
        >>> s = TableSpec.from_frame(df, kinds={"p_value": "p_value"}, header_labels={"p_value": "p"})
        >>> [c.text for c in s.grid()[2]]
        ['b', '<0.001']
        """
        import pandas as pd


        fmt = number_format or NumberFormat()
        kinds = dict(kinds or {})
        header_labels = dict(header_labels or {})
        cols = [c for c in frame.columns if c != group_by]
        for c in cols:
            if c not in kinds:
                kinds[c] = "number" if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) else "text"

        def cell(col, v):
            k = kinds[col]
            if k == "p_value":
                return Cell(fmt.p(v), kind=k, value=None if fmt._missing(v) else float(v))
            if k == "count":
                return Cell(fmt.count(v), kind=k, value=None if fmt._missing(v) else int(v))
            if k == "percent":
                return Cell(fmt.percent(v), kind=k, value=None if fmt._missing(v) else float(v))
            if k in ("number", "estimate"):
                return Cell(fmt.estimate(v), kind=k, value=None if fmt._missing(v) else float(v))
            if k in ("df", "fit_index"):  # number formats of their own, shown as numbers
                return Cell(fmt.format(k, v), kind="number", value=None if fmt._missing(v) else float(v))
            return Cell("" if fmt._missing(v) else str(v), kind=k)

        header = (tuple(Cell(header_labels.get(c, str(c))) for c in cols),)
        body: list[Row] = []
        if group_by is not None:
            for g, sub in frame.groupby(group_by, sort=False, dropna=False):
                body.append(Row.group("" if fmt._missing(g) else str(g), len(cols)))
                for _, r in sub.iterrows():
                    body.append(Row(tuple(cell(c, r[c]) for c in cols)))
        else:
            for _, r in frame.iterrows():
                body.append(Row(tuple(cell(c, r[c]) for c in cols)))
        return cls(title=title, header=header, body=tuple(body), **kwargs)


def _group(text: str, n_columns: int, **kw) -> Row:
    """A full-width group heading row."""
    return Row((Cell(text, colspan=n_columns, bold=kw.pop("bold", True), **kw),), role="group")


Row.group = staticmethod(_group)  # type: ignore[attr-defined]

