"""Joint displays a mixed-methods reviewer accepts: directions per pair, reviewed meta-inferences, measurement
checks kept apart, prominence and coder agreement, quote choice, case conflicts, honest labelling, the
results-frame schema and the command line."""

from __future__ import annotations

import re
from importlib import resources
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from cimstats.integrate import (
    CodebookError,
    DISPLAY_KINDS,
    FIT_DEFINITIONS,
    INVENTED_NOTE,
    coder_agreement,
    joint_display,
    read_excerpts,
    read_reviews,
    read_theme_codebook,
    results_schema,
    review_template,
    theme_codebook_from_dict,
    theme_prominence,
    validate_mechanism_table,
)

DEMO_CODEBOOK = resources.files("cimstats.datasets") / "data" / "themes.yaml"


@pytest.fixture
def results():
    return pd.DataFrame({
        "hypothesis_id": ["H1", "H2", "CE3"],
        "mechanism": ["collective_efficacy", "collective_efficacy", "collective_efficacy"],
        "statement": ["Trust raises self-management", "Timing matters", "CE scale is invariant"],
        "estimate": [0.2, 0.1, np.nan], "ci_lower": [0.1, -0.1, np.nan], "ci_upper": [0.3, 0.3, np.nan],
        "p_value": [0.001, 0.4, np.nan], "n": [100, 100, np.nan],
        "verdict": ["supported", "not supported", "supported"],
        "theme_ids": ["T1;T2", "T1", "T1"],
        "element": ["trust", "timing", ""],
        "template": ["lmm", "lmm", "invariance"], "expected": ["positive", "positive", "holds"],
    })


@pytest.fixture
def codebook():
    return theme_codebook_from_dict({
        "sources": [{"id": "meta14", "label": "Published metasynthesis", "citation": "A. Author 2014."}],
        "themes": [
            {"id": "T1", "name": "Doing it together", "direction": "supports", "source": "meta14",
             "quote": "developing a shared perception"},
            {"id": "T2", "name": "Burden of ties", "direction": "supports", "definition": "Ties cost effort."},
        ],
        "excerpts": [
            {"id": "A", "theme": "T1", "participant": "P1", "element": "timing", "text": "We started when ready."},
            {"id": "B", "theme": "T1", "participant": "P2", "element": "trust", "text": "I trust the group."},
            {"id": "C", "theme": "T1", "participant": "P3", "text": "We do it together."},
            {"id": "D", "theme": "T2", "participant": "P1", "text": "It is tiring to ask."},
        ],
    })


# ------------------------------------------------------------- directions per pair
def test_direction_is_set_per_hypothesis_theme_pair(results, codebook):
    # the same theme T1 is expected to contradict H1 but to support H2: one theme, two directions
    r = results.assign(theme_direction=["T1: contradicts", "", ""])
    jd = joint_display(r, kind="side_by_side", codebook=codebook)
    mi = jd.meta_inferences.set_index(["hypothesis_id", "theme_id"])
    assert mi.loc[("H1", "T1"), ["theme_direction", "direction_source", "meta_inference"]].tolist() == \
        ["contradicts", "hypothesis", "discordance"]          # supported x contradicts
    assert mi.loc[("H1", "T2"), ["theme_direction", "direction_source"]].tolist() == ["supports", "theme"]
    assert mi.loc[("H2", "T1"), ["theme_direction", "direction_source", "meta_inference"]].tolist() == \
        ["supports", "theme", "discordance"]                  # not supported x supports
    # hypothesis objects (the analysis plan's) carry theme_directions: read with getattr
    hyps = [SimpleNamespace(hypothesis_id="H2", theme_directions={"T1": "mixed"})]
    jd = joint_display(results, kind="convergence", codebook=codebook, hypotheses=hyps)
    mi = jd.meta_inferences.set_index(["hypothesis_id", "theme_id"])
    assert mi.loc[("H2", "T1"), ["theme_direction", "meta_inference"]].tolist() == ["mixed", "expansion"]
    # a result object whose plan lists hypothesis objects
    res_obj = SimpleNamespace(table=results, plan=SimpleNamespace(hypotheses=hyps))
    mi2 = joint_display(res_obj, kind="side_by_side", codebook=codebook).meta_inferences
    assert mi2.set_index(["hypothesis_id", "theme_id"]).loc[("H2", "T1"), "theme_direction"] == "mixed"
    with pytest.raises(CodebookError, match="theme_direction"):
        validate_mechanism_table(results.assign(theme_direction=["T1: sideways", "", ""]))


