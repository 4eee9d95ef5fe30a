"""Spreadsheet outputs: text from survey files and reports never becomes a live formula, is never cut or lost.

Hostile labels are written into real .sav files here, then read by ``cimstats
inspect``; reports are built from hostile tables. Every workbook is opened as
a zip: no ``<f>`` (formula) element may appear anywhere.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from cimstats._sheets import (EXCEL_CELL_LIMIT, excel_unescape, restore_spreadsheet_frame, spreadsheet_safe_frame,
                              spreadsheet_safe_text)
from cimstats.cli.main import main
from cimstats.dictionary.harmonise import HarmonisationReport
from cimstats.errors import RenderError, Report, SurveyWriteError
from cimstats.io import Survey, VariableMeta, write_codebook, write_survey
from cimstats.render import Cell, Row, TableSpec, to_xlsx

HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "\uff1d1+1", "'=already quoted"]
CONTROL = "label \x07bell \x1b[31mred\x1b[0m \x7f _x0041_ end"


def _no_formulas(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                body = z.read(name).decode("utf-8")
                assert not re.search(r"<(\w+:)?f[ >/]", body), f"{name} holds a formula"


def _texts(path: Path) -> dict[str, tuple[str, bool]]:
    """Every non-empty cell as shown by Excel: text -> has quote prefix."""
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str):
                    assert c.data_type == "s"
                    out[excel_unescape(c.value)] = bool(c.quotePrefix)
    return out


def _hostile_sav(folder: Path, name: str = "hostile.sav") -> Path:
    n = len(HOSTILE)
    data = pd.DataFrame({f"v{k}": [1.0, 2.0] for k in range(n)} | {"ctl": [1.0, 2.0], "txt": HOSTILE[:2]})
    meta = {f"v{k}": VariableMeta(f"v{k}", label=t[:200], value_labels={1: t[:100], 2: "ok"})
            for k, t in enumerate(HOSTILE)}
    meta["ctl"] = VariableMeta("ctl", label=CONTROL, value_labels={1: "\x1b]0;title\x07", 2: "two"})
    meta["txt"] = VariableMeta("txt", storage="string")
    p = folder / name
    write_survey(Survey(data, meta), p)
    return p


def test_inspect_codebook_xlsx_holds_no_formula_and_keeps_the_text(tmp_path, capsys):
    sav = _hostile_sav(tmp_path, "a[1].sav")  # a file name that is not a valid sheet name
    out = tmp_path / "codebook.xlsx"
    assert main(["inspect", str(sav), "--out", str(out)]) == 0
    _no_formulas(out)
    shown = _texts(out)
    for t in HOSTILE:
        assert shown.get(t) is not None, t
        assert shown[t] == t.startswith(("=", "+", "-", "@", "\t", "\r", "\uff1d")), t
    assert CONTROL in shown  # control characters kept (as Excel escapes), not replaced or refused


def test_codebook_csv_is_quoted_for_spreadsheets_and_restorable(tmp_path):
    from cimstats.io import read_survey

    cb = read_survey(_hostile_sav(tmp_path)).codebook()
    path = tmp_path / "codebook.csv"
    write_codebook(cb, path)
    back = pd.read_csv(path, keep_default_na=False, dtype=str)
    for t in HOSTILE:
        if t.startswith("\r"):
            continue  # the CSV reader splits on a bare CR; the quoting is checked below on the frame itself
        assert "'" + t in back["label"].tolist()
    assert not any(str(v).startswith(("=", "+", "@")) for v in back["label"])
    assert restore_spreadsheet_frame(spreadsheet_safe_frame(cb)).equals(cb)
    write_codebook(cb, path, spreadsheet_safe=False)
    assert HOSTILE[0] in pd.read_csv(path, keep_default_na=False)["label"].tolist()


@pytest.mark.parametrize("text", HOSTILE + ["-9", "+1.5", "plain", "'plain", "''=x", ""])
def test_csv_quoting_round_trips(text):
    safe = spreadsheet_safe_text(text)
    assert not safe.startswith(("=", "+", "@", "\t", "\r")) or text in ("+1.5",)
    frame = pd.DataFrame({"a": [text]})
    assert restore_spreadsheet_frame(spreadsheet_safe_frame(frame)).equals(frame)


def _report(comment: str = "fine") -> HarmonisationReport:
    table = pd.DataFrame({"study": ["A"] * len(HOSTILE), "target": HOSTILE, "status": "partial",
                          "n_rows": 3, "comment": comment})
    unmapped = pd.DataFrame({"study": ["A"], "target": ["x"], "source": [CONTROL], "value": ["=1"],
                             "label": ["@evil"], "n": [2], "reason": ["unmapped"]})
    return HarmonisationReport(table, unmapped, Report())


def test_harmonisation_report_xlsx_holds_no_formula(tmp_path):
    path = tmp_path / "report.xlsx"
    _report().to_excel(path)
    _no_formulas(path)
    shown = _texts(path)
    assert all(t in shown for t in HOSTILE) and CONTROL in shown and shown["=1"] and shown["@evil"]
    first = path.read_bytes()
    _report().to_excel(path)
    assert path.read_bytes() == first  # same report, same bytes


def test_harmonisation_report_csv_is_quoted(tmp_path):
    paths = _report().to_csv(tmp_path / "report.csv")
    summary = pd.read_csv(paths[0], keep_default_na=False)
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in summary["target"].tolist()
    unm = pd.read_csv(paths[1], keep_default_na=False)
    assert unm["value"].tolist() == ["'=1"] and unm["label"].tolist() == ["'@evil"]


# ------------------------------------------------------------------ the 32,767-character limit
def test_long_table_cell_is_refused_naming_the_cell_not_cut():
    long = "x" * EXCEL_CELL_LIMIT + " 1.23 (0.45 to 2.01)"
    spec = TableSpec(header=((Cell("Theme"), Cell("Estimate")),), body=(Row((Cell(long), Cell("1.23"))),))
    with pytest.raises(RenderError, match=r"cell A2 .*32,767"):
        to_xlsx(spec)
    ok = TableSpec(header=((Cell("h"),),), body=(Row((Cell("y" * EXCEL_CELL_LIMIT),)),))
    wb = openpyxl.load_workbook(__import__("io").BytesIO(to_xlsx(ok)))
    assert len(wb.active.cell(row=2, column=1).value) == EXCEL_CELL_LIMIT


def test_long_report_cell_is_refused_naming_sheet_and_cell(tmp_path):
    path = tmp_path / "report.xlsx"
    with pytest.raises(SurveyWriteError, match=r"Sheet 'summary' cell E2 .*40,000"):
        _report(comment="z" * 40_000).to_excel(path)
    assert not path.exists()


def test_inspect_with_long_label_exits_cleanly(tmp_path, capsys):
    # a label longer than an Excel cell: the codebook cannot be cut silently, so the command says why it stops
    data = pd.DataFrame({"q": [1.0]})
    cb = Survey(data, {"q": VariableMeta("q", label="y")}).codebook()
    cb.loc[0, "value_labels"] = "1 = " + "w" * 40_000
    with pytest.raises(SurveyWriteError, match="at most 32,767"):
        write_codebook(cb, tmp_path / "cb.xlsx")
    assert not (tmp_path / "cb.xlsx").exists()


def test_qdpx_exports_are_quoted_for_spreadsheets(tmp_path, capsys):
    qde = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="hostile" origin="test">
 <CodeBook><Codes><Code guid="c1" name="=HYPERLINK(&quot;http://evil.example&quot;)" isCodable="true"/></Codes></CodeBook>
 <Variables><Variable guid="v1" name="area" typeOfVariable="Text"/></Variables>
 <Cases><Case guid="k1" name="+EN-0001"><VariableValue><VariableRef targetGUID="v1"/>
  <TextValue>@SUM(A1)</TextValue></VariableValue><SourceRef targetGUID="s1"/></Case></Cases>
 <Sources><TextSource guid="s1" name="-interview"><PlainTextContent>=1+1 said nobody</PlainTextContent>
  <PlainTextSelection guid="p1" startPosition="0" endPosition="4">
   <Coding guid="g1"><CodeRef targetGUID="c1"/></Coding></PlainTextSelection></TextSource></Sources>
</Project>"""
    p = tmp_path / "hostile.qdpx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("project.qde", qde)
    out = tmp_path / "export"
    assert main(["qdpx", str(p), "--out", str(out)]) == 0
    cells = set()
    for f in out.glob("*.csv"):
        cells |= set(pd.read_csv(f, dtype=str, keep_default_na=False).to_numpy().ravel())
    assert "'=HYPERLINK(\"http://evil.example\")" in cells and "'@SUM(A1)" in cells and "'=1+1" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
