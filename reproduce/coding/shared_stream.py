"""All entropy models of a learned codec code into one rANS stream (rans.py, container format 4).

While a `Session` is active (thread-local: `encoding(seed)` / `decoding(payload, seed, who)`,
opened by learned_stream.py around one image), every compressai entropy model's coder pushes
its symbols into the session instead of writing its own string, and reads them back from it:

  * `SessionCoder` replaces each compressai EntropyModel's `entropy_coder` (an instance
    attribute, so nothing global is patched). Encoding returns a placeholder string and keeps
    the symbols, so the `decompress` that compressai's `compress` itself calls (z_hat from
    the z strings) gets them back; decoding reads the next symbols from the shared stream.
  * `ar_compress` / `ar_decompress`: compressai's JointAutoregressiveHierarchicalPriors
    (mbt2018, the Cheng2020 family, MGSS) codes y with its own coder objects, position by
    position; these are that code with the session's coder.
  * the GMM coder (entropy.py) asks `current()` for the session.

The stream holds the symbols in the order the model codes them; every model here codes (and
therefore decodes) its hyper-latents before the latents they parameterize. Outside a session
`SessionCoder` is compressai's own coder (a model used directly, e.g. for timing).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from rsicbench.errors import CodecError
from rsicbench.reproduce.coding import rans

_local = threading.local()
PLACEHOLDER = b"\xb4shared-stream"  # what a string of the shared stream is, inside compress


class Session:
    def __init__(self, encoder: rans.Encoder | None = None, decoder: rans.Decoder | None = None):
        self.encoder, self.decoder = encoder, decoder
        self._kept: list[list[int]] = []  # encode: values of each placeholder, for compress's own decompress

    def keep(self, values: list[int]) -> bytes:
        self._kept.append(values)
        return PLACEHOLDER + len(self._kept).to_bytes(4, "little")

    def kept(self, string: bytes) -> list[int]:
        i = int.from_bytes(bytes(string)[len(PLACEHOLDER):], "little") - 1
        if not bytes(string).startswith(PLACEHOLDER) or not 0 <= i < len(self._kept):
            raise RuntimeError("shared stream: compress decoded a string it did not write")
        return self._kept[i]


def current() -> Session | None:
    return getattr(_local, "session", None)


@contextmanager
def _active(session: Session):
    if current() is not None:
        raise RuntimeError("shared stream: sessions do not nest")
    _local.session = session
    try:
        yield session
    finally:
        _local.session = None


def encoding(seed: int):
    return _active(Session(encoder=rans.Encoder(seed)))


def decoding(payload: bytes, seed: int, who: str):
    return _active(Session(decoder=rans.Decoder(payload, seed, who)))


def placeholders(groups: tuple[int, ...]) -> list[list[bytes]]:
    """The `strings` argument of a model's decompress when its symbols come from the session."""
    return [[PLACEHOLDER] * n for n in groups]


class SessionCoder:
    """Drop-in for compressai's `_EntropyCoder`: the session's stream while one is active."""

    def __init__(self, inner):
        self._inner, self.name = inner, inner.name

    def encode_with_indexes(self, values, indexes, cdfs, cdf_sizes, offsets):
        s = current()
        if s is None:
            return self._inner.encode_with_indexes(values, indexes, cdfs, cdf_sizes, offsets)
        if s.encoder is None:
            raise RuntimeError("shared stream: encode inside a decoding session")
        values = [int(v) for v in values]
        s.encoder.table_symbols(values, indexes, rans.table_rows(cdfs, cdf_sizes), offsets)
        return s.keep(values)

    def decode_with_indexes(self, string, indexes, cdfs, cdf_sizes, offsets):
        s = current()
        if s is None:
            return self._inner.decode_with_indexes(string, indexes, cdfs, cdf_sizes, offsets)
        if s.encoder is not None:
            return s.kept(string)
        return s.decoder.table_symbols(indexes, rans.table_rows(cdfs, cdf_sizes), offsets)


def install(model: torch.nn.Module, who: str) -> None:
    """Give every compressai entropy model in `model` a `SessionCoder` (idempotent)."""
    from compressai.entropy_models import EntropyModel

    for name, m in model.named_modules():
        if isinstance(m, EntropyModel) and not isinstance(m.entropy_coder, SessionCoder):
            if m.entropy_coder.name != "ans":
                raise CodecError(f"{who}: entropy coder {m.entropy_coder.name!r} unsupported (need 'ans')")
            m.entropy_coder = SessionCoder(m.entropy_coder)


