"""8:1:1 splits, stratified by class, identical on every machine and Python version.

Randomness is a sha256 ranking, not a library RNG: each item's key is
sha256(f"{salt}/{seed}/{relpath}"), items are sorted by name first and then by key, so the
order depends only on the names, the seed and the salt (never on file-system order, numpy
or Python versions, or hash randomisation).

Counts per class (or over all items when there are no classes) for n items:
  n_val = n_test = floor(n * 0.1 + 0.5) (round half up), n_train = the rest;
with n >= 3 each of val and test gets at least one item. 100 -> 80/10/10; 88 -> 70/9/9.

Classifier protocol (the seeds: train a scene classifier on a small share, e.g. 10%, then
test it on reconstructions of the compression test set): `classifier_train.txt` takes
round(n * train_ratio) items per class and `classifier_val.txt` round(n * val_ratio), both
drawn ONLY from the compression train+val pool of that class, so no compression test image
ever reaches classifier training. It raises if the pool is too small.

Files: data/<ds>/splits/{train,val,test}.txt and classifier_{train,val}.txt, one relpath
per line, sorted, trailing newline; written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from rsicbench import fsutil
from rsicbench.datasets.base import DatasetError, Entry, rank  # noqa: F401 (rank is part of this API)

SPLITS = ("train", "val", "test")


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_counts(n: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple[int, int, int]:
    total = sum(ratios)
    n_val = _round(n * ratios[1] / total)
    n_test = _round(n * ratios[2] / total)
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = n - n_val - n_test
    if n_train < 0:
        raise DatasetError(f"cannot split {n} items with ratios {ratios}")
    return n_train, n_val, n_test


def _groups(entries: list[Entry]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for e in entries:
        groups.setdefault(e.label or "", []).append(e.relpath)
    return groups


def make_splits(entries: list[Entry], seed: int = 0, ratios=(0.8, 0.1, 0.1),
                stratify: bool = True) -> dict[str, list[str]]:
    """{'train','val','test'} -> sorted relpaths. Stratified by label when labels exist."""
    groups = _groups(entries) if stratify else {"": [e.relpath for e in entries]}
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for label in sorted(groups):
        order = rank(groups[label], seed, salt=f"split/{label}")
        n_train, n_val, _ = split_counts(len(order), ratios)
        out["train"] += order[:n_train]
        out["val"] += order[n_train:n_train + n_val]
        out["test"] += order[n_train + n_val:]
    return {k: sorted(v) for k, v in out.items()}


def make_classifier_splits(entries: list[Entry], splits: dict[str, list[str]], seed: int = 0,
                           train_ratio: float = 0.1, val_ratio: float = 0.1) -> dict[str, list[str]]:
    """classifier_train / classifier_val per class, from the non-test pool only."""
    test = set(splits["test"])
    out: dict[str, list[str]] = {"classifier_train": [], "classifier_val": []}
    for label, rels in sorted(_groups(entries).items()):
        if not label:
            raise DatasetError("the classifier protocol needs class labels")
        pool = rank([r for r in rels if r not in test], seed, salt=f"classifier/{label}")
        n_tr, n_va = max(1, _round(len(rels) * train_ratio)), _round(len(rels) * val_ratio)
        if n_tr + n_va > len(pool):
            raise DatasetError(
                f"class {label!r}: {n_tr}+{n_va} classifier images requested but only {len(pool)} non-test images")
        out["classifier_train"] += pool[:n_tr]
        out["classifier_val"] += pool[n_tr:n_tr + n_va]
    return {k: sorted(v) for k, v in out.items()}


def write_splits(splits_dir: Path, splits: dict[str, list[str]]) -> None:
    for name, rels in splits.items():
        fsutil.write_text(Path(splits_dir) / f"{name}.txt", "".join(f"{r}\n" for r in sorted(rels)))


def read_split(splits_dir: Path, name: str) -> list[str]:
    path = Path(splits_dir) / f"{name}.txt"
    if not path.is_file():
        raise DatasetError(f"{path}: split file not found (run `rsicbench data split <ds>`)")
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln]


def split_dataset(entries: list[Entry], splits_dir: Path, seed: int = 0, ratios=(0.8, 0.1, 0.1),
                  classifier: dict | None = None) -> dict[str, list[str]]:
    """Compute and write all split files for one dataset; returns them."""
    has_labels = any(e.label for e in entries)
    splits = make_splits(entries, seed, ratios, stratify=has_labels)
    if has_labels and classifier:
        splits.update(make_classifier_splits(entries, splits, seed, float(classifier.get("train_ratio", 0.1)),
                                             float(classifier.get("val_ratio", 0.1))))
    # stale classifier files from an earlier configuration must not survive
    for stale in ("classifier_train", "classifier_val"):
        p = Path(splits_dir) / f"{stale}.txt"
        if stale not in splits and p.exists():
            p.unlink()
    write_splits(splits_dir, splits)
    return splits
