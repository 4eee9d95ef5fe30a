"""Text renderers: HTML, LaTeX, Markdown and plain text.

Each takes a :class:`~cimstats.render.spec.TableSpec` and returns a string;
with ``path=`` the string is also written atomically (UTF-8).
"""

from __future__ import annotations

import os
import unicodedata

from cimstats._files import atomic_write
from cimstats.errors import RenderError
from cimstats.render.escape import escape_html, escape_latex, escape_markdown, xml_safe
from cimstats.render.spec import Cell, TableSpec

__all__ = ["to_html", "to_latex", "to_markdown", "to_text"]


def _check(spec) -> TableSpec:

    if not isinstance(spec, TableSpec):
        raise RenderError(
            f"Renderers take a TableSpec, got {type(spec).__name__}; build one with TableSpec(...) "
            "or TableSpec.from_frame(frame), or call `.table` on a joint display."
        )
    return spec


def _markers(c: Cell) -> str:
    return ",".join(c.footnotes)


# ---------------------------------------------------------------------- HTML
_CSS = (
    "table.cimstats{border-collapse:collapse;font-family:system-ui,sans-serif;font-size:0.95em}"
    "table.cimstats caption{text-align:left;font-weight:bold;padding-bottom:0.4em}"
    "table.cimstats th,table.cimstats td{padding:0.25em 0.6em;vertical-align:top}"
    "table.cimstats thead tr:first-child th{border-top:2px solid #000}"
    "table.cimstats thead tr:last-child th{border-bottom:1px solid #000}"
    "table.cimstats tbody tr:last-child td,table.cimstats tbody tr:last-child th{border-bottom:2px solid #000}"
    "table.cimstats .num{text-align:right;white-space:nowrap}"
    "table.cimstats .group th{text-align:left;font-style:italic;padding-top:0.6em}"
    "table.cimstats .total td,table.cimstats .total th{border-top:1px solid #000}"
    "table.cimstats .quote{font-style:italic}"
    "div.cimstats-notes{font-size:0.85em;max-width:60em}"
)


def to_html(spec: TableSpec, path: str | os.PathLike | None = None, *, standalone: bool = True) -> str:
    """Render a table as self-contained, accessible HTML.

    The table has a ``<caption>``, header cells ``<th scope="col">`` (or
    ``colgroup`` when spanning), row-group headings ``<th scope="rowgroup">``
    and, for the first column of data rows, ``<th scope="row">``. All text is
    escaped; styles are inline so the file needs nothing else.

    Parameters
    ----------
    spec : TableSpec
    path : path-like, optional
        Write the HTML there (atomically).
    standalone : bool
        Wrap in a complete HTML document (default) or return only the
        ``<table>`` fragment with its notes.

    Examples
    --------
    >>> from cimstats.render import TableSpec, Cell, to_html
    >>> html = to_html(TableSpec(title="T <1>", header=((Cell("a"),),), body=((Cell("x & y"),),)), standalone=False)
    >>> "<caption>T &lt;1&gt;</caption>" in html, "x &amp; y" in html
    (True, True)
    """
    spec = _check(spec)
    out: list[str] = []
    ident = f' id="{spec.label}"' if spec.label else ""
    out.append(f'<table class="cimstats"{ident}>')
    cap = spec.caption_text()
    if cap:
        out.append(f"<caption>{escape_html(cap)}</caption>")
    if spec.column_widths:
        total = sum(spec.column_widths)
        out.append("<colgroup>" + "".join(f'<col style="width:{100 * w / total:.1f}%">' for w in spec.column_widths)
                   + "</colgroup>")
    grid = spec.grid()
    nh = spec.n_header_rows

    def cell_html(c: Cell, tag: str, scope: str | None, extra_class: str = "") -> str:
        attrs = []
        if scope:
            attrs.append(f'scope="{scope}"')
        if c.colspan > 1:
            attrs.append(f'colspan="{c.colspan}"')
        if c.rowspan > 1:
            attrs.append(f'rowspan="{c.rowspan}"')
        classes = [k for k in (("num" if c.numeric else ""), ("quote" if c.kind == "quote" else ""), extra_class) if k]
        if classes:
            attrs.append(f'class="{" ".join(classes)}"')
        text = escape_html(c.text)
        if c.bold:
            text = f"<strong>{text}</strong>"
        if c.italic:
            text = f"<em>{text}</em>"
        if c.footnotes:
            text += f"<sup>{escape_html(_markers(c))}</sup>"
        a = (" " + " ".join(attrs)) if attrs else ""
        return f"<{tag}{a}>{text}</{tag}>"

    if nh:
        out.append("<thead>")
        for i in range(nh):
            cells = [
                cell_html(c, "th", "colgroup" if c.colspan > 1 else "col")
                for c in grid[i]
                if c is not None
            ]
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</thead>")
    out.append("<tbody>")
    for k, row in enumerate(spec.body):
        g = grid[nh + k]
        if row.role == "group":
            out.append('<tr class="group">' + cell_html(row.cells[0], "th", "rowgroup") + "</tr>")
            continue
        cls = ' class="total"' if row.role == "total" else ""
        cells = []
        for j, c in enumerate(g):
            if c is None:
                continue
            if j == 0:
                cells.append(cell_html(c, "th", "rowgroup" if c.rowspan > 1 else "row"))
            else:
                cells.append(cell_html(c, "td", None))
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody>")
    out.append("</table>")
    if spec.notes or spec.footnotes:
        out.append('<div class="cimstats-notes">')
        for n in spec.joined_notes():
            out.append(f"<p><em>Note.</em> {escape_html(n)}</p>")
        for f in spec.footnotes:
            out.append(f"<p><sup>{escape_html(f.marker)}</sup> {escape_html(f.text)}</p>")
        out.append("</div>")
    body = "\n".join(out)
    if standalone:
        title = escape_html(spec.title or cap or "Table")
        body = (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )
    if path is not None:
        atomic_write(path, body, error=RenderError)
    return body


