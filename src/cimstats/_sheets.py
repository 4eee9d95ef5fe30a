"""Text for spreadsheets: never a formula, never cut, nothing lost.

Every Excel workbook cimstats writes (publication tables, joint displays,
codebooks, harmonisation reports) is written through this module, and so are
the CSV files meant to be opened in a spreadsheet. Text there comes from
survey files, dictionaries and QDA projects, so it may look like a formula.

Excel (.xlsx)
    A text cell is always stored as text. When it starts like a formula
    (``= + - @``, tab, CR or their full-width forms) it also carries Excel's
    quote prefix, so it shows literally and stays text even after editing.
    Characters an XML file cannot hold (control characters) and carriage
    returns are written with Excel's own escape ``_xHHHH_``, which Excel and
    LibreOffice turn back into the character: nothing is replaced or lost
    (:func:`excel_unescape` reverses it for programs that do not).
    A cell holds at most 32,767 characters (:data:`EXCEL_CELL_LIMIT`); longer
    text is refused with an error naming the sheet and the cell, never cut.

CSV meant for spreadsheets
    :func:`spreadsheet_safe_frame` puts an apostrophe before text that starts
    like a formula (and before text that already starts with apostrophes
    followed by such a character, so the change can be undone exactly with
    :func:`restore_spreadsheet_frame`). Text that is a plain number (``-9``,
    ``+1.5``) is left as it is; numbers in numeric columns are never touched.

Examples
--------
>>> spreadsheet_safe_text("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> spreadsheet_safe_text("-9"), spreadsheet_safe_text("-9; 99")
('-9', "'-9; 99")
>>> excel_escape("bell\\x07"), excel_unescape(excel_escape("bell\\x07")) == "bell\\x07"
('bell_x0007_', True)
"""

from __future__ import annotations

import io
import math
import re
from typing import Any, Mapping

from cimstats.errors import CimstatsError
from cimstats._files import reproducible_office_file

__all__ = ["FORMULA_PREFIXES", "EXCEL_CELL_LIMIT", "starts_like_formula", "excel_escape", "excel_unescape",
           "set_text_cell", "sheet_title", "frames_to_xlsx", "spreadsheet_safe_text", "spreadsheet_safe_frame",
           "restore_spreadsheet_text", "restore_spreadsheet_frame"]

#: characters that make a spreadsheet cell a formula (or DDE command) when typed first
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

#: the most characters an Excel cell holds
EXCEL_CELL_LIMIT = 32_767

# what XML 1.0 cannot hold (C0 controls but tab and newline, lone surrogates, U+FFFE/U+FFFF), plus CR, which an
# XML reader turns into a newline, plus literal "_xHHHH_", which Excel would read as an escape
_EXCEL_ESCAPE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_EXCEL_UNESCAPE = re.compile("_x([0-9A-Fa-f]{4})_")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def starts_like_formula(text: str) -> bool:
    """True when a spreadsheet would read ``text`` as a formula if typed into a cell."""
    return text.startswith(FORMULA_PREFIXES)


def excel_escape(text: str) -> str:
    """Text with the characters an .xlsx file cannot hold literally written as Excel's ``_xHHHH_`` escapes."""
    return _EXCEL_ESCAPE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)


def excel_unescape(text: str) -> str:
    """The original text of a cell written with :func:`excel_escape` (what Excel shows)."""
    return _EXCEL_UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2  # Excel counts UTF-16 code units


def set_text_cell(cell, text: str, *, error: type[CimstatsError] = CimstatsError) -> bool:
    """Store ``text`` in an openpyxl cell as text that can never be a formula.

    Returns whether the cell got Excel's quote prefix (text starting like a
    formula). Empty text leaves the cell empty.

    Raises
    ------
    error
        The text is longer than :data:`EXCEL_CELL_LIMIT` characters (the
        message names the sheet and the cell).
    """
    text = "" if text is None else str(text)
    if text == "":
        cell.value = None
        return False
    n = _length(text)
    if n > EXCEL_CELL_LIMIT:
        raise error(f"Sheet '{cell.parent.title}' cell {cell.coordinate} would hold {n:,} characters, but an Excel "
                    f"cell holds at most {EXCEL_CELL_LIMIT:,} and cimstats does not cut text; shorten it, or write "
                    "this table as .csv, .html or .docx, which have no such limit.")
    cell.value = excel_escape(text)
    cell.data_type = "s"
    quote = starts_like_formula(text)
    if quote:
        cell.quotePrefix = True
    return quote


