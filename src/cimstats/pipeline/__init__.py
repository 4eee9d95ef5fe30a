"""One reproducible analysis from raw files to report: the analysis plan, the step graph, the cache, the manifest.

:func:`read_analysis_plan` reads and checks an analysis plan (YAML) before any work
starts; :func:`run` runs its steps into an output folder, each step cached by
the hash of its inputs so that an edit re-runs only what changed, and writes
``report.html`` and ``manifest.json``. ``cimstats demo`` runs the shipped
demo plan (:func:`demo_plan`) through the same steps. Fitted results pass
between the steps as saved results; :func:`load_result` reads any saved
result back.

Examples
--------
>>> from cimstats.pipeline import demo_plan, plan_steps
>>> [s.id for s in plan_steps(demo_plan())]
['demo_files', 'data', 'scales', 'networks', 'mechanisms', 'tables', 'joint_displays', 'figures', 'report']
"""

from .plan import AnalysisPlan, demo_plan, demo_plan_path, read_analysis_plan
from .results import load_result
from .runner import STEP_COLUMNS, RunResult, plan_steps, run

__all__ = ["AnalysisPlan", "RunResult", "STEP_COLUMNS", "demo_plan", "demo_plan_path", "load_result", "plan_steps",
           "read_analysis_plan", "run"]


def __getattr__(name: str):
    if name == "read_plan":  # the previous release's name, kept for one release
        import warnings

        warnings.warn("cimstats.pipeline.read_plan is now cimstats.pipeline.read_analysis_plan; the old name will be "
                      "removed in the next release.", DeprecationWarning, stacklevel=2)
        return read_analysis_plan
    raise AttributeError(f"module 'cimstats.pipeline' has no attribute {name!r}")
