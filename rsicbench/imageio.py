"""Reading and writing images with one documented conversion rule.

Every image in the suite is an HxWx3 uint8 RGB numpy array. Inputs are converted thus:
  * 8-bit RGB: as is.
  * grayscale (L, 1-band): replicated to three channels.
  * RGBA / LA: alpha dropped (not composited): remote-sensing alpha marks validity, not
    transparency over a background, and compositing would invent pixel values.
  * palette (P): expanded through the palette to RGB.
  * 16-bit (I;16, uint16 arrays): scaled linearly, round(v * 255 / 65535). Sensor data
    that does not use the full 16-bit range (Landsat) is mapped per scene by the dataset
    class instead (see rsicbench.datasets.landsat8).
  * float images are refused: their range is ambiguous.
  * multi-band TIFF/GeoTIFF (tifffile): band-interleaved (planar) files are read band-last;
    1-4 bands follow the rules above (a 4th band is dropped like alpha, e.g. NIR of
    R,G,B,NIR); more than 4 bands are refused unless the caller names the three bands to
    use as R, G, B (`bands`, 1-based, e.g. [4, 3, 2] for Landsat B4,B3,B2): picking three of
    many silently would mislabel colours. `bands` also reorders 3-4 band files (B,G,R,NIR:
    [3, 2, 1]); for non-TIFF files it picks among R, G, B after the rules above.
Corrupt or truncated files raise ImageError naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin, UnidentifiedImageError


class ImageError(ValueError):
    """An image file that cannot be used, with the file named in the message."""


def to_rgb8(arr: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Convert an array (HxW, HxWx1/2/3/4; uint8 or uint16) to HxWx3 uint8 by the rule above."""
    a = np.asarray(arr)
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise ImageError(f"{source}: unsupported pixel type {a.dtype} (expected uint8 or uint16)")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ImageError(f"{source}: expected a 2-D image, got shape {a.shape}")
    c = a.shape[2]
    if c in (1, 2):  # gray or gray+alpha
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif c == 4:
        a = a[:, :, :3]
    elif c != 3:
        raise ImageError(f"{source}: expected 1-4 channels, got {c}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{source}: empty image {a.shape}")
    a = np.ascontiguousarray(a)
    # np.asarray(PIL image) is read-only; callers expect an array they own
    return a if a.flags.writeable else a.copy()


def pil_to_rgb8(img: Image.Image, source: str = "<image>") -> np.ndarray:
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return to_rgb8(np.asarray(img, dtype=np.uint16), source)
    elif mode == "I":
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageError(f"{source}: 32-bit integer pixels outside 0..65535")
        return to_rgb8(arr.astype(np.uint16), source)
    elif mode == "F":
        raise ImageError(f"{source}: floating-point image; its value range is ambiguous")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "1"):
        img = img.convert("RGB")
    return to_rgb8(np.asarray(img), source)


def read_rgb(path: str | os.PathLike, bands: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
    """Read any image Pillow (or tifffile, for multi-band TIFF) understands as HxWx3 uint8.

    `bands`: the 1-based bands to use as R, G, B (the rule in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            if img.format == "TIFF" and (bands or _tiff_is_wide(img)):
                # Pillow narrows 16-bit RGB TIFFs by bit shift (v >> 8), not by the rule above
                return _read_tiff(path, None, bands)
            img.load()  # forces a full decode so truncation shows up here
            rgb = pil_to_rgb8(img, str(path))
            return select_bands(rgb, bands, str(path)) if bands else rgb
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if path.suffix.lower() in (".tif", ".tiff"):
            return _read_tiff(path, e, bands)
        raise ImageError(f"{path}: cannot decode image ({e})") from None


def select_bands(arr: np.ndarray, bands, source: str) -> np.ndarray:
    """arr[..., bands - 1] for an HxW(xC) array; bands: three (R, G, B) or one (gray) 1-based indices."""
    a = arr[:, :, None] if arr.ndim == 2 else arr
    idx = [int(b) for b in bands]
    if len(idx) not in (1, 3) or any(b < 1 or b > a.shape[2] for b in idx):
        raise ImageError(f"{source}: bands {idx}: expected 3 (R, G, B) or 1 band numbers in 1..{a.shape[2]}")
    return to_rgb8(np.ascontiguousarray(a[:, :, [b - 1 for b in idx]]), source)


def _tiff_is_wide(img: TiffImagePlugin.TiffImageFile) -> bool:  # format == "TIFF"
    bits = img.tag_v2.get(258, (8,))  # BitsPerSample
    bits = bits if isinstance(bits, tuple) else (bits,)
    return img.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F") and max(bits) > 8


def _read_tiff(path: Path, first_error: Exception | None, bands=None) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            arr, axes = series.asarray(), series.axes
    except Exception as e:  # tifffile raises many types for bad files
        first = f"{first_error}; " if first_error else ""
        raise ImageError(f"{path}: cannot decode image ({first}tifffile: {e})") from None
    while arr.ndim > 3 and arr.shape[0] == 1:  # leading length-1 axes (pages, time)
        arr, axes = arr[0], axes[1:]
    if arr.ndim == 3 and axes[0] in "SCIQ" and axes[-1] not in "SC":
        arr = np.moveaxis(arr, 0, -1)  # band-interleaved (planar) -> band-last
    if bands:
        return select_bands(arr, bands, str(path))
    if arr.ndim == 3 and arr.shape[2] > 4:
        raise ImageError(f"{path}: {arr.shape[2]} bands; name the three to use as R, G, B "
                         "(bands: [r, g, b], 1-based; `--bands` / the dataset's `bands` option)")
    return to_rgb8(arr, str(path))


def decode_rgb(data: bytes, source: str = "<bytes>") -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_rgb8(img, source)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{source}: cannot decode image ({e})") from None


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG with fixed settings, so the same pixels give the same bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    from rsicbench.fsutil import write_bytes

    write_bytes(path, encode_png(rgb))


def pixel_sha256(rgb: np.ndarray) -> str:
    """sha256 of the row-major HxWx3 uint8 pixel bytes (the MANIFEST.tsv convention)."""
    import hashlib

    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    return hashlib.sha256(a.tobytes()).hexdigest()
