"""Aggregating per-image values: the mean of per-image values, with a stated rule for inf.

* Every summary value is the mean over images of the per-image values (not the metric of
  a mean image, not PSNR of the mean MSE), also for PSNR and MS-SSIM-dB.
* +inf (identical images: PSNR, ROI-PSNR, MS-SSIM-dB) is capped at PSNR_CAP_DB = 100 dB
  before averaging, so one lossless image does not make the mean infinite; the number of
  capped images is reported as `<key>_n_inf`. 100 dB is above anything an 8-bit lossy
  codec reaches (one wrong grey level in a 256x256x3 image is 106.9 dB, so this only
  matters for exact reconstructions).
* nan (metric not defined for that image, e.g. roi_psnr without a mask) is skipped and
  counted in `<key>_n`; all-nan gives nan.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

PSNR_CAP_DB = 100.0
DB_KEYS = frozenset({"psnr", "psnr_band", "msssim_db", "roi_psnr"})


def capped(values: Iterable[float], key: str) -> np.ndarray:
    """Per-image values as float64, with +inf replaced by PSNR_CAP_DB for dB metrics."""
    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if key in DB_KEYS:
        a = np.where(np.isposinf(a), PSNR_CAP_DB, a)
    return a


def _num(v) -> float:
    """A per-image value as float; missing (None, '') is nan."""
    return math.nan if v is None or v == "" else float(v)


def summarize(rows: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """{key: mean, key_std: population std, key_n: images with a value, key_n_inf: capped}."""
    out: dict[str, float] = {"n_images": len(rows)}
    for k in keys:
        raw = np.asarray([_num(r.get(k)) for r in rows], dtype=np.float64)
        vals = capped(raw, k)
        ok = ~np.isnan(vals)
        n = int(ok.sum())
        out[k] = float(vals[ok].mean()) if n else math.nan
        out[f"{k}_std"] = float(vals[ok].std()) if n else math.nan
        out[f"{k}_n"] = n
        if k in DB_KEYS:
            out[f"{k}_n_inf"] = int(np.isposinf(raw).sum())
    if "msssim" in keys and out.get("msssim_n"):
        m = out["msssim"]
        # CompressAI plots -10*log10(1 - mean MS-SSIM); given too, under its own name.
        out["msssim_db_of_mean"] = math.inf if m >= 1 else -10.0 * math.log10(1.0 - m)
    return out
