"""Property tests: any valid arrangement of merged cells renders with the same grid in every format."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimstats.render import Cell, Row, TableSpec, to_docx, to_html, to_latex, to_markdown, to_text, to_xlsx


@st.composite
def layouts(draw):
    """A random partition of an R x C grid into rectangles, as rows of cells in reading order."""
    R = draw(st.integers(2, 6))
    C = draw(st.integers(1, 5))
    taken = [[False] * C for _ in range(R)]
    rows: list[list[Cell]] = [[] for _ in range(R)]
    rects = []
    for i in range(R):
        for j in range(C):
            if taken[i][j]:
                continue
            max_w = 0
            while j + max_w < C and not taken[i][j + max_w]:
                max_w += 1
            w = draw(st.integers(1, max_w))
            h = draw(st.integers(1, R - i))
            # shrink the height until the rectangle is free
            while any(taken[i + di][j + dj] for di in range(h) for dj in range(w)):
                h -= 1
            for di in range(h):
                for dj in range(w):
                    taken[i + di][j + dj] = True
            rows[i].append(Cell(f"r{i}c{j}", colspan=w, rowspan=h))
            rects.append((i, j, i + h - 1, j + w - 1))
    n_header = draw(st.integers(0, 1))
    # a header row must not be merged into the body
    if n_header and any(r0 == 0 and r1 > 0 for r0, _, r1, _ in rects):
        n_header = 0
    return R, C, rows, rects, n_header


SET = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _spec(rows, n_header):
    header = tuple(tuple(r) for r in rows[:n_header])
    body = tuple(Row(tuple(r)) for r in rows[n_header:])
    return TableSpec(title="layout", header=header, body=body)


@SET
@given(layouts())
def test_grid_and_merges_match_the_layout(layout):
    R, C, rows, rects, nh = layout
    s = _spec(rows, nh)
    assert s.n_columns == C and len(s.grid()) == R
    assert sorted(s.merges()) == sorted(r for r in rects if r[0] != r[2] or r[1] != r[3])
    covered = sum((r1 - r0 + 1) * (c1 - c0 + 1) for r0, c0, r1, c1 in rects)
    assert covered == R * C


@SET
@given(layouts())
def test_html_and_markdown_cover_the_grid(layout):
    import re

    R, C, rows, rects, nh = layout
    s = _spec(rows, nh)
    html = to_html(s, standalone=False)
    area = 0
    for m in re.finditer(r"<(td|th)(\s[^>]*)?>", html):
        attrs = m.group(2) or ""
        cs = re.search(r'colspan="(\d+)"', attrs)
        rs = re.search(r'rowspan="(\d+)"', attrs)
        area += (int(cs.group(1)) if cs else 1) * (int(rs.group(1)) if rs else 1)
    assert area == R * C
    md = to_markdown(s)
    table_lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    expected_lines = 2 + (R - nh) if nh else 2 + R
    assert len(table_lines) == expected_lines
    for ln in table_lines:
        assert ln.count(" | ") == C - 1


@SET
@given(layouts())
def test_latex_rows_have_every_column(layout):
    import re

    R, C, rows, rects, nh = layout
    tex = to_latex(_spec(rows, nh))
    lines = [ln for ln in tex.splitlines() if ln.endswith("\\\\") and "caption" not in ln]
    assert len(lines) == R
    for ln in lines:
        cols = 1 + ln.count(" & ")
        extra = sum(int(k) - 1 for k in re.findall(r"\\multicolumn\{(\d+)\}", ln))
        assert cols + extra == C, ln


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_office_files_merge_the_same_cells(layout):
    import docx
    import openpyxl

    R, C, rows, rects, nh = layout
    s = _spec(rows, nh)
    d = docx.Document(io.BytesIO(to_docx(s)))
    t = d.tables[0]
    for r0, c0, r1, c1 in rects:
        assert t.cell(r0, c0)._tc is t.cell(r1, c1)._tc
        assert t.cell(r0, c0).text == f"r{r0}c{c0}"
    ws = openpyxl.load_workbook(io.BytesIO(to_xlsx(s))).active
    from openpyxl.utils import get_column_letter as L

    expected = {f"{L(c0 + 1)}{3 + r0}:{L(c1 + 1)}{3 + r1}" for r0, c0, r1, c1 in rects if (r0, c0) != (r1, c1)}
    assert {str(x) for x in ws.merged_cells.ranges} == expected
    assert to_text(s).count("r0c0") == 1
