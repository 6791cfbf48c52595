"""`rsicbench metrics <ref_dir> <rec_dir>`: per-image CSV + summary JSON for two folders.

Files are paired by relative path without extension (ref `a/b.tif` <-> rec `a/b.png`); an
image present on one side only is an error (exit 2) because a silently smaller test set
changes the mean. ROI masks (--roi-dir) and bitstreams (--bitstream-dir, for bytes and bpp)
are paired the same way; an image without a mask gets an empty roi_psnr. A mask file is a
binary image (0/1 or 0/255, first channel), nonzero = region of interest.
An image that cannot be read or measured gets a row with `error` set and the run goes on;
the exit status is then 1. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from rsicbench.errors import int_at_least
from rsicbench.metrics.aggregate import PSNR_CAP_DB, summarize
from rsicbench.metrics.psnr import bpp as bpp_of
from rsicbench.metrics.suite import METRIC_KEYS, MetricSuite
from rsicbench.metrics.validate import MetricInputError
from rsicbench.results import CSV_COLUMNS, write_per_image  # noqa: F401 - CSV_COLUMNS re-exported

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".pgm"}
# The per_image.csv contract is rsicbench.results.CSV_COLUMNS; enc_s/dec_s stay empty here (no codec ran).


def index_folder(root: Path, exts: set[str] | None = IMAGE_EXTS) -> dict[str, Path]:
    """{relative path without extension (posix): file}, refusing two files with one key."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if exts is not None and p.suffix.lower() not in exts:
            continue
        key = p.relative_to(root).with_suffix("").as_posix()
        if key in out:
            raise ValueError(f"{root}: two files pair as {key!r}: {out[key].name} and {p.name}")
        out[key] = p
    return out


def read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            a = np.asarray(im)
    except Exception as e:  # noqa: BLE001 - any decoder failure: name the file
        raise MetricInputError(f"{path}: cannot read mask ({type(e).__name__}: {e})") from None
    if a.ndim == 3:
        a = a[:, :, 0]
    if a.dtype == bool:
        return a
    vals = set(np.unique(a).tolist())
    if not (vals <= {0, 1} or vals <= {0, 255}):
        raise MetricInputError(f"{path}: mask must be binary (0/1 or 0/255), found values {sorted(vals)[:8]}")
    return a > 0


def _json_clean(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_clean(v) for k, v in obj.items()}
    return obj


def _metric_settings() -> dict:
    """configs/metrics.yaml for the active profile; outside any project, the built-in defaults."""
    from rsicbench.config import settings
    from rsicbench.paths import project_root

    if not (project_root() / "params.yaml").is_file():
        return {}
    return settings("metrics")


def _read_pair(ref: Path, rec: Path, mask: Path | None):
    """(original, reconstruction, mask or None); any problem raises MetricInputError naming the file."""
    from rsicbench.imageio import read_rgb

    out = []
    for path in (ref, rec):
        try:
            out.append(read_rgb(path))
        except (ValueError, OSError):
            raise
        except Exception as e:  # noqa: BLE001 - e.g. Pillow's DecompressionBombError (pixel limit): this image only
            raise MetricInputError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    a, b = out
    if a.shape != b.shape:
        raise MetricInputError(f"{rec}: size {b.shape[1]}x{b.shape[0]} differs from original {ref} ({a.shape[1]}x{a.shape[0]})")
    m = None
    if mask is not None:
        m = read_mask(mask)
        if m.shape != a.shape[:2]:
            raise MetricInputError(f"{mask}: mask size {m.shape[1]}x{m.shape[0]} differs from image {ref} "
                                   f"({a.shape[1]}x{a.shape[0]})")
    return a, b, m


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rsicbench metrics", description=__doc__.splitlines()[0])
    p.add_argument("ref_dir", type=Path, help="originals")
    p.add_argument("rec_dir", type=Path, help="reconstructions (8-bit images)")
    p.add_argument("--out-csv", type=Path, required=True, help="per-image CSV")
    p.add_argument("--out-json", type=Path, required=True, help="summary JSON")
    p.add_argument("--roi-dir", type=Path, help="binary ROI masks (nonzero = ROI)")
    p.add_argument("--bitstream-dir", type=Path, help="bitstreams: their sizes give bytes and bpp")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int_at_least(1), default=None, help="pairs per torch batch (default: configs/metrics.yaml)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (reported empty)")
    p.add_argument("--lpips-weights", type=Path, help="AlexNet features file for LPIPS")
    return p


def _unpaired(args: argparse.Namespace, refs: dict, recs: dict) -> list[str]:
    """Why the two folders cannot be measured image for image (empty: they pair)."""
    only_ref, only_rec = sorted(set(refs) - set(recs)), sorted(set(recs) - set(refs))
    problems = []
    if not refs:
        problems.append(f"{args.ref_dir}: no images")
    if only_ref:
        problems.append(f"{len(only_ref)} originals without reconstruction, e.g. {only_ref[:3]}")
    if only_rec:
        problems.append(f"{len(only_rec)} reconstructions without original, e.g. {only_rec[:3]}")
    return problems


