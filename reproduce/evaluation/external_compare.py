"""External tools vs the in-process codecs at matched settings: stream size and PSNR.

    python -m rsicbench.reproduce.evaluation.external_compare [--json out.json] IMAGE...

prints one markdown row per (pair, rate point): the range over the images of the stream-size
difference (%) and the PSNR difference (dB), with both sides' library versions. The pairs
and their settings are `PAIRS`; tests/test_external.py checks the same pairs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

# name: (external codec, in-process codec, [(external quality, in-process quality)], version regexes)
PAIRS: dict[str, tuple[str, str, list[tuple[int, int]], tuple[str, str] | None]] = {
    "cwebp": ("ext-cwebp", "webp", [(20, 20), (50, 50), (80, 80)], (r"cwebp (\d+(?:\.\d+)+)", r"webp (\d+(?:\.\d+)+)")),
    "opj": ("ext-opj", "jpeg2000", [(20, 20), (60, 60), (110, 110)], (r"v(\d+(?:\.\d+)+)", r"jpg_2000 (\d+(?:\.\d+)+)")),
    "cjxl": ("ext-cjxl", "jpegxl", [(20, 20), (50, 50), (80, 80)], (r"cjxl v(\d+(?:\.\d+)+)", r"libjxl (\d+(?:\.\d+)+)")),
    # libavif >= 1.0 turns quality q into the AV1 quantizer (100 - q) * 63 / 100, rounded;
    # Debian 12's avifenc (libavif 0.11) takes the quantizer itself
    "avifenc": ("ext-avifenc", "avif", [(((100 - q) * 63 + 50) // 100, q) for q in (20, 50, 80)],
                (r"Version: (\d+(?:\.\d+)+)", r"avif (\d+(?:\.\d+)+)")),
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def compare(pair: str, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """One record per rate point: per-image size (%) and PSNR (dB) differences, ext - ours."""
    from rsicbench.reproduce.codecs.base import create_codec

    ext, ours, points, _ = PAIRS[pair]
    rows = []
    for qe, qo in points:
        e, o = create_codec(ext, qe), create_codec(ours, qo)
        d_bytes, d_db = [], []
        for img in images:
            de, do = e.encode(img), o.encode(img)
            d_bytes.append(100.0 * (len(de) / len(do) - 1))
            d_db.append(psnr(img, e.decode(de)) - psnr(img, o.decode(do)))
        rows.append({"pair": pair, "external": ext, "external_quality": qe, "in_process": ours, "in_process_quality": qo,
                     "bytes_pct": d_bytes, "psnr_db": d_db, "external_version": e.version, "in_process_version": o.version})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--json", help="also write every per-image difference here")
    a = ap.parse_args(argv)
    from rsicbench.imageio import read_rgb
    from rsicbench.reproduce.codecs.base import CodecError

    images = [read_rgb(p) for p in a.images]
    out = []
    print("| external | in-process | bytes ext vs ours (%) | PSNR ext - ours (dB) | versions (ext / ours) |")
    print("|---|---|---|---|---|")
    for pair in PAIRS:
        try:
            rows = compare(pair, images)
        except CodecError as e:
            print(f"| {pair} | — | not run: {e} | | |")
            continue
        for r in rows:
            b, p = r["bytes_pct"], r["psnr_db"]
            print(f"| `{r['external']}` {r['external_quality']} | `{r['in_process']}` {r['in_process_quality']} | "
                  f"{min(b):+.2f} .. {max(b):+.2f} | {min(p):+.3f} .. {max(p):+.3f} | "
                  f"{r['external_version'][:60]} / {r['in_process_version']} |")
        out += rows
    if a.json:
        from rsicbench.fsutil import write_json

        write_json(a.json, {"images": a.images, "rows": out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
