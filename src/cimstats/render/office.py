"""Office renderers: Word (.docx, python-docx) and Excel (.xlsx, openpyxl).

Both take one :class:`~cimstats.render.spec.TableSpec` (or, for Word, a
sequence of them, one section each) and write the file atomically.
"""

from __future__ import annotations

import io
import os
import re
from typing import Sequence

from cimstats.errors import RenderError
from cimstats._files import atomic_write
from cimstats._files import reproducible_office_file
from cimstats._sheets import set_text_cell, sheet_title
from cimstats.render.escape import xml_safe
from cimstats.render.spec import Cell, TableSpec

__all__ = ["to_docx", "to_xlsx"]


def _specs(spec) -> list[TableSpec]:
    specs = [spec] if isinstance(spec, TableSpec) else list(spec) if isinstance(spec, (list, tuple)) else None
    if not specs or not all(isinstance(s, TableSpec) for s in specs):
        raise RenderError(
            f"Renderers take a TableSpec (or, for Word, a list of them), got {type(spec).__name__}; "
            "build one with TableSpec(...) or use `.table` of a joint display."
        )
    return specs


# ---------------------------------------------------------------------- Word
def _set_border(cell, **edges):
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tcPr = cell._tc.get_or_add_tcPr()
    borders = tcPr.find(qn("w:tcBorders"))
    if borders is None:
        borders = OxmlElement("w:tcBorders")
        tcPr.append(borders)
    for edge, size in edges.items():
        el = borders.find(qn(f"w:{edge}"))
        if el is None:
            el = OxmlElement(f"w:{edge}")
            borders.append(el)
        el.set(qn("w:val"), "single")
        el.set(qn("w:sz"), str(size))
        el.set(qn("w:space"), "0")
        el.set(qn("w:color"), "000000")


def _repeat_header(row) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    trPr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    trPr.append(el)


def _cant_split(row) -> None:
    from docx.oxml import OxmlElement

    row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))


def _write_runs(paragraph, c: Cell, *, bold: bool = False, italic: bool = False, size=None) -> None:
    text = xml_safe(c.text).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    for k, line in enumerate(lines):
        run = paragraph.add_run(line)
        run.bold = c.bold or bold or None
        run.italic = c.italic or italic or c.kind == "quote" or None
        if size is not None:
            run.font.size = size
        if k < len(lines) - 1:
            run.add_break()
    if c.footnotes:
        r = paragraph.add_run(",".join(xml_safe(m) for m in c.footnotes))
        r.font.superscript = True
        if size is not None:
            r.font.size = size


def _caption(doc, spec: TableSpec, number: int) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    try:
        p = doc.add_paragraph(style="Caption")
    except KeyError:  # pragma: no cover - template without a Caption style
        p = doc.add_paragraph()
    lead = p.add_run("Table ")
    lead.bold = True
    # a real SEQ field so Word's list of tables and cross-references work
    fld = OxmlElement("w:fldSimple")
    fld.set(qn("w:instr"), " SEQ Table \\* ARABIC ")
    r = OxmlElement("w:r")
    rpr = OxmlElement("w:rPr")
    b = OxmlElement("w:b")
    rpr.append(b)
    r.append(rpr)
    t = OxmlElement("w:t")
    t.text = str(spec.number or number)
    r.append(t)
    fld.append(r)
    p._p.append(fld)
    dot = p.add_run(".")
    dot.bold = True
    rest = " ".join(x for x in (spec.title, spec.caption or "") if x)
    if rest:
        p.add_run(" " + xml_safe(rest))
    p.paragraph_format.keep_with_next = True


def _docx_table(doc, spec: TableSpec, usable_width=None) -> None:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    grid = spec.grid()
    nh = spec.n_header_rows
    nrows, ncols = len(grid), spec.n_columns
    table = doc.add_table(rows=nrows, cols=ncols)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = True
    small = Pt(9)
    # merge first (merging concatenates content), then write text into origin cells
    # python-docx recomputes the cell grid on every table.cell() call; take it once per stage
    if spec.merges():
        cells0 = table._cells
        for (r0, c0, r1, c1) in spec.merges():
            cells0[r0 * ncols + c0].merge(cells0[r1 * ncols + c1])
    cells = table._cells
    rows = table.rows
    for i, row in enumerate(grid):
        role = "header" if i < nh else spec.body[i - nh].role
        for j, c in enumerate(row):
            if c is None:
                continue
            cell = cells[i * ncols + j]
            p = cell.paragraphs[0]
            _write_runs(p, c, bold=(role == "header" or role == "group"), italic=(role == "group"), size=small)
            if c.numeric and role != "group":
                p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            elif i < nh and c.colspan > 1:
                p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if spec.column_widths and usable_width:
        total = sum(spec.column_widths)
        table.autofit = False
        widths = [int(usable_width * w / total) for w in spec.column_widths]
        for k, col in enumerate(table.columns):
            col.width = widths[k]
        for i in range(nrows):
            for j in range(ncols):
                cells[i * ncols + j].width = widths[j]
    for i in range(nh):
        _repeat_header(rows[i])
    for i in range(nrows):
        _cant_split(rows[i])

    def at(i, j):
        return cells[i * ncols + j]

    # three-line (booktabs-like) rules
    for j in range(ncols):
        _set_border(at(0, j), top=12)
        if nh:
            _set_border(at(nh - 1, j), bottom=6)
        _set_border(at(nrows - 1, j), bottom=12)
    for k, r in enumerate(spec.body):
        if r.role == "total":
            for j in range(ncols):
                _set_border(at(nh + k, j), top=4)
    for n in spec.joined_notes():
        p = doc.add_paragraph()
        lead = p.add_run("Note. ")
        lead.italic = True
        lead.font.size = small
        run = p.add_run(xml_safe(n))
        run.font.size = small
    for f in spec.footnotes:
        p = doc.add_paragraph()
        m = p.add_run(xml_safe(f.marker))
        m.font.superscript = True
        m.font.size = small
        run = p.add_run(" " + xml_safe(f.text))
        run.font.size = small


