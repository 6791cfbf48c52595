"""Region-of-interest (ROI) providers: dataset masks, a cloud detector, a saliency detector.

An ROI mask is an HxW ``bool`` array, True = pixel of interest. Three kinds of provider sit
behind one registry (`register_roi` / `create_roi_provider` / `list_roi_providers`); each is
a callable ``provider(image, bands=None, source="<image>") -> HxW bool``:

  * ``full``      every pixel is of interest (the no-ROI baseline).
  * ``mask``      a mask shipped with a dataset, read from a file (``mask_path=``); for the
                  38-Cloud ground truth (0 = clear, 255 = cloud) ``invert=True`` gives the
                  non-cloud ROI that MROI-CFHPM uses.
  * ``cloud``     physically motivated cloud detector for Landsat-like RGB(+NIR) imagery
                  (`detect_clouds`); ROI = NOT cloud (MROI-CFHPM, Zhang et al. 2023, Sec. 3.3:
                  "the binary ROI ... is obtained by inverting the binary [cloud] mask").
  * ``saliency``  spectral-residual saliency (Hou & Zhang, CVPR 2007) for general scenes
                  (UC Merced), thresholded at 3x the mean saliency as in that paper.

Defined behaviour at the edges (tests in tests/test_roi.py):
  * a mask whose HxW differs from the image raises `RoiError` naming the source and sizes;
  * an empty ROI (no True pixel) is legal: `roi_state` says "empty", ROI-PSNR is undefined
    (the metrics write an empty cell), ROI models simply see an all-zero mask;
  * a full ROI is legal: `roi_state` says "full" and ROI-PSNR equals full-image PSNR.

Cloud detector (`detect_clouds`). Thresholds are FIXED from the literature, not tuned on the
38-Cloud test patch (the one patch we have is the validation set, so tuning on it would make
the reported IoU meaningless):
  * HOT, haze-optimised transform (Zhang, Guindon & Cihlar 2002) as used in Fmask
    (Zhu & Woodcock 2012, Eq. 3 test): blue - 0.5 * red - 0.08 > 0;
  * whiteness (Fmask Eq. 2): sum_b |b - mean| / mean < 0.7 over the visible bands;
  * NDVI < 0.8 (Fmask basic test), only when a NIR band is given;
  * brightness: red TOA reflectance > 0.08 (ACCA pass-1 filter, Irish 2000).
Fmask's SWIR and thermal tests are skipped: the inputs here have neither band.
Inputs are top-of-atmosphere reflectance. Landsat-8 L1 DNs are converted with the Collection-1
default rescaling rho = 2e-5 * DN - 0.1 (REFLECTANCE_MULT/ADD_BAND_x in every L8 MTL file);
the sun-elevation correction is omitted because the MTL file is not shipped with the patch
(this under-estimates reflectance by sin(sun elevation); at the equator-near 38-Cloud scene
in May that is ~0.9, recorded as an assumption). 8-bit RGB (already stretched) inputs use
rho = v / 255 as a crude proxy, so detections on 8-bit tiles are less reliable; the band
path is preferred wherever raw bands exist. DN 0 is nodata: never cloud, never ROI-scored.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

L8_REFLECTANCE_MULT = 2.0e-5
L8_REFLECTANCE_ADD = -0.1


class RoiError(ValueError):
    """A mask that cannot be used; the message names the source and the problem."""


# --------------------------------------------------------------------------- mask checks
def check_mask(mask: Any, shape: tuple[int, ...], source: str = "<mask>") -> np.ndarray:
    """Return `mask` as an HxW bool array matching `shape[:2]`, or raise RoiError.

    Accepts bool, 0/1 or 0/255 integer masks, and HxWx1 / HxWx3 masks whose channels agree.
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] in (1, 3):
        if m.shape[2] == 3 and not (np.array_equal(m[..., 0], m[..., 1]) and np.array_equal(m[..., 0], m[..., 2])):
            raise RoiError(f"{source}: 3-channel mask whose channels differ; expected a binary mask")
        m = m[..., 0]
    if m.ndim != 2:
        raise RoiError(f"{source}: expected a 2-D mask, got shape {m.shape}")
    h, w = int(shape[0]), int(shape[1])
    if m.shape != (h, w):
        raise RoiError(f"{source}: mask size {m.shape[1]}x{m.shape[0]} (WxH) does not match image size {w}x{h}")
    if m.dtype == bool:
        return m
    if not np.issubdtype(m.dtype, np.number):
        raise RoiError(f"{source}: mask has non-numeric type {m.dtype}")
    values = np.unique(m)
    if not set(values.tolist()) <= {0, 1, 255}:
        raise RoiError(f"{source}: mask values {values[:8].tolist()} are not binary (0/1 or 0/255)")
    return m > 0


