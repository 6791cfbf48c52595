"""Classical codecs: roundtrip, rate monotonicity, odd sizes, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rsicbench.reproduce.classical import CLASSICAL_CODECS, j2k_resolutions
from rsicbench.reproduce.codec import CodecError, create_codec, list_codecs

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
