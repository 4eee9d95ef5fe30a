"""Same plan, same seeds: the tables, displays and report of a second run are byte-identical."""

from __future__ import annotations

import shutil

from cimstats.pipeline import run

#: file types that must not differ between runs (Word and Excel files carry their own timestamps)
SAME = (".csv", ".html", ".tex", ".md", ".txt", ".svg", ".docx", ".xlsx")


def test_rerun_with_same_seed_is_byte_identical(demo_run, tmp_path):
    again = tmp_path / "again"
    shutil.copytree(demo_run, again)
    res = run("demo", out=again, force=True)
    assert set(res.steps["status"]) <= {"ran", "skipped"}
    compared = 0
    for p in sorted(demo_run.rglob("*")):
        rel = p.relative_to(demo_run)
        if not p.is_file() or rel.parts[0] in (".cache", "raw") or p.suffix not in SAME:
            continue
        assert (again / rel).read_bytes() == p.read_bytes(), f"{rel} differs between two runs with the same seed"
        compared += 1
    assert compared > 80
    for folder in ("tables", "joint_displays", "mechanisms"):
        assert any((demo_run / folder).glob("*.csv"))
