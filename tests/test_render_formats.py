"""Structure of rendered tables in every format, read back with each format's own parser."""

from __future__ import annotations

import html.parser
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from cimstats.errors import RenderError
from cimstats.render import (
    Cell,
    Footnote,
    NumberFormat,
    Row,
    TableSpec,
    render,
    to_docx,
    to_html,
    to_latex,
    to_markdown,
    to_text,
    to_xlsx,
)

W_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def sample_spec(orientation="landscape", n_extra=0) -> TableSpec:
    """Two header rows with spans, a group row, a rowspan, a total row, notes and footnotes."""
    header = (
        (Cell("Mechanism", rowspan=2), Cell("Estimate", colspan=2), Cell("Quote", rowspan=2)),
        (Cell("β [95% CI]", kind="ci"), Cell("p", kind="p_value")),
    )
    body = [
        Row.group("Network navigation", 4),
        Row((Cell("Weak ties", rowspan=2), Cell("0.21 [0.05, 0.37]", kind="ci", value=0.21),
             Cell("0.009", kind="p_value", value=0.009), Cell("“We asked around.”", kind="quote"))),
        Row((Cell("=SUM(A1:A3)", kind="ci"), Cell("<0.001", kind="p_value", footnotes=("a",)),
             Cell("-dash leading"))),
    ]
    for k in range(n_extra):
        body.append(Row((Cell(f"extra {k}"), Cell(f"{k}.00", kind="number", value=float(k)), Cell("0.5", kind="p_value"),
                         Cell("x"))))
    body.append(Row((Cell("Total"), Cell("1,234", kind="count", value=1234, colspan=3)), role="total"))
    return TableSpec(
        title="Mechanism tests & themes",
        number=2,
        caption="Estimates from the demo study.",
        header=header,
        body=tuple(body),
        footnotes=(Footnote("a", "Holm-adjusted."),),
        notes=("CI = confidence interval; 50% of <cases>.",),
        orientation=orientation,
        label="tab:mech",
    )


# ------------------------------------------------------------------- spec
def test_spec_grid_and_merges():
    s = sample_spec()
    assert s.n_columns == 4
    assert s.n_header_rows == 2 and s.n_body_rows == 4
    merges = s.merges()
    assert (0, 0, 1, 0) in merges  # Mechanism header spans two rows
    assert (0, 1, 0, 2) in merges  # Estimate spans two columns
    assert (2, 0, 2, 3) in merges  # group row spans all columns
    assert (3, 0, 4, 0) in merges  # Weak ties spans two body rows
    assert (5, 1, 5, 3) in merges  # total spans three columns
    g = s.grid()
    assert g[4][0] is None and g[4][1].text == "=SUM(A1:A3)"
    fr = s.to_frame()
    assert fr["row_role"].tolist() == ["group", "data", "data", "total"]


def test_spec_is_immutable_and_replace_copies():
    s = sample_spec()
    with pytest.raises(Exception):
        s.title = "x"  # type: ignore[misc]
    t = s.replace(orientation="portrait")
    assert t.orientation == "portrait" and s.orientation == "landscape"
    assert t.merges() == s.merges()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(header=((Cell("a"), Cell("b")),), body=((Cell("x"),),)), "covers 1 of 2"),
        (dict(header=((Cell("a"),),), body=((Cell("x"), Cell("y")),)), "more than 1 columns"),
        (dict(header=((Cell("a", rowspan=3),),), body=()), "past the end"),
        (dict(header=((Cell("a", footnotes=("z",)),),)), "footnote marker 'z'"),
        (dict(header=((Cell("a"),),), orientation="sideways"), "orientation"),
        (dict(header=((Cell("a"),),), label="1bad label"), "label"),
        (dict(), "no header and no body"),
        (dict(header=((Cell("a"), Cell("b")),), body=(Row((Cell("g"),), role="group"),)), "covers 1 of 2"),
    ],
)
def test_spec_rejects_inconsistent_layouts(kwargs, match):
    with pytest.raises(RenderError, match=match):
        TableSpec(**kwargs)


