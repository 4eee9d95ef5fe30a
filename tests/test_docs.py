"""The documentation site builds with warnings as errors, and its pages say what exists.

The build runs the site's hook (docs/_hooks/), which generates the API reference for
every public package, the command-line reference, the mechanism hypotheses, the
data-dictionary format and the validation tables (every reference case fitted again).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("mkdocs", reason="the documentation tools come with the test extra: pip install -e '.[test]'")
pytest.importorskip("mkdocstrings", reason="the documentation tools come with the test extra: pip install -e '.[test]'")

DOCS = ROOT / "docs"
PAGES = ["index.html", "getting-started/index.html", "tutorial/index.html", "data-dictionary/index.html",
         "mechanisms/index.html", "cli/index.html", "validation/index.html", "reference/index.html"]
HOW_TO = ["inspect", "harmonise", "scales", "networks", "three-level-model", "glmm", "sem", "mediation",
          "survey-designs", "mechanisms", "joint-display", "run-plan", "scale-out", "multiple-imputation"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _text(path: Path) -> str:
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_key_pages_exist(site):
    for page in PAGES + [f"how-to/{h}/index.html" for h in HOW_TO]:
        assert (site / page).stat().st_size > 1000, page


def test_api_reference_covers_every_public_package_and_verb(site):
    import cimstats

    html = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    packages = [p.name for p in (ROOT / "src" / "cimstats").iterdir()
                if p.is_dir() and (p / "__init__.py").exists() and not p.name.startswith("_") and p.name != "cli"]
    for name in packages:
        assert (site / "reference" / name / "index.html").exists(), name
    for name, module in cimstats._EXPORTS.items():
        obj = getattr(cimstats, name)
        if callable(obj) and not isinstance(obj, type(cimstats)):
            qual = f"{obj.__module__}.{obj.__qualname__}"
            # documented under the package that re-exports it or the module that defines it
            assert re.search(rf'id="cimstats\.[\w.]*\.{re.escape(obj.__qualname__)}"', html), (name, qual)


def test_validation_tables_computed_against_each_reference_tool(site):
    text = _text(site / "validation" / "index.html")
    for tool in ("lme4", "lmerTest", "glmer", "lavaan", "semTools", "psych", "multilevel"):
        assert tool in text, tool
    for section in ("Two-level structural equation models", "sampling weights", "Agreement and reliability"):
        assert section in text, section
    rows = re.findall(r"<tr>(.*?)</tr>", (site / "validation" / "index.html").read_text(), re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in rows]
    cells = [c for c in cells if len(c) == 6]
    assert len(cells) > 100
    # linear mixed, SEM and mediation point estimates agree to at least 4 significant digits
    # (the GLMM approximations are shown on the page as they are)
    estimates = [c for c in cells if re.search(r"fixed effects|^estimates|ML estimates", c[1])]
    low = [c for c in estimates if "nAGQ" not in c[0] and int(c[5]) < 4]
    assert len(estimates) > 30 and not low, low


def test_generated_reference_pages_follow_the_sources(site):
    import yaml

    plan = yaml.safe_load((ROOT / "src" / "cimstats" / "mechanisms" / "default_plan.yaml").read_text())
    text = _text(site / "mechanisms" / "index.html")
    for h in plan["hypotheses"]:
        assert h["id"] in text
    from cimstats.cli.main import COMMANDS

    cli = _text(site / "cli" / "index.html")
    for name in COMMANDS:
        assert f"cimstats {name}" in cli, name
    dd = _text(site / "data-dictionary" / "index.html")
    for table in ("studies", "variables", "categories", "mappings"):
        assert f"{table}.csv" in dd


def test_how_to_pages_embed_the_tested_examples(site):
    tested = {p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")}
    embedded = set()
    for page in (DOCS / "how-to").glob("*.md"):
        embedded |= set(re.findall(r'--8<-- "examples/([\w]+\.py)"', page.read_text()))
    assert embedded == tested, tested ^ embedded
    text = _text(site / "how-to" / "mediation" / "index.html")
    assert "n_boot" in text and "moderated_paths" in text


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_code_in_the_pages_names_only_what_exists(page):
    """Every cimstats name the pages' Python blocks import or call exists on this checkout."""
    names = set()
    for block in _code_blocks((DOCS / page).read_text()):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cimstats"):
                names |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Attribute):
                chain = []
                cur = node
                while isinstance(cur, ast.Attribute):
                    chain.append(cur.attr)
                    cur = cur.value
                if isinstance(cur, ast.Name) and cur.id == "cimstats":
                    names.add(".".join(["cimstats", *reversed(chain)]))
    for name in sorted(names):
        try:
            _resolve(name)
        except (AttributeError, ImportError) as exc:
            pytest.fail(f"{page} uses {name}, which does not exist: {exc}")
