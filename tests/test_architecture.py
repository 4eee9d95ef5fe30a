"""The package's import graph: no module imports another in a loop, and no stage imports one above it.

The graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of a cimstats module, relative ones included, at module level and inside
functions alike (an import deferred into a function still makes the dependency). Imports under
``if TYPE_CHECKING:`` are left out: they are never run.

The stages, lowest first, are listed in ``LAYERS``. Rendering (``TableSpec``, the renderers and the
figures) sits just above the shared helpers because every stage's results render themselves through
it; the figures take results by their fields, so rendering needs nothing from the stages above.
Measures sit above models because reliability fits measurement models. The top-level
``cimstats/__init__.py`` is the flat re-export of the public verbs and is exempt; inside the package,
nothing may take a name through it except ``__version__`` (that would hide the real dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cimstats"

#: lowest first; a module may import only from its own layer or a lower one
LAYERS = [
    {"errors", "_names", "_sheets", "_files", "_criteria", "_parallel"},
    {"render"},
    {"io"},
    {"datasets"},
    {"dictionary"},
    {"models"},
    {"measures"},
    {"mechanisms"},
    {"integrate"},
    {"pipeline"},
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str, is_package: bool):
    """(imported dotted name, names taken, line) for every cimstats import in a file."""
    base = module if is_package else module.rpartition(".")[0]
    found = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(ast.Module(body=[sub], type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, (), child.lineno) for a in child.names if a.name.split(".")[0] == "cimstats")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = base
                    for _ in range(child.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    target = anchor + (f".{child.module}" if child.module else "")
                else:
                    target = child.module or ""
                if target.split(".")[0] == "cimstats":
                    found.append((target, tuple(a.name for a in child.names), child.lineno))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def _graph():
    modules = _modules()

    def resolve(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, dict[str, list[int]]] = {m: {} for m in modules}
    through_top = []
    for module, (path, is_package) in modules.items():
        for target, names, line in _imports(path, module, is_package):
            # `from pkg import sub` imports the submodule pkg.sub; `from pkg import name` imports pkg
            targets = {resolve(f"{target}.{n}") if f"{target}.{n}" in modules else resolve(target)
                       for n in names} or {resolve(target)}
            for t in targets:
                if t == "cimstats" and module != "cimstats" and (not names or set(names) - {"__version__"}):
                    through_top.append(f"{module} (line {line}) takes {', '.join(names) or 'cimstats'} "
                                       f"through the top-level re-export")
                if t != module:
                    edges[module].setdefault(t, []).append(line)
    return edges, through_top


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges.get(w, ()))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer():
    edges, _ = _graph()
    unplaced = sorted({m.split(".")[1] for m in edges if m != "cimstats" and _layer(m) is None})
    assert not unplaced, f"add these parts of cimstats to LAYERS: {unplaced}"


def test_no_import_cycles():
    edges, _ = _graph()
    cycles = _cycles(edges)
    detail = []
    for comp in cycles:
        members = set(comp)
        detail.append(" <-> ".join(comp) + ": " + "; ".join(
            f"{a} -> {b} (line {edges[a][b][0]})" for a in comp for b in sorted(edges[a]) if b in members))
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_no_upward_imports():
    edges, _ = _graph()
    upward = [f"{a} -> {b} (line {lines[0]})" for a, targets in edges.items() if a != "cimstats"
              for b, lines in targets.items()
              if b != "cimstats" and _layer(a) is not None and _layer(b) is not None and _layer(b) > _layer(a)]
    assert not upward, "imports that run up the layers:\n" + "\n".join(sorted(upward))


def test_nothing_imported_through_the_top_level_re_export():
    _, through_top = _graph()
    assert not through_top, "\n".join(through_top)


def test_imports_inside_functions_say_why():
    """A cimstats import inside a function hides the real graph; it is allowed only where a heavy
    dependency is deferred (said in a ``# deferred:`` comment on its line), and in the command-line
    modules, each of which loads its stage only when its command runs (so ``cimstats --help`` starts fast)."""
    found = []
    for module, (path, _) in _modules().items():
        if module.startswith("cimstats.cli."):
            continue
        src = path.read_text(encoding="utf-8")
        lines = src.split("\n")
        for fn in ast.walk(ast.parse(src)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                ours = (isinstance(node, ast.ImportFrom) and ((node.module or "").startswith("cimstats") or node.level)) \
                    or (isinstance(node, ast.Import) and any(a.name.startswith("cimstats") for a in node.names))
                if ours and "# deferred:" not in lines[node.lineno - 1]:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not found, f"imports inside functions without a reason: {found}"


def test_the_graph_reader_sees_imports_of_every_kind(tmp_path):
    """Module-level, relative, in-function and TYPE_CHECKING imports are told apart."""
    pkg = tmp_path / "cimstats"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from . import a\n")
    (pkg / "sub" / "a.py").write_text("from ..low import X\n\ndef f():\n    from cimstats.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from cimstats.sub.a import f\nimport cimstats.sub.a\n")
    global SRC, PACKAGE
    saved = SRC, PACKAGE
    SRC, PACKAGE = tmp_path, pkg
    try:
        edges, _ = _graph()
    finally:
        SRC, PACKAGE = saved
    assert edges["cimstats.sub"] == {"cimstats.sub.a": [1]}
    assert edges["cimstats.sub.a"] == {"cimstats.low": [1], "cimstats.sub.b": [4]}
    assert edges["cimstats.sub.b"] == {"cimstats.sub.a": [4]}
    assert _cycles(edges) == [["cimstats.sub.a", "cimstats.sub.b"]]
