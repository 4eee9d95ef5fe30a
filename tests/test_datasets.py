"""The demo study generator: determinism, design, schema, raw files, planted effects, themes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from cimstats.datasets import (
    COUNTRIES, TIE_TYPES, coded_excerpts, demo_study, planted_truth, raw_variable_map, render_schema,
    theme_codebook,
)
from cimstats.datasets._generate import ALTER_COLUMNS, CE, HEIQ_SMI, ITEMS, PATIENT_COLUMNS, generate
from cimstats.errors import CimstatsError

SEED = 20140601


@pytest.fixture(scope="module")
def study():
    return demo_study(SEED)


@pytest.fixture(scope="module")
def surveys(study):
    return study.raw_surveys()


# ------------------------------------------------------------------------- harmonising by the map
def _apply(rule: str, params: dict, x: pd.Series, frame: pd.DataFrame) -> pd.Series:
    if rule == "copy":
        return x
    if rule == "recode":
        return x.map(lambda v: params["map"].get(v, np.nan) if not pd.isna(v) else np.nan)
    if rule == "reverse":
        return params["min"] + params["max"] - x
    if rule == "linear":
        return params["intercept"] + params["slope"] * x
    if rule == "format":
        cols = params.get("sources", [x.name])
        return pd.Series([params["template"].format(*(int(v) for v in vals))
                          for vals in zip(*(frame[c] for c in cols))], index=x.index)
    if rule == "quintile":
        above = (x.to_numpy()[:, None] > np.asarray(params["cutpoints"])[None, :]).sum(1)
        q = 5 - above if params["higher_is_more_deprived"] else 1 + above
        return pd.Series(np.where(x.isna(), np.nan, q), index=x.index)
    raise AssertionError(rule)


def harmonise_by_map(frames: dict[str, pd.DataFrame], kind: str) -> pd.DataFrame:
    """Apply raw_variable_map() to raw tables (declared missing already missing) of one kind."""
    vmap = raw_variable_map()
    out = []
    for cc in COUNTRIES:
        rows = vmap[(vmap.country == cc) & (vmap.file_kind == kind)]
        files = sorted({f for fs in rows["files"] for f in fs.split(";")})
        for fname in files:
            data = frames[fname]
            res = {}
            for r in rows.itertuples():
                if fname not in r.files.split(";"):
                    continue
                if r.rule == "constant":
                    res[r.target] = pd.Series(r.params["value"], index=data.index)
                else:
                    res[r.target] = _apply(r.rule, r.params, data[r.raw_name], data)
            out.append(pd.DataFrame(res))
    df = pd.concat(out, ignore_index=True)
    if "country" not in df and kind == "patients":
        df["country"] = df["patient_id"].str[:2]
    return df


def _compare(expected: pd.DataFrame, got: pd.DataFrame, keys: list[str]):
    e = expected.sort_values(keys, ignore_index=True)
    g = got[expected.columns].sort_values(keys, ignore_index=True)
    assert len(e) == len(g)
    for c in expected.columns:
        ev, gv = e[c], g[c]
        if pd.api.types.is_numeric_dtype(ev):
            ev = ev.astype(float).to_numpy()
            gv = pd.to_numeric(gv).astype(float).to_numpy()
            assert np.array_equal(np.isnan(ev), np.isnan(gv)), c
            assert np.allclose(ev[~np.isnan(ev)], gv[~np.isnan(gv)], rtol=0, atol=1e-9), c
        else:
            assert ev.astype(str).tolist() == gv.astype(str).tolist(), c


# ------------------------------------------------------------------------- determinism
def test_same_seed_same_study_and_different_seed_differs():
    a, b, c = generate(7), generate(7), generate(8)
    for k in ("patients", "alters", "latent"):
        pd.testing.assert_frame_equal(a[k], b[k])
    assert not a["patients"].equals(c["patients"])
    assert a["alters"].shape != c["alters"].shape or not a["alters"].equals(c["alters"])


def test_demo_study_hands_out_copies(study):
    s = demo_study(SEED)
    s.patients.loc[0, "age"] = -1
    assert demo_study(SEED).patients.loc[0, "age"] != -1


@pytest.mark.parametrize("bad", ["1", 1.5, None, True, -3])
def test_seed_must_be_a_whole_number(bad):
    with pytest.raises(CimstatsError, match="`seed`"):
        demo_study(bad)


# ------------------------------------------------------------------------- design
def test_design_counts(study):
    p, a, lat = study.patients, study.alters, study.latent
    base = p[p.wave == 0]
    assert sorted(base.country.unique()) == sorted(COUNTRIES)
    assert len(base) == 1700 and base.patient_id.is_unique
    assert (base.groupby("country").area_id.nunique() == 3).all()
    per_area = base.groupby("area_id").practice_id.nunique()
    assert per_area.between(3, 4).all()
    assert (base.groupby("practice_id").area_id.nunique() == 1).all()  # practices nest in areas
    n_alters0 = int((a.wave == 0).sum())
    assert 4500 <= n_alters0 <= 5500
    retention = (p.wave == 1).sum() / len(base)
    assert 0.69 <= retention <= 0.77
    miss = p[ITEMS].isna().to_numpy().mean()
    assert 0.08 <= miss <= 0.10
    empty = (lat.wave == 0) & (lat.network_size == 0)
    assert 0.02 <= empty.sum() / len(base) <= 0.10
    no_net_ids = set(lat.loc[empty, "patient_id"])
    assert not set(a.loc[a.wave == 0, "patient_id"]) & no_net_ids


def test_summary_table_matches_tables(study):
    s = study.summary().set_index("country")
    assert s.loc["ALL", "patients_w0"] == 1700
    assert s.loc["ALL", "alters_w0"] == int((study.alters.wave == 0).sum())
    assert s.loc[list(COUNTRIES), "patients_w1"].sum() == s.loc["ALL", "patients_w1"]


def test_alters_keep_ids_across_waves(study):
    ch = study.alter_changes()
    counts = ch.status.value_counts()
    assert {"retained", "lost", "added"} <= set(counts.index)
    a = study.alters
    assert not a.duplicated(["alter_id", "wave"]).any()
    # a retained alter keeps its tie type
    r = ch[ch.status == "retained"]
    assert (r.tie_type_w0 == r.tie_type_w1).all()
    # support work changes for some retained alters (negotiation)
    changed = (r.illness_work_w0 != r.illness_work_w1) | (r.everyday_work_w0 != r.everyday_work_w1)
    assert 0.05 < changed.mean() < 0.6


def test_at_most_one_partner_per_patient_and_wave(study):
    a = study.alters
    assert a[a.tie_type == "partner"].groupby(["patient_id", "wave"]).size().max() == 1


# ------------------------------------------------------------------------- harmonised schema
def test_harmonised_schema(study):
    p, a = study.patients, study.alters
    assert list(p.columns) == PATIENT_COLUMNS
    assert list(a.columns) == ALTER_COLUMNS
    assert p.patient_id.str.match(r"^(EN|NL|NO|ES|GR|BG)-\d{4}$").all()
    assert a.alter_id.str.match(r"^(EN|NL|NO|ES|GR|BG)-\d{4}-A\d{2}$").all()
    assert set(p.sex) == {1, 2} and set(p.wave) == {0, 1} and set(p.area_deprivation) == {1, 2, 3}
    assert p.deprivation_q.between(1, 5).all()
    assert p.education_isced.dropna().between(0, 8).all()
    for cols, lo, hi in ((["semcd_1"], 1, 10), (CE, 1, 5), (HEIQ_SMI, 1, 4), (["eq5d_mo", "eq5d_ad"], 1, 5)):
        v = p[cols].stack().dropna()
        assert v.between(lo, hi).all() and (v == v.round()).all()
    assert set(a.tie_type) == set(TIE_TYPES)
    assert set(a.circle) == {1, 2, 3}
    assert a.contact_freq.dropna().between(1, 5).all()
    # deprivation: more deprived areas have lower (more deprived) national quintiles
    q = p[p.wave == 0].groupby("area_deprivation").deprivation_q.mean()
    assert q.is_monotonic_increasing


# ------------------------------------------------------------------------- raw surveys
def test_raw_surveys_follow_the_documented_map(surveys):
    vmap = raw_variable_map()
    assert len(surveys) == 24  # patients, alters and alter-alter ties of six countries, some split by wave
    formats = {n.rsplit(".", 1)[1] for n in surveys}
    assert formats == {"sav", "dta"}
    assert sum(n.endswith(".dta") for n in surveys) >= 2
    for name, s in surveys.items():
        rows = vmap[vmap["files"].str.split(";").map(lambda fs, n=name: n in fs) & vmap.raw_name.notna()]
        assert set(rows.raw_name) == set(s.variables), name
        for r in rows.drop_duplicates("raw_name").itertuples():
            m = s.variable(r.raw_name)
            assert m.label == r.label
            assert dict(m.value_labels) == r.value_labels
            if r.missing_range:
                assert m.missing_ranges == tuple(r.missing_range)
            else:
                assert set(m.missing_codes) == set(r.missing_codes.values())


def test_raw_surveys_harmonise_back_to_the_study(study, surveys):
    frames = {n: s.data for n, s in surveys.items()}
    got = harmonise_by_map(frames, "patients")
    _compare(study.patients, got, ["patient_id", "wave"])
    got = harmonise_by_map(frames, "alters")
    _compare(study.alters, got, ["alter_id", "wave"])
    got = harmonise_by_map(frames, "ties")
    _compare(study.alter_ties, got, ["wave", "alter_a", "alter_b"])


def test_alter_tie_table_is_who_knows_whom_behind_n_known_others(study):
    t, a = study.alter_ties, study.alters
    assert t.columns.tolist() == ["patient_id", "wave", "alter_a", "alter_b"]
    assert not t.duplicated(["wave", "alter_a", "alter_b"]).any()
    assert (t["alter_a"] < t["alter_b"]).all()
    assert (t["alter_a"].str[:7] == t["patient_id"]).all() and (t["alter_b"].str[:7] == t["patient_id"]).all()
    # both members were named by that patient at that wave
    named = set(zip(a["wave"], a["alter_id"]))
    assert all((w, x) in named for w, x in zip(t["wave"], t["alter_a"]))
    assert all((w, x) in named for w, x in zip(t["wave"], t["alter_b"]))
    # each member knows exactly as many others as the pairs naming it
    ends = pd.concat([t[["wave", "alter_a"]].set_axis(["wave", "alter_id"], axis=1),
                      t[["wave", "alter_b"]].set_axis(["wave", "alter_id"], axis=1)])
    deg = ends.value_counts().rename("deg").reset_index()
    m = a[["wave", "alter_id", "n_known_others"]].merge(deg, on=["wave", "alter_id"], how="left")
    assert (m["deg"].fillna(0).astype(int) == m["n_known_others"]).all()
    assert (t["wave"] == 1).any() and (t["wave"] == 0).any()


def test_raw_files_differ_between_teams(surveys):
    # sex codes, reversed scales, units and missing codes differ by country
    assert set(surveys["NL_patients.sav"].data.geslacht.dropna()) == {0, 1}
    assert set(surveys["NO_patients.dta"].data.kjonn.dropna()) == {"M", "K"}
    assert surveys["ES_patients_baseline.sav"].variable("sexo").value_labels == {1: "Mujer", 2: "Hombre"}
    assert surveys["NL_patients.sav"].variable("ke_1").value_labels[1] == "Helemaal mee eens"
    assert surveys["GR_patients.dta"].variable("aftoapotel_1").value_labels[10] == "Καθόλου σίγουρος"
    assert surveys["NO_patients.dta"].variable("mestring1").missing_codes == (".a", ".b")
    assert surveys["EN_patients_baseline.sav"].variable("se1").missing_codes == (98, 99)
    assert surveys["NL_patients.sav"].variable("zeff_1").missing_ranges == ((-9, -1),)
    assert surveys["ES_patients_baseline.sav"].data.hba1c.dropna().between(4, 15).all()      # %
    assert surveys["EN_patients_baseline.sav"].data.hba1c.dropna().between(30, 130).all()    # mmol/mol
    miss = surveys["EN_patients_baseline.sav"].missing
    assert set(miss["se1"].dropna()) <= {98, 99} and miss["se1"].notna().any()


# ------------------------------------------------------------------------- planted effects
def _within(est, se, truth, k=3.5):
    assert abs(est - truth) < k * se + 0.01, (est, se, truth)


@pytest.fixture(scope="module")
def analysis(study):
    p = study.patients.copy()
    lat = study.latent
    p["ce"] = p[CE].mean(axis=1)
    p["sm"] = p[HEIQ_SMI].mean(axis=1)
    p["diversity"] = lat["diversity"].to_numpy()
    p["m"] = p["area_deprivation"] - 2
    for c in ("realloc", "n_lost", "n_added"):
        p[c] = lat[c].to_numpy()
    return p


def test_network_diversity_raises_collective_efficacy_moderated_by_deprivation(analysis):
    t = planted_truth()["collective_efficacy"]
    fit = smf.ols("ce ~ C(country) + diversity * m", analysis[analysis.wave == 0]).fit()
    _within(fit.params["diversity"], fit.bse["diversity"], t["diversity"])
    _within(fit.params["diversity:m"], fit.bse["diversity:m"], t["diversity:m"])
    assert fit.params["diversity"] > 0 and fit.pvalues["diversity:m"] < 0.05


def test_collective_efficacy_raises_self_management(analysis):
    t = planted_truth()["self_management"]
    fit = smf.ols("sm ~ C(country) + ce + diversity + m", analysis[analysis.wave == 0]).fit()
    _within(fit.params["ce"], fit.bse["ce"], t["ce"])
    assert fit.pvalues["ce"] < 1e-10


def test_practice_icc_is_small(analysis):
    b = analysis[analysis.wave == 0].dropna(subset=["ce"])
    fit = smf.mixedlm("ce ~ C(country) + diversity * m", b, groups="practice_id").fit()
    icc = fit.cov_re.iloc[0, 0] / (fit.cov_re.iloc[0, 0] + fit.scale)
    assert 0.005 < icc < 0.10
    assert 0.02 <= planted_truth()["icc_practice"]["ce_score_expected"] <= 0.05


def test_role_reallocation_buffers_decline(analysis):
    t = planted_truth()["follow_up"]["sm_change"]
    w = analysis.pivot_table(index="patient_id", columns="wave", values="sm")
    f = analysis[analysis.wave == 1].set_index("patient_id")
    f = f.assign(change=w[1] - w[0]).dropna(subset=["change"])
    fit = smf.ols("change ~ realloc + n_lost + n_added", f).fit()
    _within(fit.params["realloc"], fit.bse["realloc"], t["realloc"])
    _within(fit.params["Intercept"], fit.bse["Intercept"], t["intercept"])
    assert fit.params["Intercept"] < 0 < fit.params["realloc"]


def test_illness_work_depends_on_tie_type_by_deprivation(study):
    t = planted_truth()["illness_work"]
    a = study.alters[study.alters.wave == 0]
    area = study.patients.drop_duplicates("patient_id").set_index("patient_id").area_deprivation
    a = a.assign(dep_c=2 - a.patient_id.map(area).to_numpy())
    fit = smf.logit("illness_work ~ 0 + C(tie_type) + C(tie_type):dep_c", a).fit(disp=0)
    for tie in ("weak_tie", "group", "family", "professional"):
        term = f"C(tie_type)[{tie}]:dep_c"
        _within(fit.params[term], fit.bse[term], t["dep_c"][tie])
    assert fit.params["C(tie_type)[weak_tie]:dep_c"] > fit.params["C(tie_type)[friend]:dep_c"]


def test_planted_truth_shapes():
    t = planted_truth()
    for block in ("collective_efficacy", "self_management", "mediation", "icc_practice", "illness_work",
                  "follow_up", "missingness", "definitions"):
        assert block in t
    assert t["mediation"]["indirect_by_area_deprivation"]["2"] == pytest.approx(
        t["collective_efficacy"]["diversity"] * t["self_management"]["ce"])
    df = planted_truth(as_frame=True)
    assert list(df.columns) == ["block", "outcome", "term", "estimate", "scale"]
    assert not df.duplicated(["block", "outcome", "term"]).any()
    t["collective_efficacy"]["diversity"] = 99
    assert planted_truth()["collective_efficacy"]["diversity"] != 99  # a copy each call


# ------------------------------------------------------------------------- qualitative inputs
def test_theme_codebook_holds_the_synthesis():
    book = theme_codebook()
    assert [t["name"] for t in book["themes"]] == [
        "Sharing knowledge and experiences in a personal community",
        "Accessing and mediation of resources",
        "Awareness of and ability to deal with network relationships",
    ]
    mech = {m["id"]: m for m in book["mechanisms"]}
    assert set(mech) == {"network_navigation", "negotiation", "collective_efficacy"}
    assert "identifying and connecting" in mech["network_navigation"]["definition"].lower()
    assert "re-shaping relationships" in mech["negotiation"]["definition"].lower()
    assert "shared perception" in mech["collective_efficacy"]["definition"].lower()
    assert [e["id"] for e in book["collective_efficacy_elements"]] == ["timing", "trust", "legitimising"]
    assert book["invented_excerpts"] is True


def test_excerpts_link_to_demo_participants(study):
    x = coded_excerpts()
    assert x.invented.all() and len(x) >= 20
    ids = set(study.patients.patient_id)
    assert x.loc[x.surveyed, "participant_id"].isin(ids).all()
    assert not x.loc[~x.surveyed, "participant_id"].isin(ids).any()
    assert x.surveyed.any() and (~x.surveyed).any()
    assert set(x.theme) == {"T1", "T2", "T3"} and set(x.country) == set(COUNTRIES)


def test_schema_document_is_current():
    path = Path(__file__).resolve().parents[1] / "src" / "cimstats" / "datasets" / "SCHEMA.md"
    assert path.read_text(encoding="utf-8") == render_schema(), "re-render SCHEMA.md with render_schema()"
    text = path.read_text(encoding="utf-8")
    for name in PATIENT_COLUMNS[:12] + ALTER_COLUMNS:
        assert f"`{name}`" in text or f"| {name} |" in text or name in text


# ------------------------------------------------------------------------- national deprivation indices
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cimstats.datasets._generate import _deprivation_index, deprivation_quintile  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-3.5, 3.5, allow_nan=False), min_size=2, max_size=40),
       st.sampled_from(list(COUNTRIES)))
def test_national_quintile_never_rises_with_deprivation(z, country):
    z = np.sort(np.asarray(z))
    q = deprivation_quintile(country, _deprivation_index(country, z))
    assert set(np.unique(q)) <= {1, 2, 3, 4, 5}
    assert (np.diff(q) <= 0).all()  # more deprived neighbourhood -> same or lower (more deprived) quintile
    # the extremes land in the extreme quintiles
    assert deprivation_quintile(country, _deprivation_index(country, np.array([3.0])))[0] == 1
    assert deprivation_quintile(country, _deprivation_index(country, np.array([-3.0])))[0] == 5
