"""Paired-bootstrap CI of an ablation BD-rate (reproduce/evaluation/paired_bd.py) on tiny
results/rd trees written with the results contract's own writers, and its use in the
ablation table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsicbench import results
from rsicbench.reproduce.evaluation.paired_bd import NO_DIFFERENCE, difference, paired_bd_ci

DS = "toy"


def _write_codec(rd: Path, codec: str, bpp: np.ndarray, psnr: np.ndarray) -> None:
    """bpp/psnr: (rate points x images) -> results/rd/toy/<codec>/q<i>/{per_image.csv, summary.json}."""
    for i in range(bpp.shape[0]):
        folder = results.point_dir(rd, DS, codec, f"q{i}")
        rows = [{"image": f"c/img{j:02d}.png", "width": 64, "height": 64, "bytes": int(bpp[i, j] * 512),
                 "bpp": float(bpp[i, j]), "psnr": float(psnr[i, j])} for j in range(bpp.shape[1])]
        results.write_per_image(folder / results.PER_IMAGE, rows)
        results.write_summary(folder, {"qtag": f"q{i}", "target_bpp": None, "n_ok": bpp.shape[1],
                                       "mean": {"bpp": float(bpp[i].mean()), "psnr": float(psnr[i].mean())}})


def _base(n_img: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A plausible curve per image: 4 rate points, PSNR rising ~4 dB per doubling of bpp."""
    rng = np.random.default_rng(seed)
    bpp = np.outer([0.2, 0.4, 0.8, 1.6], rng.uniform(0.7, 1.4, n_img))
    psnr = 30 + 4 * np.log2(bpp / 0.4) + rng.normal(0, 0.8, n_img)
    return bpp, psnr


def test_clear_difference_ci_excludes_zero(tmp_path):
    bpp, psnr = _base(30)
    rng = np.random.default_rng(1)
    _write_codec(tmp_path, "base", bpp, psnr)
    _write_codec(tmp_path, "var", bpp * 0.8 * rng.uniform(0.97, 1.03, bpp.shape), psnr)  # ~20 % fewer bits
    r = paired_bd_ci(tmp_path, DS, "base", "var", {"n": 300, "seed": 0})
    assert r["computable"] and r["n_images"] == 30 and r["n_failed"] == 0
    assert r["ci_low"] <= r["value"] <= r["ci_high"] < 0
    assert -24 < r["value"] < -16
    assert r["difference"] == "test needs fewer bits"


def test_identical_and_zero_mean_noise_curves_ci_includes_zero(tmp_path):
    bpp, psnr = _base(20)
    _write_codec(tmp_path, "base", bpp, psnr)
    _write_codec(tmp_path, "same", bpp, psnr)
    same = paired_bd_ci(tmp_path, DS, "base", "same", {"n": 200})
    assert same["computable"] and same["value"] == pytest.approx(0, abs=1e-9)
    assert same["difference"] == NO_DIFFERENCE
    # per-image differences that cancel over the full set (+e / -e pairs): the point value is 0,
    # the interval is wide and still includes 0
    e = np.repeat(np.random.default_rng(2).uniform(0.3, 0.8, 10), 2) * np.tile([1, -1], 10)
    _write_codec(tmp_path, "noisy", bpp, psnr + e)
    noisy = paired_bd_ci(tmp_path, DS, "base", "noisy", {"n": 300})
    assert noisy["computable"] and noisy["ci_low"] < 0 < noisy["ci_high"] and noisy["ci_high"] - noisy["ci_low"] > 1
    assert noisy["difference"] == NO_DIFFERENCE


