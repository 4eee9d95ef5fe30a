"""Scale-out of repeated fits: 1,000 replications serially and on local Dask workers.

Usage::

    python benchmarks/scale_out.py [--replications 1000] [--workers 2] [--json OUT]

Two jobs run through the execution layer (cimstats._parallel): a power simulation of a
cluster-randomised design (one linear mixed model per replication) and a parametric
bootstrap of a random-slope model. Each runs once in this process and once on a local
Dask cluster of ``--workers`` worker processes (started before timing). The report gives

- wall time serially and on the workers, the speed-up and the efficiency
  (speed-up / workers);
- the per-task overhead: (time on the cluster x workers - serial time) / number of chunks,
  from which the time on N workers is projected as serial / N + overhead x chunks / N;
- a check that both runs gave identical numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import cimstats
    from cimstats._parallel import default_chunk_size
    from dask.distributed import Client, LocalCluster

    n = args.replications
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"g": np.repeat(np.arange(30), 8), "x": rng.normal(size=240)})
    d["y"] = (0.3 + rng.normal(0, 0.4, 30)[d["g"]]) * d["x"] + rng.normal(size=30)[d["g"]] + rng.normal(size=240)
    fit = cimstats.lmm("y ~ x + (1 + x | g)", d)
    half = n // 2
    jobs = {
        "power (cluster-randomised, lmm per replication)": lambda client: cimstats.power(
            "two_level", effect=0.4, icc=0.05, exposure_level=2, binary_exposure=True, n_clusters=[20, 30],
            cluster_size=10, nsim=half, seed=1, client=client, progress=False).tidy()[["estimate"]].to_numpy(),
        "parametric bootstrap (random slopes)": lambda client: cimstats.parametric_bootstrap(
            fit, nsim=n, seed=2, client=client, progress=False).draws.to_numpy(),
    }
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    client.run(lambda: __import__("cimstats.models.power"))  # warm the workers' imports
    report = {"replications": n, "workers": args.workers, "cores": os.cpu_count(), "chunk_size": default_chunk_size(n),
              "jobs": {}}
    try:
        for name, job in jobs.items():
            t0 = time.perf_counter()
            a = job("process")
            serial = time.perf_counter() - t0
            t0 = time.perf_counter()
            b = job(client)
            parallel = time.perf_counter() - t0
            chunks = -(-n // default_chunk_size(n))
            speedup = serial / parallel
            overhead = max(parallel * args.workers - serial, 0.0) / chunks
            report["jobs"][name] = {
                "serial_s": round(serial, 2), "parallel_s": round(parallel, 2), "speedup": round(speedup, 2),
                "efficiency": round(speedup / args.workers, 2), "overhead_per_chunk_s": round(overhead, 3),
                "identical": bool(np.array_equal(a, b, equal_nan=True)),
                "projected_s": {str(k): round(serial / k + overhead * chunks / k, 1) for k in (4, 16, 64)},
            }
            r = report["jobs"][name]
            print(f"{name}: serial {r['serial_s']} s, {args.workers} workers {r['parallel_s']} s, speed-up "
                  f"{r['speedup']}, efficiency {r['efficiency']}, overhead {r['overhead_per_chunk_s']} s per chunk, "
                  f"identical: {r['identical']}; projected on 4/16/64 workers: {r['projected_s']}")
    finally:
        client.close()
        cluster.close()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
