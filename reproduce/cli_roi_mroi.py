"""`rsicbench roi masks|train|evaluate`: ROI masks as data, and MROI-CFHPM's RD rows.

Settings: configs/roi.yaml `mroi` (common + profile). The comparison of Zhang et al. 2023
(Table 3 / Fig. 8): MROI-CFHPM vs CFHPM, Balle 2018 (bmshj2018-hyperprior) and JPEG2000,
here all trained/evaluated on the Landsat-8 tiles of data/landsat8 with the stored ROI
masks (stage roi-masks@landsat8), and evaluated once more on the 38-Cloud patch with its
TRUE (inverted) cloud mask (dataset name `38cloud`: data/samples images under 38cloud/).

Learned models of this section are trained on Landsat-8, so their checkpoints live in
results/train/<dataset>/<model>/r<i>/ (not results/train/<model>/, which the UC Merced
learned section owns).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsicbench.config import settings
from rsicbench.reproduce import roi


def _mroi() -> dict:
    s = settings("roi")
    cfg = dict(s["mroi"])
    cfg["seed"], cfg["threads"], cfg["profile"] = int(s["seed"]), int(s["threads"]), s["profile"]
    return cfg


def masks_cmd(args: argparse.Namespace) -> int:
    from rsicbench.fsutil import write_json
    from rsicbench.reproduce.roi_masks import build_masks

    stats = build_masks(args.dataset, args.data_dir, args.out_root, progress=sys.stderr.isatty())
    write_json(args.summary or f"results/roi/masks_{args.dataset}.json", stats)
    print(json.dumps(stats, sort_keys=True))
    return 0


def train_dir(cfg: dict, model: str, rate: str) -> Path:
    return Path("results/train") / cfg["dataset"] / model / rate


def _mask_reader(mask_dir: str, images_root: Path):
    """roi_for(path, image) for train.py: the stored mask of the image at `path`."""
    from rsicbench.reproduce.roi_masks import read_roi

    def roi_for(path: str, image):
        return read_roi(mask_dir, str(Path(path).resolve().relative_to(images_root.resolve())), image.shape)

    return roi_for


def train_cmd(args: argparse.Namespace) -> int:
    from rsicbench.datasets import load_split
    from rsicbench.reproduce.cli_train import run_config
    from rsicbench.reproduce.train import train

    cfg = _mroi()
    tc = run_config(args.model, args.rate, {"models": cfg["models"], "train": cfg["train"], "arch": cfg["arch"],
                                            "seed": cfg["seed"], "threads": cfg["threads"]})
    ds = cfg["dataset"]
    tr = [str(s.path) for s in load_split(ds, "train")]
    va = [str(s.path) for s in load_split(ds, "val")]
    out = train_dir(cfg, args.model, args.rate)
    roi_for = _mask_reader(cfg["mask_dir"], Path("data") / ds / "images")
    result = train(tc, tr, va, out, progress=not args.quiet and sys.stderr.isatty(), roi_for=roi_for)
    print(json.dumps({"model": args.model, "rate": args.rate, "lambda_compressai": tc.lam, "out": str(out),
                      **result}, sort_keys=True))
    return 0


def _samples(cfg: dict, dataset: str):
    from rsicbench.datasets import load_split
    from rsicbench.reproduce import engine

    if dataset == cfg["dataset"]:
        return [engine.Sample(str(s.path), s.relpath, s.label or "")
                for s in load_split(dataset, cfg["eval"]["split"])], cfg["mask_dir"]
    if dataset == "38cloud":  # the patch with its true mask; stored under data/samples/images/38cloud/
        root = Path("data/samples/images")
        files = sorted((root / "38cloud").glob("*.png"))
        if not files:
            raise roi.RoiError(f"{root}/38cloud: no 38-Cloud patch (run the fetch@samples stage)")
        return [engine.Sample(str(f), str(f.relative_to(root)), "38cloud") for f in files], cfg["samples_mask_dir"]
    raise roi.RoiError(f"roi evaluate: dataset {dataset!r}: use {cfg['dataset']} or 38cloud")


def evaluate_cmd(args: argparse.Namespace) -> int:
    from rsicbench.reproduce import engine

    cfg = _mroi()
    ev = cfg["eval"]
    samples, mask_dir = _samples(cfg, args.dataset)
    learned = args.codec in cfg["models"]
    if learned:  # one checkpoint per rate index
        n = len(cfg["models"][args.codec]["lambdas"])
        runs = [(i, {"checkpoint": str(train_dir(cfg, args.codec, f"r{i}") / "best.pt"), "threads": 1})
                for i in range(n)]
    elif args.codec in ev["classical"]:
        runs = [(q, {}) for q in ev["classical"][args.codec]]
    else:
        raise roi.RoiError(f"roi evaluate: codec {args.codec!r} is neither in mroi.models nor mroi.eval.classical")
    summaries = []
    for q, options in runs:
        spec = engine.SweepSpec(codec=args.codec, dataset=args.dataset, split=ev["split"],
                                points=[engine.RatePoint(quality=q)], out_root=Path(args.out_root), options=options,
                                metrics=dict(ev["metrics"]), workers=1, threads=cfg["threads"], roi_dir=mask_dir)
        res = engine.run_sweep(spec, samples)
        if res.failed:
            raise roi.RoiError(f"{args.codec} q{q}: {len(res.failed)} images failed, first: {res.failed[0]}")
        summaries += res.summaries
    engine.write_curve(spec, summaries)  # the whole curve (each run_sweep wrote one point)
    for s in sorted(summaries, key=lambda s: s["mean"]["bpp"]):
        m = s["mean"]
        print(f"{args.dataset}/{args.codec}/{s['qtag']}: bpp {m['bpp']:.4f} psnr {m['psnr']:.2f} "
              f"roi_psnr {m['roi_psnr'] if m['roi_psnr'] is None else round(m['roi_psnr'], 2)}")
    return 0