def test_deterministic_with_the_seed(tmp_path):
    bpp, psnr = _base(12)
    _write_codec(tmp_path, "base", bpp, psnr)
    _write_codec(tmp_path, "var", bpp * 0.95, psnr + np.random.default_rng(3).normal(0, 0.5, psnr.shape))
    a = paired_bd_ci(tmp_path, DS, "base", "var", {"n": 100, "seed": 5})
    b = paired_bd_ci(tmp_path, DS, "base", "var", {"n": 100, "seed": 5})
    c = paired_bd_ci(tmp_path, DS, "base", "var", {"n": 100, "seed": 6})
    assert a == b
    assert a["value"] == c["value"] and (a["ci_low"], a["ci_high"]) != (c["ci_low"], c["ci_high"])


def test_too_few_images_is_not_computable_and_says_why(tmp_path):
    bpp, psnr = _base(2)
    _write_codec(tmp_path, "base", bpp, psnr)
    _write_codec(tmp_path, "var", bpp * 0.8, psnr)
    r = paired_bd_ci(tmp_path, DS, "base", "var", {"n": 50})
    assert not r["computable"] and r["ci_low"] is None and r["difference"] is None
    assert "2 image(s)" in r["reason"] and "at least 3" in r["reason"]
    missing = paired_bd_ci(tmp_path, DS, "base", "absent", {"n": 50})
    assert not missing["computable"] and "absent" in missing["reason"]


def test_resamples_without_a_bd_are_counted(tmp_path):
    """Two images rise 10 dB per point; a third zigzags, so a resample holding it twice or more
    has a non-monotonic mean curve (no BD-rate): counted, left out, the CI still computed."""
    bpp = np.outer([0.2, 0.4, 0.8, 1.6], [1.0, 1.1, 0.9])
    psnr = np.array([[20, 21, 40], [30, 31, 30], [40, 41, 45], [50, 51, 35]], dtype=float)
    _write_codec(tmp_path, "base", bpp, psnr)
    _write_codec(tmp_path, "var", bpp * 0.9, psnr)
    r = paired_bd_ci(tmp_path, DS, "base", "var", {"n": 400, "seed": 0})
    assert r["computable"] and 0.15 * 400 < r["n_failed"] < 0.4 * 400  # P(C drawn >= 2 times) = 7/27
    assert r["value"] == pytest.approx(-10, abs=1e-6)


def test_difference_wording():
    assert difference(-3.0, 1.0) == NO_DIFFERENCE and difference(0.0, 2.0) == NO_DIFFERENCE
    assert difference(-3.0, -1.0) == "test needs fewer bits" and difference(1.0, 2.0) == "test needs more bits"
    assert difference(None, None) is None


def test_ablation_rows_carry_the_ci(tmp_path):
    from rsicbench.reproduce.papers.ablation import ablation_table

    root = Path(__file__).resolve().parents[1]
    bpp, psnr = _base(10)
    rd = tmp_path / "rd"
    _write_codec(rd, "ltchm-baseline", bpp, psnr)
    _write_codec(rd, "ltchm-dam", bpp * 0.7, psnr)
    _write_codec(rd, "ltchm-hpham", bpp, psnr)
    variants = {"ltchm-baseline": {}, "ltchm-dam": {"dam": True}, "ltchm-hpham": {"hpham": True}}
    t = ablation_table("ltchm", variants, rd / DS, root / "claims" / "ltchm.yaml", "default", with_params=False,
                       boot={"n": 100, "seed": 0})
    rows = {r["variant"]: r for r in t["rows"]}
    assert rows["ltchm-baseline"]["bd_rate_psnr_ci"] is None
    assert rows["ltchm-dam"]["bd_rate_psnr_ci"]["ci_high"] < 0 and rows["ltchm-dam"]["difference"] == "test needs fewer bits"
    assert rows["ltchm-hpham"]["difference"] == NO_DIFFERENCE