def to_docx(spec: TableSpec | Sequence[TableSpec], path: str | os.PathLike | None = None) -> bytes:
    """Render one or more tables to a Word document.

    Each table gets its own section (portrait or landscape as the spec
    says), a numbered caption with a Word ``SEQ Table`` field, a real table
    whose header rows repeat on every page, merged cells for spans and
    group rows, three-line rules, and notes and footnotes below.

    Parameters
    ----------
    spec : TableSpec or sequence of TableSpec
    path : path-like, optional
        Write the document there (atomically).

    Returns
    -------
    bytes
        The .docx file content.

    Examples
    --------
    >>> from cimstats.render import TableSpec, Cell, to_docx
    >>> data = to_docx(TableSpec(title="T", header=((Cell("a"),),), body=((Cell("x"),),)))
    >>> data[:2]
    b'PK'
    """
    import docx
    from docx.enum.section import WD_ORIENT, WD_SECTION

    specs = _specs(spec)
    doc = docx.Document()
    for k, s in enumerate(specs):
        if k == 0:
            section = doc.sections[0]
        else:
            section = doc.add_section(WD_SECTION.NEW_PAGE)
        want = WD_ORIENT.LANDSCAPE if s.orientation == "landscape" else WD_ORIENT.PORTRAIT
        w, h = section.page_width, section.page_height
        if (want == WD_ORIENT.LANDSCAPE) != (w > h):
            section.page_width, section.page_height = h, w
        section.orientation = want
        _caption(doc, s, k + 1)
        _docx_table(doc, s, section.page_width - section.left_margin - section.right_margin)
    buf = io.BytesIO()
    doc.save(buf)
    data = reproducible_office_file(buf.getvalue())
    if path is not None:
        atomic_write(path, data, error=RenderError)
    return data


# --------------------------------------------------------------------- Excel

def _decimals_of(text: str) -> int:
    m = re.search(r"[.\u00b7,](\d+)", text)
    return len(m.group(1)) if m else 0


