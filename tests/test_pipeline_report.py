"""The demo report reads well: notes say what they mean, one number format per column kind, every
table and figure title shown once, and no caterpillar plot of a variance estimated at zero.

The page is parsed with the standard library's HTML parser: tables as (caption, header, rows of
cell text) and the text a reader sees outside the figures' SVG.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from cimstats.render import NumberFormat


class _Page(HTMLParser):
    """Tables (caption, header cells, body rows), figure captions and the visible text outside SVG."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.figcaptions: list[str] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._svg = 0
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._grab: list[str] | None = None
        self._grab_tag = ""

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self._svg += 1
        if self._svg:
            return
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag in ("caption", "figcaption", "h1", "h2", "h3", "h4"):
            self._grab, self._grab_tag = [], tag

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg -= 1
            return
        if self._svg:
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1]["rows"].append(self._row)
            self._row = None
        elif tag == self._grab_tag and self._grab is not None:
            text = " ".join("".join(self._grab).split())
            if tag == "caption":
                self.tables[-1]["caption"] = text
            elif tag == "figcaption":
                self.figcaptions.append(text)
            else:
                self.headings.append(text)
            self._grab = None

    def handle_data(self, data):
        if self._svg:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._grab is not None:
            self._grab.append(data)


@pytest.fixture(scope="module")
def page(demo_run) -> _Page:
    p = _Page()
    p.feed((demo_run / "report.html").read_text(encoding="utf-8"))
    return p


def _table(page: _Page, caption_start: str) -> tuple[list[str], list[list[str]]]:
    """Header and body rows of the table whose caption starts with ``caption_start`` (after ``Table N.``)."""
    for t in page.tables:
        cap = re.sub(r"^Table \S+\. ", "", t["caption"])
        if cap.startswith(caption_start):
            rows = [r for r in t["rows"] if r]
            return rows[0], rows[1:]
    raise AssertionError(f"no table captioned {caption_start!r}; captions: {[t['caption'] for t in page.tables]}")


def _column(header, rows, name) -> list[str]:
    j = header.index(name)
    return [r[j] for r in rows if len(r) == len(header)]


# ----------------------------------------------------------------------------- notes
def test_notes_never_print_nan(page, demo_run):
    text = " ".join(page.text)
    assert not re.search(r"\bnan\b", text, flags=re.I), "a note or cell prints 'nan'"
    models = pd.read_csv(demo_run / "mechanisms/models.csv", keep_default_na=False, na_values=[""])
    # each model's note says what is meant: why it was not fitted, or its fit diagnostics
    for r in models.itertuples():
        said = r.reason if isinstance(r.reason, str) and r.reason else r.diagnostics
        if isinstance(said, str) and said:
            assert f"{r.model_id}: {said}" in text


# ----------------------------------------------------------------------------- number formats
def test_fit_indices_df_and_counts_one_format_per_kind(page, demo_run):
    fmt = NumberFormat()
    for mid in ("ce_invariance", "ce_wave_invariance"):
        header, rows = _table(page, f"Invariance steps of model {mid}")
        inv = pd.read_csv(demo_run / f"models/{mid}_invariance.csv")
        for col in ("cfi", "rmsea", "srmr"):
            assert _column(header, rows, col) == [fmt.fit_index(v) for v in inv[col]]
            assert all(re.fullmatch(r"\d\.\d{3}", c) for c in _column(header, rows, col))
        assert _column(header, rows, "df") == [fmt.count(v) for v in inv["df"]]
        assert all(re.fullmatch(r"\d+|–", c) for c in _column(header, rows, "df_diff"))
    # df: whole numbers as counts (the mediation's 63, the LMM's 1,049), others with two decimals
    for mid in ("ce_mediation", "negotiation", "knowledge_navigation"):
        terms = pd.read_csv(demo_run / f"models/{mid}_terms.csv")
        header, rows = _table(page, f"Estimates of model {mid}")
        assert _column(header, rows, "df") == [fmt.df(v) for v in terms["df"]]
    header, rows = _table(page, "Estimates of model ce_mediation")
    assert "63" in _column(header, rows, "df") and "63.00" not in _column(header, rows, "df")
    # counts in the case-oriented display: whole numbers without decimals
    header, rows = _table(page, "Case-oriented joint display")
    for col in ("Network size", "Tie types"):
        cells = [c for c in _column(header, rows, col) if c != fmt.missing]
        assert cells and all(re.fullmatch(r"\d[\d,]*", c) for c in cells), cells


