"""The documented conversion rule of rsicbench.imageio, and bad files named in errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from rsicbench.imageio import ImageError, decode_rgb, encode_png, pixel_sha256, read_rgb, to_rgb8, write_png


def test_gray_is_replicated(tmp_path, rng):
    g = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = read_rgb(tmp_path / "g.png")
    assert out.shape == (9, 7, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[:, :, c], g) for c in range(3))


def test_rgba_drops_alpha_without_compositing(tmp_path, rng):
    a = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    a[..., 3] = 0  # fully transparent: compositing would give a constant background
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_rgb(tmp_path / "a.png"), a[..., :3])


def test_palette_is_expanded(tmp_path, rng):
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    expected = np.asarray(pal.convert("RGB"))
    assert np.array_equal(read_rgb(tmp_path / "p.png"), expected)


def test_16bit_gray_png_scaled_linearly(tmp_path):
    v = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "s.png")  # I;16 PNG
    out = read_rgb(tmp_path / "s.png")
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.array_equal(out[..., 0], out[..., 2])


def test_16bit_rgb_tiff(tmp_path):
    v = np.zeros((2, 2, 3), dtype=np.uint16)
    v[0, 0] = (65535, 0, 1000)
    tifffile.imwrite(tmp_path / "t.tif", v)
    out = read_rgb(tmp_path / "t.tif")
    assert out[0, 0].tolist() == [255, 0, round(1000 * 255 / 65535)]


def test_float_is_refused():
    with pytest.raises(ImageError, match="unsupported pixel type"):
        to_rgb8(np.zeros((2, 2, 3), np.float32), "x.tif")


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageError, match="corrupt.png"):
        read_rgb(bad)


def test_truncated_file_names_the_file(tmp_path, smooth_image):
    data = encode_png(smooth_image)
    bad = tmp_path / "truncated.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated.png"):
        read_rgb(bad)
    with pytest.raises(ImageError, match="blob"):
        decode_rgb(data[: len(data) // 2], "blob")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="nope.png: file not found"):
        read_rgb(tmp_path / "nope.png")


def test_png_roundtrip_lossless_and_deterministic(tmp_path, smooth_image):
    write_png(tmp_path / "x.png", smooth_image)
    assert np.array_equal(read_rgb(tmp_path / "x.png"), smooth_image)
    assert encode_png(smooth_image) == encode_png(smooth_image.copy())
    assert pixel_sha256(smooth_image) == pixel_sha256(read_rgb(tmp_path / "x.png"))
