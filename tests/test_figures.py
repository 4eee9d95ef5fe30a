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
from cimstats.render.figures import Figure, forest_plot, forest_table

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
    keep = {"ego_navigation", "negotiation", "ce_invariance"}
    plan["models"] = {k: v for k, v in plan["models"].items() if k in keep}
    plan["hypotheses"] = [h for h in plan["hypotheses"] if h["model"] in keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cimstats.test_mechanisms(study, plan, n_boot=50, seed=1)


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
    p = fig.save(tmp_path / "forest.pdf")
    assert p.read_bytes().startswith(b"%PDF")
    assert fig.save(tmp_path / "forest.pdf").read_bytes() == p.read_bytes()
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
    with pytest.raises(RenderError, match="log_scale"):
        forest_plot(mechanisms, log_scale=True)
    fig = forest_plot(mechanisms)
    with pytest.raises(RenderError, match=r"\.svg, \.png or \.pdf"):
        fig.save("figure.jpg")
    with pytest.raises(RenderError, match="dpi"):
        fig.png(dpi=0)