# ------------------------------------------------------------- measurement checks
def test_measurement_check_is_never_linked_to_a_theme(results, codebook):
    for kind in ("side_by_side", "statistics_by_theme", "convergence"):
        jd = joint_display(results, kind=kind, codebook=codebook)
        assert jd.options["measurement_checks"] == ["CE3"]
        assert any(n.startswith("CE3 is a measurement check") for n in jd.table.notes)
        if jd.meta_inferences is not None:
            assert "CE3" not in set(jd.meta_inferences["hypothesis_id"])
        assert "CE3" not in " ".join(jd.table.all_text()[2:-len(jd.table.notes) or None])
    with pytest.raises(CodebookError, match="measurement check"):
        joint_display(results.iloc[[2]], kind="side_by_side", codebook=codebook)


# ------------------------------------------------------------- reviews
def test_suggestions_need_review_until_a_named_person_decides(results, codebook, tmp_path):
    jd = joint_display(results, kind="side_by_side", codebook=codebook)
    assert set(jd.meta_inferences["status"]) == {"suggested, needs review"}
    assert all("needs review" in r.cells[-1].text for r in jd.table.body)
    todo = review_template(jd.meta_inferences)
    assert todo[["hypothesis_id", "theme_id"]].values.tolist() == [["H1", "T1"], ["H1", "T2"], ["H2", "T1"]]
    todo.loc[0, ["decision", "reviewer", "date"]] = ["confirm", "A. Reviewer", "2026-11-30"]
    todo.loc[2, ["decision", "reviewer", "date", "reason"]] = ["expansion", "B. Reviewer", "2026-12-01",
                                                              "works only for some"]
    path = tmp_path / "reviews.csv"
    todo.iloc[[0, 2]].to_csv(path, index=False)
    jd = joint_display(results, kind="side_by_side", codebook=codebook, reviews=path)
    mi = jd.meta_inferences.set_index(["hypothesis_id", "theme_id"])
    assert mi.loc[("H1", "T1"), ["status", "meta_inference", "reviewer", "review_date"]].tolist() == \
        ["confirmed", "confirmation", "A. Reviewer", "2026-11-30"]
    assert mi.loc[("H2", "T1"), ["status", "meta_inference", "suggested", "review_reason"]].tolist() == \
        ["overridden", "expansion", "discordance", "works only for some"]
    assert mi.loc[("H1", "T2"), "status"] == "suggested, needs review"
    cells = [r.cells[-1].text for r in jd.table.body]
    assert "Confirmation (confirmed by A. Reviewer, 2026-11-30)" in cells
    assert "Expansion (B. Reviewer, 2026-12-01; rule suggested discordance)" in cells
    # the same decisions from YAML
    y = tmp_path / "reviews.yaml"
    y.write_text(yaml.safe_dump({"reviews": todo.iloc[[0, 2]].drop(columns="suggested").to_dict("records")}))
    assert joint_display(results, kind="convergence", codebook=codebook, reviews=y).meta_inferences[
        "status"].tolist() == mi["status"].tolist()


def test_review_file_problems_are_named(results, codebook):
    base = {"hypothesis_id": "H1", "theme_id": "T1", "decision": "expansion", "reviewer": "A. Reviewer",
            "date": "2026-11-30", "reason": "why"}
    cases = [({"reviewer": ""}, "V001", "no reviewer"), ({"date": "30/11/2026"}, "V004", "YYYY-MM-DD"),
             ({"reason": ""}, "V003", "without a reason"), ({"decision": "maybe"}, "V002", "decision 'maybe'"),
             ({"date": "2026-02-30"}, "V004", "not a calendar date")]
    for change, code, words in cases:
        with pytest.raises(CodebookError, match=words) as e:
            read_reviews([dict(base, **change)])
        assert e.value.report.issues[0].code == code
    with pytest.raises(CodebookError, match="repeats the pair"):
        read_reviews([base, base])
    with pytest.raises(CodebookError, match="not a pair of this display"):
        joint_display(results, kind="side_by_side", codebook=codebook, reviews=[dict(base, theme_id="T9")])


