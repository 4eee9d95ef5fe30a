"""One reproducible analysis from raw files to report: the analysis plan, the step graph, the cache, the manifest.

:func:`read_plan` reads and checks an analysis plan (YAML) before any work
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

from .plan import AnalysisPlan, demo_plan, demo_plan_path, read_plan
from .results import load_result
from .runner import STEP_COLUMNS, RunResult, plan_steps, run

__all__ = ["AnalysisPlan", "RunResult", "STEP_COLUMNS", "demo_plan", "demo_plan_path", "load_result", "plan_steps",
           "read_plan", "run"]
