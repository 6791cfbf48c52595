"""BD-rate / BD-quality tables against an anchor codec, with paired bootstrap CIs over the
images of the points' per_image.csv, and the LTCHM Table 3 rows beside ours."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench import results
from rsicbench.claims import read_claims

# (output key, metric column, kind)
BD_MEASURES = [
    ("bd_rate_psnr", "psnr", "rate"),
    ("bd_psnr", "psnr", "quality"),
    ("bd_msssim_db", "msssim_db", "quality"),
    ("bd_lpips", "lpips", "quality"),
    ("bd_vifp", "vifp", "quality"),
]


# LTCHM Table 3 subject -> our codec
PAPER_TO_OURS = {"bpg": "hevc", "avif": "avif", "webp": "webp"}


# a paper subject measured with the real tool when its curve exists (configs/external.yaml),
# else with the stand-in above, which the row then names
REAL_TOOL = {"bpg": "ext-bpg"}


STAND_IN = {"bpg": "stand-in: x265 HEVC intra via pillow-heif (codec hevc); bpgenc was not run"}



def load_points(rd_root: Path, dataset: str, codec: str) -> dict[str, dict[str, dict[str, float]]]:
    """{qtag: {image: row}} (images without error) for the fixed-quality points of a codec's RD curve."""
    curve = results.curve(rd_root, dataset, codec)
    if not curve:
        raise FileNotFoundError(f"{rd_root / dataset / codec}: no fixed-quality rate points (run its sweep/evaluate stages)")
    return {s["qtag"]: results.read_per_image(results.point_dir(rd_root, dataset, codec, s["qtag"]) / results.PER_IMAGE)
            .by_image() for s in curve}


def per_image_arrays(points: dict[str, dict[str, dict]], images: list[str], keys: list[str]) -> dict[str, np.ndarray]:
    arrays = {}
    for k in keys:
        arrays[k] = np.array([[float(points[q][img][k]) for img in images] for q in sorted(points)], dtype=np.float64)
    return arrays


def _has(points: dict[str, dict[str, dict]], images: list[str], key: str) -> bool:
    return all(not math.isnan(points[q][img][key]) for q in points for img in images)


def bd_table(rd_root: Path, dataset: str, anchor: str, codecs: list[str], boot: dict[str, Any]) -> dict[str, Any]:
    from rsicbench.metrics.bd import bootstrap_bd

    ref = load_points(rd_root, dataset, anchor)
    table = {}
    for codec in codecs:
        test = load_points(rd_root, dataset, codec)
        images = sorted(set.intersection(*(set(v) for v in list(ref.values()) + list(test.values()))))
        entry: dict[str, Any] = {"n_images": len(images), "n_points": len(test), "anchor_points": len(ref)}
        if not images:
            entry["error"] = "no image evaluated without error at every point of both codecs"
            table[codec] = entry
            continue
        for out_key, metric, kind in BD_MEASURES:
            if not (_has(ref, images, metric) and _has(test, images, metric)):
                entry[out_key] = {"value": None, "valid": False, "warnings": [f"{metric} not measured"]}
                continue
            a = per_image_arrays(ref, images, ["bpp", metric])
            t = per_image_arrays(test, images, ["bpp", metric])
            r = bootstrap_bd(a, t, metric, kind=kind, n_boot=int(boot.get("n", 1000)),
                             seed=int(boot.get("seed", 0)), ci=float(boot.get("ci", 0.95)))  # fmt: skip
            entry[out_key] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        table[codec] = entry
    return table


def ltchm_rows(table: dict[str, Any], dataset: str, claims_path: Path) -> list[dict[str, Any]]:
    if not claims_path.is_file():
        return []
    claims = read_claims(claims_path).claims
    rows = []
    for c in claims:
        if c.get("ref") != "Table 3" or c.get("dataset") != dataset or c.get("subject") not in PAPER_TO_OURS:
            continue
        real = REAL_TOOL.get(c["subject"])
        ours_codec = real if real in table else PAPER_TO_OURS[c["subject"]]
        ours = (table.get(ours_codec) or {}).get(c["quantity"]) or {}
        rows.append({
            "claim_id": c["id"], "paper_subject": c["subject"], "ours_codec": ours_codec,
            "ours_note": STAND_IN.get(c["subject"]) if ours_codec != real else f"real tool ({real})",
            "quantity": c["quantity"], "unit": c.get("unit"), "paper": c["value"],
            "ours": ours.get("value"), "ours_ci": [ours.get("ci_low"), ours.get("ci_high")],
            "ours_valid": ours.get("valid"),
            "difference": None if ours.get("value") is None else ours["value"] - c["value"],
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["claim_id"])