# ------------------------------------------------------------- prominence and coder agreement
def test_prominence_counts_distinct_participants():
    ex = read_excerpts(pd.DataFrame({"case_id": ["P1", "P1", "P2", "P3", None],
                                     "theme_id": ["T1", "T1", "T1", "T2", "T1"], "text": list("abcde")}))
    p = theme_prominence(ex).set_index("theme_id")
    # computed independently: distinct non-missing participants per theme
    expected = ex.dropna(subset=["case_id"]).groupby("theme_id")["case_id"].nunique()
    assert p["n_participants"].to_dict() == expected.to_dict()
    assert p.loc["T1", "n_excerpts"] == 4 and p.loc["T1", "n_interviewed"] == 3


def test_coder_agreement_matches_statsmodels():
    from statsmodels.stats.inter_rater import cohens_kappa

    rng = np.random.default_rng(11)
    rows = []
    people = [f"P{k}" for k in range(30)]
    for t in ("T1", "T2"):
        a = rng.random(30) < 0.5
        b = np.where(rng.random(30) < 0.8, a, ~a)
        for who, coded in (("ann", a), ("bo", b)):
            rows += [{"case_id": p, "theme_id": t, "text": f"{t} {p} {who}", "coder": who}
                     for p, c in zip(people, coded) if c]
    ex = read_excerpts(pd.DataFrame(rows))
    got = coder_agreement(ex).set_index("theme_id")
    universe = sorted(ex["case_id"].unique())
    for t in ("T1", "T2"):
        s1 = set(ex.loc[(ex.theme_id == t) & (ex.coder == "ann"), "case_id"])
        s2 = set(ex.loc[(ex.theme_id == t) & (ex.coder == "bo"), "case_id"])
        x = np.array([[p in s1 for p in universe], [p in s2 for p in universe]])
        table = pd.crosstab(x[0], x[1]).reindex(index=[True, False], columns=[True, False], fill_value=0).to_numpy()
        ref = cohens_kappa(table)
        assert got.loc[t, "kappa"] == pytest.approx(ref.kappa, abs=1e-12)
        assert got.loc[t, "percent_agreement"] == pytest.approx(100 * np.trace(table) / table.sum(), abs=1e-12)
    assert coder_agreement(ex.assign(coder="ann")) is None  # one coder: nothing to compare
    with pytest.raises(CodebookError, match="pass `coders=`"):
        coder_agreement(pd.concat([ex, ex.head(1).assign(coder="cy")]))


def test_convergence_shows_prominence_and_agreement(results, codebook):
    ex = read_excerpts(pd.DataFrame({
        "case_id": ["P1", "P2", "P3", "P1", "P2", "P1"], "theme_id": ["T1", "T1", "T1", "T1", "T2", "T2"],
        "text": list("abcdef"), "coder": ["ann", "ann", "ann", "bo", "bo", "ann"]}))
    jd = joint_display(results, kind="convergence", codebook=codebook, excerpts=ex)
    s = jd.spec.set_index("theme_id")
    assert s.loc["T1", "n_participants"] == 3 and s.loc["T1", "n_interviewed"] == 3
    row = [r for r in jd.table.body if r.cells[0].text == "Doing it together"][0]
    assert row.cells[2].text == "3 of 3 participants"
    a = jd.agreement.set_index("theme_id")
    # T1: ann P1 P2 P3, bo P1 -> 1 of 3 units agree
    assert a.loc["T1", "percent_agreement"] == pytest.approx(100 / 3)
    assert row.cells[3].text.startswith("33")


# ------------------------------------------------------------- quotes
def test_quotes_follow_the_element_and_are_not_repeated(results, codebook):
    jd = joint_display(results, kind="side_by_side", codebook=codebook)
    q = jd.spec.set_index(["hypothesis_id", "theme_id"])["quotes"]
    assert "I trust the group." in q[("H1", "T1")][0]          # H1 speaks to trust
    assert "We started when ready." in q[("H2", "T1")][0]      # H2 speaks to timing
    shown = [x for qs in jd.spec["quotes"] for x in qs]
    assert len(shown) == len(set(shown))
    # more rows than quotes: later rows get no quote rather than a repeat
    many = pd.concat([results.iloc[[0]].assign(hypothesis_id=f"H{k}", element="") for k in range(10, 16)])
    jd = joint_display(many, kind="side_by_side", codebook=codebook)
    shown = [x for qs in jd.spec["quotes"] for x in qs]
    assert len(shown) == len(set(shown)) and len(shown) == 4


