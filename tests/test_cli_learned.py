"""`rsicbench train --show-lambdas` and `rsicbench evaluate` through their main(argv)."""

import csv
import json

import numpy as np
import pytest
import torch

from rsicbench.config import settings
from rsicbench.imageio import write_png
from rsicbench.reproduce.commands import evaluate as cli_evaluate
from rsicbench.reproduce.commands import train as cli_train
from rsicbench.reproduce.training.lambdas import to_compressai
from rsicbench.reproduce.models.registry import create_model


def test_show_lambdas_lists_every_configured_conversion(capsys):
    assert cli_train.main(["--show-lambdas", "--profile", "ci"]) == 0
    out = capsys.readouterr().out.splitlines()
    models = settings("train", "ci").get("models", {})
    rows = [line.split() for line in out[2:]]
    assert len(rows) == sum(len(m.get("lambdas", [])) for m in models.values())
    for name, spec in models.items():
        conv = spec.get("lambda_convention", "compressai")
        for i, lam in enumerate(spec.get("lambdas", [])):
            row = next((r for r in rows if r[:2] == [name, f"r{i}"]), None)
            assert row is not None, f"{name} r{i} missing from --show-lambdas"
            assert float(row[2]) == pytest.approx(float(lam), rel=1e-5)
            assert row[3] == conv
            assert float(row[4]) == pytest.approx(to_compressai(lam, conv), rel=1e-5)
    mse01 = [r for r in rows if r[3] == "mse01"]  # the conversion is really applied
    assert all(float(r[4]) == pytest.approx(float(r[2]) / 255**2, rel=1e-5) for r in mse01)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A CompressAI-format checkpoint of a tiny (untrained, seeded) hyperprior + 2 images."""
    base = tmp_path_factory.mktemp("cli_learned")
    rng = np.random.default_rng(3)
    imgs = base / "imgs"
    imgs.mkdir()
    for i, (h, w) in enumerate([(64, 64), (70, 90)]):  # 70x90: padding to 64 and cropping back
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        im = np.stack([x * 2 + i * 20, y * 3, (x + y) * 1.2], 2) + rng.normal(0, 10, (h, w, 3))
        write_png(imgs / f"im{i}.png", np.clip(im, 0, 255).astype(np.uint8))
    torch.manual_seed(0)
    net = create_model("bmshj2018-hyperprior", N=8, M=12)
    net.update(force=True)
    ckpt = base / "tiny.pth.tar"
    torch.save({"state_dict": net.state_dict()}, ckpt)  # as CompressAI's examples/train.py
    return base, imgs, ckpt


def test_evaluate_tiny_checkpoint_writes_real_bitstream_results(tiny, capsys):
    base, imgs, ckpt = tiny
    out_root = base / "rd"
    argv = ["--model", "bmshj2018-hyperprior", "--rate", "r0", "--profile", "ci", "--checkpoint", str(ckpt),
            "--images-dir", str(imgs), "--dataset-name", "tinyset", "--out-root", str(out_root)]
    assert cli_evaluate.main(argv) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    point = out_root / "tinyset" / "bmshj2018-hyperprior" / "q0"
    rows = list(csv.DictReader((point / "per_image.csv").open()))
    assert [r["image"] for r in rows] == ["im0.png", "im1.png"]
    assert all(r["error"] == "" for r in rows)
    sizes = {r["image"]: (int(r["height"]), int(r["width"])) for r in rows}
    assert sizes == {"im0.png": (64, 64), "im1.png": (70, 90)}
    for r in rows:  # bpp is the container's size, PSNR is measured on the decoded image
        h, w = sizes[r["image"]]
        assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / (h * w))
        assert 0 < float(r["psnr"]) < 99
    check = json.loads((point / "rate_check.json").read_text())
    assert check["n_images"] == 2 and check["bpp_real_mean"] > 0 and check["bpp_est_mean"] > 0
    assert printed["n_ok"] == 2 and printed["n_failed"] == 0
    assert printed["bpp"] == pytest.approx(check["bpp_real_mean"])
    assert (point / "recon" / "im1.png").is_file()


def test_evaluate_bad_inputs_fail_with_a_clear_message(tiny, capsys):
    base, imgs, _ = tiny
    common = ["--model", "bmshj2018-hyperprior", "--profile", "ci", "--images-dir", str(imgs),
              "--out-root", str(base / "rd_bad")]
    missing = base / "nope.pt"
    assert cli_evaluate.main(common + ["--rate", "r0", "--checkpoint", str(missing)]) == 2
    assert "nope.pt" in capsys.readouterr().err
    assert cli_evaluate.main(common + ["--rate", "best", "--checkpoint", str(missing)]) == 2
    assert "rate tag 'best'" in capsys.readouterr().err
    junk = base / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert cli_evaluate.main(common + ["--rate", "r0", "--checkpoint", str(junk)]) == 2
    assert "junk.pt" in capsys.readouterr().err
