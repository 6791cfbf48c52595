"""Our training step == CompressAI's (RateDistortionLoss, net_aux_optimizer, aux_loss, clipping).

Runs benchmarks/bench_train_parity.py's two loops for a few steps at tiny width on the same
batches and asserts equal losses at every step; negative controls show the comparison
catches a changed λ, a missing clip and a changed aux lr on our side.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rsicbench.reproduce.training.train import TrainConfig
from bench_loader import load_bench

STEPS = 10
RTOL = 1e-6  # float tolerance; today the two loops agree bit for bit


def _images(n: int = 4, size: int = 96) -> list[np.ndarray]:
    """Structured test images (gradients + texture): what matters is identical input to both loops."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    out = []
    for i in range(n):
        base = np.stack([x * (1 + i), y * 2, (x + y) * (0.5 + i / 4)], axis=2)
        out.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return out


def _cfg(model: str, **kw) -> TrainConfig:
    # lr 1e-3: larger steps make any drift between the loops show within a few steps
    base = dict(model=model, lam=0.013, arch={"N": 16, "M": 16}, steps=STEPS, batch=2, patch=64, lr=1e-3,
                aux_lr=1e-3, lr_milestones=(0.5,), lr_gamma=0.1, clip=1.0, seed=0, device="cpu", threads=1)
    return TrainConfig(**{**base, **kw})


def _max_rel(res) -> float:
    return max(r["rel"][k] for r in res["rows"] for k in ("loss", "bpp", "mse", "aux"))


@pytest.fixture(scope="module")
def bench():
    torch.set_num_threads(1)
    return load_bench("bench_train_parity")


@pytest.mark.parametrize("model", ["bmshj2018-hyperprior", "mbt2018-mean"])
def test_our_step_equals_compressai_step(bench, model):
    cfg = _cfg(model)
    images = _images()
    res = bench.run_pair(model, cfg, bench.batch_stream(images, cfg, STEPS), RTOL)
    assert len(res["rows"]) == STEPS
    assert res["first_step_over_rtol"] is None, res["rows"][res["first_step_over_rtol"]]
    assert _max_rel(res) <= RTOL
    # the models moved (a loop that never updated would trivially agree), lr schedule applied
    losses = [r["ours"]["loss"] for r in res["rows"]]
    assert losses[-1] < losses[0]
    assert res["rows"][-1]["ours"]["lr"] == res["rows"][-1]["ref"]["lr"] == pytest.approx(1e-4)
    for a, b in zip(res["ours_model"].state_dict().values(), res["ref_model"].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("change", [{"lam": 0.013 * 1.01}, {"clip": 0.0}, {"aux_lr": 2e-3}, {"lr_milestones": ()}])
def test_parity_check_catches_a_drift(bench, change):
    """The same comparison with one setting changed on OUR side only must report a mismatch."""
    model = "bmshj2018-hyperprior"
    cfg = _cfg(model)
    res = bench.run_pair(model, cfg, bench.batch_stream(_images(), cfg, STEPS), RTOL,
                         ours_cfg=dataclasses.replace(cfg, **change))
    assert res["first_step_over_rtol"] is not None and _max_rel(res) > 10 * RTOL


def test_train_function_matches_reference(bench, tmp_path):
    """Our whole train() (validation, checkpoints and the CDF update of best.pt interleaved)
    ends with the weights of the CompressAI reference loop fed the same batches."""
    from rsicbench.imageio import write_png
    from rsicbench.reproduce.models.checkpoints import TABLE_SUFFIXES
    from rsicbench.reproduce.training.train import load_checkpoint, load_images, train

    paths = []
    for i, im in enumerate(_images()):
        write_png(tmp_path / f"im{i}.png", im)
        paths.append(str(tmp_path / f"im{i}.png"))
    model = "mbt2018-mean"
    cfg = _cfg(model, val_every=4, ckpt_every=4, val_images=2, val_patch=64)
    train(cfg, paths, paths, tmp_path / "run", progress=False)
    ours = load_checkpoint(tmp_path / "run" / "latest.pt")["model"]
    res = bench.run_pair(model, cfg, bench.batch_stream(load_images(paths, cfg.patch), cfg, STEPS), RTOL)
    ref = res["ref_model"].state_dict()
    params = [k for k in ref if not k.endswith(TABLE_SUFFIXES)]
    assert params and set(params) <= set(ours)
    for k in params:
        torch.testing.assert_close(ours[k], ref[k], rtol=RTOL, atol=1e-7, msg=k)
