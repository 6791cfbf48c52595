"""The rate audit's estimate is the information content of exactly the coded symbols
(reproduce/coding/coded_info.py), and its breakdown matches the real rANS strings."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rsicbench.reproduce.codecs.base import create_codec
from rsicbench.reproduce.coding import coded_info
from rsicbench.reproduce.models.registry import create_model


def _model(name, **arch):
    """A random-init model whose latents and means are far from 0 (as a trained one's)."""
    torch.manual_seed(3)
    m = create_model(name, **arch).eval()
    with torch.no_grad():
        for p in m.g_a[-1].parameters():
            p.mul_(40)
        if hasattr(m, "entropy_parameters"):
            m.entropy_parameters[-1].bias.normal_(0, 3)
    m.update(force=True)
    return m


def _image(rng, size=64):
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    im = np.stack([x * 3, y * 3, (x + y) * 1.5], 2) + rng.normal(0, 25, (size, size, 3))
    return np.clip(im, 0, 255).astype(np.uint8)


def _forward_bits(model, x):
    with torch.no_grad():
        return sum(float(-torch.log2(v).sum()) for v in model(x)["likelihoods"].values())


def _ar_coded_bits(model, x):
    """What compressai's `_compress_ar` codes, re-derived here position by position: symbols
    round(y - means), context of round(y - means) + means; bits under the model's scales."""
    gc, k = model.gaussian_conditional, 5
    with torch.no_grad():
        y = model.g_a(x)
        z = model.h_a(y)
        z_hat, z_lik = model.entropy_bottleneck(z)  # eval: the coded z symbols + medians
        params = model.h_s(z_hat)
        y_hat = F.pad(torch.zeros_like(y), (2, 2, 2, 2))
        w = model.context_prediction.weight * model.context_prediction.mask
        bits = float(-torch.log2(z_lik).sum())
        for h in range(y.size(2)):
            for v in range(y.size(3)):
                ctx = F.conv2d(y_hat[:, :, h:h + k, v:v + k], w, bias=model.context_prediction.bias)
                gp = model.entropy_parameters(torch.cat((params[:, :, h:h + 1, v:v + 1], ctx), 1))
                scales, means = gp.chunk(2, 1)
                q = torch.round(y[:, :, h:h + 1, v:v + 1] - means)
                y_hat[:, :, h + 2:h + 3, v + 2:v + 3] = q + means
                bits += float(-torch.log2(gc.likelihood_lower_bound(gc._likelihood(q, scales))).sum())
    return bits


def test_autoregressive_estimate_is_the_coded_symbols_not_forward(rng, tmp_path):
    model = _model("mbt2018", N=8, M=8)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    codec = create_codec("mbt2018", 0, checkpoint=str(tmp_path / "w.pt"), threads=1)
    img = _image(rng)
    x, _, _ = codec._to_tensor(img)
    coded = _ar_coded_bits(codec.model, x)
    assert codec.estimate_bits(img) == pytest.approx(coded, rel=1e-5)
    # forward() quantizes round(y) for context and likelihoods: other symbols, another rate
    # (so the estimate before coded_info, forward's, fails the assertion above)
    assert _forward_bits(codec.model, x) != pytest.approx(coded, rel=1e-4)


@pytest.mark.parametrize("name", ["bmshj2018-hyperprior", "mbt2018-mean", "cheng2020-gmm"])
def test_non_mismatched_models_estimate_equals_forward(name, rng):
    """Where forward() quantizes as compress() does, both estimates agree."""
    model = _model(name, N=8, M=8)
    x = torch.from_numpy(_image(rng)).permute(2, 0, 1)[None].float() / 255
    _, bits = coded_info.measure(model, lambda: model.compress(x))
    assert sum(b.model for b in bits.values()) == pytest.approx(_forward_bits(model, x), rel=1e-4)
    assert sum(b.symbols for b in bits.values()) == sum(t.numel() for t in model(x)["likelihoods"].values())


def test_cdf_bits_match_the_rans_string_escapes_included():
    from compressai.entropy_models import GaussianConditional
    from compressai.models.google import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    g = torch.Generator().manual_seed(0)
    scales = torch.rand(1, 4, 16, 16, generator=g) * 6 + 0.05
    y = torch.randn(1, 4, 16, 16, generator=g) * scales
    y[0, 0, :4, :4] = torch.tensor([700.0, -3000.0, 40.0, -9.0]).repeat(4, 1)  # far tails: escapes
    _, bits = coded_info.measure(gc, lambda: gc.compress(y, gc.build_indexes(scales)))
    (b,) = bits.values()
    real = 8 * len(gc.compress(y, gc.build_indexes(scales))[0])
    # only the rANS flush is left: the 64-bit final state less the 31 bits of its start value
    assert 0 <= real - b.cdf <= 64


def test_gmm_coder_bits_match_its_strings(rng):
    """GMM: `cdf` is the mixture over the string's support, renormalized, i.e. what
    constriction codes with; the y string is that plus the ANS flush and its (lo, n) varints."""
    model = _model("cheng2020-gmm", N=8, M=8)
    x = torch.from_numpy(_image(rng)).permute(2, 0, 1)[None].float() / 255
    out, bits = coded_info.measure(model, lambda: model.compress(x))
    b = bits["gmm"]
    assert b.symbols == 8 * 4 * 4
    flush = 8 * len(out["strings"][0][0]) - b.cdf
    assert 0 <= flush <= 64 + 8 * 4
