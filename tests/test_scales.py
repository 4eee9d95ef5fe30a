"""Scale scoring: every shipped instrument's rules on small hand-checkable data,
instrument-file validation, bad responses, and property tests of the missing rules."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cimstats
from cimstats.errors import ScaleError
from cimstats.measures.scales import list_instruments, load_instrument, score_scale

NA = np.nan


def frame(instrument, rows):
    ins = load_instrument(instrument)
    return pd.DataFrame(rows, columns=list(ins.item_ids), dtype=float)


def test_shipped_instruments_load_and_cite_sources():
    tab = list_instruments()
    assert {"semcd6", "sampson_ce", "mos_sss", "lsns6", "essi", "isel12", "sdsca", "heiq", "eq5d5l"} <= set(tab["id"])
    for iid in tab["id"]:
        ins = load_instrument(iid)
        assert ins.references and ins.sources and ins.licence
        assert all(s.rule for s in ins.scores)
        assert len(ins.to_frame()) >= len(ins.items) or ins.id == "sdsca"


def test_public_names():
    assert cimstats.score_scale is score_scale
    assert cimstats.scales.load_instrument("lsns6").id == "lsns6"


# ---------------------------------------------------------------- SEMCD-6
def test_semcd6_mean_and_more_than_two_missing():
    d = frame("semcd6", [[8, 6, 7, 9, 5, 7], [2, NA, NA, NA, 3, 4], [1, 2, 3, NA, NA, 5], [10] * 6])
    r = score_scale(d, "semcd6")
    w = r.wide()
    assert w["semcd"].iloc[0] == pytest.approx((8 + 6 + 7 + 9 + 5 + 7) / 6)
    assert np.isnan(w["semcd"].iloc[1])  # three missing: not scored
    assert w["semcd"].iloc[2] == pytest.approx((1 + 2 + 3 + 5) / 4)  # two missing: mean of four
    assert w["semcd_status"].tolist() == ["complete", "missing", "prorated", "complete"]
    assert w["semcd_n_valid"].tolist() == [6, 3, 4, 6]
    assert set(r.detail["rule"]) == {load_instrument("semcd6").score("semcd").rule}
    g = r.glance().iloc[0]
    assert (g["n_complete"], g["n_prorated"], g["n_missing"]) == (2, 1, 1)


# ---------------------------------------------------------------- Sampson CE
def test_sampson_reverse_keys_and_combined_score():
    # cohesion items 4 and 5 are reversed (6 - x) on the 1-5 scale
    row = [5, 4, 4, 1, 2, 3, 3, 4, 5, 2]
    d = frame("sampson_ce", [row, [5, 4, NA, NA, NA, 3, 3, 4, 5, 2]])
    w = score_scale(d, "sampson_ce").wide()
    coh = (5 + 4 + 4 + (6 - 1) + (6 - 2)) / 5
    isc = (3 + 3 + 4 + 5 + 2) / 5
    assert w["social_cohesion_trust"].iloc[0] == pytest.approx(coh)
    assert w["informal_social_control"].iloc[0] == pytest.approx(isc)
    assert w["collective_efficacy"].iloc[0] == pytest.approx((coh + isc) / 2)
    # only 2 of 5 cohesion items: cohesion missing, so the combined score is missing too
    assert np.isnan(w["social_cohesion_trust"].iloc[1]) and np.isnan(w["collective_efficacy"].iloc[1])
    assert w["informal_social_control_status"].iloc[1] == "complete"


# ---------------------------------------------------------------- MOS-SSS
def test_mos_sss_subscales_overall_and_0_100():
    ins = load_instrument("mos_sss")
    vals = {f"mos_{k}": (k % 5) + 1 for k in range(2, 21)}
    d = pd.DataFrame([vals, {**vals, "mos_2": NA, "mos_5": NA, "mos_12": NA}], dtype=float)
    w = score_scale(d, ins).wide()

    def t(items):
        m = np.mean([vals[i] for i in items])
        return 100 * (m - 1) / 4

    for sid in ("emotional_informational", "tangible", "affectionate", "positive_interaction", "overall_support"):
        assert w[sid].iloc[0] == pytest.approx(t(ins.score(sid).items))
    assert len(ins.score("overall_support").items) == 19
    assert "mos_14" in ins.score("overall_support").items
    assert not any("mos_14" in ins.score(s).items for s in ("emotional_informational", "tangible",
                                                            "affectionate", "positive_interaction"))
    # tangible has 1 of 4 answered (< half): missing; overall still scored from 16 of 19
    assert np.isnan(w["tangible"].iloc[1])
    rest = [i for i in ins.score("overall_support").items if i not in ("mos_2", "mos_5", "mos_12")]
    assert w["overall_support"].iloc[1] == pytest.approx(t(rest))
    assert w["overall_support_status"].iloc[1] == "prorated"
    assert w["tangible"].min() >= 0 or np.isnan(w["tangible"].iloc[1])


def test_mos_extremes_are_0_and_100():
    ins = load_instrument("mos_sss")
    d = pd.DataFrame([{i: 1.0 for i in ins.item_ids}, {i: 5.0 for i in ins.item_ids}])
    s = score_scale(d, ins).scores
    assert (s.iloc[0] == 0).all() and (s.iloc[1] == 100).all()


# ---------------------------------------------------------------- LSNS-6
def test_lsns6_sums_and_no_prorating():
    d = frame("lsns6", [[1, 2, 3, 4, 5, 0], [1, 2, NA, 4, 5, 0]])
    w = score_scale(d, "lsns6").wide()
    assert w["lsns_total"].tolist()[0] == 15 and w["lsns_family"].iloc[0] == 6 and w["lsns_friends"].iloc[0] == 9
    assert np.isnan(w["lsns_total"].iloc[1]) and np.isnan(w["lsns_family"].iloc[1])
    assert w["lsns_friends"].iloc[1] == 9
    assert w["lsns_total_status"].iloc[1] == "missing"


# ---------------------------------------------------------------- ESSI
def test_essi_item7_coded_2_or_4_and_range_8_34():
    lo = frame("essi", [[1, 1, 1, 1, 1, 1, 2], [5, 5, 5, 5, 5, 5, 4]])
    assert score_scale(lo, "essi").scores["essi_total"].tolist() == [8, 34]
    bad = frame("essi", [[1, 1, 1, 1, 1, 1, 3]])  # 3 is not a valid code for item 7
    with pytest.raises(ScaleError, match="essi_7"):
        score_scale(bad, "essi")


# ---------------------------------------------------------------- ISEL-12
def test_isel12_reverse_items_and_subscales():
    ins = load_instrument("isel12")
    assert set(ins.reverse) == {"isel_1", "isel_2", "isel_7", "isel_8", "isel_11", "isel_12"}
    raw = [3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0]
    d = frame("isel12", [raw])
    keyed = {f"isel_{k + 1}": (3 - v if f"isel_{k + 1}" in ins.reverse else v) for k, v in enumerate(raw)}
    s = score_scale(d, ins).scores.iloc[0]
    assert s["isel_total"] == sum(keyed.values())
    assert s["isel_appraisal"] == sum(keyed[f"isel_{k}"] for k in (2, 4, 6, 11))
    assert s["isel_belonging"] == sum(keyed[f"isel_{k}"] for k in (1, 5, 7, 9))
    assert s["isel_tangible"] == sum(keyed[f"isel_{k}"] for k in (3, 8, 10, 12))
    assert s["isel_appraisal"] + s["isel_belonging"] + s["isel_tangible"] == s["isel_total"]


# ---------------------------------------------------------------- SDSCA
def test_sdsca_item4_reversed_and_two_item_means():
    d = frame("sdsca", [[7, 5, 4, 6, 3, 2, 7, 7, 0, 1, 1]])
    s = score_scale(d, "sdsca").scores.iloc[0]
    assert s["general_diet"] == (7 + 5) / 2
    assert s["specific_diet"] == (4 + (7 - 6)) / 2
    assert s["exercise"] == (3 + 2) / 2
    assert s["blood_glucose_testing"] == 7
    assert s["foot_care"] == 0.5
    assert s["smoker"] == 1
    d2 = frame("sdsca", [[7, NA, 4, 6, 3, 2, 7, 7, 0, 1, 0]])
    assert np.isnan(score_scale(d2, "sdsca").scores["general_diet"].iloc[0])


# ---------------------------------------------------------------- heiQ
def test_heiq_structure_and_means():
    ins = load_instrument("heiq")
    counts = {s.id: len(s.items) for s in ins.scores}
    assert counts == {"health_directed_activity": 4, "positive_active_engagement": 5, "emotional_distress": 6,
                      "self_monitoring_insight": 6, "constructive_attitudes": 5,
                      "skill_technique_acquisition": 4, "social_integration_support": 5,
                      "health_service_navigation": 5}
    assert len(ins.items) == 40 and "not reproduced" in ins.licence
    row = {i: float(1 + (k % 4)) for k, i in enumerate(ins.item_ids)}
    row2 = dict(row, heiq_hda_1=NA)
    row3 = dict(row, heiq_hda_1=NA, heiq_hda_2=NA)
    s = score_scale(pd.DataFrame([row, row2, row3]), ins).wide()
    hda = [row[f"heiq_hda_{k}"] for k in range(1, 5)]
    assert s["health_directed_activity"].iloc[0] == pytest.approx(np.mean(hda))
    assert s["health_directed_activity"].iloc[1] == pytest.approx(np.mean(hda[1:]))
    assert s["health_directed_activity_status"].tolist() == ["complete", "prorated", "missing"]


# ---------------------------------------------------------------- EQ-5D-5L
VS = {"intercept": 1.0, "constant": 0.05,
      "decrements": {d: {2: 0.04 * (j + 1), 3: 0.08 * (j + 1), 4: 0.15 * (j + 1), 5: 0.2 * (j + 1)}
                     for j, d in enumerate(["mo", "sc", "ua", "pd", "ad"])}}


def test_eq5d_index_additive_value_set_and_missing_dimension():
    d = frame("eq5d5l", [[1, 1, 1, 1, 1], [2, 1, 3, 1, 5], [2, NA, 3, 1, 5]])
    r = score_scale(d, "eq5d5l", value_set=VS)
    w = r.wide()
    assert w["eq5d_profile"].tolist()[:2] == ["11111", "21315"]
    assert w["eq5d_profile"].isna().iloc[2]
    assert w["eq5d_index"].iloc[0] == 1.0
    dec = VS["decrements"]
    assert w["eq5d_index"].iloc[1] == pytest.approx(1 - 0.05 - dec["mo"][2] - dec["ua"][3] - dec["ad"][5])
    assert np.isnan(w["eq5d_index"].iloc[2]) and w["eq5d_index_status"].iloc[2] == "missing"
    assert w["eq5d_lss"].iloc[1] == 12


def test_eq5d_full_table_value_set_and_without_value_set():
    d = frame("eq5d5l", [[1, 1, 1, 1, 1], [2, 1, 3, 1, 5]])
    table = pd.DataFrame({"state": ["11111", "21315"], "value": [1.0, 0.5]})
    assert score_scale(d, "eq5d5l", value_set=table).scores["eq5d_index"].tolist() == [1.0, 0.5]
    with pytest.raises(ScaleError, match="21315"):
        score_scale(d, "eq5d5l", value_set={"11111": 1.0})
    r = score_scale(d, "eq5d5l")
    assert "eq5d_index" not in r.scores and [i.code for i in r.report] == ["S204"]


# ---------------------------------------------------------------- data problems
def test_out_of_range_error_or_report_row_never_silent():
    d = frame("semcd6", [[11, 6, 7, 9, 5, 7], [0, 6, 7, 9, 5, 7], [1.5, 2, 3, 4, 5, 6]])
    with pytest.raises(ScaleError, match="semcd_1") as exc:
        score_scale(d, "semcd6")
    assert exc.value.report.errors[0].code == "S201"
    r = score_scale(d, "semcd6", out_of_range="report")
    assert [i.code for i in r.report] == ["S201"]
    assert "3 response(s)" in r.report.issues[0].message
    assert r.wide()["semcd_n_valid"].tolist() == [5, 5, 5]
    assert r.wide()["semcd_status"].tolist() == ["prorated"] * 3


def test_items_mapping_and_missing_column_messages():
    d = frame("lsns6", [[1, 2, 3, 4, 5, 0]]).rename(columns={"lsns_1": "Q1"})
    with pytest.raises(ScaleError, match="items=") as exc:
        score_scale(d, "lsns6")
    assert "lsns_1" in str(exc.value)
    assert score_scale(d, "lsns6", items={"lsns_1": "Q1"}).scores["lsns_total"].iloc[0] == 15
    with pytest.raises(ScaleError, match="not an item"):
        score_scale(d, "lsns6", items={"q99": "Q1"})


def test_non_numeric_responses_rejected():
    d = frame("lsns6", [[1, 2, 3, 4, 5, 0]]).astype(object)
    d.loc[0, "lsns_3"] = "three"
    with pytest.raises(ScaleError, match="non-numeric"):
        score_scale(d, "lsns6")


def test_min_valid_override_is_recorded():
    d = frame("lsns6", [[1, 2, NA, 4, 5, 0]])
    r = score_scale(d, "lsns6", min_valid={"lsns_family": 2})
    # sums prorate (n_items x mean of valid items) once fewer items are allowed
    assert r.scores["lsns_family"].iloc[0] == pytest.approx(3 * (1 + 2) / 2)
    assert r.detail.query("score == 'lsns_family'")["status"].iloc[0] == "prorated"
    r2 = score_scale(d, "lsns6", min_valid={"lsns_total": 5})
    assert r2.scores["lsns_total"].iloc[0] == pytest.approx(6 * (1 + 2 + 4 + 5 + 0) / 5)
    assert "overridden to 5" in r2.detail.query("score == 'lsns_total'")["rule"].iloc[0]
    with pytest.raises(ScaleError, match="min_valid"):
        score_scale(d, "lsns6", min_valid={"lsns_total": 9})


def test_survey_declared_missing_codes_are_missing_not_out_of_range():
    from cimstats.io import Survey, VariableMeta

    raw = frame("semcd6", [[8, 6, 7, 9, 5, 99], [2, 99, 99, 99, 3, 4]])
    meta = {c: VariableMeta(c, missing_codes=(99,)) for c in raw.columns}
    survey = Survey.from_raw(raw, meta=meta)
    w = score_scale(survey, "semcd6").wide()
    assert w["semcd"].iloc[0] == pytest.approx((8 + 6 + 7 + 9 + 5) / 5)
    assert w["semcd_status"].tolist() == ["prorated", "missing"]
    with pytest.raises(ScaleError, match="99"):  # the raw codes would be out of range
        score_scale(raw, "semcd6")


def test_result_tidy_glance_summary():
    d = frame("semcd6", [[8, 6, 7, 9, 5, 7], [2, 3, 4, 5, 6, 7], [1] * 6])
    r = score_scale(d, "semcd6")
    t = r.tidy()
    assert list(t.columns[:8]) == ["term", "estimate", "std_error", "statistic", "df", "p_value",
                                   "ci_lower", "ci_upper"]
    assert t["estimate"].iloc[0] == pytest.approx(r.scores["semcd"].mean())
    assert "SEMCD-6" in r.summary()


# ---------------------------------------------------------------- instrument validation
def write(tmp_path, body):
    p = tmp_path / "mine.yaml"
    p.write_text(textwrap.dedent(body))
    return p


GOOD = """
id: mine
name: My scale
licence: own
response: {min: 1, max: 4}
items: [{id: a}, {id: b}, {id: c}]
reverse: [b]
scores:
  - {id: total, items: [a, b, c], method: sum, min_valid: 2, rule: "prorated sum"}
