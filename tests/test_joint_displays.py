"""Joint displays: every kind built from a mechanism table, a codebook, excerpts and cases, in every format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cimstats.integrate import (
    DEFAULT_RULES,
    DISPLAY_KINDS,
    CodebookError,
    theme_codebook_from_dict,
    joint_display,
    read_excerpts,
    suggest_meta_inferences,
    validate_mechanism_table,
)
from cimstats.render import NumberFormat


@pytest.fixture
def mechanisms():
    """A mechanism table as the mechanisms stage will hand it over (documented contract)."""
    return pd.DataFrame({
        "hypothesis_id": ["H1", "H2", "H3", "H4", "H5"],
        "mechanism": ["navigation", "navigation", "collective_efficacy", "collective_efficacy", "negotiation"],
        "statement": ["Weak ties do more support work in deprived areas", "Network diversity raises self-management",
                      "Collective efficacy mediates diversity -> self-management", "CE is invariant across countries",
                      "Role re-allocation buffers deterioration"],
        "estimate": [1.42, 0.18, 0.061, np.nan, -0.05],
        "ci_lower": [1.10, 0.07, 0.021, np.nan, -0.19],
        "ci_upper": [1.83, 0.29, 0.104, np.nan, 0.09],
        "p_value": [0.0007, 0.0012, 0.003, np.nan, 0.48],
        "model": ["binary GLMM", "LMM", "moderated mediation", "MGCFA", "LMM"],
        "n": [5210, 1480, 1480, np.nan, 702],
        "verdict": ["supported", "supported", "supported", "not testable", "not supported"],
        "verdict_reason": [None, None, None, "scalar invariance failed", None],
        "theme_ids": ["T1", ["T1", "T1a"], "T3;T3b", "", "T2"],
        "effect_label": ["OR", "β", "indirect", None, "β"],
    })


@pytest.fixture
def codebook():
    return theme_codebook_from_dict({
        "mechanisms": [{"id": "navigation", "name": "Network navigation"},
                       {"id": "negotiation", "name": "Negotiation within networks"},
                       {"id": "collective_efficacy", "name": "Collective efficacy"}],
        "themes": [
            {"id": "T1", "name": "Finding the right people", "mechanism": "navigation", "direction": "supports",
             "definition": "Participants ask around to find help.",
             "exemplars": [{"text": "Maria from the allotment told me about the foot clinic, you know, the one at "
                                    "the health centre on the corner near the station where they look at your feet.",
                            "participant": "EN-0004"}],
             "subthemes": [{"id": "T1a", "name": "Weak ties as bridges", "direction": "mixed"}]},
            {"id": "T2", "name": "Renegotiating who helps", "mechanism": "negotiation", "direction": "supports"},
            {"id": "T3", "name": "Doing it together", "mechanism": "collective_efficacy", "direction": "contradicts",
             "subthemes": [{"id": "T3b", "name": "Trust in the group", "direction": "supports"}]},
            {"id": "T4", "name": "Being alone with it", "direction": "none"},
        ],
    })


@pytest.fixture
def cases():
    rng = np.random.default_rng(7)
    ids = [f"EN-{k:04d}" for k in range(1, 41)]
    return pd.DataFrame({"patient_id": ids, "deprivation_q": np.repeat([1, 2, 3, 4], 10),
                         "network_size": rng.integers(2, 15, 40), "ce_score": rng.normal(3, 0.5, 40).round(3)})


@pytest.fixture
def excerpts(cases):
    rows = []
    # T1: 8, 6, 3, 0 cases in quintiles 1-4; T2: 1 case in Q2; T3 (via sub-theme T3b): 7 in Q1 and 9 in Q3
    plan = {"T1": {1: 8, 2: 6, 3: 3}, "T2": {2: 1}, "T3b": {1: 7, 3: 9}}
    for theme, by_q in plan.items():
        for q, n in by_q.items():
            ids = cases.loc[cases["deprivation_q"] == q, "patient_id"].tolist()[:n]
            for i in ids:
                rows.append({"case_id": i, "theme_id": theme, "text": f"Excerpt of {theme} by {i}; Maria helped."})
                if theme == "T1":  # a second excerpt of the same theme: a case counts once
                    rows.append({"case_id": i, "theme_id": theme, "text": "=HYPERLINK(\"http://x\") <script>"})
    rows.append({"case_id": "EN-Q01", "theme_id": "T1", "text": "interviewed only"})
    return read_excerpts(pd.DataFrame(rows))


def _all_formats(jd, tmp_path):
    import docx
    import openpyxl

    for ext in ("docx", "xlsx", "html", "tex", "md", "txt"):
        out = tmp_path / f"{jd.kind}.{ext}"
        jd.render(out)
        assert out.stat().st_size > 200
    d = docx.Document(str(tmp_path / f"{jd.kind}.docx"))
    assert len(d.tables) == 1 and len(d.tables[0].rows) == jd.table.n_header_rows + jd.table.n_body_rows
    ws = openpyxl.load_workbook(tmp_path / f"{jd.kind}.xlsx").active
    assert {str(r) for r in ws.merged_cells.ranges} == {
        f"{_col(c0)}{3 + r0}:{_col(c1)}{3 + r1}" for r0, c0, r1, c1 in jd.table.merges()}
    return d, ws


def _col(j: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(j + 1)


# ------------------------------------------------------------ contract
def test_mechanism_table_contract(mechanisms):
    t = validate_mechanism_table(mechanisms)
    assert t["theme_ids"].tolist() == ["T1", "T1;T1a", "T3;T3b", "", "T2"]
    assert str(t["n"].dtype) == "Int64"
    bad = mechanisms.drop(columns=["verdict"])
    with pytest.raises(CodebookError, match="verdict"):
        validate_mechanism_table(bad)
    bad = mechanisms.assign(verdict=["supported", "maybe", "supported", "supported", "supported"],
                            p_value=[0.1, 2.0, "x", None, None])
    with pytest.raises(CodebookError) as e:
        validate_mechanism_table(bad)
    assert sorted(i.code for i in e.value.report) == ["J002", "J003", "J004"]
    with pytest.raises(CodebookError, match="DataFrame"):
        validate_mechanism_table([1, 2])


# ------------------------------------------------------------ meta-inferences
def test_rule_table_covers_every_combination():
    combos = set(zip(DEFAULT_RULES["verdict"], DEFAULT_RULES["theme_direction"]))
    assert len(combos) == len(DEFAULT_RULES) == 16


def test_meta_inference_rules_and_overrides():
    pairs = pd.DataFrame({"hypothesis_id": ["H1", "H1", "H2", "H3"], "theme_id": ["T1", "T2", "T1", "T3"],
                          "verdict": ["supported", "supported", "contrary", "not testable"],
                          "theme_direction": ["supports", "contradicts", "supports", "supports"]})
    out = suggest_meta_inferences(pairs)
    assert out["meta_inference"].tolist() == ["confirmation", "discordance", "discordance", "silence"]
    assert out["decided_by"].tolist() == ["rule:R1", "rule:R3", "rule:R9", "rule:R13"]
    ov = [{"hypothesis_id": "H1", "theme_id": "T2", "meta_inference": "expansion", "decided_by": "K. Team",
           "reason": "different subgroups"}]
    out = suggest_meta_inferences(pairs, overrides=ov)
    assert out.loc[1, ["meta_inference", "decided_by", "rationale"]].tolist() == ["expansion", "K. Team",
                                                                                   "different subgroups"]
    assert out.loc[0, "decided_by"] == "rule:R1"  # other theme of H1 untouched
    # edited rules are used as given
    rules = DEFAULT_RULES.copy()
    rules.loc[rules["rule_id"] == "R13", "meta_inference"] = "expansion"
    assert suggest_meta_inferences(pairs, rules=rules)["meta_inference"].iloc[3] == "expansion"
    with pytest.raises(CodebookError) as e:
        suggest_meta_inferences(pairs, overrides={"H1": ("expansion",)})  # nobody named
    assert e.value.report.issues[0].code == "I002"
    with pytest.raises(CodebookError):
        suggest_meta_inferences(pairs, overrides={"H9": ("expansion", "me")})
    with pytest.raises(CodebookError, match="No rule"):
        suggest_meta_inferences(pairs, rules=DEFAULT_RULES.iloc[:3])


# ------------------------------------------------------------ side by side
def test_side_by_side(mechanisms, codebook, tmp_path):
    jd = joint_display(mechanisms, kind="side-by-side", codebook=codebook,
                       overrides={("H5", "T2"): ("expansion", "A. Reviewer", "works only for spouses")},
                       names=["Maria"], max_quote_chars=60, number=3)
    mi = jd.meta_inferences.set_index(["hypothesis_id", "theme_id"])
    assert mi.loc[("H1", "T1"), "meta_inference"] == "confirmation"
    assert mi.loc[("H2", "T1a"), "meta_inference"] == "expansion"      # supported x mixed
    assert mi.loc[("H3", "T3"), "meta_inference"] == "discordance"     # supported x contradicts
    assert mi.loc[("H3", "T3b"), "meta_inference"] == "confirmation"
    assert mi.loc[("H5", "T2"), "decided_by"] == "A. Reviewer"
    # H4 lists no theme: it is linked to the theme of its mechanism; not testable -> silence
    h4 = jd.meta_inferences.loc[jd.meta_inferences["hypothesis_id"] == "H4"]
    assert h4[["theme_id", "link", "meta_inference"]].values.tolist() == [["T3", "shared mechanism", "silence"]]
    assert any("same mechanism" in n for n in jd.table.notes)
    off = joint_display(mechanisms, kind="side_by_side", codebook=codebook, link_by_mechanism=False)
    h4 = off.meta_inferences.loc[off.meta_inferences["hypothesis_id"] == "H4"]
    assert h4["theme_id"].isna().all() and (h4["meta_inference"] == "silence").all()
    # one row per hypothesis-theme pairing; mechanism and hypothesis cells merged over their rows
    t = jd.table
    assert t.n_body_rows == len(jd.meta_inferences) == 7
    merges = t.merges()
    assert (2, 0, 4, 0) in merges          # navigation: H1 (1 row) + H2 (2 rows)
    assert (3, 1, 4, 1) in merges and (3, 2, 4, 2) in merges   # H2 statement and result over its two themes
    assert (0, 1, 0, 2) in merges and (0, 3, 0, 4) in merges  # strand headers
    g = t.grid()
    assert g[2][0].text == "Network navigation"
    assert g[2][2].text == "OR = 1.42 [1.10, 1.83]; p <0.001\nbinary GLMM, n = 5,210"
    finding, quote = g[2][4].text.split("\n")[:2]
    assert finding == "This study: Participants ask around to find help."   # whose finding it is
    assert quote.startswith("This study: \u201c[name] from the allotment") and "\u2026\u201d (EN-0004)" in quote
    assert "Maria" not in quote and len(quote.split("\u201d")[0]) <= 61 + len("This study: ")
    assert g[2][5].text == "Confirmation: suggested (rule R1), needs review"
    assert jd.meta_inferences.loc[0, "status"] == "suggested, needs review"
    assert t.orientation == "landscape" and t.number == "3"
    d, ws = _all_formats(jd, tmp_path)
    table = d.tables[0]
    assert table.cell(2, 0)._tc is table.cell(4, 0)._tc
    assert "Expansion (A. Reviewer; rule suggested discordance)" in [c.text for c in table.columns[5].cells]


# ----------------------------------------------------- statistics by theme
def test_statistics_by_theme(mechanisms, codebook, tmp_path):
    m = mechanisms.assign(p_adjusted=[0.0021, 0.0036, 0.006, np.nan, 0.48])
    jd = joint_display(m, kind="statistics_by_theme", codebook=codebook, number_format="bmj")
    t = jd.table
    groups = [r.cells[0].text for r in t.body if r.role == "group"]
    assert groups == ["Finding the right people (stated direction: supports)",
                      "Weak ties as bridges (stated direction: mixed)",
                      "Renegotiating who helps (stated direction: supports)",
                      "Doing it together (stated direction: contradicts)",
                      "Trust in the group (stated direction: supports)",
                      "Being alone with it"]
    rows = [[c.text for c in r.cells] for r in t.body if r.role == "data"]
    assert rows[0][:5] == ["H1: Weak ties do more support work in deprived areas", "Network navigation",
                           "OR = 1.42 (1.10 to 1.83)", "0.002", "5,210"]
    assert rows[-1] == ["No linked hypothesis"]
    assert "adjusted for multiple testing" in t.notes[0]
    spec = jd.spec
    assert spec.loc[spec["hypothesis_id"] == "H1", "theme_id"].tolist() == ["T1"]
    assert spec.loc[spec["hypothesis_id"] == "H2", "theme_id"].tolist() == ["T1", "T1a"]
    _all_formats(jd, tmp_path)


# ---------------------------------------------------------- themes by group
def test_themes_by_group_prevalence_suppression_and_quotes(codebook, excerpts, cases, tmp_path):
    jd = joint_display(kind="themes_by_group", codebook=codebook, excerpts=excerpts, cases=cases,
                       group_by="deprivation_q", group_labels={1: "Q1 (most deprived)"},
                       group_title="Deprivation quintile", names={"Maria": "[neighbour]"}, max_quote_chars=40,
                       quotes_per_cell=2)
    spec = jd.spec
    # prevalence computed independently from the excerpts: cases coded, a case counted once per theme
    ex = excerpts.merge(cases, left_on="case_id", right_on="patient_id")
    ex = ex.assign(top=ex["theme_id"].str.replace("T3b", "T3").str.replace("T1a", "T1"))
    expected = ex.groupby(["top", "deprivation_q"])["case_id"].nunique()
    for r in spec.itertuples():
        assert r.n_cases == expected.get((r.theme_id, r.group), 0)
        assert r.n_group == 10
    t = jd.table
    g = t.grid()
    # header: Theme | Deprivation quintile (spans 4) | All ; then the group labels with n
    assert g[0][1].text == "Deprivation quintile" and g[0][1].colspan == 4
    assert [c.text for c in g[1][1:5]] == ["Q1 (most deprived) (n = 10)", "2 (n = 10)", "3 (n = 10)", "4 (n = 10)"]
    t1 = [c.text for c in g[2]]
    assert t1[1].startswith("8 (80%)\n\u201c") and "[neighbour]" in t1[1]
    assert t1[3] == "[c]" and t1[4] == "0 (0%)"
    # T1 row: one small cell (3) and a shown total -> a second cell hidden, the smallest non-zero one (6 in Q2)
    assert jd.suppression.primary[0].tolist() == [False, False, True, False]
    assert jd.suppression.secondary[0].tolist() == [False, True, False, False]
    assert t1[2] == "[c]" and t1[5] == "17 (42%)"  # one symbol: small and complementary cells look alike
    # T2: a single case in Q2 -> suppressed; its row total (1) is small too
    t2 = [c.text for c in g[3]]
    assert t2[2] == "[c]" and t2[5] == "[c]"
    # no quote leaks from a suppressed cell, and quotes are pseudonymised and escaped later by renderers
    for r in spec.itertuples():
        if r.suppressed:
            assert r.quotes == []
        for q in r.quotes:
            assert "Maria" not in q
    assert [f.marker for f in t.footnotes] == ["a"] and "counts from 1 to 4" in t.footnotes[0].text
    assert any("interviewed" not in n and "without a case row" in n for n in t.notes)
    d, ws = _all_formats(jd, tmp_path)
    html = (tmp_path / "themes_by_group.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    for row in ws.iter_rows():
        for c in row:
            assert c.data_type != "f"


def test_themes_by_group_hides_small_groups(codebook, excerpts, cases):
    small = cases.assign(deprivation_q=np.where(cases["patient_id"].isin(["EN-0001", "EN-0002"]), 9,
                                                cases["deprivation_q"]))
    jd = joint_display(kind="themes_by_group", codebook=codebook, excerpts=excerpts, cases=small,
                       group_by="deprivation_q")
    g = jd.table.grid()
    assert g[1][5].text == "9 (n = [c])"
    s = jd.spec
    hidden9 = s.loc[(s["group"] == 9) & (s["n_cases"] > 0), "suppressed"]
    assert len(hidden9) and (hidden9 != "").all()
    # every row with a hidden cell hides at least two values (cells or total)
    for i in range(jd.suppression.hidden.shape[0]):
        k = int(jd.suppression.hidden[i].sum()) + int(jd.suppression.row_total_hidden[i])
        assert k != 1


def test_themes_by_group_without_suppression(codebook, excerpts, cases):
    jd = joint_display(kind="themes_by_group", codebook=codebook, excerpts=excerpts, cases=cases,
                       group_by="deprivation_q", threshold=1)
    assert jd.suppression is None
    assert jd.table.grid()[3][2].text.startswith("1 (10%)")


# ------------------------------------------------------------- convergence
def test_convergence_matrix(mechanisms, codebook, tmp_path):
    jd = joint_display(mechanisms, kind="convergence", codebook=codebook)
    s = jd.spec.set_index("theme_id")
    assert s.loc["T1", "convergence"] == "confirmation"         # H1, H2 both confirm
    assert s.loc["T1a", "convergence"] == "expansion"           # supported x mixed: expansion, not partial agreement
    assert s.loc["T2", "convergence"] == "discordance"          # not supported x supports
    assert s.loc["T3", "convergence"] == "discordance"          # supported x contradicts
    assert s.loc["T3b", "convergence"] == "confirmation"
    assert s.loc["T4", "convergence"] == "silence"
    assert jd.summary_counts == {"confirmation": 2, "expansion": 1, "discordance": 2, "partial agreement": 0,
                                 "silence": 1}
    assert sum(jd.summary_counts.values()) == len(s)
    t = jd.table
    summary = [[c.text for c in r.cells] for r in t.body[-5:]]
    assert summary == [["Confirmation", "2"], ["Expansion", "1"], ["Discordance", "2"], ["Partial agreement", "0"],
                       ["Silence", "1"]]
    assert (t.n_header_rows + t.n_body_rows - 5, 0, t.n_header_rows + t.n_body_rows - 5, 4) in t.merges()
    # a theme whose hypotheses reach different meta-inferences is partial agreement, labelled as the package's code
    m = mechanisms.copy()
    m.loc[m["hypothesis_id"] == "H2", "verdict"] = "not supported"
    jd2 = joint_display(m, kind="convergence", codebook=codebook)
    assert jd2.spec.set_index("theme_id").loc["T1", "convergence"] == "partial agreement"
    row = [r for r in jd2.table.body if r.cells[0].text == "Finding the right people"][0]
    assert row.cells[5].text == "Partial agreement (cimstats's code)"
    assert any("Fetters" in n and "Farmer" in n for n in jd2.table.notes)
    _all_formats(jd, tmp_path)


# ----------------------------------------------------------- case oriented
def test_case_oriented(codebook, excerpts, cases, tmp_path):
    jd = joint_display(kind="case_oriented", codebook=codebook, excerpts=excerpts, cases=cases,
                       profile={"network_size": "Network size", "ce_score": "Collective efficacy"},
                       names=["Maria"], number_format=NumberFormat(decimals=1))
    t = jd.table
    interviewed = sorted(set(excerpts["case_id"]) & set(cases["patient_id"]))
    assert t.n_body_rows == len(interviewed)
    assert [c.text for c in t.header[0]] == ["Case", "Network size", "Collective efficacy", "Coded themes",
                                             "Exemplar quote"]
    first = t.body[0].cells
    row = cases.set_index("patient_id").loc[first[0].text]
    assert first[1].text == str(int(row["network_size"])) and first[1].kind == "count"
    assert first[2].text == NumberFormat(decimals=1).estimate(row["ce_score"])
    coded = excerpts.loc[excerpts["case_id"] == first[0].text, "theme_id"].unique().tolist()
    names = dict(zip(codebook.themes["theme_id"], codebook.themes["name"]))
    assert first[3].text == "; ".join(names[x] for x in coded)
    assert "Maria" not in first[4].text and first[4].kind == "quote"
    assert any("without survey data" in n for n in t.notes)
    assert jd.options["n_interviewed_not_surveyed"] == 1
    _all_formats(jd, tmp_path)


# ------------------------------------------------------------------ errors
def test_display_errors(mechanisms, codebook, excerpts, cases):
    with pytest.raises(CodebookError, match="not a joint-display kind"):
        joint_display(mechanisms, kind="pie")
    with pytest.raises(CodebookError, match="needs the mechanism table"):
        joint_display(kind="convergence", codebook=codebook)
    with pytest.raises(CodebookError, match="needs `excerpts=`"):
        joint_display(kind="case_oriented", cases=cases)
    with pytest.raises(CodebookError, match="group_by"):
        joint_display(kind="themes_by_group", excerpts=excerpts, cases=cases, group_by="nope")
    with pytest.raises(CodebookError, match="repeats"):
        joint_display(kind="themes_by_group", excerpts=excerpts, cases=pd.concat([cases, cases]), group_by="deprivation_q")
    with pytest.raises(CodebookError, match="profile"):
        joint_display(kind="case_oriented", excerpts=excerpts, cases=cases, profile=["height"])
    assert set(DISPLAY_KINDS) == {"side_by_side", "statistics_by_theme", "themes_by_group", "convergence",
                                  "case_oriented"}


def test_cli_builds_a_display(cli, mechanisms, tmp_path):
    import docx

    m = mechanisms.assign(theme_ids=["T1", "T1;T1a", "T3;T3b", "", "T2"])
    m.to_csv(tmp_path / "mech.csv", index=False)
    (tmp_path / "themes.yaml").write_text(
        "themes:\n  - id: T1\n    name: Finding the right people\n    direction: supports\n"
        "  - id: T2\n    name: Renegotiating who helps\n    direction: contradicts\n", encoding="utf-8")
    r = cli("joint", "--kind", "convergence", "--mechanisms", str(tmp_path / "mech.csv"), "--codebook",
            str(tmp_path / "themes.yaml"), "--style", "apa", "--out", str(tmp_path / "c.docx"),
            "--out", str(tmp_path / "c.html"))
    assert r.returncode == 0, r.stderr
    d = docx.Document(str(tmp_path / "c.docx"))
    assert d.tables[0].cell(1, 0).text == "Finding the right people"
    assert (tmp_path / "c.html").exists()
    bad = cli("joint", "--kind", "convergence", "--out", str(tmp_path / "x.md"))
    assert bad.returncode == 2 and "needs the mechanism table" in bad.stderr


def test_all_kinds_compile_and_convert(mechanisms, codebook, excerpts, cases, tmp_path):
    """Each display kind compiles with pdfLaTeX and converts from .docx to PDF with LibreOffice, when installed."""
    import shutil
    import subprocess

    from cimstats.render import to_docx, to_latex

    displays = [
        joint_display(mechanisms, kind="side_by_side", codebook=codebook, number=1),
        joint_display(mechanisms, kind="statistics_by_theme", codebook=codebook, number=2),
        joint_display(kind="themes_by_group", codebook=codebook, excerpts=excerpts, cases=cases,
                      group_by="deprivation_q", number=3),
        joint_display(mechanisms, kind="convergence", codebook=codebook, number=4),
        joint_display(kind="case_oriented", codebook=codebook, excerpts=excerpts, cases=cases,
                      profile={"network_size": "Network size"}, number=5),
    ]
    assert [d.kind for d in displays] == list(DISPLAY_KINDS)
    pdflatex = shutil.which("pdflatex")
    soffice = shutil.which("libreoffice") or shutil.which("soffice")
    if pdflatex is None and soffice is None:
        pytest.skip("neither pdfLaTeX nor LibreOffice is installed")
    if pdflatex is not None:
        body = "\n\\clearpage\n".join(to_latex(d.table) for d in displays)
        tex = to_latex(displays[0].table, standalone=True)
        tex = tex[: tex.index("\\begin{document}") + len("\\begin{document}\n")] + body + "\\end{document}\n"
        (tmp_path / "all.tex").write_text(tex, encoding="utf-8")
        r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "all.tex"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-3000:]
    if soffice is not None:
        to_docx([d.table for d in displays], tmp_path / "all.docx")
        r = subprocess.run([soffice, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
                            str(tmp_path / "all.docx")], capture_output=True, text=True, timeout=180)
        assert r.returncode == 0 and (tmp_path / "all.pdf").stat().st_size > 2000, r.stderr
