"""Classical codecs: roundtrip, rate monotonicity, odd sizes, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rsicbench.reproduce.codecs.classical import CLASSICAL_CODECS, j2k_resolutions
from rsicbench.reproduce.codecs.base import CodecError, create_codec, list_codecs

# (low-rate, mid, high-rate) quality per codec; jpeg2000's quality is a ratio (lower = more bits)
QUALITIES = {
    "jpeg": (10, 50, 95),
    "jpeg2000": (80, 20, 4),
    "webp": (5, 50, 95),
    "hevc": (10, 40, 80),
    "avif": (10, 50, 90),
    "jpegxl": (10, 50, 95),
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_all_classical_registered():
    assert set(CLASSICAL_CODECS) <= set(list_codecs())


@pytest.mark.parametrize("name", CLASSICAL_CODECS)
def test_roundtrip_and_rate_monotonic(name, smooth_image):
    sizes, psnrs = [], []
    for q in QUALITIES[name]:
        codec = create_codec(name, q)
        data = codec.encode(smooth_image)
        rec = codec.decode(data)
        assert isinstance(data, bytes) and rec.shape == smooth_image.shape and rec.dtype == np.uint8
        sizes.append(len(data))
        psnrs.append(_psnr(smooth_image, rec))
    assert sizes[0] < sizes[1] < sizes[2], f"{name}: rate not increasing with quality: {sizes}"
    assert psnrs[0] < psnrs[2], f"{name}: quality not increasing with rate: {psnrs}"
    assert psnrs[2] > 27, f"{name}: high-rate PSNR only {psnrs[2]:.1f} dB"  # 4:2:0 codecs lose the chroma noise
    assert codec.version and "unknown" not in codec.version
    d = codec.describe()
    assert d["codec"] == name and d["settings"] == codec.settings


@pytest.mark.parametrize("name", CLASSICAL_CODECS)
@pytest.mark.parametrize("shape", [(63, 65), (17, 31)])
def test_odd_sizes(name, shape, rng):
    img = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    img = np.clip(img.astype(np.int16) // 4 + 100, 0, 255).astype(np.uint8)  # less noisy
    codec = create_codec(name, QUALITIES[name][1])
    rec = codec.decode(codec.encode(img))
    assert rec.shape == img.shape
    assert _psnr(img, rec) > 20


def test_deterministic_streams(smooth_image):
    for name in CLASSICAL_CODECS:
        a = create_codec(name, QUALITIES[name][1]).encode(smooth_image)
        b = create_codec(name, QUALITIES[name][1]).encode(smooth_image)
        assert a == b, f"{name}: two encodes of the same image differ"


def test_j2k_resolutions_small_images():
    assert j2k_resolutions(256, 256) == 6
    assert j2k_resolutions(17, 31) == 5
    assert j2k_resolutions(1, 5) == 1


@pytest.mark.parametrize(
    "name, quality, options, message",
    [
        ("nope", 50, {}, "unknown codec 'nope'"),
        ("jpeg", 101, {}, "outside [1, 100]"),
        ("jpeg", 0, {}, "outside [1, 100]"),
        ("jpeg2000", 0.5, {}, "must be an integer"),
        ("jpeg2000", 1001, {}, "outside"),
        ("jpeg", 50.5, {}, "must be an integer"),
        ("webp", "50", {}, "must be a number"),
        ("avif", 50, {"bogus": 1}, "unknown option"),
    ],
)
def test_bad_codec_or_quality(name, quality, options, message):
    with pytest.raises(CodecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        create_codec(name, quality, **options)


def test_bad_image_and_stream(smooth_image):
    codec = create_codec("jpeg", 50)
    with pytest.raises(CodecError, match="expected HxWx3 uint8"):
        codec.encode(smooth_image.astype(np.float32))
    for name in CLASSICAL_CODECS:
        with pytest.raises(CodecError, match=f"{name}.*cannot decode"):
            create_codec(name, QUALITIES[name][1]).decode(b"not an image stream")


# --- decoder hardening (issue 16): signatures, one error type, pixel limit, gray / >8-bit rule


def _streams(image: np.ndarray) -> dict[str, bytes]:
    import io

    from PIL import Image

    out = {n: create_codec(n, QUALITIES[n][1]).encode(image) for n in CLASSICAL_CODECS}
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    out["png"] = buf.getvalue()
    return out


@pytest.mark.parametrize("name", CLASSICAL_CODECS)
def test_refuses_other_formats(name, smooth_image):
    """Pillow sniffs formats: jpeg/jpeg2000/webp/avif used to decode each other's streams and PNG."""
    streams = _streams(smooth_image)
    codec = create_codec(name, QUALITIES[name][1])
    assert codec.decode(streams[name]).shape == smooth_image.shape
    for other, data in streams.items():
        if other != name:
            with pytest.raises(CodecError, match=rf"^{name}: cannot decode stream: expected .*, found "):
                codec.decode(data)
    with pytest.raises(CodecError, match=f"{name}: .*expected bytes"):
        codec.decode("a string")


