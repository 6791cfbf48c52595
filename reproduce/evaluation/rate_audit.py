"""Rate audit of a learned codec: per image the real entropy-coded bytes against the model's
likelihood estimate, written beside the evaluated rate point (rate_check.csv / .json)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from rsicbench import results
from rsicbench.fsutil import write_json, write_text


def rate_check(codec, samples, out_dir: Path) -> dict:
    """Real vs estimated bpp per image. Real: the engine's container bytes (per_image.csv in
    `out_dir`; images that failed there are left out). Estimated: `codec.estimate_bits`, for
    learned codecs the model's information content of exactly the symbols `encode` codes
    (reproduce/coding/coded_info.py), not the eval-mode forward."""
    from rsicbench.imageio import read_rgb

    table = results.read_per_image(out_dir / results.PER_IMAGE)
    real = {r["image"]: r["bpp"] for r in table.rows if not math.isnan(r["bpp"])}
    rows = []
    for s in sorted(samples, key=lambda s: s.relpath):
        if s.relpath not in real:
            continue
        img = read_rgb(s.path)
        est = codec.estimate_bits(img) / (img.shape[0] * img.shape[1])
        rows.append({"image": s.relpath, "bpp_real": real[s.relpath], "bpp_est": est,
                     "ratio": real[s.relpath] / est if est else None})
    if not rows:
        raise RuntimeError(f"{table.path}: no successfully coded image to check the rate of")
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["image", "bpp_real", "bpp_est", "ratio"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out_dir / "rate_check.csv", buf.getvalue())
    n = len(rows)
    summary = {"n_images": n, "bpp_real_mean": sum(r["bpp_real"] for r in rows) / n,
               "bpp_est_mean": sum(r["bpp_est"] for r in rows) / n}
    summary["real_over_est"] = summary["bpp_real_mean"] / summary["bpp_est_mean"] if summary["bpp_est_mean"] else None
    write_json(out_dir / "rate_check.json", summary)
    return summary