def roi_state(mask: np.ndarray) -> str:
    """'empty', 'full' or 'partial': the defined cases every consumer handles."""
    n = int(np.count_nonzero(mask))
    if n == 0:
        return "empty"
    return "full" if n == mask.size else "partial"


def read_mask(path: str | os.PathLike, shape: tuple[int, ...] | None = None, invert: bool = False) -> np.ndarray:
    """Read a binary mask file (PNG/TIF, 0/255 or 0/1) as HxW bool; checked against `shape`."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise RoiError(f"{path}: mask file not found")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            with Image.open(path) as im:
                arr = np.asarray(im)
    except Exception as e:  # decoders raise many types for bad files
        raise RoiError(f"{path}: cannot read mask ({e})") from None
    m = check_mask(arr, shape if shape is not None else arr.shape, str(path))
    return ~m if invert else m


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a mask as an 8-bit PNG (0 / 255), atomically and byte-reproducibly."""
    import io

    from PIL import Image

    from rsicbench.fsutil import write_bytes

    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buf, format="PNG", compress_level=6)
    write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- cloud detector
@dataclasses.dataclass(frozen=True)
class CloudThresholds:
    """Fixed literature thresholds (see module docstring); never fitted to the test patch."""

    hot_offset: float = 0.08  # Fmask/HOT: blue - 0.5*red - 0.08 > 0
    hot_red_weight: float = 0.5
    whiteness_max: float = 0.7  # Fmask whiteness test
    ndvi_max: float = 0.8  # Fmask basic test
    red_min: float = 0.08  # ACCA pass-1 brightness filter

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def dn_to_reflectance(dn: np.ndarray) -> np.ndarray:
    """Landsat-8 L1 DN -> TOA reflectance (no sun-angle correction; see module docstring)."""
    return np.asarray(dn, dtype=np.float64) * L8_REFLECTANCE_MULT + L8_REFLECTANCE_ADD


