"""Longitudinal measurement invariance against lavaan 0.6-14 and semTools (numbers in
tests/reference/sem_longitudinal.json, written by tests/reference/sem_longitudinal.R from the
long tables tests/reference/data/sem_long_*.csv)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import MissingDataWarning, ModelSpecificationError
from cimstats.models.sem import longitudinal_invariance, longitudinal_syntax
from cimstats.models.sem.longitudinal import wide_name
from conftest import REFERENCE

REF_FILE = REFERENCE / "sem_longitudinal.json"
if not REF_FILE.exists():
    pytest.skip("tests/reference/sem_longitudinal.json is absent", allow_module_level=True)
REF = json.loads(REF_FILE.read_text())
RTOL = 1e-4  # relative tolerance on estimates, standard errors, fit measures and difference tests
ATOL = 1e-6  # absolute floor for quantities that are (near) zero
STEPS = ["configural", "metric", "scalar", "strict"]

DATA = {
    "long_ce_demo": dict(file="sem_long_ce_demo.csv", items=[f"ce_{i}" for i in range(1, 9)], id="patient_id",
                         wave="wave", waves=[0, 1]),
    "long_planted": dict(file="sem_long_planted.csv", items=[f"y{i}" for i in range(1, 6)], id="person",
                         wave="time", waves=[1, 2, 3]),
}
COUNT_KEY = {"long_ce_demo": "demo", "long_planted": "planted"}


def _long(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / DATA[name]["file"])


_CACHE: dict = {}


def _fit(case: str):
    if case not in _CACHE:
        c = REF["cases"][case]
        d = DATA[c["data"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingDataWarning)
            _CACHE[case] = longitudinal_invariance(
                _long(c["data"]), d["items"], id=d["id"], wave=d["wave"], missing=c["missing"],
                estimator=c["estimator"], partial=c.get("partial", ()))
    return _CACHE[case]


def _close(mine, ref, rtol=RTOL, atol=ATOL):
    mine = np.asarray(mine, dtype=float)
    ref = np.asarray(ref, dtype=float)
    return np.abs(mine - ref) <= rtol * np.abs(ref) + atol


CASES = [pytest.param(c, marks=pytest.mark.slow) if c == "demo_fiml_mlr" else c for c in sorted(REF["cases"])]


@pytest.mark.parametrize("case", CASES)
def test_estimates_and_standard_errors(case):
    res = _fit(case)
    for step in STEPS:
        ref = pd.DataFrame(REF["cases"][case]["partables"][step])
        ref = ref[ref["op"].isin(["=~", "~~", "~1"])].copy()
        ref["rhs"] = ref["rhs"].fillna("")
        mine = res.fits[step].tidy()
        m = ref.merge(mine, on=["lhs", "op", "rhs"], how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), (step, m.loc[m["_merge"] != "both", ["lhs", "op", "rhs"]])
        bad = ~_close(m["estimate"], m["est"])
        assert not bad.any(), (step, m.loc[bad, ["lhs", "op", "rhs", "est", "estimate"]])
        bad = ~_close(m["std_error"], m["se"].fillna(0.0))
        assert not bad.any(), (step, m.loc[bad, ["lhs", "op", "rhs", "se", "std_error"]])


@pytest.mark.parametrize("case", CASES)
def test_fit_measures(case):
    res = _fit(case)
    for step in STEPS:
        ref = REF["cases"][case]["fits"][step]
        fm = res.fits[step].fit_measures()
        bad = {k: (fm[k], v) for k, v in ref.items() if not _close(fm[k], v, atol=1e-7)}
        assert not bad, (step, bad)
    assert res.nobs == REF["cases"][case]["nobs"]


@pytest.mark.parametrize("case", CASES)
def test_comparison_table_matches_lavTestLRT(case):
    res = _fit(case)
    ref = pd.DataFrame(REF["cases"][case]["lrt"])
    t = res.table
    assert t["model"].tolist() == STEPS
    for mine, theirs in (("df", "Df"), ("aic", "AIC"), ("bic", "BIC"), ("chisq", "Chisq"),
                         ("chisq_diff", "Chisq.diff"), ("df_diff", "Df.diff"), ("p_diff", "Pr..Chisq.")):
        r = ref[theirs].to_numpy(dtype=float)
        ok = ~np.isnan(r)
        assert np.all(np.isnan(t[mine].to_numpy(dtype=float)[~ok]))
        assert np.all(_close(t[mine].to_numpy(dtype=float)[ok], r[ok], atol=1e-8)), (mine, t[mine], r)
    if "RMSEA" in ref:
        r = ref["RMSEA"].to_numpy(dtype=float)
        ok = ~np.isnan(r)
        assert np.all(_close(t["rmsea_diff"].to_numpy(dtype=float)[ok], r[ok]))
    robust = REF["cases"][case]["estimator"] == "MLR"
    fits = REF["cases"][case]["fits"]
    cfi = [fits[s]["cfi.robust" if robust else "cfi"] for s in STEPS]
    rmsea = [fits[s]["rmsea.robust" if robust else "rmsea"] for s in STEPS]
    assert np.all(_close(t["cfi"], cfi)) and np.all(_close(t["rmsea"], rmsea))
    assert np.all(_close(t["delta_cfi"].iloc[1:], np.diff(cfi), rtol=0, atol=1e-6))
    assert np.all(_close(t["delta_rmsea"].iloc[1:], np.diff(rmsea), rtol=0, atol=1e-6))
    assert set(t["method"].iloc[1:]) == {"satorra.bentler.2001" if robust else "standard"}


@pytest.mark.parametrize("case", sorted(REF["meas_eq"]))
def test_same_models_as_semtools_measEq_syntax(case):
    """semTools::measEq.syntax (marker identification, autocovariances at every lag) builds
    equivalent models: the same chi-square, df and fit indices at every step."""
    res = _fit(case)
    for step, ref in REF["meas_eq"][case].items():
        fm = res.fits[step].fit_measures()
        for k, v in ref.items():
            assert _close(fm[k], v, atol=1e-7), (step, k, fm[k], v)


@pytest.mark.parametrize("name", sorted(DATA))
def test_people_set_aside_are_counted(name):
    ref = REF["counts"][COUNT_KEY[name]]
    d = DATA[name]
    with pytest.warns(MissingDataWarning, match=f"{ref['absent'] + ref['incomplete']} of {ref['people']} people"):
        res = longitudinal_invariance(_long(name), d["items"], id=d["id"], wave=d["wave"], steps="configural")
    assert res.nobs == ref["complete"]
    assert res.n_dropped == ref["absent"] + ref["incomplete"]
    assert dict(res.dropped_reasons) == {
        "absent at one or more waves (listwise deletion)": ref["absent"],
        "an item missing at a wave they took part in (listwise deletion)": ref["incomplete"],
    }
    assert res.nobs + res.n_dropped == ref["people"] == _long(name)[d["id"]].nunique()
    assert len(res.wide) == res.nobs and res.wide.notna().all(axis=None)
    # FIML keeps everyone with an observed item; people with none are counted
    long = _long(name)
    first = long[d["id"]].iloc[0]
    long.loc[long[d["id"]] == first, d["items"]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingDataWarning)
        with pytest.raises(MissingDataWarning, match=f"1 of {ref['people']} people"):
            longitudinal_invariance(long, d["items"], id=d["id"], wave=d["wave"], missing="fiml",
                                    steps="configural")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        res = longitudinal_invariance(long, d["items"], id=d["id"], wave=d["wave"], missing="fiml",
                                      steps="configural")
    assert res.nobs == ref["people"] - 1 and dict(res.dropped_reasons) == {"no observed item at any wave": 1}
    assert first not in set(res.wide[d["id"]])


def test_planted_intercept_shift_is_detected():
    """y3's intercept rises by 0.5 after wave 1 (tests/reference/sem_longitudinal.R): metric holds,
    scalar fails by the chi-square difference and by CFI; freeing y3's intercept restores it."""
    for case in ("planted_listwise_ml", "planted_fiml_ml"):
        t = _fit(case).table.set_index("model")
        assert t.loc["metric", "p_diff"] > 0.05
        assert t.loc["scalar", "p_diff"] < 1e-10
        assert t.loc["scalar", "delta_cfi"] < -0.01
        # the sequence stops at the first rejected step, whatever the later steps' own tests say
        assert _fit(case).glance()["last_step_not_rejected"].iloc[0] == "metric"
    t = _fit("planted_partial_ml").table.set_index("model")
    assert t.loc["scalar", "p_diff"] > 0.05 and t.loc["scalar", "df_diff"] == 6
    # the freed intercepts recover the planted shift: about 0.5 at waves 2 and 3
    tidy = _fit("planted_partial_ml").fits["scalar"].tidy()
    est = tidy[tidy["op"] == "~1"].set_index("lhs")["estimate"]  # one intercept row per variable
    shift = [est["y3_w2"] - est["y3_w1"], est["y3_w3"] - est["y3_w1"]]
    assert all(0.3 < s < 0.7 for s in shift), shift


