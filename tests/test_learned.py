"""Learned codec adapter: real bitstreams, cross-process bit-exact decode, fuzzing, load paths."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rsicbench.imageio import write_png
from rsicbench.reproduce.codecs.base import CodecError, create_codec
from rsicbench.reproduce.training.train import TrainConfig, train

TINY = {"N": 8, "M": 8}


def _images(folder: Path, n: int, size: int = 72) -> Path:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        y, x = np.mgrid[0:size, 0:size].astype(np.float64)
        im = np.stack([x * 3 + i, y * 3, (x + y) * 1.5], 2) + rng.normal(0, 12, (size, size, 3))
        write_png(folder / f"im{i}.png", np.clip(im, 0, 255).astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    base = tmp_path_factory.mktemp("learned")
    imgs = _images(base / "imgs", 3)
    paths = sorted(str(p) for p in imgs.glob("*.png"))
    out = {}
    for model in ("bmshj2018-hyperprior", "cheng2020-gmm"):
        cfg = TrainConfig(model=model, lam=0.01, arch=TINY, steps=2, batch=2, patch=64, val_every=2,
                          ckpt_every=2, val_patch=64, val_images=2, threads=1)
        train(cfg, paths, paths, base / model, progress=False)
        out[model] = base / model / "best.pt"
    return out


def _odd_image(rng, h=70, w=50):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.clip(np.stack([x * 4, y * 3, x + y], 2) + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("model", ["bmshj2018-hyperprior", "cheng2020-gmm"])
def test_round_trip_real_bits_and_separate_process(ckpts, model, rng, tmp_path):
    img = _odd_image(rng)  # not a multiple of 64: padding + crop
    codec = create_codec(model, 0, checkpoint=str(ckpts[model]), threads=1)
    data = codec.encode(img)
    rec = codec.decode(data)
    assert rec.shape == img.shape and rec.dtype == np.uint8
    assert codec.encode(img) == data  # deterministic
    est = codec.estimate_bits(img)
    assert est > 0 and 8 * len(data) > 0
    (tmp_path / "b.bin").write_bytes(data)
    script = ("import sys, numpy as np\n"
              "from rsicbench.reproduce.codecs.base import create_codec\n"
              "c = create_codec(sys.argv[1], 0, checkpoint=sys.argv[2], threads=1)\n"
              "np.save(sys.argv[4], c.decode(open(sys.argv[3], 'rb').read()))\n")
    subprocess.run([sys.executable, "-c", script, model, str(ckpts[model]), str(tmp_path / "b.bin"),
                    str(tmp_path / "r.npy")], check=True, timeout=120)
    assert np.array_equal(np.load(tmp_path / "r.npy"), rec)


@pytest.mark.timeout(60)
def test_fuzz_corrupted_and_truncated(ckpts, rng):
    codec = create_codec("cheng2020-gmm", 0, checkpoint=str(ckpts["cheng2020-gmm"]), threads=1)
    data = codec.encode(_odd_image(rng, 64, 64))
    fuzz = np.random.default_rng(0)
    for _ in range(40):
        bad = bytearray(data)
        for i in fuzz.integers(0, len(bad), size=fuzz.integers(1, 4)):
            bad[i] ^= int(fuzz.integers(1, 256))
        with pytest.raises(CodecError):
            codec.decode(bytes(bad))
    for n in range(0, len(data), max(1, len(data) // 25)):
        with pytest.raises(CodecError):
            codec.decode(data[:n])


def test_wrong_checkpoint_is_refused(ckpts, rng, tmp_path):
    codec = create_codec("bmshj2018-hyperprior", 0, checkpoint=str(ckpts["bmshj2018-hyperprior"]))
    data = codec.encode(_odd_image(rng, 64, 64))
    other = create_codec("bmshj2018-hyperprior", 0, checkpoint=str(ckpts["bmshj2018-hyperprior"]))
    with torch.no_grad():
        next(other.model.parameters()).add_(1.0)
    from rsicbench.reproduce.codecs.learned import weights_fingerprint

    other.fingerprint = weights_fingerprint(other.model)
    with pytest.raises(CodecError, match="wrong checkpoint"):
        other.decode(data)


def test_compressai_format_state_dict(ckpts, rng, tmp_path):
    """A CompressAI examples/train.py file ({"state_dict": ...}) loads; widths are inferred."""
    ours = torch.load(ckpts["bmshj2018-hyperprior"], weights_only=True)
    path = tmp_path / "ca.pth.tar"
    torch.save({"epoch": 1, "state_dict": ours["model"]}, path)
    a = create_codec("bmshj2018-hyperprior", 0, checkpoint=str(ckpts["bmshj2018-hyperprior"]))
    b = create_codec("bmshj2018-hyperprior", 0, checkpoint=str(path))
    img = _odd_image(rng, 64, 64)
    assert a.encode(img) == b.encode(img)


def test_missing_and_bad_checkpoint_name_the_file(tmp_path):
    with pytest.raises(CodecError, match="not found"):
        create_codec("mbt2018", 0, checkpoint=str(tmp_path / "none.pt"))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CodecError, match="bad.pt"):
        create_codec("mbt2018", 0, checkpoint=str(tmp_path / "bad.pt"))


def test_all_baselines_registered():
    from rsicbench.reproduce.codecs.base import list_codecs

    names = set(list_codecs())
    for m in ("bmshj2018-factorized", "bmshj2018-factorized-relu", "bmshj2018-hyperprior", "mbt2018-mean",
              "mbt2018", "cheng2020-anchor", "cheng2020-attn", "cheng2020-gmm"):
        assert m in names


@pytest.mark.parametrize("model", ["bmshj2018-hyperprior", "cheng2020-gmm"])
def test_engine_thread_mode_matches_sequential(ckpts, model, tmp_path):
    """workers=2 runs a learned codec in threads (or, autoregressive, in processes); every number
    equals workers=1, in either mode."""
    import csv

    from rsicbench.reproduce.evaluation import engine
    samples = engine.samples_from_folder(_images(tmp_path / "imgs", 5))
    rows = {}
    for workers, parallel in ((1, "auto"), (2, "auto"), (2, "thread")):
        spec = engine.SweepSpec(codec=model, dataset="toy", split="test", points=[engine.RatePoint(quality=0)],
                                out_root=tmp_path / f"rd{workers}{parallel}", workers=workers, parallel=parallel,
                                options={"checkpoint": str(ckpts[model]), "threads": 1},
                                metrics={"device": "cpu", "lpips": True})
        engine.clear_caches()
        res = engine.run_sweep(spec, samples)
        assert res.computed == 5 and not res.failed
        if workers > 1:
            # auto: threads, except for an autoregressive context model (GIL-bound loop)
            assert engine._parallel_mode(spec) == ("process" if parallel == "auto" and model == "cheng2020-gmm"
                                                   else "thread")
        with open(spec.point_dir(spec.points[0]) / "per_image.csv", newline="") as f:
            rows[(workers, parallel)] = [{k: v for k, v in r.items() if k not in ("enc_s", "dec_s")}
                                         for r in csv.DictReader(f)]
    first = rows[(1, "auto")]
    assert all(r["lpips"] and r["vifp"] and r["msssim"] for r in first)
    assert rows[(2, "auto")] == first and rows[(2, "thread")] == first
