"""`rsicbench roi ...`: ROI masks and the cloud-detector validation.

  rsicbench roi providers
  rsicbench roi validate [--patch DIR] [--landsat DIR] [--out results/roi/cloud_detector_38cloud.json]
  rsicbench roi detect --provider cloud|saliency|full --images DIR --out DIR
                       (writes <out>/<relpath>.png masks, 255 = ROI, for every *.png/*.tif image)
  rsicbench roi agdl-train [--out results/train/agdl/agdl.pt]    (settings: configs/roi.yaml agdl)
  rsicbench roi agdl-rd [--checkpoint ...] [--out results/roi/agdl_rd_ucmerced.json]
                       ROI-PSNR / PSNR vs real bpp for agdl, agdl-car (JPEG + G_car), jpeg, jpeg2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rsicbench.reproduce import roi


def _shared(*parts: str) -> Path | None:
    from rsicbench.paths import shared_path

    return shared_path(*parts)


def _validate(args: argparse.Namespace) -> int:
    from rsicbench.fsutil import write_json

    patch = Path(args.patch) if args.patch else _shared("datasets", "samples", "38cloud")
    if patch is None or not patch.is_dir():
        print("rsicbench roi validate: no 38-Cloud patch folder (use --patch DIR or ../shared)", file=sys.stderr)
        return 2
    result = {"38cloud": roi.validate_cloud_detector(patch)}
    landsat = Path(args.landsat) if args.landsat else _shared("datasets", "landsat8")
    if landsat is not None and landsat.is_dir():
        result["landsat8_cloud_free"] = roi.landsat_false_alarm(landsat)
    write_json(args.out, result)
    s = result["38cloud"]["rgb_nir"]
    print(f"cloud detector on {result['38cloud']['patch']}: IoU {s['iou']:.4f} "
          f"precision {s['precision']:.4f} recall {s['recall']:.4f} -> {args.out}")
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


def _ucmerced_split(cfg: dict, which: str) -> list[Path]:
    """Deterministic split of ../shared UC Merced: first `train_per_class` files of each of the
    first `classes` classes (sorted) train; the last `eval_per_class` of each class evaluate."""
    root = _shared("datasets", "ucmerced")
    if root is None:
        raise roi.RoiError("../shared/datasets/ucmerced is absent (set RSICBENCH_SHARED)")
    classes = sorted(p for p in root.iterdir() if p.is_dir())[: int(cfg["classes"])]
    out: list[Path] = []
    for c in classes:
        files = sorted(c.glob("*.webp")) + sorted(c.glob("*.tif"))
        out += files[: int(cfg["train_per_class"])] if which == "train" else files[-int(cfg["eval_per_class"]):]
    return out


def _roi_for(provider, img, path) -> "np.ndarray":
    return provider(img, source=str(path))


def _agdl_train(args: argparse.Namespace) -> int:
    from rsicbench.config import seed_everything, settings
    from rsicbench.fsutil import write_json
    from rsicbench.imageio import read_rgb
    from rsicbench.reproduce import agdl

    s = settings("roi")
    cfg = s["agdl"]
    seed_everything(int(s["seed"]), int(s["threads"]))
    files = _ucmerced_split(cfg, "train")
    provider = roi.create_roi_provider(cfg["roi_provider"])
    imgs = [read_rgb(f) for f in files]
    rois = [_roi_for(provider, im, f) for im, f in zip(imgs, files)]
    nets, log = agdl.train_agdl(
        imgs, rois, base=cfg["base"], qualities=tuple(cfg["train_qualities"]), steps=tuple(cfg["steps"]),
        crop=int(cfg["crop"]), batch=int(cfg["batch"]), lr=float(cfg["lr"]), width=int(cfg["width"]),
        depth=int(cfg["depth"]), blocks=int(cfg["blocks"]), critical_fraction=float(cfg["critical_fraction"]),
        cs_ratio=float(cfg["cs_ratio"]), step=float(cfg["step"]), seed=int(s["seed"]), progress=sys.stderr.isatty())
    nets.save(args.out)
    write_json(Path(args.out).with_suffix(".json"), {"profile": s["profile"], "train_images": len(files), "log": log,
                                                    "config": cfg})
    print(f"AGDL nets ({len(files)} images) -> {args.out}: {log}")
    return 0


def _agdl_rd(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from rsicbench.config import settings
    from rsicbench.fsutil import write_json
    from rsicbench.imageio import read_rgb
    from rsicbench.metrics.psnr import psnr, roi_psnr
    from rsicbench.reproduce import agdl
    from rsicbench.reproduce.codec import create_codec

    s = settings("roi")
    cfg = s["agdl"]
    files = _ucmerced_split(cfg, "eval")
    provider = roi.create_roi_provider(cfg["roi_provider"])
    nets = agdl.AGDLNets.load(args.checkpoint)
    opts = dict(critical_fraction=float(cfg["critical_fraction"]), cs_ratio=float(cfg["cs_ratio"]),
                step=float(cfg["step"]), seed=int(s["seed"]))
    systems = [("agdl", q, lambda q: agdl.AGDLCodec(q, base=cfg["base"], nets=nets, **opts)) for q in cfg["eval_qualities"]]
    systems += [("agdl-car", q, lambda q: agdl.AGDLCodec(q, base=cfg["base"], nets=nets, refine=False)) for q in cfg["eval_qualities"]]
    systems += [(cfg["base"], q, lambda q: create_codec(cfg["base"], q)) for q in cfg["eval_qualities"]]
    systems += [("jpeg2000", r, lambda r: create_codec("jpeg2000", r)) for r in cfg["j2k_ratios"]]
    data = [(f, read_rgb(f)) for f in files]
    rois = {f: _roi_for(provider, im, f) for f, im in data}
    curves: dict[str, list] = {}
    for name, q, make in tqdm(systems, desc="agdl rd", disable=not sys.stderr.isatty()):
        codec = make(q)
        rows = []
        for f, img in data:
            stream = codec.encode(img)
            rec = codec.decode(stream)
            m = rois[f]
            rows.append((8.0 * len(stream) / (img.shape[0] * img.shape[1]), psnr(img, rec),
                         roi_psnr(img, rec, m) if roi.roi_state(m) != "empty" else float("nan")))
        a = np.array(rows, dtype=np.float64)
        curves.setdefault(name, []).append({"quality": q, "bpp": float(a[:, 0].mean()), "psnr": float(a[:, 1].mean()),
                                            "roi_psnr": float(np.nanmean(a[:, 2])) if np.isfinite(a[:, 2]).any() else None,
                                            "images": len(rows)})
    for v in curves.values():
        v.sort(key=lambda r: r["bpp"])
    write_json(args.out, {"dataset": "ucmerced", "profile": s["profile"], "roi_provider": cfg["roi_provider"],
                          "eval_images": [str(f.relative_to(f.parents[1])) for f in files], "curves": curves,
                          "agdl_options": opts})
    print(f"AGDL RD ({len(files)} images) -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench roi", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("providers", help="list ROI providers")
    v = sub.add_parser("validate", help="score the cloud detector on the 38-Cloud ground truth")
    v.add_argument("--patch")
    v.add_argument("--landsat")
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
    args = ap.parse_args(argv)
    if args.cmd == "providers":
        print("\n".join(roi.list_roi_providers()))
        return 0
    handlers = {"validate": _validate, "detect": _detect, "agdl-train": _agdl_train, "agdl-rd": _agdl_rd}
    try:
        return handlers[args.cmd](args)
    except roi.RoiError as e:
        print(f"rsicbench roi: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
