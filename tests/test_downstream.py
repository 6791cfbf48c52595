"""EMTCAL-style classifier: model shapes, weight mapping, tiny training, evaluation outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsicbench.downstream import backbones, data, evaluate, scores, train
from rsicbench.downstream.emtcal import EMTCAL
from rsicbench.imageio import write_png

torch.set_num_threads(2)

CLASSES = ["alpha", "beta", "gamma"]


# ------------------------------------------------------------------ model and weights
@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return EMTCAL(5, pretrained=False).eval()


@pytest.mark.parametrize("size", [64, 96, 160, 224])
def test_model_output_shape_any_input_size(tiny_model, size):
    with torch.no_grad():
        out = tiny_model(torch.rand(2, 3, size, size) * 255)
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()


def test_model_non_square_input(tiny_model):
    with torch.no_grad():
        assert tiny_model(torch.rand(1, 3, 96, 128) * 255).shape == (1, 5)


def test_lite0_mapping_covers_every_key():
    src = torch.load(backbones.lite0_weights_path(), map_location="cpu", weights_only=True)
    import timm

    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    mapped = backbones.map_lite0_state_dict(src, target)
    assert set(mapped) == set(target)
    assert len(src) == len(target)
    # values are moved, not re-initialised
    assert torch.equal(mapped["blocks.6.0.conv_pwl.weight"], src["_blocks.15._project_conv.weight"])
    assert torch.equal(mapped["blocks.0.0.conv_pw.weight"], src["_blocks.0._project_conv.weight"])


def test_lite0_mapping_fails_loudly_on_mismatch():
    import timm

    src = torch.load(backbones.lite0_weights_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    dropped = dict(src)
    dropped.pop("_blocks.7._bn1.weight")
    with pytest.raises(backbones.BackboneError, match="no source weight"):
        backbones.map_lite0_state_dict(dropped, target)
    bad = dict(src)
    bad["_fc.weight"] = torch.zeros(10, 1280)
    with pytest.raises(backbones.BackboneError, match="shape"):
        backbones.map_lite0_state_dict(bad, target)
    extra = dict(src)
    extra["_mystery.weight"] = torch.zeros(1)
    with pytest.raises(backbones.BackboneError, match="unknown"):
        backbones.map_lite0_state_dict(extra, target)


def test_mapped_lite0_predicts_imagenet_classes():
    top = backbones.imagenet_check()
    assert top["chelsea"][0][0] in range(281, 286), top["chelsea"]  # a cat
    assert top["coffee"][0][0] in (967, 968, 504), top["coffee"]  # espresso / cup / coffee mug


def test_feature_backbone_holds_imagenet_weights():
    feat, norm = backbones.create_feature_backbone("efficientnet_lite0", pretrained=True)
    full = backbones.load_lite0_imagenet().state_dict()
    for k, v in feat.state_dict().items():
        assert torch.equal(v, full[k]), k
    assert feat.feature_info.reduction() == [8, 16, 32]
    assert norm.mean == (127.0, 127.0, 127.0) and norm.std == (128.0, 128.0, 128.0)


def test_unknown_backbone_is_refused():
    with pytest.raises(backbones.BackboneError, match="unknown backbone"):
        backbones.create_feature_backbone("vgg", pretrained=False)


def test_freezing_keeps_frozen_batchnorm_in_eval():
    m = EMTCAL(3, pretrained=False)
    n = m.freeze_backbone_prefix(("conv_stem", "bn1", "blocks.0"))
    assert n > 0
    m.train()
    assert not m.backbone.bn1.training and m.backbone.blocks[1].training
    assert not any(p.requires_grad for p in m.backbone.blocks[0].parameters())


# ------------------------------------------------------------------ scores
def test_confusion_and_scores():
    cm = scores.confusion([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert cm.sum() == 6 and cm.sum(1).tolist() == [2, 1, 3]
    s = scores.scores(cm, CLASSES)
    assert s["oa"] == pytest.approx(100 * 4 / 6)
    assert s["per_class_accuracy"] == {"alpha": 50.0, "beta": 100.0, "gamma": pytest.approx(200 / 3)}
    with pytest.raises(ValueError):
        scores.confusion([0, 3], [0, 0], 3)


def test_bd_accuracy():
    anchor = [(0.25, 60.0), (0.5, 80.0), (1.0, 90.0), (2.0, 95.0)]
    assert scores.bd_accuracy(anchor, anchor) == pytest.approx(0.0)
    assert scores.bd_accuracy(anchor, [(r, a + 5) for r, a in anchor]) == pytest.approx(5.0)
    assert scores.bd_accuracy(anchor, [(5.0, 1.0), (6.0, 2.0)]) is None  # no overlap


def test_lr_schedule_warmup_then_cosine():
    f = [train.lr_factor(s, 100, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[-1] < 0.01
    assert all(a >= b for a, b in zip(f[10:], f[11:]))


def test_augment_keeps_shape_and_is_seeded():
    x = torch.rand(4, 3, 32, 32)
    a = data.augment(x, torch.Generator().manual_seed(1))
    b = data.augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


# ------------------------------------------------------------------ fixture dataset
def _make_dataset(root: Path, per_split: dict[str, int]) -> dict[str, list[data.Item]]:
    """Class = dominant colour channel; images written as PNG."""
    rng = np.random.default_rng(0)
    splits: dict[str, list[data.Item]] = {}
    for split, n in per_split.items():
        items = []
        for ci, c in enumerate(CLASSES):
            for k in range(n):
                img = rng.integers(0, 60, size=(40, 40, 3), dtype=np.uint8)
                img[:, :, ci] += 150
                rel = f"{c}/{split}{k:02d}.png"
                write_png(root / "images" / rel, img)
                items.append(data.Item(str(root / "images" / rel), rel, c))
        splits[split] = sorted(items, key=lambda i: i.relpath)
    return splits


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run (2 epochs, frozen backbone) shared by the tests below."""
    tmp = tmp_path_factory.mktemp("downstream")
    splits = _make_dataset(tmp / "ds", {"train": 3, "val": 2, "test": 2})

    def fake_load(ds, split, seed=0, source="auto"):
        return list(splits[split]), "fixture"

    cfg = {
        "dataset": "fx", "backbone": "efficientnet_lite0", "pretrained": True, "input_size": 64, "batch_size": 4,
        "epochs": 2, "warmup_epochs": 0.5, "lr": 1e-4, "head_lr_mult": 10, "weight_decay": 0.0,
        "rotation_deg": 30, "freeze": ["conv_stem", "bn1", "blocks"], "train_split": "train", "val_split": "val",
        "test_split": "test", "per_class": None, "seed": 0, "threads": 2, "drop_path": 0.1, "eval_batch": 8,
        "out_dir": str(tmp / "classifier"), "rd_dir": str(tmp / "rd"),
        "results_dir": str(tmp / "downstream"), "anchor": "jpeg2000", "target_bpps": [0.7, 0.81],
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "load_items", fake_load)
        info = train.train(cfg, log=lambda *_: None)
        before = (tmp / "classifier" / "fx" / "best.pt").read_bytes()
        info2 = train.train(cfg, log=lambda *_: None)  # resumes after the last epoch: nothing to do
    return cfg, splits, tmp, info, info2, before


