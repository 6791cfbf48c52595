"""Validation against independent implementations on real image pairs.

UC Merced images (../shared), JPEG-compressed with Pillow at several qualities. Target:
1e-4 relative agreement with numpy/skimage (PSNR), pytorch_msssim and piq (MS-SSIM),
the lpips package (LPIPS, same local AlexNet weights) and piq (VIFp).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from rsicbench.imageio import read_rgb
from rsicbench.metrics import MetricSuite, psnr, psnr_band
from rsicbench.metrics import lpips_alex

QUALITIES = (80, 40, 10)
CLASSES = ("airplane", "forest")
REL = 1e-4


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def pairs(shared):
    """{(class, quality): (ref, rec)} for the first image of two classes."""
    out = {}
    for cls in CLASSES:
        files = sorted((shared / "datasets" / "ucmerced" / cls).glob("*.webp"))
        if not files:
            pytest.skip(f"no UC Merced images for {cls} in {shared}")
        ref = read_rgb(files[0])
        for q in QUALITIES:
            out[(cls, q)] = (ref, _jpeg(ref, q))
    return out


@pytest.fixture(scope="module")
def values(pairs):
    suite = MetricSuite(device="cpu")
    keys = sorted(pairs)
    rows = suite.compute_batch([pairs[k][0] for k in keys], [pairs[k][1] for k in keys])
    return dict(zip(keys, rows))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()


def test_psnr_vs_numpy_and_skimage(pairs, values):
    from skimage.metrics import peak_signal_noise_ratio

    for k, (ref, rec) in pairs.items():
        want = peak_signal_noise_ratio(ref, rec, data_range=255)
        assert values[k]["psnr"] == pytest.approx(want, rel=1e-12)
        assert psnr(ref, rec) == pytest.approx(want, rel=1e-12)
        d = ref.astype(np.float64) - rec
        per_band = [10 * np.log10(float(ref[..., b].max()) ** 2 / np.mean(d[..., b] ** 2)) for b in range(3)]
        assert values[k]["psnr_band"] == pytest.approx(np.mean(per_band), rel=1e-12)
        assert psnr_band(ref, rec) == pytest.approx(np.mean(per_band), rel=1e-12)


def test_msssim_vs_pytorch_msssim_and_piq(pairs, values):
    import piq
    from pytorch_msssim import ms_ssim

    worst = 0.0
    for k, (ref, rec) in pairs.items():
        a = ms_ssim(_t(ref), _t(rec), data_range=255).item()
        b = piq.multi_scale_ssim(_t(ref), _t(rec), data_range=255.0).item()
        got = values[k]["msssim"]
        assert got == pytest.approx(a, rel=REL), k
        assert got == pytest.approx(b, rel=REL), k
        assert values[k]["msssim_db"] == pytest.approx(-10 * np.log10(1 - a), rel=1e-3)
        worst = max(worst, abs(got - a) / a, abs(got - b) / b)
    print(f"MS-SSIM worst relative difference: {worst:.2e}")


def test_msssim_odd_and_small_sizes(pairs):
    """Odd sizes follow pytorch_msssim; <161 px uses fewer scales with renormalised weights (piq check)."""
    import piq
    from pytorch_msssim import ms_ssim

    from rsicbench.metrics import msssim

    ref, rec = pairs[("forest", 40)]
    r, d = ref[:201, :177], rec[:201, :177]
    got = msssim.ms_ssim(_t(r), _t(d)).item()
    assert got == pytest.approx(ms_ssim(_t(r), _t(d), data_range=255).item(), rel=REL)
    r, d = ref[:96, :128], rec[:96, :128]  # 4 scales; even at every scale
    w = torch.tensor(msssim.scale_weights(4))
    want = piq.multi_scale_ssim(_t(r), _t(d), data_range=255.0, scale_weights=w).item()
    assert msssim.ms_ssim(_t(r), _t(d)).item() == pytest.approx(want, rel=REL)


def test_lpips_vs_lpips_package(pairs, values, shared):
    import lpips

    import warnings

    with warnings.catch_warnings():  # torchvision's `pretrained=` deprecation notes
        warnings.simplefilter("ignore", UserWarning)
        ref_model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    state = torch.load(shared / "weights" / lpips_alex.FEATURES_FILE, map_location="cpu", weights_only=True)
    for idx, sl in lpips_alex._SLICE_OF.items():
        conv = getattr(getattr(ref_model.net, f"slice{sl}"), str(idx))
        conv.weight.data.copy_(state[f"features.{idx}.weight"])
        conv.bias.data.copy_(state[f"features.{idx}.bias"])
    worst = 0.0
    with torch.no_grad():
        for k, (ref, rec) in pairs.items():
            want = ref_model(_t(ref) / 255.0, _t(rec) / 255.0, normalize=True).item()  # [0,1] -> [-1,1] inside
            assert values[k]["lpips"] == pytest.approx(want, rel=REL), k
            worst = max(worst, abs(values[k]["lpips"] - want) / want)
    print(f"LPIPS worst relative difference: {worst:.2e}")


def test_vifp_vs_piq(pairs, values):
    """Against piq in float64 (same algorithm: ~1e-13); piq's float32 result is itself up to
    ~1.3e-4 off (variance cancellation), so against it we allow 5e-4."""
    import piq

    worst = 0.0
    for k, (ref, rec) in sorted(pairs.items()):
        if k[0] == CLASSES[0]:  # piq in float64 is slow (17x17 2-D conv): one class
            want = piq.vif_p(_t(rec).double(), _t(ref).double(), data_range=255.0).item()  # (distorted, reference)
            assert values[k]["vifp"] == pytest.approx(want, rel=1e-9), k
            worst = max(worst, abs(values[k]["vifp"] - want) / want)
        else:
            want32 = piq.vif_p(_t(rec), _t(ref), data_range=255.0).item()
            assert values[k]["vifp"] == pytest.approx(want32, rel=5e-4), k
    print(f"VIFp worst relative difference vs piq float64: {worst:.2e}")


def test_quality_orders_with_jpeg_quality(values):
    """Lower JPEG quality: higher LPIPS, lower PSNR / MS-SSIM / VIFp, for every image."""
    for cls in CLASSES:
        row = [values[(cls, q)] for q in QUALITIES]  # quality 90 -> 10
        lp = [r["lpips"] for r in row]
        assert all(a < b for a, b in zip(lp, lp[1:])), (cls, lp)
        for key in ("psnr", "msssim", "vifp"):
            v = [r[key] for r in row]
            assert all(a > b for a, b in zip(v, v[1:])), (cls, key, v)
