"""CFHPM / MROI-CFHPM: shapes (incl. non-multiples of 64), training steps, real bitstreams."""

from __future__ import annotations

import pytest
import torch

from rsicbench.reproduce.models import create_model
from rsicbench.reproduce.models.mroi.model import CFHPM, HyperAnalysis, HyperSynthesis

TINY = dict(N=8, M=12, hyper_channels=8)


def test_tables_1_2_shapes():
    x = torch.randn(2, 12, 6, 10)
    z = HyperAnalysis(12, 5)(x)
    assert z.shape == (2, 5, 3, 5)
    assert HyperSynthesis(5, 12)(z).shape == (2, 12, 6, 10)


@pytest.mark.parametrize("name", ["cfhpm", "mroi-cfhpm"])
def test_forward_shapes_non_multiple_of_64(name):
    torch.manual_seed(0)
    m = create_model(name, **TINY)
    assert m.needs_roi == (name == "mroi-cfhpm")
    x = torch.rand(1, 3, 70, 45)
    roi = (torch.rand(1, 1, 70, 45) > 0.5).float() if m.needs_roi else None
    out = m(x, roi)
    assert out["x_hat"].shape == x.shape
    assert set(out["likelihoods"]) == {"y", "z1", "z2"}


def test_mroi_requires_matching_roi():
    m = create_model("mroi-cfhpm", **TINY)
    with pytest.raises(ValueError, match="needs an ROI"):
        m(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="does not match"):
        m(torch.rand(1, 3, 64, 64), torch.ones(1, 1, 32, 64))


def test_roi_changes_encoder_input():
    torch.manual_seed(0)
    m = create_model("mroi-cfhpm", **TINY)
    x = torch.rand(1, 3, 64, 64)
    a = m._prepare(x, torch.ones(1, 1, 64, 64))
    b = m._prepare(x, torch.zeros(1, 1, 64, 64))
    assert not torch.allclose(a, b)


def test_three_stage_training_finite_loss():
    torch.manual_seed(0)
    m = create_model("mroi-cfhpm", **TINY)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 64, 64)
    roi = (torch.rand(2, 1, 64, 64) > 0.3).float()
    total = 6
    assert CFHPM.stage_schedule(total) == [0, 2, 4]
    for step in range(total):
        m.set_stage(m.stage_for_step(step, total))
        out = m(x, roi)
        bpp = sum(-torch.log2(lk).sum() for lk in out["likelihoods"].values()) / (2 * 64 * 64)
        loss = 0.01 * 255**2 * torch.mean((out["x_hat"] - x) ** 2) + bpp + m.aux_loss()
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m.stage == 3
    with pytest.raises(ValueError):
        m.set_stage(4)


@pytest.mark.parametrize("stage", [1, 3])
def test_compress_decompress_round_trip(stage):
    torch.manual_seed(0)
    m = create_model("mroi-cfhpm", stage=stage, **TINY).eval()
    m.update(force=True)
    x = torch.rand(1, 3, 70, 90)
    roi = (torch.rand(1, 1, 70, 90) > 0.5).float()
    with torch.no_grad():
        enc = m.compress(x, roi)
        dec = m.decompress(enc["strings"], enc["shape"])["x_hat"][..., :70, :90]
        ref = m(x, roi)["x_hat"].clamp(0, 1)
    assert all(isinstance(s[0], bytes) and len(s[0]) > 0 for s in enc["strings"])
    assert torch.allclose(dec, ref, atol=1e-5)