def detect_clouds(
    red: np.ndarray,
    green: np.ndarray,
    blue: np.ndarray,
    nir: np.ndarray | None = None,
    thresholds: CloudThresholds = CloudThresholds(),
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Cloud mask (True = cloud) from TOA reflectance bands; all bands HxW, same size."""
    bands = [np.asarray(b, dtype=np.float64) for b in (red, green, blue)]
    if nir is not None:
        bands.append(np.asarray(nir, dtype=np.float64))
    shape = bands[0].shape
    if len(shape) != 2 or any(b.shape != shape for b in bands):
        raise RoiError(f"cloud detector: bands must be 2-D and equal in size, got {[b.shape for b in bands]}")
    r, g, b = bands[:3]
    t = thresholds
    hot = b - t.hot_red_weight * r - t.hot_offset > 0
    mean = (r + g + b) / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        whiteness = (np.abs(r - mean) + np.abs(g - mean) + np.abs(b - mean)) / mean
    white = np.nan_to_num(whiteness, nan=np.inf) < t.whiteness_max
    cloud = hot & white & (r > t.red_min)
    if nir is not None:
        n = bands[3]
        with np.errstate(divide="ignore", invalid="ignore"):
            ndvi = np.nan_to_num((n - r) / (n + r), nan=0.0)
        cloud &= ndvi < t.ndvi_max
    if valid is not None:
        cloud &= valid
    return cloud


def detect_clouds_dn(bands: dict[str, np.ndarray], thresholds: CloudThresholds = CloudThresholds()) -> np.ndarray:
    """Cloud mask from Landsat-8 L1 DN bands {'red','green','blue'[,'nir']}; DN 0 = nodata."""
    missing = {"red", "green", "blue"} - set(bands)
    if missing:
        raise RoiError(f"cloud detector: missing bands {sorted(missing)}")
    valid = np.all([np.asarray(bands[k]) > 0 for k in ("red", "green", "blue")], axis=0)
    refl = {k: dn_to_reflectance(v) for k, v in bands.items()}
    return detect_clouds(refl["red"], refl["green"], refl["blue"], refl.get("nir"), thresholds, valid)


def detect_clouds_rgb8(image: np.ndarray, thresholds: CloudThresholds = CloudThresholds()) -> np.ndarray:
    """Cloud mask from an 8-bit RGB tile, reflectance proxied by v/255 (less reliable)."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise RoiError(f"cloud detector: expected HxWx3 uint8 RGB, got {a.dtype} {a.shape}")
    f = a.astype(np.float64) / 255.0
    valid = a.max(axis=2) > 0
    return detect_clouds(f[..., 0], f[..., 1], f[..., 2], None, thresholds, valid)


# --------------------------------------------------------------------------- saliency
def spectral_residual_saliency(image: np.ndarray, width: int = 64, sigma: float = 8.0) -> np.ndarray:
    """Saliency map in [0, 1] (HxW float) by the spectral residual (Hou & Zhang, CVPR 2007).

    As in the paper: grey image down-sampled to `width` px wide, log-amplitude spectrum minus
    its 3x3 local mean, back-transformed with the original phase, squared, Gaussian-smoothed
    (sigma = 8 at the 64-px scale, the paper's value), then up-sampled to the input size.
    """
    from PIL import Image
    from scipy import ndimage

    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise RoiError(f"saliency: expected HxWx3 uint8 RGB, got {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    gray = Image.fromarray(a).convert("L")
    sw = max(8, min(width, w))
    sh = max(8, int(round(h * sw / w)))
    small = np.asarray(gray.resize((sw, sh), Image.Resampling.BILINEAR), dtype=np.float64)
    spec = np.fft.fft2(small)
    log_amp = np.log(np.abs(spec) + 1e-9)
    phase = np.angle(spec)
    residual = log_amp - ndimage.uniform_filter(log_amp, size=3, mode="nearest")
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    sal = ndimage.gaussian_filter(sal, sigma=sigma * sw / 64.0, mode="nearest")
    big = np.asarray(Image.fromarray(sal.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float64)
    lo, hi = float(big.min()), float(big.max())
    return (big - lo) / (hi - lo) if hi > lo else np.zeros_like(big)


def saliency_roi(image: np.ndarray, factor: float = 3.0) -> np.ndarray:
    """Binary ROI: saliency > factor * mean saliency (Hou & Zhang 2007 object-map rule)."""
    s = spectral_residual_saliency(image)
    return s > factor * float(s.mean())


# --------------------------------------------------------------------------- registry
RoiProvider = Callable[..., np.ndarray]
_PROVIDERS: dict[str, Callable[..., RoiProvider]] = {}


def register_roi(name: str) -> Callable[[Callable[..., RoiProvider]], Callable[..., RoiProvider]]:
    """Register a provider factory: factory(**options) -> provider(image, bands=None, source=...)."""

    def deco(factory: Callable[..., RoiProvider]) -> Callable[..., RoiProvider]:
        if name in _PROVIDERS:
            raise ValueError(f"ROI provider {name!r} registered twice")
        _PROVIDERS[name] = factory
        return factory

    return deco


def list_roi_providers() -> list[str]:
    return sorted(_PROVIDERS)


def create_roi_provider(name: str, **options: Any) -> RoiProvider:
    try:
        factory = _PROVIDERS[name]
    except KeyError:
        raise RoiError(f"unknown ROI provider {name!r}; known: {', '.join(list_roi_providers())}") from None
    return factory(**options)


def _checked(provider: Callable[..., np.ndarray]) -> RoiProvider:
    def run(image: np.ndarray, bands: dict[str, np.ndarray] | None = None, source: str = "<image>") -> np.ndarray:
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3:
            raise RoiError(f"{source}: expected an HxWx3 image, got shape {a.shape}")
        return check_mask(provider(a, bands, source), a.shape, source)

    return run


@register_roi("full")
def _full(**_: Any) -> RoiProvider:
    return _checked(lambda img, bands, src: np.ones(img.shape[:2], dtype=bool))


@register_roi("mask")
def _dataset_mask(mask_path: str | os.PathLike | None = None, invert: bool = False, **_: Any) -> RoiProvider:
    """A mask file shipped with the dataset; `mask_path` may contain '{stem}' for the image."""

    def get(img: np.ndarray, bands: Any, src: str) -> np.ndarray:
        if mask_path is None:
            raise RoiError(f"{src}: the 'mask' ROI provider needs mask_path")
        path = str(mask_path).replace("{stem}", Path(src).stem)
        return read_mask(path, img.shape, invert=invert)

    return _checked(get)


@register_roi("cloud")
def _cloud(thresholds: dict[str, float] | None = None, **_: Any) -> RoiProvider:
    """ROI = non-cloud; uses raw Landsat DN bands when given, else the 8-bit RGB proxy."""
    t = CloudThresholds(**(thresholds or {}))

    def get(img: np.ndarray, bands: dict[str, np.ndarray] | None, src: str) -> np.ndarray:
        cloud = detect_clouds_dn(bands, t) if bands else detect_clouds_rgb8(img, t)
        return ~cloud

    return _checked(get)


@register_roi("saliency")
def _saliency(factor: float = 3.0, **_: Any) -> RoiProvider:
    return _checked(lambda img, bands, src: saliency_roi(img, factor))


# --------------------------------------------------------------------------- 38-Cloud validation
CLOUD38_BANDS = ("red", "green", "blue", "nir", "gt")


def load_38cloud_patch(folder: str | os.PathLike) -> dict[str, Any]:
    """Read one 38-Cloud patch folder: {band: uint16 HxW, 'gt': bool cloud mask, 'name': str}."""
    import tifffile

    folder = Path(folder)
    out: dict[str, Any] = {}
    for band in CLOUD38_BANDS:
        hits = sorted(folder.glob(f"{band}_patch_*.TIF")) + sorted(folder.glob(f"{band}_patch_*.tif"))
        if not hits:
            raise RoiError(f"{folder}: no {band}_patch_*.TIF file (38-Cloud layout expected)")
        try:
            out[band] = tifffile.imread(hits[0])
        except Exception as e:
            raise RoiError(f"{hits[0]}: cannot read TIFF ({e})") from None
        out.setdefault("name", hits[0].name.split("_", 1)[1].rsplit(".", 1)[0])
    shape = out["red"].shape
    for band in CLOUD38_BANDS:
        if out[band].shape != shape:
            raise RoiError(f"{folder}: {band} is {out[band].shape}, red is {shape}")
    out["gt"] = check_mask(out["gt"], shape, f"{folder}/gt_{out['name']}")
    return out


def mask_scores(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """IoU, precision, recall, F1 and accuracy of a binary prediction (positive = True)."""
    if pred.shape != truth.shape:
        raise RoiError(f"mask scores: prediction {pred.shape} vs truth {truth.shape}")
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {
        "iou": ratio(tp, tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": ratio(tp + tn, pred.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "pixels": int(pred.size),
        "true_fraction": ratio(tp + fn, pred.size),
        "pred_fraction": ratio(tp + fp, pred.size),
    }


def validate_cloud_detector(folder: str | os.PathLike, thresholds: CloudThresholds = CloudThresholds()) -> dict[str, Any]:
    """Score the detector on a 38-Cloud patch: with NIR, and RGB-only (no NDVI test)."""
    p = load_38cloud_patch(folder)
    valid = np.all([p[k] > 0 for k in ("red", "green", "blue")], axis=0)
    bands = {k: p[k] for k in ("red", "green", "blue", "nir")}
    rgb_only = {k: p[k] for k in ("red", "green", "blue")}
    out = {
        "patch": p["name"],
        "positive_class": "cloud",
        "thresholds": thresholds.as_dict(),
        "thresholds_source": "Fmask (Zhu & Woodcock 2012) HOT/whiteness/NDVI tests + ACCA red>0.08; fixed, not tuned",
        "reflectance": "rho = 2e-5*DN - 0.1 (L8 C1 default), no sun-elevation correction",
        "valid_pixels": int(np.count_nonzero(valid)),
        "rgb_nir": mask_scores(detect_clouds_dn(bands, thresholds), p["gt"], valid),
        "rgb_only": mask_scores(detect_clouds_dn(rgb_only, thresholds), p["gt"], valid),
    }
    # The 8-bit proxy path (what an already-stretched RGB tile gets), scored for honesty.
    truecolor = sorted(Path(folder).glob("truecolor_patch_*.TIF"))
    if truecolor:
        from rsicbench.imageio import read_rgb

        rgb = read_rgb(truecolor[0])
        if rgb.shape[:2] == p["gt"].shape:
            out["rgb8_truecolor"] = mask_scores(detect_clouds_rgb8(rgb, thresholds), p["gt"], valid)
    return out


def landsat_false_alarm(folder: str | os.PathLike, thresholds: CloudThresholds = CloudThresholds()) -> dict[str, Any]:
    """Cloud fraction the detector reports on the shipped cloud-free Landsat-8 subset (B2/B3/B4).

    The scene is documented as cloud-free, so every detection is a false alarm.
    """
    import tifffile

    folder = Path(folder)
    names = {"blue": "B2", "green": "B3", "red": "B4"}
    bands = {}
    for k, b in names.items():
        hits = sorted(folder.glob(f"*_{b}.TIF"))
        if not hits:
            raise RoiError(f"{folder}: no *_{b}.TIF ({k} band)")
        bands[k] = tifffile.imread(hits[0])
    valid = np.all([v > 0 for v in bands.values()], axis=0)
    cloud = detect_clouds_dn(bands, thresholds)
    n = int(np.count_nonzero(valid))
    return {
        "scene": sorted(folder.glob("*_B2.TIF"))[0].name.rsplit("_", 1)[0],
        "valid_pixels": n,
        "false_alarm_fraction": float(np.count_nonzero(cloud & valid)) / n if n else float("nan"),
    }
