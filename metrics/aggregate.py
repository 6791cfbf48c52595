"""Aggregating per-image values by the one averaging rule of rsicbench.results.

* Every summary value is the mean over images of the per-image values (not the metric of
  a mean image, not PSNR of the mean MSE), also for PSNR and MS-SSIM-dB.
* +inf (identical images: PSNR, ROI-PSNR, MS-SSIM-dB) is capped at PSNR_CAP_DB = 100 dB
  before averaging, so one lossless image does not make the mean infinite; the number of
  capped images is reported as `<key>_n_inf`. The engine's summary.json, BD, ablation,
  downstream and the report average the same way (`rsicbench.results.average`).
* nan (metric not defined for that image, e.g. roi_psnr without a mask) is skipped and
  counted in `<key>_n`; all-nan gives nan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rsicbench.results import DB_KEYS, PSNR_CAP_DB, average, capped

__all__ = ["DB_KEYS", "PSNR_CAP_DB", "capped", "summarize"]


def summarize(rows: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """{key: mean, key_std: population std, key_n: images with a value, key_n_inf: capped}."""
    out: dict[str, float] = {"n_images": len(rows)}
    for k in keys:
        avg = average([r.get(k) for r in rows], k)
        out[k] = avg.mean
        out[f"{k}_std"] = avg.std
        out[f"{k}_n"] = avg.n
        if k in DB_KEYS:
            out[f"{k}_n_inf"] = avg.n_inf
    if "msssim" in keys and out.get("msssim_n"):
        m = out["msssim"]
        # CompressAI plots -10*log10(1 - mean MS-SSIM); given too, under its own name.
        out["msssim_db_of_mean"] = math.inf if m >= 1 else -10.0 * math.log10(1.0 - m)
    return out
