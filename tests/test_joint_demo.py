"""The demo study end to end: its theme codebook, coded excerpts and fitted results give all five displays."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from cimstats.integrate import DISPLAY_KINDS, joint_display, read_theme_codebook, read_excerpts

datasets = pytest.importorskip("cimstats.datasets")


@pytest.fixture(scope="module")
def demo():
    study = datasets.demo_study(seed=1)
    p = study.patients.loc[study.patients["wave"] == 0].copy()
    a = study.alters.loc[study.alters["wave"] == 0]
    size = a.groupby("patient_id").size()
    diversity = a.groupby("patient_id")["tie_type"].nunique()
    p["network_size"] = p["patient_id"].map(size).fillna(0).astype(int)
    p["network_diversity"] = p["patient_id"].map(diversity).fillna(0).astype(int)
    p["collective_efficacy"] = p[[f"ce_{k}" for k in range(1, 9)]].mean(axis=1)
    p["self_management"] = p[[f"heiq_smi_{k}" for k in range(1, 7)]].mean(axis=1)
    return study, p, a


def _fit(formula, data, term, *, expected_sign, hypothesis_id, mechanism, statement, model="OLS", logit=False):
    import statsmodels.formula.api as smf

    d = data.dropna()
    fit = smf.logit(formula, data=d).fit(disp=0) if logit else smf.ols(formula, data=d).fit()
    est, (lo, hi), p = fit.params[term], fit.conf_int().loc[term], fit.pvalues[term]
    if p < 0.05 and np.sign(est) == expected_sign:
        verdict = "supported"
    elif p < 0.05:
        verdict = "contrary"
    else:
        verdict = "not supported"
    return {"hypothesis_id": hypothesis_id, "mechanism": mechanism, "statement": statement, "estimate": est,
            "ci_lower": lo, "ci_upper": hi, "p_value": p, "model": model, "n": int(fit.nobs), "verdict": verdict,
            "theme_ids": "", "effect_label": "OR" if logit else "b"}


@pytest.fixture(scope="module")
def mechanism_table(demo):
    """A mechanism table in the documented contract, filled from models fitted to the demo data."""
    _, p, a = demo
    rows = [
        _fit("collective_efficacy ~ network_diversity + C(country)", p, "network_diversity", expected_sign=1,
             hypothesis_id="H1", mechanism="network_navigation",
             statement="More diverse networks go with more collective efficacy"),
        _fit("self_management ~ collective_efficacy + network_diversity + C(country)", p, "collective_efficacy",
             expected_sign=1, hypothesis_id="H2", mechanism="collective_efficacy",
             statement="Collective efficacy goes with better self-management"),
    ]
    weak = a.merge(p[["patient_id", "area_deprivation", "country"]], on="patient_id")
    weak = weak.assign(weak_or_group=weak["tie_type"].isin(["weak_tie", "group"]).astype(int),
                       most_deprived=(weak["area_deprivation"] == 1).astype(int))
    weak = weak.loc[weak["illness_work"].notna()]
    import statsmodels.formula.api as smf

    fit = smf.logit("illness_work ~ weak_or_group * most_deprived + C(country)", data=weak).fit(disp=0)
    term = "weak_or_group:most_deprived"
    lo, hi = fit.conf_int().loc[term]
    rows.append({"hypothesis_id": "H3", "mechanism": "network_navigation",
                 "statement": "Weak ties and groups do more illness work in the most deprived areas",
                 "estimate": np.exp(fit.params[term]), "ci_lower": np.exp(lo), "ci_upper": np.exp(hi),
                 "p_value": fit.pvalues[term], "model": "logistic (no clustering)", "n": int(fit.nobs),
                 "verdict": "supported" if fit.pvalues[term] < 0.05 and fit.params[term] > 0 else "not supported",
                 "theme_ids": "T2", "effect_label": "OR"})
    rows.append({"hypothesis_id": "H4", "mechanism": "negotiation", "statement": "Role re-allocation buffers decline",
                 "estimate": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "p_value": np.nan, "model": None,
                 "n": np.nan, "verdict": "not testable", "verdict_reason": "needs the mechanisms stage",
                 "theme_ids": "T3", "effect_label": None})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def codebook():
    path = resources.files("cimstats.datasets") / "data" / "themes.yaml"
    if not path.is_file():
        pytest.skip("the demo theme codebook is not in this checkout")
    return read_theme_codebook(path)


def test_demo_codebook_reads(codebook):
    assert codebook.themes.loc[codebook.themes["level"] == 0, "theme_id"].tolist() == ["T1", "T2", "T3"]
    assert set(codebook.mechanisms["mechanism_id"]) == {"network_navigation", "negotiation", "collective_efficacy"}
    assert set(codebook.elements["element_id"]) == {"timing", "trust", "legitimising"}
    assert len(codebook.exemplars) == 28 and codebook.exemplars["case_id"].notna().all()


def test_demo_all_displays_all_formats(demo, mechanism_table, codebook, tmp_path):
    import docx
    import openpyxl

    _, p, _ = demo
    excerpts = read_excerpts(datasets.coded_excerpts())
    assert set(excerpts["theme_id"]) == {"T1", "T2", "T3"}
    interviewed = p.loc[p["patient_id"].isin(excerpts["case_id"])]
    common = dict(codebook=codebook)
    displays = {
        "side_by_side": joint_display(mechanism_table, kind="side_by_side", **common),
        "statistics_by_theme": joint_display(mechanism_table, kind="statistics_by_theme", **common),
        "themes_by_group": joint_display(kind="themes_by_group", excerpts=excerpts, cases=interviewed,
                                         group_by="area_deprivation", group_labels={1: "most deprived"}, **common),
        "convergence": joint_display(mechanism_table, kind="convergence", **common),
        "case_oriented": joint_display(kind="case_oriented", excerpts=excerpts, cases=interviewed,
                                       profile={"network_size": "Network size", "network_diversity": "Tie types",
                                                "collective_efficacy": "Collective efficacy",
                                                "self_management": "Self-management"}, **common),
    }
    assert list(displays) == list(DISPLAY_KINDS)
    # H1 and H2 list no theme: linked by their mechanism; the assumed direction is written in the notes
    sbs = displays["side_by_side"]
    links = sbs.meta_inferences.set_index(["hypothesis_id", "theme_id"])["link"]
    assert links[("H1", "T1")] == "shared mechanism" and links[("H1", "T2")] == "shared mechanism"
    assert links[("H3", "T2")] == "mechanism table"
    # the demo codebook states each theme's direction, so none is assumed
    assert not any("taken to be" in n for n in sbs.table.notes)
    stated = codebook.themes.set_index("theme_id")["direction"]
    assert stated[["T1", "T2", "T3"]].tolist() == ["supports", "supports", "mixed"]
    h4 = sbs.meta_inferences.loc[sbs.meta_inferences["hypothesis_id"] == "H4"]
    assert (h4["meta_inference"] == "silence").all()
    # themes by group: every count is below 5 in the small interview sample, so all are suppressed
    tbg = displays["themes_by_group"]
    assert tbg.suppression.primary.any()
    shown = tbg.spec.loc[tbg.spec["suppressed"] == ""]
    assert (shown["n_cases"].isin([0]) | (shown["n_cases"] >= 5)).all()
    # one row per interviewed and surveyed participant
    assert displays["case_oriented"].table.n_body_rows == interviewed["patient_id"].nunique()
    assert displays["case_oriented"].options["n_interviewed_not_surveyed"] == \
        excerpts.loc[~excerpts["case_id"].isin(p["patient_id"]), "case_id"].nunique()
    for kind, jd in displays.items():
        for ext in ("docx", "xlsx", "html", "tex", "md", "txt"):
            out = tmp_path / f"{kind}.{ext}"
            jd.render(out)
            assert out.stat().st_size > 200
        d = docx.Document(str(tmp_path / f"{kind}.docx"))
        assert len(d.tables[0].rows) == jd.table.n_header_rows + jd.table.n_body_rows
        ws = openpyxl.load_workbook(tmp_path / f"{kind}.xlsx").active
        assert ws["A1"].value.startswith(jd.table.title)
