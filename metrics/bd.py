"""Bjontegaard deltas (BD-rate, BD-PSNR, BD-delta of any quality metric) and bootstrap CIs.

The arithmetic is the `bjontegaard` package's (FAU, v1.3): pchip interpolation by default
(the JVET/HEVC common-test-conditions method), 'cubic' = the VCEG-M33 cubic polynomial fit,
'akima' also accepted. Rates are in log10 as usual.

Sign conventions (fixed, tested):
* bd_rate: percent rate change of *test* vs *anchor* at equal quality; negative = the test
  codec saves bits. A test curve that needs exactly (1 + x/100) times the anchor's rate at
  every quality gives x.
* bd_psnr / bd_delta: mean quality difference test - anchor at equal rate, in the metric's
  own unit (dB for PSNR, MS-SSIM-dB). Positive = better for higher-is-better metrics
  (PSNR, MS-SSIM, VIFp); for LPIPS (lower is better) negative = better.

What this module adds around the package: input checks, sorting, and detection of curves
it would silently mis-handle. Problems never raise; they are reported in
BDResult.warnings, with valid=False:
* fewer points than the method needs (pchip 2, cubic 4, akima 2), non-finite values,
  rates <= 0, repeated rates;
* BD-rate: quality not strictly monotonic in rate (rate as a function of quality does not
  exist) -> value nan; BD-quality: quality not monotonic -> value computed but flagged;
* overlap of the integration intervals below `min_overlap` of their union (default 0.75,
  the package's own threshold) -> value computed but flagged; no overlap -> nan.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

MIN_POINTS = {"pchip": 2, "akima": 2, "cubic": 4}
DEFAULT_MIN_OVERLAP = 0.75


@dataclass
class BDResult:
    value: float
    valid: bool
    warnings: list[str] = field(default_factory=list)
    kind: str = "rate"  # "rate" (percent) or "quality" (metric units)
    method: str = "pchip"
    overlap: float = math.nan  # intersection / union of the integration intervals

    def as_dict(self) -> dict:
        return {"value": self.value, "valid": self.valid, "warnings": list(self.warnings),
                "kind": self.kind, "method": self.method, "overlap": self.overlap}


def _curve(rate, dist, name: str, problems: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    r = np.asarray(rate, dtype=np.float64).ravel()
    d = np.asarray(dist, dtype=np.float64).ravel()
    if r.size != d.size:
        problems.append(f"{name}: {r.size} rate points but {d.size} quality points")
        return None
    if not (np.isfinite(r).all() and np.isfinite(d).all()):
        problems.append(f"{name}: non-finite rate or quality values")
        return None
    if (r <= 0).any():
        problems.append(f"{name}: rates must be > 0 (log scale)")
        return None
    order = np.argsort(r, kind="stable")
    r, d = r[order], d[order]
    if (np.diff(r) == 0).any():
        problems.append(f"{name}: repeated rate values")
        return None
    return r, d


def _strictly_monotonic(d: np.ndarray) -> bool:
    s = np.diff(d)
    return bool((s > 0).all() or (s < 0).all())


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    union = max(a.max(), b.max()) - min(a.min(), b.min())
    return max(hi - lo, 0.0) / union if union > 0 else 0.0


def _bd(kind: str, anchor_rate, anchor_dist, test_rate, test_dist, method: str, min_overlap: float) -> BDResult:
    import bjontegaard

    if method not in MIN_POINTS:
        raise ValueError(f"unknown BD interpolation method {method!r}; choose pchip, cubic or akima")
    problems: list[str] = []
    res = BDResult(math.nan, False, problems, kind, method)
    a = _curve(anchor_rate, anchor_dist, "anchor", problems)
    t = _curve(test_rate, test_dist, "test", problems)
    if a is None or t is None:
        return res
    for name, (r, _) in (("anchor", a), ("test", t)):
        if r.size < MIN_POINTS[method]:
            problems.append(f"{name}: {r.size} rate points; {method} needs at least {MIN_POINTS[method]}")
    if problems:
        return res
    fatal = False
    for name, (_, d) in (("anchor", a), ("test", t)):
        if not _strictly_monotonic(d):
            problems.append(f"{name}: quality is not strictly monotonic in rate")
            fatal = fatal or kind == "rate"
    if kind == "rate" and not fatal:
        da, dt = np.diff(a[1]), np.diff(t[1])
        if (da[0] > 0) != (dt[0] > 0):
            problems.append("anchor and test quality run in opposite directions with rate")
            fatal = True
    if fatal:
        return res
    xa, xt = (a[1], t[1]) if kind == "rate" else (np.log10(a[0]), np.log10(t[0]))
    res.overlap = _overlap(xa, xt)
    if res.overlap == 0:
        problems.append("curves do not overlap; BD is undefined")
        return res
    if res.overlap < min_overlap:
        problems.append(f"small overlap: {100 * res.overlap:.1f}% of the union (minimum {100 * min_overlap:.0f}%)")
    # The package's interpolators need increasing x; for BD-rate x is quality.
    if kind == "rate" and a[1][0] > a[1][-1]:
        a = (a[0][::-1], a[1][::-1])
        t = (t[0][::-1], t[1][::-1])
    fn = bjontegaard.bd_rate if kind == "rate" else bjontegaard.bd_psnr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(fn(a[0], a[1], t[0], t[1], method, require_matching_points=False, min_overlap=0.0))
        except (ValueError, np.linalg.LinAlgError, AssertionError) as e:
            problems.append(f"bjontegaard failed: {type(e).__name__}: {e}")
            return res
    problems.extend(str(w.message) for w in caught)
    res.value = value if math.isfinite(value) else math.nan
    if not math.isfinite(value):
        problems.append("non-finite BD value")
    res.valid = not problems
    return res


def bd_rate(anchor_rate, anchor_dist, test_rate, test_dist, method: str = "pchip",
            min_overlap: float = DEFAULT_MIN_OVERLAP) -> BDResult:
    """BD-rate in percent (negative = test saves bits vs anchor at equal quality)."""
    return _bd("rate", anchor_rate, anchor_dist, test_rate, test_dist, method, min_overlap)


def bd_psnr(anchor_rate, anchor_dist, test_rate, test_dist, method: str = "pchip",
            min_overlap: float = DEFAULT_MIN_OVERLAP) -> BDResult:
    """BD-quality: mean (test - anchor) quality at equal rate, in the metric's unit."""
    return _bd("quality", anchor_rate, anchor_dist, test_rate, test_dist, method, min_overlap)


