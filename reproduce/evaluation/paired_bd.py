"""Paired-bootstrap confidence interval of one BD value between two codecs' RD curves read
from results/rd/<ds>/ (an ablation variant vs its family baseline), and what it lets us say.

Pairing: only the images coded without error at every fixed-quality point of BOTH codecs
are used; a resample draws image indices with replacement and the SAME drawn set forms both
mean curves (rsicbench.metrics.bd.bootstrap_bd: per-rate-point mean bpp / PSNR of the drawn
images, then BD; fixed seed; percentile interval). Refusals are reported, never hidden:
* fewer than `min_images` common images: no CI (`computable: false`, `reason`); with 1-2
  images every resample is (nearly) the same image set, so a percentile interval would
  only echo the point value;
* a resample whose BD cannot be computed (mean curve not monotonic, ranges not
  overlapping) is counted in `n_failed` and left out; if every resample fails there is no CI.

`difference`: "no difference measured" when the interval includes 0, else the sign of the
measured difference ("test needs fewer bits" / "test needs more bits" for BD-rate).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

NO_DIFFERENCE = "no difference measured"
DEFAULTS = {"n": 1000, "seed": 0, "ci": 0.95, "min_images": 3}


def difference(ci_low: float | None, ci_high: float | None, kind: str = "rate") -> str | None:
    """What an interval says: NO_DIFFERENCE if it includes 0, else the direction; None without one."""
    if ci_low is None or ci_high is None or math.isnan(ci_low) or math.isnan(ci_high):
        return None
    if ci_low <= 0.0 <= ci_high:
        return NO_DIFFERENCE
    if kind == "rate":
        return "test needs fewer bits" if ci_high < 0 else "test needs more bits"
    return "test better" if ci_low > 0 else "test worse"


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def paired_bd_ci(rd_root: Path, dataset: str, anchor: str, test: str, boot: dict[str, Any] | None = None,
                 metric: str = "psnr", kind: str = "rate") -> dict[str, Any]:
    """The paired-bootstrap CI of BD(`test` vs `anchor`) on results/rd/<dataset>/ (module docstring).

    `boot`: {n, seed, ci, min_images} (configs/eval.yaml `bootstrap`; missing keys: DEFAULTS).
    Returns the settings, `n_images`, `value` (BD of the full-sample means), `ci_low`/`ci_high`,
    `n_failed`, `computable`, `reason` (why there is no CI) and `difference`.
    """
    from rsicbench.metrics.bd import bootstrap_bd
    from rsicbench.reproduce.evaluation.bd_table import load_points, per_image_arrays

    b = {**DEFAULTS, **(boot or {})}
    n_boot, seed, level, min_images = int(b["n"]), int(b["seed"]), float(b["ci"]), int(b["min_images"])
    out: dict[str, Any] = {"anchor": anchor, "test": test, "metric": metric, "kind": kind, "n_boot": n_boot,
                           "seed": seed, "ci": level, "min_images": min_images, "n_images": 0, "value": None,
                           "ci_low": None, "ci_high": None, "n_failed": 0, "computable": False, "reason": None,
                           "difference": None}
    try:
        ref, got = load_points(rd_root, dataset, anchor), load_points(rd_root, dataset, test)
    except (FileNotFoundError, ValueError) as e:
        out["reason"] = str(e)
        return out
    images = sorted(set.intersection(*(set(v) for v in [*ref.values(), *got.values()])))
    out["n_images"] = len(images)
    if len(images) < min_images:
        out["reason"] = (f"{len(images)} image(s) coded at every rate point of both {anchor} and {test}; a paired "
                         f"bootstrap needs at least {min_images} (configs/eval.yaml bootstrap.min_images)")
        return out
    if any(math.isnan(pts[q][im][k]) for pts in (ref, got) for q in pts for im in images for k in ("bpp", metric)):
        out["reason"] = f"{metric} or bpp missing for some image of {anchor} or {test}"
        return out
    a = per_image_arrays(ref, images, ["bpp", metric])
    t = per_image_arrays(got, images, ["bpp", metric])
    r = bootstrap_bd(a, t, metric, kind=kind, n_boot=n_boot, seed=seed, ci=level)
    out.update(value=_clean(r["value"]), ci_low=_clean(r["ci_low"]), ci_high=_clean(r["ci_high"]),
               n_failed=int(r["n_failed"]), warnings=list(r["warnings"]))
    if out["ci_low"] is None:
        out["reason"] = f"BD not computable on any of the {n_boot} resamples (curves not monotonic or not overlapping)"
        return out
    out["computable"] = True
    out["difference"] = difference(out["ci_low"], out["ci_high"], kind)
    return out
