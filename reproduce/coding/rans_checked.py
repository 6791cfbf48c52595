"""compressai's rANS decoder made safe for untrusted strings: no read past the input, and
only canonical strings accepted.

Why: compressai's C++ `RansDecoder` has no bounds checks. It reads two 32-bit words to start
and up to one word per decoded symbol or bypass nibble, wherever the string ends: a short
or empty string (`strings[1] = [b""]`) makes it read the heap behind the buffer, so the same
stream decoded into different pixels in different processes.

Guards, applied to every string of every compressai entropy model of a codec:
  * structure: a string compressai's encoder writes is a whole number of 32-bit words and at
    least the two-word final state (8 bytes); anything else is refused before decoding;
  * zero padding: the decoder gets the string followed by zeros (one word per symbol plus a
    margin), so reading past the real end reads zeros, deterministically, inside our buffer;
  * canonical check: the decoded symbols are re-encoded with the same tables; the result must
    equal the string byte for byte. A decode that read past the end (or stopped early) cannot
    pass, so every accepted string decoded from its own bytes only: identical in every
    process. Cost: one C++ encode per string (small next to the transforms).

`CheckedCoder` wraps an entropy model's `entropy_coder` (instance attribute, so nothing global
is patched); `ar_decompress` replaces compressai's autoregressive `decompress` (mbt2018, the
Cheng2020 family, MGSS) whose per-position loop calls the C++ decoder directly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rsicbench.errors import CodecError

PAD_WORDS = 16  # margin beyond one word per symbol (decoder start + bypass nibbles)
# |symbol| bound before re-encoding: compressai's encoder loops forever on a bypass value
# >= 2**28 (its nibble count shifts a uint32 by >= 32 bits); real latents are far smaller.
MAX_ABS_SYMBOL = 1 << 24


def check_string(s: bytes, what: str) -> None:
    if len(s) < 8 or len(s) % 4:
        raise CodecError(f"{what}: rANS string of {len(s)} bytes (must be a multiple of 4, at least 8)")


def padded(s: bytes, n_symbols: int) -> bytes:
    return bytes(s) + bytes(4 * (n_symbols + PAD_WORDS))


def canonical(encoder, string: bytes, values, indexes, cdfs, cdf_sizes, offsets, what: str) -> None:
    """Refuse unless re-encoding the decoded `values` gives `string` back, byte for byte."""
    if values and int(np.abs(np.asarray(values, dtype=np.int64)).max()) > MAX_ABS_SYMBOL:
        raise CodecError(f"{what}: corrupted or forged string (decodes to a symbol beyond ±{MAX_ABS_SYMBOL})")
    if encoder.encode_with_indexes(values, indexes, cdfs, cdf_sizes, offsets) != string:
        raise CodecError(f"{what}: corrupted or forged string ({len(string)} bytes do not decode "
                         f"to exactly {len(indexes)} symbols)")


class CheckedCoder:
    """Drop-in for compressai's `_EntropyCoder` (ans): checked, padded, canonical decode."""

    def __init__(self, inner, who: str = "rANS"):
        self._inner, self.name, self.who = inner, inner.name, who

    def encode_with_indexes(self, *args, **kwargs):
        return self._inner.encode_with_indexes(*args, **kwargs)

    def decode_with_indexes(self, string, indexes, cdfs, cdf_sizes, offsets):
        string = bytes(string)
        check_string(string, self.who)
        values = self._inner.decode_with_indexes(padded(string, len(indexes)), indexes, cdfs, cdf_sizes, offsets)
        canonical(self._inner, string, values, indexes, cdfs, cdf_sizes, offsets, self.who)
        return values


def install(model: torch.nn.Module, who: str) -> None:
    """Wrap the rANS coder of every compressai entropy model in `model` (idempotent)."""
    from compressai.entropy_models import EntropyModel

    for name, m in model.named_modules():
        if isinstance(m, EntropyModel) and not isinstance(m.entropy_coder, CheckedCoder):
            if m.entropy_coder.name != "ans":
                raise CodecError(f"{who}: entropy coder {m.entropy_coder.name!r} unsupported (need 'ans')")
            m.entropy_coder = CheckedCoder(m.entropy_coder, f"{who} ({name or 'model'})")


def uses_compressai_ar(model: torch.nn.Module) -> bool:
    from compressai.models.google import JointAutoregressiveHierarchicalPriors as J

    return getattr(type(model), "decompress", None) is J.decompress


def ar_decompress(model, strings, shape, who: str) -> dict:
    """compressai's JointAutoregressiveHierarchicalPriors.decompress with a checked decoder:
    same arithmetic, position by position, over the latent shape the caller derived."""
    from compressai.ans import RansDecoder, RansEncoder

    if len(strings) != 2:
        raise CodecError(f"{who}: expected 2 string groups, got {len(strings)}")
    z_hat = model.entropy_bottleneck.decompress(strings[1], shape)
    params = model.h_s(z_hat)
    s, k = 4, 5  # z -> y scale and context kernel, as compressai
    pad = (k - 1) // 2
    height, width = z_hat.size(2) * s, z_hat.size(3) * s
    y_hat = torch.zeros((z_hat.size(0), model.M, height + 2 * pad, width + 2 * pad), device=z_hat.device)
    gc = model.gaussian_conditional
    cdf, cdf_lengths, offsets = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
    cp = model.context_prediction
    weight = cp.weight * cp.mask  # what compress uses
    for i, y_string in enumerate(strings[0]):
        y_string = bytes(y_string)
        check_string(y_string, f"{who} (y)")
        decoder = RansDecoder()
        decoder.set_stream(padded(y_string, model.M * height * width))
        values, all_indexes = [], []
        yi = y_hat[i:i + 1]
        for h in range(height):
            for w in range(width):
                ctx = F.conv2d(yi[:, :, h:h + k, w:w + k], weight, bias=cp.bias)
                gp = model.entropy_parameters(torch.cat((params[i:i + 1, :, h:h + 1, w:w + 1], ctx), dim=1))
                scales_hat, means_hat = gp.chunk(2, 1)
                indexes = gc.build_indexes(scales_hat).reshape(-1).tolist()
                rv = decoder.decode_stream(indexes, cdf, cdf_lengths, offsets)
                values += rv
                all_indexes += indexes
                rv = gc.dequantize(torch.Tensor(rv).reshape(1, -1, 1, 1), means_hat)
                yi[:, :, h + pad:h + pad + 1, w + pad:w + pad + 1] = rv
        canonical(RansEncoder(), y_string, values, all_indexes, cdf, cdf_lengths, offsets, f"{who} (y)")
    y_hat = F.pad(y_hat, (-pad, -pad, -pad, -pad))
    return {"x_hat": model.g_s(y_hat).clamp_(0, 1)}
