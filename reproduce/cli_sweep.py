"""`rsicbench sweep --codec jpeg --dataset ucmerced --split test [--qualities ...] [--workers N]`.

Defaults (rate points, image subset, workers, metric settings) come from configs/eval.yaml
for the active profile. Images come from `rsicbench.datasets.load_split` (the DVC data
stages' output), or from any folder with --images-dir (labels = parent folder names).
Exits 1 when any image failed (all others are still evaluated and written), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsicbench.reproduce.codec import CodecError, list_codecs
from rsicbench.reproduce.engine import RatePoint, Sample, SweepSpec, run_sweep, samples_from_folder, subset


def load_samples(dataset: str, split: str, images_dir: str | None) -> list[Sample]:
    if images_dir:
        return samples_from_folder(images_dir)
    from rsicbench.datasets import load_split

    return [Sample(str(s.path), str(s.relpath), str(s.label or "")) for s in load_split(dataset, split)]


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return int(v) if v == int(v) else v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rsicbench sweep", description="Evaluate a codec over rate points on a split.")
    ap.add_argument("--codec", required=True)
    ap.add_argument("--dataset", default=None, help="default: configs/eval.yaml dataset")
    ap.add_argument("--split", default=None, help="default: configs/eval.yaml split")
    ap.add_argument("--qualities", nargs="+", type=_number, help="rate points (codec quality values)")
    ap.add_argument("--matched-bpp", nargs="*", type=float, help="target bpp values for the matched-rate mode")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--per-class", type=int, help="first N images of each class")
    ap.add_argument("--max-images", type=int)
    ap.add_argument("--images-dir", help="evaluate the images of this folder instead of a dataset split")
    ap.add_argument("--out-root", default="results/rd", help="results root (default results/rd)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=JSON", help="codec option override")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS (faster)")
    ap.add_argument("--no-recon", action="store_true", help="do not keep decoded images")
    ap.add_argument("--profile", help="ci | default | paper (default: params.yaml / $RSICBENCH_PROFILE)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rsicbench.config import settings

    cfg = settings("eval", args.profile)
    if args.codec not in list_codecs():
        print(f"sweep: unknown codec {args.codec!r}; known: {', '.join(list_codecs())}", file=sys.stderr)
        return 2
    dataset = args.dataset or cfg["dataset"]
    split = args.split or cfg["split"]
    qualities = args.qualities if args.qualities is not None else (cfg.get("qualities") or {}).get(args.codec, [])
    matched = args.matched_bpp if args.matched_bpp is not None else cfg.get("matched_bpp") or []
    points = [RatePoint(quality=q) for q in qualities] + [RatePoint(target_bpp=t) for t in matched]
    if not points:
        print(f"sweep: no rate points for {args.codec}: give --qualities or set configs/eval.yaml qualities.{args.codec}", file=sys.stderr)
        return 2
    options = {}
    for item in args.option:
        key, sep, val = item.partition("=")
        if not sep:
            print(f"sweep: --option {item!r}: expected KEY=JSON", file=sys.stderr)
            return 2
        try:
            options[key] = json.loads(val)
        except json.JSONDecodeError:
            options[key] = val
    metrics = dict(cfg.get("metrics") or {})
    if args.no_lpips:
        metrics["lpips"] = False
    try:
        samples = load_samples(dataset, split, args.images_dir)
        samples = subset(
            samples,
            args.per_class if args.per_class is not None else cfg.get("per_class"),
            args.max_images if args.max_images is not None else cfg.get("max_images"),
        )
        spec = SweepSpec(
            codec=args.codec, dataset=dataset, split=split, points=points, out_root=Path(args.out_root),
            options=options, metrics=metrics, workers=int(args.workers or cfg.get("workers", 1)),
            threads=int(cfg.get("threads", 1)), keep_recon=bool(cfg.get("keep_recon", True)) and not args.no_recon,
        )  # fmt: skip
        result = run_sweep(spec, samples)
    except (CodecError, ValueError, FileNotFoundError) as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2
    print(f"sweep {args.codec} on {dataset}/{split}: {len(samples)} images x {len(points)} points; "
          f"computed {result.computed}, reused {result.skipped}, failed {len(result.failed)}")  # fmt: skip
    for s in result.summaries:
        m = s["mean"]
        bpp = "-" if m["bpp"] is None else f"{m['bpp']:.4f}"
        psnr = "-" if m["psnr"] is None else f"{m['psnr']:.3f}"
        print(f"  {s['qtag']:>10}: bpp {bpp}  psnr {psnr}  ok {s['n_ok']}/{s['n_images']}")
    for qtag, image, err in result.failed:
        print(f"  FAILED {qtag} {image}: {err}", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
