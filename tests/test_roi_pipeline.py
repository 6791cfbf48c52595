"""ROI through the pipeline: masks fed in training, the 3-stage schedule, the learned codec's
ROI side information, the engine's `roi_dir`, ROI masks as data, and bad masks."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from rsicbench.imageio import read_rgb, write_png
from rsicbench.reproduce.roi import providers as roi
from rsicbench.reproduce.roi import masks as roi_masks
from rsicbench.reproduce.codecs.base import CodecError, create_codec
from rsicbench.reproduce.models.mroi.model import CFHPM
from rsicbench.reproduce.training.train import TrainConfig, batch_at, train

TINY = {"N": 8, "M": 8, "hyper_channels": 8}
STEPS = 10


def _images(tmp_path, rng, n=3, size=48):
    paths = []
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        p = tmp_path / "imgs" / f"im{i}.png"
        write_png(p, img)
        paths.append(str(p))
    return paths


def _left_half(path, image):
    """A provider whose mask depends on the image: ROI = pixels with red < 128 (never all ones)."""
    return image[..., 0] < 128


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny MROI-CFHPM run (10 steps) recording what the model received at each step."""
    tmp = tmp_path_factory.mktemp("mroi")
    paths = _images(tmp, np.random.default_rng(0))
    seen: list[tuple[int, torch.Tensor]] = []
    orig = CFHPM.forward

    def spy(self, x, roi=None):
        if self.training:
            seen.append((self.stage, roi.detach().clone()))
        return orig(self, x, roi)

    cfg = TrainConfig(model="mroi-cfhpm", lam=0.01, arch=TINY, steps=STEPS, batch=2, patch=32, val_every=5,
                      ckpt_every=5, val_patch=32, val_images=2, threads=1)
    CFHPM.forward = spy
    try:
        result = train(cfg, paths, paths, tmp / "run", progress=False, roi_for=_left_half)
    finally:
        CFHPM.forward = orig
    return {"cfg": cfg, "paths": paths, "seen": seen, "result": result, "ckpt": tmp / "run" / "best.pt"}


def test_training_receives_the_providers_mask_not_all_ones(trained):
    from rsicbench.reproduce.training.train import load_images, load_masks

    cfg, seen = trained["cfg"], trained["seen"]
    assert trained["result"]["roi"] == "provider"
    assert len(seen) == STEPS
    imgs, kept = load_images(trained["paths"], cfg.patch, with_paths=True)
    masks = load_masks(kept, imgs, _left_half)
    for step, (_, got) in enumerate(seen):
        x, want = batch_at(imgs, step, cfg, 0, masks)
        assert torch.equal(got, want)  # same crop window and flip as the image
        assert torch.equal(got[:, 0] > 0, x[:, 0] < 128 / 255.0)
    allm = torch.cat([r for _, r in seen])
    assert 0.0 < float(allm.mean()) < 1.0  # neither all-ones nor empty


def test_three_stage_schedule_is_applied(trained):
    stages = [s for s, _ in trained["seen"]]
    starts = CFHPM.stage_schedule(STEPS)
    assert stages == [3 if i >= starts[2] else 2 if i >= starts[1] else 1 for i in range(STEPS)]
    assert stages[0] == 1 and stages[-1] == 3 and 2 in stages
    assert trained["result"]["final_stage"] == 3
    ck = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    assert ck["step"] >= CFHPM.stage_schedule(STEPS)[2]  # best.pt only from the final stage


def test_roi_model_without_provider_warns_all_ones(tmp_path, rng):
    paths = _images(tmp_path, rng, n=1, size=32)
    cfg = TrainConfig(model="mroi-cfhpm", lam=0.01, arch=TINY, steps=1, batch=1, patch=32, val_every=1,
                      ckpt_every=1, val_patch=32, val_images=1, threads=1)
    with pytest.warns(RuntimeWarning, match="all-ones"):
        r = train(cfg, paths, paths, tmp_path / "r", progress=False)
    assert r["roi"] == "all-ones"


def test_bad_training_mask_names_the_image(tmp_path, rng):
    paths = _images(tmp_path, rng, n=1, size=32)
    cfg = TrainConfig(model="mroi-cfhpm", lam=0.01, arch=TINY, steps=1, batch=1, patch=32, val_patch=32, threads=1)
    with pytest.raises(roi.RoiError, match="im0.png.*does not match"):
        train(cfg, paths, paths, tmp_path / "r", progress=False, roi_for=lambda p, im: np.ones((5, 5), bool))


def test_learned_codec_roi_side_information(trained):
    codec = create_codec("mroi-cfhpm", 0, checkpoint=str(trained["ckpt"]))
    assert codec.needs_roi
    img = read_rgb(trained["paths"][0])
    roi_a = _left_half(None, img)
    got = []
    orig = codec.model.compress
    codec.model.compress = lambda x, roi=None: (got.append(roi), orig(x, roi=roi))[1]
    a = codec.encode(img, roi=roi_a)
    b = codec.encode(img, roi=~roi_a)
    codec.model.compress = orig
    h, w = roi_a.shape  # padded to a multiple of 64 like the image (replicate)
    assert got[0].shape == (1, 1, 64, 64) and torch.equal(got[0][0, 0, :h, :w] > 0, torch.from_numpy(roi_a))
    assert torch.equal(got[1][0, 0, :h, :w] > 0, torch.from_numpy(~roi_a))
    for stream in (a, b):  # ...the decoder never sees it
        assert codec.decode(stream).shape == img.shape
    with pytest.raises(CodecError, match="needs an ROI"):
        codec.encode(img)
    with pytest.raises(CodecError, match="does not match"):
        codec.encode(img, roi=np.ones((10, 10), bool))
    full = create_codec("mroi-cfhpm", 0, checkpoint=str(trained["ckpt"]), roi_provider="full")
    assert full.encode(img) == codec.encode(img, roi=np.ones(img.shape[:2], bool))


