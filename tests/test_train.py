"""Training loop: λ conversion, checkpoints, and resume after SIGKILL (CLI in a subprocess)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rsicbench.imageio import write_png
from rsicbench.reproduce.training.lambdas import to_compressai


def _images(folder: Path, n: int = 3, size: int = 72) -> Path:
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_png(folder / f"im{i}.png", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return folder


def test_lambda_conventions():
    assert to_compressai(4096, "mse01") == pytest.approx(4096 / 255**2)
    assert to_compressai(0.013, "compressai") == 0.013
    with pytest.raises(ValueError, match="unknown"):
        to_compressai(1, "nope")


@pytest.mark.timeout(110)
def test_resume_after_sigkill(tmp_path):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "run"
    base = [sys.executable, "-m", "rsicbench.cli", "train", "--profile", "ci", "--model", "bmshj2018-hyperprior",
            "--rate", "r0", "--train-dir", str(imgs), "--val-dir", str(imgs), "--out", str(out), "--quiet",
            "--set", 'arch={"N": 8, "M": 8}', "--set", "batch=2", "--set", "ckpt_every=2", "--set", "val_every=2",
            "--set", "val_images=2", "--set", "threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(base + ["--steps", "100000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    latest = out / "latest.pt"
    deadline = time.time() + 80
    try:
        while time.time() < deadline and proc.poll() is None:
            if latest.is_file() and torch.load(latest, weights_only=True)["step"] >= 4:
                break
            time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = torch.load(latest, weights_only=True)["step"]
    assert saved >= 4
    res = subprocess.run(base + ["--steps", str(saved + 2)], env=env, capture_output=True, text=True, timeout=80)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["resumed_from"] == saved and result["steps"] == saved + 2
    ck = torch.load(out / "latest.pt", weights_only=True)
    assert ck["step"] == saved + 2 and ck["model_name"] == "bmshj2018-hyperprior"
    assert (out / "best.pt").is_file()
    steps = [int(line.split(",")[0]) for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == saved + 2


@pytest.mark.timeout(170)
def test_ddp_two_processes_on_cpu(tmp_path):
    """The torchrun path (gloo on CPU): both ranks train, rank 0 alone writes the checkpoints."""
    imgs = _images(tmp_path / "imgs", n=4)
    out = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "rsicbench.cli", "train", "--profile", "ci",
           "--model", "bmshj2018-hyperprior", "--rate", "r0", "--train-dir", str(imgs), "--val-dir", str(imgs),
           "--out", str(out), "--quiet", "--set", 'arch={"N": 8, "M": 8}', "--set", "batch=2",
           "--set", "threads=1", "--steps", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=160)
    assert res.returncode == 0, res.stderr[-3000:]
    results = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 2 and all(r["steps"] == 4 for r in results)
    ck = torch.load(out / "latest.pt", weights_only=True)
    assert ck["step"] == 4 and (out / "best.pt").is_file()


def test_ms_ssim_distortion():
    from rsicbench.reproduce.models.registry import create_model
    from rsicbench.reproduce.training.train import rd_loss

    torch.manual_seed(0)
    net = create_model("bmshj2018-factorized", N=8, M=8)
    x = torch.rand(1, 3, 176, 176)
    r = rd_loss(net, x, net(x), 0.013, "ms-ssim")
    assert torch.isfinite(r["loss"]) and r["loss"] > r["bpp"]  # λ·(1 − MS-SSIM) > 0 for a random net
    r["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.g_a.parameters())
    with pytest.raises(ValueError, match="ms-ssim distortion needs crops larger than 160 px"):
        rd_loss(net, x[..., :64, :64], net(x[..., :64, :64]), 0.013, "ms-ssim")