def test_cell_rejects_unknown_kind_and_bad_span():
    with pytest.raises(RenderError, match="kind"):
        Cell("x", kind="money")
    with pytest.raises(RenderError, match="colspan"):
        Cell("x", colspan=0)


def test_renderers_reject_other_inputs():
    import pandas as pd

    for fn in (to_html, to_latex, to_markdown, to_text, to_docx, to_xlsx):
        with pytest.raises(RenderError, match="TableSpec"):
            fn(pd.DataFrame({"a": [1]}))


def test_from_frame_formats_by_kind_and_groups():
    import pandas as pd

    df = pd.DataFrame({"group": ["A", "A", "B"], "term": ["x", "y", "z"], "estimate": [0.1234, -0.5, 2.0],
                       "p_value": [0.2, 0.0004, None], "n": [1200, 50, 7]})
    s = TableSpec.from_frame(df, title="T", group_by="group", kinds={"p_value": "p_value", "n": "count"},
                             number_format=NumberFormat.preset("apa"))
    texts = [[c.text for c in r.cells] for r in s.body]
    assert texts[0] == ["A"]
    assert texts[1] == ["x", "0.12", ".200", "1,200"]
    assert texts[2] == ["y", "\u22120.50", "< .001", "50"]
    assert texts[4] == ["z", "2.00", "\u2013", "7"]
    assert s.body[0].role == "group"


# -------------------------------------------------------------- numbers
def test_number_format_styles():
    f = NumberFormat()
    assert f.ci(-0.051, 0.3) == "[\u22120.05, 0.30]"
    assert f.estimate(-0.001) == "0.00"  # no negative zero
    assert NumberFormat(ci_style="to").ci(1, 2) == "1.00 to 2.00"
    assert NumberFormat(ci_style="parentheses").ci(1, 2) == "(1.00, 2.00)"
    assert NumberFormat(ci_style="dash").ci(1, 2) == "1.00\u20132.00"
    assert NumberFormat(ci_style="dash").ci(-1, 2) == "\u22121.00 to 2.00"  # dash is ambiguous with a minus
    assert NumberFormat.preset("lancet").estimate(1.25) == "1\u00b725"
    assert NumberFormat.preset("lancet").p(0.00005) == "<0\u00b70001"
    assert NumberFormat(p_decimals=2).p(0.004) == "<0.01"
    assert NumberFormat(p_style="stars").p(0.004) == "0.004**"
    assert NumberFormat(p_style="threshold").p(0.2) == "\u22650.05"
    assert NumberFormat().p(1.0) == "1.000"
    assert NumberFormat().count(1234567) == "1,234,567"
    assert NumberFormat(percent_decimals=1).percent(12.345) == "12.3%"
    assert NumberFormat().estimate_ci(0.5, None, None) == "0.50"
    assert NumberFormat.preset("ascii").ci(-1, 1) == "[-1.00, 1.00]"


def test_number_format_errors():
    with pytest.raises(RenderError, match="ci_style"):
        NumberFormat(ci_style="curly")
    with pytest.raises(RenderError, match="preset"):
        NumberFormat.preset("nature-ish")
    with pytest.raises(RenderError, match="outside"):
        NumberFormat().p(1.5)
    with pytest.raises(RenderError, match="decimals"):
        NumberFormat(decimals=-1)


