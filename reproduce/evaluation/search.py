"""Target-bpp search: per image, the integer quality whose bpp is nearest a target.

Like CompressAI's `find_close` (compressai/utils/find_close), a binary search over the
quality parameter; unlike it, the quality is an integer and the direction (more bits for
higher quality, or for lower ratio as in JPEG2000) comes from the codec class. Rate is
assumed monotonic in the quality; when a codec is locally non-monotonic, every quality the
bisection visited is a candidate and the nearest of them wins. Ties go to the higher bpp,
then to the lower quality value, so the choice is deterministic.
`unreached_targets` says which images of a finished matched-rate point stayed off target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench import results
from rsicbench.reproduce.codecs.base import Codec, CodecError, codec_factory, create_codec, mid_quality


@dataclass(frozen=True)
class SearchResult:
    quality: int
    bpp: float
    data: bytes
    evaluations: int


def bpp_of(data: bytes, height: int, width: int) -> float:
    return 8.0 * len(data) / float(height * width)


def find_quality(
    codec_name: str, image: np.ndarray, target_bpp: float, options: dict[str, Any] | None = None
) -> SearchResult:
    """Binary search over the codec's integer quality range for bpp nearest `target_bpp`."""
    if not (target_bpp > 0):
        raise CodecError(f"{codec_name}: target bpp must be > 0, got {target_bpp}")
    options = dict(options or {})
    probe: type[Codec] | Any = create_codec(codec_name, mid_quality(codec_name), **options)
    if not probe.integer_quality:
        raise CodecError(f"{codec_name}: target-bpp search needs an integer quality parameter")
    lo, hi = (int(v) for v in probe.quality_range)
    more_bits_up = bool(probe.higher_is_better)
    h, w = image.shape[:2]
    seen: dict[int, tuple[float, bytes]] = {}

    def rate(q: int) -> float:
        if q not in seen:
            data = create_codec(codec_name, q, **options).encode(image)
            seen[q] = (bpp_of(data, h, w), data)
        return seen[q][0]

    # invariant: the answer lies in [a, b]; move toward more bits while below the target
    a, b = lo, hi
    while b - a > 1:
        m = (a + b) // 2
        below = rate(m) < target_bpp
        if below == more_bits_up:
            a = m
        else:
            b = m
    rate(a)
    rate(b)
    best = min(seen, key=lambda q: (abs(seen[q][0] - target_bpp), -seen[q][0], q))
    return SearchResult(quality=best, bpp=seen[best][0], data=seen[best][1], evaluations=len(seen))


TARGET_TOL = 0.05  # a matched-rate image more than 5 % off its target at the end of the quality range: not reached


def unreached_targets(summary: dict, out_root: Path) -> str | None:
    """Why a matched-rate point missed its target, or None: images whose chosen quality is the
    end of the codec's range and whose bpp is still more than TARGET_TOL off the target."""
    target = summary.get("target_bpp")
    if target is None:
        return None
    factory = codec_factory(summary["codec"])
    lo, hi = getattr(factory, "quality_range", (None, None))
    most, least = (hi, lo) if getattr(factory, "higher_is_better", True) else (lo, hi)
    qualities = summary.get("qualities") or {}
    folder = results.point_dir(out_root, summary["dataset"], summary["codec"], summary["qtag"])
    rows = [r for r in results.read_per_image(folder / results.PER_IMAGE).rows if not math.isnan(r["bpp"])]
    low = [r["bpp"] for r in rows if qualities.get(r["image"]) == most and r["bpp"] < target * (1 - TARGET_TOL)]
    high = [r["bpp"] for r in rows if qualities.get(r["image"]) == least and r["bpp"] > target * (1 + TARGET_TOL)]
    if not (low or high):
        return None
    parts = []
    if low:
        parts.append(f"{len(low)} image(s) stay below it even at the highest-rate setting (max {max(low):.4g} bpp)")
    if high:
        parts.append(f"{len(high)} image(s) stay above it even at the lowest-rate setting (min {min(high):.4g} bpp)")
    return f"target {target:g} bpp not reached for {len(low) + len(high)}/{len(rows)} images: " + "; ".join(parts)
