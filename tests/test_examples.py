"""Every example script runs to the end and writes what it says it writes."""

import os
import subprocess
import sys

import pytest

from conftest import QDPX, ROOT, need

EXAMPLES = ROOT / "examples"
CASES = {
    "inspect_spss.py": ["EN_patients_codebook.xlsx"],
    "harmonise_studies.py": ["patients.sav", "alters.parquet", "alter_ties.parquet", "harmonisation-report.xlsx"],
    "three_level_model.py": ["alter_model.csv"],
    "mediation.py": ["mediation.csv"],
    "score_scales.py": ["scale_scores.csv", "heiq_reliability.csv"],
    "network_measures.py": ["ego_measures.csv", "network_change.csv"],
    "glmm_model.py": ["illness_work_glmm.csv"],
    "sem_invariance.py": ["ce_invariance.csv", "ce_sem.csv"],
    "mechanism_tests.py": ["plan.yaml", "mechanisms.csv", "mechanisms.docx"],
    "power_and_bootstrap.py": ["power.csv", "power_curve.svg", "bootstrap.csv"],
    "survey_design.py": ["survey_estimates.csv", "survey_estimates.docx", "hba1c_svyglm.csv"],
    "multiple_imputation.py": ["pooled.csv", "chains.csv", "chains.svg", "pooled-result/result.json"],
}


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in CASES[script]:
        assert (tmp_path / name).stat().st_size > 0, name


def test_qda_example_runs_on_a_real_export(tmp_path):
    project = need(QDPX) / "vaccine-scepticism-nvivo.qdpx"
    done = _run("joint_display_from_qda.py", project, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "152 codes" in done.stdout
    for ext in ("docx", "xlsx", "html"):
        assert (tmp_path / f"case-display.{ext}").stat().st_size > 0


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(CASES) | {"joint_display_from_qda.py"}
