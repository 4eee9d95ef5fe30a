"""Speed of the demo study: generation, raw surveys, and writing the files.

Prints CPU seconds (median of repeats) for each stage, and the ratio of
writing the 16 country files through ``cimstats.io.write_survey`` against
writing the same tables with pyreadstat directly (the peer tool), measured in
the same run.

Run: ``python benchmarks/bench_demo.py``
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pyreadstat


def _cpu(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    from cimstats.datasets import demo_study, write_demo_files
    from cimstats.datasets._generate import generate
    from cimstats.io import write_survey

    study = demo_study(1)
    surveys = study.raw_surveys()
    t_gen = _cpu(lambda: generate(11))
    t_raw = _cpu(study.raw_surveys)
    tmp = Path(tempfile.mkdtemp())

    def via_cimstats():
        for name, s in surveys.items():
            write_survey(s, tmp / ("c_" + name))

    def via_pyreadstat():
        for name, s in surveys.items():
            raw = s.raw()
            labels = {k: m.label or "" for k, m in s.meta.items()}
            vl = {k: {c: v for c, v in m.value_labels.items() if not isinstance(c, str)}
                  for k, m in s.meta.items() if m.value_labels}
            if name.endswith(".sav"):
                mr = {}
                for k, m in s.meta.items():
                    if m.missing_ranges:
                        mr[k] = [{"lo": lo, "hi": hi} for lo, hi in m.missing_ranges]
                    elif m.missing_codes:
                        mr[k] = list(m.missing_codes)
                pyreadstat.write_sav(raw, str(tmp / ("p_" + name)), column_labels=labels,
                                     variable_value_labels=vl, missing_ranges=mr)
            else:
                raw = raw.copy()
                mu = {}
                for k, m in s.meta.items():
                    if m.missing_codes:
                        mu[k] = [c.lstrip(".") for c in m.missing_codes]
                        raw[k] = raw[k].map(lambda v: v.lstrip(".") if isinstance(v, str) else v)
                pyreadstat.write_dta(raw, str(tmp / ("p_" + name)), column_labels=labels,
                                     variable_value_labels=vl, missing_user_values=mu)

    t_c = _cpu(via_cimstats, repeat=3)
    t_p = _cpu(via_pyreadstat, repeat=3)
    t_all = _cpu(lambda: write_demo_files(tmp / "demo", seed=1, overwrite=True), repeat=3)
    print(f"generate (1,700 patients, ~8,400 alter rows): {t_gen:.3f} s CPU")
    print(f"raw_surveys (16 Survey objects):              {t_raw:.3f} s CPU")
    print(f"write 16 files, cimstats write_survey:        {t_c:.3f} s CPU")
    print(f"write 16 files, pyreadstat directly:          {t_p:.3f} s CPU")
    print(f"ratio cimstats / pyreadstat:                  {t_c / t_p:.2f}")
    print(f"write_demo_files (everything):                {t_all:.3f} s CPU")


if __name__ == "__main__":
    main()