def _xlsx_sheet(ws, spec: TableSpec, numbers_as_values: bool) -> None:
    """Write one table onto a worksheet."""
    from openpyxl.styles import Alignment, Border, Font, Side

    thin, thick = Side(style="thin"), Side(style="medium")

    from copy import copy

    style_cache: dict[tuple, object] = {}

    def put(row: int, col: int, c: Cell, *, bold=False, italic=False):
        cell = ws.cell(row=row, column=col)
        number_format = None
        quote_prefix = False
        if numbers_as_values and c.value is not None and c.kind in ("count", "number", "estimate", "percent"):
            v = c.value
            d = _decimals_of(c.text)
            if c.kind == "percent":
                cell.value = float(v) / 100.0
                number_format = "0" + ("." + "0" * d if d else "") + "%"
            elif c.kind == "count":
                cell.value = int(v)
                number_format = "#,##0"
            else:
                # 12 significant digits: far beyond any shown decimal, and free of the last-bit differences
                # that floating-point sums can show between runs, so a rerun writes the same workbook
                cell.value = float(f"{float(v):.12g}")
                number_format = "0" + ("." + "0" * d if d else "")
        else:
            text = f"{c.text} [{','.join(c.footnotes)}]" if c.footnotes else c.text
            quote_prefix = set_text_cell(cell, text, error=RenderError)
        b, it = bool(c.bold or bold), bool(c.italic or italic or c.kind == "quote")
        wrap = c.kind == "quote" or len(c.text) > 40 or "\n" in c.text
        horizontal = "right" if c.numeric else ("center" if c.colspan > 1 and bold else "left")
        key = (b, it, wrap, horizontal, number_format, quote_prefix)
        cached = style_cache.get(key)
        if cached is not None:
            # registering a style is costly in openpyxl; reuse the style array of an identical cell
            cell._style = copy(cached)
        else:
            cell.font = Font(bold=b, italic=it)
            cell.alignment = Alignment(horizontal=horizontal, vertical="top", wrap_text=wrap)
            if number_format:
                cell.number_format = number_format
            if quote_prefix:
                cell.quotePrefix = True
            style_cache[key] = copy(cell._style)
        return cell

    r = 1
    cap = spec.caption_text()
    if cap:
        put(r, 1, Cell(cap), bold=True)
        r += 2
    grid = spec.grid()
    nh = spec.n_header_rows
    top = r
    for i, row in enumerate(grid):
        role = "header" if i < nh else spec.body[i - nh].role
        for j, c in enumerate(row):
            if c is None:
                continue
            put(r + i, j + 1, c, bold=role in ("header", "group"), italic=role == "group")
    for (r0, c0, r1, c1) in spec.merges():
        ws.merge_cells(start_row=top + r0, start_column=c0 + 1, end_row=top + r1, end_column=c1 + 1)
    ncols = spec.n_columns
    last = top + len(grid) - 1
    for j in range(1, ncols + 1):
        ws.cell(top, j).border = Border(top=thick)
        if nh:
            hb = ws.cell(top + nh - 1, j)
            hb.border = Border(top=hb.border.top, bottom=thin)
        lb = ws.cell(last, j)
        lb.border = Border(top=lb.border.top, bottom=thick)
    if nh:
        ws.freeze_panes = ws.cell(top + nh, 1)
    # column widths from single-column cells
    from openpyxl.utils import get_column_letter

    for j in range(ncols):
        lens = [len(c.text) for row in grid for c in [row[j]] if c is not None and c.colspan == 1]
        width = min(max(lens or [8]) + 2, 60)
        ws.column_dimensions[get_column_letter(j + 1)].width = max(width, 8)
    r = last + 2
    for n in spec.joined_notes():
        put(r, 1, Cell("Note. " + n))
        r += 1
    for f in spec.footnotes:
        put(r, 1, Cell(f"{f.marker} {f.text}"))
        r += 1
    if spec.orientation == "landscape":
        ws.page_setup.orientation = "landscape"
    if nh:
        ws.print_title_rows = f"{top}:{top + nh - 1}"


def to_xlsx(
    spec: TableSpec | Sequence[TableSpec],
    path: str | os.PathLike | None = None,
    *,
    sheet_name: str | Sequence[str] | None = None,
    numbers_as_values: bool = True,
) -> bytes:
    """Render a table to an Excel workbook.

    The caption is in the first row, header rows follow (frozen when
    scrolling), merged cells are real merges, notes and footnotes follow the
    table. Text never becomes a formula: cells whose text starts with
    ``= + - @`` (or tab/CR) are stored as string cells with Excel's quote
    prefix, so they show literally even after editing. Control characters
    are kept, written as Excel's ``_xHHHH_`` escapes. Text longer than an
    Excel cell holds (32,767 characters) raises :class:`RenderError` naming
    the cell; it is never cut. All of this is done by the one cell writer
    that codebooks and harmonisation reports use too (``cimstats._sheets``).

    Parameters
    ----------
    spec : TableSpec or sequence of TableSpec
        One table, or several (one worksheet each).
    path : path-like, optional
        Write the workbook there (atomically).
    sheet_name : str or sequence of str, optional
        Worksheet name(s) (default from the table number, else ``"Table"``,
        made unique).
    numbers_as_values : bool
        Store ``count``/``number``/``estimate``/``percent`` cells that carry
        a raw ``value`` as numbers with a number format showing the same
        decimals (default), so the spreadsheet can compute with them (values
        to 12 significant digits); other cells keep their formatted text.

    Returns
    -------
    bytes
        The .xlsx file content.

    Examples
    --------
    >>> from cimstats.render import TableSpec, Cell, to_xlsx
    >>> to_xlsx(TableSpec(header=((Cell("a"),),), body=((Cell("=1+1"),),)))[:2]
    b'PK'
    """
    from openpyxl import Workbook

    specs = _specs(spec)
    names = [sheet_name] if isinstance(sheet_name, str) else list(sheet_name or [])
    wb = Workbook()
    used: set[str] = set()
    for k, s in enumerate(specs):
        ws = wb.active if k == 0 else wb.create_sheet()
        name = names[k] if k < len(names) else (f"Table {s.number}" if s.number else "Table")
        ws.title = sheet_title(name, used, default="Table")
        _xlsx_sheet(ws, s, numbers_as_values)
    buf = io.BytesIO()
    wb.save(buf)
    data = reproducible_office_file(buf.getvalue())
    if path is not None:
        atomic_write(path, data, error=RenderError)
    return data