# ----------------------------------------------------------------------------- engine roi_dir
def _sweep(tmp_path, roi_dir, samples):
    from rsicbench.reproduce.evaluation import engine
    spec = engine.SweepSpec(codec="jpeg", dataset="t", split="test", points=[engine.RatePoint(quality=30)],
                            out_root=tmp_path / "rd", metrics={"device": "cpu", "lpips": False}, roi_dir=roi_dir)
    res = engine.run_sweep(spec, samples)
    with open(spec.point_dir(spec.points[0]) / "per_image.csv", newline="") as f:
        return res, {r["image"]: r for r in csv.DictReader(f)}, spec


def test_engine_roi_dir_partial_empty_full_and_bad(tmp_path, smooth_image):
    from rsicbench.metrics.psnr import roi_psnr
    from rsicbench.results import Sample
    h, w = smooth_image.shape[:2]
    names = ["a/partial.png", "b/empty.png", "c/full.png", "d/wrongsize.png", "e/missing.png"]
    samples = []
    for n in names:
        write_png(tmp_path / "img" / n, smooth_image)
        samples.append(Sample(str(tmp_path / "img" / n), n))
    partial = np.zeros((h, w), bool)
    partial[: h // 2] = True
    masks = tmp_path / "masks"
    roi.write_mask(roi_masks.mask_path(masks, names[0]), partial)
    roi.write_mask(roi_masks.mask_path(masks, names[1]), np.zeros((h, w), bool))
    roi.write_mask(roi_masks.mask_path(masks, names[2]), np.ones((h, w), bool))
    roi.write_mask(roi_masks.mask_path(masks, names[3]), np.ones((h + 1, w), bool))
    with pytest.warns(RuntimeWarning, match="empty"):
        res, rows, spec = _sweep(tmp_path, str(masks), samples)
    rec = read_rgb(spec.point_dir(spec.points[0]) / "recon" / "a" / "partial.png")
    assert math.isclose(float(rows[names[0]]["roi_psnr"]), roi_psnr(smooth_image, rec, partial), rel_tol=1e-9)
    assert float(rows[names[0]]["roi_psnr"]) != float(rows[names[0]]["psnr"])
    assert rows[names[1]]["roi_psnr"] == "" and rows[names[1]]["error"] == ""  # empty ROI: undefined
    assert math.isclose(float(rows[names[2]]["roi_psnr"]), float(rows[names[2]]["psnr"]))  # full ROI
    assert "wrongsize.png" in rows[names[3]]["error"] and "does not match" in rows[names[3]]["error"]
    assert "missing.png" in rows[names[4]]["error"] and "not found" in rows[names[4]]["error"]
    assert len(res.failed) == 2
    _, no_roi, _ = _sweep(tmp_path / "plain", None, samples[:1])
    assert no_roi[names[0]]["roi_psnr"] == ""


# ----------------------------------------------------------------------------- masks as data
def test_landsat_tile_roi_marks_bright_white_as_cloud():
    bounds = {"red": (6000.0, 8600.0), "green": (6700.0, 8300.0), "blue": (7400.0, 8600.0)}
    img = np.full((8, 8, 3), 5, np.uint8)  # dark ground: DN ~ lo, reflectance ~ 0.03
    # a "cloud" pixel: DNs far above the stretch (simulated with bounds that map 255 high)
    hot = {"red": (6000.0, 40000.0), "green": (6700.0, 40000.0), "blue": (7400.0, 42000.0)}
    img[2:4, 2:4] = 250
    assert roi_masks.landsat_tile_roi(img, bounds).all()  # cloud-free scene: all ROI
    m = roi_masks.landsat_tile_roi(img, hot)
    assert not m[2:4, 2:4].any() and m[5:, 5:].all()
    with pytest.raises(roi.RoiError, match="uint8"):
        roi_masks.landsat_tile_roi(img.astype(np.float32), bounds)


def test_build_masks_true_mask_inverted_and_saliency(tmp_path, smooth_image):
    h, w = smooth_image.shape[:2]
    root = tmp_path / "data" / "s"
    write_png(root / "images" / "38cloud" / "p.png", smooth_image)
    write_png(root / "images" / "dota" / "d.png", smooth_image)
    cloud = np.zeros((h, w), bool)
    cloud[:, : w // 3] = True
    roi.write_mask(root / "aux" / "masks" / "p.png", cloud)
    (root / "manifest.tsv").write_text("relpath\tclass\tmask\n38cloud/p.png\t\taux/masks/p.png\ndota/d.png\t\t\n")
    stats = roi_masks.build_masks("s", tmp_path / "data", tmp_path / "out")
    assert stats["providers"] == {"true-mask-inverted": 1, "saliency": 1}
    got = roi_masks.read_roi(tmp_path / "out" / "s", "38cloud/p.png", smooth_image.shape)
    assert np.array_equal(got, ~cloud)
    # a true mask of the wrong size is refused, naming the file
    roi.write_mask(root / "aux" / "masks" / "p.png", np.zeros((h, w + 3), bool))
    with pytest.raises(roi.RoiError, match="p.png.*does not match"):
        roi_masks.build_masks("s", tmp_path / "data", tmp_path / "out2")
