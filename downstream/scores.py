"""Classification scores: confusion matrix, overall accuracy, per-class accuracy, and a
Bjontegaard-style accuracy-vs-rate delta (BD-OA)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def confusion(true: Sequence[int], pred: Sequence[int], n: int) -> np.ndarray:
    """n x n counts; rows = true class, columns = predicted class."""
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"{t.shape} labels vs {p.shape} predictions")
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= n or p.max() >= n):
        raise ValueError(f"class index outside 0..{n - 1}")
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def scores(cm: np.ndarray, classes: Sequence[str]) -> dict:
    """OA (in %), per-class accuracy (recall, in %; null for a class without test images)."""
    total = int(cm.sum())
    support = cm.sum(axis=1)
    per = {c: (100.0 * float(cm[i, i]) / float(support[i]) if support[i] else None) for i, c in enumerate(classes)}
    return {
        "oa": 100.0 * float(np.trace(cm)) / total if total else None,
        "n_images": total,
        "per_class_accuracy": per,
        "confusion": cm.astype(int).tolist(),
        "classes": list(classes),
    }


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch: int = 64) -> np.ndarray:
    """Arg-max class of every uint8 image in an N x 3 x S x S tensor."""
    model.eval()
    out = []
    for i in range(0, images.shape[0], batch):
        out.append(model(images[i : i + batch].float()).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def bd_accuracy(anchor: Sequence[tuple[float, float]], test: Sequence[tuple[float, float]]) -> float | None:
    """Mean OA difference (test - anchor, percentage points) over the shared log10-bpp range.

    Bjontegaard's construction with PCHIP interpolation (as in the BD-PSNR of
    JCTVC-L0242-style tools), with OA in place of PSNR. None when the curves have fewer than
    two distinct rates each or do not overlap in rate.
    """
    from scipy.interpolate import PchipInterpolator

    def prep(pts):
        d: dict[float, float] = {}
        for r, a in pts:
            if r is not None and a is not None and r > 0 and math.isfinite(r) and math.isfinite(a):
                d[math.log10(r)] = a
        xs = sorted(d)
        return np.array(xs), np.array([d[x] for x in xs])

    xa, ya = prep(anchor)
    xt, yt = prep(test)
    if len(xa) < 2 or len(xt) < 2:
        return None
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if hi <= lo:
        return None
    fa, ft = PchipInterpolator(xa, ya), PchipInterpolator(xt, yt)
    ia = fa.integrate(lo, hi)
    it = ft.integrate(lo, hi)
    return float((it - ia) / (hi - lo))