def test_identify_signatures(smooth_image):
    from rsicbench.reproduce.codecs.decoder_guard import identify

    found = {n: identify(s) for n, s in _streams(smooth_image).items()}
    assert found == {"jpeg": "JPEG", "jpeg2000": "JPEG 2000 codestream", "webp": "WebP", "hevc": "HEIF (HEVC)",
                     "avif": "AVIF", "jpegxl": "JPEG XL codestream", "png": "PNG"}
    ftyp = lambda major, *compat: b"\0\0\0\x20ftyp" + major + b"\0\0\0\0" + b"".join(compat)  # noqa: E731
    assert identify(ftyp(b"mif1", b"mif1", b"heic")) == "HEIF (HEVC)"
    assert identify(ftyp(b"mif1", b"mif1", b"avif")) == "AVIF"
    assert identify(ftyp(b"isom", b"mp41")).startswith("an ISO-BMFF file")
    assert identify(b"") == "an empty stream" and identify(b"\x01\x02").startswith("unknown data")


def test_j2k_header_bit_flip_is_codec_error(smooth_image):
    """One flipped bit in SIZ's Xsiz raised Pillow's DecompressionBombError."""
    data = bytearray(create_codec("jpeg2000", 20).encode(smooth_image))
    data[8] ^= 1  # Xsiz = 2^24 + 64
    with pytest.raises(CodecError, match=r"jpeg2000: .*16777280x64 pixels, over the decoder's limit"):
        create_codec("jpeg2000", 20).decode(bytes(data))


def test_size_lie_over_default_limit(smooth_image):
    data = bytearray(create_codec("jpeg", 50).encode(smooth_image))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"  # 65535x65535
    with pytest.raises(CodecError, match="jpeg: cannot decode stream"):
        create_codec("jpeg", 50).decode(bytes(data))


@pytest.mark.parametrize("name", CLASSICAL_CODECS)
def test_pixel_limit_is_configurable(name, smooth_image):
    codec = create_codec(name, QUALITIES[name][1])
    data = codec.encode(smooth_image)
    codec.max_pixels = 64 * 64
    assert codec.decode(data).shape == (64, 64, 3)
    codec.max_pixels = 64 * 64 - 1
    with pytest.raises(CodecError, match=rf"{name}: .*64x64 pixels, over the decoder's limit of 4095"):
        codec.decode(data)
    assert "max_pixels" not in codec.describe()["settings"]  # not a coding setting: result keys unchanged


@pytest.mark.parametrize("name, first, last", [("avif", 60, 120), ("hevc", 80, 200)])
def test_corrupt_heif_avif_is_codec_error(name, first, last, smooth_image):
    """Single-bit flips in the box headers raised RuntimeError (AVIF), IndexError, EOFError and
    SyntaxError (HEIF: bytes 95, 167, ...); each now decodes or raises CodecError."""
    codec = create_codec(name, QUALITIES[name][1])
    data = codec.encode(smooth_image)
    errors = 0
    for i in range(first, min(last, len(data))):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[i] ^= 1 << bit
            try:
                codec.decode(bytes(mutated))
            except CodecError as e:
                assert str(e).startswith(f"{name}: cannot decode stream")
                errors += 1
    assert errors > 0


def test_library_exceptions_become_codec_error():
    from PIL import Image

    from rsicbench.reproduce.codecs.decoder_guard import library_errors

    for exc in (IndexError("i"), RuntimeError("r"), OSError("o"), EOFError("e"), SyntaxError("s"),
                MemoryError(), ValueError("v"), Image.DecompressionBombError("big")):
        with pytest.raises(CodecError, match="^avif: cannot decode stream"):
            with library_errors("avif"):
                raise exc