def sheet_title(name: str, used: set[str], default: str = "Sheet") -> str:
    """A valid, unused worksheet name (at most 31 characters, none of ``[]:*?/\\``); adds it to ``used``."""
    base = _SHEET_BAD.sub("_", _CONTROL.sub("_", str(name)))[:31].strip("'") or default
    title, n = base, 2
    while title.lower() in used:
        title = f"{base[:27]} ({n})"
        n += 1
    used.add(title.lower())
    return title


def _put(ws, row: int, col: int, value: Any, error) -> None:
    import datetime as _dt

    import numpy as np
    import pandas as pd

    cell = ws.cell(row=row, column=col)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return
    if isinstance(value, (bool, int)):
        cell.value = value
    elif isinstance(value, float):
        if math.isinf(value):
            set_text_cell(cell, "inf" if value > 0 else "-inf", error=error)
        else:
            cell.value = value
    elif isinstance(value, (_dt.datetime, _dt.date, _dt.time)) and getattr(value, "tzinfo", None) is None:
        cell.value = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
    else:
        set_text_cell(cell, str(value), error=error)


def frames_to_xlsx(frames: Mapping[str, Any], *, error: type[CimstatsError] = CimstatsError) -> bytes:
    """An Excel workbook (bytes) with one sheet per table: a bold header row, then the rows.

    Numbers and dates are stored as such; every other value as text through
    :func:`set_text_cell` (never a formula, never cut, control characters
    escaped). The workbook carries fixed dates, so the same tables give the
    same bytes.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        Sheet name -> table, in order.
    error : CimstatsError subclass
        Raised, naming the sheet and cell, for text longer than an Excel cell holds.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font


    wb = Workbook()
    used: set[str] = set()
    bold = Font(bold=True)
    for k, (name, df) in enumerate(frames.items()):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = sheet_title(name, used)
        for j, col in enumerate(df.columns, start=1):
            set_text_cell(ws.cell(row=1, column=j), str(col), error=error)
            ws.cell(row=1, column=j).font = bold
        for i, row in enumerate(df.itertuples(index=False, name=None), start=2):
            for j, v in enumerate(row, start=1):
                _put(ws, i, j, v, error)
        if len(df.columns):
            ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return reproducible_office_file(buf.getvalue())


# ------------------------------------------------------------------ CSV meant for spreadsheets
def _needs_quote(text: str) -> bool:
    body = text.lstrip("'")
    return starts_like_formula(body) and not (body == text and _NUMBER.fullmatch(text))


def spreadsheet_safe_text(value: Any) -> Any:
    """``value`` with an apostrophe put before text that a spreadsheet would read as a formula (see module notes)."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


def restore_spreadsheet_text(value: Any) -> Any:
    """Undo :func:`spreadsheet_safe_text` (for programs reading such a CSV back)."""
    if isinstance(value, str) and value.startswith("'") and _needs_quote(value[1:]):
        return value[1:]
    return value


def _map_text(df, fn):
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
            out[c] = col.map(fn, na_action="ignore").astype(col.dtype)
    out.columns = [fn(c) if isinstance(c, str) else c for c in out.columns]
    return out


def spreadsheet_safe_frame(df):
    """A copy of ``df`` whose text cells (and column names) cannot become formulas when the CSV is opened."""
    return _map_text(df, spreadsheet_safe_text)


def restore_spreadsheet_frame(df):
    """Undo :func:`spreadsheet_safe_frame` on a table read back from such a CSV."""
    return _map_text(df, restore_spreadsheet_text)
