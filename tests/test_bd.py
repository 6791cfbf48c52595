"""BD-rate / BD-PSNR / BD-delta and bootstrap CIs (rsicbench.metrics.bd)."""

from __future__ import annotations

import math

import bjontegaard
import numpy as np
import pytest

from rsicbench.metrics.bd import bd_delta, bd_psnr, bd_rate, bd_table, bootstrap_bd

RATES = np.array([0.12, 0.25, 0.5, 0.9, 1.6])
PSNR = np.array([27.1, 29.8, 32.6, 35.0, 37.9])


@pytest.mark.parametrize("method", ["pchip", "cubic", "akima"])
@pytest.mark.parametrize("x", [-10.0, 25.0, -37.5])
def test_rate_shift_gives_exact_bd_rate(method, x):
    res = bd_rate(RATES, PSNR, RATES * (1 + x / 100), PSNR, method=method)
    assert res.valid and not res.warnings
    assert res.value == pytest.approx(x, abs=1e-9)


def test_sign_convention():
    cheaper = bd_rate(RATES, PSNR, RATES * 0.8, PSNR)
    dearer = bd_rate(RATES, PSNR, RATES * 1.2, PSNR)
    assert cheaper.value < 0 < dearer.value  # negative = test saves bits vs the anchor
    better = bd_psnr(RATES, PSNR, RATES, PSNR + 0.8)
    assert better.value == pytest.approx(0.8, abs=1e-9)  # positive = higher quality at equal rate
    assert bd_psnr(RATES, PSNR, RATES, PSNR - 0.3).value == pytest.approx(-0.3, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_agrees_with_bjontegaard_package(method):
    test_r = np.array([0.1, 0.22, 0.41, 0.8, 1.3])
    test_q = np.array([27.4, 30.1, 32.9, 35.8, 38.2])
    ours = bd_rate(RATES, PSNR, test_r, test_q, method=method)
    theirs = bjontegaard.bd_rate(RATES, PSNR, test_r, test_q, method)
    assert ours.valid and ours.value == pytest.approx(theirs, rel=1e-12)
    ours_q = bd_psnr(RATES, PSNR, test_r, test_q, method=method)
    assert ours_q.value == pytest.approx(bjontegaard.bd_psnr(RATES, PSNR, test_r, test_q, method), rel=1e-12)


def test_point_order_does_not_matter():
    """CompressAI's published files list rate points high to low."""
    test_r, test_q = RATES * 0.9, PSNR + 0.1
    a = bd_rate(RATES[::-1], PSNR[::-1], test_r, test_q)
    b = bd_rate(RATES, PSNR, test_r[[2, 0, 4, 1, 3]], test_q[[2, 0, 4, 1, 3]])
    assert a.value == pytest.approx(b.value, abs=1e-12)


def test_lower_is_better_metric_bd_rate_and_delta():
    lp = np.array([0.40, 0.30, 0.21, 0.14, 0.09])  # LPIPS falls with rate
    res = bd_rate(RATES, lp, RATES * 0.8, lp)
    assert res.valid and res.value == pytest.approx(-20.0, abs=1e-9)
    d = bd_delta(RATES, lp, RATES, lp - 0.02)
    assert d.value == pytest.approx(-0.02, abs=1e-12)  # negative = better for LPIPS


def test_non_monotonic_curve_is_reported_not_computed():
    bad = PSNR.copy()
    bad[2], bad[3] = bad[3], bad[2]
    res = bd_rate(RATES, PSNR, RATES, bad)
    assert not res.valid and math.isnan(res.value)
    assert any("monotonic" in w for w in res.warnings)
    q = bd_psnr(RATES, PSNR, RATES, bad)  # still defined, but flagged
    assert not q.valid and math.isfinite(q.value) and any("monotonic" in w for w in q.warnings)


def test_small_and_no_overlap():
    res = bd_rate(RATES, PSNR, RATES * 3, PSNR + 7.0)
    assert not res.valid and math.isfinite(res.value)
    assert any("small overlap" in w for w in res.warnings)
    assert 0 < res.overlap < 0.75
    none = bd_rate(RATES, PSNR, RATES * 30, PSNR + 30.0)
    assert not none.valid and math.isnan(none.value) and none.overlap == 0


def test_bad_curves_never_crash():
    cases = [
        (RATES[:3], PSNR[:3], RATES[:3], PSNR[:3], "cubic"),  # too few points for cubic
        (RATES, PSNR[:4], RATES, PSNR, "pchip"),  # length mismatch
        (np.r_[0.0, RATES[1:]], PSNR, RATES, PSNR, "pchip"),  # zero rate
        (RATES, np.r_[np.nan, PSNR[1:]], RATES, PSNR, "pchip"),  # NaN
        (np.r_[RATES[:2], RATES[1:4]], PSNR, RATES, PSNR, "pchip"),  # repeated rate
    ]
    for ar, aq, tr, tq, method in cases:
        res = bd_rate(ar, aq, tr, tq, method=method)
        assert not res.valid and math.isnan(res.value) and res.warnings
    with pytest.raises(ValueError, match="method"):
        bd_rate(RATES, PSNR, RATES, PSNR, method="linear")


def _per_image(rng, n_img=24, scale=1.0, offset=0.0, noise=0.6):
    r = np.outer(RATES, rng.uniform(0.7, 1.3, n_img)) * scale
    q = PSNR[:, None] + rng.normal(0, 2.0, n_img)[None, :] + rng.normal(0, noise, (len(RATES), n_img)) * 0.1 + offset
    return {"bpp": r, "psnr": q}


def test_bootstrap_exact_shift_has_zero_width_ci(rng):
    a = _per_image(rng)
    t = {"bpp": a["bpp"] * 0.85, "psnr": a["psnr"].copy()}
    res = bootstrap_bd(a, t, "psnr", kind="rate", n_boot=100, seed=0)
    assert res["value"] == pytest.approx(-15.0, abs=1e-9)
    assert res["ci_low"] == pytest.approx(-15.0, abs=1e-6) and res["ci_high"] == pytest.approx(-15.0, abs=1e-6)
    assert res["n_failed"] == 0 and res["n_boot"] == 100


def test_bootstrap_ci_brackets_value_and_is_deterministic(rng):
    a = _per_image(rng)
    t = {"bpp": a["bpp"] * rng.uniform(0.7, 1.0, a["bpp"].shape[1]), "psnr": a["psnr"] + rng.normal(0.2, 0.3, a["psnr"].shape[1])}
    r1 = bootstrap_bd(a, t, "psnr", kind="rate", n_boot=200, seed=3)
    r2 = bootstrap_bd(a, t, "psnr", kind="rate", n_boot=200, seed=3)
    assert r1 == r2
    assert r1["ci_low"] < r1["value"] < r1["ci_high"]
    assert r1["ci_high"] - r1["ci_low"] > 0.1
    q = bootstrap_bd(a, t, "psnr", kind="quality", n_boot=100, seed=0)
    assert q["ci_low"] < q["value"] < q["ci_high"]


def test_bootstrap_counts_failures_and_checks_shapes(rng):
    a = _per_image(rng, n_img=4)
    t = {"bpp": a["bpp"].copy(), "psnr": a["psnr"].copy()}
    # image 0 makes the test curve non-monotonic whenever it is drawn often enough
    t["psnr"][:, 0] = t["psnr"][::-1, 0] + np.array([0, 0, 30, 0, 0])
    res = bootstrap_bd(a, t, "psnr", kind="rate", n_boot=50, seed=1)
    assert 0 < res["n_failed"] <= 50
    with pytest.raises(ValueError, match="same images"):
        bootstrap_bd(a, {"bpp": a["bpp"][:, :3], "psnr": a["psnr"][:, :3]}, "psnr")
    with pytest.raises(KeyError, match="lpips"):
        bootstrap_bd(a, t, "lpips")


def test_bd_table_over_metrics():
    lp = np.array([0.40, 0.30, 0.21, 0.14, 0.09])
    anchor = [{"bpp": r, "psnr": q, "lpips": lq} for r, q, lq in zip(RATES, PSNR, lp)]
    test = [{"bpp": r * 0.75, "psnr": q, "lpips": lq} for r, q, lq in zip(RATES, PSNR, lp)]
    test[-1]["psnr"] = math.inf  # a lossless point is capped at 100 dB, not a crash
    t = bd_table(anchor, test)
    assert set(t) == {"bd_rate_psnr", "bd_psnr", "bd_rate_lpips", "bd_lpips"}
    assert t["bd_rate_lpips"]["value"] == pytest.approx(-25.0, abs=1e-9) and t["bd_rate_lpips"]["valid"]
    assert math.isfinite(t["bd_rate_psnr"]["value"])
