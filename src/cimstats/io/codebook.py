"""The codebook of a survey: one row per variable, as a table, text, CSV, Excel or HTML.

Examples
--------
>>> import pandas as pd
>>> from cimstats.io import Survey, VariableMeta
>>> s = Survey.from_raw(pd.DataFrame({"sex": [1, 2, 2, 9, None]}),
...     {"sex": VariableMeta("sex", label="Sex", value_labels={1: "Male", 2: "Female", 9: "Refused"},
...                          missing_codes=(9,), measure="nominal")})
>>> cb = codebook(s)
>>> cb.loc[0, ["n_valid", "n_declared_missing", "n_system_missing"]].tolist()
[3, 1, 1]
>>> cb.loc[0, "value_labels"], cb.loc[0, "missing_codes"], cb.loc[0, "top_categories"]
('1 = Male; 2 = Female; 9 = Refused', '9', 'Female (2); Male (1)')
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cimstats import _files
from cimstats._sheets import frames_to_xlsx, spreadsheet_safe_frame
from cimstats.errors import CimstatsError, SurveyWriteError
from cimstats.io import _describe
from cimstats.io._describe import COLUMNS, _code_text  # noqa: F401 (COLUMNS: the column order, public here)
from cimstats.io.survey import Survey


def codebook(survey, *, variables: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per variable: labels, missing codes, counts and range.

    Parameters
    ----------
    survey : Survey
        The survey to describe.
    variables : iterable of str, optional
        Describe only these variables (in this order).

    Returns
    -------
    pandas.DataFrame
        Columns ``name`` and ``label``; ``storage`` (numeric, string, date,
        datetime, time); ``measure`` (nominal, ordinal, scale or empty);
        ``value_labels`` (``"1 = Male; 2 = Female"``, in code order);
        ``missing_codes`` (declared codes and ranges, ``"-9 to -1; 99"``);
        ``n_valid`` (cells with a value), ``n_declared_missing`` (cells holding
        a declared missing code), ``n_system_missing`` (empty cells);
        ``min``/``max`` (numbers and dates); ``top_categories`` (the five most
        frequent values of labelled or text variables, with counts);
        ``missing_code_counts`` (cells per declared missing code, ``"-9 (4); 99 (2)"``).
    """
    if not isinstance(survey, Survey):
        raise CimstatsError(f"`survey` is a {type(survey).__name__}; expected a cimstats Survey (use read_survey).")
    return _describe.codebook_table(survey, variables)


def format_codebook(cb: pd.DataFrame, *, title: str | None = None) -> str:
    """The codebook as readable text, one block per variable (what ``cimstats inspect`` prints)."""
    lines = [title] if title else []
    for _, r in cb.iterrows():
        head = f"{r['name']}"
        if r["label"]:
            head += f'  "{r["label"]}"'
        kind = r["storage"] + (f", {r['measure']}" if r["measure"] else "")
        lines.append(f"{head}  [{kind}]")
        if r["value_labels"]:
            lines.append(f"    value labels:  {r['value_labels']}")
        if r["missing_codes"]:
            lines.append(f"    missing codes: {r['missing_codes']}")
        counts = (f"    n valid {r['n_valid']}, declared missing {r['n_declared_missing']}, "
                  f"system missing {r['n_system_missing']}")
        if r.get("missing_code_counts"):
            counts += f" (codes: {r['missing_code_counts']})"
        if r["min"] is not None and not (isinstance(r["min"], float) and np.isnan(r["min"])):
            counts += f"; min {_code_text(r['min'])}, max {_code_text(r['max'])}"
        lines.append(counts)
        if r["top_categories"]:
            lines.append(f"    most frequent: {r['top_categories']}")
    return "\n".join(lines)


def write_codebook(cb: pd.DataFrame, path: str | os.PathLike, *, format: str | None = None,
                   title: str | None = None, spreadsheet_safe: bool = True) -> None:
    """Write a codebook to CSV, Excel (.xlsx) or HTML; the file appears only when complete.

    Labels come from the survey file, so they may look like spreadsheet
    formulas (``=HYPERLINK(...)``) or hold control characters. In the Excel
    file every text cell is stored as text (never a formula), with control
    characters kept as Excel escapes; a text longer than an Excel cell holds
    is refused, never cut. In the CSV file, text that a spreadsheet would read
    as a formula gets a leading apostrophe (``spreadsheet_safe``, see
    :mod:`cimstats._sheets`).

    Parameters
    ----------
    cb : pandas.DataFrame
        A table from :func:`codebook` (or ``Survey.codebook()``).
    path : str or path-like
        Target file; ``.csv``, ``.xlsx`` or ``.html``/``.htm``.
    format : {"csv", "xlsx", "html"}, optional
        Overrides the extension.
    title : str, optional
        Heading for HTML and the sheet name for Excel.
    spreadsheet_safe : bool
        For CSV: put an apostrophe before text starting with ``= + - @``, tab
        or CR (not before plain numbers such as ``-9``), so that a spreadsheet
        opening the file shows it as text (default). ``False`` writes the text
        exactly as it is, for programs that read the CSV.

    Raises
    ------
    SurveyWriteError
        The format is unknown, the folder does not exist, a text is longer
        than an Excel cell holds (.xlsx), or the file cannot be written.

    Examples
    --------
    >>> import tempfile, os, pandas as pd
    >>> from cimstats.io import Survey
    >>> path = os.path.join(tempfile.mkdtemp(), "codebook.csv")
    >>> write_codebook(Survey(pd.DataFrame({"age": [50, 61]})).codebook(), path)
    >>> pd.read_csv(path)["max"].tolist()
    [61]
    """
    p = Path(path)
    fmt = (format or p.suffix.lstrip(".")).lower()
    fmt = {"htm": "html", "xls": "xlsx"}.get(fmt, fmt)
    if fmt not in ("csv", "xlsx", "html"):
        raise SurveyWriteError(
            f"Cannot write a codebook as '{format or p.suffix or p.name}'; use a .csv, .xlsx or .html file name."
        )
    if not p.parent.exists():
        raise SurveyWriteError(f"The folder of '{p}' does not exist; create it first.")

    def write(tmp: str) -> None:
        if fmt == "csv":
            (spreadsheet_safe_frame(cb) if spreadsheet_safe else cb).to_csv(tmp, index=False, encoding="utf-8")
        elif fmt == "xlsx":
            Path(tmp).write_bytes(frames_to_xlsx({title or "codebook": cb}, error=SurveyWriteError))
        else:
            body = cb.to_html(index=False, escape=True, na_rep="", border=0, classes="cimstats-codebook")
            heading = html.escape(title or "Codebook")
            Path(tmp).write_text(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                f"<title>{heading}</title></head><body><h1>{heading}</h1>\n{body}\n</body></html>\n",
                encoding="utf-8",
            )

    try:
        _files.atomic_write_with(p, write, error=SurveyWriteError)
    except OSError as exc:
        raise SurveyWriteError(f"Writing the codebook '{p.name}' failed ({exc.strerror or exc}); nothing was written.") from None
