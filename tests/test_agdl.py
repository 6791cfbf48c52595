"""AGDL: the CS projection holds, real two-layer bitstreams, nets train, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsicbench.reproduce.codecs import agdl
from rsicbench.reproduce.codecs.base import CodecError


def test_sensing_matrix_full_row_rank_and_seeded():
    h = agdl.sensing_matrix(20, 50, seed=3)
    assert h.shape == (20, 50) and np.linalg.matrix_rank(h) == 20
    assert np.array_equal(h, agdl.sensing_matrix(20, 50, seed=3))
    assert not np.allclose(h, agdl.sensing_matrix(20, 50, seed=4))
    with pytest.raises(ValueError):
        agdl.sensing_matrix(60, 50, 0)


def test_projection_is_least_norm_and_exact(rng):
    h = agdl.sensing_matrix(15, 40, seed=1)
    c_g, y = rng.normal(size=40), rng.normal(size=15)
    c = agdl.least_norm_projection(c_g, h, y)
    assert np.allclose(h @ c, y, atol=1e-10)
    # least norm: the correction lies in the row space of H
    delta = c - c_g
    assert np.allclose(delta, h.T @ np.linalg.lstsq(h.T, delta, rcond=None)[0], atol=1e-10)
    t = agdl.least_norm_projection_torch(torch.tensor(c_g), torch.tensor(h), torch.tensor(y))
    assert np.allclose(t.numpy(), c)


def test_topk_is_deterministic_with_ties():
    p = np.array([[0.5, 0.9], [0.5, 0.1]])
    assert agdl.topk_indices(p, 2).tolist() == [0, 1]
    assert agdl.topk_indices(p, 0).size == 0


def test_ycbcr_round_trip(smooth_image):
    back = agdl.ycbcr_to_rgb(agdl.rgb_to_ycbcr(smooth_image))
    assert np.abs(back.astype(int) - smooth_image).max() <= 1


def test_residual_coder_round_trip(rng):
    s = rng.integers(-30, 30, size=257)
    data, scale = agdl.encode_residuals(s)
    assert np.array_equal(agdl.decode_residuals(data, s.size, scale), s)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:96]
    imgs = []
    for i in range(2):
        base = np.stack([x * 2 + 40 * (i + 1), y * 2, (x + y)], axis=2) + rng.normal(0, 10, (96, 96, 3))
        base[30:60, 30:60] += 80
        imgs.append(np.clip(base, 0, 255).astype(np.uint8))
    nets, log = agdl.train_agdl(imgs, [None, np.ones((96, 96), bool)], steps=(3, 3, 3), batch=2, crop=64,
                                width=4, depth=1, blocks=1)
    return nets, log, imgs


def test_training_losses_finite(trained):
    _, log, _ = trained
    for k in ("G_car", "F", "G"):
        assert np.isfinite(log[k]["last_loss"])


def test_codec_satisfies_measurements_up_to_quantization(trained, smooth_image):
    nets, _, _ = trained
    codec = agdl.AGDLCodec(30, nets=nets, critical_fraction=0.05, cs_ratio=0.5, step=2.0)
    data = codec.encode(smooth_image)
    base_len = len(codec.base_codec.encode(smooth_image))
    assert len(data) > base_len  # rate = header + base + refinement, all real
    full = codec.decode_full(data)
    k, m = codec.sizes(64, 64)
    assert full["idx"].size == k and full["H"].shape == (m, k)
    # exactly the transmitted (dequantised) measurements ...
    assert np.allclose(full["H"] @ full["c_hat"], full["y_hat"], atol=1e-9)
    # ... i.e. the true measurements up to the quantisation step
    y_true = codec.analyse(smooth_image, codec.base_codec.encode(smooth_image))["y"]
    assert np.abs(full["H"] @ full["c_hat"] - y_true).max() <= codec.step / 2 + 1e-9
    rgb = codec.decode(data)
    assert rgb.shape == smooth_image.shape and rgb.dtype == np.uint8


def test_car_variant_and_bad_streams(trained, smooth_image):
    nets, _, _ = trained
    car = agdl.AGDLCodec(30, nets=nets, refine=False)
    assert car.name == "agdl-car"
    data = car.encode(smooth_image)
    assert car.decode(data).shape == smooth_image.shape
    with pytest.raises(CodecError, match="shorter than its header"):
        car.decode(b"xx")
    with pytest.raises(CodecError, match="not an AGDL stream"):
        car.decode(b"XXXX" + data[4:])
    with pytest.raises(CodecError, match="checkpoint"):
        agdl.AGDLCodec(30)


def test_checkpoint_round_trip(trained, tmp_path, smooth_image):
    nets, _, _ = trained
    nets.save(tmp_path / "a.pt")
    codec = agdl.AGDLCodec(30, checkpoint=str(tmp_path / "a.pt"))
    ref = agdl.AGDLCodec(30, nets=nets)
    assert codec.encode(smooth_image) == ref.encode(smooth_image)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):
        agdl.AGDLCodec(30, checkpoint=str(tmp_path / "bad.pt"))


def test_critical_mask_respects_roi(rng):
    y = rng.uniform(0, 255, (32, 32))
    roi = np.zeros((32, 32), bool)
    roi[:, :16] = True
    c = agdl.critical_mask(y, y + 20, roi)
    assert not c[:, 16:].any()
    with pytest.raises(ValueError, match="ROI"):
        agdl.critical_mask(y, y, np.ones((4, 4), bool))
