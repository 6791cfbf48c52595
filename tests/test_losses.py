"""LTCHM's and DMENet's training losses against values computed by hand from the papers.

The models' real outputs (a tiny, float64 forward pass) go into our training loss
(`reproduce.training.train.rd_loss`, with the λ the pipeline derives from configs/train.yaml); the
same outputs go into numpy formulas written from the papers:
  LTCHM (Zhang et al. 2024, Sec. 3):  L = R + λ·MSE(x, x̂), pixels in [0,1], λ = 1024 (r3)
  DMENet (Shi et al. 2025, Eq. 15):   L = R + λ(D + ψ·Loss_MDSE), ψ = 0.0185, λ = 0.013 (r5),
      D = 255²·MSE on [0,1] pixels (the project's reading of λ, reproduce/training/lambdas.py),
      Loss_MDSE = MSE(MDEI(x̂), MDEI(x)), MDEI from Eqs. 2-5 (computed below in numpy).
R = −Σ log2 p / #pixels. Each test also checks that the misplacements it guards against
(λ outside its bracket, ψ dropped, the other λ convention) would move the value far beyond
the tolerance, so the comparison can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsicbench.config import settings
from rsicbench.reproduce.training.run_config import run_config
from rsicbench.reproduce.models import create_model
from rsicbench.reproduce.training.train import rd_loss

ATOL = 1e-12  # relative, float64 throughout; the smallest guarded term below is ~1e-8 of the loss


def _forward(model_name: str, rate: str, seed: int = 0):
    """(TrainConfig, model, x, out) for a tiny float64 training-mode forward pass."""
    tc = run_config(model_name, rate, settings("train", "ci"))
    torch.manual_seed(seed)
    net = create_model(model_name, **tc.arch).double().train()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    out = net(x)
    return tc, net, x, out


def _bpp_mse(x: torch.Tensor, out: dict) -> tuple[float, float]:
    n, _, h, w = x.shape
    bits = sum(float(-np.log2(lk.detach().numpy()).sum()) for lk in out["likelihoods"].values())
    mse = float(np.mean((out["x_hat"].detach().numpy() - x.numpy()) ** 2))
    return bits / (n * h * w), mse


# ---------------------------------------------------------------------------- LTCHM
def test_ltchm_loss_is_lambda_mse01_plus_bpp():
    tc, net, x, out = _forward("ltchm-full", "r3")
    lam_paper = 1024.0  # the paper's 4th λ, multiplying MSE on [0,1] pixels
    bpp, mse = _bpp_mse(x, out)
    hand = bpp + lam_paper * mse
    ours = rd_loss(net, x, out, tc.lam, tc.distortion)["loss"].item()
    assert ours == pytest.approx(hand, rel=0, abs=ATOL * max(1.0, hand))
    # what the comparison rules out: λ read as CompressAI's (×255²), λ on the rate, λ dropped
    for wrong in (bpp + lam_paper * 255**2 * mse, lam_paper * bpp + mse, bpp + mse):
        assert abs(wrong - hand) > 1e6 * ATOL * max(1.0, hand)


# ---------------------------------------------------------------------------- DMENet
def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _bar3(v: np.ndarray) -> np.ndarray:
    """1x3 bar convolution, every weight 1/3, zero padding (Fig. 2: BarConv 1x3). The model keeps
    1/3 as a float32 parameter, so the hand value uses float32's 1/3 too."""
    p = np.pad(v, 1)
    return (p[:-2] + p[1:-1] + p[2:]) * float(np.float32(1.0 / 3.0))


def _gauss5(x: np.ndarray, scale: float) -> np.ndarray:
    """Per-channel 5x5 Gaussian conv, kernel scale·[1 4 6 4 1]ᵀ[1 4 6 4 1]/256, zero padding (Fig. 3)."""
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0 * scale
    c, h, w = x.shape
    p = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    return sum(g[i, j] * p[:, i:i + h, j:j + w] for i in range(5) for j in range(5))


def _mdei(x: np.ndarray) -> np.ndarray:
    """MDEI(Origin), Eqs. 2-5, one image CxHxW: e·X6 + f·X3 + g·X7 with a=b=c=d=e=g=0.5, f=0.1.
    Std pooling is the sample std (n−1), as the implementation (torch.std) computes it."""
    c, h, w = x.shape
    ha = np.array([0.5 * x[:, :, j].mean() + 0.5 * x[:, :, j].std(ddof=1) for j in range(w)])  # per column
    va = np.array([0.5 * x[:, i, :].mean() + 0.5 * x[:, i, :].std(ddof=1) for i in range(h)])  # per row
    x6 = np.broadcast_to(_sigmoid(_bar3(ha))[None, None, :], x.shape)
    x7 = np.broadcast_to(_sigmoid(_bar3(va))[None, :, None], x.shape)
    up = np.zeros_like(x)
    up[:, ::2, ::2] = _gauss5(x, 1.0)[:, ::2, ::2]  # interval down-sampling, zero-insertion up-sampling
    x3 = x - _gauss5(up, 4.0)  # Gaussian conv 2 = 4 x Gaussian conv 1
    return 0.5 * x6 + 0.1 * x3 + 0.5 * x7


def test_dmenet_loss_has_psi_weighted_mdei_inside_lambda():
    tc, net, x, out = _forward("dmenet-full", "r5")
    lam, psi = 0.013, 0.0185  # the paper's 6th λ and its ψ
    assert tc.lam == lam
    bpp, mse = _bpp_mse(x, out)
    mdse = float(np.mean((_mdei(out["x_hat"].detach().numpy()[0]) - _mdei(x.numpy()[0])) ** 2))
    hand = bpp + lam * (255**2 * mse + psi * mdse)
    assert net.extra_loss(x, out).item() == pytest.approx(psi * mdse, rel=1e-9)
    ours = rd_loss(net, x, out, tc.lam, tc.distortion)["loss"].item()
    tol = ATOL * max(1.0, hand)
    assert ours == pytest.approx(hand, rel=0, abs=tol)
    # what the comparison rules out: ψ-term outside λ's bracket, ψ dropped, the MDEI term missing
    for wrong in (bpp + lam * 255**2 * mse + psi * mdse, bpp + lam * (255**2 * mse + mdse),
                  bpp + lam * 255**2 * mse):
        assert abs(wrong - hand) > 1000 * tol
