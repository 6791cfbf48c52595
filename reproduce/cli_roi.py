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

from rsicbench.reproduce import roi


def _shared(*parts: str) -> Path | None:
    from rsicbench.paths import shared_path

    return shared_path(*parts)


def _validate_from_data(data: Path) -> dict:
    """Detector scores from the dataset stages' outputs only (data/samples, data/landsat8).

    38-Cloud: data/samples holds the 8-bit true-colour patch and its true mask, so the
    detector runs on the 8-bit proxy path (reflectance ~ v/255); the raw-band path (better)
    needs the raw TIFFs: `rsicbench roi validate --patch DIR` (key `38cloud_raw_bands`).
    Landsat-8: the tiles' approximate DNs (roi_masks.landsat_tile_roi) on the cloud-free scene.
    """
    import numpy as np

    from rsicbench.imageio import read_rgb
    from rsicbench.reproduce import roi_masks

    out: dict = {}
    samples = data / "samples"
    rows = [r for r in roi_masks._manifest(samples) if r.get("mask") and r["relpath"].startswith("38cloud/")]
    if not rows:
        raise roi.RoiError(f"{samples}/manifest.tsv: no 38-Cloud patch with a mask (run fetch@samples)")
    for r in rows:  # one patch in the shipped data; several are scored the same way
        rgb = read_rgb(samples / "images" / r["relpath"])
        truth = roi.read_mask(samples / r["mask"], rgb.shape)
        valid = rgb.max(axis=2) > 0
        out.setdefault("38cloud", {})[r["relpath"]] = {
            "source": f"data/samples/images/{r['relpath']} + {r['mask']}", "positive_class": "cloud",
            "path": "rgb8 (reflectance ~ v/255)", "thresholds": roi.CloudThresholds().as_dict(),
            "rgb8_truecolor": roi.mask_scores(roi.detect_clouds_rgb8(rgb), truth, valid)}
    land = data / "landsat8"
    if (land / "manifest.tsv").is_file():
        bounds = roi_masks.landsat_bounds(land / "aux" / "fetch.json")
        cloud = valid_n = 0
        for r in roi_masks._manifest(land):
            img = read_rgb(land / "images" / r["relpath"])
            m = roi_masks.landsat_tile_roi(img, bounds[roi_masks._scene_of(r["relpath"], bounds)])
            cloud += int(np.count_nonzero(~m))
            valid_n += m.size
        out["landsat8_cloud_free"] = {"source": "data/landsat8 tiles (approximate DNs from fetch.json bounds)",
                                      "valid_pixels": valid_n, "false_alarm_fraction": cloud / valid_n}
    return out


def _validate(args: argparse.Namespace) -> int:
    from rsicbench.fsutil import write_json

    result = _validate_from_data(Path(args.data_dir))
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


def _ucmerced_split(cfg: dict, which: str) -> list:
    """AGDL images from data/ucmerced (the dataset stage's output): the first `train_per_class`
    images of each of the first `classes` classes (sorted) of the TRAIN split train; the first
    `eval_per_class` of each class of the TEST split evaluate (never trained on)."""
    from rsicbench.datasets import load_split

    samples = load_split(cfg["dataset"], "train" if which == "train" else "test")
    per = int(cfg["train_per_class"] if which == "train" else cfg["eval_per_class"])
    by_class: dict[str, list] = {}
    for s in sorted(samples, key=lambda s: s.relpath):
        by_class.setdefault(s.label or "", []).append(s)
    out = []
    for c in sorted(by_class)[: int(cfg["classes"])]:
        out += by_class[c][:per]
    if not out:
        raise roi.RoiError(f"data/{cfg['dataset']}: no {which} images (run the fetch/split stages)")
    return out


def _roi_for(cfg: dict, sample, img) -> "np.ndarray":
    """The stored ROI (results/roi/masks/<ds>/<relpath>.png, stage roi-masks@<ds>)."""
    from rsicbench.reproduce.roi_masks import read_roi

    return read_roi(cfg["mask_dir"], sample.relpath, img.shape)


