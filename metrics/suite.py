"""MetricSuite: every per-image metric of the suite, batched on torch, CPU or GPU.

    suite = MetricSuite(device="cpu")
    vals = suite(ref, rec, roi_mask=None)          # one pair -> {key: float}
    rows = suite.compute_batch(refs, recs, masks)  # list of dicts, same keys

Keys (METRIC_KEYS, in this order): psnr, psnr_band, msssim, msssim_db, lpips, vifp, roi_psnr.
A metric switched off (lpips=False, ...) is reported as nan, so every row has every key.
Definitions and conventions: docs/metrics.md and the module docstrings (psnr.py, msssim.py,
vifp.py, lpips_alex.py). Pairs of different sizes are grouped by size, then batched.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from rsicbench.metrics import lpips_alex, msssim, vifp
from rsicbench.metrics.psnr import PEAK
from rsicbench.metrics.validate import MetricInputError, check_mask, check_pair
from rsicbench.results import METRIC_COLUMNS

METRIC_KEYS: tuple[str, ...] = METRIC_COLUMNS  # the per-image CSV contract (rsicbench.results)


def _psnr_from_mse(mse: torch.Tensor, peak: torch.Tensor | float) -> torch.Tensor:
    """10*log10(peak^2/mse) elementwise; +inf where mse == 0 (float64)."""
    peak_sq = torch.as_tensor(peak, dtype=torch.float64, device=mse.device) ** 2
    out = 10.0 * torch.log10(peak_sq / mse)
    return torch.where(mse == 0, torch.full_like(out, math.inf), out)


class MetricSuite:
    """All image-quality metrics for (original, reconstruction) pairs of 8-bit RGB arrays."""

    def __init__(
        self,
        device: str = "cpu",
        lpips: bool = True,
        vifp: bool = True,
        msssim: bool = True,
        lpips_weights: str | os.PathLike | None = None,
        batch_size: int = 16,
    ):
        self.device = torch.device(device)
        self.use_lpips, self.use_vifp, self.use_msssim = bool(lpips), bool(vifp), bool(msssim)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._lpips = lpips_alex.build_lpips(lpips_weights, device=str(self.device)) if self.use_lpips else None

    @property
    def lpips_weights_source(self) -> str | None:
        return getattr(self._lpips, "weights_source", None)

    def __call__(self, ref, rec, roi_mask=None) -> dict[str, float]:
        return self.compute_batch([ref], [rec], None if roi_mask is None else [roi_mask])[0]

    def compute_batch(
        self,
        refs: Sequence[np.ndarray],
        recs: Sequence[np.ndarray],
        roi_masks: Sequence[np.ndarray | None] | None = None,
    ) -> list[dict[str, float]]:
        """Per-pair metric dicts, in input order."""
        if len(refs) != len(recs):
            raise MetricInputError(f"{len(refs)} references but {len(recs)} reconstructions")
        if roi_masks is not None and len(roi_masks) != len(refs):
            raise MetricInputError(f"{len(roi_masks)} ROI masks for {len(refs)} image pairs")
        pairs, masks = [], []
        for i, (a, b) in enumerate(zip(refs, recs)):
            try:
                r, d = check_pair(a, b)
                m = None if roi_masks is None or roi_masks[i] is None else check_mask(roi_masks[i], r.shape[:2])
            except MetricInputError as e:
                raise MetricInputError(f"pair {i}: {e}") from None
            pairs.append((r, d))
            masks.append(m)
        by_shape: dict[tuple, list[int]] = defaultdict(list)
        for i, (r, _) in enumerate(pairs):
            by_shape[r.shape].append(i)
        out: list[dict[str, float] | None] = [None] * len(pairs)
        for shape in sorted(by_shape):
            idx = by_shape[shape]
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s : s + self.batch_size]
                rows = self._batch([pairs[i] for i in chunk], [masks[i] for i in chunk])
                for i, row in zip(chunk, rows):
                    out[i] = row
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _batch(self, pairs, masks) -> list[dict[str, float]]:
        n = len(pairs)
        ref8 = torch.from_numpy(np.stack([p[0] for p in pairs])).to(self.device).permute(0, 3, 1, 2)
        rec8 = torch.from_numpy(np.stack([p[1] for p in pairs])).to(self.device).permute(0, 3, 1, 2)
        cols: dict[str, list[float]] = {}

        # PSNRs in float64: integer differences, so the MSE is exact up to float64 rounding.
        sq = (ref8.double() - rec8.double()) ** 2  # (N, 3, H, W)
        cols["psnr"] = _psnr_from_mse(sq.mean(dim=(1, 2, 3)), PEAK).tolist()
        peaks = ref8.amax(dim=(2, 3)).double().clamp(min=1.0)  # (N, 3), see psnr.py
        cols["psnr_band"] = _psnr_from_mse(sq.mean(dim=(2, 3)), peaks).mean(dim=1).tolist()
        roi = []
        for k, m in enumerate(masks):
            if m is None:
                roi.append(math.nan)
            elif not m.any():
                warnings.warn("roi_psnr: the ROI mask is empty; ROI-PSNR is undefined (nan)", RuntimeWarning, stacklevel=3)
                roi.append(math.nan)
            else:
                mt = torch.from_numpy(m).to(self.device)
                roi.append(float(_psnr_from_mse(sq[k][:, mt].mean(), PEAK)))
        cols["roi_psnr"] = roi

        ref = ref8.float()
        rec = rec8.float()
        nan = [math.nan] * n
        if self.use_msssim:
            ms = msssim.ms_ssim(ref, rec).tolist()
            cols["msssim"] = ms
            cols["msssim_db"] = [msssim.msssim_db(v) for v in ms]
        else:
            cols["msssim"], cols["msssim_db"] = nan, nan
        cols["lpips"] = lpips_alex.lpips_distance(self._lpips, ref, rec).tolist() if self.use_lpips else nan
        # VIFp in float64: its E[x^2] - mu^2 variances cancel badly in float32 (piq's own
        # float32 result is up to ~1e-4 off its float64 result; ours in float64 matches
        # piq in float64 to ~1e-13).
        cols["vifp"] = vifp.vif_p(ref8.double(), rec8.double()).tolist() if self.use_vifp else nan
        return [{k: float(cols[k][i]) for k in METRIC_KEYS} for i in range(n)]