def test_seed_controls_set_each_familys_gap_and_demote_differences_inside_it(tmp_path):
    """A variant whose interval excludes 0 but reaches within ±(the reseeded baseline's |BD-rate|)
    reads "within seed noise"; one beyond it keeps its direction; one including 0 stays
    "no difference measured"; a family without a control says why it has no gap."""
    from rsicbench.reproduce.papers.ablation import SEED_CONTROL, WITHIN_SEED_NOISE, ablation_table, seed_verdict

    root = Path(__file__).resolve().parents[1]
    bpp, psnr = _base(12)
    rng = np.random.default_rng(3)
    wobble = lambda: rng.normal(1.0, 0.01, bpp.shape)  # noqa: E731  per-image, per-point noise: a CI with width
    rd = tmp_path / "rd"
    _write_codec(rd, "dmenet-baseline", bpp, psnr)
    _write_codec(rd, "dmenet-baseline_seed1", bpp * 1.08 * wobble(), psnr)  # the same model, another seed: +8 %
    _write_codec(rd, "dmenet-lsm", bpp * 1.04 * wobble(), psnr)            # +4 %: inside the gap
    _write_codec(rd, "dmenet-sdpm", bpp * 0.75 * wobble(), psnr)           # -25 %: beyond it
    _write_codec(rd, "dmenet-mdei", bpp * wobble(), psnr)                  # ~0
    sw = {"sdpm": False, "lsm": False, "mdei": False}
    variants = {"dmenet-baseline": sw, "dmenet-baseline_seed1": {**sw, "seed_offset": 1},
                "dmenet-lsm": {**sw, "lsm": True}, "dmenet-sdpm": {**sw, "sdpm": True}, "dmenet-mdei": {**sw, "mdei": True}}
    t = ablation_table("dmenet", variants, rd / DS, root / "claims" / "dmenet.yaml", "default", with_params=False,
                       boot={"n": 200, "seed": 0})
    rows = {r["variant"]: r for r in t["rows"]}
    assert [r["variant"] for r in t["rows"]][:2] == ["dmenet-baseline", "dmenet-baseline_seed1"]
    ctl = rows["dmenet-baseline_seed1"]
    assert ctl["role"] == SEED_CONTROL and ctl["difference"] == SEED_CONTROL
    assert ctl["bd_rate_psnr"]["value"] == pytest.approx(8.0, abs=1.0)
    gap = t["seed_gap"]["dmenet"]
    assert gap["value"] == pytest.approx(abs(ctl["bd_rate_psnr"]["value"])) and gap["largest"] == "dmenet-baseline_seed1"
    lsm, sdpm = rows["dmenet-lsm"], rows["dmenet-sdpm"]
    assert lsm["bd_rate_psnr_ci"]["difference"] == "test needs more bits"  # the images alone would say "an effect"
    assert lsm["difference"] == WITHIN_SEED_NOISE and lsm["seed_gap"] == gap["value"]
    assert sdpm["difference"] == "test needs fewer bits"
    assert rows["dmenet-mdei"]["difference"] == NO_DIFFERENCE
    # the rule at its edges: the bound nearest 0 against the gap, both signs
    ci = lambda lo, hi: {"ci_low": lo, "ci_high": hi, "difference": difference(lo, hi)}  # noqa: E731
    assert seed_verdict(ci(-9.0, -5.0), 5.0) == WITHIN_SEED_NOISE and seed_verdict(ci(-9.0, -5.1), 5.0) != WITHIN_SEED_NOISE
    assert seed_verdict(ci(5.0, 9.0), 5.0) == WITHIN_SEED_NOISE and seed_verdict(ci(5.1, 9.0), 5.0) == "test needs more bits"
    assert seed_verdict(ci(1.0, 2.0), None) == "test needs more bits"  # no gap: the images' verdict
    # no control in a family: no gap, and the reason
    del variants["dmenet-baseline_seed1"]
    t2 = ablation_table("dmenet", variants, rd / DS, root / "claims" / "dmenet.yaml", "default", with_params=False,
                        boot={"n": 50, "seed": 0})
    assert t2["seed_gap"]["dmenet"]["value"] is None and "no seed-control row" in t2["seed_gap"]["dmenet"]["reason"]
    assert {r["variant"]: r for r in t2["rows"]}["dmenet-lsm"]["difference"] == "test needs more bits"
