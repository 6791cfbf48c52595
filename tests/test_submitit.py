"""`rsicbench train-submit` with submitit's local executor: the checkpoint lands in the DVC
train stage's output folder, and a job preempted mid-run requeues and resumes from latest.pt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
import yaml

from rsicbench.imageio import write_png
from rsicbench.reproduce.commands import train as cli_train
from rsicbench.reproduce.commands import train_submit as cli_train_submit
REPO = Path(__file__).resolve().parents[1]

TINY = ["--set", 'arch={"N": 8, "M": 8}', "--set", "batch=2", "--set", "ckpt_every=2", "--set", "val_every=50",
        "--set", "val_images=1", "--set", "threads=1"]


@pytest.fixture
def project(project_copy, tmp_path):
    """A project copy (conftest) and three training images; results/ goes to tmp."""
    rng = np.random.default_rng(3)
    for i in range(3):
        write_png(tmp_path / "imgs" / f"im{i}.png", rng.integers(0, 255, (72, 72, 3), dtype=np.uint8))
    return project_copy, tmp_path / "imgs"


def stage_output(root: Path, model: str, index: int) -> Path:
    """The run folder of rate r<index> inside the output dvc.yaml's train@<model> stage declares."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["do"]
    (template,) = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
    return root / template.replace("${key}", model) / f"r{index}"


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_local_job_writes_the_dvc_stage_output(project, capsys):
    root, imgs = project
    argv = ["--models", "bmshj2018-hyperprior", "--rates", "r0", "--executor", "local", "--profile", "ci", "--wait",
            "--folder", str(root / "jobs" / "%j"), "--train-dir", str(imgs), "--val-dir", str(imgs),
            "--steps", "4", "--timeout-min", "5", *TINY]
    assert cli_train_submit.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["steps"] == 4 and result["resumed_from"] == 0
    out = stage_output(root, "bmshj2018-hyperprior", 0)
    assert result["out"] == str(out)
    assert torch.load(out / "latest.pt", weights_only=True)["step"] == 4 and (out / "best.pt").is_file()
    # what `dvc repro train@bmshj2018-hyperprior` then runs for r0: the stage's command finds the
    # finished run and trains nothing (DVC only records the files)
    cmd = ["--model", "bmshj2018-hyperprior", "--rate", "r0", "--profile", "ci", "--quiet", "--train-dir", str(imgs),
           "--val-dir", str(imgs), "--steps", "4", *TINY]
    assert cli_train.main(cmd) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["resumed_from"] == 4 and again["steps"] == 4


def test_bad_requests_fail_before_submitting(project, capsys):
    root, _ = project
    assert "--gpus-per-node" in cli_train_submit.build_parser().format_help()
    assert cli_train_submit.main(["--models", "nope", "--executor", "local", "--folder", str(root / "j")]) == 2
    assert "no entry for model 'nope'" in capsys.readouterr().err
    assert cli_train_submit.main(["--models", "mbt2018", "--rates", "r9", "--executor", "local"]) == 2
    assert "no r9" in capsys.readouterr().err
    if shutil.which("sbatch") is None:
        assert cli_train_submit.main(["--models", "mbt2018", "--executor", "slurm"]) == 2
        assert "sbatch not found" in capsys.readouterr().err
    assert not (root / "j").exists() and not (root / "results").exists()


@pytest.mark.slow
@pytest.mark.timeout(170)
def test_preempted_job_requeues_and_resumes_from_latest(project):
    """USR2 (Slurm's preemption / time-limit warning) mid-run: submitit calls the job's
    checkpoint hook, requeues it, and the rerun continues from latest.pt to the last step."""
    root, imgs = project
    args = cli_train_submit.build_parser().parse_args(
        ["--models", "bmshj2018-hyperprior", "--executor", "local", "--train-dir", str(imgs), "--val-dir", str(imgs),
         "--steps", "80", "--timeout-min", "10", "--max-requeue", "2", *TINY])
    out = stage_output(root, "bmshj2018-hyperprior", 0)
    job = cli_train_submit.make_executor(args, str(root / "jobs" / "%j")).submit(
        cli_train_submit.TrainJob(str(root), cli_train_submit.job_argv("bmshj2018-hyperprior", "r0", "ci", out, args)))
    deadline = time.time() + 100
    while not (out / "latest.pt").is_file():  # the first checkpoint (step 2) is written
        assert time.time() < deadline and job.state == "RUNNING", job.stderr()
        time.sleep(0.1)
    (task,) = psutil.Process(int(job.job_id)).children()  # the job's one task, under submitit's controller
    os.kill(task.pid, signal.SIGUSR2)
    result = job.result()
    saved_then = result["resumed_from"]
    assert 2 <= saved_then < 80 and result["steps"] == 80
    assert "Requeued job" in (job.stderr() or "") + (job.stdout() or "")
    assert torch.load(out / "latest.pt", weights_only=True)["step"] == 80
    steps = [int(line.split(",")[0]) for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == 80


def test_finetuned_rates_go_in_one_job_after_their_anchor(project, monkeypatch, capsys):
    """train.finetune: the other rates start from the anchor's weights, so a model's rates are one
    job (anchor first) instead of parallel jobs that would fail for want of the anchor."""
    root, _ = project
    path = root / "configs/train.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["ci"]["train"].update(steps=4, finetune={"from": "r1", "steps": 2})
    path.write_text(yaml.safe_dump(cfg))
    submitted = []

    class Fake:
        def update_parameters(self, **kw):
            pass

        def submit(self, job):
            submitted.append(job.argv)
            return type("J", (), {"job_id": str(len(submitted))})()

    monkeypatch.setattr(cli_train_submit, "make_executor", lambda args, folder: Fake())
    assert cli_train_submit.main(["--models", "bmshj2018-hyperprior", "--executor", "local", "--profile", "ci"]) == 0
    (argv,) = submitted
    assert argv[argv.index("--rates") + 1] == "r1,r0,r2" and "--out" not in argv and "--rate" not in argv
    submitted.clear()
    cfg["ci"]["train"].pop("finetune")
    path.write_text(yaml.safe_dump(cfg))
    assert cli_train_submit.main(["--models", "bmshj2018-hyperprior", "--executor", "local", "--profile", "ci"]) == 0
    assert [a[a.index("--rate") + 1] for a in submitted] == ["r0", "r1", "r2"]
