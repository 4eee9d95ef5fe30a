"""Shared by the example scripts: the output folder named on the command line, or a new temporary one."""

import sys
import tempfile
from pathlib import Path


def output_folder() -> Path:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="cimstats-example-"))
    out.mkdir(parents=True, exist_ok=True)
    return out
