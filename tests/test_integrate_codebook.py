"""Theme codebooks, coded excerpts, code -> theme mapping for QDA projects, and case linkage."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from conftest import QDPX, need

from cimstats.integrate import (
    CodebookError,
    UnmappedCodesWarning,
    theme_codebook_from_dict,
    excerpts_from_qdpx,
    link_cases,
    mapping_template,
    read_theme_codebook,
    read_excerpts,
    read_mapping,
    read_qdpx,
)

YAML = """
name: Network mechanisms synthesis
mechanisms:
  navigation:
    name: Network navigation
    definition: Identifying and connecting with relevant existing resources in a network.
  collective_efficacy:
    name: Collective efficacy
    definition: A shared perception and capacity to act through shared effort.
    elements: [timing, trust]
    themes:
      - id: CE-timing
        name: Timing of engagement
        direction: mixed
      - id: CE-trust
        name: Building trust in the group
        direction: supports
        hypotheses: H3
themes:
  - id: T1
    name: Finding the right people
    mechanism: navigation
    definition: Participants describe asking around to find help.
    direction: Supports
    hypotheses: [H1, H2]
    constructs: [network_diversity, weak_ties]
    exemplars:
      - id: Q1
        text: "My neighbour told me about the walking group."
        source: interview 12
        participant: EN-0012
      - "We just asked at church."
    subthemes:
      - id: T1a
        name: Weak ties as bridges
        exemplars:
          - text: "The man at the allotment knew the nurse."
            participant: NO-0003
exemplars:
  - theme_id: CE-trust
    text: "Once we trusted each other we kept coming."
    participant: GR-Q01