def _read_chunk(chunk: list[str], refs: dict, recs: dict, rois: dict, bits: dict):
    """One row per key (an unreadable pair gets its `error`), and the rows, originals,
    reconstructions and masks of the pairs that were read."""
    rows, good, a_list, b_list, m_list = [], [], [], [], []
    for k in chunk:
        row: dict = {"image": k, "width": "", "height": "", "bytes": "", "bpp": "", "error": ""}
        try:
            a, b, m = _read_pair(refs[k], recs[k], rois.get(k))
            row["height"], row["width"] = a.shape[0], a.shape[1]
            if k in bits:
                row["bytes"] = bits[k].stat().st_size
                row["bpp"] = bpp_of(row["bytes"], a.shape[0], a.shape[1])
            good.append(row)
            a_list.append(a)
            b_list.append(b)
            m_list.append(m)
        except (ValueError, OSError) as e:  # ImageError and MetricInputError are ValueErrors
            row["error"] = str(e)
        rows.append(row)
    return rows, (good, a_list, b_list, m_list)


def _measure(suite: MetricSuite, good: list[dict], a_list: list, b_list: list, m_list: list) -> None:
    """Metrics of the read pairs into their rows, as one batch; when the batch refuses a pair,
    one by one so the bad pair gets its `error` and the others are still measured."""
    if not good:
        return
    try:
        vals = suite.compute_batch(a_list, b_list, m_list)
    except MetricInputError:
        vals = []
        for r, a, b, m in zip(good, a_list, b_list, m_list):
            try:
                vals.append(suite.compute_batch([a], [b], [m])[0])
            except MetricInputError as e:
                r["error"] = f"{r['image']}: {str(e).removeprefix('pair 0: ')}"
                vals.append({})
    for r, v in zip(good, vals):
        r.update(v)


def _summary(args: argparse.Namespace, rows: list[dict], with_bpp: bool, suite: MetricSuite) -> dict:
    ok_rows = [r for r in rows if not r["error"]]
    summary = summarize(ok_rows, list(METRIC_KEYS) + (["bpp"] if with_bpp else []))
    summary.update({
        "n_errors": len(rows) - len(ok_rows),
        "ref_dir": str(args.ref_dir),
        "rec_dir": str(args.rec_dir),
        "roi_dir": str(args.roi_dir) if args.roi_dir else None,
        "aggregation": f"mean of per-image values; +inf (identical images) capped at {PSNR_CAP_DB:g} dB; nan skipped",
        "lpips_weights": suite.lpips_weights_source,
        "conventions": "docs/metrics.md",
    })
    return summary


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from rsicbench.errors import check_writable
    from rsicbench.fsutil import write_json

    args = build_parser().parse_args(argv)
    cfg = _metric_settings()
    check_writable(args.out_csv, "--out-csv")  # before the work, not after it
    check_writable(args.out_json, "--out-json")
    try:
        refs = index_folder(args.ref_dir)
        recs = index_folder(args.rec_dir)
        rois = index_folder(args.roi_dir) if args.roi_dir else {}
        bits = index_folder(args.bitstream_dir, exts=None) if args.bitstream_dir else {}
    except (FileNotFoundError, ValueError) as e:
        print(f"rsicbench metrics: {e}", file=sys.stderr)
        return 2
    problems = _unpaired(args, refs, recs)
    for p in problems:
        print(f"rsicbench metrics: {p}", file=sys.stderr)
    if problems:
        return 2

    suite = MetricSuite(device=args.device, lpips=not args.no_lpips, lpips_weights=args.lpips_weights,
                        batch_size=args.batch_size or int(cfg.get("batch_size", 16)))
    keys = sorted(refs)
    rows: list[dict] = []
    bar = tqdm(total=len(keys), desc="metrics", unit="img", disable=not sys.stderr.isatty())
    for s in range(0, len(keys), suite.batch_size):
        chunk = keys[s : s + suite.batch_size]
        chunk_rows, pairs = _read_chunk(chunk, refs, recs, rois, bits)
        rows += chunk_rows
        _measure(suite, *pairs)
        bar.update(len(chunk))
    bar.close()

    write_per_image(args.out_csv, rows)
    summary = _summary(args, rows, bool(bits), suite)
    write_json(args.out_json, _json_clean(summary))
    n_ok = len(rows) - summary["n_errors"]
    print(f"{n_ok}/{len(rows)} pairs measured; psnr {summary['psnr']:.4f} dB -> {args.out_csv}, {args.out_json}")
    return 1 if n_ok != len(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
