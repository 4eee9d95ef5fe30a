"""Build-time pages of the cimstats documentation (an mkdocs hook).

- the API reference: one page per public subpackage or module of ``cimstats``,
  found by walking the source tree, so new stages appear without editing
  ``mkdocs.yml``;
- the command-line reference, from the ``cimstats`` argument parser;
- the mechanism hypotheses, from the shipped analysis plan;
- the data-dictionary format, from ``data-dictionary/README.md`` and the shipped tables;
- the validation tables, computed by fitting every reference case again
  (``docs/_hooks/validation.py``).

A page asks for generated content with a marker line such as ``<!-- cimstats:validation -->``.

Pages written by hand are verified instead of generated: ``data-dictionary.md``
must name every table column, rule, problem code and missing-value reason of
the package, and ``cli.md`` every command and option; the build fails, naming
what is missing, when the package has something the page does not describe.
"""

from __future__ import annotations

import io
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

PACKAGE = SRC / "cimstats"
#: modules left out of the API reference: the command line has its own page
SKIP = {"cli"}
TITLES = {
    "io": "Reading and writing survey files",
    "dictionary": "Data dictionary and harmonisation",
    "measures": "Scales, reliability and network measures",
    "models": "Models",
    "mechanisms": "Mechanism tests",
    "integrate": "Qualitative integration and joint displays",
    "render": "Rendering tables",
    "pipeline": "Analysis plans and runs",
    "datasets": "Demo study",
    "errors": "Errors and warnings",
}
ORDER = ["io", "dictionary", "measures", "models", "mechanisms", "integrate", "render", "pipeline",
         "datasets", "errors"]


# ------------------------------------------------------------------------------ API reference
def _public(path: Path) -> bool:
    return not path.name.startswith("_") and path.name not in SKIP


def _subpackages(pkg: Path) -> list[Path]:
    return sorted(p for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists() and _public(p))


