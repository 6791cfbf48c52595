"""Input checks shared by every metric: one clear error per kind of bad input.

Images are HxWx3 8-bit RGB (the suite's one array type, see rsicbench.imageio). Metrics are
defined on 8-bit rounded reconstructions, so float inputs are accepted only when they are
finite, inside [0, 255] and integer-valued; anything else is refused rather than silently
rounded (a caller passing [0, 1] floats would otherwise get garbage).
"""

from __future__ import annotations

import numpy as np


class MetricInputError(ValueError):
    """An image or mask that a metric cannot use, with the problem in the message."""


def as_rgb8(img, name: str = "image") -> np.ndarray:
    """Return `img` as a contiguous HxWx3 uint8 array or raise MetricInputError."""
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise MetricInputError(f"{name}: expected an HxWx3 RGB array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise MetricInputError(f"{name}: empty image {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise MetricInputError(f"{name}: unsupported dtype {a.dtype} (expected uint8)")
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise MetricInputError(f"{name}: contains NaN values")
        if not np.isfinite(a).all():
            raise MetricInputError(f"{name}: contains infinite values")
    lo, hi = a.min(), a.max()
    if lo < 0 or hi > 255:
        raise MetricInputError(
            f"{name}: values outside the 8-bit range [0, 255] (min {lo}, max {hi}, dtype {a.dtype}); "
            "metrics expect 8-bit RGB"
        )
    if np.issubdtype(a.dtype, np.floating) and not np.array_equal(a, np.round(a)):
        raise MetricInputError(
            f"{name}: float values are not 8-bit integers (dtype {a.dtype}); metrics are defined on "
            "8-bit rounded reconstructions: use np.clip(np.round(x), 0, 255).astype(np.uint8)"
        )
    return np.ascontiguousarray(a.astype(np.uint8))


def check_pair(ref, rec) -> tuple[np.ndarray, np.ndarray]:
    """Validate an (original, reconstruction) pair: both 8-bit RGB of the same shape."""
    r = as_rgb8(ref, "reference")
    d = as_rgb8(rec, "reconstruction")
    if r.shape != d.shape:
        raise MetricInputError(f"shape mismatch: reference {r.shape} vs reconstruction {d.shape}")
    return r, d


def check_mask(mask, shape: tuple[int, int], name: str = "roi_mask") -> np.ndarray:
    """An HxW boolean ROI mask (True = region of interest).

    Accepted: bool arrays, or integer arrays holding only {0, 1} or {0, 255} (binary mask
    files); anything else is refused because its meaning would be a guess.
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] in (1, 3, 4) and np.issubdtype(m.dtype, np.integer):
        if m.shape[2] > 1 and not all(np.array_equal(m[:, :, 0], m[:, :, c]) for c in range(1, min(3, m.shape[2]))):
            raise MetricInputError(f"{name}: a colour mask (channels differ); expected a binary HxW mask")
        m = m[:, :, 0]
    if m.shape != tuple(shape):
        raise MetricInputError(f"{name}: shape {m.shape} does not match the image's {tuple(shape)}")
    if m.dtype == bool:
        return m
    if np.issubdtype(m.dtype, np.integer):
        vals = np.unique(m)
        if set(vals.tolist()) <= {0, 1} or set(vals.tolist()) <= {0, 255}:
            return m > 0
        raise MetricInputError(f"{name}: integer mask must hold only 0/1 or 0/255, found values {vals[:8].tolist()}")
    raise MetricInputError(f"{name}: unsupported mask dtype {m.dtype} (expected bool)")
