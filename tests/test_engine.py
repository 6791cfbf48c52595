"""Evaluation engine: outputs per the file contract, resume after a crash, per-image errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rsicbench.imageio import read_rgb, write_png
from rsicbench.reproduce.codecs.base import CodecError, create_codec
from rsicbench.reproduce.evaluation.engine import SweepSpec, _parallel_mode, run_sweep, samples_from_folder
from rsicbench.results import CSV_COLUMNS, RatePoint

METRICS = {"device": "cpu", "lpips": False}


@pytest.fixture
def folder(tmp_path, smooth_image):
    root = tmp_path / "imgs"
    for i in range(5):
        img = np.roll(smooth_image, 7 * i, axis=1)
        write_png(root / f"c{i % 2}" / f"img{i}.png", img[: 64 - i, :])  # odd sizes too
    return root


def _spec(tmp_path, points, codec="jpeg", workers=1):
    return SweepSpec(codec=codec, dataset="toy", split="test", points=points, out_root=tmp_path / "rd",
                     metrics=METRICS, workers=workers)  # fmt: skip


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_outputs_follow_contract(tmp_path, folder):
    samples = samples_from_folder(folder)
    res = run_sweep(_spec(tmp_path, [RatePoint(quality=80), RatePoint(quality=20)]), samples)
    assert res.computed == 10 and not res.failed
    base = tmp_path / "rd" / "toy" / "jpeg"
    for qtag in ("q20", "q80"):
        rows = _rows(base / qtag / "per_image.csv")
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [r["image"] for r in rows] == sorted(s.relpath for s in samples)
        for r in rows:
            assert r["error"] == "" and r["roi_psnr"] == "" and r["lpips"] == ""
            assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / (int(r["width"]) * int(r["height"])))
        summary = json.loads((base / qtag / "summary.json").read_text())
        assert summary["n_ok"] == 5 and summary["describe"]["version"]
        assert summary["mean"]["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]))
    curve = json.loads((tmp_path / "rd" / "toy" / "jpeg.json").read_text())
    assert [p["qtag"] for p in curve] == ["q20", "q80"]  # sorted by bpp
    # the kept reconstruction is exactly the codec's decode
    s = samples[0]
    codec = create_codec("jpeg", 20)
    rec = codec.decode(codec.encode(read_rgb(s.path)))
    np.testing.assert_array_equal(read_rgb(base / "q20" / "recon" / "c0" / "img0.png"), rec)


def test_resume_after_crash(tmp_path, folder):
    samples = samples_from_folder(folder)
    spec = _spec(tmp_path, [RatePoint(quality=50)])
    seen = []

    def crash_after_two(row):
        seen.append(row)
        if len(seen) == 2:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, samples, on_result=crash_after_two)
    parts = sorted((tmp_path / "rd" / "toy" / "jpeg" / "q50" / "parts").rglob("*.json"))
    assert len(parts) == 2
    res = run_sweep(spec, samples)
    assert (res.computed, res.skipped) == (3, 2)
    res = run_sweep(spec, samples)
    assert (res.computed, res.skipped) == (0, 5)
    # a changed setting invalidates the parts (different configuration key)
    spec.metrics = {"device": "cpu", "lpips": False, "vifp": False}
    assert run_sweep(spec, samples).computed == 5


def test_failed_image_recorded_others_continue(tmp_path, folder):
    (folder / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    samples = samples_from_folder(folder)
    res = run_sweep(_spec(tmp_path, [RatePoint(quality=50)]), samples)
    assert [(q, img) for q, img, _ in res.failed] == [("q50", "c1/broken.png")]
    rows = {r["image"]: r for r in _rows(tmp_path / "rd" / "toy" / "jpeg" / "q50" / "per_image.csv")}
    assert "cannot decode image" in rows["c1/broken.png"]["error"] and rows["c1/broken.png"]["bpp"] == ""
    assert sum(1 for r in rows.values() if not r["error"]) == 5
    # the CLI exits non-zero at the end
    from rsicbench.reproduce.commands.sweep import main

    rc = main(["--codec", "jpeg", "--images-dir", str(folder), "--out-root", str(tmp_path / "cli"),
               "--qualities", "50", "--matched-bpp", "--no-lpips", "--workers", "1"])  # fmt: skip
    assert rc == 1


def test_matched_rate_and_parallel(tmp_path, folder):
    samples = samples_from_folder(folder)
    res = run_sweep(_spec(tmp_path, [RatePoint(target_bpp=2.0), RatePoint(quality=40)], workers=2), samples)
    assert not res.failed and res.computed == 10
    summary = json.loads((tmp_path / "rd" / "toy" / "jpeg" / "bpp2.00" / "summary.json").read_text())
    assert set(summary["qualities"]) == {s.relpath for s in samples}
    assert abs(summary["mean"]["bpp"] - 2.0) < 0.3
    curve = json.loads((tmp_path / "rd" / "toy" / "jpeg.json").read_text())
    assert [p["qtag"] for p in curve] == ["q40"]  # matched points are not on the RD curve


def test_parallel_mode(tmp_path):
    q = [RatePoint(quality=50)]
    assert _parallel_mode(_spec(tmp_path, q, workers=2)) == "process"  # classical: library thread safety unknown
    spec = _spec(tmp_path, q, workers=2)
    spec.parallel = "thread"
    assert _parallel_mode(spec) == "thread"
    spec.parallel = "fork"
    with pytest.raises(ValueError, match="auto | thread | process"):
        _parallel_mode(spec)
    with pytest.raises(CodecError, match="unknown codec 'nope'"):
        _parallel_mode(_spec(tmp_path, q, codec="nope", workers=2))


def test_bad_input(tmp_path, folder):
    samples = samples_from_folder(folder)
    with pytest.raises(CodecError, match="unknown codec"):
        run_sweep(_spec(tmp_path, [RatePoint(quality=50)], codec="nope"), samples)
    with pytest.raises(CodecError, match="outside"):
        run_sweep(_spec(tmp_path, [RatePoint(quality=500)]), samples)
    with pytest.raises(ValueError, match="no images"):
        run_sweep(_spec(tmp_path, [RatePoint(quality=50)]), [])
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        samples_from_folder(tmp_path / "missing")
