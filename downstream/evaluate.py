"""Score the trained classifier on the reconstructions of every codec and rate point.

Inputs: `results/classifier/<ds>/best.pt` (rsicbench classify train) and the engine's
`results/rd/<ds>/<codec>/<qtag>/{summary.json, per_image.csv, recon/<relpath stem>.png}`.
Outputs under `results/downstream/<ds>/`:
  <codec>/<qtag>.json  OA, per-class accuracy, confusion matrix (rows true, cols predicted),
                       the point's mean bpp / PSNR, the images scored
  clean.json           the same on the original test images (the upper reference)
  summary.json         per codec: OA-vs-bpp curve, OA at the target rates, BD-OA vs anchor
  plots/oa_vs_bpp.png, plots/confusion_<codec>_<qtag>.png   (figures for the report)

OA at a target bpp t (0.70, 0.81), per codec, first rule that applies:
  matched       the engine's matched-rate point `bpp<t>` (per-image quality search; the
                classical codecs) - its measured mean bpp is reported beside it;
  interpolated  linear interpolation in bpp between the two fixed-rate points around t
                (learned codecs: one model per lambda, no per-image rate control);
  nearest       t lies outside the codec's measured bpp range: the nearest point, flagged,
                with its own bpp (never extrapolated).
BD-OA: mean OA difference (percentage points) against the anchor codec's curve over their
shared log-bpp range (Bjontegaard's method with PCHIP, OA in place of PSNR); fixed-rate
points only.

Guard: every scored image must belong to the test split and none to the classifier's
train/val splits; otherwise the run stops (a compressed training image would inflate OA).
Resumable: a point whose JSON carries the same key (classifier checkpoint hash + the
point's summary.json hash) is not recomputed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench import fsutil
from rsicbench.config import seed_everything
from rsicbench.downstream.data import Item, load_items, load_tensor
from rsicbench.downstream.scores import bd_accuracy, confusion, predict, scores
from rsicbench.downstream.train import load_classifier
from rsicbench.reproduce.evaluation.engine import subset  # the engine's rule: the same images the codecs coded
from rsicbench.results import PER_IMAGE, SUMMARY, RatePoint, point_dirs, read_per_image, read_summary, stem


def _sha(path: Path) -> str:
    return fsutil.sha256_file(path)[:16]


def point_images(point_dir: Path) -> list[str]:
    """Relpaths of the images the engine decoded successfully at this point (per_image.csv)."""
    return sorted(read_per_image(point_dir / PER_IMAGE).images)


def list_points(rd_root: Path) -> list[tuple[str, str, Path]]:
    """(codec, qtag, folder) for every folder holding summary.json + recon/, sorted."""
    return [p for p in point_dirs(rd_root.parent, rd_root.name) if (p[2] / "recon").is_dir()]


def score_point(model, meta: dict, point_dir: Path, labels: dict[str, str], size: int, batch: int) -> dict[str, Any]:
    rels = point_images(point_dir)
    if not rels:
        raise ValueError(f"{point_dir}: no successfully decoded images")
    foreign = [r for r in rels if r not in labels]
    if foreign:
        raise ValueError(f"{point_dir}: {len(foreign)} images are not in the test split (e.g. {foreign[:3]}); "
                         "the classifier may only be scored on test-split reconstructions")
    paths = [point_dir / "recon" / f"{stem(r)}.png" for r in rels]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} reconstructions missing, e.g. {absent[0]}")
    classes = list(meta["classes"])
    cidx = {c: i for i, c in enumerate(classes)}
    images = load_tensor(paths, size, progress=sys.stderr.isatty())
    pred = predict(model, images, batch)
    res = scores(confusion([cidx[labels[r]] for r in rels], pred, len(classes)), classes)
    res["images"] = rels
    return res


def _at_target(curve: list[dict], matched: dict[str, dict], t: float) -> dict[str, Any] | None:
    tag = RatePoint(target_bpp=t).qtag
    if tag in matched:
        m = matched[tag]
        return {"method": "matched", "oa": m["oa"], "bpp": m["bpp"], "qtag": tag}
    pts = [c for c in curve if c["bpp"] is not None and c["oa"] is not None]
    if not pts:
        return None
    for a, b in zip(pts, pts[1:]):
        if a["bpp"] <= t <= b["bpp"] and b["bpp"] > a["bpp"]:
            w = (t - a["bpp"]) / (b["bpp"] - a["bpp"])
            return {"method": "interpolated", "oa": a["oa"] + w * (b["oa"] - a["oa"]), "bpp": t,
                    "between": [a["qtag"], b["qtag"]]}
    near = min(pts, key=lambda c: (abs(c["bpp"] - t), c["bpp"]))
    return {"method": "nearest", "oa": near["oa"], "bpp": near["bpp"], "qtag": near["qtag"],
            "note": f"target {t} bpp outside the measured range; nearest point used"}


def summarize(results: dict[str, dict[str, dict]], anchor: str, targets: list[float]) -> dict[str, Any]:
    """Per-codec curve, OA at targets and BD-OA vs the anchor, from per-point results."""
    codecs: dict[str, Any] = {}
    curves: dict[str, list[dict]] = {}
    for codec, points in sorted(results.items()):
        curve, matched = [], {}
        for qtag, r in sorted(points.items()):
            entry = {"qtag": qtag, "bpp": r.get("bpp"), "oa": r["oa"], "psnr": r.get("psnr")}
            (matched.__setitem__(qtag, entry) if r.get("target_bpp") is not None else curve.append(entry))
        curve.sort(key=lambda c: (c["bpp"] is None, c["bpp"] or 0.0))
        curves[codec] = curve
        codecs[codec] = {
            "curve": curve,
            "matched": [matched[k] for k in sorted(matched)],
            "at_target": {f"{t:.2f}": _at_target(curve, matched, t) for t in targets},
        }
    anchor_curve = [(c["bpp"], c["oa"]) for c in curves.get(anchor, [])]
    for codec, d in codecs.items():
        d["bd_oa_vs_anchor"] = (
            None if codec == anchor or not anchor_curve
            else bd_accuracy(anchor_curve, [(c["bpp"], c["oa"]) for c in curves[codec]])
        )
    return codecs


def _test_labels(cfg: dict[str, Any], st: dict[str, Any]) -> tuple[list[Item], str, dict[str, str]]:
    """(test items, data source, {relpath: label}); refused when the test split shares images
    with the classifier's train/val splits (`st`: the classifier's settings)."""
    ds, src, seed = cfg["dataset"], cfg.get("source", "auto"), int(cfg.get("seed", 0))
    test, data_source = load_items(ds, cfg.get("test_split", "test"), seed, src)
    train_rel = {i.relpath for sp in (st["train_split"], st["val_split"]) for i in load_items(ds, sp, seed, src)[0]}
    labels = {i.relpath: i.label for i in test if i.relpath not in train_rel}
    if len(labels) != len(test):
        raise RuntimeError(f"{ds}: the test split shares images with the classifier's training splits")
    return test, data_source, labels


def _clean_reference(model, meta: dict, test: list[Item], size: int, batch: int) -> tuple[dict, dict[str, bool]]:
    """Scores on the original test images (the training's per-class subset), and per image
    whether it was classified correctly (in image order)."""
    clean_items: list[Item] = subset(test, meta["settings"].get("per_class"))
    x = load_tensor([i.path for i in clean_items], size)
    cidx = {c: i for i, c in enumerate(meta["classes"])}
    clean_pred = predict(model, x, batch)
    clean = scores(confusion([cidx[i.label] for i in clean_items], clean_pred, len(cidx)), meta["classes"])
    clean_ok = {i.relpath: int(p) == cidx[i.label] for i, p in zip(clean_items, clean_pred)}
    return clean, clean_ok


def _score_points(cfg: dict[str, Any], model, meta: dict, ckpt: Path, ck_key: str, labels: dict[str, str],
                  out: Path, log) -> dict[str, dict[str, dict]]:
    """{codec: {qtag: result}} of every rate point under rd_dir/<ds>; a point whose stored result
    has the same classifier and summary hashes is reused, not rescored."""
    ds, st = cfg["dataset"], meta["settings"]
    size, batch = int(st["input_size"]), int(cfg["eval_batch"])
    points = list_points(Path(cfg["rd_dir"]) / ds)
    if not points:
        log(f"no reconstructions under {Path(cfg['rd_dir']) / ds} (run the sweeps first); only clean.json written")
    results: dict[str, dict[str, dict]] = {}
    for codec, qtag, pdir in points:
        summary = read_summary(pdir)
        key = f"{ck_key}-{_sha(pdir / SUMMARY)}"
        dest = out / codec / f"{qtag}.json"
        if dest.is_file():
            old = fsutil.read_json(dest)
            if old.get("key") == key:
                results.setdefault(codec, {})[qtag] = old
                continue
        res = score_point(model, meta, pdir, labels, size, batch)
        mean = summary.get("mean") or {}
        res.update({
            "dataset": ds, "codec": codec, "qtag": qtag, "quality": summary.get("quality"),
            "target_bpp": summary.get("target_bpp"), "bpp": mean.get("bpp"), "psnr": mean.get("psnr"),
            "key": key, "classifier": {"checkpoint": str(ckpt), "sha256_16": ck_key, "backbone": st["backbone"],
                                       "input_size": size, "val_oa": meta.get("val_oa")},
        })  # fmt: skip
        fsutil.write_json(dest, res)
        results.setdefault(codec, {})[qtag] = res
        log(f"{codec}/{qtag}: bpp {res['bpp'] if res['bpp'] is None else round(res['bpp'], 4)}, OA {res['oa']:.2f}%")
    return results


def evaluate_all(cfg: dict[str, Any], log=print) -> dict[str, Any]:
    ds = cfg["dataset"]
    seed_everything(int(cfg.get("seed", 0)), int(cfg.get("threads", 2)))
    ckpt = Path(cfg["out_dir"]) / ds / "best.pt"
    model, meta = load_classifier(ckpt)
    ck_key = _sha(ckpt)
    st = meta["settings"]
    size, batch = int(st["input_size"]), int(cfg["eval_batch"])
    test, data_source, labels = _test_labels(cfg, st)
    out = Path(cfg["results_dir"]) / ds

    clean, clean_ok = _clean_reference(model, meta, test, size, batch)
    clean.update({"dataset": ds, "data_source": data_source, "classifier_key": ck_key, "bpp": 24.0,
                  "images": list(clean_ok)})
    fsutil.write_json(out / "clean.json", clean)
    log(f"clean test OA {clean['oa']:.2f}% ({clean['n_images']} images)")
    results = _score_points(cfg, model, meta, ckpt, ck_key, labels, out, log)

    # The codecs are scored on a subset (configs/eval.yaml): the clean OA on exactly the images
    # they coded is the fair "no compression" row beside them.
    coded = sorted({r for pts in results.values() for res in pts.values() for r in res["images"]} & set(clean_ok))
    clean_coded = 100.0 * sum(clean_ok[r] for r in coded) / len(coded) if coded else None
    targets = [float(t) for t in cfg.get("target_bpps", [0.7, 0.81])]
    codecs = summarize(results, cfg.get("anchor", "jpeg2000"), targets)
    summary = {
        "dataset": ds, "anchor": cfg.get("anchor", "jpeg2000"), "targets": targets,
        "classifier": {"checkpoint": str(ckpt), "sha256_16": ck_key, "settings": st, "val_oa": meta.get("val_oa"),
                       "epoch": meta.get("epoch")},
        "clean": {"oa": clean["oa"], "n_images": clean["n_images"],
                  "oa_coded_images": clean_coded, "n_coded_images": len(coded)},
        "codecs": codecs,
        "methods": {"matched": "engine matched-rate folder bpp<t> (per-image quality search)",
                    "interpolated": "linear in bpp between neighbouring fixed-rate points",
                    "nearest": "target outside the measured range; nearest point, not extrapolated",
                    "bd_oa": "mean OA difference (pp) vs anchor over shared log10-bpp range, PCHIP"},
    }  # fmt: skip
    fsutil.write_json(out / "summary.json", summary)
    _plots(out, results, codecs, clean["oa"], targets)
    return summary


def _plots(out: Path, results: dict, codecs: dict, clean_oa: float, targets: list[float]) -> None:
    """OA-vs-bpp curves and confusion heatmaps at the target rates (PNG, for the report)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = {"Software": None}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for codec, d in sorted(codecs.items()):
        pts = [(c["bpp"], c["oa"]) for c in d["curve"] if c["bpp"] is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=codec)
        m = [(c["bpp"], c["oa"]) for c in d["matched"] if c["bpp"] is not None]
        if m:
            ax.scatter(*zip(*m), marker="x", color=ax.lines[-1].get_color() if pts else None)
    ax.axhline(clean_oa, color="k", ls=":", lw=1, label="original")
    for t in targets:
        ax.axvline(t, color="gray", ls="--", lw=0.6)
    ax.set_xlabel("bpp")
    ax.set_ylabel("OA (%)")
    ax.grid(alpha=0.3)
    if codecs:
        ax.legend(fontsize=7)
    fig.tight_layout()
    with fsutil.atomic_path(out / "plots" / "oa_vs_bpp.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata=meta)
    plt.close(fig)
    for codec, d in sorted(codecs.items()):
        for t, at in sorted(d["at_target"].items()):
            if not at or "qtag" not in at:
                continue
            r = results[codec][at["qtag"]]
            cm = np.asarray(r["confusion"], dtype=float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            fig, ax = plt.subplots(figsize=(6.4, 5.6))
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            n = len(r["classes"])
            ax.set_xticks(range(n), r["classes"], rotation=90, fontsize=6)
            ax.set_yticks(range(n), r["classes"], fontsize=6)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{codec} {at['qtag']} ({r['bpp']:.3f} bpp): OA {r['oa']:.1f}%", fontsize=9)
            fig.tight_layout()
            with fsutil.atomic_path(out / "plots" / f"confusion_{codec}_{at['qtag']}.png") as tmp:
                fig.savefig(tmp, format="png", dpi=110, metadata=meta)
            plt.close(fig)
