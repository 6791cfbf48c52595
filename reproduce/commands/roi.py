"""`rsicbench roi ...`: ROI masks and the cloud-detector validation.

  rsicbench roi providers
  rsicbench roi validate [--data-dir data] [--patch RAW_38CLOUD_DIR] [--out results/roi/cloud_detector_38cloud.json]
  rsicbench roi detect --provider cloud|saliency|full --images DIR --out DIR
                       (writes <out>/<relpath>.png masks, 255 = ROI, for every *.png/*.tif image)
  rsicbench roi masks <ds>     ROI masks of every data/<ds> image -> results/roi/masks/<ds>/<relpath>.png
                               (reproduce.roi_masks: Landsat-8 cloud detector, 38-Cloud true mask, saliency)
  rsicbench roi train --model cfhpm|mroi-cfhpm|bmshj2018-hyperprior --rate r<i>
                       train on data/<mroi.dataset> (Landsat-8) with the stored ROI masks
                       -> results/train/<ds>/<model>/r<i>/ (settings: configs/roi.yaml mroi)
  rsicbench roi evaluate --codec NAME [--dataset landsat8|38cloud]
                       engine sweep with ROI masks -> results/rd/<ds>/<codec>/<qtag>/ (+ roi_psnr)
  rsicbench roi agdl-train [--out results/train/agdl/agdl.pt]    (settings: configs/roi.yaml agdl)
  rsicbench roi agdl-rd [--checkpoint ...] [--out results/roi/agdl_rd_ucmerced.json]
                       ROI-PSNR / PSNR vs real bpp for agdl, agdl-car (JPEG + G_car), jpeg, jpeg2000;
                       also the engine layout results/rd/ucmerced-roi/<codec>/q<quality>/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rsicbench.reproduce.roi import providers as roi


def _validate(args: argparse.Namespace) -> int:
    from rsicbench.fsutil import write_json
    from rsicbench.reproduce.roi.validation import validate_from_data

    result = validate_from_data(Path(args.data_dir))
    if args.patch:  # raw Landsat bands of a 38-Cloud patch (not in data/): the better path
        result["38cloud_raw_bands"] = roi.validate_cloud_detector(Path(args.patch))
    write_json(args.out, result)
    for name, r in sorted(result["38cloud"].items()):
        s = r["rgb8_truecolor"]
        print(f"cloud detector on {name} (8-bit): IoU {s['iou']:.4f} precision {s['precision']:.4f} "
              f"recall {s['recall']:.4f}")
    if "38cloud_raw_bands" in result:
        s = result["38cloud_raw_bands"]["rgb_nir"]
        print(f"raw bands: IoU {s['iou']:.4f} precision {s['precision']:.4f} recall {s['recall']:.4f}")
    print(f"-> {args.out}")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rsicbench.imageio import read_rgb

    src = Path(args.images)
    if not src.is_dir():
        print(f"rsicbench roi detect: {src}: not a folder", file=sys.stderr)
        return 2
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".png", ".tif", ".tiff", ".webp"))
    if not files:
        print(f"rsicbench roi detect: {src}: no images", file=sys.stderr)
        return 2
    provider = roi.create_roi_provider(args.provider)
    out = Path(args.out)
    for f in tqdm(files, desc=f"roi {args.provider}", disable=not sys.stderr.isatty()):
        rel = f.relative_to(src).with_suffix(".png")
        roi.write_mask(out / rel, provider(read_rgb(f), source=str(f)))
    print(f"{len(files)} masks ({args.provider}) -> {out}")
    return 0


def _agdl_train(args: argparse.Namespace) -> int:
    from rsicbench.config import settings
    from rsicbench.reproduce.papers.agdl_runs import train_nets

    n, log = train_nets(settings("roi"), args.out, progress=sys.stderr.isatty())
    print(f"AGDL nets ({n} images) -> {args.out}: {log}")
    return 0


def _agdl_rd(args: argparse.Namespace) -> int:
    from rsicbench.config import settings
    from rsicbench.reproduce.papers.agdl_runs import agdl_engine, agdl_rd

    s = settings("roi")
    result = agdl_rd(s, args.checkpoint, args.out, progress=sys.stderr.isatty())
    print(f"AGDL RD ({len(result['eval_images'])} images) -> {args.out}")
    if args.rd_root:
        for codec, summaries in agdl_engine(s, args.checkpoint, Path(args.rd_root)):
            print(f"  {codec}: " + ", ".join(f"{p['qtag']} bpp {p['mean']['bpp']:.3f} roi_psnr "
                                            f"{p['mean']['roi_psnr']:.2f}" for p in summaries))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench roi", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("providers", help="list ROI providers")
    v = sub.add_parser("validate", help="score the cloud detector on the 38-Cloud ground truth")
    v.add_argument("--data-dir", default="data", help="the dataset stages' outputs")
    v.add_argument("--patch", help="also score the raw-band path on this 38-Cloud patch folder (raw TIFFs)")
    v.add_argument("--out", default="results/roi/cloud_detector_38cloud.json")
    d = sub.add_parser("detect", help="write ROI masks for a folder of images")
    d.add_argument("--provider", required=True, choices=roi.list_roi_providers())
    d.add_argument("--images", required=True)
    d.add_argument("--out", required=True)
    t = sub.add_parser("agdl-train", help="train AGDL's F, G and G_car (configs/roi.yaml)")
    t.add_argument("--out", default="results/train/agdl/agdl.pt")
    r = sub.add_parser("agdl-rd", help="ROI-PSNR vs bpp: AGDL vs base+CAR, base codec, JPEG2000")
    r.add_argument("--checkpoint", default="results/train/agdl/agdl.pt")
    r.add_argument("--out", default="results/roi/agdl_rd_ucmerced.json")
    r.add_argument("--rd-root", default="results/rd", help="engine layout root ('' to skip)")
    m = sub.add_parser("masks", help="ROI masks of every image of data/<ds> (results/roi/masks/<ds>/)")
    m.add_argument("dataset")
    m.add_argument("--data-dir", default="data")
    m.add_argument("--out-root", default="results/roi/masks")
    m.add_argument("--summary", help="JSON summary (default results/roi/masks_<ds>.json)")
    tr = sub.add_parser("train", help="train an MROI-CFHPM comparison model on Landsat-8 with ROI masks")
    tr.add_argument("--model", required=True)
    tr.add_argument("--rate", required=True)
    tr.add_argument("--quiet", action="store_true")
    tr.add_argument("--on-config-change", choices=("error", "restart"), default="error",
                    help="the run folder holds a run with other settings: stop, or set it aside and retrain")
    ev = sub.add_parser("evaluate", help="engine sweep with ROI masks (configs/roi.yaml mroi.eval)")
    ev.add_argument("--codec", required=True)
    ev.add_argument("--dataset", default="landsat8", help="landsat8 (test split) or 38cloud (the true-mask patch)")
    ev.add_argument("--out-root", default="results/rd")
    args = ap.parse_args(argv)
    if args.cmd == "providers":
        print("\n".join(roi.list_roi_providers()))
        return 0
    from rsicbench.reproduce.commands.roi_mroi import evaluate_cmd, masks_cmd, train_cmd

    handlers = {"validate": _validate, "detect": _detect, "agdl-train": _agdl_train, "agdl-rd": _agdl_rd,
                "masks": masks_cmd, "train": train_cmd, "evaluate": evaluate_cmd}
    try:
        return handlers[args.cmd](args)
    except (ValueError, FileNotFoundError) as e:  # RoiError is a ValueError
        print(f"rsicbench roi: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
