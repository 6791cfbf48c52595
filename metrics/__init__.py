"""rsicbench.metrics: bpp, PSNR (two peak conventions), MS-SSIM, LPIPS, VIFp, ROI-PSNR, BD.

Conventions are documented in docs/metrics.md and each module's docstring.
"""

from rsicbench.metrics.bd import BDResult, bd_delta, bd_psnr, bd_rate, bootstrap_bd
from rsicbench.metrics.psnr import bpp, psnr, psnr_band, roi_psnr
from rsicbench.metrics.suite import METRIC_KEYS, MetricSuite
from rsicbench.metrics.validate import MetricInputError

__all__ = [
    "BDResult", "bd_delta", "bd_psnr", "bd_rate", "bootstrap_bd",
    "METRIC_KEYS", "MetricInputError", "MetricSuite", "bpp", "psnr", "psnr_band", "roi_psnr"]