def test_case_oriented_counts_are_integers_and_conflicts_flagged(codebook):
    ex = codebook.excerpts()
    cases = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "n_ties": [3.0, np.nan, 7.0], "ce": [1.5, 4.5, 4.0]})
    jd = joint_display(kind="case_oriented", codebook=codebook, excerpts=ex, cases=cases,
                       profile={"n_ties": "Ties", "ce": "Collective efficacy"}, expect={"T1": {"ce": "high"}})
    rows = {r.cells[0].text: r.cells for r in jd.table.body}
    assert rows["P1"][1].text == "3" and rows["P1"][1].value == 3 and str(jd.spec["n_ties"].dtype) == "Int64"
    # P1's quote is coded T1 (suggests high CE) but P1's CE 1.5 is below the median of the cases shown (4.0)
    assert rows["P1"][-1].text.startswith("Conflict") and "below the median" in rows["P1"][-1].text
    assert rows["P2"][-1].text == "Consistent" and rows["P3"][-1].text == "Consistent"
    assert jd.options["n_conflicts"] == 1
    with pytest.raises(CodebookError, match="'high' or 'low'"):
        joint_display(kind="case_oriented", codebook=codebook, excerpts=ex, cases=cases, expect={"T1": {"ce": "up"}})


# ------------------------------------------------------------- honest labelling
def _demo_inputs():
    from cimstats.datasets import coded_excerpts, demo_study

    cb = read_theme_codebook(DEMO_CODEBOOK)
    ex = read_excerpts(coded_excerpts())
    p = demo_study(seed=1).patients
    p = p.loc[(p["wave"] == 0) & p["patient_id"].isin(ex["case_id"])].copy()
    res = pd.DataFrame({"hypothesis_id": ["CE1", "NAV1"], "mechanism": ["collective_efficacy", "network_navigation"],
                        "estimate": [0.2, 0.3], "ci_lower": [0.1, 0.1], "ci_upper": [0.3, 0.5],
                        "p_value": [0.01, 0.02], "verdict": ["supported", "supported"],
                        "theme_ids": ["T1;T3", "T2"], "element": ["trust", ""]})
    return cb, ex, p, res


def test_every_export_of_an_invented_display_says_so(tmp_path):
    import docx
    import openpyxl

    cb, ex, p, res = _demo_inputs()
    assert cb.invented_excerpts and cb.excerpt_note
    displays = [joint_display(res, kind="side_by_side", codebook=cb, excerpts=ex),
                joint_display(res, kind="statistics_by_theme", codebook=cb),
                joint_display(kind="themes_by_group", codebook=cb, excerpts=ex, cases=p, group_by="country"),
                joint_display(res, kind="convergence", codebook=cb, excerpts=ex),
                joint_display(kind="case_oriented", codebook=cb, excerpts=ex, cases=p, profile=["age"])]
    assert [d.kind for d in displays] == list(DISPLAY_KINDS)
    note = cb.excerpt_note
    key = "not quotations of real participants"
    assert key in note
    for jd in displays:
        assert jd.excerpt_note == note and jd.table.notes[0] == note
        assert (jd.spec["excerpt_note"] == note).all()
        for ext in ("docx", "xlsx", "html", "tex", "md", "txt", "csv"):
            out = tmp_path / f"{jd.kind}.{ext}"
            jd.render(out)
            if ext == "docx":
                text = "\n".join(par.text for par in docx.Document(str(out)).paragraphs)
            elif ext == "xlsx":
                ws = openpyxl.load_workbook(out).active
                text = "\n".join(str(c.value) for row in ws.iter_rows() for c in row if c.value is not None)
            else:
                text = re.sub(r"\s+", " ", out.read_text(encoding="utf-8").replace("\\", ""))
            assert key in text, (jd.kind, ext)
    # real excerpts carry no such note
    real = theme_codebook_from_dict({"themes": [{"id": "T1", "name": "x", "direction": "supports"}]})
    jd = joint_display(res, kind="side_by_side", codebook=real)
    assert jd.excerpt_note == "" and INVENTED_NOTE not in jd.table.notes
    # an excerpts table that flags invented rows is enough on its own
    flagged = read_excerpts(pd.DataFrame({"case_id": ["A"], "theme_id": ["T1"], "text": ["x"], "invented": [True]}))
    assert joint_display(res, kind="side_by_side", codebook=real, excerpts=flagged).excerpt_note == INVENTED_NOTE


