"""`rsicbench metrics` command and the CompressAI results-JSON import/export."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from rsicbench.fsutil import read_json
from rsicbench.metrics import compressai_json, psnr
from rsicbench.metrics.cli import CSV_COLUMNS, main


def _tree(tmp_path, smooth_image, rng, n=3):
    ref, rec, roi, bits = (tmp_path / d for d in ("ref", "rec", "roi", "bits"))
    imgs = {}
    for i in range(n):
        a = np.roll(smooth_image, 7 * i, axis=1)
        b = np.clip(a.astype(int) + rng.integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
        rel = f"cls{i % 2}/img{i}"
        for root, arr, ext in ((ref, a, ".png"), (rec, b, ".png")):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / f"{rel}{ext}")
        imgs[rel] = (a, b)
    # one mask (0/255), one bitstream, for the first image only
    (roi / "cls0").mkdir(parents=True)
    mask = np.zeros(smooth_image.shape[:2], np.uint8)
    mask[:32] = 255
    Image.fromarray(mask).save(roi / "cls0" / "img0.png")
    (bits / "cls0").mkdir(parents=True)
    (bits / "cls0" / "img0.bin").write_bytes(b"x" * 123)
    return ref, rec, roi, bits, imgs, mask > 0


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_writes_csv_and_summary(tmp_path, smooth_image, rng):
    ref, rec, roi, bits, imgs, mask = _tree(tmp_path, smooth_image, rng)
    out_csv, out_json = tmp_path / "o" / "per_image.csv", tmp_path / "o" / "summary.json"
    rc = main([str(ref), str(rec), "--out-csv", str(out_csv), "--out-json", str(out_json),
               "--roi-dir", str(roi), "--bitstream-dir", str(bits), "--no-lpips"])
    assert rc == 0
    rows = _read_csv(out_csv)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["image"] for r in rows] == sorted(imgs)
    for r in rows:
        a, b = imgs[r["image"]]
        assert float(r["psnr"]) == pytest.approx(psnr(a, b), rel=1e-12)
        assert r["lpips"] == "" and r["error"] == ""
    first = rows[0]
    assert first["bytes"] == "123" and float(first["bpp"]) == pytest.approx(8 * 123 / (64 * 64))
    a, b = imgs["cls0/img0"]
    want_roi = 10 * math.log10(255**2 / np.mean((a[mask].astype(float) - b[mask]) ** 2))
    assert float(first["roi_psnr"]) == pytest.approx(want_roi, rel=1e-12)
    assert rows[1]["roi_psnr"] == ""
    summary = read_json(out_json)
    assert summary["n_images"] == 3 and summary["n_errors"] == 0
    assert summary["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]), rel=1e-12)
    assert summary["roi_psnr_n"] == 1 and summary["lpips"] is None
    assert "mean of per-image values" in summary["aggregation"]


def test_cli_refuses_unpaired_and_reports_bad_images(tmp_path, smooth_image, rng, capsys):
    ref, rec, roi, bits, imgs, _ = _tree(tmp_path, smooth_image, rng)
    out = ["--out-csv", str(tmp_path / "p.csv"), "--out-json", str(tmp_path / "s.json"), "--no-lpips"]
    (rec / "cls1" / "img1.png").unlink()
    assert main([str(ref), str(rec), *out]) == 2
    assert "without reconstruction" in capsys.readouterr().err
    (rec / "cls1" / "img1.png").write_bytes(b"not an image")
    assert main([str(ref), str(rec), *out]) == 1
    rows = {r["image"]: r for r in _read_csv(tmp_path / "p.csv")}
    assert "img1" in rows["cls1/img1"]["error"] and rows["cls1/img1"]["psnr"] == ""
    assert rows["cls0/img0"]["error"] == "" and read_json(tmp_path / "s.json")["n_errors"] == 1


def test_cli_with_lpips(tmp_path, smooth_image, rng, shared):
    ref, rec, _, _, _, _ = _tree(tmp_path, smooth_image, rng, n=1)
    rc = main([str(ref), str(rec), "--out-csv", str(tmp_path / "p.csv"), "--out-json", str(tmp_path / "s.json")])
    assert rc == 0
    row = _read_csv(tmp_path / "p.csv")[0]
    assert 0 < float(row["lpips"]) < 1 and 0 < float(row["vifp"]) <= 1


def test_compressai_json_roundtrip(tmp_path):
    data = {  # CompressAI layout; points listed high to low rate as in its published files
        "name": "bmshj2018-hyperprior",
        "description": "Inference (ans)",
        "results": {"psnr-rgb": [34.5, 30.9, 27.6], "ms-ssim-rgb": [0.98, 0.96, 0.92], "bpp": [0.67, 0.32, 0.13],
                    "encoding_time": [0.7, 0.69, 0.7]},
    }
    p = tmp_path / "c.json"
    p.write_text(json.dumps(data))
    curve = compressai_json.read_compressai(p)
    assert [pt["bpp"] for pt in curve["points"]] == [0.13, 0.32, 0.67]
    assert curve["points"][0]["psnr"] == 27.6 and curve["points"][0]["enc_s"] == 0.7
    assert curve["points"][2]["msssim_db"] == pytest.approx(-10 * math.log10(0.02))
    out = tmp_path / "out.json"
    compressai_json.write_compressai(out, "x", curve["points"], "roundtrip")
    back = read_json(out)
    assert back["results"]["psnr-rgb"] == back["results"]["psnr"] == [27.6, 30.9, 34.5]
    assert back["results"]["ms-ssim"] == [0.92, 0.96, 0.98] and back["results"]["bpp"] == [0.13, 0.32, 0.67]
    assert compressai_json.read_compressai(out)["points"] == curve["points"]
    legacy = {"name": "j2k", "results": {"psnr": [30.0, 28.0], "ms-ssim": [0.95, 0.9], "bpp": [0.5, 0.25]}}
    assert compressai_json.from_compressai(legacy)["points"][0]["psnr"] == 28.0


def test_compressai_json_bad_files(tmp_path):
    with pytest.raises(ValueError, match="results"):
        compressai_json.from_compressai({"name": "x"}, "f.json")
    with pytest.raises(ValueError, match="bpp"):
        compressai_json.from_compressai({"results": {"psnr": [1.0]}}, "f.json")
    with pytest.raises(ValueError, match="list of 2"):
        compressai_json.from_compressai({"results": {"bpp": [0.1, 0.2], "psnr": [30.0]}}, "f.json")
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="b.json"):
        compressai_json.read_compressai(bad)
