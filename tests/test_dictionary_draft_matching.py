"""Drafting one dictionary from several differently coded files: cross-study matching, recodes, evidence."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cimstats.dictionary import check_dictionary, draft_dictionary, harmonise
from cimstats.dictionary.draft import REVIEW_FILE, write_draft
from cimstats.dictionary.matching import CONFIDENCE, confidence_of, read_translations
from cimstats.errors import DictionaryError
from cimstats.io import Survey, VariableMeta

pyreadstat = pytest.importorskip("pyreadstat")

N = 24
TRANSLATIONS = ("geslacht: sex\nmeisje: girl\njongen: boy\nleerling: pupil\nleeftijd: age\njaren: years\n"
                "percentage: percent\ngoed: correct\ntoets: test\nnummer: number\nvan de: of the\nop de: on the\n")


def _school_files(folder):
    """A Dutch SPSS file (0 = boy, 1 = girl; percent correct) and an English Stata file (1 = girl, 2 = boy;
    proportion correct with an undeclared -99 'not collected')."""
    rng = np.random.default_rng(7)
    nl = pd.DataFrame({"leerling": np.arange(1, N + 1, dtype=float), "geslacht": np.tile([0.0, 1.0], N // 2),
                       "pct_goed": rng.uniform(3.0, 98.0, N).round(1), "leeftijd": rng.integers(10, 14, N).astype(float),
                       "klas": np.tile([1.0, 2.0, 3.0], N // 3)})
    pyreadstat.write_sav(nl, str(folder / "nl.sav"),
                         column_labels={"leerling": "Nummer van de leerling", "geslacht": "Geslacht van de leerling",
                                        "pct_goed": "Percentage goed op de toets", "leeftijd": "Leeftijd in jaren",
                                        "klas": "Klas"},
                         variable_value_labels={"geslacht": {0: "jongen", 1: "meisje"},
                                                "klas": {1: "groep 6", 2: "groep 7", 3: "groep 8"}})
    en = pd.DataFrame({"pupil": np.arange(1, N + 1, dtype=float), "sex": np.tile([1.0, 2.0], N // 2),
                       "prop_correct": list(rng.uniform(0.04, 0.97, N - 2).round(3)) + [-99.0, -99.0],
                       "age": rng.integers(10, 15, N).astype(float), "ses": np.tile([1.0, 2.0, 3.0, 4.0], N // 4)})
    pyreadstat.write_dta(en, str(folder / "en.dta"),
                         column_labels={"pupil": "Pupil number", "sex": "Sex of the pupil",
                                        "prop_correct": "Proportion correct on the test", "age": "Age in years",
                                        "ses": "Socioeconomic status"},
                         variable_value_labels={"sex": {1: "girl", 2: "boy"}, "prop_correct": {-99: "not collected"},
                                                "ses": {1: "low", 2: "lower middle", 3: "upper middle", 4: "high"}})
    (folder / "t.yaml").write_text(TRANSLATIONS, encoding="utf-8")
    return nl, en


@pytest.fixture
def school(tmp_path):
    nl, en = _school_files(tmp_path)
    return tmp_path, nl, en


def test_two_studies_are_matched_to_one_target_per_concept_with_recodes_and_evidence(school):
    folder, nl, en = school
    t = draft_dictionary([folder / "nl.sav", folder / "en.dta"], translations=folder / "t.yaml")
    # one target per concept; names and codes from the study whose texts needed no translation
    assert t["variables"]["name"].tolist() == ["pupil", "sex", "prop_correct", "age", "klas", "ses"]
    m = t["mappings"].set_index(["target", "study"])
    assert m.loc[("sex", "nl"), ["rule", "source", "arguments", "status"]].tolist() == ["recode", "geslacht", "0=2; 1=1",
                                                                                        "complete"]
    assert m.loc[("sex", "en"), ["rule", "source"]].tolist() == ["direct", "sex"]
    assert m.loc[("prop_correct", "nl"), ["rule", "source", "arguments"]].tolist() == ["rescale", "pct_goed",
                                                                                      "from=0:100; to=0:1"]
    assert m.loc[("prop_correct", "en"), ["rule", "arguments"]].tolist() == ["recode", "-99=NA; else=copy"]
    assert m.loc[("age", "nl"), ["rule", "source"]].tolist() == ["direct", "leeftijd"]
    assert m.loc[("pupil", "nl"), "source"] == "leerling"
    # unmatched variables stay study-specific, with the reason
    assert m.loc[("klas", "en"), "rule"] == "impossible" and "below the threshold" in m.loc[("klas", "en"), "comment"]
    assert m.loc[("ses", "nl"), "rule"] == "impossible"
    assert "matched no variable" in m.loc[("klas", "nl"), "comment"]
    # every source variable is used exactly once (no variable matches two targets)
    used = t["mappings"][t["mappings"]["rule"] != "impossible"]
    assert sorted(used["study"] + ":" + used["source"]) == sorted(
        [f"nl:{c}" for c in nl.columns] + [f"en:{c}" for c in en.columns])
    # evidence and confidence, in the mapping comment and the review table
    rv = t.review.set_index(["target", "study"])
    sex = rv.loc[("sex", "nl")]
    assert sex["role"] == "matched" and sex["matched_to"] == "en:sex"
    assert "swapped codes" in sex["evidence"] and "via translation" in sex["evidence"]
    assert "value labels identical after translation" in sex["evidence"]
    assert sex["confidence"] == confidence_of(sex["score"]) == "high"
    assert f"confidence high ({sex['score']:.2f})" in m.loc[("sex", "nl"), "comment"]
    pct = rv.loc[("prop_correct", "nl")]
    assert "percentage" in pct["evidence"] and pct["confidence"] == confidence_of(pct["score"])
    assert CONFIDENCE["low"] <= pct["score"] < CONFIDENCE["high"]  # names differ: not a sure match
    assert rv.loc[("klas", "nl"), "role"] == "study-specific" and "'ses'" in rv.loc[("klas", "nl"), "evidence"]
    assert set(rv["role"]) == {"matched", "target", "study-specific"} and len(rv) == len(nl.columns) + len(en.columns)


def test_the_accepted_draft_checks_and_harmonises_to_the_expected_values(school):
    folder, nl, en = school
    t = draft_dictionary([folder / "nl.sav", folder / "en.dta"], translations=folder / "t.yaml")
    out = folder / "draft"
    paths = write_draft(t, out)
    assert (out / REVIEW_FILE) in paths and len(pd.read_csv(out / REVIEW_FILE)) == len(t.review)
    assert not [i for i in check_dictionary(out, data_dir=folder) if i.severity == "error"]
    res = harmonise(None, out, data_dir=folder)
    assert not res.report.has_errors, res.report.issues.summary()
    d = res.survey.data
    got_nl, got_en = d[d["study"] == "nl"], d[d["study"] == "en"]
    # sex: Dutch 0 = jongen (boy) -> 2, 1 = meisje (girl) -> 1; English codes kept
    assert got_nl["sex"].tolist() == nl["geslacht"].map({0.0: 2.0, 1.0: 1.0}).tolist()
    assert got_en["sex"].tolist() == en["sex"].tolist()
    # the percentage becomes a proportion; the undeclared -99 becomes missing (recoded), not a value
    np.testing.assert_allclose(got_nl["prop_correct"].to_numpy(), nl["pct_goed"].to_numpy() / 100, rtol=1e-12)
    keep = en["prop_correct"] != -99
    np.testing.assert_array_equal(got_en["prop_correct"].to_numpy()[keep.to_numpy()], en["prop_correct"][keep].to_numpy())
    assert got_en["prop_correct"].isna().sum() == (~keep).sum()
    row = res.report.table.set_index(["study", "target"]).loc[("en", "prop_correct")]
    assert row["n_recoded_missing"] == (~keep).sum() and row["n_out_of_range"] == 0
    assert got_nl["age"].tolist() == nl["leeftijd"].tolist() and got_en["ses"].tolist() == en["ses"].tolist()
    assert got_en["klas"].isna().all() and got_nl["ses"].isna().all()


def test_without_translations_the_dutch_names_do_not_match(school):
    folder, _, _ = school
    t = draft_dictionary([folder / "nl.sav", folder / "en.dta"])
    names = t["variables"]["name"].tolist()
    assert "geslacht" in names and "sex" in names
    m = t["mappings"].set_index(["target", "study"])
    assert m.loc[("geslacht", "en"), "rule"] == "impossible"


def test_min_confidence_high_leaves_the_weaker_match_study_specific(school):
    folder, _, _ = school
    t = draft_dictionary([folder / "nl.sav", folder / "en.dta"], translations=folder / "t.yaml", min_confidence="high")
    names = t["variables"]["name"].tolist()
    assert "pct_goed" in names and "prop_correct" in names and "sex" in names and "geslacht" not in names
    with pytest.raises(DictionaryError, match="min_confidence"):
        draft_dictionary([folder / "nl.sav"], min_confidence="sure")


def test_reversed_scale_and_three_studies():
    acc = {1: "very inaccurate", 2: "inaccurate", 3: "neutral", 4: "accurate", 5: "very accurate"}
    rev = {6 - k: v for k, v in acc.items()}
    nl_acc = {1: "zeer onjuist", 2: "onjuist", 3: "neutraal", 4: "juist", 5: "zeer juist"}
    a = Survey.from_raw(pd.DataFrame({"q1": [1.0, 2.0, 5.0]}), {"q1": VariableMeta("q1", "Describes me", acc)})
    b = Survey.from_raw(pd.DataFrame({"item_1": [1.0, 4.0, 5.0]}), {"item_1": VariableMeta("item_1", "Describes me", rev)})
    c = Survey.from_raw(pd.DataFrame({"v1": [3.0, 5.0]}), {"v1": VariableMeta("v1", "Beschrijft mij", nl_acc)})
    tr = {"zeer": "very", "onjuist": "inaccurate", "juist": "accurate", "neutraal": "neutral", "beschrijft mij": "describes me"}
    t = draft_dictionary([a, b, c], study_ids=["A", "B", "C"], translations=tr)
    assert t["variables"]["name"].tolist() == ["q1"]
    m = t["mappings"].set_index("study")
    assert m.loc["B", "arguments"] == "1=5; 2=4; 3=3; 4=2; 5=1" and "reversed scale" in m.loc["B", "comment"]
    assert (m.loc["C", "rule"], m.loc["C", "source"]) == ("direct", "v1")
    res = harmonise({"A": a, "B": b, "C": c}, __import__("cimstats").dictionary.Dictionary.from_frames(**t))
    assert res.survey.data["q1"].tolist() == [1.0, 2.0, 5.0, 5.0, 2.0, 1.0, 3.0, 5.0]


def test_one_file_drafts_as_before(school):
    folder, nl, _ = school
    t = draft_dictionary([folder / "nl.sav"])
    assert t["variables"]["name"].tolist() == list(nl.columns)
    assert set(t["mappings"]["rule"]) == {"direct"} and (t["mappings"]["source"] == t["mappings"]["target"]).all()
    assert (t["mappings"]["comment"] == "drafted from source metadata; review").all()
    assert set(t.review["role"]) == {"study-specific"} and set(t.review["evidence"]) == {"only one study drafted"}


def _run(capsys, *args):
    """The command line in this process (fast); returns (exit code, stdout, stderr)."""
    from cimstats.cli.main import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_hostile_inputs(school, capsys):
    folder, _, _ = school
    with pytest.raises(DictionaryError, match="twice"):
        draft_dictionary([folder / "nl.sav", folder / "nl.sav"])
    (folder / "nl.dta").write_bytes((folder / "en.dta").read_bytes())  # two files named alike get distinct ids
    assert draft_dictionary([folder / "nl.sav", folder / "nl.dta"])["studies"]["study"].tolist() == ["nl_sav", "nl_dta"]
    with pytest.raises(DictionaryError, match="study id 'x'"):
        draft_dictionary([folder / "nl.sav", folder / "en.dta"], study_ids=["x", "x"])
    (folder / "bad.yaml").write_bytes(b"geslacht: \xff\xfe sex\n")
    (folder / "nested.yaml").write_text("nl:\n  geslacht: sex\n", encoding="utf-8")
    (folder / "syntax.yaml").write_text("geslacht: [sex\n", encoding="utf-8")
    (folder / "empty.yaml").write_text("", encoding="utf-8")
    for name, what in [("bad.yaml", "UTF-8"), ("nested.yaml", "not to a text"), ("syntax.yaml", "not valid YAML"),
                       ("empty.yaml", "empty"), ("missing.yaml", "not a file")]:
        with pytest.raises(DictionaryError, match=what):
            read_translations(folder / name)
        code, _, err = _run(capsys, "dictionary", "draft", str(folder / "nl.sav"), str(folder / "en.dta"),
                            "--translations", str(folder / name), "--out", str(folder / "o"))
        assert code == 2 and "--translations" in err and what in err, err
    # YAML's yes/no words stay words
    (folder / "yn.yaml").write_text("nee: no\nja: yes\n", encoding="utf-8")
    assert read_translations(folder / "yn.yaml") == {"nee": "no", "ja": "yes"}
    for args, flag in [([str(folder / "nl.sav"), str(folder / "nl.sav")], "FILE"),
                       ([str(folder / "nl.sav"), str(folder / "en.dta"), "--min-confidence", "2"], "--min-confidence"),
                       ([str(folder / "nl.sav"), str(folder / "en.dta"), "--study-ids", "A"], "--study-ids"),
                       ([str(folder / "nl.sav"), str(folder / "en.dta"), "--study-ids", "A,A"], "--study-ids")]:
        code, _, err = _run(capsys, "dictionary", "draft", *args, "--out", str(folder / "o"))
        assert code == 2 and flag in err, err
    assert not (folder / "o").exists()
    code, out, err = _run(capsys, "dictionary", "draft", str(folder / "nl.sav"), str(folder / "en.dta"), "--translations",
                          str(folder / "t.yaml"), "--min-confidence", "medium", "--out", str(folder / "o"))
    assert code == 0 and "matched across studies" in out and REVIEW_FILE in out, err
    code, _, err = _run(capsys, "dictionary", "draft", str(folder / "nl.sav"), "--out", str(folder / "o"))
    assert code == 2 and "--overwrite" in err and "already has" in err


def test_every_dictionary_argument_has_a_help_line():
    import argparse

    from cimstats.cli.main import build_parser

    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    dictionary = top.choices["dictionary"]
    subs = next(a for a in dictionary._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) == {"check", "draft"}
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), (name, action.dest)


def test_the_how_to_example_runs(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    text = (ROOT / "docs" / "how-to" / "harmonise.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- draft-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "the draft example is marked <!-- draft-example --> in docs/how-to/harmonise.md"
    (tmp_path / "example.py").write_text(block.group(1), encoding="utf-8")
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "draft" / REVIEW_FILE).exists() and "sex" in done.stdout


def test_the_assignment_prefers_one_clear_match_to_two_weak_ones_and_uses_each_variable_once(monkeypatch):
    from cimstats.dictionary import matching as mt

    # scores as a table: t1-v1 is a clear match; t1-v2 and t2-v1 are weak, but their sum 1.2 exceeds 0.9 + 0.2,
    # so maximising the summed scores would pair the weak ones
    table = {("t1", "v1"): 0.9, ("t1", "v2"): 0.6, ("t2", "v1"): 0.6, ("t2", "v2"): 0.2}
    monkeypatch.setattr(mt, "score_pair", lambda a, b: mt.PairScore(table[(a.name, b.name)], 0, None, None, 0, ""))

    def feat(study, name):
        return mt.Features(study, name, "", None, name, name, (), {}, {})

    groups, _ = mt.match([("A", [feat("A", "t1"), feat("A", "t2")]), ("B", [feat("B", "v1"), feat("B", "v2")])],
                         threshold=mt.CONFIDENCE["low"])
    pairs = [{s: f.name for s, f in g.members.items()} for g in groups]
    assert pairs == [{"A": "t1", "B": "v1"}, {"A": "t2"}, {"B": "v2"}]


def test_two_targets_wanting_the_same_variable_get_it_once():
    a = Survey.from_raw(pd.DataFrame({"age": [30.0, 41.0], "age_group": [1.0, 2.0]}),
                        {"age": VariableMeta("age", "Age in years"), "age_group": VariableMeta("age_group", "Age group")})
    b = Survey.from_raw(pd.DataFrame({"age_years": [33.0, 52.0]}), {"age_years": VariableMeta("age_years", "Age in years")})
    t = draft_dictionary([a, b], study_ids=["A", "B"])
    used = t["mappings"][(t["mappings"]["study"] == "B") & (t["mappings"]["rule"] != "impossible")]
    assert used["source"].tolist() == ["age_years"] and used["target"].tolist() == ["age"]
