"""GaussianMixtureConditional: likelihoods are a pmf, and real ANS coding is lossless."""

import pytest
import torch

from rsicbench.reproduce.codecs.base import CodecError
from rsicbench.reproduce.coding.entropy import GaussianMixtureConditional


def _params(K=3, C=4, H=5, W=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.rand(1, K * C, H, W, generator=g) * 3 + 0.2
    means = torch.randn(1, K * C, H, W, generator=g) * 4
    weights = torch.randn(1, K * C, H, W, generator=g)
    return scales, means, weights


def test_likelihood_sums_to_one_over_integers():
    gmm = GaussianMixtureConditional(K=3).eval()
    s, m, w = _params(C=1, H=1, W=1)
    grid = torch.arange(-60, 61, dtype=torch.float32).view(1, -1, 1, 1)
    lk = gmm.likelihood(grid.permute(1, 0, 2, 3), s.repeat(121, 1, 1, 1), m.repeat(121, 1, 1, 1), w.repeat(121, 1, 1, 1))
    assert lk.sum().item() == pytest.approx(1.0, abs=1e-4)


def test_compress_decompress_lossless_and_near_estimate():
    torch.manual_seed(0)
    gmm = GaussianMixtureConditional(K=3).eval()
    s, m, w = _params()
    y = m.view(1, 3, 4, 5, 6)[:, 0] + torch.randn(1, 4, 5, 6) * 2  # plausible latents
    y_hat, lk = gmm(y, s, m, w)
    strings = gmm.compress(y, s, m, w)
    out = gmm.decompress(strings, s, m, w)
    assert torch.equal(out, y_hat)
    est_bits = float(-torch.log2(lk).sum())
    real_bits = 8 * (len(strings[0]) - 8)  # minus the 8-byte (lo, n) prefix
    assert real_bits <= est_bits + 64 and real_bits >= 0.8 * est_bits - 32


def test_corrupted_stream_is_a_codec_error_or_decodes_garbage_without_crash():
    gmm = GaussianMixtureConditional(K=3).eval()
    s, m, w = _params()
    with pytest.raises(CodecError):
        gmm.decompress([b"\x00\x00\x00\x00\xff\xff\xff\xff"], s, m, w)  # support 2^32-1
    with pytest.raises(CodecError):
        gmm.decompress([b"\x01\x02\x03"], s, m, w)


def test_accepts_5d_parameters():
    gmm = GaussianMixtureConditional(K=2).eval()
    s, m, w = (t.view(1, 2, 6, 5, 6) for t in _params(K=2, C=6))
    y = torch.randn(1, 6, 5, 6) * 3
    strings = gmm.compress(y, s, m, w)
    assert torch.equal(gmm.decompress(strings, s, m, w), torch.round(y))
