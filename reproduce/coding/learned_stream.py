"""A learned codec's bitstreams in container v2 (container.py): the layout derived from the
model, the model tag, and decoding that checks everything before and while it decodes.

`layout(codec)` runs the model's own `compress` once on a zero image of `downsampling` x
2·`downsampling` pixels (cached per codec instance): the latent stride is the padded size
over the returned `shape`, the string groups are the returned ones. Decoding then derives
the latent shape from the header's image size with that stride; nothing in the header can
make the decoder work on another shape, and the work of the autoregressive decoders is
bounded by the (pixel-limited) image size.
"""

from __future__ import annotations

import torch

from rsicbench.reproduce.coding import coding_tables, container

from rsicbench.reproduce.coding import rans_checked
from rsicbench.errors import CodecError


def layout(codec) -> container.Layout:
    lay = codec.__dict__.get("_stream_layout")
    if lay is not None:
        return lay
    model, d = codec.model, int(codec.downsampling)
    rans_checked.install(model, codec.name)
    coding_tables.install(model)
    x = torch.zeros(1, 3, d, 2 * d, device=codec.device)
    compress = type(model).compress  # the class's: an internal probe, not a call to intercept
    with torch.no_grad():
        if getattr(model, "needs_roi", False):
            out = compress(model, x, roi=torch.ones(1, 1, d, 2 * d, device=codec.device))
        else:
            out = compress(model, x)
    shape = tuple(int(s) for s in out["shape"])
    if len(shape) != 2 or d % shape[0] or (2 * d) % shape[1] or d // shape[0] != (2 * d) // shape[1]:
        raise CodecError(f"{codec.name}: latent shape {shape} for a {d}x{2 * d} input has no uniform stride")
    lay = container.Layout(d, d // shape[0], tuple(len(g) for g in out["strings"]))
    codec._stream_layout = lay
    return lay


def tag(codec) -> bytes:
    return container.model_tag(codec.name, codec.fingerprint)


def max_pixels(codec) -> int:
    return int(codec.options.get("max_pixels") or container.MAX_PIXELS)


def pack(codec, height: int, width: int, out: dict) -> bytes:
    lay = layout(codec)
    shape = tuple(int(s) for s in out["shape"])
    if shape != lay.latent_shape(height, width):
        raise CodecError(f"{codec.name}: the model coded latent shape {shape}, its layout derives "
                         f"{lay.latent_shape(height, width)} for {height}x{width}")
    strings = [[bytes(s) for s in group] for group in out["strings"]]
    return container.pack(container.Container(tag(codec), height, width, strings), lay, max_pixels(codec), codec.name)


def _check_strings(codec, strings: list[list[bytes]]) -> None:
    """Each string's own structure (coder-specific), before any symbol is decoded."""
    from rsicbench.reproduce.coding.entropy import AnsStream, JointAutoregressiveGMM

    gmm_group = 0 if isinstance(codec.model, JointAutoregressiveGMM) else None
    for g, group in enumerate(strings):
        for s in group:
            if g == gmm_group:
                AnsStream.from_bytes(s)
            else:
                rans_checked.check_string(s, f"{codec.name} (string group {g})")


def decode(codec, data: bytes) -> torch.Tensor:
    """The decoded image as a 1x3xHxW tensor in [0, 1], cropped to the header's size."""
    lay = layout(codec)
    rans_checked.install(codec.model, codec.name)  # again: an unpickled model has compressai's plain coder
    coding_tables.install(codec.model)  # idempotent; the encoder's tables (container format 3)
    c = container.unpack(data, lay, tag(codec), max_pixels(codec), codec.name)
    _check_strings(codec, c.strings)
    shape = lay.latent_shape(c.height, c.width)
    ph, pw = lay.padding(c.height, c.width)
    try:
        with torch.no_grad():
            if rans_checked.uses_compressai_ar(codec.model):
                x_hat = rans_checked.ar_decompress(codec.model, c.strings, torch.Size(shape), codec.name)["x_hat"]
            else:
                x_hat = codec.model.decompress(c.strings, torch.Size(shape))["x_hat"]
    except CodecError:
        raise
    except Exception as e:  # anything else a malformed string can provoke inside the model
        raise CodecError(f"{codec.name}: cannot decode bitstream ({type(e).__name__}: {e})") from None
    if tuple(x_hat.shape[-2:]) != (c.height + ph, c.width + pw):
        raise CodecError(f"{codec.name}: decoded {tuple(x_hat.shape[-2:])}, expected {(c.height + ph, c.width + pw)}")
    return x_hat[..., :c.height, :c.width]
