"""Multiple imputation in the analysis pipeline: an ``imputation`` section makes ``cimstats run`` impute the
harmonised patients once, test the hypotheses on every completed set and pool them (Rubin's rules), with the
fraction of missing information and m in the mechanism table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cimstats.datasets import demo_study
from cimstats.errors import PlanError
from cimstats.mechanisms.pooled import impute_patients, test_mechanisms_imputed
from cimstats.pipeline import read_analysis_plan, run
from cimstats import test_mechanisms

ROOT = Path(__file__).resolve().parents[1]
IMPUTATION = {"m": 2, "seed": 11, "iterations": 2, "method": {"income_equiv": "norm"}}


def _mechanism_plan() -> dict:
    doc = yaml.safe_load((ROOT / "src/cimstats/mechanisms/default_plan.yaml").read_text(encoding="utf-8"))
    doc["models"] = {"knowledge_navigation": doc["models"]["knowledge_navigation"]}
    doc["hypotheses"] = [h for h in doc["hypotheses"] if h["model"] == "knowledge_navigation"]
    return doc


@pytest.fixture(scope="module")
def harmonised(tmp_path_factory):
    """The demo study's harmonised tables with extra holes punched at random in age and two SEMCD items."""
    study = demo_study()
    patients = study.patients.data.copy() if hasattr(study.patients, "data") else study.patients.copy()
    alters = study.alters.data if hasattr(study.alters, "data") else study.alters
    ties = study.alter_ties
    rng = np.random.default_rng(4)
    for c in ("age", "semcd_1", "semcd_2"):
        patients.loc[rng.random(len(patients)) < 0.15, c] = np.nan
    folder = tmp_path_factory.mktemp("mi_data")
    patients.to_parquet(folder / "patients.parquet")
    alters.to_parquet(folder / "alters.parquet")
    ties.to_parquet(folder / "alter_ties.parquet")
    return folder, patients, {"alters": alters, "alter_ties": ties}


def test_cimstats_run_imputes_once_and_pools_every_hypothesis(harmonised, tmp_path):
    folder, patients, network = harmonised
    doc = {"plan": "imputed", "seeds": {"data": 1, "bootstrap": 5},
           "sources": {"harmonised": {"patients": str(folder / "patients.parquet"),
                                      "alters": str(folder / "alters.parquet"),
                                      "alter_ties": str(folder / "alter_ties.parquet")}},
           "mechanisms": {"plan": _mechanism_plan(), "n_boot": 50},
           "imputation": IMPUTATION,
           "outputs": {"data": ["parquet"], "tables": ["csv"], "figures": [], "report": False}}
    run(doc, out=tmp_path / "out", progress=False)
    table = pd.read_csv(tmp_path / "out/mechanisms/mechanism_table.csv").set_index("hypothesis_id")
    assert list(table.index) == ["NAV1", "NAV2"]
    assert (table["m"] == 2).all() and table["fmi"].between(0, 1).all()
    assert table["verdict_reason"].str.contains("pooled over 2 imputations").all()

    # the same numbers as the verb called directly on the same data
    pooled = test_mechanisms_imputed({"patients": patients, **network}, _mechanism_plan(),
                                     imputation=IMPUTATION, seed=5, n_boot=50)
    direct = pooled.table.set_index("hypothesis_id")
    # the publication table shows the fraction of missing information and says how many sets were pooled
    spec = pooled.to_table_spec()
    assert "FMI" in [c.text for row in spec.header for c in row]
    assert any("pooled over 2 imputed data sets" in n for n in spec.notes)
    for col in ("estimate", "std_error", "df", "p_value", "ci_lower", "ci_upper", "fmi"):
        np.testing.assert_allclose(table[col].to_numpy(float), direct[col].to_numpy(float), rtol=1e-9, err_msg=col)

    # Rubin's rules over the tests on each completed set
    _, tables = impute_patients(patients, IMPUTATION)
    runs = [test_mechanisms({"patients": t, **network}, _mechanism_plan(), seed=5 + k, n_boot=50)
            .table.set_index("hypothesis_id") for k, t in enumerate(tables)]
    q = np.column_stack([r["estimate"].to_numpy(float) for r in runs])
    u = np.column_stack([r["std_error"].to_numpy(float) ** 2 for r in runs])
    np.testing.assert_allclose(direct["estimate"], q.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(direct["std_error"] ** 2, u.mean(axis=1) + 1.5 * q.var(axis=1, ddof=1), rtol=1e-10)
    # the completed sets differ where cells were imputed and equal the data elsewhere
    assert not tables[0]["age"].isna().any()
    kept = patients["age"].notna()
    assert tables[0].loc[kept, "age"].equals(patients.loc[kept, "age"])
    assert not tables[0].loc[~kept, "age"].equals(tables[1].loc[~kept, "age"])
    assert tables[0]["patient_id"].equals(patients["patient_id"])


def test_a_bad_imputation_section_is_reported_before_any_work(harmonised, tmp_path):
    folder, _, _ = harmonised
    doc = {"plan": "bad", "sources": {"harmonised": {"patients": str(folder / "patients.parquet"),
                                                     "alters": str(folder / "alters.parquet")}},
           "mechanisms": {"plan": _mechanism_plan()},
           "imputation": {"m": 1, "iterations": "many", "method": {"income_equiv": "magic"}, "colour": 1}}
    with pytest.raises(PlanError) as err:
        read_analysis_plan(doc)
    msgs = [i.message for i in err.value.report if i.code == "P021"]
    assert len(msgs) == 4
    assert any("imputation.m is 1" in m for m in msgs) and any("'magic'" in m for m in msgs)
    with pytest.raises(PlanError, match="lacks"):
        impute_patients(pd.DataFrame({"patient_id": [1, 2], "x": [1.0, None]}), {"m": 2, "method": {"y": "pmm"}})


def test_imputations_fit_pools_the_mechanism_tests_hypothesis_by_hypothesis(harmonised):
    """Imputations.fit(test_mechanisms, ...) pools the mechanism tables as the plan's imputation section does."""
    _, patients, network = harmonised
    imp, _ = impute_patients(patients, IMPUTATION)

    def mechanisms(data, **kw):  # the completed imputed columns back in the full patient table
        full = patients.copy()
        for c in data.columns:
            full[c] = data[c].to_numpy() if not isinstance(data[c].dtype, pd.CategoricalDtype) else data[c].values
        return test_mechanisms({"patients": full, **network}, _mechanism_plan(), **kw)

    pooled = imp.fit(mechanisms, seed=5, n_boot=50)
    direct = test_mechanisms_imputed({"patients": patients, **network}, _mechanism_plan(),
                                     imputation=IMPUTATION, seed=5, n_boot=50).table.set_index("hypothesis_id")
    got = pooled.table.set_index("hypothesis_id")
    assert (got["m"] == 2).all() and list(got.index) == list(direct.index)
    for col in ("estimate", "std_error", "df", "p_value", "ci_lower", "ci_upper", "fmi"):
        np.testing.assert_allclose(got[col].to_numpy(float), direct[col].to_numpy(float), rtol=1e-9, err_msg=col)