# --------------------------------------------------------------------- LaTeX
def to_latex(
    spec: TableSpec,
    path: str | os.PathLike | None = None,
    *,
    long: bool | None = None,
    long_threshold: int = 25,
    standalone: bool = False,
) -> str:
    """Render a table as LaTeX with booktabs rules.

    Short tables use ``table`` + ``tabular``; long tables (more than
    ``long_threshold`` body rows, or ``long=True``) use ``longtable`` with the
    header repeated on every page. Landscape tables sit in a ``landscape``
    environment (package ``pdflscape``). Cells merged over columns use
    ``\\multicolumn``; cells merged over rows are set in their first row with
    the rows below left empty (top-aligned, as booktabs advises), so no
    ``multirow`` package is needed. Every text is escaped.

    Required packages: ``booktabs``, ``longtable`` (long tables), ``pdflscape`` (landscape), ``array``; notes are set below the
    table. ``standalone=True`` returns a complete document; with pdfLaTeX it
    maps common Greek letters and relation signs, while text in other
    scripts (or emoji) needs XeLaTeX or LuaLaTeX with a suitable font.

    Examples
    --------
    >>> from cimstats.render import TableSpec, Cell, to_latex
    >>> tex = to_latex(TableSpec(title="A_b", header=((Cell("x"), Cell("y", kind="number")),), body=((Cell("50%"), Cell("1.0", kind="number")),)))
    >>> "\\\\toprule" in tex and "50\\\\%" in tex and "A\\\\_b" in tex
    True
    """
    spec = _check(spec)
    nh = spec.n_header_rows
    is_long = (spec.n_body_rows > long_threshold) if long is None else bool(long)
    grid = spec.grid()
    ncols = spec.n_columns

    # column alignment: right for columns whose data cells are all numeric
    align: list[str] = []
    wrap_cols: list[int] = []
    for j in range(ncols):
        data = [grid[i][j] for i in range(nh, len(grid)) if grid[i][j] is not None and spec.body[i - nh].role == "data"]
        if data and all(c.numeric and "\n" not in c.text for c in data):
            align.append("r")
        elif data and any(c.kind == "quote" or len(c.text) > 40 or "\n" in c.text for c in data):
            align.append("p")
            wrap_cols.append(j)
        else:
            align.append("l")
    # paragraph columns share the width left by the others (or follow `column_widths`)
    if wrap_cols:
        if spec.column_widths:
            total = sum(spec.column_widths)
            widths = {j: 0.95 * spec.column_widths[j] / total for j in wrap_cols}
        else:
            share = max((0.95 - 0.12 * (ncols - len(wrap_cols))) / len(wrap_cols), 0.12)
            widths = {j: share for j in wrap_cols}
        for j in wrap_cols:
            align[j] = f"p{{{widths[j]:.2f}\\linewidth}}"
    colspec = "".join(align)

    def cell_tex(c: Cell, head: bool = False, j: int = 0) -> str:
        text = c.text if (j in wrap_cols and c.colspan == 1) else " ".join(c.text.splitlines())
        t = escape_latex(text)
        if c.bold:
            t = f"\\textbf{{{t}}}"
        if c.italic or c.kind == "quote":
            t = f"\\textit{{{t}}}"
        if c.footnotes:
            t += f"\\textsuperscript{{{escape_latex(_markers(c))}}}"
        # a cell merged over rows is set in its first row, the rows below left empty (the booktabs
        # convention, top-aligned like \multirow[t]; no extra package needed)
        if c.colspan > 1 or head:
            a = "c" if c.colspan > 1 else ("r" if c.numeric else "l")
            if c.colspan == 1 and j in wrap_cols:
                a = align[j]
            t = f"\\multicolumn{{{c.colspan}}}{{{a}}}{{{t}}}"
        return t

    def row_tex(i: int, head: bool = False) -> str:
        parts = []
        j = 0
        row = grid[i]
        while j < ncols:
            c = row[j]
            if c is None:
                # covered by a rowspan from a row above: an empty placeholder as wide as that cell
                r0, c0 = _covering(grid, i, j)
                span = grid[r0][c0].colspan
                parts.append(f"\\multicolumn{{{span}}}{{l}}{{}}" if span > 1 else "")
                j += span
                continue
            parts.append(cell_tex(c, head, j))
            j += c.colspan
        return " & ".join(parts) + r" \\"

    def cmidrules(i: int) -> str:
        rules = []
        j = 0
        row = grid[i]
        while j < ncols:
            c = row[j]
            if c is not None and c.colspan > 1:
                rules.append(f"\\cmidrule(lr){{{j + 1}-{j + c.colspan}}}")
                j += c.colspan
            else:
                j += 1
        return " ".join(rules)

    head_lines = []
    for i in range(nh):
        head_lines.append(row_tex(i, head=True))
        r = cmidrules(i)
        if r and i < nh - 1:
            head_lines.append(r)
    body_lines = []
    for k, row in enumerate(spec.body):
        i = nh + k
        if row.role == "group":
            if k > 0:
                body_lines.append(r"\addlinespace")
            c = row.cells[0]
            body_lines.append(f"\\multicolumn{{{ncols}}}{{l}}{{{cell_tex(Cell(c.text, bold=c.bold, italic=c.italic, footnotes=c.footnotes), False, -1)}}} \\\\")
            continue
        if row.role == "total":
            body_lines.append(r"\midrule")
        body_lines.append(row_tex(i))

    cap = escape_latex(" ".join(p for p in (spec.title, spec.caption or "") if p))
    label = f"\\label{{{spec.label}}}" if spec.label else ""
    notes = []
    for n in spec.joined_notes():
        notes.append(f"\\textit{{Note.}} {escape_latex(n)}")
    for f in spec.footnotes:
        notes.append(f"\\textsuperscript{{{escape_latex(f.marker)}}} {escape_latex(f.text)}")

    L: list[str] = []
    if is_long:
        L.append(f"\\begin{{longtable}}{{{colspec}}}")
        if cap:
            L.append(f"\\caption{{{cap}}}{label}\\\\")
        L.append(r"\toprule")
        L += head_lines
        L.append(r"\midrule")
        L.append(r"\endfirsthead")
        L.append(f"\\multicolumn{{{ncols}}}{{l}}{{\\textit{{(continued)}}}}\\\\")
        L.append(r"\toprule")
        L += head_lines
        L.append(r"\midrule")
        L.append(r"\endhead")
        L.append(r"\bottomrule")
        L.append(r"\endlastfoot")
        L += body_lines
        L.append(r"\end{longtable}")
        if notes:
            L.append("\\begin{minipage}{\\linewidth}\\footnotesize")
            L.append("\\par ".join(notes))
            L.append("\\end{minipage}")
    else:
        L.append(r"\begin{table}[htbp]")
        L.append(r"\centering")
        if cap:
            L.append(f"\\caption{{{cap}}}{label}")
        L.append(f"\\begin{{tabular}}{{{colspec}}}")
        L.append(r"\toprule")
        L += head_lines
        if nh:
            L.append(r"\midrule")
        L += body_lines
        L.append(r"\bottomrule")
        L.append(r"\end{tabular}")
        if notes:
            L.append("\\par\\smallskip\\begin{minipage}{\\linewidth}\\footnotesize")
            L.append("\\par ".join(notes))
            L.append("\\end{minipage}")
        L.append(r"\end{table}")
    if spec.orientation == "landscape":
        L = [r"\begin{landscape}"] + L + [r"\end{landscape}"]
    tex = "\n".join(L) + "\n"
    if standalone:
        greek = {"03B1": "alpha", "03B2": "beta", "03B3": "gamma", "03B4": "delta", "03B5": "epsilon",
                 "03B7": "eta", "03BA": "kappa", "03BB": "lambda", "03BC": "mu", "03C1": "rho", "03C3": "sigma",
                 "03C4": "tau", "03C7": "chi", "03C9": "omega", "2265": "geq", "2264": "leq", "00D7": "times"}
        declares = "".join(f"\\DeclareUnicodeCharacter{{{k}}}{{\\ensuremath{{\\{v}}}}}" for k, v in greek.items())
        tex = (
            "\\documentclass{article}\n\\usepackage{iftex}\n"
            "\\ifPDFTeX\\usepackage[T1]{fontenc}\\usepackage[utf8]{inputenc}" + declares + "\\fi\n"
            "\\usepackage{booktabs,longtable,pdflscape,array,textcomp}\n"
            "\\begin{document}\n" + tex + "\\end{document}\n"
        )
    if path is not None:
        atomic_write(path, tex, error=RenderError)
    return tex