def test_finding_column_says_whose_finding_it_is():
    cb, ex, _, res = _demo_inputs()
    jd = joint_display(res, kind="side_by_side", codebook=cb, excerpts=ex)
    g = jd.table.grid()
    assert g[1][4].text == "Finding (whose) and exemplar quote"
    first = g[2][4].text.split("\n")
    assert first[0].startswith("Vassilev et al. 2014 metasynthesis: \u201c")
    assert first[1].startswith("Invented excerpt: \u201c")
    assert set(jd.spec["finding_by"]) == {"Vassilev et al. 2014 metasynthesis"}


def test_demo_codebook_cites_both_texts_and_marks_its_own_additions():
    from cimstats.datasets import coded_excerpts, theme_codebook

    book = theme_codebook()
    sources = {s["id"]: s for s in book["sources"]}
    assert set(sources) == {"vassilev2014", "vassilev2019"}
    assert sources["vassilev2014"]["doi"] == "10.1186/1471-2458-14-719"
    assert {t["source"] for t in book["themes"]} == {"vassilev2014"}
    assert {m["source"] for m in book["mechanisms"]} == {"vassilev2014"}
    assert {e["source"] for e in book["collective_efficacy_elements"]} == {"vassilev2019"}
    assert [e["quote"] for e in book["collective_efficacy_elements"]] == [
        "Timing of engagement with others", "building trust in the group",
        "legitimising ongoing engagement with the group"]
    for item in book["themes"]:
        assert {"description", "direction", "codes"} <= set(item["cimstats_adds"])
    for item in book["mechanisms"]:
        assert "quantitative_expectation" in item["cimstats_adds"]
    for item in book["collective_efficacy_elements"]:
        assert "description" in item["cimstats_adds"]
    # the excerpts were written in English: no translation tags
    assert not coded_excerpts()["excerpt"].str.contains("translated", case=False).any()


def test_tutorial_does_not_imply_real_interviews():
    from conftest import ROOT

    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    section = text[text.index("## 7."):text.index("## The same analysis")]
    assert "invented" in section and "coded interviews" not in section
    assert "no interviews" in section.lower()


# ------------------------------------------------------------- the results-frame schema
def test_results_schema_and_one_sentence_errors(results):
    schema = results_schema()
    assert schema.loc[schema["required"], "column"].tolist() == ["hypothesis_id", "mechanism", "verdict"]
    assert {"element", "theme_direction", "template", "expected"} <= set(schema["column"])
    bad = [(results.assign(p_value=[0.1, 1.5, None]), "Column 'p_value' row 2 holds 1.5, outside 0 to 1."),
           (results.assign(n=[10, 2.5, None]), "Column 'n' row 2 holds 2.5, which is not a whole number >= 0."),
           (results.assign(estimate=[0.1, "big", None]), "Column 'estimate' row 2 holds 'big', which is not a number."),
           (results.assign(hypothesis_id=["H1", "H1", "CE3"]), "Column 'hypothesis_id' repeats 'H1' (row 2)."),
           (results.assign(verdict=["yes", "supported", "supported"]), "Column 'verdict' row 1 holds 'yes'"),
           (results.assign(mechanism=["", "x", "x"]), "Column 'mechanism' is empty in row 1.")]
    for frame, message in bad:
        with pytest.raises(CodebookError) as e:
            validate_mechanism_table(frame)
        assert e.value.report.errors[0].message.startswith(message)
    with pytest.raises(CodebookError, match="lacks column"):
        validate_mechanism_table(results.drop(columns="mechanism"))


def test_fit_definitions_cite_their_sources():
    assert FIT_DEFINITIONS["expansion"][0] == "Fetters, Curry and Creswell 2013"
    assert "diverge" in FIT_DEFINITIONS["expansion"][1]
    assert FIT_DEFINITIONS["silence"][0].startswith("Farmer et al. 2006")


