"""What every classical decoder checks, in one place, so no library sees a stream it should not.

* `check_format`: the stream must start with the signature of the format its codec writes. The
  libraries sniff formats themselves (Pillow opens JPEG, JPEG 2000, WebP, AVIF and PNG through
  any of them), so without this a `jpeg` decoder silently decodes a WebP or PNG stream.
* `check_size`: the size the header declares must fit `max_pixels` before a pixel buffer is
  allocated - a 200-byte stream can declare 65535x65535 pixels.
* `library_errors`: any exception a decoding library raises (Pillow's DecompressionBombError,
  OSError, RuntimeError, IndexError, imagecodecs' errors, MemoryError...) becomes a `CodecError`
  naming the codec.
* `to_rgb`: the decoded array by rsicbench.imageio's rule (gray replicated, alpha dropped), with
  b-bit samples scaled linearly to 8 bits, round(v * 255 / (2^b - 1)), never truncated.
* `j2k_header`, `jxl_header`: image size and bit depth read from the headers ourselves, because
  OpenJPEG via Pillow narrows >8-bit RGB by shifting and libjxl returns b-bit values unscaled.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from rsicbench.imageio import ImageError, pil_to_rgb8, to_rgb8
from rsicbench.reproduce.codecs.base import CodecError

#: the default limit on a decoded image's pixel count: Pillow's own bomb threshold
#: (Image.MAX_IMAGE_PIXELS as shipped), ~89.5 Mpx, far above any image in the suite.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

_HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_AVIF_BRANDS = {b"avif", b"avis"}

# (prefix, format name), first match wins; RIFF/WebP and ISO-BMFF (ftyp) are checked separately
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JP2 file"),
    (b"\xff\x0a", "JPEG XL codestream"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL container"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

#: the formats each classical codec's decoder accepts (what its encoder writes)
ACCEPTED = {
    "jpeg": ("JPEG",),
    "jpeg2000": ("JPEG 2000 codestream",),
    "webp": ("WebP",),
    "hevc": ("HEIF (HEVC)",),
    "avif": ("AVIF",),
    "jpegxl": ("JPEG XL codestream", "JPEG XL container"),
}


def identify(data: bytes) -> str:
    """The format `data` starts with, by signature (a name from ACCEPTED, or another one)."""
    if not data:
        return "an empty stream"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp" and len(data) >= 12:
        major = data[8:12]
        end = min(len(data), max(16, int.from_bytes(data[:4], "big")), 1024)
        brands = {major} | {data[i : i + 4] for i in range(16, end - 3, 4)}
        if major in _AVIF_BRANDS or (major not in _HEVC_BRANDS and brands & _AVIF_BRANDS):
            return "AVIF"
        if brands & _HEVC_BRANDS:
            return "HEIF (HEVC)"
        return f"an ISO-BMFF file of brand {major.decode('latin-1')!r}"
    for prefix, name in _MAGIC:
        if data.startswith(prefix):
            return name
    return f"unknown data (first bytes {data[:8].hex()})"


def check_format(codec: str, data: object) -> bytes:
    """`data` as bytes if it starts with a signature `codec` accepts; else a CodecError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"{codec}: cannot decode stream: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    found = identify(data)
    if found not in ACCEPTED[codec]:
        want = " or ".join(ACCEPTED[codec])
        raise CodecError(f"{codec}: cannot decode stream: expected {want}, found {found}")
    return data


