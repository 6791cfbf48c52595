"""rsicbench.datasets: dataset classes, verification, splits, tiling.

Public API:
  list_datasets() -> list[str]
  get_dataset(name, data_root=None, settings=None) -> Dataset
  load_split(ds, split, root=None) -> list[Sample]
`split` is train | val | test | classifier_train | classifier_val | all (the whole
manifest). `root` is the data folder holding `<ds>/` (default `<project>/data`).
See docs/data.md for sources, verification and the split rule.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rsicbench.datasets.base import Dataset, DatasetError, Entry, read_manifest
from rsicbench.datasets.external import AID, DOTA, NWPURESISC45, Gaofen
from rsicbench.datasets.imagefolder import ImageFolder
from rsicbench.datasets.landsat8 import Landsat8
from rsicbench.datasets.samples import Samples
from rsicbench.datasets.splits import read_split
from rsicbench.datasets.ucmerced import UCMerced
from rsicbench.results import Sample  # the one image-sample type (results contract)

DATASETS: dict[str, type[Dataset]] = {
    c.name: c for c in (UCMerced, Landsat8, Samples, NWPURESISC45, AID, DOTA, Gaofen)
}

__all__ = ["Sample", "Dataset", "DatasetError", "Entry", "ImageFolder", "DATASETS",
           "list_datasets", "get_dataset", "load_split"]


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def get_dataset(name: str, data_root: str | os.PathLike | None = None,
                settings: dict[str, Any] | None = None) -> Dataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    if settings is None:
        from rsicbench.config import settings as load_settings

        settings = load_settings("data")
    return DATASETS[name](data_root=data_root, settings=settings)


def load_split(ds: str, split: str, root: str | os.PathLike | None = None) -> list[Sample]:
    """The images of one split, sorted by relpath, with their class labels (None if unlabelled)."""
    from rsicbench.paths import project_root

    base = (Path(root) if root else project_root() / "data") / ds
    entries = {e.relpath: e for e in read_manifest(base / "manifest.tsv")}
    rels = sorted(entries) if split == "all" else read_split(base / "splits", split)
    out = []
    for rel in rels:
        if rel not in entries:
            raise DatasetError(f"{base / 'splits' / split}.txt: {rel} is not in {base / 'manifest.tsv'}")
        out.append(Sample(base / "images" / rel, rel, entries[rel].label))
    return out
