"""bpp, PSNR (two peak conventions) and ROI-PSNR.

Conventions (docs/metrics.md):
* `psnr`: peak 255 on 8-bit RGB, MSE over all pixels and the three channels jointly
  (CompressAI, MROI-CFHPM).
* `psnr_band`: per band b, 10*log10(max(X_b)^2 / MSE_b) with max(X_b) the maximum of band b
  of the *original*, then the mean over bands (MGSS-Net eq. 10, DMENet eq. 16). A band whose
  original is all zeros has no defined peak; we use peak 1 (the smallest non-zero 8-bit
  value) so the value stays finite and monotone in the MSE.
* `roi_psnr`: peak 255, MSE over the pixels where the mask is True (all three channels).
* MSE == 0 (identical images) gives +inf. Per-image values keep inf; summaries cap it (see
  rsicbench.metrics.aggregate).
All MSEs are computed in float64 from the integer pixel values, so they are exact up to
float64 rounding.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from rsicbench.metrics.validate import MetricInputError, check_mask, check_pair

PEAK = 255.0


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a real bitstream: 8 * bytes / (H * W) of the original, unpadded image."""
    if isinstance(num_bytes, bool) or int(num_bytes) != num_bytes or num_bytes < 0:
        raise MetricInputError(f"bpp: num_bytes must be a non-negative integer, got {num_bytes!r}")
    if int(height) != height or int(width) != width or height <= 0 or width <= 0:
        raise MetricInputError(f"bpp: height and width must be positive integers, got {height!r}x{width!r}")
    return 8.0 * int(num_bytes) / (int(height) * int(width))


def mse_to_psnr(mse: float, peak: float = PEAK) -> float:
    """10*log10(peak^2 / mse); +inf when mse == 0."""
    if mse < 0 or math.isnan(mse):
        raise MetricInputError(f"invalid MSE {mse}")
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _diff(ref: np.ndarray, rec: np.ndarray) -> np.ndarray:
    return ref.astype(np.float64) - rec.astype(np.float64)


def psnr(ref, rec) -> float:
    """PSNR with peak 255 over all pixels and channels (dB; +inf for identical images)."""
    r, d = check_pair(ref, rec)
    return mse_to_psnr(float(np.mean(_diff(r, d) ** 2)))


def band_peaks(ref: np.ndarray) -> np.ndarray:
    """Per-band peak of the original: max of each band, floored at 1 (see module docstring)."""
    return np.maximum(ref.reshape(-1, ref.shape[-1]).max(axis=0).astype(np.float64), 1.0)


def psnr_band(ref, rec) -> float:
    """Mean over bands of 10*log10(max(X_b)^2 / MSE_b) (MGSS-Net eq. 10, DMENet eq. 16)."""
    r, d = check_pair(ref, rec)
    mses = np.mean(_diff(r, d).reshape(-1, 3) ** 2, axis=0)
    peaks = band_peaks(r)
    return float(np.mean([mse_to_psnr(float(m), float(p)) for m, p in zip(mses, peaks)]))


def roi_psnr(ref, rec, roi_mask) -> float:
    """PSNR (peak 255) over the pixels where `roi_mask` is True; nan (with a warning) if empty.

    `roi_mask` is HxW, True = region of interest (e.g. the non-cloud pixels for
    MROI-CFHPM, the salient object for AGDL). None gives nan: there is no ROI.
    """
    if roi_mask is None:
        return math.nan
    r, d = check_pair(ref, rec)
    m = check_mask(roi_mask, r.shape[:2])
    n = int(m.sum())
    if n == 0:
        warnings.warn("roi_psnr: the ROI mask is empty; ROI-PSNR is undefined (nan)", RuntimeWarning, stacklevel=2)
        return math.nan
    return mse_to_psnr(float(np.mean(_diff(r[m], d[m]) ** 2)))
