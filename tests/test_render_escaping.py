"""Property tests: arbitrary text can never become markup, commands or formulas in any format."""

from __future__ import annotations

import html.parser
import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimstats.render import Cell, Footnote, Row, TableSpec, to_docx, to_html, to_latex, to_markdown, to_xlsx
from cimstats.render.escape import FORMULA_PREFIXES, escape_latex, escape_markdown, xml_safe

# arbitrary text, biased toward the characters that matter
SPECIALS = "<>&\"'\\{}$#^_%~|[]`*!=+-@\t\r\n\x00\x07\u2028\ud800"
texts = st.text(alphabet=st.one_of(st.sampled_from(list(SPECIALS)), st.characters()), max_size=60)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_cell_spec(text: str) -> TableSpec:
    return TableSpec(title=text, header=((Cell("h"),),), body=(Row((Cell(text),)),),
                     notes=(text,), footnotes=(Footnote("a", text),))


# ------------------------------------------------------------------ HTML
class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.cell = None
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "td" or tag == "th":
            self.cell = ""
        elif tag == "br" and self.cell is not None:
            self.cell += "\n"

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cells.append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


ALLOWED_HTML = {"html", "head", "meta", "title", "style", "body", "table", "caption", "thead", "tbody", "tr", "th",
                "td", "br", "div", "p", "em", "sup", "strong"}


@FAST
@given(texts)
def test_html_text_is_never_markup(text):
    out = to_html(one_cell_spec(text))
    p = _Collect()
    p.feed(out)
    p.close()
    assert set(p.tags) <= ALLOWED_HTML
    expected = xml_safe(text).replace("\r\n", "\n")
    assert p.cells[-1] == expected
    # exactly the structure we wrote: one header cell and one body cell
    assert len(p.cells) == 2


# ----------------------------------------------------------------- LaTeX
_LATEX_SPECIAL = set("\\{}$&#^_%~<>|\"[]`'")
_INVERSE = {
    r"\textbackslash{}": "\\", r"\{": "{", r"\}": "}", r"\$": "$", r"\&": "&", r"\#": "#",
    r"\textasciicircum{}": "^", r"\_": "_", r"\%": "%", r"\textasciitilde{}": "~", r"\textless{}": "<",
    r"\textgreater{}": ">", r"\textbar{}": "|", r"\textquotedbl{}": '"', "{[}": "[", "{]}": "]", "-{}": "-",
    r"\textasciigrave{}": "`", r"\textquotesingle{}": "'", r"\ensuremath{-}": "\u2212", r"\newline{}": "\n",
}
_INV_RE = re.compile("|".join(re.escape(k) for k in sorted(_INVERSE, key=len, reverse=True)))


@FAST
@given(texts)
def test_latex_escaping_is_complete_and_lossless(text):
    esc = escape_latex(text)
    # every special character appears only inside one of the escape sequences
    rest = _INV_RE.sub("", esc)
    assert not (set(rest) & _LATEX_SPECIAL), rest
    assert "--" not in rest
    # and the escaping can be undone exactly (nothing dropped or merged)
    back = _INV_RE.sub(lambda m: _INVERSE[m.group(0)], esc)
    assert back == xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")


@FAST
@given(texts)
def test_latex_table_braces_balance(text):
    tex = to_latex(one_cell_spec(text))
    # remove escaped braces, then the remaining braces must balance (no group can be closed by user text)
    stripped = tex.replace("\\{", "").replace("\\}", "")
    depth = 0
    for ch in stripped:
        depth += ch == "{"
        depth -= ch == "}"
        assert depth >= 0
    assert depth == 0
    assert tex.count("\\begin{") == tex.count("\\end{")


# -------------------------------------------------------------- Markdown
def _md_cell_tokens(md: str):
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(md)
    cells = []
    for i, t in enumerate(tokens):
        if t.type == "td_open":
            cells.append(tokens[i + 1])
    return cells


@FAST
@given(texts)
def test_markdown_text_is_never_markup(text):
    spec = TableSpec(header=((Cell("h"), Cell("k")),), body=(Row((Cell(text), Cell("end"))),))
    md = to_markdown(spec)
    cells = _md_cell_tokens(md)
    assert len(cells) == 2, md  # a pipe in the text never adds a cell, a newline never ends the row
    inline = cells[0]
    got = ""
    for child in inline.children or []:
        assert child.type in ("text", "html_inline", "softbreak"), (child.type, md)
        if child.type == "html_inline":
            assert child.content == "<br>"
            got += "\n"
        elif child.type == "text":
            got += child.content
    expected = xml_safe(text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    # the table parser trims each cell and the CommonMark parser replaces NUL
    assert got.strip() == expected.strip().replace("\x00", "\ufffd") or got.strip() == expected.strip()
    assert cells[1].children[0].content == "end"


def test_markdown_escape_examples():
    assert escape_markdown("*a* _b_ `c` [d](e) <f> | ~g~") == "\\*a\\* \\_b\\_ \\`c\\` \\[d\\](e) \\<f\\> \\| \\~g\\~"


# ----------------------------------------------------------------- Excel
@SLOW
@given(texts)
def test_xlsx_text_is_never_a_formula(text):
    import openpyxl

    data = to_xlsx(one_cell_spec(text))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb.active
    values = [c for row in ws.iter_rows() for c in row if c.value is not None]
    for c in values:
        assert c.data_type != "f"
    # caption in row 1, header in row 3, the body cell in row 4
    if xml_safe(text):
        assert ws.cell(row=4, column=1).data_type == "s"


@SLOW
@given(texts)
def test_xlsx_body_cell_round_trips(text):
    import openpyxl

    from cimstats._sheets import excel_unescape

    spec = TableSpec(header=((Cell("h"),),), body=(Row((Cell(text),)),))
    wb = openpyxl.load_workbook(io.BytesIO(to_xlsx(spec)))
    c = wb.active.cell(row=2, column=1)
    if text == "":
        assert c.value is None
        return
    assert c.data_type == "s"
    # nothing is replaced: control characters and CR are stored as Excel's _xHHHH_ escapes, which Excel decodes
    assert excel_unescape(c.value) == text
    assert bool(c.quotePrefix) == text.startswith(FORMULA_PREFIXES)


# ------------------------------------------------------------------ Word
@SLOW
@given(texts)
def test_docx_keeps_text_and_stays_valid(text):
    import docx

    data = to_docx(one_cell_spec(text))
    d = docx.Document(io.BytesIO(data))
    got = d.tables[0].cell(1, 0).text
    assert got == xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")


def test_latex_escapes_compile_and_survive_pdflatex(tmp_path):
    """Every ASCII character and the tricky sequences compile, and the PDF text shows them literally."""
    import shutil
    import subprocess

    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("pdflatex is not installed")
    tricky = ["".join(chr(c) for c in range(33, 127)), "\\end{tabular} }{ $x$ %comment", "-- --- `` '' << >>",
              "~ ^ _ # & \\\\ \\newline \\input{/etc/passwd}", "Hungarian: árvíztűrő tükörfúrógép", "a\nb"]
    spec = TableSpec(title="Specials", header=((Cell("text"),),), body=tuple(Row((Cell(t),)) for t in tricky))
    from cimstats.render import to_latex

    (tmp_path / "t.tex").write_text(to_latex(spec, standalone=True), encoding="utf-8")
    r = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "t.tex"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "(/etc/passwd" not in log  # the \\input in the text was typeset, never executed