def _agdl_train(args: argparse.Namespace) -> int:
    from rsicbench.config import seed_everything, settings
    from rsicbench.fsutil import write_json
    from rsicbench.imageio import read_rgb
    from rsicbench.reproduce import agdl

    s = settings("roi")
    cfg = s["agdl"]
    seed_everything(int(s["seed"]), int(s["threads"]))
    files = _ucmerced_split(cfg, "train")
    imgs = [read_rgb(f.path) for f in files]
    rois = [_roi_for(cfg, f, im) for im, f in zip(imgs, files)]
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
    nets = agdl.AGDLNets.load(args.checkpoint)
    opts = dict(critical_fraction=float(cfg["critical_fraction"]), cs_ratio=float(cfg["cs_ratio"]),
                step=float(cfg["step"]), seed=int(s["seed"]))
    systems = [("agdl", q, lambda q: agdl.AGDLCodec(q, base=cfg["base"], nets=nets, **opts)) for q in cfg["eval_qualities"]]
    systems += [("agdl-car", q, lambda q: agdl.AGDLCodec(q, base=cfg["base"], nets=nets, refine=False)) for q in cfg["eval_qualities"]]
    systems += [(cfg["base"], q, lambda q: create_codec(cfg["base"], q)) for q in cfg["eval_qualities"]]
    systems += [("jpeg2000", r, lambda r: create_codec("jpeg2000", r)) for r in cfg["j2k_ratios"]]
    data = [(f, read_rgb(f.path)) for f in files]
    rois = {f.relpath: _roi_for(cfg, f, im) for f, im in data}
    curves: dict[str, list] = {}
    for name, q, make in tqdm(systems, desc="agdl rd", disable=not sys.stderr.isatty()):
        codec = make(q)
        rows = []
        for f, img in data:
            stream = codec.encode(img)
            rec = codec.decode(stream)
            m = rois[f.relpath]
            rows.append((8.0 * len(stream) / (img.shape[0] * img.shape[1]), psnr(img, rec),
                         roi_psnr(img, rec, m) if roi.roi_state(m) != "empty" else float("nan")))
        a = np.array(rows, dtype=np.float64)
        curves.setdefault(name, []).append({"quality": q, "bpp": float(a[:, 0].mean()), "psnr": float(a[:, 1].mean()),
                                            "roi_psnr": float(np.nanmean(a[:, 2])) if np.isfinite(a[:, 2]).any() else None,
                                            "images": len(rows)})
    for v in curves.values():
        v.sort(key=lambda r: r["bpp"])
    write_json(args.out, {"dataset": "ucmerced", "profile": s["profile"], "roi_provider": cfg["roi_provider"],
                          "eval_images": [f.relpath for f in files], "curves": curves,
                          "agdl_options": opts})
    print(f"AGDL RD ({len(files)} images) -> {args.out}")
    if args.rd_root:
        _agdl_engine(cfg, s, files, args)
    return 0


def _agdl_engine(cfg: dict, s: dict, files: list, args: argparse.Namespace) -> None:
    """The same four systems through the engine: results/rd/<rd_dataset>/<codec>/q<quality>/."""
    from rsicbench.reproduce import engine

    samples = [engine.Sample(str(f.path), f.relpath, f.label or "") for f in files]
    opts = dict(checkpoint=str(args.checkpoint), base=cfg["base"], critical_fraction=float(cfg["critical_fraction"]),
                cs_ratio=float(cfg["cs_ratio"]), step=float(cfg["step"]), seed=int(s["seed"]))
    rows = [("agdl", cfg["eval_qualities"], opts),
            ("agdl-car", cfg["eval_qualities"], {"checkpoint": str(args.checkpoint), "base": cfg["base"]}),
            (cfg["base"], cfg["eval_qualities"], {}), ("jpeg2000", cfg["j2k_ratios"], {})]
    for codec, qualities, options in rows:
        spec = engine.SweepSpec(codec=codec, dataset=cfg["rd_dataset"], split="test",
                                points=[engine.RatePoint(quality=q) for q in qualities], out_root=Path(args.rd_root),
                                options=options, metrics=dict(cfg.get("metrics", {"device": "cpu", "lpips": False})),
                                workers=1, threads=int(s["threads"]), roi_dir=cfg["mask_dir"])
        res = engine.run_sweep(spec, samples)
        if res.failed:
            raise roi.RoiError(f"{codec}: {len(res.failed)} images failed, first: {res.failed[0]}")
        print(f"  {codec}: " + ", ".join(f"{p['qtag']} bpp {p['mean']['bpp']:.3f} roi_psnr {p['mean']['roi_psnr']:.2f}"
                                        for p in res.summaries))


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
    ev = sub.add_parser("evaluate", help="engine sweep with ROI masks (configs/roi.yaml mroi.eval)")
    ev.add_argument("--codec", required=True)
    ev.add_argument("--dataset", default="landsat8", help="landsat8 (test split) or 38cloud (the true-mask patch)")
    ev.add_argument("--out-root", default="results/rd")
    args = ap.parse_args(argv)
    if args.cmd == "providers":
        print("\n".join(roi.list_roi_providers()))
        return 0
    from rsicbench.reproduce.cli_roi_mroi import evaluate_cmd, masks_cmd, train_cmd

    handlers = {"validate": _validate, "detect": _detect, "agdl-train": _agdl_train, "agdl-rd": _agdl_rd,
                "masks": masks_cmd, "train": train_cmd, "evaluate": evaluate_cmd}
    try:
        return handlers[args.cmd](args)
    except (ValueError, FileNotFoundError) as e:  # RoiError is a ValueError
        print(f"rsicbench roi: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
