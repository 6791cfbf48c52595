"""rsicbench.metrics: API, known values, conventions and bad input (generated images)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsicbench.metrics import METRIC_KEYS, MetricInputError, MetricSuite, bpp, psnr, psnr_band, roi_psnr
from rsicbench.metrics import aggregate, lpips_alex, msssim


@pytest.fixture(scope="module")
def suite(shared):
    return MetricSuite(device="cpu")


@pytest.fixture(scope="module")
def suite_no_lpips():
    return MetricSuite(device="cpu", lpips=False)


def _mid_image(rng, h=64, w=80):
    """Values in [20, 230], so an offset of a few grey levels needs no clipping."""
    return rng.integers(20, 231, size=(h, w, 3), dtype=np.uint8)


def test_bpp_counts_bits_of_the_unpadded_image():
    assert bpp(1000, 256, 256) == 8000 / 65536
    assert bpp(0, 10, 10) == 0.0
    assert bpp(3, 250, 247) == 24 / (250 * 247)
    for bad in [(-1, 4, 4), (1.5, 4, 4), (10, 0, 4), (10, 4, -2), (True, 4, 4)]:
        with pytest.raises(MetricInputError):
            bpp(*bad)


def test_metric_keys_in_order():
    assert METRIC_KEYS == ("psnr", "psnr_band", "msssim", "msssim_db", "lpips", "vifp", "roi_psnr")


def test_constant_offset_has_analytic_psnr(rng, suite_no_lpips):
    ref = _mid_image(rng)
    rec = ref + np.uint8(3)  # MSE = 9 exactly
    assert psnr(ref, rec) == pytest.approx(10 * math.log10(255**2 / 9), abs=1e-12)
    peaks = ref.reshape(-1, 3).max(axis=0).astype(float)
    want_band = float(np.mean(10 * np.log10(peaks**2 / 9)))
    assert psnr_band(ref, rec) == pytest.approx(want_band, abs=1e-12)
    vals = suite_no_lpips(ref, rec)
    assert vals["psnr"] == pytest.approx(10 * math.log10(255**2 / 9), abs=1e-10)
    assert vals["psnr_band"] == pytest.approx(want_band, abs=1e-10)
    # psnr_band uses the band's own peak, so it is below the peak-255 value here
    assert vals["psnr_band"] < vals["psnr"]


def test_psnr_band_is_mean_of_per_band_psnr(rng):
    ref = _mid_image(rng)
    rec = ref.copy()
    rec[..., 0] += 1  # MSE_R = 1
    rec[..., 1] += 2  # MSE_G = 4
    rec[..., 2] += 4  # MSE_B = 16
    peaks = ref.reshape(-1, 3).max(axis=0).astype(float)
    want = np.mean([10 * math.log10(p**2 / m) for p, m in zip(peaks, (1, 4, 16))])
    assert psnr_band(ref, rec) == pytest.approx(want, abs=1e-12)
    assert psnr(ref, rec) == pytest.approx(10 * math.log10(255**2 / 7), abs=1e-12)


def test_psnr_band_all_zero_band_uses_peak_one():
    ref = np.zeros((20, 20, 3), np.uint8)
    ref[..., 0] = 100
    ref[..., 1] = 200
    rec = ref.copy()
    rec[0, 0, 2] = 1  # blue band: original all zeros, MSE 1/400
    val = psnr_band(ref, rec)
    assert val == math.inf  # R and G are exact -> inf dominates the mean
    rec2 = ref + np.uint8(1)
    want = np.mean([10 * math.log10(p**2) for p in (100, 200, 1)])
    assert psnr_band(ref, rec2) == pytest.approx(want, abs=1e-12)


def test_identical_images_known_values(suite, rng):
    ref = rng.integers(0, 256, size=(64, 72, 3), dtype=np.uint8)
    v = suite(ref, ref.copy())
    assert v["psnr"] == math.inf and v["psnr_band"] == math.inf
    assert v["msssim"] == pytest.approx(1.0, abs=1e-6)
    assert v["msssim_db"] > 55 or v["msssim_db"] == math.inf
    assert v["lpips"] == pytest.approx(0.0, abs=1e-7)
    assert v["vifp"] == pytest.approx(1.0, abs=1e-5)
    assert math.isnan(v["roi_psnr"])
    assert set(v) == set(METRIC_KEYS)


def test_msssim_db_definition():
    assert msssim.msssim_db(0.99) == pytest.approx(20.0, abs=1e-9)
    assert msssim.msssim_db(0.9) == pytest.approx(10.0, abs=1e-9)
    assert msssim.msssim_db(1.0) == math.inf
    assert math.isnan(msssim.msssim_db(math.nan))


def test_roi_psnr_semantics(rng, suite_no_lpips):
    ref = _mid_image(rng, 48, 50)
    rec = ref.copy()
    rec[:24] += np.uint8(2)  # top half: MSE 4
    rec[24:] += np.uint8(8)  # bottom half: MSE 64
    top = np.zeros(ref.shape[:2], bool)
    top[:24] = True
    assert roi_psnr(ref, rec, top) == pytest.approx(10 * math.log10(255**2 / 4), abs=1e-12)
    assert roi_psnr(ref, rec, ~top) == pytest.approx(10 * math.log10(255**2 / 64), abs=1e-12)
    full = np.ones(ref.shape[:2], bool)
    assert roi_psnr(ref, rec, full) == pytest.approx(psnr(ref, rec), abs=1e-12)
    # 0/255 integer masks mean the same as bool masks
    assert roi_psnr(ref, rec, top.astype(np.uint8) * 255) == roi_psnr(ref, rec, top)
    v = suite_no_lpips(ref, rec, roi_mask=top)
    assert v["roi_psnr"] == pytest.approx(10 * math.log10(255**2 / 4), abs=1e-10)
    assert suite_no_lpips(ref, rec, roi_mask=full)["roi_psnr"] == pytest.approx(v["psnr"], abs=1e-10)
    assert math.isnan(roi_psnr(ref, rec, None))


def test_empty_roi_is_nan_with_warning(rng, suite_no_lpips):
    ref = _mid_image(rng, 48, 48)
    rec = ref + np.uint8(1)
    empty = np.zeros(ref.shape[:2], bool)
    with pytest.warns(RuntimeWarning, match="empty"):
        assert math.isnan(roi_psnr(ref, rec, empty))
    with pytest.warns(RuntimeWarning, match="empty"):
        assert math.isnan(suite_no_lpips(ref, rec, roi_mask=empty)["roi_psnr"])


def test_bad_masks_are_refused(rng):
    ref = _mid_image(rng, 32, 32)
    with pytest.raises(MetricInputError, match="shape"):
        roi_psnr(ref, ref, np.ones((31, 32), bool))
    with pytest.raises(MetricInputError, match="0/1 or 0/255"):
        roi_psnr(ref, ref, np.full((32, 32), 7, np.uint8))
    with pytest.raises(MetricInputError, match="dtype"):
        roi_psnr(ref, ref, np.ones((32, 32), np.float32))


@pytest.mark.parametrize(
    "make_rec, match",
    [
        (lambda r: r[:-1], "shape mismatch"),
        (lambda r: r[..., 0], "HxWx3"),
        (lambda r: np.where(np.arange(r.size).reshape(r.shape) == 5, np.nan, r.astype(np.float32)), "NaN"),
        (lambda r: r.astype(np.float32) / 255.0, "8-bit"),
        (lambda r: r.astype(np.int16) + 300, "outside the 8-bit range"),
        (lambda r: r.astype(np.float64) - 300, "outside the 8-bit range"),
        (lambda r: np.full(r.shape, np.inf), "infinite"),
        (lambda r: r > 100, "dtype"),
    ],
)
def test_bad_input_gives_clear_errors(rng, suite_no_lpips, make_rec, match):
    ref = _mid_image(rng, 40, 40)
    rec = make_rec(ref)
    with pytest.raises(MetricInputError, match=match):
        psnr(ref, rec)
    with pytest.raises(MetricInputError, match=match):
        suite_no_lpips(ref, rec)


def test_integer_valued_float_and_wide_int_are_accepted(rng):
    ref = _mid_image(rng, 40, 40)
    rec = ref + np.uint8(2)
    assert psnr(ref.astype(np.float32), rec.astype(np.int64)) == psnr(ref, rec)


def test_batch_matches_single_and_keeps_order(rng, suite_no_lpips):
    refs = [_mid_image(rng, 48, 48), _mid_image(rng, 50, 44), _mid_image(rng, 48, 48)]
    recs = [np.clip(r.astype(int) + rng.integers(-9, 10, r.shape), 0, 255).astype(np.uint8) for r in refs]
    masks = [None, np.ones((50, 44), bool), None]
    batch = suite_no_lpips.compute_batch(refs, recs, masks)
    for r, d, m, b in zip(refs, recs, masks, batch):
        single = suite_no_lpips(r, d, roi_mask=m)
        for k in METRIC_KEYS:
            if math.isnan(single[k]):
                assert math.isnan(b[k])
            else:
                assert b[k] == pytest.approx(single[k], rel=1e-6), k
    assert math.isnan(batch[0]["lpips"])  # switched off -> nan, key still present
    small_batches = MetricSuite(lpips=False, batch_size=1).compute_batch(refs, recs, masks)
    for b, c in zip(batch, small_batches):
        assert all(b[k] == pytest.approx(c[k], rel=1e-6, nan_ok=True) for k in METRIC_KEYS)
    with pytest.raises(MetricInputError, match="pair 1"):
        suite_no_lpips.compute_batch(refs, [recs[0], recs[0], recs[2]])


def test_small_image_rules(suite, rng):
    """MS-SSIM scale rule; LPIPS (<31 px) and VIFp (<41 px) give nan."""
    assert msssim.n_scales(256, 256) == 5
    assert msssim.n_scales(161, 300) == 5
    assert msssim.n_scales(160, 300) == 4
    assert msssim.n_scales(81, 81) == 4
    assert msssim.n_scales(11, 11) == 1
    assert msssim.n_scales(10, 64) == 0
    assert sum(msssim.scale_weights(3)) == pytest.approx(1.0)
    assert msssim.scale_weights(3)[0] / msssim.scale_weights(3)[1] == pytest.approx(0.0448 / 0.2856)
    tiny = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    v = suite(tiny, np.clip(tiny.astype(int) + 3, 0, 255).astype(np.uint8))
    assert math.isfinite(v["msssim"]) and math.isnan(v["lpips"]) and math.isnan(v["vifp"])
    very = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    assert math.isnan(suite(very, very)["msssim"])


def test_aggregate_caps_inf_and_skips_nan():
    rows = [{"psnr": 30.0, "roi_psnr": math.nan, "lpips": 0.1}, {"psnr": math.inf, "roi_psnr": 40.0, "lpips": 0.3}]
    s = aggregate.summarize(rows, ["psnr", "roi_psnr", "lpips"])
    assert s["psnr"] == pytest.approx((30.0 + aggregate.PSNR_CAP_DB) / 2)
    assert s["psnr_n_inf"] == 1 and s["psnr_n"] == 2
    assert s["roi_psnr"] == 40.0 and s["roi_psnr_n"] == 1
    assert s["lpips"] == pytest.approx(0.2)


def test_lpips_refuses_without_backbone_weights(tmp_path, monkeypatch):
    import torchvision.models

    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp_path))  # an empty mirror
    monkeypatch.delenv(lpips_alex.ENV_WEIGHTS, raising=False)

    real = torchvision.models.alexnet

    def offline(*a, **k):
        if k.get("weights") is None and not k.get("pretrained"):
            return real(*a, **k)
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "alexnet", offline)
    with pytest.raises(lpips_alex.LPIPSWeightsError, match="refusing to run with a random backbone"):
        lpips_alex.build_lpips()
    with pytest.raises(lpips_alex.LPIPSWeightsError, match="not found"):
        lpips_alex.build_lpips(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not the weights")
    monkeypatch.setenv(lpips_alex.ENV_WEIGHTS, str(bad))
    with pytest.raises(lpips_alex.LPIPSWeightsError, match="sha256"):
        lpips_alex.build_lpips()


def test_lpips_loads_the_file_weights(shared):
    import torch

    model = lpips_alex.build_lpips()
    state = torch.load(shared / "weights" / lpips_alex.FEATURES_FILE, map_location="cpu", weights_only=True)
    for idx, sl in lpips_alex._SLICE_OF.items():
        conv = getattr(getattr(model.net, f"slice{sl}"), str(idx))
        assert torch.equal(conv.weight, state[f"features.{idx}.weight"])
        assert torch.equal(conv.bias, state[f"features.{idx}.bias"])
    assert "lpips_alexnet_features.pth" in model.weights_source
