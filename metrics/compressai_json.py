"""Import/export of CompressAI's RD-results JSON, to compare with its published curves.

CompressAI's format (results/image/kodak/*.json and `python -m compressai.utils.eval_model`):
    {"name": str, "description": str,
     "results": {"psnr-rgb" | "psnr": [...], "ms-ssim-rgb" | "ms-ssim": [...], "bpp": [...],
                 optional "encoding_time", "decoding_time": [...]}}
one list entry per rate point, in any order (published files run from high to low rate).

Our side is a curve: {"name", "description", "points": [{"bpp":..., "psnr":..., ...}, ...]}
with rsicbench metric keys (METRIC_KEYS + bpp, enc_s, dec_s), sorted by bpp.
Export writes "psnr-rgb"/"ms-ssim-rgb" (today's CompressAI eval_model keys) plus "psnr"/
"ms-ssim" (the keys of the older published files and of compressai.utils.plot), and our
other metrics under their own names.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

from rsicbench.fsutil import read_json, write_json

# CompressAI key -> rsicbench key; the first listed wins when both are present.
_IMPORT_KEYS = (
    ("bpp", "bpp"),
    ("psnr-rgb", "psnr"),
    ("psnr", "psnr"),
    ("ms-ssim-rgb", "msssim"),
    ("ms-ssim", "msssim"),
    ("encoding_time", "enc_s"),
    ("decoding_time", "dec_s"),
    ("lpips", "lpips"),
    ("vifp", "vifp"),
)
_EXPORT_KEYS = (
    ("bpp", "bpp"),
    ("psnr", "psnr-rgb"),
    ("psnr", "psnr"),
    ("msssim", "ms-ssim-rgb"),
    ("msssim", "ms-ssim"),
    ("enc_s", "encoding_time"),
    ("dec_s", "decoding_time"),
)
_EXTRA_EXPORT = ("psnr_band", "msssim_db", "lpips", "vifp", "roi_psnr")


def from_compressai(data: Mapping[str, Any], source: str = "<json>") -> dict[str, Any]:
    """A CompressAI results dict -> our curve dict (points sorted by bpp)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), Mapping):
        raise ValueError(f"{source}: not a CompressAI results file (no 'results' mapping)")
    res = data["results"]
    if "bpp" not in res:
        raise ValueError(f"{source}: 'results' has no 'bpp' list")
    n = len(res["bpp"])
    cols: dict[str, list[float]] = {}
    for ckey, ours in _IMPORT_KEYS:
        if ckey in res and ours not in cols:
            vals = res[ckey]
            if not isinstance(vals, list) or len(vals) != n:
                raise ValueError(f"{source}: results[{ckey!r}] must be a list of {n} numbers like 'bpp'")
            try:
                cols[ours] = [float(v) for v in vals]
            except (TypeError, ValueError):
                raise ValueError(f"{source}: results[{ckey!r}] holds non-numeric values") from None
    if "msssim" in cols:
        cols["msssim_db"] = [math.inf if v >= 1 else -10 * math.log10(1 - v) for v in cols["msssim"]]
    points = [{k: v[i] for k, v in cols.items()} for i in range(n)]
    points.sort(key=lambda p: p["bpp"])
    return {"name": str(data.get("name", "")), "description": str(data.get("description", "")), "points": points}


def read_compressai(path: str | os.PathLike) -> dict[str, Any]:
    return from_compressai(read_json(path), str(path))


def to_compressai(name: str, points: Sequence[Mapping[str, float]], description: str = "") -> dict[str, Any]:
    """Our curve points (dicts with bpp and metric keys) -> CompressAI results dict."""
    pts = sorted(points, key=lambda p: float(p["bpp"]))
    results: dict[str, list[float]] = {}
    for ours, ckey in _EXPORT_KEYS:
        if pts and all(ours in p for p in pts):
            results[ckey] = [float(p[ours]) for p in pts]
    for k in _EXTRA_EXPORT:
        if pts and all(k in p for p in pts):
            results[k] = [float(p[k]) for p in pts]
    if "bpp" not in results:
        raise ValueError("to_compressai: every point needs a 'bpp' value")
    return {"name": name, "description": description, "results": results}


def write_compressai(path: str | os.PathLike, name: str, points: Sequence[Mapping[str, float]],
                     description: str = "") -> None:
    write_json(path, to_compressai(name, points, description))
