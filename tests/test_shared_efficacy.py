"""Collective efficacy as a shared property: members' own reports in the demo study and their agreement."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest

from cimstats.datasets import demo_study, planted_truth
from cimstats.datasets._generate import MEMBER_CE
from cimstats.dictionary import check_dictionary, demo_dictionary_path
from cimstats.measures.agreement import icc

SEED = 20140601

#: digests of every column the demo study had before the members' reports were added (seed -> table ->
#: digest), computed with ``_digest`` below from the study generated before the change (updated when the
#: planted effects of follow-up HbA1c, contact drift and weak-tie illness work changed, and when the
#: direction of a member's move between circles came to depend on new support work; the random draws,
#: and so the missing-value columns, stayed the same)
BEFORE = {
    20140601: {"alter_missing_reasons": "a45a19fd9a2a1b5619ae2c3c", "alters": "da8e65cc1a5dda20024f18fd",
               "latent": "07e7db07a734ff6a2dafe52f", "patient_missing_reasons": "2a7ba2aefefd380c87c71198",
               "patients": "592cf75c38e91feb27bb35ee", "raw": "49b3621f4f81a039ace1f50c"},
    1: {"alter_missing_reasons": "78ed2f21642a7a67e97a8402", "alters": "6736313ca7b6aa609ba3ae8c",
        "latent": "9cb19439ba87d2a2d2eebb5c", "patient_missing_reasons": "835994601ddfba08e7234879",
        "patients": "493f1404d868e9f470069ba0", "raw": "82c29c95eed841d2b46c4d5b"},
}


def _column_hash(s: pd.Series) -> str:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        b = np.asarray(s, dtype=float).tobytes()
    else:
        b = "\x1f".join("<NA>" if pd.isna(v) else str(v) for v in s).encode()
    return hashlib.sha256(b).hexdigest()[:16]


def _digest(pairs) -> str:
    return hashlib.sha256("\n".join(f"{n}={v}" for n, v in pairs).encode()).hexdigest()[:24]


def _old_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in MEMBER_CE]


@pytest.fixture(scope="module")
def study():
    return demo_study(SEED)


@pytest.mark.parametrize("seed", sorted(BEFORE))
def test_existing_demo_columns_are_unchanged(seed):
    st = demo_study(seed)
    for table in ("patients", "alters", "latent", "patient_missing_reasons", "alter_missing_reasons"):
        df = getattr(st, table)
        got = _digest((c, _column_hash(df[c])) for c in _old_columns(df))
        assert got == BEFORE[seed][table], table
    raw = []
    for fname, survey in st.raw_surveys().items():
        if "_ties" in fname:
            continue  # the alter-alter tie files came later; the files before them must not change
        raw.extend((f"{fname}/{c}", _column_hash(survey.data[c])) for c in _old_columns(survey.data))
    assert _digest(raw) == BEFORE[seed]["raw"]


def test_member_reports_are_baseline_subsample_on_the_scale(study):
    a = study.alters
    t = planted_truth()["shared_collective_efficacy"]
    assert t["items"] == MEMBER_CE
    reported = a[MEMBER_CE].notna()
    # a member answers all items or none
    assert (reported.all(axis=1) == reported.any(axis=1)).all()
    rep = reported.all(axis=1)
    assert not rep[a["wave"] == 1].any()
    share = rep[a["wave"] == 0].mean()
    n0 = int((a["wave"] == 0).sum())
    assert abs(share - t["p_report"]) < 4 * np.sqrt(t["p_report"] * (1 - t["p_report"]) / n0)
    vals = a.loc[rep, MEMBER_CE].to_numpy()
    assert set(np.unique(vals)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_member_reports_are_in_the_raw_files(study):
    a = study.alters
    n_raw = 0
    for fname, survey in study.raw_surveys().items():
        if "_alters" in fname:
            assert set(MEMBER_CE) <= set(survey.data.columns), fname
            n_raw += int(survey.data[MEMBER_CE[0]].notna().sum())
    assert n_raw == int(a[MEMBER_CE[0]].notna().sum())


def test_planted_icc_is_recovered(study):
    t = planted_truth()["shared_collective_efficacy"]
    a = study.alters
    a = a[a[MEMBER_CE[0]].notna()].assign(score=lambda d: d[MEMBER_CE].mean(axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = icc(a, "score", "patient_id")
    # about 1,200 networks: the standard error of ICC(1) is about 0.025; clipping to 1-5 adds a little
    assert abs(r.icc1 - t["icc1_score_expected"]) < 0.06
    assert 0.2 < r.icc1 < 0.35


def test_demo_dictionary_still_checks_clean():
    rep = check_dictionary(demo_dictionary_path())
    assert len(rep) == 0, rep.summary()


# ------------------------------------------------------------------------- agreement and two-level CFA
from cimstats.errors import CimstatsError  # noqa: E402
from cimstats.mechanisms import SharedEfficacyResult, shared_efficacy  # noqa: E402
from cimstats.measures.agreement import rwg  # noqa: E402


@pytest.fixture(scope="module")
def shared(study):
    return shared_efficacy(study.alters)


def test_shared_efficacy_matches_the_agreement_measures(study, shared):
    assert isinstance(shared, SharedEfficacyResult)
    a = study.alters
    a = a[(a["wave"] == 0) & a[MEMBER_CE[0]].notna()].assign(score=lambda d: d[MEMBER_CE].mean(axis=1))
    direct = icc(a, "score", "patient_id")
    agree = rwg(a, MEMBER_CE, "patient_id", options=5)
    s = shared.summary_frame().iloc[0]
    assert s["icc1"] == pytest.approx(direct.icc1, rel=1e-12)
    assert s["icc2"] == pytest.approx(direct.icc2, rel=1e-12)
    assert s["rwg_j_mean"] == pytest.approx(agree.mean, rel=1e-12)
    assert s["rwg_null_variance"] == pytest.approx((5 ** 2 - 1) / 12)
    assert s["members"] == len(a) and s["networks"] == a["patient_id"].nunique()
    # every alter row is accounted for: reporting, not reporting, partial
    assert s["members"] + s["not_reporting"] + s["partial"] == int((study.alters["wave"] == 0).sum())
    assert shared.networks["n_members"].sum() == len(a)
    one = shared.networks["n_members"] == 1
    assert shared.networks.loc[one, "rwg_j"].isna().all() and shared.networks.loc[~one, "rwg_j"].notna().all()


def test_two_level_cfa_has_positive_between_loadings(shared):
    t = shared.tidy()
    load = t[t["op"] == "=~"]
    assert set(load["level"]) == {1, 2}
    between = load[load["level"] == 2]
    assert len(between) == len(MEMBER_CE) and (between["estimate"] > 0).all()
    free = between[between["std_error"] > 0]
    assert (free["ci_lower"] > 0).all()
    # the factor's between-network share is near the planted share of the members' views
    planted = planted_truth()["shared_collective_efficacy"]["icc1_view"]
    assert abs(shared.factor_icc() - planted) < 0.08


def test_partial_answers_are_counted_not_dropped_silently(study):
    a = study.alters.copy()
    rows = a.index[(a["wave"] == 0) & a[MEMBER_CE[0]].notna()][:5]
    a.loc[rows, MEMBER_CE[1]] = np.nan
    r = shared_efficacy(a, cfa=False)
    assert r.n_partial == 5 and r.fit is None
    assert r.summary_frame().loc[0, "members"] == int(study.alters[MEMBER_CE[0]].notna().sum()) - 5


@pytest.mark.parametrize("kwargs, fragment", [
    ({"items": ["member_ce_1"]}, "at least two"),
    ({"items": ["member_ce_1", "member ce 2"]}, "cannot be used in a model"),
    ({"items": ["member_ce_1", "nope"]}, "no column"),
    ({"group": "network"}, "no column"),
])
def test_hostile_arguments_raise_one_sentence(study, kwargs, fragment):
    with pytest.raises(CimstatsError, match=fragment):
        shared_efficacy(study.alters, cfa=False, **kwargs)


def test_no_reporting_member_raises(study):
    with pytest.raises(CimstatsError, match="answered every item"):
        shared_efficacy(study.alters, wave=1, cfa=False)


# ------------------------------------------------------------------------- the run's report
from cimstats.pipeline.report import _shared_section  # noqa: E402


def test_report_section_reads_the_run_files(shared, tmp_path):
    (tmp_path / "mechanisms").mkdir()
    assert _shared_section(tmp_path) is None  # nothing reported: no section
    shared.summary_frame().to_csv(tmp_path / "mechanisms/shared_efficacy.csv", index=False)
    shared.tidy().to_csv(tmp_path / "mechanisms/shared_efficacy_cfa.csv", index=False)
    html = _shared_section(tmp_path)
    assert "ICC(1)" in html and "rwg(j) mean" in html and "between networks" in html
    assert f"{shared.icc.icc1:.2f}" in html


def test_demo_run_writes_and_reports_shared_efficacy(demo_run):
    summ = pd.read_csv(demo_run / "mechanisms/shared_efficacy.csv")
    direct = shared_efficacy(demo_study().alters, cfa=False).summary_frame()
    assert summ.loc[0, "icc1"] == pytest.approx(direct.loc[0, "icc1"], rel=1e-9)
    cfa = pd.read_csv(demo_run / "mechanisms/shared_efficacy_cfa.csv")
    assert (cfa.loc[(cfa["op"] == "=~") & (cfa["level"] == 2), "estimate"] > 0).all()
    report = (demo_run / "report.html").read_text(encoding="utf-8")
    assert "Collective efficacy as a shared property" in report