@pytest.fixture
def fixture_data(trained, monkeypatch, tmp_path):
    cfg, splits = dict(trained[0]), trained[1]

    def fake_load(ds, split, seed=0, source="auto"):
        return list(splits[split]), "fixture"

    monkeypatch.setattr(evaluate, "load_items", fake_load)
    cfg["rd_dir"], cfg["results_dir"] = str(tmp_path / "rd"), str(tmp_path / "downstream")
    return cfg, splits, tmp_path


def test_tiny_training_run_and_resume(trained):
    cfg, splits, tmp, info, info2, before = trained
    out = tmp / "classifier" / "fx"
    log = (out / "log.csv").read_text().splitlines()
    assert len(log) == 3
    assert all(np.isfinite(float(r.split(",")[1])) for r in log[1:])
    ck = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert ck["classes"] == CLASSES and ck["settings"]["input_size"] == 64
    clean = json.loads((out / "clean_test.json").read_text())
    assert np.asarray(clean["confusion"]).sum() == len(splits["test"]) == clean["n_images"]
    assert info["clean_test_oa"] == clean["oa"]
    assert (out / "best.pt").read_bytes() == before
    assert info2["best_val_oa"] == info["best_val_oa"]


def _write_point(rd: Path, codec: str, qtag: str, test: list[data.Item], bpp: float, noise: float, rng,
                 target=None) -> None:
    from rsicbench.imageio import read_rgb

    pdir = rd / "fx" / codec / qtag
    rows = ["image,width,height,bytes,bpp,psnr,psnr_band,msssim,msssim_db,lpips,vifp,roi_psnr,enc_s,dec_s,error"]
    for it in test:
        img = read_rgb(it.path).astype(float) + rng.normal(0, noise, (40, 40, 3))
        write_png(pdir / "recon" / (it.relpath[:-4] + ".png"), np.clip(img, 0, 255).astype(np.uint8))
        rows.append(f"{it.relpath},40,40,100,{bpp},30,,,,,,,0,0,")
    (pdir / "per_image.csv").write_text("\n".join(rows) + "\n")
    summary = {"codec": codec, "qtag": qtag, "quality": None if target else 1, "target_bpp": target,
               "mean": {"bpp": bpp, "psnr": 30.0}}
    (pdir / "summary.json").write_text(json.dumps(summary))