# ----------------------------------------------------------------------------- titles
def test_every_table_and_figure_title_shown_once(page, demo_run):
    visible = " ".join(" ".join(page.text).split())
    titles = [re.sub(r"^Table \S+\. ", "", t["caption"]) for t in page.tables]
    figures = pd.read_csv(demo_run / "figures/index.csv", keep_default_na=False)
    titles += list(figures["title"])
    assert len(titles) > 20
    for title in titles:
        # once per table or figure it names (the mechanism table and its forest plot share a title)
        n = sum(t.count(title) for t in titles)
        assert visible.count(title) == n, f"{title!r} is shown {visible.count(title)} times, not {n}"
    for h in page.headings:
        assert h not in titles, f"the heading {h!r} repeats a caption"
    # a figure caption is "Figure N. title. description", the description not starting with the title again
    for cap, title in zip(page.figcaptions, figures["title"]):
        assert cap.startswith(f"Figure ") and f". {title}. " in cap + " "


# ----------------------------------------------------------------------------- zero variances
def test_no_caterpillar_plot_of_a_zero_variance(page, demo_run):
    figures = pd.read_csv(demo_run / "figures/index.csv", keep_default_na=False)
    not_drawn = pd.read_csv(demo_run / "figures/not_drawn.csv", keep_default_na=False)
    singular = {}
    for f in sorted((demo_run / "models").glob("*_varcorr.csv")):
        vc = pd.read_csv(f, keep_default_na=False, na_values=[""])
        re_vc = vc[(vc["group"] != "Residual") & vc["term2"].isna()]
        zero = re_vc.loc[re_vc["sdcor"] < 1e-6, "group"].tolist()
        if zero:
            singular[f.name.removesuffix("_varcorr.csv")] = zero
    # the demo's singular fits: practices of alter_resources; patients of relationship_reshaping (circle
    # moves are planted per member, with no patient-level propensity)
    assert singular == {"alter_resources": ["practice_id"], "relationship_reshaping": ["patient_id"]}
    for mid, groups in singular.items():
        for g in groups:
            name = f"caterpillar_{mid}_{g}"
            assert name not in set(figures["file"]) and not (demo_run / "figures" / f"{name}.svg").exists()
            assert name in set(not_drawn["file"])
    text = " ".join(" ".join(page.text).split())
    for r in not_drawn.itertuples():
        assert f"{r.title}: {r.reason}" in text and "estimated at zero" in r.reason
    # the patients of alter_resources are not at zero, and the other practice variances are drawn
    assert {"caterpillar_knowledge_navigation_practice_id", "caterpillar_ce_building_practice_id"} <= set(figures["file"])


def test_report_has_the_fidelity_table_of_the_plan(page):
    """The report shows, per hypothesis, the text, concept, quoted definition, measure and fidelity verdict."""
    from cimstats.mechanisms.fidelity import fidelity_table

    header, rows = _table(page, "Fidelity of each hypothesis")
    assert header[:2] == ["Hypothesis", "Mechanism"] and "Definition (quoted exactly)" in header
    want = fidelity_table()
    assert _column(header, rows, "Hypothesis") == want["hypothesis_id"].tolist()
    assert _column(header, rows, "Verdict") == want["verdict"].tolist()
    assert set(_column(header, rows, "Verdict")) <= {"faithful", "partial"}
    assert "Fidelity of the hypotheses to the source texts" in page.headings