# ---- compressai's JointAutoregressiveHierarchicalPriors with the session's coder -------------
_S, _K = 4, 5  # z -> y scale and context kernel, as compressai
_PAD = (_K - 1) // 2


def uses_compressai_ar(model: torch.nn.Module) -> bool:
    from compressai.models.google import JointAutoregressiveHierarchicalPriors as J

    t = type(model)
    return getattr(t, "decompress", None) is J.decompress and getattr(t, "compress", None) is J.compress


class _Context:
    """What both directions of the autoregressive loop share: the hyper-decoder's parameters,
    the latent size, and the Gaussian's tables converted once per image (compressai converts
    them at every position)."""

    def __init__(self, model, z_hat: torch.Tensor):
        self.model, self.params = model, model.h_s(z_hat)
        self.height, self.width = z_hat.size(2) * _S, z_hat.size(3) * _S
        self.gc, cp = model.gaussian_conditional, model.context_prediction
        cdf, lengths, self.offsets = self.gc.quantized_cdf.tolist(), self.gc.cdf_length.tolist(), self.gc.offset.tolist()
        self.rows = rans.table_rows(cdf, lengths)
        self.weight, self.bias = cp.weight * cp.mask, cp.bias

    def gaussian(self, y_pad: torch.Tensor, i: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means), each 1xMx1x1, of position (h, w) of image i from its causal context."""
        ctx = F.conv2d(y_pad[:, :, h:h + _K, w:w + _K], self.weight, bias=self.bias)
        gp = self.model.entropy_parameters(torch.cat((self.params[i:i + 1, :, h:h + 1, w:w + 1], ctx), dim=1))
        scales, means = gp.chunk(2, 1)
        return scales, means


def _positions(ctx: _Context):
    return ((h, w) for h in range(ctx.height) for w in range(ctx.width))


def ar_compress(model, x) -> dict:
    """compressai's compress: same arithmetic and calls (build_indexes, quantize), so the rate
    audit observes it; y's symbols go into the session in raster order."""
    s = current()
    if s is None or s.encoder is None:
        raise RuntimeError("shared stream: ar_compress outside an encoding session")
    y = model.g_a(x)
    z = model.h_a(y)
    z_strings = model.entropy_bottleneck.compress(z)
    c = _Context(model, model.entropy_bottleneck.decompress(z_strings, z.size()[-2:]))
    y_hat = F.pad(y, (_PAD, _PAD, _PAD, _PAD))
    y_strings = []
    for i in range(y.size(0)):
        yi, symbols, indexes = y_hat[i:i + 1], [], []
        for h, w in _positions(c):
            scales, means = (t.squeeze(3).squeeze(2) for t in c.gaussian(yi, i, h, w))
            idx = c.gc.build_indexes(scales)
            y_q = c.gc.quantize(yi[:, :, h + _PAD, w + _PAD], "symbols", means)
            yi[:, :, h + _PAD, w + _PAD] = y_q + means
            symbols += [int(v) for v in y_q.reshape(-1).tolist()]
            indexes += idx.reshape(-1).tolist()
        s.encoder.table_symbols(symbols, indexes, c.rows, c.offsets)
        y_strings.append(PLACEHOLDER)
    return {"strings": [y_strings, z_strings], "shape": z.size()[-2:]}


def ar_decompress(model, shape, who: str) -> dict:
    """compressai's decompress, position by position, over the latent shape the caller derived."""
    s = current()
    if s is None or s.decoder is None:
        raise RuntimeError("shared stream: ar_decompress outside a decoding session")
    c = _Context(model, model.entropy_bottleneck.decompress([PLACEHOLDER], shape))
    y_hat = torch.zeros((1, model.M, c.height + 2 * _PAD, c.width + 2 * _PAD), device=c.params.device)
    for h, w in _positions(c):
        scales, means = c.gaussian(y_hat, 0, h, w)
        rv = s.decoder.table_symbols(c.gc.build_indexes(scales).reshape(-1).tolist(), c.rows, c.offsets)
        rv = c.gc.dequantize(torch.tensor(rv, dtype=torch.float32).reshape(1, -1, 1, 1), means)
        y_hat[:, :, h + _PAD:h + _PAD + 1, w + _PAD:w + _PAD + 1] = rv
    y_hat = F.pad(y_hat, (-_PAD, -_PAD, -_PAD, -_PAD))
    return {"x_hat": model.g_s(y_hat).clamp_(0, 1)}