def test_evaluation_outputs_on_fixture(fixture_data):
    cfg, splits, tmp = fixture_data
    rng = np.random.default_rng(3)
    rd = tmp / "rd"
    for q, (bpp, noise) in enumerate([(0.3, 40), (0.6, 20), (1.2, 5)]):
        _write_point(rd, "jpeg2000", f"q{q}", splits["test"], bpp, noise, rng)
        _write_point(rd, "learned", f"q{q}", splits["test"], bpp * 1.1, noise, rng)
    _write_point(rd, "jpeg2000", "bpp0.70", splits["test"], 0.69, 15, rng, target=0.7)
    summ = evaluate.evaluate_all(cfg, log=lambda *_: None)
    res = tmp / "downstream" / "fx"
    point = json.loads((res / "jpeg2000" / "q1.json").read_text())
    for k in ("oa", "per_class_accuracy", "confusion", "classes", "bpp", "images", "key"):
        assert k in point
    assert np.asarray(point["confusion"]).sum() == len(splits["test"])
    assert set(point["per_class_accuracy"]) == set(CLASSES)
    j2k = summ["codecs"]["jpeg2000"]
    assert j2k["at_target"]["0.70"]["method"] == "matched"
    assert j2k["at_target"]["0.81"]["method"] == "interpolated"
    learned = summ["codecs"]["learned"]
    assert learned["at_target"]["0.70"]["method"] == "interpolated"
    assert isinstance(learned["bd_oa_vs_anchor"], float) and j2k["bd_oa_vs_anchor"] is None
    assert [c["bpp"] for c in j2k["curve"]] == [0.3, 0.6, 1.2]
    assert (res / "plots" / "oa_vs_bpp.png").stat().st_size > 0
    assert (res / "plots" / "confusion_jpeg2000_bpp0.70.png").is_file()
    clean = json.loads((res / "summary.json").read_text())["clean"]
    assert clean["n_images"] == clean["n_coded_images"] == len(splits["test"])
    assert clean["oa_coded_images"] == pytest.approx(clean["oa"])  # the codecs coded every test image
    # resumable: an unchanged point is read back, not rescored
    mtime = (res / "jpeg2000" / "q1.json").stat().st_mtime_ns
    evaluate.evaluate_all(cfg, log=lambda *_: None)
    assert (res / "jpeg2000" / "q1.json").stat().st_mtime_ns == mtime


def test_clean_oa_on_the_coded_subset(fixture_data):
    cfg, splits, tmp = fixture_data
    from rsicbench.downstream.scores import predict
    from rsicbench.downstream.train import load_classifier

    coded = splits["test"][::2]
    _write_point(tmp / "rd", "jpeg", "q50", coded, 0.5, 5, np.random.default_rng(1))
    clean = evaluate.evaluate_all(cfg, log=lambda *_: None)["clean"]
    assert clean["n_images"] == len(splits["test"]) and clean["n_coded_images"] == len(coded)
    model, meta = load_classifier(Path(cfg["out_dir"]) / "fx" / "best.pt")  # scored independently
    pred = predict(model, data.load_tensor([i.path for i in coded], int(meta["settings"]["input_size"])))
    truth = [meta["classes"].index(i.label) for i in coded]
    assert clean["oa_coded_images"] == pytest.approx(100.0 * np.mean(pred == np.array(truth)))


def test_evaluation_refuses_non_test_images(fixture_data):
    cfg, splits, tmp = fixture_data
    _write_point(tmp / "rd", "jpeg", "q50", splits["train"][:2], 0.5, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not in the test split"):
        evaluate.evaluate_all(cfg, log=lambda *_: None)


# ------------------------------------------------------------------ protocol disjointness
def test_classifier_splits_disjoint_from_test_generated():
    from rsicbench.datasets.base import Entry
    from rsicbench.datasets.splits import make_classifier_splits, make_splits

    entries = [Entry(f"c{c}/img{i:03d}.png", f"c{c}", 8, 8, "0") for c in range(4) for i in range(100)]
    sp = make_splits(entries, seed=0)
    cl = make_classifier_splits(entries, sp, seed=0, train_ratio=0.1, val_ratio=0.1)
    test = set(sp["test"])
    assert not test & set(cl["classifier_train"]) and not test & set(cl["classifier_val"])
    assert not set(cl["classifier_train"]) & set(cl["classifier_val"])
    assert len(cl["classifier_train"]) == 40  # 10% of each class


def test_ucmerced_classifier_protocol_disjoint(shared):
    test = {i.relpath for i in data.load_items("ucmerced", "test")[0]}
    ctr = {i.relpath for i in data.load_items("ucmerced", "classifier_train")[0]}
    cva = {i.relpath for i in data.load_items("ucmerced", "classifier_val")[0]}
    tr = {i.relpath for i in data.load_items("ucmerced", "train")[0]}
    assert len(test) == 210 and len(ctr) == 210  # 10% training ratio, 21 classes
    assert not test & ctr and not test & cva and not ctr & cva
    assert not test & tr


def test_cli_output_folders_override_the_settings(monkeypatch):
    """--out-dir/--rd-dir/--results-dir replace configs/downstream.yaml's folders (CI writes
    under results/ci/, which no DVC stage owns); without them the settings stand."""
    from rsicbench.downstream import cli

    seen = []
    monkeypatch.setattr("rsicbench.downstream.evaluate.evaluate_all", seen.append)
    assert cli.main(["evaluate", "--profile", "ci", "--out-dir", "o", "--rd-dir", "r", "--results-dir", "s"]) == 0
    assert cli.main(["evaluate", "--profile", "ci"]) == 0
    assert [(c["out_dir"], c["rd_dir"], c["results_dir"]) for c in seen] == [
        ("o", "r", "s"), ("results/classifier", "results/rd", "results/downstream")]
