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
    """Mean OA difference (test - anchor, percentage points) at equal rate: BD-OA.

    Bjontegaard's BD-quality with OA in place of PSNR, computed by the suite's one BD
    implementation (rsicbench.metrics.bd, pchip). None when either curve has fewer than two
    distinct rates or the curves do not overlap in rate.
    """
    from rsicbench.metrics.bd import bd_delta

    def prep(pts):
        d: dict[float, float] = {}
        for r, a in pts:
            if r is not None and a is not None and r > 0 and math.isfinite(r) and math.isfinite(a):
                d[float(r)] = float(a)
        return sorted(d), [d[r] for r in sorted(d)]

    (ra, oa), (rt, ot) = prep(anchor), prep(test)
    if len(ra) < 2 or len(rt) < 2 or min(ra[-1], rt[-1]) <= max(ra[0], rt[0]):
        return None
    res = bd_delta(ra, oa, rt, ot)
    return float(res.value) if res.value is not None and math.isfinite(res.value) else None
