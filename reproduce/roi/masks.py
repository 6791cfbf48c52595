"""ROI masks as data: one PNG (0 / 255, 255 = region of interest) per dataset image.

    results/roi/masks/<ds>/<relpath without extension>.png

Which provider per dataset (all read from `data/<ds>/`, the dataset stages' outputs):
  * landsat8  cloud detector (reproduce.roi), ROI = NOT cloud (MROI-CFHPM, Sec. 3.3). The
              8-bit tiles are mapped back to approximate L1 DNs with the per-band stretch
              bounds the fetch stage records in data/landsat8/aux/fetch.json
              (v = clip(round((DN - lo) * 255 / (hi - lo)))  =>  DN ~ lo + v (hi - lo) / 255),
              so the detector's reflectance thresholds apply (the 8-bit proxy path is a worse
              fit, see docs/roi.md). Values clipped by the stretch stay clipped: a cloud
              brighter than the 98th percentile reads as that percentile (still bright).
  * samples   38-Cloud: the TRUE mask shipped with the patch (manifest column `mask`),
              inverted (ROI = non-cloud); other sample images (DOTA): saliency.
  * ucmerced  spectral-residual saliency (general scenes; AGDL's ROI).
  * anything else: saliency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from rsicbench.reproduce.roi import providers as roi
DEFAULT_ROOT = Path("results/roi/masks")


def mask_path(mask_dir: str | Path, relpath: str) -> Path:
    """`<mask_dir>/<relpath without extension>.png` (the engine's `roi_dir` rule)."""
    rel = Path(relpath)
    return Path(mask_dir) / (rel.with_suffix(".png") if rel.suffix else Path(f"{rel}.png"))


def read_roi(mask_dir: str | Path, relpath: str, shape: tuple[int, ...]) -> np.ndarray:
    """The stored ROI of one image as HxW bool; RoiError names the file on any problem."""
    return roi.read_mask(mask_path(mask_dir, relpath), shape)


def landsat_bounds(aux_fetch: str | Path) -> dict[str, dict[str, tuple[float, float]]]:
    """{scene: {'red'|'green'|'blue': (lo, hi)}} from data/landsat8/aux/fetch.json."""
    path = Path(aux_fetch)
    try:
        scenes = json.loads(path.read_text(encoding="utf-8"))["scenes"]
    except (OSError, ValueError, KeyError) as e:
        raise roi.RoiError(f"{path}: cannot read per-scene stretch bounds ({e})") from None
    names = {"blue": "B2", "green": "B3", "red": "B4"}
    out = {}
    for scene, info in scenes.items():
        try:
            out[scene] = {k: tuple(float(v) for v in info["bounds"][b]) for k, b in names.items()}
        except (KeyError, TypeError, ValueError):
            raise roi.RoiError(f"{path}: scene {scene} lacks bounds for B2/B3/B4") from None
    return out


def landsat_tile_roi(image: np.ndarray, bounds: dict[str, tuple[float, float]]) -> np.ndarray:
    """ROI (non-cloud) of one stretched 8-bit Landsat-8 tile via approximate DNs."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise roi.RoiError(f"landsat tile: expected HxWx3 uint8, got {a.dtype} {a.shape}")
    bands = {}
    for c, k in enumerate(("red", "green", "blue")):
        lo, hi = bounds[k]
        # DN 0 is nodata for the detector; a stretched 0 is a valid dark pixel -> at least lo>0
        bands[k] = np.maximum(lo + a[..., c].astype(np.float64) * (hi - lo) / 255.0, 1.0)
    return ~roi.detect_clouds_dn(bands)


def _scene_of(relpath: str, scenes: Iterable[str]) -> str:
    for s in sorted(scenes, key=len, reverse=True):
        if Path(relpath).name.startswith(s):
            return s
    raise roi.RoiError(f"landsat8/{relpath}: no scene in fetch.json matches this tile name")


def _manifest(data_root: Path) -> list[dict[str, str]]:
    path = data_root / "manifest.tsv"
    if not path.is_file():
        raise roi.RoiError(f"{path}: manifest not found (run the fetch stage first)")
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    return sorted((dict(zip(head, ln.split("\t"))) for ln in lines[1:] if ln.strip()), key=lambda r: r["relpath"])


def provider_for(ds: str, data_root: Path) -> Callable[[dict[str, str], np.ndarray], tuple[np.ndarray, str]]:
    """A function (manifest row, image) -> (ROI mask, provider name) for dataset `ds`."""
    saliency = roi.create_roi_provider("saliency")
    if ds == "landsat8":
        bounds = landsat_bounds(data_root / "aux" / "fetch.json")

        def landsat(row, img):
            src = str(data_root / "images" / row["relpath"])
            return roi.check_mask(landsat_tile_roi(img, bounds[_scene_of(row["relpath"], bounds)]), img.shape, src), "cloud-detector"

        return landsat

    def default(row, img):
        if row.get("mask"):
            return roi.read_mask(data_root / row["mask"], img.shape, invert=True), "true-mask-inverted"
        return saliency(img, source=str(data_root / "images" / row["relpath"])), "saliency"

    return default


def build_masks(ds: str, data_dir: str | Path = "data", out_root: str | Path = DEFAULT_ROOT,
                relpaths: Iterable[str] | None = None, progress: bool = False) -> dict:
    """Write every image's ROI PNG; returns a summary (counts, ROI fraction, states)."""
    from tqdm import tqdm

    from rsicbench.imageio import read_rgb

    data_root = Path(data_dir) / ds
    rows = _manifest(data_root)
    if relpaths is not None:
        wanted = set(relpaths)
        rows = [r for r in rows if r["relpath"] in wanted]
    provider = provider_for(ds, data_root)
    out = Path(out_root) / ds
    stats: dict = {"dataset": ds, "images": 0, "providers": {}, "states": {"empty": 0, "full": 0, "partial": 0},
                   "roi_fraction_mean": None}
    fractions = []
    for r in tqdm(rows, desc=f"roi masks {ds}", disable=not progress):
        img = read_rgb(data_root / "images" / r["relpath"])
        m, how = provider(r, img)
        roi.write_mask(mask_path(out, r["relpath"]), m)
        stats["images"] += 1
        stats["providers"][how] = stats["providers"].get(how, 0) + 1
        stats["states"][roi.roi_state(m)] += 1
        fractions.append(float(m.mean()))
    if fractions:
        stats["roi_fraction_mean"] = float(np.mean(fractions))
    return stats
