"""8:1:1 splits: determinism, disjointness, stratification, classifier protocol."""

from __future__ import annotations

import hashlib

import pytest

from rsicbench.datasets.base import DatasetError, Entry
from rsicbench.datasets.splits import make_splits, rank, split_counts, split_dataset


def _entries(classes: dict[str, int]) -> list[Entry]:
    return [Entry(f"{c}/{c}{i:03d}.png", c, 256, 256, "0" * 64) for c, n in classes.items() for i in range(n)]


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_rank_is_a_fixed_function_of_names_and_seed():
    # golden value: the order must be the same on every machine and Python version
    assert rank(["a", "b", "c", "d"], seed=0, salt="split") == rank(["d", "c", "b", "a"], seed=0, salt="split")
    expected = sorted("abcd", key=lambda n: hashlib.sha256(f"split/0/{n}".encode()).hexdigest())
    assert rank(list("abcd"), 0, "split") == expected
    assert rank([f"x{i}" for i in range(50)], 0) != rank([f"x{i}" for i in range(50)], 1)


def test_split_counts():
    assert split_counts(100) == (80, 10, 10)
    assert split_counts(88) == (70, 9, 9)
    assert split_counts(3) == (1, 1, 1)
    assert split_counts(1) == (1, 0, 0)


def test_splits_deterministic_byte_identical(tmp_path):
    entries = _entries({"a": 100, "b": 37, "c": 5})
    split_dataset(entries, tmp_path / "s1", seed=0, classifier={"train_ratio": 0.1, "val_ratio": 0.1})
    split_dataset(list(reversed(entries)), tmp_path / "s2", seed=0, classifier={"train_ratio": 0.1, "val_ratio": 0.1})
    d1, d2 = _digest(tmp_path / "s1"), _digest(tmp_path / "s2")
    assert d1 == d2 and set(d1) == {f"{n}.txt" for n in ("train", "val", "test", "classifier_train", "classifier_val")}
    split_dataset(entries, tmp_path / "s3", seed=1)
    assert _digest(tmp_path / "s3")["test.txt"] != d1["test.txt"]
    lines = (tmp_path / "s1" / "train.txt").read_text().splitlines()
    assert lines == sorted(lines)


def test_disjoint_complete_and_stratified():
    entries = _entries({"a": 100, "b": 100, "c": 88})
    sp = make_splits(entries, seed=0)
    sets = {k: set(v) for k, v in sp.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert sets["train"] | sets["val"] | sets["test"] == {e.relpath for e in entries}
    per = {(s, c): sum(r.startswith(c + "/") for r in v) for s, v in sp.items() for c in "abc"}
    assert (per["train", "a"], per["val", "a"], per["test", "a"]) == (80, 10, 10)
    assert (per["train", "c"], per["val", "c"], per["test", "c"]) == (70, 9, 9)


def test_unlabelled_plain_split():
    entries = [Entry(f"t{i:03d}.png", None, 256, 256, "0" * 64) for i in range(38)]
    sp = make_splits(entries, seed=0, stratify=False)
    assert [len(sp[k]) for k in ("train", "val", "test")] == [30, 4, 4]


def test_classifier_protocol_never_uses_test_images(tmp_path):
    entries = _entries({"a": 100, "b": 50})
    sp = split_dataset(entries, tmp_path, seed=3, classifier={"train_ratio": 0.1, "val_ratio": 0.1})
    test = set(sp["test"])
    assert not test & set(sp["classifier_train"]) and not test & set(sp["classifier_val"])
    assert not set(sp["classifier_train"]) & set(sp["classifier_val"])
    assert sum(r.startswith("a/") for r in sp["classifier_train"]) == 10
    assert sum(r.startswith("b/") for r in sp["classifier_train"]) == 5
    with pytest.raises(DatasetError, match="non-test"):
        split_dataset(entries, tmp_path, seed=3, classifier={"train_ratio": 0.5, "val_ratio": 0.5})


def test_unlabelled_dataset_gets_no_classifier_files(tmp_path):
    (tmp_path / "classifier_train.txt").write_text("stale\n")
    entries = [Entry(f"t{i}.png", None, 256, 256, "0" * 64) for i in range(10)]
    split_dataset(entries, tmp_path, seed=0, classifier={"train_ratio": 0.1})
    assert not (tmp_path / "classifier_train.txt").exists()