"""


def test_user_instrument_file(tmp_path):
    p = write(tmp_path, GOOD)
    d = pd.DataFrame({"a": [4.0, 4.0], "b": [1.0, NA], "c": [2.0, 2.0]})
    s = score_scale(d, p).scores["total"]
    assert s.iloc[0] == 4 + 4 + 2
    assert s.iloc[1] == pytest.approx(3 * (4 + 2) / 2)


@pytest.mark.parametrize("body, code", [
    (GOOD.replace("reverse: [b]", "reverse: [b, b]"), "S103"),
    (GOOD.replace("reverse: [b]", "reverse: [z]"), "S104"),
    (GOOD.replace("items: [a, b, c], method", "items: [a, b, q], method"), "S105"),
    (GOOD.replace("{min: 1, max: 4}", "{min: 4, max: 1}"), "S106"),
    (GOOD.replace("min_valid: 2", "min_valid: 7"), "S107"),
    (GOOD.replace("method: sum", "method: median"), "S108"),
    (GOOD.replace("method: sum, min_valid: 2", "method: sum, prorate: false, min_valid: 2"), "S109"),
    (GOOD.replace("licence: own", "licnce: own"), "S110"),
    (GOOD.replace("[{id: a}, {id: b}, {id: c}]", "[{id: a}, {id: a}, {id: c}]"), "S102"),
    (GOOD.replace("id: mine\n", ""), "S101"),
])
def test_invalid_instrument_files_give_coded_errors(tmp_path, body, code):
    with pytest.raises(ScaleError, match="mine.yaml") as exc:
        load_instrument(write(tmp_path, body))
    assert code in [i.code for i in exc.value.report]


def test_unknown_instrument_id_lists_shipped_ones():
    with pytest.raises(ScaleError, match="semcd6"):
        load_instrument("semcd7")


# ---------------------------------------------------------------- properties
responses = st.lists(st.one_of(st.none(), st.integers(1, 10)), min_size=6, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(responses, min_size=1, max_size=20))
def test_property_semcd_missing_rule(rows):
    d = pd.DataFrame([[NA if v is None else v for v in r] for r in rows],
                     columns=[f"semcd_{k}" for k in range(1, 7)], dtype=float)
    w = score_scale(d, "semcd6").wide()
    nv = d.notna().sum(axis=1)
    assert (w["semcd_n_valid"] == nv).all()
    assert (w["semcd"].isna() == (nv < 4)).all()
    ok = nv >= 4
    assert np.allclose(w.loc[ok, "semcd"], d[ok].mean(axis=1))
    assert ((w["semcd_status"] == "prorated") == ((nv >= 4) & (nv < 6))).all()
    assert w.loc[ok, "semcd"].between(1, 10).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=12, max_size=12),
                min_size=1, max_size=15))
def test_property_isel_reverse_keys_and_complete_case_rule(rows):
    d = pd.DataFrame([[NA if v is None else v for v in r] for r in rows],
                     columns=[f"isel_{k}" for k in range(1, 13)], dtype=float)
    s = score_scale(d, "isel12").scores
    complete = d.notna().all(axis=1)
    assert (s["isel_total"].isna() == ~complete).all()
    keyed = d.copy()
    for c in ("isel_1", "isel_2", "isel_7", "isel_8", "isel_11", "isel_12"):
        keyed[c] = 3 - keyed[c]
    assert np.allclose(s.loc[complete, "isel_total"], keyed[complete].sum(axis=1))
    # reversing a reverse-keyed item's response lowers the score by the same amount it raises it
    assert s["isel_total"].dropna().between(0, 36).all()


def test_scores_subset_needs_only_their_items():
    ins = load_instrument("heiq")
    cols = [i for i in ins.item_ids if i.startswith(("heiq_smi_", "heiq_hda_", "heiq_hsn_"))]
    d = pd.DataFrame([{c: 3.0 for c in cols}])
    with pytest.raises(ScaleError, match="scores="):
        score_scale(d, "heiq")
    r = score_scale(d, "heiq", scores=["self_monitoring_insight", "health_directed_activity",
                                       "health_service_navigation"])
    assert r.scores.columns.tolist() == ["health_directed_activity", "self_monitoring_insight",
                                         "health_service_navigation"]
    assert (r.scores.iloc[0] == 3).all()
    # a combined score pulls in its components
    s = frame("sampson_ce", [[5, 4, 4, 1, 2, 3, 3, 4, 5, 2]])
    assert score_scale(s, "sampson_ce", scores="collective_efficacy").scores.shape[1] == 3
    with pytest.raises(ScaleError, match="not a score"):
        score_scale(s, "sampson_ce", scores=["cohesion"])


def test_demo_schema_collective_efficacy_scale():
    d = frame("ce_personal8", [[1, 2, 3, 4, 5, 4, 3, 2], [1, NA, NA, 4, 5, 4, 3, 2], [1, NA, NA, NA, 5, 4, 3, 2]])
    w = score_scale(d, "ce_personal8").wide()
    assert w["ce"].iloc[0] == pytest.approx(24 / 8)
    assert w["ce"].iloc[1] == pytest.approx(19 / 6)
    assert np.isnan(w["ce"].iloc[2])


def test_cli_score(cli, tmp_path):
    d = frame("semcd6", [[8, 6, 7, 9, 5, 7], [2, NA, NA, NA, 3, 4]])
    d.insert(0, "patient_id", ["EN-0001", "EN-0002"])
    d = d.rename(columns={"semcd_1": "Q1"})
    src = tmp_path / "items.csv"
    d.to_csv(src, index=False)
    out = tmp_path / "scores.csv"
    r = cli("score", str(src), "--instrument", "semcd6", "--map", "semcd_1=Q1", "--keep", "patient_id",
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out)
    assert got.columns.tolist() == ["patient_id", "semcd", "semcd_n_valid", "semcd_status"]
    assert got["semcd_status"].tolist() == ["complete", "missing"]
    r = cli("score", str(src), "--instrument", "semcd6")
    assert r.returncode == 2 and "`--map`" in r.stderr and "Traceback" not in r.stderr
    assert "semcd6" in cli("score", "--list").stdout


def test_join_and_duplicate_item_mapping():
    d = frame("lsns6", [[1, 2, 3, 4, 5, 0]])
    d.insert(0, "patient_id", ["EN-0001"])
    r = score_scale(d, "lsns6")
    j = r.join(d)
    assert j["lsns_total"].iloc[0] == 15 and j["patient_id"].iloc[0] == "EN-0001"
    with pytest.raises(ScaleError, match="already has"):
        r.join(j)
    with pytest.raises(ScaleError, match="its own column"):
        score_scale(d, "lsns6", items={"lsns_1": "lsns_2", "lsns_2": "lsns_2"})


def test_heiq_has_no_total_score():
    """The heiQ manual scores eight scales separately: the instrument has no total, and asking for one says so."""
    ins = load_instrument("heiq")
    assert not any(s.scores for s in ins.scores)
    assert all(len(s.items) < len(ins.item_ids) for s in ins.scores)
    assert "health_service_navigation" in ins.score_ids
    df = pd.DataFrame({i: [2.0, 3.0] for i in ins.item_ids})
    with pytest.raises(ScaleError, match="'heiq' has no total score") as ei:
        score_scale(df, "heiq", scores=["heiq_total"])
    assert "health_service_navigation" in str(ei.value)
    # an instrument with a total keeps the usual message for a misspelt score
    with pytest.raises(ScaleError, match="not a score of 'lsns6'"):
        score_scale(df, "lsns6", scores=["lsns_totl"])


def test_eq5d_ships_no_value_set_and_scores_the_level_sum():
    """No country value set is shipped: the index needs one passed in; the level sum score is labelled as such."""
    ins = load_instrument("eq5d5l")
    assert ins.score("eq5d_index").method == "value_set"
    assert "not a preference-based index" in " ".join(ins.sources)
    df = pd.DataFrame({i: [1.0, 5.0, None] for i in ins.item_ids})
    res = score_scale(df, "eq5d5l", scores=["eq5d_lss"])
    assert res.scores["eq5d_lss"].tolist()[:2] == [5.0, 25.0] and pd.isna(res.scores["eq5d_lss"].iloc[2])
    # the index is not computed without a value set, and the report says so
    idx = score_scale(df, "eq5d5l", scores=["eq5d_index"])
    assert "eq5d_index" not in idx.scores.columns
    assert any(i.code == "S204" and "value set" in i.message for i in idx.report)