# ------------------------------------------------------------- command line
def test_cli_options_reviews_and_flag_errors(cli, results, tmp_path):
    import docx

    results.to_csv(tmp_path / "res.csv", index=False)
    (tmp_path / "themes.yaml").write_text(
        "themes:\n  - id: T1\n    name: Doing it together\n    direction: supports\n"
        "    exemplars:\n      - {text: 'Maria and I walk every day with the group.', participant: P1}\n"
        "  - id: T2\n    name: Burden of ties\n    direction: supports\n", encoding="utf-8")
    pd.DataFrame([{"hypothesis_id": "H1", "theme_id": "T1", "decision": "confirm", "reviewer": "A. Reviewer",
                   "date": "2026-11-30", "reason": ""}]).to_csv(tmp_path / "rev.csv", index=False)
    r = cli("joint", "--kind", "side_by_side", "--mechanisms", str(tmp_path / "res.csv"), "--codebook",
            str(tmp_path / "themes.yaml"), "--reviews", str(tmp_path / "rev.csv"), "--title", "My display",
            "--names", "Maria", "--max-quote-chars", "20", "--out", str(tmp_path / "s.docx"),
            "--out", str(tmp_path / "s.csv"))
    assert r.returncode == 0, r.stderr
    assert "need review" in r.stdout
    d = docx.Document(str(tmp_path / "s.docx"))
    body = "\n".join(c.text for row in d.tables[0].rows for c in row.cells)
    assert "Maria" not in body and "[name]" in body and "\u2026" in body
    assert "Confirmation (confirmed by A. Reviewer, 2026-11-30)" in body
    assert any("My display" in par.text for par in d.paragraphs)
    assert "My display" not in (tmp_path / "s.csv").read_text() and "needs review" in (tmp_path / "s.csv").read_text()
    helptext = cli("joint", "--help").stdout
    for flag in ("--kind", "--mechanisms", "--codebook", "--excerpts", "--cases", "--id", "--group-by", "--profile",
                 "--reviews", "--names", "--max-quote-chars", "--threshold", "--style", "--title", "--out"):
        line = re.search(rf"^\s+{flag}\b.*(?:\n\s{{10,}}.*)*", helptext, re.M)
        assert line and len(line.group(0).split(None, 2)) >= 3, flag
    for args, words in [(["--kind", "convergence"], "--mechanisms"),
                        (["--kind", "case_oriented"], "--excerpts and --cases"),
                        (["--kind", "side_by_side", "--mechanisms", str(tmp_path / "none.csv")], "--mechanisms"),
                        (["--kind", "side_by_side", "--mechanisms", str(tmp_path / "res.csv"), "--max-quote-chars",
                          "3"], "--max-quote-chars"),
                        (["--kind", "side_by_side", "--mechanisms", str(tmp_path / "res.csv"), "--reviews",
                          str(tmp_path / "res.csv")], "--reviews")]:
        bad = cli("joint", *args, "--out", str(tmp_path / "x.md"))
        assert bad.returncode == 2 and words in bad.stderr, (args, bad.stderr)


def test_quotes_prefer_the_hypothesis_mechanism_when_no_element():
    cb = theme_codebook_from_dict({
        "mechanisms": [{"id": "navigation", "name": "Network navigation"}, {"id": "negotiation", "name": "Negotiation"}],
        "themes": [{"id": "T1", "name": "Ties", "direction": "supports"}],
        "excerpts": [{"theme": "T1", "participant": "P1", "mechanism": "negotiation", "text": "We agreed who does what."},
                     {"theme": "T1", "participant": "P2", "mechanism": "navigation", "text": "She knew the nurse."}]})
    res = pd.DataFrame({"hypothesis_id": ["H1"], "mechanism": ["Network navigation"], "verdict": ["supported"],
                        "theme_ids": ["T1"]})
    jd = joint_display(res, kind="side_by_side", codebook=cb)
    assert "She knew the nurse." in jd.spec.loc[0, "quotes"][0]


def test_codebook_sources_and_invented_flag_are_checked():
    with pytest.raises(CodebookError, match="cites source 'nope'"):
        theme_codebook_from_dict({"themes": [{"id": "T1", "name": "x", "source": "nope"}]})
    with pytest.raises(CodebookError, match="invented_excerpts"):
        theme_codebook_from_dict({"invented_excerpts": "maybe", "themes": [{"id": "T1", "name": "x"}]})
    cb = theme_codebook_from_dict({"invented_excerpts": True, "themes": [{"id": "T1", "name": "x"}]})
    assert cb.excerpt_note == INVENTED_NOTE and cb.source_label(None) == "This study"
