"""AGDL's runs in the ROI section (configs/roi.yaml `agdl`; `rsicbench roi agdl-train|agdl-rd`).

Train F, G and G_car on UC Merced train images with their stored ROI masks, then measure
ROI-PSNR / PSNR vs real bpp of agdl, agdl-car (base codec + G_car), the base codec and
JPEG2000 on the test images (`agdl_rd`), and once more through the engine into
results/rd/<rd_dataset>/<codec>/q<quality>/ (`agdl_engine`). `s` is settings("roi").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsicbench.fsutil import write_json
from rsicbench.imageio import read_rgb
from rsicbench.reproduce.roi import providers as roi


def ucmerced_split(cfg: dict, which: str) -> list:
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


def stored_roi(cfg: dict, sample, img) -> np.ndarray:
    """The stored ROI (results/roi/masks/<ds>/<relpath>.png, stage roi-masks@<ds>)."""
    from rsicbench.reproduce.roi.masks import read_roi

    return read_roi(cfg["mask_dir"], sample.relpath, img.shape)


def train_nets(s: dict, out: str | Path, progress: bool) -> tuple[int, dict]:
    """Train the AGDL nets -> `out` (+ `out`.json: profile, image count, log, config).
    Returns (number of training images, training log)."""
    from rsicbench.config import seed_everything
    from rsicbench.reproduce.codecs import agdl

    cfg = s["agdl"]
    seed_everything(int(s["seed"]), int(s["threads"]))
    files = ucmerced_split(cfg, "train")
    imgs = [read_rgb(f.path) for f in files]
    rois = [stored_roi(cfg, f, im) for im, f in zip(imgs, files)]
    nets, log = agdl.train_agdl(
        imgs, rois, base=cfg["base"], qualities=tuple(cfg["train_qualities"]), steps=tuple(cfg["steps"]),
        crop=int(cfg["crop"]), batch=int(cfg["batch"]), lr=float(cfg["lr"]), width=int(cfg["width"]),
        depth=int(cfg["depth"]), blocks=int(cfg["blocks"]), critical_fraction=float(cfg["critical_fraction"]),
        cs_ratio=float(cfg["cs_ratio"]), step=float(cfg["step"]), seed=int(s["seed"]), progress=progress)
    nets.save(out)
    write_json(Path(out).with_suffix(".json"), {"profile": s["profile"], "train_images": len(files), "log": log,
                                               "config": cfg})
    return len(files), log


def _systems(s: dict, checkpoint: str | Path) -> tuple[list, dict]:
    """(name, quality, make(quality) -> codec) of the four compared systems, and AGDL's options."""
    from rsicbench.reproduce.codecs import agdl
    from rsicbench.reproduce.codecs.base import create_codec

    cfg = s["agdl"]
    nets = agdl.AGDLNets.load(checkpoint)
    opts = {"critical_fraction": float(cfg["critical_fraction"]), "cs_ratio": float(cfg["cs_ratio"]),
            "step": float(cfg["step"]), "seed": int(s["seed"])}
    systems = [("agdl", q, lambda q: agdl.AGDLCodec(q, base=cfg["base"], nets=nets, **opts)) for q in cfg["eval_qualities"]]
    systems += [("agdl-car", q, lambda q: agdl.AGDLCodec(q, base=cfg["base"], nets=nets, refine=False)) for q in cfg["eval_qualities"]]
    systems += [(cfg["base"], q, lambda q: create_codec(cfg["base"], q)) for q in cfg["eval_qualities"]]
    systems += [("jpeg2000", r, lambda r: create_codec("jpeg2000", r)) for r in cfg["j2k_ratios"]]
    return systems, opts


def _rd_point(codec, data: list, rois: dict) -> dict:
    """Mean bpp / PSNR / ROI-PSNR of one codec setting over the images (ROI-PSNR skips empty masks)."""
    from rsicbench.metrics.psnr import psnr, roi_psnr
    from rsicbench.results import capped

    rows = []
    for f, img in data:
        stream = codec.encode(img)
        rec = codec.decode(stream)
        m = rois[f.relpath]
        rows.append((8.0 * len(stream) / (img.shape[0] * img.shape[1]), psnr(img, rec),
                     roi_psnr(img, rec, m) if roi.roi_state(m) != "empty" else float("nan")))
    a = np.array(rows, dtype=np.float64)
    # the averaging rule of rsicbench.results: +inf dB (exact image) capped at 100 dB, nan skipped
    a[:, 1], a[:, 2] = capped(a[:, 1], "psnr"), capped(a[:, 2], "roi_psnr")
    return {"bpp": float(a[:, 0].mean()), "psnr": float(a[:, 1].mean()),
            "roi_psnr": float(np.nanmean(a[:, 2])) if np.isfinite(a[:, 2]).any() else None, "images": len(rows)}


def agdl_rd(s: dict, checkpoint: str | Path, out: str | Path, progress: bool) -> dict:
    """ROI-PSNR / PSNR vs real bpp curves of the four systems on the evaluation images -> `out`."""
    from tqdm import tqdm

    cfg = s["agdl"]
    files = ucmerced_split(cfg, "eval")
    systems, opts = _systems(s, checkpoint)
    data = [(f, read_rgb(f.path)) for f in files]
    rois = {f.relpath: stored_roi(cfg, f, im) for f, im in data}
    curves: dict[str, list] = {}
    for name, q, make in tqdm(systems, desc="agdl rd", disable=not progress):
        curves.setdefault(name, []).append({"quality": q, **_rd_point(make(q), data, rois)})
    for v in curves.values():
        v.sort(key=lambda r: r["bpp"])
    result = {"dataset": "ucmerced", "profile": s["profile"], "roi_provider": cfg["roi_provider"],
              "eval_images": [f.relpath for f in files], "curves": curves, "agdl_options": opts}
    write_json(out, result)
    return result


def agdl_engine(s: dict, checkpoint: str | Path, rd_root: Path) -> list[tuple[str, list[dict]]]:
    """The same four systems through the engine: results/rd/<rd_dataset>/<codec>/q<quality>/.
    Returns (codec, its rate-point summaries) per system."""
    from rsicbench.reproduce.evaluation import engine

    cfg = s["agdl"]
    files = ucmerced_split(cfg, "eval")
    samples = list(files)  # rsicbench.results.Sample, from load_split
    opts = {"checkpoint": str(checkpoint), "base": cfg["base"], "critical_fraction": float(cfg["critical_fraction"]),
            "cs_ratio": float(cfg["cs_ratio"]), "step": float(cfg["step"]), "seed": int(s["seed"])}
    rows = [("agdl", cfg["eval_qualities"], opts),
            ("agdl-car", cfg["eval_qualities"], {"checkpoint": str(checkpoint), "base": cfg["base"]}),
            (cfg["base"], cfg["eval_qualities"], {}), ("jpeg2000", cfg["j2k_ratios"], {})]
    done = []
    for codec, qualities, options in rows:
        spec = engine.SweepSpec(codec=codec, dataset=cfg["rd_dataset"], split="test",
                                points=[engine.RatePoint(quality=q) for q in qualities], out_root=Path(rd_root),
                                options=options, metrics=dict(cfg.get("metrics", {"device": "cpu", "lpips": False})),
                                workers=1, threads=int(s["threads"]), roi_dir=cfg["mask_dir"])
        res = engine.run_sweep(spec, samples)
        if res.failed:
            raise roi.RoiError(f"{codec}: {len(res.failed)} images failed, first: {res.failed[0]}")
        done.append((codec, res.summaries))
    return done
