"""Figures of fitted demo-study results: content, determinism, accessibility, error paths.

Every figure is drawn from real fits on the demo study (kept small so the file
runs in seconds). The SVG keeps text as text, so the tests parse it as XML and
look for the labels and the estimates that the fitted objects report.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

import cimstats
from cimstats.errors import CimstatsError, RenderError
from cimstats.render import NumberFormat
from cimstats.render.figures import (Figure, caterpillar_plot, caterpillar_table, forest_plot, forest_table,
                                     invariance_plot, invariance_table, path_diagram, path_layout)
from cimstats.render.figures.path import stars

SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_texts(svg: str) -> list[str]:
    """All text content of the SVG (labels, values, titles), as the reader sees it."""
    root = ET.fromstring(svg.encode("utf-8"))
    out = []
    for el in root.iter():
        if el.tag in (f"{SVG_NS}text", f"{SVG_NS}tspan") and el.text:
            out.append(el.text)
    return out


def svg_has(svg: str, text: str) -> bool:
    return any(text in t for t in svg_texts(svg))


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def study():
    return cimstats.datasets.demo_study()


@pytest.fixture(scope="module")
def mechanisms(study):
    """The default plan's LMM and invariance hypotheses (the bootstrap-heavy models left out for speed)."""
    plan = yaml.safe_load(resources.files("cimstats.mechanisms").joinpath("default_plan.yaml").read_text())
    keep = {"knowledge_navigation", "negotiation", "ce_invariance"}
    plan["models"] = {k: v for k, v in plan["models"].items() if k in keep}
    plan["hypotheses"] = [h for h in plan["hypotheses"] if h["model"] in keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cimstats.test_mechanisms(study, plan, n_boot=50, seed=1)


@pytest.fixture(scope="module")
def baseline(study):
    """Baseline patients with network diversity, self-management and collective-efficacy scores."""
    p = study.patients
    p0 = p.loc[p["wave"] == 0].copy()
    a0 = study.alters.loc[study.alters["wave"] == 0]
    p0["diversity"] = p0["patient_id"].map(a0.groupby("patient_id")["tie_type"].nunique()).fillna(0).astype(float)
    heiq = [c for c in p0.columns if c.startswith("heiq_")]
    ce = [f"ce_{i}" for i in range(1, 9)]
    p0[ce] = p0[ce].astype(float)
    p0["sm"] = p0[heiq].astype(float).mean(axis=1)
    p0["ce"] = p0[ce].mean(axis=1)
    p0["eq"] = p0[["eq5d_mo", "eq5d_sc", "eq5d_ua"]].astype(float).mean(axis=1)
    p0["dep"] = p0["area_deprivation"].astype(float)
    p0["poor_control"] = (p0["hba1c_mmol"] > 58).astype(float).where(p0["hba1c_mmol"].notna())
    return p0.reset_index(drop=True)


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


SEM_MODEL = """
CE =~ ce_1 + ce_2 + ce_3 + ce_4
CE ~ a*diversity
sm ~ b*CE + diversity
ce_1 ~~ ce_2
ind := a*b
"""


@pytest.fixture(scope="module")
def sem_fit(baseline):
    return quiet(cimstats.sem, baseline, SEM_MODEL)


@pytest.fixture(scope="module")
def med_fit(baseline):
    return quiet(cimstats.mediation, baseline, x="diversity", m="ce", y="sm", n_boot=100, seed=3)


@pytest.fixture(scope="module")
def modmed_fit(baseline):
    return quiet(cimstats.mediation, baseline, x="diversity", m=["ce", "eq"], y="sm", moderator="dep",
                 moderator_values=[1, 2, 3], n_boot=50, seed=3)


@pytest.fixture(scope="module")
def inv_fit(baseline):
    sub = baseline[baseline["country"].isin(["EN", "NL", "NO"])]
    return quiet(cimstats.invariance, sub, "CE =~ ce_1 + ce_2 + ce_3 + ce_4", group="country")


@pytest.fixture(scope="module")
def lmm_fit(baseline):
    return quiet(cimstats.lmm, baseline, "hba1c_mmol ~ age + (1 | practice_id)")


@pytest.fixture(scope="module")
def glmm_fit(baseline):
    return quiet(cimstats.glmm, baseline, "poor_control ~ age + (1 | practice_id)", family="binomial")


# ----------------------------------------------------------------------------- forest plot
def test_forest_from_mechanism_result(mechanisms):
    t = mechanisms.table
    fig = forest_plot(mechanisms)
    assert isinstance(fig, Figure) and fig.kind == "forest"
    svg = fig.svg()
    texts = " ".join(svg_texts(svg))
    fmt = NumberFormat(decimals=3)
    for r in t.itertuples(index=False):
        assert r.hypothesis_id in texts
        if r.template != "invariance":
            # the value column writes every estimate and interval the mechanism table holds
            assert fmt.estimate_ci(r.estimate, r.ci_lower, r.ci_upper) in texts
    # grouped by mechanism, with readable headings
    for heading in ("Network navigation", "Collective efficacy", "Negotiation within networks"):
        assert heading in texts
    # invariance hypothesis listed with the reason instead of a point
    data = fig.data
    inv = data[data["label"].str.startswith("CE3")]
    assert len(inv) == 1 and not inv["plotted"].iloc[0] and "fit" in inv["note"].iloc[0]
    assert len(data) == len(t)  # no hypothesis left out
    assert data.attrs["null"] == 0.0


def test_forest_groups_rows_together_in_table_order(mechanisms):
    rows = forest_table(mechanisms)
    groups = rows["group"].tolist()
    # each group is contiguous
    assert all(groups.index(g) + groups.count(g) - 1 == len(groups) - 1 - groups[::-1].index(g) for g in set(groups))
    # within a group, the table order is kept
    t = mechanisms.table
    nav = [lab.split(":")[0] for lab, g in zip(rows["label"], groups) if g == "Network navigation"]
    assert nav == [h for h, m in zip(t["hypothesis_id"], t["mechanism"]) if m == "network_navigation"]


def test_forest_deterministic_and_accessible(mechanisms, tmp_path):
    a, b = forest_plot(mechanisms), forest_plot(mechanisms)
    assert a.svg() == b.svg()
    assert a.svg() == a.svg()
    a.save(tmp_path / "f1.svg")
    b.save(tmp_path / "f2.svg")
    assert (tmp_path / "f1.svg").read_bytes() == (tmp_path / "f2.svg").read_bytes()
    svg = a.svg()
    assert "Date" not in svg and "<dc:date>" not in svg
    root = ET.fromstring(svg.encode())
    assert root.get("role") == "img"
    assert root.find(f"{SVG_NS}title").text == a.title
    assert root.find(f"{SVG_NS}desc").text == a.alt_text
    alt = a.alt_text
    assert alt.startswith("Forest plot of") and alt.endswith(".")
    for h in mechanisms.table["hypothesis_id"]:
        assert h in alt
    assert "supported" in alt


def test_forest_png_pdf_and_save(mechanisms, tmp_path):
    fig = forest_plot(mechanisms)
    png = fig.png(dpi=60)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert fig.png(dpi=60) == png
    p = fig.save(tmp_path / "forest.pdf")  # byte-identity of PDFs: test_figures_properties.py
    assert p.read_bytes().startswith(b"%PDF") and b"CreationDate" not in p.read_bytes()
    assert fig.save(tmp_path / "forest.png", dpi=40).read_bytes().startswith(b"\x89PNG")
    assert fig._repr_svg_() == fig.svg()
    assert not list(tmp_path.glob(".*part*"))  # no temporary files left behind


def test_forest_from_tidy_table_ratio_scale():
    t = pd.DataFrame({"term": ["weak tie", "group"], "estimate": [1.8, 0.9], "ci_lower": [1.2, 0.6],
                      "ci_upper": [2.7, 1.4], "scale": ["odds ratio", "odds ratio"]})
    fig = forest_plot(t)
    assert fig.data.attrs["null"] == 1.0 and fig.data.attrs["log_scale"]
    assert "no effect (1)" in fig.alt_text
    assert svg_has(fig.svg(), "weak tie")


def test_forest_from_model_tidy(study):
    p0 = study.patients.loc[study.patients["wave"] == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cimstats.lmm(p0, "hba1c_mmol ~ age + sex + (1 | practice_id)")
    tidy = m.tidy()
    fig = forest_plot(tidy, group=False)
    texts = " ".join(svg_texts(fig.svg()))
    fmt = NumberFormat(decimals=3)
    for r in tidy.itertuples(index=False):
        assert r.term in texts
        assert fmt.estimate_ci(r.estimate, r.ci_lower, r.ci_upper) in texts


def test_forest_error_paths(mechanisms):
    with pytest.raises(RenderError, match=r"`table`.*MechanismResult") as e:
        forest_plot([1, 2, 3])
    assert isinstance(e.value, CimstatsError) and str(e.value).count(". ") == 0
    with pytest.raises(RenderError, match="estimate"):
        forest_plot(pd.DataFrame({"term": ["a"], "value": [1.0]}))
    with pytest.raises(RenderError, match="`label='nope'`"):
        forest_plot(mechanisms, label="nope")
    with pytest.raises(RenderError, match="`group='nope'`"):
        forest_plot(mechanisms, group="nope")
    with pytest.raises(RenderError, match="log_scale"):  # an interval limit at or below zero has no logarithm
        forest_plot(mechanisms.table.assign(ci_lower=-1.0), log_scale=True)
    fig = forest_plot(mechanisms)
    with pytest.raises(RenderError, match=r"\.svg, \.png or \.pdf"):
        fig.save("figure.jpg")
    with pytest.raises(RenderError, match="dpi"):
        fig.png(dpi=0)


# ----------------------------------------------------------------------------- caterpillar plot
@pytest.mark.parametrize("which", ["lmm", "glmm"])
def test_caterpillar_from_mixed_models(which, lmm_fit, glmm_fit):
    model = lmm_fit if which == "lmm" else glmm_fit
    re = model.ranef()
    fig = caterpillar_plot(model)
    d = fig.data
    assert len(d) == len(re) == 64
    # ordered by conditional mode, intervals condval +/- 1.96 condsd
    assert np.all(np.diff(d["condval"].to_numpy()) >= 0)
    merged = d.merge(re, on=["group", "term", "level"], suffixes=("", "_re"))
    np.testing.assert_allclose(merged["condval"], merged["condval_re"])
    z = 1.959963984540054
    np.testing.assert_allclose(d["ci_upper"] - d["condval"], z * d["condsd"], rtol=1e-12)
    svg = fig.svg()
    texts = svg_texts(svg)
    # few levels: every level is named on the axis
    for level in re["level"]:
        assert level in texts
    lowest = re.loc[re["condval"].idxmin(), "level"]
    highest = re.loc[re["condval"].idxmax(), "level"]
    assert lowest in fig.alt_text and highest in fig.alt_text
    assert "64 practice_id random intercepts" in fig.alt_text
    n_ex = int(((d["ci_lower"] > 0) | (d["ci_upper"] < 0)).sum())
    assert f"{n_ex} of 64 with an interval that excludes zero" in fig.alt_text
    if which == "glmm":
        assert "log-odds" in fig.alt_text and "log-odds" in fig.title
    assert caterpillar_plot(model).svg() == svg
    pd.testing.assert_frame_equal(caterpillar_table(model), d)


def test_caterpillar_many_levels_unlabelled_and_small(tmp_path):
    rng = np.random.default_rng(7)
    n = 5000
    re = pd.DataFrame({"group": "patient_id", "term": "(Intercept)", "level": [f"P{i:05d}" for i in range(n)],
                       "condval": rng.normal(size=n), "condsd": rng.uniform(0.2, 0.6, size=n)})
    fig = caterpillar_plot(re, level=0.9)
    svg = fig.svg()
    texts = svg_texts(svg)
    assert not any(t.startswith("P0") for t in texts)  # no level labels
    assert "5,000 levels, ordered" in texts
    assert len(svg) < 300_000  # points and intervals rasterised inside the SVG
    assert fig.svg() == svg
    assert "90% intervals" in fig.alt_text
    assert fig.data["rank"].tolist() == list(range(1, n + 1))


def test_caterpillar_selects_group_and_term(lmm_fit, baseline):
    two = quiet(cimstats.lmm, "ce ~ age + (1 | practice_id) + (1 | area_id)", baseline)
    # the practice variance sits at (numerically) zero here, so draw every panel (a tiny tolerance) to test the selection
    both = caterpillar_plot(two, tol=1e-12)
    assert both.data["group"].nunique() == 2 and "2 panels" in both.alt_text
    one = caterpillar_plot(two, group="area_id", term="(Intercept)")
    assert set(one.data["group"]) == {"area_id"}
    with pytest.raises(RenderError, match=r"`group=` names 'school'.*available: 'practice_id'"):
        caterpillar_plot(lmm_fit, group="school")
    with pytest.raises(RenderError, match=r"`term=` names 'age'"):
        caterpillar_plot(lmm_fit, term="age")


def test_caterpillar_error_paths(lmm_fit, sem_fit):
    with pytest.raises(RenderError, match=r"`caterpillar_plot\(\)` got `result` of type SEMResult.*LmmResult"):
        caterpillar_plot(sem_fit)
    with pytest.raises(RenderError, match="condsd"):
        caterpillar_plot(pd.DataFrame({"group": ["g"], "term": ["(Intercept)"], "level": ["a"], "condval": [0.1]}))
    with pytest.raises(RenderError, match="level"):
        caterpillar_plot(lmm_fit, level=95)


# ----------------------------------------------------------------------------- path diagram
def _fmt2(x):
    return NumberFormat(decimals=2).estimate(x)


def test_path_diagram_sem_every_estimate_drawn(sem_fit):
    fig = path_diagram(sem_fit)
    texts = svg_texts(fig.svg())
    joined = " ".join(texts)
    tidy = sem_fit.tidy()
    drawn = tidy[tidy["op"].isin(["=~", "~"]) | ((tidy["op"] == "~~") & (tidy["lhs"] != tidy["rhs"]))]
    assert len(fig.data) == len(drawn)
    for r in drawn.itertuples(index=False):
        fixed = r.std_error == 0
        expected = _fmt2(r.estimate) + ("" if fixed else stars(r.p_value))
        assert expected in texts, (r.lhs, r.op, r.rhs, expected)
    # variables: latent as ellipse, observed as rectangles, all named
    nodes, edges, notes = path_layout(sem_fit)
    assert set(nodes.loc[nodes["shape"] == "ellipse", "name"]) == {"CE"}
    assert set(nodes.loc[nodes["shape"] == "rect", "name"]) == {"ce_1", "ce_2", "ce_3", "ce_4", "diversity", "sm"}
    for name in nodes["name"]:
        assert name in texts
    # defined parameter listed under the diagram
    ind = tidy[tidy["op"] == ":="].iloc[0]
    assert f"ind := a*b: {_fmt2(ind.estimate)}{stars(ind.p_value)}" in joined
    # alt text names every path with its estimate
    for r in edges.itertuples(index=False):
        assert r.text.replace("\n", " ") in fig.alt_text


def test_path_diagram_layered_layout(sem_fit):
    nodes, edges, _ = path_layout(sem_fit)
    x = dict(zip(nodes["name"], nodes["x"]))
    # exogenous left -> mediator -> outcome right
    assert x["diversity"] < x["CE"] < x["sm"]
    # indicators beside (here above) their factor, never on top of another node
    for i in ("ce_1", "ce_2", "ce_3", "ce_4"):
        assert nodes.loc[nodes["name"] == i, "role"].item() == "indicator"
    boxes = nodes[["x", "y", "width", "height"]].to_numpy()
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            xi, yi, wi, hi = boxes[i]
            xj, yj, wj, hj = boxes[j]
            assert abs(xi - xj) >= (wi + wj) / 2 or abs(yi - yj) >= (hi + hj) / 2
    kinds = edges.set_index(["source", "target"])["kind"]
    assert kinds[("CE", "ce_1")] == "loading" and kinds[("diversity", "CE")] == "regression"
    assert kinds[("ce_1", "ce_2")] == "covariance"


def test_path_diagram_standardized_and_residuals(sem_fit):
    fig = path_diagram(sem_fit, standardized=True, residuals=True)
    texts = svg_texts(fig.svg())
    std = sem_fit.standardized_solution()
    std = std[std["op"].isin(["=~", "~", "~~"])]
    for r in std.itertuples(index=False):
        if r.op == "~~" and r.lhs == r.rhs and r.std_error == 0:
            expected = _fmt2(r.estimate)
        else:
            expected = _fmt2(r.estimate) + stars(r.p_value)
        assert expected in texts, (r.lhs, r.op, r.rhs)
    assert (fig.data["kind"] == "variance").sum() == ((std["op"] == "~~") & (std["lhs"] == std["rhs"])).sum()
    assert "standardized" in fig.title and "standardized estimates" in fig.alt_text
    assert any("Standardized estimates (std.all)" in t for t in texts)


def test_path_diagram_intervals(sem_fit):
    fig = path_diagram(sem_fit, intervals=True)
    texts = " ".join(svg_texts(fig.svg()))
    fmt = NumberFormat(decimals=2)
    reg = sem_fit.tidy().query("op == '~'")
    for r in reg.itertuples(index=False):
        assert fmt.ci(r.ci_lower, r.ci_upper) in texts


def test_path_diagram_mediation(med_fit):
    fig = path_diagram(med_fit)
    texts = svg_texts(fig.svg())
    joined = " ".join(texts)
    t = med_fit.tidy()
    for term in ("a", "b", "c'"):
        r = t.set_index("term").loc[term]
        assert _fmt2(r.estimate) + stars(r.p_value) in texts
    for term in ("indirect", "direct", "total"):
        r = t.set_index("term").loc[term]
        fmt3 = NumberFormat(decimals=3)
        assert f"{term}: {fmt3.estimate(r.estimate)} {fmt3.ci(r.ci_lower, r.ci_upper)}" in joined
    nodes, edges, _ = path_layout(med_fit)
    x = dict(zip(nodes["name"], nodes["x"]))
    assert x["diversity"] < x["ce"] < x["sm"]
    assert set(zip(edges["source"], edges["target"])) == {("diversity", "ce"), ("ce", "sm"), ("diversity", "sm")}
    assert fig.alt_text.startswith("Path diagram of a mediation model of diversity on sm through ce")
    assert "bootstrap" in joined


def test_path_diagram_moderated_mediation(modmed_fit):
    nodes, edges, notes = path_layout(modmed_fit)
    mod = edges[edges["kind"] == "moderation"]
    assert set(mod["source"]) == {"dep"}
    assert set(mod["target"]) == {"diversity->ce", "diversity->eq"}
    t = modmed_fit.tidy().set_index("term")
    texts = svg_texts(path_diagram(modmed_fit).svg())
    for term in ("a1_xw", "a2_xw", "a1", "a2", "b1", "b2", "c'"):
        assert _fmt2(t.loc[term, "estimate"]) + stars(t.loc[term, "p_value"]) in texts
    assert any("index_of_moderated_mediation[ce]" in n for n in notes)
    assert "moderated by dep" in path_diagram(modmed_fit).alt_text


def test_path_diagram_deterministic_and_formats(sem_fit, med_fit, tmp_path):
    for res in (sem_fit, med_fit):
        a, b = path_diagram(res), path_diagram(res)
        assert a.svg() == b.svg()
        assert a.png(dpi=50) == b.png(dpi=50)
        out = a.save(tmp_path / "path.svg")
        ET.parse(out)


def test_path_diagram_multigroup(inv_fit):
    fit = inv_fit.fits["metric"]
    fig = path_diagram(fit, group="NL")
    assert "group NL" in fig.title and "for group NL" in fig.alt_text
    tidy = fit.tidy()
    nl = tidy[(tidy["group_label"] == "NL") & (tidy["op"] == "=~")]
    texts = svg_texts(fig.svg())
    for r in nl.itertuples(index=False):
        assert _fmt2(r.estimate) + ("" if r.std_error == 0 else stars(r.p_value)) in texts
    joined = " ".join(texts)
    assert "Group NL of 3" in joined
    n_int = int(((tidy["op"] == "~1") & (tidy["group_label"] == "NL")).sum())
    assert n_int > 0 and f"{n_int} intercepts (~1) not drawn" in joined
    with pytest.raises(RenderError, match=r"`group='XX'`.*available: EN, NL, NO"):
        path_diagram(fit, group="XX")


def test_path_diagram_from_parameter_table(sem_fit):
    tidy = sem_fit.tidy()
    fig = path_diagram(tidy)
    assert set(fig.data["kind"]) == {"loading", "regression", "covariance"}


def test_path_diagram_error_paths(med_fit, lmm_fit):
    with pytest.raises(RenderError, match=r"`path_diagram\(\)` got `result` of type LmmResult.*SEMResult.*MediationResult"):
        path_diagram(lmm_fit)
    with pytest.raises(RenderError, match="standardized=True"):
        path_diagram(med_fit, standardized=True)
    with pytest.raises(RenderError, match="lhs, op"):
        path_diagram(pd.DataFrame({"term": ["x"]}))


# ----------------------------------------------------------------------------- invariance plot
def test_invariance_plot_demo(inv_fit):
    fig = invariance_plot(inv_fit)
    t = inv_fit.table
    d = fig.data
    assert d["model"].tolist() == t["model"].tolist()
    texts = " ".join(svg_texts(fig.svg()))
    fmt = NumberFormat(decimals=3)
    for r in t.iloc[1:].itertuples(index=False):
        pv = fmt.p(r.p_diff)
        ptxt = f"p {pv}" if pv.startswith("<") else f"p = {pv}"
        assert ptxt in fig.alt_text
        assert ptxt in texts
        assert f"Δχ²({int(r.df_diff)}) = {fmt.estimate(r.chisq_diff, 2)}" in texts
    assert "cut-offs −0.010 for CFI, supplemented by +0.015 for RMSEA" in fig.alt_text
    assert "−0.010" in texts and "+0.015" in texts and "cut-off" in texts
    # the demo study plants invariant measurement: every step within the cut-offs
    assert (d["holds"].iloc[1:] == 1).all()
    assert fig.alt_text.endswith(f"invariance holds up to the {t['model'].iloc[-1]} model.")
    pd.testing.assert_frame_equal(invariance_table(inv_fit), d)
    assert "across country" in fig.title
    assert invariance_plot(inv_fit).svg() == fig.svg()


def test_invariance_plot_flags_planted_non_invariance():
    rng = np.random.default_rng(11)
    n = 600
    f = rng.normal(size=n)
    g = np.repeat(["A", "B"], n // 2)
    lam = np.where(g == "A", 0.8, 0.8)
    d = pd.DataFrame({f"y{i}": lam * f + rng.normal(scale=0.6, size=n) for i in range(1, 5)})
    # loading of y4 differs strongly between groups, and y3's intercept too
    d["y4"] = np.where(g == "A", 0.9, 0.15) * f + rng.normal(scale=0.6, size=n)
    d["y3"] = d["y3"] + np.where(g == "A", 0.0, 1.0)
    d["grp"] = g
    inv = quiet(cimstats.invariance, d, "F =~ y1 + y2 + y3 + y4", group="grp", steps=("configural", "metric", "scalar"))
    fig = invariance_plot(inv)
    held = dict(zip(fig.data["model"], fig.data["holds"]))
    assert held["metric"] == 0 and held["scalar"] == 0
    assert fig.alt_text.endswith("invariance holds up to the configural model.")
    assert "fails by Chen's rule" in fig.alt_text and "p <0.001" in fig.alt_text


def test_invariance_table_follows_chens_rule():
    """An RMSEA rise alone does not reject a level; a CFI drop supplemented by RMSEA or SRMR does."""
    base = dict(npar=1.0, df=1.0, chisq=1.0, chisq_diff=1.0, df_diff=1.0, p_diff=0.5, tli=1.0, aic=0.0, bic=0.0)
    rows = [dict(model="configural", cfi=1.000, rmsea=0.000, srmr=0.030, delta_cfi=np.nan, delta_rmsea=np.nan),
            dict(model="metric", cfi=0.995, rmsea=0.019, srmr=0.035, delta_cfi=-0.005, delta_rmsea=0.019),
            dict(model="scalar", cfi=0.983, rmsea=0.022, srmr=0.050, delta_cfi=-0.012, delta_rmsea=0.003),
            dict(model="strict", cfi=0.975, rmsea=0.023, srmr=0.052, delta_cfi=-0.008, delta_rmsea=0.001)]
    t = pd.DataFrame([{**base, **r} for r in rows])
    held = invariance_table(t)["holds"].tolist()
    assert np.isnan(held[0])
    # metric: RMSEA +0.019 alone -> holds; scalar: CFI -0.012 with SRMR +0.015 (> 0.010) -> fails
    assert held[1:] == [1.0, 0.0, 1.0]


def test_invariance_plot_error_paths(inv_fit, sem_fit):
    with pytest.raises(RenderError, match=r"`invariance_plot\(\)` got `result` of type SEMResult.*InvarianceResult"):
        invariance_plot(sem_fit)
    with pytest.raises(RenderError, match="at least two steps"):
        invariance_plot(inv_fit.table.iloc[:1])
    with pytest.raises(RenderError, match="delta_cfi"):
        invariance_plot(inv_fit.table.drop(columns=["delta_cfi"]))


def test_top_level_exports():
    for name in ("forest_plot", "caterpillar_plot", "path_diagram", "invariance_plot", "Figure"):
        assert getattr(cimstats, name) is getattr(cimstats.render.figures, name)
        assert getattr(cimstats.render, name) is getattr(cimstats.render.figures, name)


def test_forest_marks_link_scale_rows(mechanisms):
    t = mechanisms.table.copy()
    t.loc[0, "template"] = "glmm"
    t.loc[0, "model"] = "GLMM (binomial, logit): illness_work ~ tie_type * area_deprivation"
    rows = forest_table(t)
    assert rows.loc[rows["label"].str.startswith(t.loc[0, "hypothesis_id"]), "label"].item().endswith("(log-odds)")
    assert not rows["label"].iloc[1:].str.contains("log-odds").any()


def test_mechanism_figures(mechanisms):
    from cimstats.render.figures import mechanism_figures

    from cimstats.render.figures import random_effect_variances

    figs = mechanism_figures(mechanisms)
    fitted = mechanisms.models.loc[mechanisms.models["status"] == "fitted", "model_id"].tolist()
    # a mixed model whose random-effect variance was estimated at zero has nothing to plot
    at_zero = [m for m, fit in mechanisms.fits.items() if hasattr(fit, "varcorr")
               and random_effect_variances(fit)["at_zero"].all()]
    assert at_zero == []  # none of these demo fits is singular (the alter-level GLMM is: see test_pipeline_report)
    assert list(figs)[0] == "forest"
    assert {"caterpillar_knowledge_navigation", "invariance_ce_invariance"} <= set(figs)
    assert "caterpillar_negotiation" in figs
    assert len(figs) == 1 + len(fitted) - len(at_zero)
    assert figs["caterpillar_knowledge_navigation"].data["group"].eq("practice_id").all()
    for fig in figs.values():
        ET.fromstring(fig.svg().encode())
    with pytest.raises(RenderError, match="MechanismResult"):
        mechanism_figures(mechanisms.table)


def test_path_diagram_within_between(baseline):
    fit = quiet(cimstats.mediation, baseline, x="diversity", m="ce", y="sm", cluster="practice_id",
                within_between=True, n_boot=50, seed=3)
    fig = path_diagram(fit)
    texts = svg_texts(fig.svg())
    t = fit.tidy().set_index("term")
    for term in ("a", "b", "c'"):
        w, b = t.loc[f"{term}_within"], t.loc[f"{term}_between"]
        expected = (f"within: {_fmt2(w.estimate)}{stars(w.p_value)}\nbetween: {_fmt2(b.estimate)}"
                    f"{stars(b.p_value)}")
        assert expected in set(fig.data["text"])
        assert f"within: {_fmt2(w.estimate)}{stars(w.p_value)}" in " ".join(texts)
    assert len(fig.data) == 3


def test_caterpillar_zero_variance_said_in_words():
    re = pd.DataFrame({"group": "practice_id", "term": "(Intercept)", "level": [f"P{i}" for i in range(10)],
                       "condval": 0.0, "condsd": 0.0})
    # without variance components, a panel whose modes and SDs are all zero is left out: nothing to plot
    with pytest.raises(RenderError, match=r"estimated at zero \(singular fit\)"):
        caterpillar_plot(re)
    other = re.assign(group="area_id", condval=np.linspace(-1, 1, 10), condsd=0.2)
    fig = caterpillar_plot(pd.concat([re, other], ignore_index=True))
    assert set(fig.data["group"]) == {"area_id"}
    assert "estimated at zero (singular fit)" in fig.alt_text
    assert any("singular fit" in t for t in svg_texts(fig.svg()))