def test_result_says_it_is_across_waves():
    res = _fit("planted_listwise_ml")
    assert res.across == "waves" and res.group == "waves 1, 2, 3" and res.waves == (1, 2, 3)
    assert res.items == tuple(DATA["long_planted"]["items"])
    assert list(res.wide.columns) == ["person"] + [f"y{i}_w{w}" for w in (1, 2, 3) for i in range(1, 6)]
    cols = res.columns
    assert list(cols.columns) == ["item", "wave", "column", "factor", "n_observed"]
    assert (cols["n_observed"] == res.nobs).all()
    g = res.glance()
    assert g["across"].iloc[0] == "waves" and g["nobs"].iloc[0] == res.nobs
    assert "across waves 1, 2, 3" in str(res.summary())
    assert type(res).__name__ == "InvarianceResult"  # the invariance figure and mechanism code accept it
    assert res.fits["scalar"].spec.model == longitudinal_syntax(res.items, res.waves, step="scalar")


def test_top_level_export_and_group_sequence_unchanged():
    assert cimstats.longitudinal_invariance is longitudinal_invariance
    rng = np.random.default_rng(3)
    f = rng.normal(size=300)
    d = pd.DataFrame({f"y{i}": 0.7 * f + rng.normal(scale=0.7, size=300) for i in range(1, 5)})
    d["country"] = np.repeat(["EN", "NL"], 150)
    inv = cimstats.invariance("ce =~ y1 + y2 + y3 + y4", d, group="country", steps=("configural", "metric"))
    assert inv.across == "groups" and inv.nobs == 300 and inv.n_dropped == 0


