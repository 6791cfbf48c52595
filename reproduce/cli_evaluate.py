"""`rsicbench evaluate`: evaluate a learned-codec checkpoint through the engine.

    rsicbench evaluate --model bmshj2018-hyperprior --rate r1
    rsicbench evaluate --model mbt2018 --rate r0 --checkpoint my_compressai.pth.tar
    rsicbench evaluate --model bmshj2018-hyperprior --rate r7 --source zoo   # zoo quality 8

Runs reproduce.engine.run_sweep (real bitstreams, full metric set) on the `eval.split` of
the dataset, with quality = the rate index, writing results/rd/<ds>/<model>/q<i>/...
Then writes `rate_check.csv` + `rate_check.json` beside the summary: per image the real
bpp (the container bytes the engine coded), the bpp estimated from the likelihoods, and
their ratio. The
weights: `--source train | zoo | checkpoint:<path>` (reproduce/weight_sources.py; widths read from
the tensors where the model family allows, printed as `arch`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from rsicbench.config import settings
from rsicbench.fsutil import write_json, write_text
from rsicbench.reproduce.executors import add_executor_args, executor_settings


def rate_check(codec, samples, out_dir: Path) -> dict:
    """Real vs estimated bpp per image. Real: the engine's container bytes (per_image.csv in
    `out_dir`; images that failed there are left out). Estimated: one eval-mode forward."""
    from rsicbench.imageio import read_rgb

    with open(out_dir / "per_image.csv", newline="") as f:
        real = {r["image"]: float(r["bpp"]) for r in csv.DictReader(f) if not r["error"] and r["bpp"]}
    rows = []
    for s in sorted(samples, key=lambda s: s.relpath):
        if s.relpath not in real:
            continue
        img = read_rgb(s.path)
        est = codec.estimate_bits(img) / (img.shape[0] * img.shape[1])
        rows.append({"image": s.relpath, "bpp_real": real[s.relpath], "bpp_est": est,
                     "ratio": real[s.relpath] / est if est else None})
    if not rows:
        raise RuntimeError(f"{out_dir / 'per_image.csv'}: no successfully coded image to check the rate of")
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["image", "bpp_real", "bpp_est", "ratio"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out_dir / "rate_check.csv", buf.getvalue())
    n = len(rows)
    summary = {"n_images": n, "bpp_real_mean": sum(r["bpp_real"] for r in rows) / n,
               "bpp_est_mean": sum(r["bpp_est"] for r in rows) / n}
    summary["real_over_est"] = summary["bpp_real_mean"] / summary["bpp_est_mean"] if summary["bpp_est_mean"] else None
    write_json(out_dir / "rate_check.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--rate", required=True, help="rate tag r<i>")
    ap.add_argument("--checkpoint", help="a checkpoint file (ours, CompressAI, CompressAI-Trainer, a state dict); "
                    "same as --source checkpoint:PATH")
    ap.add_argument("--source", help="train | zoo | checkpoint:<path> (default: configs/train.yaml "
                    "models.<model>.source, else train; reproduce/weight_sources.py)")
    ap.add_argument("--N", type=int)
    ap.add_argument("--M", type=int)
    ap.add_argument("--profile")
    ap.add_argument("--dataset", help="a dataset under data/ (default: configs/train.yaml dataset), e.g. one "
                    "made by `rsicbench data fetch imagefolder`")
    ap.add_argument("--images-dir", help="evaluate the images of this folder instead of the split")
    ap.add_argument("--dataset-name", help="results/rd/<name> for --images-dir (default: folder name)")
    ap.add_argument("--out-root", default="results/rd")
    add_executor_args(ap)
    a = ap.parse_args(argv)
    cfg = settings("train", a.profile)
    ev = cfg.get("eval", {})
    from rsicbench.reproduce import engine

    if not (a.rate.startswith("r") and a.rate[1:].isdigit()):
        print(f"rsicbench evaluate: rate tag {a.rate!r}: expected r<index>", file=sys.stderr)
        return 2
    from rsicbench.reproduce.weight_sources import SourceError, codec_options, model_source

    if a.checkpoint and a.source:
        print("rsicbench evaluate: give --checkpoint or --source, not both", file=sys.stderr)
        return 2
    text = f"checkpoint:{a.checkpoint}" if a.checkpoint else a.source or model_source(cfg, a.model)
    try:
        options = {**codec_options(a.model, a.rate, text, cfg, "--source" if a.source else
                                   f"configs/train.yaml: {a.model}.source"), "threads": int(ev.get("threads", 1))}
    except SourceError as e:
        print(f"rsicbench evaluate: {e}", file=sys.stderr)
        return 2
    if a.checkpoint:  # relative to where the user is, not the project root
        options["checkpoint"] = str(Path(a.checkpoint).resolve())
    options.update({k: v for k, v in (("N", a.N), ("M", a.M)) if v})
    if a.images_dir:
        samples, ds = engine.samples_from_folder(a.images_dir), a.dataset_name or Path(a.images_dir).name
    else:
        from rsicbench.datasets import load_split

        ds = a.dataset or cfg.get("dataset", "ucmerced")
        samples = [engine.Sample(str(s.path), s.relpath, s.label or "") for s in load_split(ds, ev.get("split", "test"))]
    # Same images as the classical sweeps (configs/eval.yaml) unless train.yaml's eval says
    # otherwise: BD rows vs the anchor and downstream OA compare codecs image for image.
    sweep_ev = settings("eval", a.profile)
    per_class = ev.get("per_class", sweep_ev.get("per_class"))
    max_images = ev.get("max_images", sweep_ev.get("max_images"))
    samples = engine.subset(samples, per_class or None, max_images or None)
    try:  # train.yaml eval.executor, else configs/eval.yaml's (the sweeps')
        where = executor_settings(a, {k: ev.get(k, sweep_ev.get(k)) for k in ("executor", "scheduler")})
    except ValueError as e:
        print(f"rsicbench evaluate: {e}", file=sys.stderr)
        return 2
    spec = engine.SweepSpec(codec=a.model, dataset=ds, split=ev.get("split", "test"),
                            points=[engine.RatePoint(quality=int(a.rate[1:]))], out_root=Path(a.out_root),
                            options=options, metrics=dict(ev.get("metrics", {"device": "cpu", "lpips": True})),
                            workers=int(ev.get("workers", 1)), threads=int(ev.get("threads", 1)), **where)
    try:
        result = engine.run_sweep(spec, samples)
        from rsicbench.reproduce.codec import create_codec

        check = rate_check(create_codec(a.model, int(a.rate[1:]), **options), samples,
                           spec.point_dir(spec.points[0]))
    except Exception as e:
        print(f"rsicbench evaluate: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    s = result.summaries[0]
    d = s.get("describe") or {}
    print(json.dumps({"model": a.model, "rate": a.rate, "n_ok": s["n_ok"], "n_failed": s["n_failed"],
                      "source": d.get("source"), "checkpoint_format": d.get("checkpoint_format"), "arch": d.get("arch"),
                      "bpp": s["mean"]["bpp"], "psnr": s["mean"]["psnr"], **check}, sort_keys=True))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
