"""How much DMENet's ψ·Loss_MDSE weighs against its distortion D, measured on real reconstructions.

DMENet (Eq. 15) trains with R + λ(D + ψ·Loss_MDSE), ψ = 0.0185, and does not say on which pixel
scale D and Loss_MDSE are computed. Our reading (docs/papers.md): D = 255²·MSE on [0,1] pixels
(CompressAI's λ, the only scale on which the paper's λ list gives usable rates) and MDEI fed
[0,1] pixels. This measures, on UC Merced test images coded by JPEG at several qualities
(real compression errors, no trained model needed), for each image:

* `d` = 255²·MSE (our D), `mdse01` = MSE(MDEI(x̂), MDEI(x)) on [0,1] pixels (our reading),
  `mdse255` = the same on [0,255] pixels (the other consistent reading: both terms on one scale);
* the ratios ψ·mdse01 / d and ψ·mdse255 / d (what the term adds to the loss, relative to D),
* the share of each MDEI branch (HA/VA sigmoid profiles, EEM Laplacian band) in the feature error.

    python benchmarks/bench_mdse_scale.py --images 8        # -> results/bench/mdse_scale.json
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PSI = 0.0185  # DMENet Sec. 4.1 (the model's default, reproduce/models/dmenet/model.py)


def jpeg_roundtrip(rgb, quality: int):
    """(reconstruction, bits per pixel) of one JPEG encode/decode at `quality` (Pillow)."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    bpp = 8 * buf.tell() / (rgb.shape[0] * rgb.shape[1])
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB")), bpp


def branch_errors(mdei, x, y) -> dict[str, float]:
    """MSE between MDEI(x) and MDEI(y) in total and per weighted branch (e·HA, f·EEM, g·VA)."""
    import torch.nn.functional as F

    def parts(t):
        b, ch, h, w = t.shape
        w_ = mdei.w
        ha = mdei._profile(t, (1, 2), w_["a"], w_["b"], mdei.bar_h).view(b, 1, 1, w).expand(b, ch, h, w)
        va = mdei._profile(t, (1, 3), w_["c"], w_["d"], mdei.bar_v).view(b, 1, h, 1).expand(b, ch, h, w)
        total = mdei(t)
        return {"total": total, "ha": w_["e"] * ha, "va": w_["g"] * va, "eem": total - w_["e"] * ha - w_["g"] * va}

    px, py = parts(x), parts(y)
    return {k: float(F.mse_loss(px[k], py[k])) for k in px}


def measure(rgb, rec, mdei) -> dict:
    """The loss terms of one (original, reconstruction) pair of HxWx3 uint8 arrays."""
    import torch

    x, y = (torch.tensor(a).permute(2, 0, 1)[None].float() / 255.0 for a in (rgb, rec))
    with torch.no_grad():
        d = 255.0**2 * float(torch.mean((x - y) ** 2))
        e01 = branch_errors(mdei, x, y)
        e255 = branch_errors(mdei, 255.0 * x, 255.0 * y)
    return {"d": d, "mdse01": e01["total"], "mdse255": e255["total"],
            "ratio01": PSI * e01["total"] / d if d else float("nan"),
            "ratio255": PSI * e255["total"] / d if d else float("nan"),
            "branches01": e01, "branches255": e255}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--qualities", type=int, nargs="+", default=[10, 30, 60, 90])
    ap.add_argument("--out", type=Path, default=Path("results/bench/mdse_scale.json"))
    args = ap.parse_args(argv)

    from _common import pin_threads, ucmerced_images

    pin_threads(2)
    import numpy as np

    from rsicbench.fsutil import atomic_path
    from rsicbench.imageio import read_rgb
    from rsicbench.reproduce.models.dmenet.blocks import MDEI

    paths, source = ucmerced_images("test", args.images, "bench_mdse_scale")
    mdei = MDEI().eval()
    rows = []
    for q in args.qualities:
        for p in paths:
            rgb = read_rgb(str(p))
            rec, bpp = jpeg_roundtrip(rgb, q)
            rows.append({"image": Path(p).name, "quality": q, "bpp": bpp, **measure(rgb, rec, mdei)})
    summary = []
    for q in args.qualities:
        r = [x for x in rows if x["quality"] == q]
        summary.append({"quality": q, "bpp": float(np.mean([x["bpp"] for x in r])),
                        "psnr": float(np.mean([10 * np.log10(255.0**2 / max(x["d"], 1e-12)) for x in r])),
                        "ratio01_median": float(np.median([x["ratio01"] for x in r])),
                        "ratio255_median": float(np.median([x["ratio255"] for x in r])),
                        "eem_share01": float(np.median([x["branches01"]["eem"] / x["mdse01"] for x in r])),
                        "eem_share255": float(np.median([x["branches255"]["eem"] / x["mdse255"] for x in r]))})
    out = {"psi": PSI, "source": source, "images": len(paths), "codec": "JPEG (Pillow)", "summary": summary,
           "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    print("quality  bpp    PSNR   psi*mdse01/D   psi*mdse255/D   EEM share (01 / 255)")
    for s in summary:
        print(f"{s['quality']:7d}  {s['bpp']:.3f}  {s['psnr']:.2f}  {s['ratio01_median']:.3e}      "
              f"{s['ratio255_median']:.3e}       {s['eem_share01']:.3f} / {s['eem_share255']:.3f}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
