"""Many repeated fits, on this machine or on a Dask cluster: the one execution layer.

Bootstraps, simulation-based power and other repeated-fit jobs are lists of
independent *replications*. This module runs them in *chunks* (tens to
hundreds of replications each, to keep scheduling overhead small):

* **Seeds.** Replication ``i`` draws its random numbers from child ``i`` of
  one :class:`numpy.random.SeedSequence`, so every replication's numbers
  depend only on the job's seed and its own index. Results are therefore
  identical whether the job runs in this process, on two local workers or on
  a hundred cluster workers, and whatever the chunk size. (With numpy
  releases before 2.0, a number computed in a worker process can differ in
  its last binary digit, because older numpy's vectorised sums depend on how
  a buffer happens to be aligned in memory; a refit's optimiser can carry that
  up to its own tolerance.)
* **Where.** ``client=None`` runs small jobs in this process. When the first
  chunk shows that the rest would take longer than ``LOCAL_CLUSTER_AFTER``
  seconds and the machine has more than one core, the rest runs on a local
  Dask cluster of worker processes sized to the machine (started once per
  session). A script starts worker processes only if its top level is
  protected by ``if __name__ == "__main__":`` (each worker imports the main
  file); otherwise its jobs stay in this process. ``client`` may also be a ``dask.distributed.Client`` or the
  address of a running scheduler (``"tcp://host:8786"``), e.g. a cluster on
  Kubernetes or SLURM (dask-jobqueue); ``client="process"`` forces this
  process.
* **Data.** The data a job needs are sent to the workers once
  (``Client.scatter``), not with every chunk; a chunk sends back only its
  numbers (one row per replication).
* **Interruption.** With ``checkpoint=folder`` each finished chunk is written
  to the folder as it completes (``chunk-<first>-<last>.npy`` beside
  ``job.json``, which records the job's seed, size and a fingerprint of its
  inputs). Running the same job again with the same folder reads the finished
  chunks and runs only the rest; the result equals an uninterrupted run. A
  folder that holds a different job is refused rather than mixed in.
* **Progress.** A line on the terminal (or a live line in Jupyter) shows the
  chunks done, the rate and an estimate of the time left.

Examples
--------
>>> import numpy as np
>>> def draw(data, seeds, scale):
...     return np.array([[np.random.default_rng(s).normal() * scale] for s in seeds])
>>> a = replicate(draw, 50, seed=1, args=(2.0,), chunk_size=7, progress=False)
>>> b = replicate(draw, 50, seed=1, args=(2.0,), chunk_size=50, progress=False)
>>> a.shape, bool(np.array_equal(a, b))
((50, 1), True)
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cimstats._files import atomic_write
from cimstats.errors import CimstatsError, CimstatsWarning

__all__ = ["replicate", "resolve_seed", "ExecutionError", "job_fingerprint", "default_chunk_size", "LOCAL_CLUSTER_AFTER",
           "local_client", "close_local_client"]

#: seconds of estimated remaining work above which ``client=None`` starts a local cluster
LOCAL_CLUSTER_AFTER = 20.0
#: layout version of a checkpoint folder
CHECKPOINT_FORMAT = 1


class ExecutionError(CimstatsError, RuntimeError):
    """A repeated-fit job could not be run, resumed or sent to the cluster."""


class ExecutionWarning(CimstatsWarning):
    """A repeated-fit job ran somewhere other than first planned (results are unaffected)."""


# --------------------------------------------------------------------------- sizing
def default_chunk_size(n: int) -> int:
    """Replications per chunk: about 20 chunks per job, between 10 and 200 replications each.

    The chunk size depends on the job size only (never on the number of
    workers), so a resumed job finds its chunks where it left them.
    """
    return int(min(200, max(10, math.ceil(n / 20))))


def job_fingerprint(*parts: Any) -> str:
    """A short hash of a job's inputs (numbers, text, arrays, DataFrames), for checkpoint folders."""
    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, pd.DataFrame):
            h.update(b"df")
            h.update(json.dumps([str(c) for c in x.columns]).encode())
            h.update(pd.util.hash_pandas_object(x, index=True).to_numpy().tobytes())
        elif isinstance(x, pd.Series):
            feed(x.to_frame())
        elif isinstance(x, np.ndarray):
            h.update(b"arr" + str(x.dtype).encode() + str(x.shape).encode())
            h.update(np.ascontiguousarray(x).tobytes() if x.dtype != object else repr(x.tolist()).encode())
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted(x, key=str):
                feed(str(k))
                feed(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                feed(v)
            h.update(b"]")
        else:
            h.update(repr(x).encode())

    for p in parts:
        feed(p)
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------- local cluster
_LOCAL: dict = {}


def local_client():
    """The session's local Dask cluster of worker processes (started on first use)."""
    client = _LOCAL.get("client")
    if client is not None and client.status == "running":
        return client
    # dask is loaded only when a job is large enough to need it
    from dask.distributed import Client, LocalCluster

    n = max(1, os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    _LOCAL.update(cluster=cluster, client=client)
    return client


def close_local_client() -> None:
    """Shut down the session's local cluster, if one was started."""
    client, cluster = _LOCAL.pop("client", None), _LOCAL.pop("cluster", None)
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


atexit.register(close_local_client)


_GUARD = re.compile(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", re.M)


def _workers_can_start() -> bool:
    """Whether worker processes can be started safely from this program.

    New worker processes import the program's main file. A script without an
    ``if __name__ == "__main__":`` guard would run again in every worker, so
    for such scripts (and only then) jobs stay in this process; the module
    description says how to use more cores from a script.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return True  # an interactive session, a notebook or ``python -c``
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_GUARD.search(text))


def _resolve_client(client):
    if client is None or isinstance(client, str) and client == "process":
        return client
    if isinstance(client, str):
        from dask.distributed import Client

        try:
            return Client(client, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ExecutionError(
                f"No Dask scheduler answered at {client!r} ({exc.__class__.__name__}); start the scheduler or "
                f"give its address as 'tcp://host:8786'.") from None
    if hasattr(client, "submit") and hasattr(client, "scatter"):
        return client
    raise ExecutionError(
        f"`client` is a {type(client).__name__}; expected a dask.distributed.Client, a scheduler address such "
        f"as 'tcp://host:8786', 'process' or None.")


# --------------------------------------------------------------------------- checkpoint
class _Checkpoint:
    def __init__(self, folder, *, name, n, chunk_size, entropy, fingerprint):
        self.folder = Path(folder)
        self.meta = {"format": CHECKPOINT_FORMAT, "job": name, "n": int(n), "chunk_size": int(chunk_size),
                     "entropy": str(entropy), "fingerprint": fingerprint}

    @staticmethod
    def stored_meta(folder) -> dict | None:
        p = Path(folder) / "job.json"
        if not p.is_file():
            return None
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ExecutionError(f"{p} is damaged; delete the folder {p.parent} to start the job afresh.") from None
        if not isinstance(meta, dict):
            raise ExecutionError(f"{p} is not a cimstats job file; use an empty folder for `checkpoint=`.")
        return meta

    def open(self) -> dict[tuple[int, int], np.ndarray]:
        self.folder.mkdir(parents=True, exist_ok=True)
        stored = self.stored_meta(self.folder)
        if stored is None:
            atomic_write(self.folder / "job.json", json.dumps(self.meta, indent=1), error=ExecutionError)
            return {}
        keys = ("format", "job", "n", "chunk_size", "entropy", "fingerprint")
        differ = [k for k in keys if stored.get(k) != self.meta[k]]
        if differ:
            raise ExecutionError(
                f"The checkpoint folder {self.folder} holds a different job ({', '.join(differ)} differ); "
                f"give an empty folder, or delete this one to start afresh.")
        done = {}
        for p in sorted(self.folder.glob("chunk-*.npy")):
            try:
                a, b = (int(x) for x in p.stem.split("-")[1:3])
                arr = np.load(p, allow_pickle=False)
            except (ValueError, OSError):
                continue  # a damaged chunk is simply run again
            if arr.ndim == 2 and arr.shape[0] == b - a:
                done[(a, b)] = arr
        return done

    def write(self, a: int, b: int, arr: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr, dtype=float), allow_pickle=False)
        atomic_write(self.folder / f"chunk-{a:09d}-{b:09d}.npy", buf.getvalue(), error=ExecutionError)


# --------------------------------------------------------------------------- progress
class _Progress:
    def __init__(self, name: str, total_chunks: int, total_reps: int, enabled):
        self.name, self.total_chunks, self.total_reps = name, total_chunks, total_reps
        self.done_chunks = self.done_reps = 0
        self.start = time.perf_counter()
        self.new_reps = 0
        self.handle = None
        if enabled is None:
            enabled = _in_notebook() or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
        self.enabled = bool(enabled)
        if self.enabled and _in_notebook():
            from IPython.display import display  # only inside a notebook

            self.handle = display(self._line(), display_id=True)

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.new_reps / elapsed if elapsed > 0 and self.new_reps else float("nan")
        left = (self.total_reps - self.done_reps) / rate if rate and rate == rate and rate > 0 else float("nan")
        eta = "" if left != left else f", about {_duration(left)} left"
        r = "" if rate != rate else f", {rate:.1f} per second"
        return (f"{self.name}: {self.done_chunks}/{self.total_chunks} chunks "
                f"({self.done_reps}/{self.total_reps} replications){r}{eta}")

    def update(self, reps: int, *, resumed: bool = False) -> None:
        self.done_chunks += 1
        self.done_reps += reps
        if not resumed:
            self.new_reps += reps
        if not self.enabled:
            return
        if self.handle is not None:
            self.handle.update(self._line())
        else:
            sys.stderr.write("\r" + self._line() + " " * 4)
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.handle is None:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _in_notebook() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------- running
def resolve_seed(seed, checkpoint=None) -> int:
    """The job's seed as a whole number: ``seed`` itself, else the one a checkpoint folder recorded, else fresh entropy."""
    if seed is None:
        stored = _Checkpoint.stored_meta(checkpoint) if checkpoint is not None else None
        if stored and "entropy" in stored:
            try:
                return int(stored["entropy"])
            except (TypeError, ValueError):
                raise ExecutionError(f"The checkpoint folder {checkpoint} is damaged; delete it to start afresh.") from None
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ExecutionError(f"`seed` is {seed!r}; give a whole number of 0 or more, or None.")
    return int(seed)


def _fresh(x):
    """Arrays in new, writable, C-ordered memory of numpy's own (data received from the scheduler may sit
    in buffers with another alignment, and the BLAS kernels' summation order depends on alignment)."""
    if isinstance(x, np.ndarray):
        return np.array(x, order="C", copy=True)
    if isinstance(x, dict):
        return {k: _fresh(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_fresh(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_fresh(v) for v in x)
    return x


def _run_chunk(task, data, entropy, a, b, args, fresh=False):
    seeds = np.random.SeedSequence(int(entropy)).spawn(b)[a:b]
    if fresh:  # data received from the scheduler
        data = _fresh(data)
    # one BLAS thread: the same sums in the same order in this process and on every worker
    with threadpool_limits(limits=1):
        out = np.asarray(task(data, seeds, *args), dtype=float)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[0] != b - a:
        raise ExecutionError(f"A chunk of {b - a} replications returned {out.shape[0]} rows.")
    return out


def replicate(task: Callable, n: int, *, seed=None, data=None, args: Sequence = (), chunk_size: int | None = None,
              client=None, checkpoint=None, progress=None, name: str = "replications",
              fingerprint: str = "") -> np.ndarray:
    """Run ``n`` independent replications of ``task`` in chunks and stack their results.

    Parameters
    ----------
    task : callable
        ``task(data, seeds, *args)`` takes a list of
        :class:`numpy.random.SeedSequence` (one per replication in the chunk)
        and returns one row of numbers per replication. It must be defined at
        module level so that workers can import it.
    n : int
        Number of replications.
    seed : int or None
        The job's seed; replication ``i`` uses child ``i`` of
        ``SeedSequence(seed)``. ``None`` draws fresh entropy (kept in the
        checkpoint, so a resumed run uses the same).
    data : any
        What every chunk needs (arrays, a DataFrame, a dict of them); sent to
        each worker once.
    args : sequence
        Further small arguments for ``task``.
    chunk_size : int, optional
        Replications per chunk (default :func:`default_chunk_size`).
    client : None, "process", a dask.distributed.Client or a scheduler address
        Where to run (see the module description).
    checkpoint : path, optional
        A folder to write finished chunks to, and to resume from.
    progress : bool, optional
        Show progress (default: on a terminal or in Jupyter).
    name : str
        What the progress line calls the job.
    fingerprint : str
        A hash of the job's inputs (:func:`job_fingerprint`); a checkpoint
        folder holding another fingerprint is refused.

    Returns
    -------
    numpy.ndarray
        ``n`` rows, one per replication, in replication order.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ExecutionError(f"The number of replications is {n!r}; give a whole number of at least 1.")
    n = int(n)
    cs = default_chunk_size(n) if chunk_size is None else chunk_size
    if not isinstance(cs, (int, np.integer)) or isinstance(cs, bool) or cs < 1:
        raise ExecutionError(f"`chunk_size` is {chunk_size!r}; give a whole number of at least 1.")
    cs = int(cs)
    chunks = [(a, min(a + cs, n)) for a in range(0, n, cs)]

    entropy = resolve_seed(seed, checkpoint)

    done: dict = {}
    ck = None
    if checkpoint is not None:
        ck = _Checkpoint(checkpoint, name=name, n=n, chunk_size=cs, entropy=entropy, fingerprint=fingerprint)
        done = ck.open()

    bar = _Progress(name, len(chunks), n, progress)
    for key, arr in done.items():
        bar.update(arr.shape[0], resumed=True)
    todo = [c for c in chunks if c not in done]
    results = dict(done)

    def finished(a, b, arr):
        results[(a, b)] = arr
        if ck is not None:
            ck.write(a, b, arr)
        bar.update(b - a)

    try:
        resolved = _resolve_client(client)
        if resolved is None or resolved == "process":
            t0 = time.perf_counter()
            while todo:
                a, b = todo.pop(0)
                finished(a, b, _run_chunk(task, data, entropy, a, b, tuple(args)))
                per_rep = (time.perf_counter() - t0) / max(1, bar.new_reps)
                left = per_rep * sum(y - x for x, y in todo)
                if resolved is None and todo and left > LOCAL_CLUSTER_AFTER and (os.cpu_count() or 1) > 1 \
                        and _workers_can_start():
                    try:
                        resolved = local_client()
                    except (OSError, RuntimeError, TimeoutError) as exc:
                        warnings.warn(f"The local cluster did not start ({exc.__class__.__name__}); the job "
                                      f"continues in this process with the same results.", ExecutionWarning,
                                      stacklevel=2)
                        resolved = "process"
                        continue
                    break
        if todo and resolved not in (None, "process"):
            _run_on_cluster(resolved, task, data, entropy, todo, tuple(args), finished)
    finally:
        bar.close()
    out = np.vstack([results[c] for c in chunks])
    return out


def _run_on_cluster(client, task, data, entropy, todo, args, finished) -> None:
    from dask.distributed import as_completed

    data_future = client.scatter(data, broadcast=True) if data is not None else None
    futures = {client.submit(_run_chunk, task, data_future, entropy, a, b, args, True, pure=False): (a, b)
               for a, b in todo}
    try:
        for fut in as_completed(list(futures)):
            a, b = futures[fut]
            finished(a, b, fut.result())
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