def check_size(codec: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise CodecError(f"{codec}: cannot decode stream: header declares an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise CodecError(
            f"{codec}: cannot decode stream: header declares {width}x{height} pixels, "
            f"over the decoder's limit of {max_pixels} (max_pixels)"
        )


@contextlib.contextmanager
def library_errors(codec: str) -> Iterator[None]:
    """Turn whatever a decoding library raises into a CodecError naming the codec."""
    try:
        yield
    except CodecError:
        raise
    except ImageError as e:
        raise CodecError(f"{codec}: cannot decode stream ({e})") from None
    except UnidentifiedImageError:  # its message names a BytesIO object, not the problem
        raise CodecError(f"{codec}: cannot decode stream: the library does not recognise its header") from None
    except Image.DecompressionBombError as e:
        raise CodecError(f"{codec}: cannot decode stream: image too large ({e})") from None
    except Exception as e:  # noqa: BLE001 - the libraries raise many types; callers get one
        raise CodecError(f"{codec}: cannot decode stream ({type(e).__name__}: {e})") from None


def to_rgb(codec: str, array: np.ndarray, bits: int = 8) -> np.ndarray:
    """HxWx3 uint8 from a decoded array of `bits`-bit unsigned samples, by the image rule."""
    a = np.asarray(array)
    if a.dtype in (np.uint8, np.uint16) and bits != 8 * a.dtype.itemsize:
        if not 1 <= bits <= 8 * a.dtype.itemsize:
            raise CodecError(f"{codec}: cannot decode stream: {bits}-bit samples in a {a.dtype} array")
        top = (1 << bits) - 1
        if a.size and int(a.max()) > top:
            raise CodecError(f"{codec}: cannot decode stream: sample {int(a.max())} exceeds {bits} bits")
        # integer round(v * 255 / top): top is odd, so v * 255 / top never ends in exactly .5
        a = ((a.astype(np.uint32) * 510 + top) // (2 * top)).astype(np.uint8)
    try:
        return to_rgb8(a, "decoded image")
    except ImageError as e:
        raise CodecError(f"{codec}: cannot decode stream ({e})") from None


def decode_with_pillow(codec: str, data: bytes, pil_format: str, max_pixels: int) -> np.ndarray:
    """Decode with Pillow restricted to one plugin, the size checked before pixels are read."""
    with library_errors(codec), warnings.catch_warnings():
        # Pillow warns between 1x and 2x its own limit; our max_pixels decides instead
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[pil_format]) as img:
            check_size(codec, img.width, img.height, max_pixels)
            img.load()
            return to_rgb(codec, pil_to_rgb8(img, "decoded image"))


def j2k_header(codec: str, data: bytes) -> tuple[int, int, int]:
    """(width, height, max component precision) from a JPEG 2000 codestream's SIZ segment."""
    if len(data) < 42 or data[2:4] != b"\xff\x51":
        raise CodecError(f"{codec}: cannot decode stream: truncated or missing SIZ header")
    be = lambda i, n: int.from_bytes(data[i : i + n], "big")  # noqa: E731
    width, height = be(8, 4) - be(16, 4), be(12, 4) - be(20, 4)
    ncomp = be(40, 2)
    if ncomp == 0 or len(data) < 42 + 3 * ncomp:
        raise CodecError(f"{codec}: cannot decode stream: SIZ header with {ncomp} components is truncated")
    ssiz = [data[42 + 3 * i] for i in range(ncomp)]
    if any(s & 0x80 for s in ssiz):  # the image rule takes unsigned samples only
        raise CodecError(f"{codec}: cannot decode stream: signed samples (their range is ambiguous)")
    return width, height, max((s & 0x7F) + 1 for s in ssiz)


class _Bits:
    """LSB-first bit reader (JPEG XL's bit order)."""

    def __init__(self, data: bytes) -> None:
        self.value, self.n, self.pos = int.from_bytes(data, "little"), 8 * len(data), 0

    def read(self, n: int) -> int:
        if self.pos + n > self.n:
            raise CodecError("jpegxl: cannot decode stream: truncated image header")
        v = (self.value >> self.pos) & ((1 << n) - 1)
        self.pos += n
        return v

    def u32(self, *dists: tuple[int, int]) -> int:
        """JPEG XL's U32: a 2-bit selector, then (bits, offset) of the chosen distribution."""
        nbits, offset = dists[self.read(2)]
        return self.read(nbits) + offset


_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def _jxl_codestream(data: bytes) -> bytes:
    """The start of the codestream: `data` itself, or the payload of a container's jxlc/jxlp box."""
    if data.startswith(b"\xff\x0a"):
        return data
    pos = 0
    while pos + 8 <= len(data):
        size, kind, head = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8], 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if size < head:
            break
        if kind == b"jxlc":
            return data[pos + head : pos + size]
        if kind == b"jxlp":
            return data[pos + head + 4 : pos + size]  # 4-byte part index first
        pos += size
    raise CodecError("jpegxl: cannot decode stream: container has no codestream box")


def jxl_header(data: bytes) -> tuple[int, int, int, bool]:
    """(width, height, bits per sample, float samples) from a JPEG XL SizeHeader + ImageMetadata."""
    cs = _jxl_codestream(data)
    if not cs.startswith(b"\xff\x0a"):
        raise CodecError("jpegxl: cannot decode stream: no codestream signature in the container")
    r = _Bits(cs[2:64])
    small = r.read(1)
    big = ((9, 1), (13, 1), (18, 1), (30, 1))
    height = (r.read(5) + 1) * 8 if small else r.u32(*big)
    ratio = r.read(3)
    if ratio:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    else:
        width = (r.read(5) + 1) * 8 if small else r.u32(*big)
    bits, is_float = 8, False
    if not r.read(1):  # ImageMetadata.all_default
        if r.read(1):  # extra_fields
            r.read(3)  # orientation
            if r.read(1):  # intrinsic size: a SizeHeader of its own
                small2 = r.read(1)
                r.read(5) if small2 else r.u32(*big)
                if r.read(3) == 0:
                    r.read(5) if small2 else r.u32(*big)
            if r.read(1):  # preview header
                div8 = r.read(1)
                pv = ((0, 16), (0, 32), (5, 1), (9, 33)) if div8 else ((6, 1), (8, 65), (10, 321), (12, 1345))
                r.u32(*pv)
                if r.read(3) == 0:
                    r.u32(*pv)
            if r.read(1):  # animation header
                r.u32((0, 100), (0, 1000), (10, 1), (30, 1))
                r.u32((0, 1), (0, 1001), (8, 1), (10, 1))
                r.u32((0, 0), (3, 0), (16, 0), (32, 0))
                r.read(1)
        is_float = bool(r.read(1))
        bits = r.u32((0, 32), (0, 16), (0, 24), (6, 1)) if is_float else r.u32((0, 8), (0, 10), (0, 12), (6, 1))
    return width, height, bits, is_float
