"""Speed of table rendering and .qdpx import, as ratios against peers measured in the same run.

Peers: pandas' own writers for the same table (DataFrame.to_html, to_latex,
to_excel with openpyxl, to_markdown when tabulate is installed), and for the
QDA import a bare lxml parse of project.qde plus slicing of the selections
(the least any reader must do). Run from the repository root:

    python benchmarks/bench_integrate_render.py [path/to/project.qdpx]
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cimstats.integrate import read_qdpx  # noqa: E402
from cimstats.render import TableSpec, to_docx, to_html, to_latex, to_markdown, to_text, to_xlsx  # noqa: E402


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame({
        "term": [f"term {k} & <x>" for k in range(n)],
        "estimate": rng.normal(size=n), "ci_lower": rng.normal(size=n) - 1, "ci_upper": rng.normal(size=n) + 1,
        "p_value": rng.uniform(size=n), "n": rng.integers(100, 5000, n),
    })
    spec = TableSpec.from_frame(df, title="Benchmark", kinds={"p_value": "p_value", "n": "count"})
    print(f"Rendering a {n}-row x 6-column table (best of 5):")
    print(f"{'format':10s} {'cimstats':>10s} {'pandas':>10s} {'ratio':>7s}")
    peers = {
        "html": (lambda: to_html(spec), lambda: df.to_html()),
        "xlsx": (lambda: to_xlsx(spec), lambda: df.to_excel(io.BytesIO(), engine="openpyxl")),
        "docx": (lambda: to_docx(spec), None),
        "markdown": (lambda: to_markdown(spec), None),
        "text": (lambda: to_text(spec), lambda: df.to_string()),
        "latex": (lambda: to_latex(spec), None),
    }
    try:
        import jinja2  # noqa: F401

        peers["latex"] = (peers["latex"][0], lambda: df.to_latex())
    except ImportError:
        pass
    try:
        import tabulate  # noqa: F401

        peers["markdown"] = (peers["markdown"][0], lambda: df.to_markdown())
    except ImportError:
        pass
    for name, (ours, theirs) in peers.items():
        a = best(ours)
        if theirs is None:
            print(f"{name:10s} {a * 1e3:9.1f}ms {'n/a':>10s} {'':>7s}")
        else:
            b = best(theirs)
            print(f"{name:10s} {a * 1e3:9.1f}ms {b * 1e3:9.1f}ms {a / b:6.2f}x")

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).resolve().parents[2] / "shared" / "testdata" / "qdpx" / "vaccine-scepticism-nvivo.qdpx")
    if not path.exists():
        print(f"(no .qdpx file at {path}; pass one as the first argument)")
        return

    def bare():
        from lxml import etree

        with zipfile.ZipFile(path) as z:
            root = etree.fromstring(z.read("project.qde"))
            texts = {}
            for s in root.iter("{urn:QDA-XML:project:1.0}TextSource"):
                member = "Sources/" + s.get("plainTextPath", "").replace("internal://", "")
                if member in z.namelist():
                    texts[s.get("guid")] = z.read(member).decode("utf-8-sig")
                for sel in s.iter("{urn:QDA-XML:project:1.0}PlainTextSelection"):
                    t = texts.get(s.get("guid"), "")
                    t[int(sel.get("startPosition")):int(sel.get("endPosition"))]

    a, b = best(lambda: read_qdpx(path), 3), best(bare, 3)
    print(f"\nread_qdpx on {path.name}: {a * 1e3:.0f} ms; bare lxml parse + slicing: {b * 1e3:.0f} ms; "
          f"ratio {a / b:.2f}x")


if __name__ == "__main__":
    main()
