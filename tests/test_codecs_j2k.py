"""JPEG2000 reproduces `opj_compress -i x.ppm -o y.j2k -r <ratio>` (OpenJPEG's defaults).

Checked against the real binary: equal stream size, equal decoded pixels (ours decoded by
Pillow, the reference by opj_decompress), and equal bytes once the COM marker segment -
"Created by OpenJPEG version X.Y.Z", which names the library version that wrote it - is
taken out: Pillow bundles OpenJPEG 2.5.4 while Debian's opj_compress may be another
2.5.x, so only that text may differ.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from rsicbench.reproduce.codecs.base import create_codec

OPJ = shutil.which("opj_compress")
OPJ_DEC = shutil.which("opj_decompress")
pytestmark = pytest.mark.skipif(
    OPJ is None or OPJ_DEC is None,
    reason="opj_compress/opj_decompress not installed (Debian package libopenjp2-tools)",
)


def _strip_com(stream: bytes) -> bytes:
    """The codestream without its COM (0xFF64) marker segments in the main header."""
    out, i = bytearray(stream[:2]), 2  # SOC
    while i + 4 <= len(stream):
        marker = stream[i : i + 2]
        if marker == b"\xff\x90":  # SOT: main header ends
            break
        length = int.from_bytes(stream[i + 2 : i + 4], "big")
        if marker != b"\xff\x64":
            out += stream[i : i + 2 + length]
        i += 2 + length
    return bytes(out + stream[i:])


def _opj(img: np.ndarray, ratio: int, tmp_path) -> tuple[bytes, np.ndarray]:
    src, j2k, dec = tmp_path / "in.ppm", tmp_path / "out.j2k", tmp_path / "dec.ppm"
    Image.fromarray(img).save(src)
    subprocess.run([OPJ, "-i", str(src), "-o", str(j2k), "-r", str(ratio)], check=True, capture_output=True)
    subprocess.run([OPJ_DEC, "-i", str(j2k), "-o", str(dec)], check=True, capture_output=True)
    return j2k.read_bytes(), np.asarray(Image.open(dec).convert("RGB"))


def _check(img: np.ndarray, ratio: int, tmp_path) -> None:
    ref_bytes, ref_pixels = _opj(img, ratio, tmp_path)
    codec = create_codec("jpeg2000", ratio)
    ours = codec.encode(img)
    assert len(ours) == len(ref_bytes), f"ratio {ratio}: {len(ours)} bytes vs opj_compress {len(ref_bytes)}"
    assert _strip_com(ours) == _strip_com(ref_bytes)
    np.testing.assert_array_equal(codec.decode(ours), ref_pixels)


@pytest.mark.parametrize("ratio", [20, 110])
def test_matches_opj_compress_synthetic(smooth_image, ratio, tmp_path):
    big = np.tile(smooth_image, (2, 2, 1))[:100, :90]  # odd-ish size, >= 2^5 per side
    _check(np.ascontiguousarray(big), ratio, tmp_path)


def test_matches_opj_compress_ucmerced(shared, tmp_path):
    from rsicbench.imageio import read_rgb

    files = sorted((shared / "datasets" / "ucmerced").glob("*/*.webp"))
    if not files:
        pytest.skip("no UC Merced images in the mirror")
    for ratio in (20, 60, 160):
        _check(read_rgb(files[0]), ratio, tmp_path)
