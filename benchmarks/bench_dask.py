"""Dask executor scaling: the same sweep on a LocalCluster of 1 and of 2 worker processes
(1 thread each), and the engine's local pool at workers=1 and 2 for reference.

  python benchmarks/bench_dask.py [--images 12] [--codec jpeg2000] [--out results/bench/dask.json]

Images: `n` evenly spaced UC Merced test images (data/ucmerced) when present, else from the
../shared mirror (benchmarks/_common.py). Every run is the real engine (metrics with LPIPS, recon PNGs, parts,
assembly) into its own temporary folder. Timed per run: the sweep (wall), and CPU-seconds
of this process plus its workers (dask: each worker process's CPU over the sweep; local pool:
this process and its finished children). A Dask cluster's start is timed apart (a cluster
outlives many sweeps); its workers start cold (imports, codec and LPIPS builds fall in the
sweep, as for the local pool's spawned workers). Also checked: every run's per_image.csv and
summary.json equal the first run's apart from the enc_s/dec_s timings.
Each Dask cluster then runs the same sweep a second time (fresh folder, warm workers: the
steady state of a long sweep). Scaling ratio = throughput with 2 Dask workers / with 1. On a machine shared with other
jobs the wall figures carry their load (recorded before and after every run).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _common import ucmerced_images
from bench_sweep import MID_QUALITY

from rsicbench.fsutil import write_json
from rsicbench.reproduce.evaluation.engine import SweepSpec, run_sweep
from rsicbench.results import RatePoint, Sample

TIMING = {"enc_s", "dec_s"}


def cpu_self_and_children() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def outputs(root: Path) -> dict:
    """Every point's per_image.csv rows and summary.json without the timing fields."""
    out = {}
    for point in sorted(root.glob("*/*/*/summary.json")):
        with open(point.with_name("per_image.csv"), newline="") as f:
            rows = [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]
        s = json.loads(point.read_text())
        for stat in ("mean", "std"):
            s[stat] = {k: v for k, v in s[stat].items() if k not in TIMING}
        out[str(point.parent.relative_to(root))] = {"rows": rows, "summary": s}
    return out


def one_run(samples, points, codec: str, kind: str, workers: int) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as tmp:
        spec = SweepSpec(codec=codec, dataset="bench", split="test", points=points, out_root=Path(tmp),
                         metrics={"device": "cpu", "lpips": True}, workers=workers, threads=1)
        load0 = os.getloadavg()[0]
        rec = {"executor": kind, "workers": workers}
        if kind == "local":
            c0, t0 = cpu_self_and_children(), time.perf_counter()
            res = run_sweep(spec, samples)
            rec["wall_s"], rec["cpu_s"] = time.perf_counter() - t0, cpu_self_and_children() - c0
        else:
            import psutil
            from distributed import LocalCluster

            t0 = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              worker_dashboard_address=None) as cluster:
                rec["cluster_start_s"] = time.perf_counter() - t0
                procs = [psutil.Process(n.pid) for n in cluster.workers.values()]

                def cpu() -> float:
                    return sum(sum(p.cpu_times()[:2]) for p in procs) + sum(os.times()[:2])

                spec.executor, spec.scheduler = "dask", cluster.scheduler_address
                c0, t0 = cpu(), time.perf_counter()
                res = run_sweep(spec, samples)
                rec["wall_s"], rec["cpu_s"] = time.perf_counter() - t0, cpu() - c0
                # the same sweep again on the now warm workers (into a fresh folder): steady state
                with tempfile.TemporaryDirectory(prefix="bench_dask_warm_") as tmp2:
                    spec.out_root = Path(tmp2)
                    c0, t0 = cpu(), time.perf_counter()
                    warm = run_sweep(spec, samples)
                    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
                rec.update(warm_wall_s=wall, warm_cpu_s=cpu_s, warm_tasks_per_s=warm.computed / wall,
                           warm_cpu_s_per_task=cpu_s / warm.computed)
        if res.failed:
            raise SystemExit(f"bench_dask: {len(res.failed)} image(s) failed: {res.failed[:3]}")
        rec.update(tasks=res.computed, tasks_per_s=res.computed / rec["wall_s"],
                   cpu_s_per_task=rec["cpu_s"] / res.computed, load_before=load0, load_after=os.getloadavg()[0])
        warm = (f"; warm workers {rec['warm_wall_s']:.1f} s ({rec['warm_tasks_per_s']:.2f}/s, "
                f"{rec['warm_cpu_s']:.1f} CPU-s)") if "warm_wall_s" in rec else ""
        print(f"{kind:>5} x{workers}: {res.computed} tasks in {rec['wall_s']:.1f} s ({rec['tasks_per_s']:.2f}/s, "
              f"{rec['cpu_s']:.1f} CPU-s){warm}, load {load0:.1f} -> {rec['load_after']:.1f}")
        return rec, outputs(Path(tmp))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--codec", default="jpeg2000")
    ap.add_argument("--out", default="results/bench/dask.json")
    a = ap.parse_args(argv)
    files, source = ucmerced_images("test", a.images, "bench_dask")
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    samples = [Sample(str(p), str(p.relative_to(root)), p.parent.name) for p in files]
    points = ([RatePoint(quality=q) for q in (110, 40, 20)] if a.codec == "jpeg2000"
              else [RatePoint(quality=MID_QUALITY[a.codec])])
    runs, first, identical = [], None, True
    for kind, workers in (("local", 1), ("dask", 1), ("local", 2), ("dask", 2)):
        rec, out = one_run(samples, points, a.codec, kind, workers)
        runs.append(rec)
        first = out if first is None else first
        rec["identical_to_first_run"] = out == first
        identical &= rec["identical_to_first_run"]
    by = {(r["executor"], r["workers"]): r for r in runs}
    ratio = by["dask", 2]["tasks_per_s"] / by["dask", 1]["tasks_per_s"]
    warm_ratio = by["dask", 2]["warm_tasks_per_s"] / by["dask", 1]["warm_tasks_per_s"]
    result = {
        "benchmark": "Dask executor: 1 vs 2 LocalCluster workers (processes x 1 thread); local pool for reference",
        "command": "python benchmarks/bench_dask.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "codec": a.codec, "points": [p.qtag for p in points], "images": f"{len(samples)} images from {source}",
        "tasks_per_run": len(samples) * len(points), "runs": runs,
        "dask_scaling_2_vs_1": ratio, "dask_scaling_2_vs_1_warm_workers": warm_ratio,
        "load_average_end": list(os.getloadavg()),
        "local_pool_scaling_2_vs_1": by["local", 2]["tasks_per_s"] / by["local", 1]["tasks_per_s"],
        "dask2_over_local2": by["dask", 2]["tasks_per_s"] / by["local", 2]["tasks_per_s"],
        "results_identical_apart_from_timings": identical,
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
    }
    write_json(a.out, result)
    print(f"Dask scaling 2 vs 1 worker: {ratio:.2f}x cold, {warm_ratio:.2f}x warm "
          f"(local pool {result['local_pool_scaling_2_vs_1']:.2f}x); "
          f"dask-2 / local-2 {result['dask2_over_local2']:.2f}; identical results: {identical} -> {a.out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
