"""Target-bpp search: per image, the integer quality whose bpp is nearest a target.

Like CompressAI's `find_close` (compressai/utils/find_close), a binary search over the
quality parameter; unlike it, the quality is an integer and the direction (more bits for
higher quality, or for lower ratio as in JPEG2000) comes from the codec class. Rate is
assumed monotonic in the quality; when a codec is locally non-monotonic, every quality the
bisection visited is a candidate and the nearest of them wins. Ties go to the higher bpp,
then to the lower quality value, so the choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rsicbench.reproduce.codec import Codec, CodecError, create_codec, mid_quality


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
