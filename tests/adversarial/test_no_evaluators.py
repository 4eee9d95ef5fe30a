"""No code evaluator in the package: user text (formulas, plans, rules, file contents) is parsed, never run.

The scan fails the build when ``eval(``, ``.eval(``, ``.query(``, ``exec(`` or
``pickle.load`` appears in ``src/`` outside the whitelisted expression module
(``cimstats/models/formula.py``, which needs none of them either). Docstring
example lines (``>>>``) and lines marked ``# safe: <reason>`` are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
#: the module that reads arithmetic from formulas (by its own parser, without Python evaluation)
WHITELISTED = {"cimstats/models/formula.py"}
FORBIDDEN = re.compile(r"(?<![\w.])eval\(|\.eval\(|\.query\(|(?<![\w.])exec\(|\.exec\(|pickle\.loads?\b")
SAFE_MARK = re.compile(r"#\s*safe:\s*\S")


def offending_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every forbidden call in ``text`` that is not an example or marked safe."""
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(">>>") or stripped.startswith("... ") or SAFE_MARK.search(line):
            continue
        if FORBIDDEN.search(line):
            out.append((i, stripped))
    return out


@pytest.mark.parametrize("line, found", [
    ("x = eval(text)", True),
    ("df.eval('a + b', engine='python')", True),
    ("df.query('a > 1')", True),
    ("exec(code)", True),
    ("obj = pickle.load(fh)", True),
    ("obj = pickle.loads(raw)", True),
    ("    >>> df.eval('a + b')", False),
    ("df.eval(expr)  # safe: trusted constant expression", False),
    ("return self._eval(node, values)", False),
    ("ast.literal_eval(text)", False),
    ("def evaluate(self, data):", False),
])
def test_scanner_recognises_the_forbidden_calls(line, found):
    assert bool(offending_lines(line)) is found


def test_no_code_evaluators_in_src():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, f"expected the package sources under {SRC}"
    problems = []
    for path in files:
        rel = path.relative_to(SRC).as_posix()
        if rel in WHITELISTED:
            continue
        for lineno, line in offending_lines(path.read_text(encoding="utf-8")):
            problems.append(f"src/{rel}:{lineno}: {line}")
    assert not problems, "code evaluators in the package (parse user text instead):\n" + "\n".join(problems)


def test_whitelisted_evaluator_module_needs_no_evaluator_either():
    for rel in WHITELISTED:
        text = (SRC / rel).read_text(encoding="utf-8")
        assert not offending_lines(text), rel
        assert "import ast" not in text and not re.search(r"(?<![\w.])compile\(", text), rel