def test_waves_select_and_order():
    """`waves` picks and orders the waves: the first is the reference (factor mean 0)."""
    d = DATA["long_planted"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        res = longitudinal_invariance(_long("long_planted"), d["items"], id="person", wave="time", waves=[3, 1],
                                      steps=("configural", "scalar"))
    assert res.waves == (3, 1) and res.dropped_reasons["absent at one or more waves (listwise deletion)"] == 60
    assert res.nobs + res.n_dropped == REF["counts"]["planted"]["people"]
    tidy = res.fits["scalar"].tidy()
    means = tidy[tidy["op"] == "~1"].set_index("lhs")  # one intercept row per variable
    assert means.loc["F_w3", "estimate"] == 0 and means.loc["F_w1", "std_error"] > 0
    assert "F_w2" not in set(tidy["lhs"])


def test_wide_names():
    assert wide_name("ce_1", 0) == "ce_1_w0"
    assert wide_name("ce_1", np.int64(2)) == "ce_1_w2"
    assert wide_name("ce_1", 1.0) == "ce_1_w1"
    assert wide_name("ce_1", "follow-up") == "ce_1_wfollow_up"


def test_syntax_is_the_one_lavaan_was_given():
    """The R script writes the same models independently; its strict model for items a, b, c
    at waves 0 and 1 has the same statements."""
    def statements(text):
        return sorted(s.replace(" ", "") for s in text.splitlines() if s.strip() and not s.startswith("#"))

    assert statements(longitudinal_syntax(["a", "b", "c"], [0, 1], step="strict")) == \
        statements(REF["syntax_example"])


# --------------------------------------------------------------------------- error paths
def _small():
    rng = np.random.default_rng(5)
    n = 60
    rows = []
    for w in (0, 1):
        f = rng.normal(size=n)
        for i in range(n):
            rows.append(dict(pid=f"P{i}", wave=w, **{f"q{j}": f[i] + rng.normal(scale=0.5) for j in range(1, 5)}))
    return pd.DataFrame(rows)


ITEMS = ["q1", "q2", "q3", "q4"]


@pytest.mark.parametrize("kwargs, data_change, match", [
    (dict(items=["q1", "q2", "qx"]), None, r"`items` lists 'qx', which is not a column"),
    (dict(id="person"), None, r"`id=` is 'person', which is not a column"),
    (dict(wave="time"), None, r"`wave=` is 'time', which is not a column"),
    (dict(items=["q1", "q2"]), None, r"`items` has 2 item\(s\); .* at least 3 items"),
    (dict(items=["q1", "q2", "q2"]), None, r"`items` lists 'q2' more than once"),
    (dict(waves=[0]), None, r"at least 2 waves; found 1 \(0\)"),
    (dict(), lambda d: d[d["wave"] == 0], r"at least 2 waves; found 1"),
    (dict(waves=[0, 1, 2]), None, r"Wave 2 has no rows"),
    (dict(waves=[0, 0]), None, r"`waves` lists a wave twice"),
    (dict(), lambda d: d.assign(q1=np.where(d["wave"] == 1, np.nan, d["q1"]),
                                q2=np.where(d["wave"] == 1, np.nan, d["q2"]),
                                q3=np.where(d["wave"] == 1, np.nan, d["q3"]),
                                q4=np.where(d["wave"] == 1, np.nan, d["q4"])),
     r"Wave 1 has no observed item values"),
    (dict(), lambda d: pd.concat([d, d.iloc[[3]]]), r"1 person-wave pair\(s\) with more than one row \(e.g. pid 'P3' at wave 0\)"),
    (dict(), lambda d: d.assign(q2=d["q2"].astype(str)), r"Item column 'q2' of `data` is .*not numeric"),
    (dict(), lambda d: d.assign(pid=d["pid"].where(d.index != 5)), r"Column 'pid' is missing in 1 row"),
    (dict(steps=("configural", "weak")), None, r"`steps` lists 'weak'"),
    (dict(steps=()), None, r"`steps` is empty"),
    (dict(missing="pairwise"), None, r"`missing` is 'pairwise'"),
    (dict(partial=["q9"]), None, r"`partial` names 'q9', which is not one of `items`"),
    (dict(partial=["F =~ q1"]), None, r"marker item"),
    (dict(partial=["G =~ q2"]), None, r"the factor is called 'F'"),
    (dict(partial=["q1 ~~ q2"]), None, r"a covariance of two items"),
    (dict(partial=["q1", "q2", "q3", "q4"]), None, r"not identified in the scalar model"),
])
def test_bad_input_is_refused_in_one_sentence(kwargs, data_change, match):
    d = _small()
    if data_change is not None:
        d = data_change(d)
    args = dict(items=ITEMS, id="pid", wave="wave")
    args.update(kwargs)
    items = args.pop("items")
    with pytest.raises(ModelSpecificationError, match=match) as e:
        longitudinal_invariance(d, items, **args)
    msg = str(e.value)
    assert msg.replace("e.g. ", "").count(". ") == 0 and msg.endswith("."), msg


def test_partial_item_name_frees_all_its_parameters():
    d = _small()
    res = longitudinal_invariance(d, ITEMS, id="pid", wave="wave", partial=["q3"])
    t = res.table.set_index("model")
    # q3's loading, intercept and residual variance are not constrained: one fewer df at each step
    assert t.loc["metric", "df_diff"] == 2 and t.loc["scalar", "df_diff"] == 2 and t.loc["strict", "df_diff"] == 3
    full = longitudinal_invariance(d, ITEMS, id="pid", wave="wave").table.set_index("model")
    assert full.loc["metric", "df_diff"] == 3 and full.loc["strict", "df_diff"] == 4
    assert math.isclose(t.loc["configural", "chisq"], full.loc["configural", "chisq"], rel_tol=1e-10)


# --------------------------------------------------------------------------- reshaping
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cimstats.models.sem.longitudinal import _to_wide  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_reshaping_is_lossless(data):
    """Every value of the long table at a chosen wave lands in its person's <item>_w<wave> column;
    people absent at a wave have no values there; nothing else appears."""
    n = data.draw(st.integers(1, 12))
    waves = data.draw(st.lists(st.sampled_from(["t1", "t2", "t3", 4]), min_size=2, max_size=4, unique=True))
    rows = []
    for i in range(n):
        for w in waves:
            if i == 0 or data.draw(st.booleans()):
                vals = data.draw(st.lists(st.one_of(st.none(), st.floats(-5, 5)), min_size=3, max_size=3))
                if i == 0:  # every wave has an observed value (otherwise the wave is refused)
                    vals[0] = 1.0
                rows.append(dict(pid=f"id{i}", wave=w, a=vals[0], b=vals[1], c=vals[2]))
    long = pd.DataFrame(rows).sample(frac=1.0, random_state=data.draw(st.integers(0, 99)))
    long["wave"] = long["wave"].astype(object)
    for c in "abc":
        long[c] = pd.to_numeric(long[c]).astype(float)
    use = data.draw(st.permutations(waves))
    wide, got_waves, cols, present = _to_wide(long, ["a", "b", "c"], "pid", "wave", use, "F")
    assert got_waves == tuple(use)
    assert sorted(wide["pid"]) == sorted(long["pid"].unique())
    assert list(cols["column"]) == [wide_name(it, w) for w in use for it in "abc"]
    assert int(wide[cols["column"]].notna().sum().sum()) == int(long[["a", "b", "c"]].notna().sum().sum())
    w_of = wide.set_index("pid")
    for r in long.itertuples(index=False):
        for it in "abc":
            v = w_of.loc[r.pid, wide_name(it, r.wave)]
            assert (np.isnan(v) and np.isnan(getattr(r, it))) or v == getattr(r, it)
    k = {w: j for j, w in enumerate(use)}
    for pid, w in zip(long["pid"], long["wave"]):
        assert present[list(wide["pid"]).index(pid), k[w]]
    assert present.sum() == len(long)


def test_string_waves_name_the_columns():
    d = _small()
    d["wave"] = d["wave"].map({0: "baseline", 1: "follow-up"})
    res = longitudinal_invariance(d, ITEMS, id="pid", wave="wave", steps=("configural", "metric"))
    assert res.waves == ("baseline", "follow-up") and res.group == "waves baseline, follow-up"
    assert list(res.wide.columns[:3]) == ["pid", "q1_wbaseline", "q2_wbaseline"]
    assert "F_wfollow_up" in set(res.fits["metric"].tidy()["lhs"])
