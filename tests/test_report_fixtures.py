"""A tiny pipeline-output tree in the layout of docs/architecture.md, for the report tests.

Rates and PSNRs are real: each fixture "codec" is Pillow JPEG at its own quality ladder
(names only label them), run on small generated images; recon PNGs are the decoded images.
MS-SSIM/LPIPS/VIFp are simple monotone functions of the measured MSE (their real
implementations belong to rsicbench.metrics and are too slow for a unit-test fixture).
BD rows are computed from the fixture's own means with the `bjontegaard` package.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

COLUMNS = ["image", "width", "height", "bytes", "bpp", "psnr", "psnr_band", "msssim", "msssim_db", "lpips",
           "vifp", "roi_psnr", "enc_s", "dec_s", "error"]
CLASSES = ("agricultural", "harbor")
# codec -> (qtag -> JPEG quality); the 4:2:0 codecs differ from the 4:4:4 ones, so curves differ
CODECS = {
    "jpeg2000": ({"q10": 10, "q30": 30, "q60": 60, "q90": 90}, 2),
    "jpeg": ({"q10": 8, "q30": 25, "q60": 50, "q90": 85}, 0),
    "ltchm": ({"r1": 15, "r2": 35, "r3": 65, "r4": 92}, 2),
    "ltchm-no_dam": ({"r1": 12, "r2": 30, "r3": 55, "r4": 88}, 2),
    "mroi-cfhpm": ({"r1": 20, "r2": 40, "r3": 70, "r4": 95}, 1),
}


def _image(rng: np.random.Generator, k: int) -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    base = np.stack([x * (2 + k % 3), y * 3, (x + y) * 1.5 + 20 * np.sin(x / (3 + k))], axis=2)
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, q: int, subsampling: int) -> tuple[bytes, np.ndarray]:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q, subsampling=subsampling)
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def make_tree(root: Path, n_per_class: int = 6) -> dict:
    """Write data/, results/ and claims/ under root; returns facts the tests check against."""
    rng = np.random.default_rng(7)
    data = root / "data" / "ucmerced"
    relpaths, images = [], {}
    man = ["relpath\tclass\twidth\theight\tsha256_rgb"]
    for ci, cls in enumerate(CLASSES):
        for i in range(n_per_class):
            rp = f"{cls}/{cls}{i:02d}.png"
            img = _image(rng, ci * 10 + i)
            (data / "images" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(data / "images" / rp)
            relpaths.append(rp)
            images[rp] = img
            man.append(f"{rp}\t{cls}\t64\t64\t{'0' * 64}")
    (data / "manifest.tsv").write_text("\n".join(man) + "\n")
    test = sorted(rp for rp in relpaths if int(rp[-6:-4]) % 3 == 0)
    val = sorted(rp for rp in relpaths if int(rp[-6:-4]) % 3 == 1)
    train = sorted(set(relpaths) - set(test) - set(val))
    (data / "splits").mkdir()
    for name, lst in {"train": train, "val": val, "test": test, "classifier_train": train, "classifier_val": val}.items():
        (data / "splits" / f"{name}.txt").write_text("\n".join(lst) + "\n")

    rd = root / "results" / "rd" / "ucmerced"
    means: dict[str, list[tuple[float, float]]] = {}
    for codec, (ladder, sub) in CODECS.items():
        curve = []
        for qtag, q in ladder.items():
            rows = []
            for j, rp in enumerate(test):
                img = images[rp]
                data_bytes, rec = _jpeg(img, q, sub)
                mse = float(np.mean((img.astype(np.float64) - rec) ** 2))
                psnr = 10 * math.log10(255 ** 2 / max(mse, 1e-10))
                ms = 1 - mse / (mse + 400)
                out = root / "results" / "rd" / "ucmerced" / codec / qtag / "recon" / rp
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rec).save(out)
                failed = codec == "jpeg" and qtag == "q10" and j == 0
                rows.append({
                    "image": rp, "width": 64, "height": 64, "bytes": len(data_bytes),
                    "bpp": 8 * len(data_bytes) / (64 * 64), "psnr": psnr, "psnr_band": psnr, "msssim": ms,
                    "msssim_db": -10 * math.log10(1 - ms), "lpips": mse / (mse + 300), "vifp": 1 - mse / (mse + 900),
                    "roi_psnr": psnr + 1.5 if codec.startswith("mroi") else "", "enc_s": 0.001, "dec_s": 0.001,
                    "error": "decoder crashed (fixture)" if failed else "",
                })
                if failed:
                    for k in COLUMNS[1:-1]:
                        rows[-1][k] = ""
            _write_csv(rd / codec / qtag / "per_image.csv", rows)
            ok = [r for r in rows if not r["error"]]
            summary = {"codec": codec, "qtag": qtag, "n": len(ok),
                       "bpp": float(np.mean([r["bpp"] for r in ok])), "psnr": float(np.mean([r["psnr"] for r in ok]))}
            (rd / codec / qtag / "summary.json").write_text(json.dumps(summary, sort_keys=True, indent=2))
            curve.append(summary)
        curve.sort(key=lambda s: s["bpp"])
        (rd / f"{codec}.json").write_text(json.dumps(curve, sort_keys=True, indent=2))
        means[codec] = [(s["bpp"], s["psnr"]) for s in curve]

    import bjontegaard as bd

    ra, da = zip(*means["jpeg2000"])
    bd_rows = []
    for codec in sorted(means):
        if codec == "jpeg2000":
            continue
        rt, dt = zip(*means[codec])
        r = float(bd.bd_rate(ra, da, rt, dt, method="akima"))
        p = float(bd.bd_psnr(ra, da, rt, dt, method="akima"))
        bd_rows.append({"codec": codec, "anchor": "jpeg2000", "bd_rate_psnr": r, "bd_rate_psnr_ci": [r - 2, r + 2],
                        "bd_psnr": p, "bd_psnr_ci": [p - 0.1, p + 0.1]})
    (root / "results" / "bd").mkdir(parents=True)
    # the shape reproduce/cli_bd.py writes (metrics.bd.bootstrap_bd dicts under codecs)
    entry = lambda v, w: {"value": v, "ci_low": v - w, "ci_high": v + w, "ci": 0.95, "valid": True,  # noqa: E731
                          "warnings": [], "method": "pchip"}
    (root / "results" / "bd" / "ucmerced.json").write_text(json.dumps({"anchor": "jpeg2000", "codecs": {
        r["codec"]: {"anchor_points": 4, "bd_rate_psnr": entry(r["bd_rate_psnr"], 2.0), "bd_psnr": entry(r["bd_psnr"], 0.1)}
        for r in bd_rows}}, indent=2))

    (root / "results" / "complexity").mkdir(parents=True)
    (root / "results" / "complexity" / "ltchm.json").write_text(json.dumps(
        {"model": "ltchm", "params": 12_345_678, "flops": 98_700_000_000, "timing": {"enc_s": 0.21, "dec_s": 0.34},
         "peak_memory_mb": 812.5}))

    ds = root / "results" / "downstream" / "ucmerced"
    ds.mkdir(parents=True)
    cm = [[5, 1], [2, 4]]
    (ds / "oa.json").write_text(json.dumps({"rows": [
        {"codec": "original", "oa": 0.75, "confusion": cm, "classes": list(CLASSES)},
        {"codec": "jpeg", "qtag": "q30", "oa": 0.5, "bpp": 0.61},
    ]}))

    roi_dir = root / "results" / "roi"
    roi_dir.mkdir(parents=True)
    (roi_dir / "agdl_rd_ucmerced.json").write_text(json.dumps({"dataset": "ucmerced", "profile": "default", "curves": {
        "agdl": [{"quality": 10, "bpp": 0.41, "psnr": 30.25, "roi_psnr": 33.75, "images": 4}]}}))
    (roi_dir / "cloud_detector_38cloud.json").write_text(json.dumps({"38cloud": {"iou": 0.8125, "precision": 0.9}}))

    bd_ltchm = next(r for r in bd_rows if r["codec"] == "ltchm")
    claims = {
        "paper": "LTCHM", "citation": "fixture", "source": "none",
        "claims": [
            {"id": "t3_bd_ucm", "ref": "Table 3", "dataset": "ucmerced", "quantity": "bd_rate_psnr", "subject": "ltchm",
             "anchor": "jpeg2000", "value": round(bd_ltchm["bd_rate_psnr"] + 1.0, 3), "unit": "%"},
            {"id": "t3_bd_far", "ref": "Table 3", "dataset": "ucmerced", "quantity": "bd_psnr", "subject": "ltchm",
             "anchor": "jpeg2000", "value": round(bd_ltchm["bd_psnr"] + 5.0, 3), "unit": "dB"},
            {"id": "t5_ablation_dam", "ref": "Table 5", "dataset": "ucmerced", "quantity": "bd_rate_psnr",
             "subject": "ltchm-no_dam", "anchor": "ltchm", "value": 4.2, "unit": "%"},
            {"id": "t4_params", "ref": "Table 4", "quantity": "params", "subject": "ltchm", "value": 12.3, "unit": "M"},
            {"id": "t3_bd_nwpu", "ref": "Table 3", "dataset": "nwpu", "quantity": "bd_rate_psnr", "subject": "ltchm",
             "anchor": "jpeg2000", "value": -20.0, "unit": "%"},
        ],
    }
    import yaml

    (root / "claims").mkdir()
    (root / "claims" / "ltchm.yaml").write_text(yaml.safe_dump(claims, sort_keys=False))
    return {"test": test, "bd": bd_rows, "codecs": sorted(CODECS)}
