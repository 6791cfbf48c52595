"""The engine on a Dask cluster (reproduce/evaluation/executors.py): the same files as the local pool,
also after a worker process is killed mid-run; resume; the CLI options; lazy import."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from rsicbench.imageio import write_png
from rsicbench.reproduce.evaluation.engine import RatePoint, SweepSpec, run_sweep, samples_from_folder

pytestmark = pytest.mark.timeout(180)

METRICS = {"device": "cpu", "lpips": False}
POINTS = (RatePoint(quality=30), RatePoint(quality=80))
TIMING = {"enc_s", "dec_s"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """6 structured images (gradients + noise), odd sizes too, in two class folders."""
    root = tmp_path_factory.mktemp("dask") / "imgs"
    rng = np.random.default_rng(19)
    y, x = np.mgrid[0:96, 0:96].astype(np.float64)
    for i in range(6):
        img = np.stack([x * 2 + 9 * i, y * 2, (x + y) * (1 + i / 6)], axis=2) + rng.normal(0, 12, (96, 96, 3))
        write_png(root / f"c{i % 2}" / f"img{i}.png", np.clip(img, 0, 255).astype(np.uint8)[: 96 - i])
    return samples_from_folder(root)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      worker_dashboard_address=None) as c:
        yield c


def _spec(out_root: Path, **kw) -> SweepSpec:
    return SweepSpec(codec="jpeg", dataset="toy", split="test", points=list(POINTS), out_root=out_root,
                     metrics=METRICS, workers=2, threads=1, **kw)


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory):
    """The local process pool's results (2 spawn workers)."""
    out = tmp_path_factory.mktemp("dask") / "local"
    res = run_sweep(_spec(out, parallel="process"), images)
    assert res.computed == 12 and not res.failed
    return out


def _without_timings(point_dir: Path) -> tuple[list[dict], dict]:
    with open(point_dir / "per_image.csv", newline="") as f:
        rows = [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]
    summary = json.loads((point_dir / "summary.json").read_text())
    for stat in ("mean", "std"):
        summary[stat] = {k: v for k, v in summary[stat].items() if k not in TIMING}
    return rows, summary


def assert_same_results(ours: Path, ref: Path) -> None:
    for p in POINTS:
        a, b = ours / "toy" / "jpeg" / p.qtag, ref / "toy" / "jpeg" / p.qtag
        rows, summary = _without_timings(a)
        assert (rows, summary) == _without_timings(b)
        assert len(rows) == 6 and summary["n_ok"] == 6 and all(r["error"] == "" for r in rows)
        recon = sorted(q.relative_to(a) for q in (a / "recon").rglob("*.png"))
        assert recon == sorted(q.relative_to(b) for q in (b / "recon").rglob("*.png")) and len(recon) == 6
        for rel in recon:
            assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert json.loads((ours / "toy" / "jpeg.json").read_text())[0]["mean"]["bpp"] == \
        json.loads((ref / "toy" / "jpeg.json").read_text())[0]["mean"]["bpp"]


def test_worker_killed_mid_run(cluster, images, reference, tmp_path):
    """SIGKILL one worker process while it holds tasks: they rerun, nothing lost or duplicated.
    First in the file: the workers are cold (imports, codec and MetricSuite builds), so tasks
    are still pending when the first row comes back."""
    spec = _spec(tmp_path, executor="dask", scheduler=cluster.scheduler_address)
    seen, killed = [], {}
    with Client(cluster.scheduler_address) as watcher:

        def kill_once(row):
            seen.append((row["qtag"], row["image"]))
            if killed:
                return
            busy = {addr: keys for addr, keys in watcher.processing().items() if keys}
            assert busy, "every task finished before the first row came back: nothing to kill"
            nanny = next(n for n in cluster.workers.values() if n.worker_address in busy)
            killed.update(address=nanny.worker_address, tasks=len(busy[nanny.worker_address]))
            os.kill(nanny.pid, signal.SIGKILL)

        res = run_sweep(spec, images, on_result=kill_once)
        assert killed["address"] not in watcher.scheduler_info()["workers"]  # that process is gone
    assert killed["tasks"] >= 1
    assert (res.computed, res.failed) == (12, [])
    assert sorted(seen) == sorted({(p.qtag, s.relpath) for p in POINTS for s in images})  # each exactly once
    assert_same_results(tmp_path, reference)