def _covering(grid, i, j):
    """Grid position ``(r, c)`` of the merged cell covering ``(i, j)``, or None."""
    for r in range(i, -1, -1):
        for c in range(j, -1, -1):
            cell = grid[r][c]
            if cell is not None and r + cell.rowspan > i and c + cell.colspan > j:
                return (r, c)
    return None


# ------------------------------------------------------------------ Markdown
def to_markdown(spec: TableSpec, path: str | os.PathLike | None = None) -> str:
    """Render a table as a GitHub-flavoured Markdown pipe table.

    Pipe tables have one header row and no merged cells: header rows are
    joined per column (``Group: Column``), a merged cell shows its text in
    its first position and leaves covered positions empty, and group rows
    show their heading in bold in the first column. Caption, notes and
    footnotes are written as paragraphs. All text is escaped.

    Examples
    --------
    >>> from cimstats.render import TableSpec, Cell, to_markdown
    >>> print(to_markdown(TableSpec(header=((Cell("a"), Cell("b")),), body=((Cell("x|y"), Cell("1", kind="number")),))))
    | a | b |
    | :-- | --: |
    | x\\|y | 1 |
    <BLANKLINE>
    """
    spec = _check(spec)
    grid = spec.grid()
    nh = spec.n_header_rows
    ncols = spec.n_columns
    heads = []
    for j in range(ncols):
        parts = []
        for i in range(nh):
            cov = _covering(grid, i, j)
            if cov is None:
                continue
            t = grid[cov[0]][cov[1]].text
            if t and (not parts or parts[-1] != t):
                parts.append(t)
        heads.append(escape_markdown(": ".join(parts)) if parts else " ")
    aligns = []
    for j in range(ncols):
        data = [grid[i][j] for i in range(nh, len(grid)) if grid[i][j] is not None and spec.body[i - nh].role == "data"]
        aligns.append("--:" if data and all(c.numeric for c in data) else ":--")
    lines = []
    cap = spec.caption_text()
    if cap:
        lines.append(f"**{escape_markdown(cap)}**")
        lines.append("")
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("| " + " | ".join(aligns) + " |")
    for k, row in enumerate(spec.body):
        g = grid[nh + k]
        if row.role == "group":
            t = escape_markdown(row.cells[0].text)
            cells = [f"**{t}**" if t else ""] + [""] * (ncols - 1)
        else:
            cells = []
            for c in g:
                if c is None:
                    cells.append("")
                    continue
                t = escape_markdown(c.text)
                if c.footnotes:
                    t += "<sup>" + escape_markdown(_markers(c)) + "</sup>"
                if t and (c.bold or row.role == "total"):
                    t = f"**{t}**"
                cells.append(t)
        lines.append("| " + " | ".join(cells) + " |")
    if spec.notes or spec.footnotes:
        lines.append("")
        for n in spec.joined_notes():
            lines.append(f"*Note.* {escape_markdown(n)}")
            lines.append("")
        for f in spec.footnotes:
            lines.append(f"<sup>{escape_markdown(f.marker)}</sup> {escape_markdown(f.text)}")
            lines.append("")
        while lines and lines[-1] == "":
            lines.pop()
    md = "\n".join(lines) + "\n"
    if path is not None:
        atomic_write(path, md, error=RenderError)
    return md


