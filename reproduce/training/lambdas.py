"""Rate-distortion trade-off λ in each paper's own convention, converted explicitly.

The training loop uses ONE internal convention, CompressAI's (examples/train.py):

    L = R_bpp + λ_ca · 255² · MSE(x, x̂),   pixels in [0, 1]        ("compressai")

Conventions papers use, and their conversion to λ_ca:

| convention | the paper's loss | λ_ca = |
|---|---|---|
| compressai | R + λ·255²·MSE, x in [0,1] (Ballé/Minnen/Cheng as trained by CompressAI) | λ |
| mse01 | R + λ·MSE, x in [0,1] (LTCHM: λ ∈ {128..4096}) | λ / 255² |
| mse255 | R + λ·MSE, x in [0,255] | λ (255² cancels) |
| msssim | R + λ·(1 − MS-SSIM) (CompressAI's MS-SSIM models) | λ, used with the ms-ssim distortion |
| shi_penalty | MGSS-Net / DMENet "penalty coefficient" λ ∈ {0.660 … 0.007}, read as R + λ·255²·MSE | λ |

`shi_penalty` (papers part, docs/papers.md): the two papers (same group) print only the λ
values, not the distortion scale. Read as CompressAI's λ: the low end coincides with
CompressAI's own values (0.007 ≈ q3's 0.0067, 0.013 = q4's 0.0130, 0.033 ≈ q5's 0.025), so
the list is CompressAI's λ extended to much higher rates (0.211-0.660 lie far above q8's
0.18). λ·MSE on [0,1] would give near-zero rates (0.66/255² ≈ 1e-5), λ·MSE on [0,255] is
this same reading. The rates it gives are measured, not assumed (docs/papers.md).

MS-SSIM-trained runs keep λ as is and set `distortion: ms-ssim`; the conversion table is
about MSE scale only. Conventions are named in configs/train.yaml next to each λ list.
"""

from __future__ import annotations

CONVENTIONS = {
    "compressai": (1.0, "R + λ·255²·MSE, pixels in [0,1]"),
    "mse01": (1.0 / 255.0**2, "R + λ·MSE, pixels in [0,1]"),
    "mse255": (1.0, "R + λ·MSE, pixels in [0,255]"),
    "msssim": (1.0, "R + λ·(1 − MS-SSIM)"),
    "shi_penalty": (1.0, "R + λ·255²·MSE, pixels in [0,1] (MGSS-Net/DMENet λ as printed)"),
}


def to_compressai(value: float, convention: str) -> float:
    """λ in `convention` -> the internal CompressAI λ (multiplies 255²·MSE on [0,1] pixels)."""
    try:
        factor = CONVENTIONS[convention][0]
    except KeyError:
        raise ValueError(f"unknown λ convention {convention!r}; known: {', '.join(CONVENTIONS)}") from None
    return float(value) * factor


def conversion_table(models: dict) -> list[dict]:
    """Rows (model, rate, paper λ, convention, internal λ) for every model of the train config."""
    rows = []
    for name in sorted(models):
        spec = models[name]
        conv = spec.get("lambda_convention", "compressai")
        for i, lam in enumerate(spec.get("lambdas", [])):
            rows.append({"model": name, "rate": f"r{i}", "lambda_paper": float(lam),
                         "convention": conv, "lambda_compressai": to_compressai(lam, conv),
                         "paper_loss": CONVENTIONS[conv][1]})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<28} {'rate':<5} {'λ (paper)':>12} {'convention':<11} {'λ (compressai)':>15}  paper loss"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<28} {r['rate']:<5} {r['lambda_paper']:>12.6g} {r['convention']:<11} "
                     f"{r['lambda_compressai']:>15.6g}  {r['paper_loss']}")
    return "\n".join(lines)
