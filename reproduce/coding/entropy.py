"""Discretized Gaussian-mixture entropy model with REAL entropy coding (rANS, rans.py).

Cheng et al. 2020 ("Learned Image Compression with Discretized Gaussian Mixture Likelihoods
and Attention Modules", Eq. 6) model each latent ŷ_i with K Gaussians:

    p(ŷ_i) = Σ_k w_k [Φ((ŷ_i + ½ − μ_k)/σ_k) − Φ((ŷ_i − ½ − μ_k)/σ_k)],   Σ_k w_k = 1.

compressai's `GaussianConditional` codes one Gaussian through fixed CDF tables indexed by
scale; a mixture has no such one-parameter family, so here every symbol gets its own
probability table over the integer support [lo, lo + n) of the quantized latent, computed
from the mixture CDF in float64 and quantized to the rANS coder's 24-bit precision
(`rans.quantize_pmf`: deterministic, so encoder and decoder build identical rows on one
machine with fixed torch threads).

Quantization: ŷ = round(y) (no mean offset: a mixture has no single mean). Training uses
additive uniform noise, as in compressai.

Parameter layout accepted everywhere: `scales`, `means`, `weights` are either Bx K x C x H x W,
or B x (K·C) x H x W ordered component-major (all C channels of component 0, then 1, ...).
`weights` are logits (softmax over K) unless `weights_are_logits=False`.

Coding: the support (zigzag lo, n - 2, as rANS nibble integers) then the symbols, into the
shared stream of the learned codec's session (shared_stream.py, container format 4); used
outside a session (a model called directly) each string is a rANS stream of its own.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rsicbench.errors import CodecError
from rsicbench.reproduce.coding.coded_info import report_gmm
from rsicbench.reproduce.coding import rans, shared_stream

MAX_SUPPORT = 1 << 12  # latents beyond ±2048 mean a broken model or a corrupted stream
LIKELIHOOD_BOUND = 1e-9
SCALE_BOUND = 0.11  # as compressai's GaussianConditional


def _split(t: torch.Tensor, k: int) -> torch.Tensor:
    """B×(K·C)×H×W or B×K×C×H×W -> B×K×C×H×W."""
    if t.dim() == 5:
        return t
    b, kc, h, w = t.shape
    if kc % k:
        raise ValueError(f"mixture parameter with {kc} channels is not divisible by K={k}")
    return t.reshape(b, k, kc // k, h, w)


class GaussianMixtureConditional(nn.Module):
    """K-component discretized Gaussian mixture: likelihoods for training, ANS coding for bits."""

    def __init__(self, K: int = 3, weights_are_logits: bool = True,
                 scale_bound: float = SCALE_BOUND, likelihood_bound: float = LIKELIHOOD_BOUND):
        super().__init__()
        self.K = int(K)
        self.weights_are_logits = weights_are_logits
        self.scale_bound = float(scale_bound)
        self.likelihood_bound = float(likelihood_bound)

    # ---- parameters ---------------------------------------------------------------------
    def _params(self, scales, means, weights):
        s = _split(scales, self.K).clamp_min(self.scale_bound)
        m = _split(means, self.K)
        w = _split(weights, self.K)
        w = torch.softmax(w, dim=1) if self.weights_are_logits else w / w.sum(1, keepdim=True)
        return s, m, w

    def quantize(self, y: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "noise":
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        return torch.round(y)

    def likelihood(self, y_hat, scales, means, weights) -> torch.Tensor:
        s, m, w = self._params(scales, means, weights)
        y5 = y_hat.unsqueeze(1)
        # Φ via erfc of the negated argument: accurate in both tails (Cheng Eq. 6).
        upper = 0.5 * torch.erfc(-(y5 + 0.5 - m) / (s * math.sqrt(2)))
        lower = 0.5 * torch.erfc(-(y5 - 0.5 - m) / (s * math.sqrt(2)))
        p = (w * (upper - lower).abs()).sum(1)
        return p.clamp_min(self.likelihood_bound)

    def forward(self, y, scales, means, weights, training: bool | None = None):
        training = self.training if training is None else training
        y_hat = self.quantize(y, "noise" if training else "round")
        return y_hat, self.likelihood(y_hat, scales, means, weights)

    # ---- probability tables ---------------------------------------------------------------
    def pmf_table(self, scales, means, weights, lo: int, n: int) -> np.ndarray:
        """Per-symbol probabilities over the integers lo..lo+n-1: (#symbols, n) float64.

        The parameters are flattened in C order of B×C×H×W, the same order as the symbols.
        """
        s, m, w = (t.detach().to("cpu", torch.float64) for t in self._params(scales, means, weights))
        # -> (#symbols, K)
        s, m, w = (t.movedim(1, -1).reshape(-1, self.K) for t in (s, m, w))
        grid = torch.arange(lo, lo + n + 1, dtype=torch.float64) - 0.5  # bin edges
        cdf = 0.5 * torch.erfc(-(grid[None, None, :] - m[..., None]) / (s[..., None] * math.sqrt(2)))
        pmf = (w[..., None] * (cdf[..., 1:] - cdf[..., :-1])).sum(1)
        # floor: a bin far from every component can underflow to 0 (a row must be normalizable)
        return pmf.clamp_min(1e-16).numpy()

    # ---- real coding, all parameters known at once (no autoregression) -----------------
    def compress(self, y, scales, means, weights) -> list[bytes]:
        """One string per batch item (y_hat = round(y)): a placeholder while a shared-stream
        session is active, else a stream of its own."""
        out = []
        for i in range(y.size(0)):
            sym = torch.round(y[i:i + 1]).to(torch.int64)
            enc, own = _writer()
            lo, n = _put_support(enc, sym)
            table = self.pmf_table(scales[i:i + 1], means[i:i + 1], weights[i:i + 1], lo, n)
            _put_symbols(enc, sym.flatten().numpy() - lo, table)
            out.append(_written(enc, own))
        return out

    def decompress(self, strings, scales, means, weights) -> torch.Tensor:
        shape = _split(scales, self.K).shape
        outs = []
        for i, string in enumerate(strings):
            dec, own = _reader(string)
            lo, n = _get_support(dec)
            table = self.pmf_table(scales[i:i + 1], means[i:i + 1], weights[i:i + 1], lo, n)
            sym = dec.row_symbols(rans.quantize_pmf(table)) + lo
            if own:
                dec.finish()
            outs.append(torch.from_numpy(sym.astype(np.float32)).reshape(1, *shape[2:]))
        return torch.cat(outs, 0)


def support(symbols: torch.Tensor) -> tuple[int, int]:
    lo, hi = int(symbols.min()), int(symbols.max())
    n = max(2, hi - lo + 1)  # two symbols at least: a one-symbol row would carry no slot
    if n > MAX_SUPPORT:
        raise CodecError(f"GMM coder: latent range {lo}..{hi} exceeds {MAX_SUPPORT} symbols")
    return lo, n


# ---- the coder: the shared stream of the active session, or a stream per string ----------
def _writer() -> tuple[rans.Encoder, bool]:
    s = shared_stream.current()
    if s is not None and s.encoder is not None:
        return s.encoder, False
    return rans.Encoder(0), True


def _written(enc: rans.Encoder, own: bool) -> bytes:
    return enc.finish() if own else shared_stream.PLACEHOLDER


def _reader(string: bytes) -> tuple[rans.Decoder, bool]:
    s = shared_stream.current()
    if s is not None and s.decoder is not None:
        return s.decoder, False
    return rans.Decoder(bytes(string), 0, "GMM coder"), True


def _put_support(enc: rans.Encoder, sym: torch.Tensor) -> tuple[int, int]:
    """The string's symbol support [lo, lo + n) goes first (zigzag lo, n - 2)."""
    lo, n = support(sym)
    enc.uint((lo << 1) ^ (lo >> 63))
    enc.uint(n - 2)
    return lo, n


def _get_support(dec: rans.Decoder) -> tuple[int, int]:
    zz = dec.uint()
    lo, n = (zz >> 1) ^ -(zz & 1), dec.uint() + 2
    if n > MAX_SUPPORT:
        raise CodecError(f"GMM coder: symbol support {n} outside 2..{MAX_SUPPORT} (corrupted stream?)")
    return lo, n


def _put_symbols(enc: rans.Encoder, symbols: np.ndarray, table: np.ndarray) -> None:
    rows = rans.quantize_pmf(table)
    report_gmm(symbols, table, rows)  # the rate audit's coded-symbol estimate
    enc.row_symbols(symbols, rows)


# ---- autoregressive coding shared by Cheng2020-GMM-style models --------------------------
def ar_compress(model, y: torch.Tensor, params: torch.Tensor, kernel_size: int = 5) -> list[bytes]:
    """Code round(y) position by position with the model's masked context model.

    Needs `model.context_prediction` (a compressai MaskedConv2d), `model.entropy_parameters`
    (1x1 convs) and `model.gmm_split(out) -> (scales, means, weights)`, `model.gmm` (a
    GaussianMixtureConditional). The encoder runs the same per-position code as the
    decoder, so both build bit-identical probability tables.
    """
    pad = (kernel_size - 1) // 2
    strings = []
    for i in range(y.size(0)):
        sym = torch.round(y[i:i + 1])
        enc, own = _writer()
        lo, n = _put_support(enc, sym)
        y_pad = F.pad(sym, (pad, pad, pad, pad))
        for h, w, (sc, mu, wt) in _positions(model, y_pad, params[i:i + 1], kernel_size):
            table = model.gmm.pmf_table(sc, mu, wt, lo, n)
            _put_symbols(enc, sym[0, :, h, w].to(torch.int64).numpy() - lo, table)
        strings.append(_written(enc, own))
    return strings


def ar_decompress(model, strings, params: torch.Tensor, M: int, kernel_size: int = 5) -> torch.Tensor:
    pad = (kernel_size - 1) // 2
    b, _, hh, ww = params.shape
    out = torch.zeros(len(strings), M, hh + 2 * pad, ww + 2 * pad)
    for i, string in enumerate(strings):
        dec, own = _reader(string)
        lo, n = _get_support(dec)
        y_pad = out[i:i + 1]
        for h, w, (sc, mu, wt) in _positions(model, y_pad, params[i:i + 1], kernel_size):
            table = model.gmm.pmf_table(sc, mu, wt, lo, n)
            vals = dec.row_symbols(rans.quantize_pmf(table)) + lo
            y_pad[0, :, h + pad, w + pad] = torch.from_numpy(vals.astype(np.float32))
        if own:
            dec.finish()
    return F.pad(out, (-pad, -pad, -pad, -pad))


def _positions(model, y_pad, params, kernel_size):
    """Yield (h, w, gmm params) in raster order; reads y_pad lazily (it fills during decode)."""
    cp = model.context_prediction
    weight = cp.weight * cp.mask
    height, width = params.shape[2], params.shape[3]
    with torch.no_grad():
        for h in range(height):
            for w in range(width):
                crop = y_pad[:, :, h:h + kernel_size, w:w + kernel_size]
                ctx = F.conv2d(crop, weight, bias=cp.bias)
                p = params[:, :, h:h + 1, w:w + 1]
                yield h, w, model.gmm_split(model.entropy_parameters(torch.cat((p, ctx), 1)))


class JointAutoregressiveGMM:
    """forward / compress / decompress of a hyperprior + masked-context model whose latent
    is coded with a Gaussian mixture (Cheng et al. 2020, Sec. 3; LTCHM reuses it).

    The model supplies g_a, g_s, h_a, h_s, entropy_bottleneck, context_prediction,
    entropy_parameters, gmm (GaussianMixtureConditional), gmm_split(out) -> (scales, means,
    weights) and `gmm_channels` (the width of y). Mixed in before the nn.Module base.
    """

    def forward(self, x):
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        params = self.h_s(z_hat)
        y_hat = self.gmm.quantize(y, "noise" if self.training else "round")
        ctx = self.context_prediction(y_hat)
        scales, means, weights = self.gmm_split(self.entropy_parameters(torch.cat((params, ctx), 1)))
        y_likelihoods = self.gmm.likelihood(y_hat, scales, means, weights)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def compress(self, x):
        y = self.g_a(x)
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        params = self.h_s(z_hat)
        y_strings = ar_compress(self, y, params)
        return {"strings": [y_strings, z_strings], "shape": z.size()[-2:]}

    def decompress(self, strings, shape):
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        params = self.h_s(z_hat)
        y_hat = ar_decompress(self, strings[0], params, self.gmm_channels)
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1)}
