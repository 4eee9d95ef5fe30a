"""Speed of the whole demo analysis (``cimstats demo``): wall time in total and per step.

Runs the shipped demo plan into a new folder (every step runs), then again into
the same folder (every step is reused from the cache), and prints the wall time
of each step, the total against the one-minute target, and the ratio of the
cached re-run to the full run. There is no peer tool doing the same end-to-end
job, so the per-stage benchmarks (lmm_speed, sem_speed, mediation_boot,
harmonise_speed ...) carry the comparisons with statsmodels, semopy, lme4 and
lavaan.

Run: ``python benchmarks/pipeline_demo.py``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

TARGET = 60.0


def main() -> None:
    from cimstats.pipeline import run

    out = Path(tempfile.mkdtemp()) / "demo-output"
    t0 = time.perf_counter()
    first = run("demo", out=out, progress=False)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = run("demo", out=out, progress=False)
    t_cached = time.perf_counter() - t0
    print(f"{'step':<16}{'status':<9}{'seconds':>9}")
    for r in first.steps.itertuples():
        secs = "" if r.seconds is None else f"{r.seconds:9.2f}"
        print(f"{r.step:<16}{r.status:<9}{secs:>9}")
    print(f"whole demo, every step run:     {t_full:7.1f} s (target < {TARGET:.0f} s: "
          f"{'met' if t_full < TARGET else 'NOT met'})")
    print(f"second run, every step cached:  {t_cached:7.1f} s ({len(second.cached)} of {len(second.steps)} steps "
          f"reused)")
    print(f"ratio cached / full run:        {t_cached / t_full:7.3f}")


if __name__ == "__main__":
    main()
