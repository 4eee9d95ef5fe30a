"""The execution layer: identical results on any number of workers, resumable, with clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import cimstats
from cimstats.errors import CimstatsWarning
from cimstats._parallel import ExecutionError, default_chunk_size, job_fingerprint, replicate
from cimstats.models.bootstrap import parametric_bootstrap


def normal_rows(data, seeds, width):
    return np.array([np.random.default_rng(s).normal(size=width) for s in seeds])


def test_results_do_not_depend_on_chunking():
    a = replicate(normal_rows, 45, seed=4, args=(3,), chunk_size=1, progress=False)
    b = replicate(normal_rows, 45, seed=4, args=(3,), chunk_size=45, progress=False)
    c = replicate(normal_rows, 45, seed=4, args=(3,), chunk_size=7, progress=False)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert not np.array_equal(a, replicate(normal_rows, 45, seed=5, args=(3,), progress=False))
    # the first k replications of a longer job are the same replications
    longer = replicate(normal_rows, 60, seed=4, args=(3,), progress=False)
    assert np.array_equal(longer[:45], a)


def test_chunk_size_depends_on_job_size_only():
    assert [default_chunk_size(n) for n in (1, 100, 1000, 10**6)] == [10, 10, 50, 200]


def test_checkpoint_resumes_and_refuses_another_job(tmp_path):
    full = replicate(normal_rows, 40, seed=1, args=(2,), chunk_size=10, progress=False)
    folder = tmp_path / "ck"
    replicate(normal_rows, 40, seed=1, args=(2,), chunk_size=10, checkpoint=folder, progress=False)
    chunks = sorted(folder.glob("chunk-*.npy"))
    assert len(chunks) == 4
    chunks[1].unlink()                       # as if the run had stopped before this chunk
    chunks[2].write_bytes(b"not a chunk")    # a damaged chunk is run again
    again = replicate(normal_rows, 40, seed=1, args=(2,), chunk_size=10, checkpoint=folder, progress=False)
    assert np.array_equal(again, full)
    with pytest.raises(ExecutionError, match="different job"):
        replicate(normal_rows, 40, seed=2, args=(2,), chunk_size=10, checkpoint=folder, progress=False)
    with pytest.raises(ExecutionError, match="different job"):
        replicate(normal_rows, 40, seed=1, args=(2,), chunk_size=10, checkpoint=folder, progress=False,
                  fingerprint="other data")


def test_a_job_without_seed_resumes_with_its_own_seed(tmp_path):
    folder = tmp_path / "ck"
    first = replicate(normal_rows, 20, seed=None, args=(1,), checkpoint=folder, progress=False)
    json.loads((folder / "job.json").read_text())
    assert np.array_equal(replicate(normal_rows, 20, seed=None, args=(1,), checkpoint=folder, progress=False), first)


@pytest.mark.parametrize("kw, match", [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"chunk_size": 0}, "chunk_size"),
                                       ({"client": 3}, "client")])
def test_bad_arguments_get_one_sentence(kw, match):
    args = dict(seed=1, progress=False)
    args.update(kw)
    with pytest.raises(ExecutionError, match=match):
        replicate(normal_rows, 5, args=(1,), **args)
    with pytest.raises(ExecutionError, match="number of replications"):
        replicate(normal_rows, 0, args=(1,), progress=False)


def test_fingerprint_sees_data_changes():
    d = pd.DataFrame({"a": [1.0, 2.0]})
    e = d.copy()
    e.loc[1, "a"] = 2.5
    assert job_fingerprint(d, 1) == job_fingerprint(d.copy(), 1) != job_fingerprint(e, 1)


def test_progress_line_reports_rate_and_time_left(capsys):
    replicate(normal_rows, 30, seed=1, args=(1,), chunk_size=10, progress=True)
    err = capsys.readouterr().err
    assert "3/3 chunks (30/30 replications)" in err and "per second" in err


# -------------------------------------------------------------------- a real local cluster
@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(lc)
    yield client
    client.close()
    lc.close()


def _mixed_data():
    rng = np.random.default_rng(11)
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 6), "x": rng.normal(size=72)})
    d["y"] = 0.4 * d["x"] + rng.normal(size=12)[d["g"]] + rng.normal(size=72)
    return d


#: numpy 2 gives bit-identical numbers in every process; older numpy's vectorised sums depend on buffer
#: alignment, and a refit's optimiser can carry that last-digit difference up to its own tolerance
RTOL = 1e-12 if int(np.__version__.split(".")[0]) >= 2 else 1e-5


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables: text and counts exactly, numbers to RTOL (bit-identical with numpy 2)."""
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RTOL, atol=0)


POWER = dict(effect=0.5, icc=0.1, exposure_level=2, binary_exposure=True, n_clusters=[8, 12], cluster_size=4,
             nsim=100, seed=21, progress=False)


def test_power_and_bootstrap_identical_on_two_workers(cluster):
    here = cimstats.power("two_level", client="process", **POWER)
    there = cimstats.power("two_level", client=cluster, **POWER)
    # the counts behind the power are identical; continuous summaries agree to the last binary digits
    # (older numpy's vectorised sums depend on how a worker's buffers happen to be aligned)
    same(here.tidy(), there.tidy())
    assert here.cells[["n_significant", "n_valid"]].equals(there.cells[["n_significant", "n_valid"]])
    assert here.tidy()["n_sim"].sum() == 200
    fit = cimstats.lmm("y ~ x + (1 | g)", _mixed_data())
    b_here = parametric_bootstrap(fit, nsim=200, seed=5, client="process", progress=False)
    b_there = parametric_bootstrap(fit, nsim=200, seed=5, client=cluster, progress=False)
    same(b_here.draws, b_there.draws)
    assert b_here.draws["converged"].all()
    d = _mixed_data()
    d["m"] = 0.5 * d["x"] + np.random.default_rng(3).normal(size=len(d))
    med = dict(x="x", m="m", y="y", cluster="g", n_boot=400, seed=9, sensitivity=False, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CimstatsWarning)  # 12 clusters: few, but enough for an identity check
        m_here = cimstats.mediation(d, client="process", **med)
        m_there = cimstats.mediation(d, client=cluster, **med)
    same(m_here.boot, m_there.boot)


def test_mechanism_bootstraps_identical_on_two_workers(cluster):
    from cimstats import datasets

    kw = dict(hypotheses=["CE1", "CE2"], n_boot=200, seed=5)
    here = cimstats.test_mechanisms(datasets.demo_study(), client="process", **kw)
    there = cimstats.test_mechanisms(datasets.demo_study(), client=cluster, **kw)
    cols = ["hypothesis_id", "estimate", "ci_lower", "ci_upper", "p_value", "verdict"]
    same(here.table[cols], there.table[cols])


def test_killed_run_resumes_to_the_same_result(tmp_path, cluster):
    folder = tmp_path / "power-ck"
    args = dict(POWER, chunk_size=10)
    script = textwrap.dedent(f"""
        import cimstats
        cimstats.power("two_level", client="process", checkpoint={str(folder)!r}, **{args!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(folder.glob("chunk-*.npy"))) < 5:
            time.sleep(0.05)
            assert proc.poll() is None, "the run finished before it could be stopped"
    finally:
        proc.kill()
        proc.wait()
    done = len(list(folder.glob("chunk-*.npy")))
    assert 5 <= done < 20
    resumed = cimstats.power("two_level", client=cluster, checkpoint=folder, **args)
    whole = cimstats.power("two_level", client="process", **args)
    same(resumed.tidy(), whole.tidy())
    assert len(list(folder.glob("chunk-*.npy"))) == 20