def api_modules() -> list[str]:
    """Top-level public subpackages and modules of cimstats, in the order of the flow."""
    names = [p.name for p in _subpackages(PACKAGE)]
    names += [p.stem for p in PACKAGE.glob("*.py") if _public(Path(p.stem))]
    return sorted(set(names), key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _exported_modules() -> list[str]:
    """Modules the top level exports by name (``cimstats.reliability`` -> cimstats.measures.reliability)."""
    import inspect

    import cimstats

    return sorted(getattr(cimstats, n).__name__ for n in cimstats._EXPORTS
                  if inspect.ismodule(getattr(cimstats, n)))


def _modules_of_exported_verbs() -> list[str]:
    """Plain modules of the model stage (``cimstats.models.<module>``) that define a verb the top level exports.

    The model stage re-exports its verbs lazily (a module ``__getattr__``), which the reference
    generator cannot see; verbs in its subpackages are documented with the subpackage, and a
    verb in a plain module (the parametric bootstrap) with that module.
    """
    import inspect

    import cimstats

    found = set()
    for n in cimstats._EXPORTS:
        obj = getattr(cimstats, n)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        module = getattr(obj, "__module__", "") or ""
        parts = module.split(".")
        if len(parts) == 3 and parts[1] == "models" and (PACKAGE / parts[1] / f"{parts[2]}.py").exists() \
                and module.rsplit(".", 1)[-1] != obj.__name__:
            found.add(module)
    return sorted(found - set(_exported_modules()))


def _shadowed(stage: str) -> list[str]:
    """Exported verbs named like the module that defines them (``cimstats.dictionary.harmonise``).

    To a static reader the package attribute of that name is the module, so the verb is
    documented from its module, on its stage's page.
    """
    import inspect

    import cimstats

    lines = []
    for name in sorted(cimstats._EXPORTS):
        obj = getattr(cimstats, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        module = getattr(obj, "__module__", "") or ""
        if module.split(".")[1:2] == [stage] and module.rsplit(".", 1)[-1] == obj.__name__:
            lines += [f"::: {module}.{obj.__qualname__}", "    options:", "      heading_level: 2", ""]
    return lines


def api_page(name: str) -> str:
    """Markdown of one API page: the package, then each public subpackage below it."""
    title = TITLES.get(name, name.replace("_", " ").capitalize())
    lines = [f"# {title}: `cimstats.{name}`", "", f"::: cimstats.{name}", ""]
    path = PACKAGE / name
    if path.is_dir():
        for module in _exported_modules() + _modules_of_exported_verbs():
            parts = module.split(".")
            if len(parts) == 3 and parts[1] == name and (path / f"{parts[2]}.py").exists():
                lines += [f"::: {module}", "    options:", "      heading_level: 2", ""]
        lines += _shadowed(name)
        for sub in _subpackages(path):
            lines += [f"::: cimstats.{name}.{sub.name}", "    options:", "      heading_level: 2", ""]
            for subsub in _subpackages(sub):
                lines += [f"::: cimstats.{name}.{sub.name}.{subsub.name}", "    options:",
                          "      heading_level: 3", ""]
    return "\n".join(lines)


def api_index() -> str:
    import cimstats

    rows = ["# API reference", "",
            "Every public verb is importable from the top level (`import cimstats`); the pages below "
            "document each stage's package, in the order of the flow "
            "(read, harmonise, measure, model, test mechanisms, integrate, render).", "",
            "| name | defined in |", "|---|---|"]
    for name, module in sorted(cimstats._EXPORTS.items(), key=lambda kv: kv[0].lower()):
        stage = module.split(".")[1] if module.count(".") else module
        target = f"{stage}.md" if stage in api_modules() else None
        where = f"[`{module}`]({target})" if target else f"`{module}`"
        rows.append(f"| `cimstats.{name}` | {where} |")
    rows += ["", "Pages:", ""]
    rows += [f"- [{TITLES.get(n, n)}]({n}.md): `cimstats.{n}`" for n in api_modules()]
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------ command line
def cli_reference() -> str:
    from cimstats.cli import main as cli

    parser = cli.build_parser()
    out = ["```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in cli.COMMANDS:
        p = sub.choices[name]
        out += [f"## `cimstats {name}`", "", "```text", p.format_help().rstrip(), "```", ""]
        nested = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
        for action in nested:
            for subname, subp in action.choices.items():
                out += [f"### `cimstats {name} {subname}`", "", "```text", subp.format_help().rstrip(),
                        "```", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------ mechanisms
def _cell(x) -> str:
    if isinstance(x, (list, tuple)):
        x = ", ".join(map(str, x))
    return str(x).replace("|", "\\|").replace("\n", " ")


def hypotheses_table() -> str:
    import yaml

    plan = yaml.safe_load((PACKAGE / "mechanisms" / "default_plan.yaml").read_text())
    lines = ["The mechanisms the shipped plan declares:", "", "| mechanism | label | elements |", "|---|---|---|"]
    for mid, spec in (plan.get("mechanisms") or {}).items():
        lines.append(f"| `{mid}` | {_cell(spec.get('label', ''))} | {_cell(spec.get('elements', []))} |")
    lines += ["", "| id | mechanism | hypothesis | model | estimand | expected | themes |",
              "|---|---|---|---|---|---|---|"]
    for h in plan["hypotheses"]:
        lines.append("| " + " | ".join(_cell(h.get(k, "")) for k in
                                         ("id", "mechanism", "statement", "model", "estimand", "expected",
                                          "themes")) + " |")
    lines += ["", "The models the hypotheses name:", "", "| model | template | level | specification |",
              "|---|---|---|---|"]
    for mid, spec in plan["models"].items():
        detail = {k: v for k, v in spec.items() if k not in ("template", "level")}
        text = "; ".join(f"{k}: `{_cell(v)}`" for k, v in detail.items())
        lines.append(f"| `{mid}` | {spec['template']} | {spec.get('level', '')} | {text} |")
    lines += ["", "The constructs they use:", "", "| construct | kind | definition |", "|---|---|---|"]
    for cid, spec in plan["constructs"].items():
        detail = "; ".join(f"{k}: `{_cell(v)}`" for k, v in spec.items() if k != "kind")
        lines.append(f"| `{cid}` | {spec['kind']} | {detail} |")
    lines += ["", "Verdict rules of the shipped plan:", "", "| rule | value |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in plan.get("verdict_rules", {}).items()]
    return "\n".join(lines) + "\n"


def plan_yaml() -> str:
    return "```yaml\n" + (PACKAGE / "mechanisms" / "default_plan.yaml").read_text().rstrip() + "\n```\n"


# ------------------------------------------------------------------------------ data dictionary
def dictionary_format() -> str:
    """The format sections of data-dictionary/README.md (from its first table heading on)."""
    text = (ROOT / "data-dictionary" / "README.md").read_text()
    start = text.find("\n## The four tables")
    body = text[start:] if start >= 0 else text
    # one heading level down: the page has its own title
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", body, flags=re.M).strip() + "\n"


def dictionary_examples() -> str:
    import pandas as pd

    out = []
    for table in ("studies", "variables", "categories", "mappings"):
        frame = pd.read_csv(ROOT / "data-dictionary" / f"{table}.csv", dtype=str, keep_default_na=False)
        head = frame.head(6)
        out += [f"### `{table}.csv` ({len(frame)} rows; the first {len(head)})", "",
                "| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
        out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.itertuples(index=False)]
        out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------ validation
def validation_tables() -> str:
    """Run docs/_hooks/validation.py in a fresh interpreter (this checkout's src first) and return its page.

    A separate process keeps the fits out of the site builder's process, which runs them
    several times slower (its logging and warning machinery), and gives them a clean state.
    """
    import os
    import subprocess

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, str(HERE / "validation.py"), "--tables-only"], capture_output=True,
                          text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the validation tables could not be computed: {done.stderr[-3000:]}")
    return done.stdout


GENERATORS = {
    "cli": cli_reference,
    "hypotheses": hypotheses_table,
    "default-plan": plan_yaml,
    "dictionary-format": dictionary_format,
    "dictionary-examples": dictionary_examples,
    "validation": validation_tables,
}
MARKER = re.compile(r"^<!-- cimstats:([a-z-]+) -->$", re.M)


# ------------------------------------------------------------------------------ verification of written pages
def dictionary_terms() -> list[str]:
    """What data-dictionary.md must mention: every column, type, rule, problem code and missing-value reason."""
    from cimstats.dictionary.codes import CODES, MISSING_REASONS
    from cimstats.dictionary.rules import RULES
    from cimstats.dictionary.schema import COLUMNS, STATUSES, TYPES

    terms = [f"{t}.csv" for t in COLUMNS] + [f"`{c}`" for req, opt in COLUMNS.values() for c in req + opt]
    terms += [f"`{t}`" for t in TYPES + STATUSES] + [f"`{r}`" for r in RULES]
    return terms + list(CODES) + [f"`{r}`" for r in MISSING_REASONS]


def cli_terms() -> list[str]:
    """What cli.md must mention: every command and subcommand and each of their options."""
    from cimstats.cli import main as cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    terms = []

    def options(p):
        return [o for a in p._actions for o in a.option_strings if o.startswith("--") and o != "--help"]

    for name in cli.COMMANDS:
        p = sub.choices[name]
        terms += [f"cimstats {name}"] + options(p)
        for action in (a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"):
            for subname, subp in action.choices.items():
                terms += [f"cimstats {name} {subname}"] + options(subp)
    return list(dict.fromkeys(terms))


VERIFY = {"data-dictionary.md": dictionary_terms, "cli.md": cli_terms}


def verify_page(path: str, markdown: str) -> None:
    """Raise when a hand-written page misses something the package has (checked on the page as written)."""
    check = VERIFY.get(path)
    if check is None:
        return
    written = MARKER.sub("", markdown)
    absent = [t for t in check() if t not in written]
    if absent:
        raise RuntimeError(f"docs/{path} does not describe {', '.join(absent)}; document them (the page is "
                           "written by hand and checked against the package).")


# ------------------------------------------------------------------------------ mkdocs events
def on_config(config, **kwargs):
    nav = config.get("nav") or []
    pages = [{"Overview": "reference/index.md"}] + [
        {TITLES.get(n, n): f"reference/{n}.md"} for n in api_modules()]
    for i, item in enumerate(nav):
        if isinstance(item, dict) and "API reference" in item:
            nav[i] = {"API reference": pages}
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference/index.md", content=api_index()))
    for name in api_modules():
        files.append(File.generated(config, f"reference/{name}.md", content=api_page(name)))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    verify_page(page.file.src_path, markdown)

    def replace(match):
        key = match.group(1)
        if key not in GENERATORS:
            raise KeyError(f"{page.file.src_path}: unknown generated section {key!r}; "
                           f"known: {', '.join(GENERATORS)}")
        with redirect_stdout(io.StringIO()):
            return GENERATORS[key]()

    return MARKER.sub(replace, markdown)