def _rule(a: np.ndarray, bits: int) -> np.ndarray:
    from rsicbench.imageio import to_rgb8

    return to_rgb8(np.round(a.astype(np.float64) * 255 / ((1 << bits) - 1)).astype(np.uint8))


@pytest.fixture
def gray_image(smooth_image):
    return np.ascontiguousarray(smooth_image[:, :, 1])


def test_grayscale_streams_replicate_to_rgb(gray_image):
    """Gray HEIF and gray JPEG XL raised IndexError; every codec's gray stream -> 3 equal channels."""
    import io

    import imagecodecs
    import pillow_heif
    from PIL import Image

    def pil(fmt, **kw):
        buf = io.BytesIO()
        Image.fromarray(gray_image).save(buf, format=fmt, **kw)
        return buf.getvalue()

    heif = io.BytesIO()
    pillow_heif.from_bytes(mode="L", size=gray_image.shape[::-1], data=gray_image.tobytes()).save(heif, quality=95)
    streams = {
        "jpeg": pil("JPEG", quality=95),
        "jpeg2000": pil("JPEG2000", no_jp2=True),
        "hevc": heif.getvalue(),
        "avif": bytes(imagecodecs.avif_encode(gray_image, level=95)),
        "jpegxl": bytes(imagecodecs.jpegxl_encode(gray_image, level=95)),
    }
    for name, data in streams.items():
        rec = create_codec(name, QUALITIES[name][1]).decode(data)
        assert rec.shape == (*gray_image.shape, 3), name
        assert (rec[:, :, 0] == rec[:, :, 1]).all() and (rec[:, :, 1] == rec[:, :, 2]).all(), name
        assert _psnr(rec[:, :, 0], gray_image) > 30, name


def test_high_bit_depth_streams_scale_by_rule(smooth_image, rng):
    """A 16-bit JPEG XL stream decoded as raw & 0xFF (10 dB); >8-bit samples now follow the rule
    round(v * 255 / (2^b - 1)) exactly for lossless streams (JPEG XL, JPEG 2000, AVIF)."""
    import imagecodecs

    rgb16 = (smooth_image.astype(np.uint16) * 257 + rng.integers(0, 257, smooth_image.shape)).astype(np.uint16)
    cases = {
        ("jpegxl", 16): bytes(imagecodecs.jpegxl_encode(rgb16, lossless=True)),
        ("jpegxl", 12): bytes(imagecodecs.jpegxl_encode(rgb16 >> 4, lossless=True, bitspersample=12)),
        ("jpegxl", 10): bytes(imagecodecs.jpegxl_encode(rgb16 >> 6, lossless=True, bitspersample=10, usecontainer=True)),
        ("jpeg2000", 16): bytes(imagecodecs.jpeg2k_encode(rgb16, level=0, codecformat="J2K")),
        ("jpeg2000", 12): bytes(imagecodecs.jpeg2k_encode(rgb16 >> 4, level=0, codecformat="J2K", bitspersample=12)),
        ("avif", 10): bytes(imagecodecs.avif_encode(rgb16 >> 6, level=100, bitspersample=10)),
        ("avif", 12): bytes(imagecodecs.avif_encode(rgb16 >> 4, level=100, bitspersample=12)),
    }
    for (name, bits), data in cases.items():
        rec = create_codec(name, QUALITIES[name][1]).decode(data)
        np.testing.assert_array_equal(rec, _rule(rgb16 >> (16 - bits), bits), err_msg=f"{name} {bits}-bit")


def test_heif_10_bit_scaled_not_shifted(smooth_image, rng):
    """libheif's own 8-bit conversion shifts 10-bit samples (v >> 2); ours scales them."""
    import io

    import pillow_heif

    rgb16 = (smooth_image.astype(np.uint16) * 257 + rng.integers(0, 257, smooth_image.shape)).astype(np.uint16)
    buf = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB;16", size=(64, 64), data=rgb16.tobytes()).save(buf, quality=95)
    raw = pillow_heif.open_heif(io.BytesIO(buf.getvalue()), convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert raw.info["bit_depth"] == 10
    rec = create_codec("hevc", 40).decode(buf.getvalue())
    np.testing.assert_array_equal(rec, _rule(np.asarray(raw), 10))
    shifted = np.asarray(pillow_heif.open_heif(io.BytesIO(buf.getvalue()), convert_hdr_to_8bit=True))
    assert (rec != shifted).any()
    assert _psnr(rec, _rule(rgb16, 16)) > 25  # lossy 4:2:0 of a noisy image
