"""rsicbench.metrics: bpp, PSNR (two peak conventions), MS-SSIM, LPIPS, VIFp, ROI-PSNR, BD.

Conventions are documented in docs/metrics.md and each module's docstring.
MetricSuite and METRIC_KEYS are imported lazily (they need torch), so the numpy-only parts
(psnr, bd, aggregate, compressai_json) load fast.
"""

from __future__ import annotations

from rsicbench.metrics.bd import BDResult, bd_delta, bd_psnr, bd_rate, bd_table, bootstrap_bd
from rsicbench.metrics.psnr import bpp, psnr, psnr_band, roi_psnr
from rsicbench.metrics.validate import MetricInputError

__all__ = [
    "BDResult", "bd_delta", "bd_psnr", "bd_rate", "bd_table", "bootstrap_bd",
    "METRIC_KEYS", "MetricInputError", "MetricSuite", "bpp", "psnr", "psnr_band", "roi_psnr",
]  # fmt: skip


def __getattr__(name: str):
    if name in ("MetricSuite", "METRIC_KEYS"):
        from rsicbench.metrics import suite

        return getattr(suite, name)
    raise AttributeError(f"module 'rsicbench.metrics' has no attribute {name!r}")
