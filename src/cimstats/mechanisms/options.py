"""The run options of the mechanism tests (``adjust``, ``n_boot``, ``level``, ``seed``), checked in one place.

:func:`cimstats.test_mechanisms` and the analysis plan's ``mechanisms:``
section (:func:`cimstats.pipeline.read_analysis_plan`) both call :func:`option_problems`,
so the two accept exactly the same values and say the same thing about the rest.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ADJUST_METHODS", "N_BOOT_RANGE", "option_problems"]

#: multiple-testing adjustments (None: no adjustment)
ADJUST_METHODS = ("holm", "bh", None)
#: fewest and most bootstrap resamples
N_BOOT_RANGE = (50, 100_000)


def _short(v, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _whole(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def option_problems(*, adjust="holm", n_boot=2000, level=None, seed=0, prefix: str = "`", suffix: str = "`"
                    ) -> list[tuple[str, str, str]]:
    """Problems of the mechanism-test options as ``(option, message, remedy)`` rows (empty when all are fine).

    Parameters
    ----------
    adjust, n_boot, level, seed
        The values to check (``level`` and ``seed`` may be None).
    prefix, suffix : str
        How an option is named in the messages (```n_boot``` for the function,
        ``mechanisms.n_boot`` for a plan).

    Examples
    --------
    >>> option_problems(adjust="bonferroni", n_boot=10)[0][1]
    "`adjust` is 'bonferroni'; expected 'holm', 'bh' or None (null in a YAML plan)."
    >>> option_problems(n_boot=2000, level=0.9)
    []
    """
    out = []

    def name(x):
        return f"{prefix}{x}{suffix}"

    if adjust not in ADJUST_METHODS:
        out.append(("adjust", f"{name('adjust')} is {_short(adjust)}; expected 'holm', 'bh' or None (null in a YAML "
                              "plan).", "Write adjust: holm."))
    lo, hi = N_BOOT_RANGE
    if not _whole(n_boot) or not lo <= int(n_boot) <= hi:
        out.append(("n_boot", f"{name('n_boot')} is {_short(n_boot)}; expected a whole number of bootstrap resamples "
                              f"from {lo} to {hi}, so use at least {lo} (2,000 or more for publication).",
                    "Write n_boot: 2000."))
    if level is not None and (isinstance(level, bool) or not isinstance(level, (int, float, np.floating))
                              or not 0.5 < float(level) < 1):
        out.append(("level", f"{name('level')} is {_short(level)}; expected a confidence level above 0.5 and below 1, "
                             "e.g. 0.95.", "Write level: 0.95."))
    if seed is not None and (not _whole(seed) or seed < 0):
        out.append(("seed", f"{name('seed')} is {_short(seed)}; expected a non-negative whole number, or None for an "
                            "unseeded run.", "Give a whole number such as 1."))
    return out