# ----------------------------------------------------------------- Word
def test_docx_structure(tmp_path):
    import docx

    s = sample_spec()
    out = tmp_path / "t.docx"
    to_docx(s, out)
    d = docx.Document(str(out))
    sec = d.sections[0]
    assert sec.page_width > sec.page_height  # landscape section
    assert sec.orientation == 1
    # caption with a SEQ field, before the table
    cap = d.paragraphs[0]
    assert cap.style.name == "Caption"
    xml = cap._p.xml
    assert "SEQ Table" in xml and "Mechanism tests &amp; themes" in xml
    (t,) = d.tables
    assert len(t.rows) == 6 and len(t.columns) == 4
    # header rows repeat on each page
    for i in (0, 1):
        assert t.rows[i]._tr.trPr.find(W_NS + "tblHeader") is not None
    assert t.rows[2]._tr.trPr.find(W_NS + "tblHeader") is None
    # merges: same underlying cell element across the span
    assert t.cell(0, 0)._tc is t.cell(1, 0)._tc
    assert t.cell(0, 1)._tc is t.cell(0, 2)._tc
    assert t.cell(2, 0)._tc is t.cell(2, 3)._tc
    assert t.cell(3, 0)._tc is t.cell(4, 0)._tc
    assert t.cell(3, 0).text == "Weak ties"
    assert t.cell(4, 1).text == "=SUM(A1:A3)"
    assert t.cell(4, 2).text == "<0.001a"  # superscript footnote marker follows the text
    assert t.cell(5, 1).text == "1,234"
    texts = [p.text for p in d.paragraphs]
    assert "Note. CI = confidence interval; 50% of <cases>." in texts
    assert "a Holm-adjusted." in texts


def test_docx_several_tables_get_own_sections(tmp_path):
    import docx

    data = to_docx([sample_spec("portrait"), sample_spec("landscape")])
    d = docx.Document(io.BytesIO(data))
    assert len(d.tables) == 2
    assert [s.page_width > s.page_height for s in d.sections] == [False, True]


def test_docx_opens_in_libreoffice(tmp_path):
    soffice = shutil.which("libreoffice") or shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed; the .docx conversion check needs `libreoffice --headless`")
    src = tmp_path / "t.docx"
    to_docx(sample_spec(n_extra=40), src)
    r = subprocess.run([soffice, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(src)],
                       capture_output=True, text=True, timeout=180)
    pdf = tmp_path / "t.pdf"
    assert r.returncode == 0 and pdf.exists() and pdf.stat().st_size > 1000, r.stderr


# ----------------------------------------------------------------- Excel
def test_xlsx_structure(tmp_path):
    import openpyxl

    out = tmp_path / "t.xlsx"
    to_xlsx(sample_spec(), out)
    wb = openpyxl.load_workbook(out)
    ws = wb.active
    assert ws.title == "Table 2"
    assert ws["A1"].value == "Table 2. Mechanism tests & themes Estimates from the demo study."
    merged = {str(r) for r in ws.merged_cells.ranges}
    # header starts at row 3
    assert {"A3:A4", "B3:C3", "D3:D4", "A5:D5", "A6:A7", "B8:D8"} <= merged
    assert ws["B6"].value == "0.21 [0.05, 0.37]"
    # a formula-like text stays text, shown literally
    assert ws["B7"].value == "=SUM(A1:A3)" and ws["B7"].data_type == "s" and ws["B7"].quotePrefix
    assert ws["D7"].value == "-dash leading" and ws["D7"].quotePrefix
    # numbers stay numbers with the shown decimals
    assert ws["B8"].value == 1234 and ws["B8"].number_format == "#,##0"
    assert ws.freeze_panes == "A5"
    assert ws.page_setup.orientation == "landscape"
    assert any(str(c.value).startswith("Note. CI") for c in ws["A"] if c.value)
    # no formula anywhere in the sheet xml
    with zipfile.ZipFile(out) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet


def test_xlsx_several_tables_one_sheet_each():
    import openpyxl

    data = to_xlsx([sample_spec(), sample_spec().replace(number=None), sample_spec().replace(number=None)])
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Table 2", "Table", "Table (2)"]
    assert {str(r) for r in wb["Table (2)"].merged_cells.ranges} == {str(r) for r in wb["Table 2"].merged_cells.ranges}


