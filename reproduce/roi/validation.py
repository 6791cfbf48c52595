"""The cloud detector scored from the dataset stages' outputs (stage roi-validate).

`validate_from_data(data)` reads only data/samples (the 38-Cloud patch and its true mask) and
data/landsat8 (cloud-free tiles); the raw-band path needs the raw TIFFs and lives in
providers.validate_cloud_detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsicbench.imageio import read_rgb
from rsicbench.reproduce.roi import masks as roi_masks
from rsicbench.reproduce.roi import providers as roi


def validate_from_data(data: Path) -> dict:
    """Detector scores from the dataset stages' outputs only (data/samples, data/landsat8).

    38-Cloud: data/samples holds the 8-bit true-colour patch and its true mask, so the
    detector runs on the 8-bit proxy path (reflectance ~ v/255); the raw-band path (better)
    needs the raw TIFFs: `rsicbench roi validate --patch DIR` (key `38cloud_raw_bands`).
    Landsat-8: the tiles' approximate DNs (roi_masks.landsat_tile_roi) on the cloud-free scene.
    """
    out: dict = {"38cloud": _score_38cloud(data / "samples")}
    land = data / "landsat8"
    if (land / "manifest.tsv").is_file():
        out["landsat8_cloud_free"] = _landsat_false_alarms(land)
    return out


def _score_38cloud(samples: Path) -> dict:
    rows = [r for r in roi_masks._manifest(samples) if r.get("mask") and r["relpath"].startswith("38cloud/")]
    if not rows:
        raise roi.RoiError(f"{samples}/manifest.tsv: no 38-Cloud patch with a mask (run fetch@samples)")
    scores = {}
    for r in rows:  # one patch in the shipped data; several are scored the same way
        rgb = read_rgb(samples / "images" / r["relpath"])
        truth = roi.read_mask(samples / r["mask"], rgb.shape)
        valid = rgb.max(axis=2) > 0
        scores[r["relpath"]] = {
            "source": f"data/samples/images/{r['relpath']} + {r['mask']}", "positive_class": "cloud",
            "path": "rgb8 (reflectance ~ v/255)", "thresholds": roi.CloudThresholds().as_dict(),
            "rgb8_truecolor": roi.mask_scores(roi.detect_clouds_rgb8(rgb), truth, valid)}
    return scores


def _landsat_false_alarms(land: Path) -> dict:
    bounds = roi_masks.landsat_bounds(land / "aux" / "fetch.json")
    cloud = valid_n = 0
    for r in roi_masks._manifest(land):
        img = read_rgb(land / "images" / r["relpath"])
        m = roi_masks.landsat_tile_roi(img, bounds[roi_masks._scene_of(r["relpath"], bounds)])
        cloud += int(np.count_nonzero(~m))
        valid_n += m.size
    return {"source": "data/landsat8 tiles (approximate DNs from fetch.json bounds)",
            "valid_pixels": valid_n, "false_alarm_fraction": cloud / valid_n}
