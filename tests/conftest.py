"""Shared test fixtures: where the shared real files are, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LABELLED = SHARED / "testdata" / "labelled-files"
QDPX = SHARED / "testdata" / "qdpx"
REFERENCE = ROOT / "tests" / "reference"


def need(path: Path) -> Path:
    """Skip the calling test, with a reason, when a shared test folder is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared real files sit beside the checkout in ../shared")
    return path


@pytest.fixture
def labelled_dir() -> Path:
    return need(LABELLED)


@pytest.fixture
def qdpx_dir() -> Path:
    return need(QDPX)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m cimstats ARGS`` against this checkout's sources."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "cimstats", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The output folder of the whole demo analysis (what ``cimstats demo --out DIR`` writes), run once per session."""
    from cimstats.pipeline import run

    out = tmp_path_factory.mktemp("demo_run") / "demo-output"
    run("demo", out=out, progress=False)
    return out
