"""Target-bpp search: the returned quality is the nearest-bpp one."""

from __future__ import annotations

import pytest

from rsicbench.reproduce.codecs.base import CodecError, create_codec
from rsicbench.reproduce.evaluation.search import bpp_of, find_quality


def test_jpeg_nearest_over_whole_range(smooth_image):
    h, w = smooth_image.shape[:2]
    rates = {q: bpp_of(create_codec("jpeg", q).encode(smooth_image), h, w) for q in range(1, 101)}
    for target in (0.7, 1.5, 3.0):
        res = find_quality("jpeg", smooth_image, target)
        best = min(abs(r - target) for r in rates.values())
        assert abs(res.bpp - target) == pytest.approx(best), (target, res)
        assert res.bpp == rates[res.quality]
        assert res.evaluations <= 10  # a binary search, not a scan


def test_jpeg2000_reverse_direction(smooth_image):
    """Ratio: more bits for LOWER values; the search must walk the other way."""
    h, w = smooth_image.shape[:2]
    res = find_quality("jpeg2000", smooth_image, 0.81)
    assert res.bpp == bpp_of(create_codec("jpeg2000", res.quality).encode(smooth_image), h, w)
    for q in range(max(1, res.quality - 4), res.quality + 5):
        other = bpp_of(create_codec("jpeg2000", q).encode(smooth_image), h, w)
        assert abs(res.bpp - 0.81) <= abs(other - 0.81) + 1e-12, (q, other, res)
    assert abs(res.bpp - 0.81) < 0.1


def test_unreachable_target_returns_range_end(smooth_image):
    res = find_quality("webp", smooth_image, 1000.0)
    assert res.quality == 100


def test_bad_target(smooth_image):
    with pytest.raises(CodecError, match="target bpp must be > 0"):
        find_quality("jpeg", smooth_image, 0)
    with pytest.raises(CodecError, match="unknown codec"):
        find_quality("nope", smooth_image, 0.7)