def test_xlsx_opens_in_libreoffice(tmp_path):
    soffice = shutil.which("libreoffice") or shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed; the .xlsx conversion check needs `libreoffice --headless`")
    program = Path(soffice).resolve().parent
    if not any(program.glob("libsclo.so")) and not any(Path("/usr/lib/libreoffice/program").glob("libsclo.so")):
        pytest.skip("LibreOffice Calc is not installed; the .xlsx check needs it")
    src = tmp_path / "t.xlsx"
    to_xlsx(sample_spec(), src)
    r = subprocess.run([soffice, "--headless", "--convert-to", "csv", "--outdir", str(tmp_path), str(src)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    csv = (tmp_path / "t.csv").read_text(encoding="utf-8", errors="replace")
    # LibreOffice shows the formula-like text literally instead of computing it
    assert "=SUM(A1:A3)" in csv and "-dash leading" in csv


# ------------------------------------------------------------------ HTML
class _TableParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.cells: list[dict] = []
        self.caption = ""
        self.tags: list[str] = []
        self._cur: dict | None = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("td", "th"):
            self._cur = {"tag": tag, **dict(attrs), "text": ""}
        elif tag == "caption":
            self._in_caption = True
        elif tag == "br" and self._cur is not None:
            self._cur["text"] += "\n"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cur is not None:
            self.cells.append(self._cur)
            self._cur = None
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._cur is not None:
            self._cur["text"] += data
        elif self._in_caption:
            self.caption += data


def test_html_structure(tmp_path):
    out = tmp_path / "t.html"
    text = to_html(sample_spec(), out)
    assert out.read_text(encoding="utf-8") == text
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text and "<link" not in text and "<script" not in text
    p = _TableParser()
    p.feed(text)
    assert p.caption == "Table 2. Mechanism tests & themes Estimates from the demo study."
    heads = [c for c in p.cells if c["tag"] == "th"]
    assert heads[0] == {"tag": "th", "scope": "col", "rowspan": "2", "text": "Mechanism"}
    assert heads[1]["scope"] == "colgroup" and heads[1]["colspan"] == "2"
    group = next(c for c in p.cells if c["text"] == "Network navigation")
    assert group["scope"] == "rowgroup" and group["colspan"] == "4"
    weak = next(c for c in p.cells if c["text"] == "Weak ties")
    assert weak["tag"] == "th" and weak["scope"] == "rowgroup" and weak["rowspan"] == "2"
    num = next(c for c in p.cells if c["text"] == "0.21 [0.05, 0.37]")
    assert num["class"] == "num"
    assert 'id="tab:mech"' in text
    assert "50% of &lt;cases&gt;." in text


# ----------------------------------------------------------------- LaTeX
def test_latex_structure():
    tex = to_latex(sample_spec())
    assert tex.startswith("\\begin{landscape}") and tex.rstrip().endswith("\\end{landscape}")
    assert "\\begin{tabular}" in tex and "longtable" not in tex
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert rule in tex
    assert "\\multicolumn{2}{c}{\\textbf{Estimate}}" not in tex  # header cells are not forced bold
    assert "\\multicolumn{2}{c}{Estimate}" in tex
    assert "\\cmidrule(lr){2-3}" in tex
    assert "\nWeak ties & 0.21" in tex and "\n & =SUM(A1:A3)" in tex  # row-merged cell set in its first row
    assert "\\multicolumn{4}{l}{\\textbf{Network navigation}}" in tex
    assert "\\caption{Mechanism tests \\& themes Estimates from the demo study.}\\label{tab:mech}" in tex
    assert "50\\% of \\textless{}cases\\textgreater{}." in tex
    assert "=SUM(A1:A3)" in tex


def test_latex_longtable_for_long_tables():
    tex = to_latex(sample_spec("portrait", n_extra=40))
    assert "\\begin{longtable}" in tex and "\\endhead" in tex and "\\endfirsthead" in tex
    assert "landscape" not in tex
    assert to_latex(sample_spec("portrait"), long=True).count("\\begin{longtable}") == 1


def test_latex_compiles_when_available(tmp_path):
    engine = shutil.which("pdflatex") or shutil.which("lualatex") or shutil.which("xelatex")
    if engine is None:
        pytest.skip("no LaTeX engine (pdflatex/lualatex/xelatex) is installed")
    for name, spec in (("short", sample_spec()), ("long", sample_spec("portrait", n_extra=60))):
        f = tmp_path / f"{name}.tex"
        f.write_text(to_latex(spec, standalone=True), encoding="utf-8")
        r = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", f.name], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:]


# -------------------------------------------------------------- Markdown
def test_markdown_structure():
    markdown_it = pytest.importorskip("markdown_it")
    md = to_markdown(sample_spec())
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(md)
    ths = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "th_open"]
    assert ths == ["Mechanism", "Estimate: β \\[95% CI\\]", "Estimate: p", "Quote"] or ths == [
        "Mechanism", "Estimate: β [95% CI]", "Estimate: p", "Quote"]
    rows = sum(1 for t in tokens if t.type == "tr_open")
    assert rows == 1 + 4
    assert "*Note.* CI = confidence interval; 50% of \\<cases\\>." in md


def test_text_output_is_aligned():
    txt = to_text(sample_spec())
    lines = txt.splitlines()
    assert lines[0].startswith("Table 2. Mechanism tests & themes")
    assert any("Weak ties" in ln and "0.21 [0.05, 0.37]" in ln for ln in lines)
    assert lines[-2].startswith("Note. CI")


# ----------------------------------------------------------- file output
@pytest.mark.parametrize("suffix", [".docx", ".xlsx", ".html", ".tex", ".md", ".txt"])
def test_render_by_suffix_writes_atomically(tmp_path, suffix):
    out = tmp_path / f"table{suffix}"
    out.write_text("old")
    render(sample_spec(), out)
    assert out.stat().st_size > 100
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


def test_render_failure_leaves_old_file(tmp_path, monkeypatch):
    out = tmp_path / "t.html"
    out.write_text("old")
    import cimstats._files as files

    def boom(tmp, path):
        raise OSError("disk full")

    monkeypatch.setattr(files, "publish", boom)
    with pytest.raises(OSError):
        render(sample_spec(), out)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.html"]


def test_render_unknown_suffix_and_missing_folder(tmp_path):
    with pytest.raises(RenderError, match="suffix"):
        render(sample_spec(), tmp_path / "t.pdf")
    with pytest.raises(RenderError, match="does not exist"):
        render(sample_spec(), tmp_path / "nope" / "t.html")


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
def test_office_files_carry_no_time_of_writing(fmt):
    import io
    import zipfile

    import pandas as pd

    from cimstats.render import office
    from cimstats.render.spec import TableSpec

    spec = TableSpec.from_frame(pd.DataFrame({"a": [1.5, 2.25], "b": ["x", "y"]}), title="T")
    data = getattr(office, f"to_{fmt}")(spec)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    import re

    dates = re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]*)<", core)
    assert dates and set(dates) == {"1980-01-01T00:00:00Z"}


def test_xlsx_numbers_do_not_carry_last_bit_noise(tmp_path):
    """Two estimates that differ only in the last bits of a floating-point sum give the same workbook."""
    import openpyxl

    def spec(v):
        return TableSpec(header=((Cell("Term"), Cell("Estimate")),),
                         body=(Row((Cell("x"), Cell("-0.0064", kind="estimate", value=v))),))

    a, b = to_xlsx(spec(-0.006370905599431986)), to_xlsx(spec(-0.006370905599430432))
    assert a == b
    to_xlsx(spec(-0.006370905599431986), tmp_path / "t.xlsx")
    cell = openpyxl.load_workbook(tmp_path / "t.xlsx").active["B2"]
    assert cell.value == -0.00637090559943 and cell.number_format == "0.0000"
