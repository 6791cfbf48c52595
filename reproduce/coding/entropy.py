"""Discretized Gaussian-mixture entropy model with REAL entropy coding (constriction ANS).

Cheng et al. 2020 ("Learned Image Compression with Discretized Gaussian Mixture Likelihoods
and Attention Modules", Eq. 6) model each latent ŷ_i with K Gaussians:

    p(ŷ_i) = Σ_k w_k [Φ((ŷ_i + ½ − μ_k)/σ_k) − Φ((ŷ_i − ½ − μ_k)/σ_k)],   Σ_k w_k = 1.

compressai's `GaussianConditional` codes one Gaussian through fixed CDF tables indexed by
scale; a mixture has no such one-parameter family, so here every symbol gets its own
probability table over the integer support [lo, hi] of the quantized latent, computed from
the mixture CDF in float64, and is coded with constriction's `Categorical` model on an ANS
stack (`perfect=False`, so encoder and decoder build identical fixed-point tables from
identical floats: deterministic on one machine with fixed torch threads).

Quantization: ŷ = round(y) (no mean offset: a mixture has no single mean). Training uses
additive uniform noise, as in compressai.

Parameter layout accepted everywhere: `scales`, `means`, `weights` are either Bx K x C x H x W,
or B x (K·C) x H x W ordered component-major (all C channels of component 0, then 1, ...).
`weights` are logits (softmax over K) unless `weights_are_logits=False`.

Stream layout of one string: varint zigzag(lo), varint n - 2 (n = support size), then the
ANS words (u32 LE). A decoded string must leave the ANS coder exactly empty (`AnsStream.finish`):
the words are then the canonical encoding of the decoded symbols, so a forged or truncated
string is refused rather than decoded into other pixels. constriction itself is bounds-checked.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rsicbench.errors import CodecError
from rsicbench.reproduce.coding.coded_info import report_gmm
from rsicbench.reproduce.coding.container import read_varint, varint

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
        """One string per batch item; returns the strings (y_hat = round(y))."""
        out = []
        for i in range(y.size(0)):
            sym = torch.round(y[i:i + 1]).to(torch.int64)
            lo, n = support(sym)
            table = self.pmf_table(scales[i:i + 1], means[i:i + 1], weights[i:i + 1], lo, n)
            enc = AnsStream()
            enc.encode(sym.flatten().numpy() - lo, table)
            out.append(enc.to_bytes(lo, n))
        return out

    def decompress(self, strings, scales, means, weights) -> torch.Tensor:
        shape = _split(scales, self.K).shape
        outs = []
        for i, string in enumerate(strings):
            lo, n, dec = AnsStream.from_bytes(string)
            table = self.pmf_table(scales[i:i + 1], means[i:i + 1], weights[i:i + 1], lo, n)
            sym = dec.decode(table) + lo
            dec.finish()
            outs.append(torch.from_numpy(sym.astype(np.float32)).reshape(1, *shape[2:]))
        return torch.cat(outs, 0)


def support(symbols: torch.Tensor) -> tuple[int, int]:
    lo, hi = int(symbols.min()), int(symbols.max())
    n = max(2, hi - lo + 1)  # constriction refuses a one-symbol alphabet
    if n > MAX_SUPPORT:
        raise CodecError(f"GMM coder: latent range {lo}..{hi} exceeds {MAX_SUPPORT} symbols")
    return lo, n


class AnsStream:
    """constriction's ANS stack with per-symbol categorical tables.

    Encoding is buffered (ANS is last-in first-out) and done in reverse at `to_bytes`, so
    the decoder reads symbols in the order they were pushed: this is what autoregressive
    models need (decode position by position).
    """

    def __init__(self, words: np.ndarray | None = None):
        import constriction

        self._family = constriction.stream.model.Categorical(perfect=False)
        self._symbols: list[np.ndarray] = []
        self._tables: list[np.ndarray] = []
        self._coder = constriction.stream.stack.AnsCoder(words) if words is not None else None

    def encode(self, symbols: np.ndarray, table: np.ndarray) -> None:
        self._symbols.append(np.asarray(symbols, dtype=np.int32).ravel())
        self._tables.append(np.asarray(table, dtype=np.float64))
        report_gmm(self._symbols[-1], self._tables[-1])  # the rate audit's coded-symbol estimate

    def to_bytes(self, lo: int, n: int) -> bytes:
        import constriction

        coder = constriction.stream.stack.AnsCoder()
        if self._symbols:
            sym = np.concatenate(self._symbols)
            tab = np.concatenate(self._tables, 0)
            coder.encode_reverse(sym, self._family, tab)
        words = coder.get_compressed().astype("<u4")
        return varint((lo << 1) ^ (lo >> 63)) + varint(n - 2) + words.tobytes()

    @classmethod
    def from_bytes(cls, string: bytes) -> tuple[int, int, "AnsStream"]:
        string = bytes(string)
        zz, pos = read_varint(string, 0, len(string), "GMM coder: string header")
        n, pos = read_varint(string, pos, len(string), "GMM coder: string header")
        lo, n = (zz >> 1) ^ -(zz & 1), n + 2
        if n > MAX_SUPPORT:
            raise CodecError(f"GMM coder: symbol support {n} outside 2..{MAX_SUPPORT} (corrupted stream?)")
        if (len(string) - pos) % 4:
            raise CodecError(f"GMM coder: malformed string of {len(string)} bytes (words not whole)")
        words = np.frombuffer(string[pos:], dtype="<u4").astype(np.uint32)
        try:
            return lo, n, cls(words)
        except ValueError as e:  # e.g. a last word of zero: never written by the encoder
            raise CodecError(f"GMM coder: {e}") from None

    def _reader(self):
        if self._coder is None:  # a programming error, not bad input
            raise RuntimeError("AnsStream: this stream encodes; decode a stream made by from_bytes")
        return self._coder

    def finish(self) -> None:
        """Refuse a string with words left over or a state the encoder never leaves."""
        if not self._reader().is_empty():
            raise CodecError("GMM coder: corrupted or forged string (does not end where its symbols do)")

    def decode(self, table: np.ndarray) -> np.ndarray:
        coder = self._reader()
        try:
            return np.asarray(coder.decode(self._family, np.asarray(table, dtype=np.float64)),
                              dtype=np.int64)
        except Exception as e:  # constriction raises on exhausted/invalid streams
            raise CodecError(f"GMM coder: cannot decode ({e})") from None


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
        lo, n = support(sym)
        y_pad = F.pad(sym, (pad, pad, pad, pad))
        stream = AnsStream()
        for h, w, (sc, mu, wt) in _positions(model, y_pad, params[i:i + 1], kernel_size):
            table = model.gmm.pmf_table(sc, mu, wt, lo, n)
            stream.encode(sym[0, :, h, w].to(torch.int64).numpy() - lo, table)
        strings.append(stream.to_bytes(lo, n))
    return strings


def ar_decompress(model, strings, params: torch.Tensor, M: int, kernel_size: int = 5) -> torch.Tensor:
    pad = (kernel_size - 1) // 2
    b, _, hh, ww = params.shape
    out = torch.zeros(len(strings), M, hh + 2 * pad, ww + 2 * pad)
    for i, string in enumerate(strings):
        lo, n, dec = AnsStream.from_bytes(string)
        y_pad = out[i:i + 1]
        for h, w, (sc, mu, wt) in _positions(model, y_pad, params[i:i + 1], kernel_size):
            table = model.gmm.pmf_table(sc, mu, wt, lo, n)
            vals = dec.decode(table) + lo
            y_pad[0, :, h + pad, w + pad] = torch.from_numpy(vals.astype(np.float32))
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
