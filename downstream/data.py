"""Images and labels for the classifier: split lists, in-memory tensors, EMTCAL augmentation.

Samples come from `rsicbench.datasets.load_split` (data/<ds>/splits/*.txt). Only while the
datasets part has not produced data/<ds> yet, UC Merced can be read straight from the local
mirror (../shared/datasets/ucmerced): the same relpaths (`<class>/<name>.png`) and the same
split functions (`rsicbench.datasets.splits`) with the same seed, so the lists are identical
to the ones `rsicbench data split` writes with the default ratios. Every result records
which source was used (`data_source`).

Images are resized once to the network input (bilinear, antialiased; the 44 UC Merced
images that are a few pixels off 256x256 are resized to the square too) and kept as uint8.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rsicbench.imageio import read_rgb
from rsicbench.results import Sample


# One image (file, relpath, class label): the results contract's sample type, under its local name.
Item = Sample


class DataError(RuntimeError):
    """Split lists or images that cannot be used; the message names the file."""


def _mirror_items(ds: str, split: str, seed: int) -> list[Item]:
    from rsicbench.datasets.base import Entry
    from rsicbench.datasets.splits import make_classifier_splits, make_splits
    from rsicbench.paths import shared_path

    root = shared_path("datasets", ds)
    if ds != "ucmerced" or root is None:
        raise DataError(f"data/{ds}: no split lists (run `rsicbench data fetch {ds}` and `rsicbench data split {ds}`)")
    with open(root / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    entries, where = [], {}
    for r in rows:
        rel = f"{r['class']}/{Path(r['file']).stem}.png"
        entries.append(Entry(rel, r["class"], int(r["width"]), int(r["height"]), r["sha256_rgb_pixels"]))
        where[rel] = str(root / r["file"])
    splits = make_splits(entries, seed)
    splits.update(make_classifier_splits(entries, splits, seed))
    if split not in splits:
        raise DataError(f"unknown split {split!r}; choose one of {sorted(splits)}")
    labels = {e.relpath: e.label for e in entries}
    return [Item(where[r], r, labels[r]) for r in splits[split]]


def load_items(ds: str, split: str, seed: int = 0, source: str = "auto") -> tuple[list[Item], str]:
    """(items sorted by relpath, data source: 'data' or 'mirror')."""
    if source in ("auto", "data"):
        try:
            from rsicbench.datasets import load_split  # type: ignore[attr-defined]
        except ImportError:
            load_split = None
        if load_split is not None:
            try:
                samples = load_split(ds, split)
            except Exception as e:  # missing data/<ds> etc.
                if source == "data":
                    raise DataError(f"{ds}/{split}: {e}") from None
            else:
                items = [Item(str(s.path), s.relpath, s.label or "") for s in samples]
                if any(not it.label for it in items):
                    raise DataError(f"{ds}/{split}: images without a class label; the classifier needs labels")
                return sorted(items, key=lambda i: i.relpath), "data"
        elif source == "data":
            raise DataError("rsicbench.datasets.load_split is not available")
    return _mirror_items(ds, split, seed), "mirror"


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))


def load_tensor(paths: Sequence[str | Path], size: int, progress: bool = False) -> torch.Tensor:
    """N x 3 x size x size uint8 tensor of the images (read by rsicbench.imageio rules)."""
    from tqdm import tqdm

    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, p in enumerate(tqdm(paths, desc="images", disable=not progress, leave=False)):
        out[i] = torch.from_numpy(resize_rgb(read_rgb(p), size).copy()).permute(2, 0, 1)
    return out


def augment(x: torch.Tensor, gen: torch.Generator, max_deg: float = 30.0) -> torch.Tensor:
    """EMTCAL's training augmentation on a float batch: random h/v flips, rotation in +-max_deg.

    Rotation is bilinear with zero fill, like torchvision's RandomRotation defaults.
    """
    b = x.shape[0]
    hf = torch.rand(b, generator=gen) < 0.5
    vf = torch.rand(b, generator=gen) < 0.5
    x = torch.where(hf.view(b, 1, 1, 1), x.flip(3), x)
    x = torch.where(vf.view(b, 1, 1, 1), x.flip(2), x)
    if max_deg <= 0:
        return x
    ang = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(max_deg)
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(b)], 1), torch.stack([sin, cos, torch.zeros(b)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