"""


@pytest.fixture
def cb(tmp_path):
    p = tmp_path / "themes.yaml"
    p.write_text(YAML, encoding="utf-8")
    return read_theme_codebook(p)


def test_yaml_codebook_tables(cb):
    th = cb.themes.set_index("theme_id")
    assert th.index.tolist() == ["T1", "T1a", "CE-timing", "CE-trust"]
    assert th.loc["T1", "direction"] == "supports" and pd.isna(th.loc["T1a", "direction"])  # not stated
    assert th.loc["T1a", "parent_id"] == "T1" and th.loc["T1a", "level"] == 1
    assert th.loc["T1a", "mechanism"] == "navigation"  # inherited from the parent
    assert th.loc["CE-trust", "mechanism"] == "collective_efficacy"
    assert th.loc["T1", "hypothesis_ids"] == "H1;H2"
    assert cb.mechanisms["mechanism_id"].tolist() == ["navigation", "collective_efficacy"]
    ex = cb.exemplars.set_index("excerpt_id")
    assert ex.loc["Q1", "case_id"] == "EN-0012" and ex.loc["Q1", "source"] == "interview 12"
    assert ex.loc["T1-2", "text"] == "We just asked at church."
    assert (cb.exemplars["theme_id"] == "CE-trust").sum() == 1
    links = cb.links
    assert set(links.loc[links["target_type"] == "construct", "target_id"]) == {"network_diversity", "weak_ties"}
    assert cb.themes_for_hypothesis("H3") == ["CE-trust"]
    assert cb.themes_for_hypothesis("H1") == ["T1"]
    assert "4 themes" in cb.summary()
    assert cb.elements[["element_id", "mechanism_id"]].values.tolist() == [["timing", "collective_efficacy"],
                                                                            ["trust", "collective_efficacy"]]
    assert cb.theme("T1")["name"] == "Finding the right people"
    with pytest.raises(CodebookError, match="not in codebook"):
        cb.theme("T9")


def test_csv_codebook_and_exemplars(tmp_path):
    (tmp_path / "themes.csv").write_text(
        "theme_id,name,parent_id,mechanism,direction,hypothesis_ids\n"
        "T1,Finding people,,navigation,supports,H1;H2\n"
        "T1a,Bridges,T1,,contradicts,\n", encoding="utf-8")
    (tmp_path / "ex.csv").write_text("theme_id,text,case_id\nT1a,\"He said, \"\"go\"\"\",EN-1\n", encoding="utf-8")
    cb = read_theme_codebook(tmp_path / "themes.csv", exemplars=tmp_path / "ex.csv")
    assert cb.themes["level"].tolist() == [0, 1]
    assert cb.themes["mechanism"].tolist() == ["navigation", "navigation"]
    assert cb.exemplars["text"].tolist() == ['He said, "go"']
    assert cb.themes_for_hypothesis("H2") == ["T1"]


def test_codebook_problems_are_collected():
    bad = {"themes": [{"id": "T1", "direction": "sideways"}, {"id": "T1"}, {"id": "T2", "parent": "T9"}],
           "exemplars": [{"theme_id": "T7", "text": "x"}]}
    with pytest.raises(CodebookError) as e:
        theme_codebook_from_dict(bad, source="bad.yaml")
    codes = sorted(i.code for i in e.value.report)
    assert codes == ["C002", "C003", "C005", "C006"]
    assert "bad.yaml" in str(e.value)


def test_codebook_file_errors(tmp_path):
    with pytest.raises(CodebookError, match="does not exist"):
        read_theme_codebook(tmp_path / "none.yaml")
    (tmp_path / "x.yaml").write_text("themes: [unclosed", encoding="utf-8")
    with pytest.raises(CodebookError, match="not valid YAML"):
        read_theme_codebook(tmp_path / "x.yaml")
    (tmp_path / "y.csv").write_text("id,label\n1,a\n", encoding="utf-8")
    with pytest.raises(CodebookError, match="theme_id, name"):
        read_theme_codebook(tmp_path / "y.csv")
    (tmp_path / "z.yaml").write_text("name: nothing\n", encoding="utf-8")
    with pytest.raises(CodebookError, match="no `themes`"):
        read_theme_codebook(tmp_path / "z.yaml")
    (tmp_path / "w.docx").write_text("x", encoding="utf-8")
    with pytest.raises(CodebookError, match="suffix"):
        read_theme_codebook(tmp_path / "w.docx")


# ---------------------------------------------------------------- excerpts
def test_read_excerpts_csv_with_demo_column_names(tmp_path):
    p = tmp_path / "coded_excerpts.csv"
    p.write_text("excerpt_id,participant_id,country,surveyed,theme,code,mechanism,excerpt\n"
                 "X1,EN-0001,EN,1,T1,asking,navigation,\"We asked, then went.\"\n"
                 "X2,EN-Q01,EN,0,T2,,negotiation,=cmd|' /C calc'!A0\n", encoding="utf-8")
    ex = read_excerpts(p)
    assert ex.columns[:4].tolist() == ["excerpt_id", "case_id", "theme_id", "text"]
    assert ex["case_id"].tolist() == ["EN-0001", "EN-Q01"]
    assert ex["text"].iloc[1] == "=cmd|' /C calc'!A0"  # kept verbatim; renderers make it harmless
    assert "country" in ex.columns and "surveyed" in ex.columns
    with pytest.raises(CodebookError, match="case_id"):
        read_excerpts(pd.DataFrame({"theme_id": ["T1"], "text": ["x"]}))


def test_link_cases_counts_and_reports_unmatched():
    cases = pd.DataFrame({"patient_id": ["EN-0001", "EN-0002", "NO-0003"], "ce": [3.0, 2.5, 4.1]})
    ex = read_excerpts(pd.DataFrame({"case_id": ["EN-0001", "EN-0001", "NO-0003", "EN-Q01"],
                                     "theme_id": ["T1", "T1", "T2", "T1"], "text": list("abcd")}))
    with pytest.warns(Warning, match="1 case id"):
        out = link_cases(cases, ex)
    assert out["n_excerpts"].tolist() == [2, 0, 1]
    assert out["theme:T1"].tolist() == [1, 0, 0] and out["theme:T2"].tolist() == [0, 0, 1]
    assert out.attrs["unmatched_excerpt_ids"] == ["EN-Q01"]
    with pytest.raises(CodebookError, match="repeated"):
        link_cases(pd.concat([cases, cases]), ex)
    with pytest.raises(CodebookError, match="not a column"):
        link_cases(cases, ex, id="id")


# ------------------------------------------------------ QDA code mapping
@pytest.fixture(scope="module")
def nvivo():
    return read_qdpx(need(QDPX / "vaccine-scepticism-nvivo.qdpx"))


def test_mapping_template_round_trip(nvivo, tmp_path):
    out = tmp_path / "map.csv"
    tmpl = mapping_template(nvivo, out)
    assert len(tmpl) == 152 and tmpl["n_codings"].sum() == 303
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert back["code"].tolist() == nvivo.codes["guid"].tolist()
    assert read_mapping(out).empty  # nothing filled in yet


def test_excerpts_from_real_qdpx_by_path_name_and_children(nvivo):
    codes, cod = nvivo.codes, nvivo.codings
    parent = "Attituderoots > 2. Distrust"
    mapping = pd.DataFrame({"code": [parent, "Resisting coercion"], "theme_id": ["T-distrust", "T-reactance"]})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ex = excerpts_from_qdpx(nvivo, mapping)
    assert any(issubclass(x.category, UnmappedCodesWarning) for x in w)
    # expected counts from the code paths: the parent and every code below it
    under = set(codes.loc[(codes["path"] == parent) | codes["path"].str.startswith(parent + " > "), "guid"])
    n_distrust = int(cod["code_guid"].isin(under).sum())
    n_reactance = int((cod["code_name"] == "Resisting coercion").sum())
    assert (ex["theme_id"] == "T-distrust").sum() == n_distrust >= 26 + 10 + 9 + 8 + 8
    assert (ex["theme_id"] == "T-reactance").sum() == n_reactance == 28
    assert ex.attrs["unmapped_codings"] == len(cod) - n_distrust - n_reactance
    # no cases in the project: the source name is the case
    assert set(ex["case_id"]) <= set(nvivo.sources["name"])
    # texts come straight from the codings
    merged = ex.merge(cod[["selection_guid", "text"]], left_on="excerpt_id", right_on="selection_guid")
    assert (merged["text_x"] == merged["text_y"]).all()
    # a pseudonymous id per source
    ex2 = excerpts_from_qdpx(nvivo, {"Resisting coercion": "T-reactance"}, case_ids={"videos_10_selected": "HU-0001"})
    assert set(ex2["case_id"]) == {"HU-0001"}


def test_mapping_errors(nvivo):
    with pytest.raises(CodebookError) as e:
        excerpts_from_qdpx(nvivo, {"no such code": "T1"})
    assert e.value.report.issues[0].code == "M001"
    dup_name = nvivo.codes["name"][nvivo.codes["name"].duplicated()]
    if len(dup_name):
        with pytest.raises(CodebookError, match="problem"):
            excerpts_from_qdpx(nvivo, {dup_name.iloc[0]: "T1"})
    cb = theme_codebook_from_dict({"themes": [{"id": "T1"}]})
    with pytest.raises(CodebookError) as e:
        excerpts_from_qdpx(nvivo, {"Resisting coercion": "T2"}, codebook=cb)
    assert e.value.report.issues[0].code == "M003"


def test_codebook_excerpts_serve_as_coded_excerpts(cb):
    ex = cb.excerpts()
    assert ex.columns[:4].tolist() == ["excerpt_id", "case_id", "theme_id", "text"]
    assert len(ex) == len(cb.exemplars)
    assert ex.loc[ex["excerpt_id"] == "Q1", "case_id"].iloc[0] == "EN-0012"


def test_old_codebook_names_still_work_for_one_release():
    import cimstats
    import cimstats.integrate as I

    with pytest.warns(DeprecationWarning, match="read_theme_codebook"):
        assert cimstats.read_codebook is I.read_theme_codebook
    with pytest.warns(DeprecationWarning, match="ThemeCodebook"):
        assert I.Codebook is I.ThemeCodebook
