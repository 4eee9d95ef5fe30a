"""Figure properties that hold for any input: text is escaped and kept, output is deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimstats.errors import RenderError
from cimstats.render.figures import caterpillar_plot, forest_plot

SVG_NS = "{http://www.w3.org/2000/svg}"
SRC = Path(__file__).resolve().parents[1] / "src"

# printable text without XML-illegal control characters; labels are data and may hold anything else
label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x00"),
    min_size=1, max_size=30,
).filter(lambda s: s.strip() == s and s.strip() != "")


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    return [el.text for el in root.iter() if el.tag in (f"{SVG_NS}text", f"{SVG_NS}tspan") and el.text]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=st.lists(label_text, min_size=1, max_size=4, unique=True),
       est=st.lists(st.floats(-5, 5, allow_nan=False), min_size=4, max_size=4))
def test_forest_labels_escaped_and_kept(labels, est):
    n = len(labels)
    e = np.array(est[:n])
    t = pd.DataFrame({"label": labels, "estimate": e, "ci_lower": e - 0.5, "ci_upper": e + 0.5})
    fig = forest_plot(t)
    svg = fig.svg()
    texts = _texts(svg)  # parses: every label was escaped
    for lab in labels:
        # matplotlib writes a label's text as it is (no math parsing of "$", no markup)
        assert lab in texts
        assert lab in fig.alt_text
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.find(f"{SVG_NS}desc").text == fig.alt_text


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 120), seed=st.integers(0, 2**16))
def test_caterpillar_order_and_intervals(n, seed):
    rng = np.random.default_rng(seed)
    re = pd.DataFrame({"group": "practice_id", "term": "(Intercept)", "level": [f"L{i}" for i in range(n)],
                       "condval": rng.normal(size=n), "condsd": rng.uniform(0.01, 1.0, size=n)})
    fig = caterpillar_plot(re)
    d = fig.data
    assert sorted(d["level"]) == sorted(re["level"])  # every level drawn once
    assert np.all(np.diff(d["condval"].to_numpy()) >= 0)
    assert np.all(d["ci_lower"] <= d["condval"]) and np.all(d["condval"] <= d["ci_upper"])


_SCRIPT = """
import hashlib, numpy as np, pandas as pd
from cimstats.render.figures import caterpillar_plot, forest_plot
t = pd.DataFrame({"term": ["diversity", "weak ties", "group"], "estimate": [0.1, -0.03, 0.2],
                  "ci_lower": [0.05, -0.1, 0.1], "ci_upper": [0.15, 0.04, 0.3],
                  "verdict": ["supported", "not supported", "contrary"]})
rng = np.random.default_rng(5)
re = pd.DataFrame({"group": "g", "term": "(Intercept)", "level": [f"L{i}" for i in range(2500)],
                   "condval": rng.normal(size=2500), "condsd": 0.4})
f, c = forest_plot(t), caterpillar_plot(re)
parts = [f.svg().encode(), f.png(dpi=40), f.pdf(), c.svg().encode()]
print(" ".join(hashlib.sha256(p).hexdigest() for p in parts))
"""


def test_byte_identical_across_processes(capsys):
    """Same input, a fresh interpreter with another hash seed: identical SVG, PNG and PDF bytes."""
    env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONHASHSEED="12345", MPLBACKEND="agg")
    r = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    exec(compile(_SCRIPT, "<figures>", "exec"), {})
    here = capsys.readouterr().out.strip()
    assert r.stdout.strip() == here


def test_html_figure_is_self_contained():
    t = pd.DataFrame({"term": ["a & b"], "estimate": [0.1], "ci_lower": [0.0], "ci_upper": [0.2]})
    fig = forest_plot(t, title="Effects <main>")
    html = fig.html()
    assert html.startswith('<figure class="cimstats-figure cimstats-forest">')
    assert "<figcaption>Effects &lt;main&gt;</figcaption>" in html
    assert "http://" not in html.replace("http://www.w3.org", "").replace("http://purl.org", "").replace(
        "http://creativecommons.org", "")
    assert "<?xml" not in html


def test_save_leaves_previous_file_on_failure(tmp_path):
    t = pd.DataFrame({"term": ["a"], "estimate": [0.1], "ci_lower": [0.0], "ci_upper": [0.2]})
    fig = forest_plot(t)
    out = tmp_path / "fig.svg"
    out.write_text("previous")
    with pytest.raises(RenderError):
        fig.save(tmp_path / "missing-folder" / "fig.svg")
    assert out.read_text() == "previous"
    fig.save(out)
    assert out.read_text() == fig.svg()