bd_delta = bd_psnr  # the same computation for MS-SSIM-dB, LPIPS, VIFp


BD_METRICS = ("psnr", "psnr_band", "msssim_db", "lpips", "vifp")


def bd_table(anchor_points, test_points, metrics=BD_METRICS, method: str = "pchip",
             min_overlap: float = DEFAULT_MIN_OVERLAP, rate_key: str = "bpp") -> dict[str, dict]:
    """BD-rate and BD-delta for each metric between two RD curves.

    anchor_points / test_points: lists of per-rate-point summaries ({"bpp": ..., "psnr": ...});
    +inf is capped as in rsicbench.results (the one averaging rule). Returns {"bd_rate_<m>": BDResult.as_dict(),
    "bd_<m>": BDResult.as_dict()} for every metric present in both curves.
    """
    from rsicbench.results import capped

    out: dict[str, dict] = {}
    ar = [float(p[rate_key]) for p in anchor_points]
    tr = [float(p[rate_key]) for p in test_points]
    for m in metrics:
        if not all(m in p for p in anchor_points) or not all(m in p for p in test_points):
            continue
        aq = capped([float(p[m]) for p in anchor_points], m)
        tq = capped([float(p[m]) for p in test_points], m)
        out[f"bd_rate_{m}"] = bd_rate(ar, aq, tr, tq, method=method, min_overlap=min_overlap).as_dict()
        out[f"bd_{m}"] = bd_delta(ar, aq, tr, tq, method=method, min_overlap=min_overlap).as_dict()
    return out


def _mean_curve(per_image: Mapping[str, np.ndarray], key: str, cols: np.ndarray) -> np.ndarray:
    from rsicbench.results import capped

    a = np.asarray(per_image[key], dtype=np.float64)
    return capped(a[:, cols].ravel(), key).reshape(a.shape[0], -1).mean(axis=1)


def bootstrap_bd(anchor_per_image: Mapping[str, np.ndarray], test_per_image: Mapping[str, np.ndarray],
                 metric: str, kind: str = "rate", n_boot: int = 1000, seed: int = 0,
                 method: str = "pchip", rate_key: str = "bpp", ci: float = 0.95,
                 min_overlap: float = DEFAULT_MIN_OVERLAP) -> dict:
    """BD with a percentile bootstrap confidence interval over test images.

    anchor_per_image / test_per_image: {metric: array (rate points x images)}, including
    `rate_key` (bpp). Column j of every array must be the same image j in anchor and test
    (paired resampling: a resample draws image indices with replacement, the same for both
    codecs). For each resample: the mean curve over the drawn images (inf capped as in
    rsicbench.results), then BD. `value` is BD on the full-sample mean curves; `ci_low/ci_high`
    the (1-ci)/2 and (1+ci)/2 percentiles of the resampled values; resamples whose BD is
    nan (e.g. a non-monotonic mean curve) are counted in `n_failed` and left out.
    """
    if kind not in ("rate", "quality"):
        raise ValueError(f"kind must be 'rate' or 'quality', got {kind!r}")
    for name, d in (("anchor", anchor_per_image), ("test", test_per_image)):
        for k in (rate_key, metric):
            if k not in d:
                raise KeyError(f"{name}_per_image has no {k!r} array")
    shapes = {np.asarray(d[k]).shape for d in (anchor_per_image, test_per_image) for k in (rate_key, metric)}
    if len({s[1] if len(s) == 2 else None for s in shapes}) != 1 or any(len(s) != 2 for s in shapes):
        raise ValueError(f"per-image arrays must be 2-D (rate points x images) with the same images; got {sorted(shapes)}")
    n_img = next(iter(shapes))[1]
    fn = bd_rate if kind == "rate" else bd_psnr

    def one(cols: np.ndarray) -> BDResult:
        return fn(_mean_curve(anchor_per_image, rate_key, cols), _mean_curve(anchor_per_image, metric, cols),
                  _mean_curve(test_per_image, rate_key, cols), _mean_curve(test_per_image, metric, cols),
                  method=method, min_overlap=min_overlap)

    full = one(np.arange(n_img))
    rng = np.random.default_rng(seed)
    vals = []
    failed = 0
    for _ in range(int(n_boot)):
        r = one(rng.integers(0, n_img, size=n_img))
        if math.isnan(r.value):
            failed += 1
        else:
            vals.append(r.value)
    lo = hi = math.nan
    if vals:
        lo, hi = (float(v) for v in np.percentile(vals, [50 * (1 - ci), 50 * (1 + ci)]))
    return {"value": full.value, "valid": full.valid, "warnings": full.warnings, "ci_low": lo, "ci_high": hi,
            "ci": ci, "n_boot": int(n_boot), "n_failed": failed, "n_images": int(n_img), "method": method,
            "kind": kind, "metric": metric}