# ---------------------------------------------------------------- plain text
def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 0 if unicodedata.combining(ch) else 1 for ch in s)


def to_text(spec: TableSpec, path: str | os.PathLike | None = None, *, max_width: int = 40) -> str:
    """Render a table as aligned plain text (for consoles and logs).

    Long cell text is wrapped at ``max_width`` characters per column; merged
    cells show their text once. Control characters are replaced.

    Examples
    --------
    >>> from cimstats.render import TableSpec, Cell, to_text
    >>> print(to_text(TableSpec(title="T", header=((Cell("a"), Cell("b")),), body=((Cell("x"), Cell("1", kind="number")),))))
    T
    -----
    a   b
    -----
    x   1
    -----
    <BLANKLINE>
    """
    import textwrap

    spec = _check(spec)
    grid = spec.grid()
    ncols = spec.n_columns
    nh = spec.n_header_rows

    def text_of(c: Cell | None) -> str:
        if c is None:
            return ""
        t = xml_safe(c.text).replace("\r", "")
        if c.footnotes:
            t += "^" + _markers(c)
        return t

    # widths from single-column cells only
    widths = [1] * ncols
    for i, row in enumerate(grid):
        if i >= nh and spec.body[i - nh].role == "group":
            continue
        for j, c in enumerate(row):
            if c is not None and c.colspan == 1:
                longest = max((_width(p) for p in text_of(c).split("\n")), default=0)
                widths[j] = max(widths[j], min(longest, max_width))
    total = sum(widths) + 3 * (ncols - 1)

    def wrap(t: str, w: int) -> list[str]:
        out = []
        for para in t.split("\n"):
            out += textwrap.wrap(para, w) or [""]
        return out

    def pad(s: str, w: int, right: bool) -> str:
        gap = max(w - _width(s), 0)
        return (" " * gap + s) if right else (s + " " * gap)

    def render_row(i: int) -> list[str]:
        row = grid[i]
        if i >= nh and spec.body[i - nh].role == "group":
            return wrap(text_of(row[0]), total)
        cols = []
        j = 0
        while j < ncols:
            c = row[j]
            span = c.colspan if c is not None else 1
            w = sum(widths[j : j + span]) + 3 * (span - 1)
            cols.append((wrap(text_of(c), w), w, c is not None and c.numeric))
            j += span
        h = max(len(x[0]) for x in cols)
        lines = []
        for k in range(h):
            lines.append("   ".join(pad(x[0][k] if k < len(x[0]) else "", x[1], x[2]) for x in cols).rstrip())
        return lines

    rule = "-" * total
    out = []
    cap = spec.caption_text()
    if cap:
        out += wrap(xml_safe(cap), max(total, 20))
    out.append(rule)
    for i in range(nh):
        out += render_row(i)
    if nh:
        out.append(rule)
    for k in range(spec.n_body_rows):
        if spec.body[k].role == "total":
            out.append(rule)
        out += render_row(nh + k)
    out.append(rule)
    for n in spec.joined_notes():
        out += wrap("Note. " + xml_safe(n), max(total, 40))
    for f in spec.footnotes:
        out += wrap(f"{xml_safe(f.marker)} {xml_safe(f.text)}", max(total, 40))
    txt = "\n".join(out) + "\n"
    if path is not None:
        atomic_write(path, txt, error=RenderError)
    return txt
