"""A learned codec's bitstreams in container format 4 (container.py): one rANS stream per
image (shared_stream.py), the layout derived from the model, and decoding that checks
everything before and while it decodes.

`layout(codec)` runs the model's own `compress` once on a zero image of `downsampling` x
2·`downsampling` pixels (cached per codec instance): the latent stride is the padded size
over the returned `shape`, the string groups are the returned ones. Decoding then derives
the latent shape from the header's image size with that stride; nothing in the header can
make the decoder work on another shape, and the work of the autoregressive decoders is
bounded by the (pixel-limited) image size.
"""

from __future__ import annotations

import torch

from rsicbench.errors import CodecError
from rsicbench.reproduce.coding import coding_tables, container, shared_stream


def prepare(codec) -> None:
    """Session coders and coding tables on the codec's model (idempotent; again at each use:
    an unpickled model has compressai's plain coder)."""
    shared_stream.install(codec.model, codec.name)
    coding_tables.install(codec.model)  # the encoder's tables (container format 3 on)


def compress(codec, x: torch.Tensor, roi: torch.Tensor | None = None, probe: bool = False) -> dict:
    """The model's compress of a padded 1x3xHxW tensor, inside the caller's encoding session
    (after `prepare`; not inside: the rate audit observes the prepared entropy models).
    `probe`: the class's compress (the layout's internal probe, not a call to intercept)."""
    model = codec.model
    with torch.no_grad():
        if shared_stream.uses_compressai_ar(model):
            return shared_stream.ar_compress(model, x)
        compress = type(model).compress.__get__(model) if probe else model.compress
        return compress(x) if roi is None else compress(x, roi=roi)


def layout(codec) -> container.Layout:
    lay = codec.__dict__.get("_stream_layout")
    if lay is not None:
        return lay
    prepare(codec)
    d = int(codec.downsampling)
    x = torch.zeros(1, 3, d, 2 * d, device=codec.device)
    roi = torch.ones(1, 1, d, 2 * d, device=codec.device) if getattr(codec.model, "needs_roi", False) else None
    with shared_stream.encoding(0):
        out = compress(codec, x, roi, probe=True)
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


def encode(codec, height: int, width: int, x: torch.Tensor, roi: torch.Tensor | None = None) -> bytes:
    """The container of the padded tensor `x` of an image of `height` x `width`."""
    lay = layout(codec)
    prepare(codec)  # at every use, as decode: a copied model has compressai's plain coder again
    t = tag(codec)
    with shared_stream.encoding(container.stream_seed(t, height, width)) as session:
        out = compress(codec, x, roi)
        payload = session.encoder.finish()
    shape = tuple(int(s) for s in out["shape"])
    if shape != lay.latent_shape(height, width):
        raise CodecError(f"{codec.name}: the model coded latent shape {shape}, its layout derives "
                         f"{lay.latent_shape(height, width)} for {height}x{width}")
    return container.pack(t, height, width, payload, max_pixels(codec), codec.name)


def decode(codec, data: bytes) -> torch.Tensor:
    """The decoded image as a 1x3xHxW tensor in [0, 1], cropped to the header's size."""
    lay = layout(codec)
    prepare(codec)
    t = tag(codec)
    c = container.unpack(data, t, max_pixels(codec), codec.name)
    shape = torch.Size(lay.latent_shape(c.height, c.width))
    ph, pw = lay.padding(c.height, c.width)
    try:
        with shared_stream.decoding(c.payload, container.stream_seed(t, c.height, c.width), codec.name) as session, \
                torch.no_grad():
            if shared_stream.uses_compressai_ar(codec.model):
                x_hat = shared_stream.ar_decompress(codec.model, shape, codec.name)["x_hat"]
            else:
                x_hat = codec.model.decompress(shared_stream.placeholders(lay.groups), shape)["x_hat"]
            session.decoder.finish()
    except CodecError:
        raise
    except Exception as e:  # anything else a malformed stream can provoke inside the model
        raise CodecError(f"{codec.name}: cannot decode bitstream ({type(e).__name__}: {e})") from None
    if tuple(x_hat.shape[-2:]) != (c.height + ph, c.width + pw):
        raise CodecError(f"{codec.name}: decoded {tuple(x_hat.shape[-2:])}, expected {(c.height + ph, c.width + pw)}")
    return x_hat[..., :c.height, :c.width]
