"""The ROI section's runs (reproduce/papers/{agdl,mroi}_runs.py): which images, which rate
points and which masks they take, without training or coding anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsicbench.reproduce.papers import agdl_runs, mroi_runs
from rsicbench.reproduce.roi.providers import RoiError, write_mask
from rsicbench.results import Sample

CFG = {"dataset": "landsat8", "mask_dir": "results/roi/masks/landsat8", "samples_mask_dir": "results/roi/masks/samples",
       "models": {"mroi-cfhpm": {"lambdas": [0.01, 0.02, 0.04]}},
       "eval": {"split": "test", "classical": {"jpeg2000": [40, 80]}}}


def test_mroi_rate_points_per_codec():
    learned = mroi_runs._eval_runs(CFG, "mroi-cfhpm")
    assert [q for q, _ in learned] == [0, 1, 2]
    assert learned[2][1] == {"checkpoint": str(Path("results/train/landsat8/mroi-cfhpm/r2/best.pt")), "threads": 1}
    assert mroi_runs._eval_runs(CFG, "jpeg2000") == [(40, {}), (80, {})]
    with pytest.raises(RoiError, match="'webp' is neither in mroi.models nor mroi.eval.classical"):
        mroi_runs._eval_runs(CFG, "webp")


def test_mroi_eval_samples_refuse_unknown_or_absent(tmp_path, monkeypatch):
    with pytest.raises(RoiError, match="dataset 'ucmerced': use landsat8 or 38cloud"):
        mroi_runs.eval_samples(CFG, "ucmerced")
    monkeypatch.chdir(tmp_path)  # no data/samples/images/38cloud here
    with pytest.raises(RoiError, match="38cloud: no 38-Cloud patch"):
        mroi_runs.eval_samples(CFG, "38cloud")
    img = tmp_path / "data" / "samples" / "images" / "38cloud" / "p.png"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"")
    samples, mask_dir = mroi_runs.eval_samples(CFG, "38cloud")
    assert [(s.relpath, s.label) for s in samples] == [("38cloud/p.png", "38cloud")]
    assert mask_dir == CFG["samples_mask_dir"]


def test_mroi_mask_reader_finds_the_stored_mask_by_relpath(tmp_path):
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    write_mask(tmp_path / "masks" / "scene" / "t1.png", mask)
    roi_for = mroi_runs.mask_reader(str(tmp_path / "masks"), tmp_path / "images")
    got = roi_for(str(tmp_path / "images" / "scene" / "t1.tif"), np.zeros((8, 8, 3), np.uint8))
    assert np.array_equal(got, mask)
    with pytest.raises(RoiError, match="t2.png"):
        roi_for(str(tmp_path / "images" / "scene" / "t2.tif"), np.zeros((8, 8, 3), np.uint8))


def test_agdl_split_takes_the_first_images_of_the_first_classes(monkeypatch):
    import rsicbench.datasets as datasets

    def load_split(ds, split):
        return [Sample(f"/x/{c}/{split}{i}.png", f"{c}/{split}{i}.png", c) for c in ("c", "a", "b") for i in (2, 0, 1)]

    monkeypatch.setattr(datasets, "load_split", load_split)
    cfg = {"dataset": "ucmerced", "classes": 2, "train_per_class": 2, "eval_per_class": 1}
    assert [s.relpath for s in agdl_runs.ucmerced_split(cfg, "train")] == [
        "a/train0.png", "a/train1.png", "b/train0.png", "b/train1.png"]
    assert [s.relpath for s in agdl_runs.ucmerced_split(cfg, "eval")] == ["a/test0.png", "b/test0.png"]
    monkeypatch.setattr(datasets, "load_split", lambda ds, split: [])
    with pytest.raises(RoiError, match="data/ucmerced: no train images"):
        agdl_runs.ucmerced_split(cfg, "train")
