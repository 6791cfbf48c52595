"""MROI-CFHPM's runs in the ROI section (configs/roi.yaml `mroi`; `rsicbench roi train|evaluate`).

The comparison of Zhang et al. 2023 (Table 3 / Fig. 8): MROI-CFHPM vs CFHPM, Balle 2018
(bmshj2018-hyperprior) and JPEG2000, all trained/evaluated on the Landsat-8 tiles of
data/landsat8 with the stored ROI masks (stage roi-masks@landsat8), and evaluated once more on
the 38-Cloud patch with its TRUE (inverted) cloud mask (dataset name `38cloud`: data/samples
images under 38cloud/).

Learned models of this section are trained on Landsat-8, so their checkpoints live in
results/train/<dataset>/<model>/r<i>/ (not results/train/<model>/, which the UC Merced
learned section owns).
"""

from __future__ import annotations

from pathlib import Path

from rsicbench.config import settings
from rsicbench.reproduce.roi import providers as roi


def mroi_settings() -> dict:
    """configs/roi.yaml `mroi` with the file's seed, threads and profile."""
    s = settings("roi")
    cfg = dict(s["mroi"])
    cfg["seed"], cfg["threads"], cfg["profile"] = int(s["seed"]), int(s["threads"]), s["profile"]
    return cfg


def train_dir(cfg: dict, model: str, rate: str) -> Path:
    return Path("results/train") / cfg["dataset"] / model / rate


def mask_reader(mask_dir: str, images_root: Path):
    """roi_for(path, image) for train.py: the stored mask of the image at `path`."""
    from rsicbench.reproduce.roi.masks import read_roi

    def roi_for(path: str, image):
        return read_roi(mask_dir, str(Path(path).resolve().relative_to(images_root.resolve())), image.shape)

    return roi_for


def train_model(model: str, rate: str, progress: bool, on_change: str = "error") -> dict:
    """Train `model` at rate tag `rate` on the section's dataset with its stored ROI masks.
    Returns what to report: model, rate, CompressAI λ, output folder and train()'s result."""
    from rsicbench.datasets import load_split
    from rsicbench.reproduce.training.run_config import run_config
    from rsicbench.reproduce.training.train import train

    cfg = mroi_settings()
    tc = run_config(model, rate, {"models": cfg["models"], "train": cfg["train"], "arch": cfg["arch"],
                                  "seed": cfg["seed"], "threads": cfg["threads"]})
    ds = cfg["dataset"]
    tr = [str(s.path) for s in load_split(ds, "train")]
    va = [str(s.path) for s in load_split(ds, "val")]
    out = train_dir(cfg, model, rate)
    roi_for = mask_reader(cfg["mask_dir"], Path("data") / ds / "images")
    result = train(tc, tr, va, out, progress=progress, roi_for=roi_for, on_change=on_change)
    return {"model": model, "rate": rate, "lambda_compressai": tc.lam, "out": str(out), **result}


def eval_samples(cfg: dict, dataset: str):
    """(engine samples, their mask folder) of the section's dataset or of `38cloud`."""
    from rsicbench.datasets import load_split
    from rsicbench.results import Sample

    if dataset == cfg["dataset"]:
        return load_split(dataset, cfg["eval"]["split"]), cfg["mask_dir"]
    if dataset == "38cloud":  # the patch with its true mask; stored under data/samples/images/38cloud/
        root = Path("data/samples/images")
        files = sorted((root / "38cloud").glob("*.png"))
        if not files:
            raise roi.RoiError(f"{root}/38cloud: no 38-Cloud patch (run the fetch@samples stage)")
        return [Sample(str(f), str(f.relative_to(root)), "38cloud") for f in files], cfg["samples_mask_dir"]
    raise roi.RoiError(f"roi evaluate: dataset {dataset!r}: use {cfg['dataset']} or 38cloud")


def _eval_runs(cfg: dict, codec: str) -> list[tuple]:
    """(quality, codec options) per rate point: one checkpoint per rate index for the section's
    learned models, the configured qualities for classical codecs."""
    if codec in cfg["models"]:
        n = len(cfg["models"][codec]["lambdas"])
        return [(i, {"checkpoint": str(train_dir(cfg, codec, f"r{i}") / "best.pt"), "threads": 1}) for i in range(n)]
    if codec in cfg["eval"]["classical"]:
        return [(q, {}) for q in cfg["eval"]["classical"][codec]]
    raise roi.RoiError(f"roi evaluate: codec {codec!r} is neither in mroi.models nor mroi.eval.classical")


def evaluate_codec(codec: str, dataset: str, out_root: Path) -> list[dict]:
    """Engine sweep of `codec` with ROI masks -> <out_root>/<dataset>/<codec>/<qtag>/ and the
    whole curve; returns the rate points' summaries."""
    from rsicbench.reproduce.evaluation import engine

    cfg = mroi_settings()
    ev = cfg["eval"]
    samples, mask_dir = eval_samples(cfg, dataset)
    summaries: list[dict] = []
    for q, options in _eval_runs(cfg, codec):
        spec = engine.SweepSpec(codec=codec, dataset=dataset, split=ev["split"],
                                points=[engine.RatePoint(quality=q)], out_root=Path(out_root), options=options,
                                metrics=dict(ev["metrics"]), workers=1, threads=cfg["threads"], roi_dir=mask_dir)
        res = engine.run_sweep(spec, samples)
        if res.failed:
            raise roi.RoiError(f"{codec} q{q}: {len(res.failed)} images failed, first: {res.failed[0]}")
        summaries += res.summaries
    engine.write_curve(spec, summaries)  # the whole curve (each run_sweep wrote one point)
    return summaries