@pytest.mark.slow
def test_task_that_kills_its_workers_is_that_images_error(images, reference, cluster, tmp_path):
    """allowed-failures=0: the task on a killed worker is given up (KilledWorker), recorded as
    that image's error in its part; the others finish; the next run redoes just those."""
    import dask

    spec = _spec(tmp_path)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                         worker_dashboard_address=None) as strict:
        spec.executor, spec.scheduler = "dask", strict.scheduler_address
        with Client(strict.scheduler_address) as watcher:

            def kill_once(row):
                if not getattr(kill_once, "done", False) and any(watcher.processing().values()):
                    kill_once.done = True
                    os.kill(next(iter(strict.workers.values())).pid, signal.SIGKILL)

            res = run_sweep(spec, images, on_result=kill_once)
    assert res.computed == 12 and 1 <= len(res.failed) < 12
    assert all(err.startswith("KilledWorker") for _, _, err in res.failed)
    spec.scheduler = cluster.scheduler_address
    again = run_sweep(spec, images)
    assert (again.computed, again.skipped, again.failed) == (len(res.failed), 12 - len(res.failed), [])
    assert_same_results(tmp_path, reference)


def test_dask_matches_local_pool_and_resumes(cluster, images, reference, tmp_path):
    spec = _spec(tmp_path, executor="dask", scheduler=cluster.scheduler_address)
    seen = []
    res = run_sweep(spec, images, on_result=lambda r: seen.append((r["qtag"], r["image"])))
    assert (res.computed, res.skipped, res.failed) == (12, 0, [])
    assert sorted(seen) == sorted({(p.qtag, s.relpath) for p in POINTS for s in images})  # each task once
    assert_same_results(tmp_path, reference)
    # resumable: a finished run computes nothing; a lost part is recomputed on the cluster
    assert (run_sweep(spec, images).computed, run_sweep(spec, images).skipped) == (0, 12)
    (tmp_path / "toy" / "jpeg" / "q30" / "parts" / "c1" / "img3.json").unlink()
    assert run_sweep(spec, images).computed == 1
    assert_same_results(tmp_path, reference)


def test_cli_sweep_on_dask(cluster, images, reference, tmp_path, capsys, monkeypatch):
    from rsicbench.reproduce.commands.sweep import main

    folder = str(Path(images[0].path).parents[1])
    argv = ["--codec", "jpeg", "--images-dir", folder, "--dataset", "toy", "--out-root", str(tmp_path),
            "--qualities", "30", "80", "--matched-bpp", "--no-lpips", "--workers", "2", "--profile", "ci",
            "--per-class", "3"]
    monkeypatch.setenv("RSICBENCH_SCHEDULER", cluster.scheduler_address)  # the environment fills in
    transitions = cluster.scheduler.transition_counter
    assert main(argv + ["--executor", "dask"]) == 0
    assert "computed 12" in capsys.readouterr().out
    assert cluster.scheduler.transition_counter > transitions  # the tasks went through the scheduler
    assert_same_results(tmp_path, reference)
    # bad input: one clear message, exit 2
    monkeypatch.delenv("RSICBENCH_SCHEDULER")
    monkeypatch.setenv("RSICBENCH_EXECUTOR", "dask")
    assert main(argv) == 2
    assert "needs a scheduler address" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_learned_checkpoint_on_dask(cluster, images, tmp_path, capsys):
    """`rsicbench evaluate` (a learned codec, thread-safe: no per-worker lock) on the cluster."""
    import torch

    from rsicbench.reproduce.commands.evaluate import main
    from rsicbench.reproduce.models.registry import create_model

    torch.manual_seed(0)
    net = create_model("bmshj2018-hyperprior", N=8, M=12)
    net.update(force=True)
    ckpt = tmp_path / "tiny.pth.tar"
    torch.save({"state_dict": net.state_dict()}, ckpt)  # CompressAI's format
    folder = str(Path(images[0].path).parents[1])
    outs = {}
    for executor in ("local", "dask"):
        argv = ["--model", "bmshj2018-hyperprior", "--rate", "r0", "--profile", "ci", "--checkpoint", str(ckpt),
                "--images-dir", folder, "--dataset-name", "toy", "--out-root", str(tmp_path / executor),
                "--executor", executor, "--scheduler", cluster.scheduler_address]
        assert main(argv) == 0, capsys.readouterr().err
        outs[executor] = tmp_path / executor / "toy" / "bmshj2018-hyperprior" / "q0"
    rows, summary = _without_timings(outs["dask"])
    assert (rows, summary) == _without_timings(outs["local"]) and summary["n_ok"] == len(rows) >= 2
    assert (outs["dask"] / "rate_check.json").read_text() == (outs["local"] / "rate_check.json").read_text()


def test_unreachable_scheduler_is_one_clear_error(images, tmp_path, monkeypatch):
    from rsicbench.reproduce.evaluation import executors
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(executors.ExecutorError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_sweep(_spec(tmp_path, executor="dask", scheduler="tcp://127.0.0.1:9"), images)


def test_ordinary_commands_do_not_import_dask():
    code = ("import sys, rsicbench.reproduce.commands.sweep, rsicbench.reproduce.commands.evaluate, rsicbench.reproduce.evaluation.engine;"
            "print(sorted(m for m in ('dask', 'distributed', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
