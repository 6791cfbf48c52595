"""`rsicbench evaluate`: evaluate a learned-codec checkpoint through the engine.

    rsicbench evaluate --model bmshj2018-hyperprior --rate r1
    rsicbench evaluate --model ltchm-full --rates profile     # the profile's rates, one process
    rsicbench evaluate --model mbt2018 --rate r0 --checkpoint my_compressai.pth.tar
    rsicbench evaluate --model bmshj2018-hyperprior --rate r7 --source zoo   # zoo quality 8

Runs reproduce.evaluation.engine.run_sweep (real bitstreams, full metric set) on the `eval.split` of
the dataset, with quality = the rate index, writing results/rd/<ds>/<model>/q<i>/...
Then writes `rate_check.csv` + `rate_check.json` beside the summary: per image the real
bpp (the container bytes the engine coded), the bpp estimated from the likelihoods, and
their ratio. The
weights: `--source train | zoo | checkpoint:<path>` (reproduce/training/weight_sources.py; widths read from
the tensors where the model family allows, printed as `arch`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsicbench.reproduce.evaluation.executors import (
    add_executor_args,
    executor_settings,
)
from rsicbench.reproduce.evaluation.rate_audit import rate_check

from rsicbench.config import settings


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rsicbench evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--rate", help="rate tag r<i>")
    ap.add_argument("--rates", help="several rates in one process: `profile` (configs/train.yaml rates "
                    "of this model) or r0,r2,...")
    ap.add_argument("--checkpoint", help="a checkpoint file (ours, CompressAI, CompressAI-Trainer, a state dict); "
                    "same as --source checkpoint:PATH")
    ap.add_argument("--source", help="train | zoo | checkpoint:<path> (default: configs/train.yaml "
                    "models.<model>.source, else train; reproduce/training/weight_sources.py)")
    ap.add_argument("--N", type=int)
    ap.add_argument("--M", type=int)
    ap.add_argument("--profile")
    ap.add_argument("--dataset", help="a dataset under data/ (default: configs/train.yaml dataset), e.g. one "
                    "made by `rsicbench data fetch imagefolder`")
    ap.add_argument("--images-dir", help="evaluate the images of this folder instead of the split")
    ap.add_argument("--dataset-name", help="results/rd/<name> for --images-dir (default: folder name)")
    ap.add_argument("--out-root", default="results/rd")
    add_executor_args(ap)
    return ap


def _options(a: argparse.Namespace, cfg: dict, rate: str) -> dict:
    """Codec options of the weights to evaluate (--checkpoint / --source / the configured
    source) plus the --N/--M overrides; SourceError names the setting that cannot be used."""
    from rsicbench.reproduce.training.weight_sources import codec_options, model_source

    text = f"checkpoint:{a.checkpoint}" if a.checkpoint else a.source or model_source(cfg, a.model)
    options = {**codec_options(a.model, rate, text, cfg, "--source" if a.source else
                               f"configs/train.yaml: {a.model}.source"),
               "threads": int(cfg.get("eval", {}).get("threads", 1))}
    if a.checkpoint:  # relative to where the user is, not the project root
        options["checkpoint"] = str(Path(a.checkpoint).resolve())
    options.update({k: v for k, v in (("N", a.N), ("M", a.M)) if v})
    return options


def _evaluate_one(a: argparse.Namespace, cfg: dict, rate: str, samples, ds: str, where: dict) -> int:
    """One rate point through the engine + its rate audit; prints the result line."""
    from rsicbench.reproduce.evaluation import engine
    from rsicbench.reproduce.codecs.base import create_codec
    from rsicbench.reproduce.training.weight_sources import SourceError

    ev = cfg.get("eval", {})
    try:
        options = _options(a, cfg, rate)
    except SourceError as e:
        print(f"rsicbench evaluate: {e}", file=sys.stderr)
        return 2
    spec = engine.SweepSpec(codec=a.model, dataset=ds, split=ev.get("split", "test"),
                            points=[engine.RatePoint(quality=int(rate[1:]))], out_root=Path(a.out_root),
                            options=options, metrics=dict(ev.get("metrics", {"device": "cpu", "lpips": True})),
                            workers=int(ev.get("workers", 1)), threads=int(ev.get("threads", 1)), **where)
    try:
        result = engine.run_sweep(spec, samples)
        check = rate_check(create_codec(a.model, int(rate[1:]), **options), samples,
                           spec.point_dir(spec.points[0]))
    except Exception as e:
        print(f"rsicbench evaluate: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    s = result.summaries[0]
    d = s.get("describe") or {}
    print(json.dumps({"model": a.model, "rate": rate, "n_ok": s["n_ok"], "n_failed": s["n_failed"],
                      "source": d.get("source"), "checkpoint_format": d.get("checkpoint_format"), "arch": d.get("arch"),
                      "bpp": s["mean"]["bpp"], "psnr": s["mean"]["psnr"], **check}, sort_keys=True), flush=True)
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    if bool(a.rate) == bool(a.rates):
        ap.error("give one of --rate / --rates")
    cfg = settings("train", a.profile)
    ev = cfg.get("eval", {})
    from rsicbench.reproduce.training.run_config import rate_tags

    try:
        rates = [a.rate] if a.rate else rate_tags(a.model, a.rates, cfg)
    except ValueError as e:
        print(f"rsicbench evaluate: {e}", file=sys.stderr)
        return 2
    bad = [r for r in rates if not (r.startswith("r") and r[1:].isdigit())]
    if bad:
        print(f"rsicbench evaluate: rate tag {bad[0]!r}: expected r<index>", file=sys.stderr)
        return 2
    from rsicbench.reproduce.evaluation.samples import learned_eval_samples

    if a.checkpoint and a.source:
        print("rsicbench evaluate: give --checkpoint or --source, not both", file=sys.stderr)
        return 2
    sweep_ev = settings("eval", a.profile)
    samples, ds = learned_eval_samples(cfg, sweep_ev, a.dataset, a.images_dir, a.dataset_name)
    try:  # train.yaml eval.executor, else configs/eval.yaml's (the sweeps')
        where = executor_settings(a, {k: ev.get(k, sweep_ev.get(k)) for k in ("executor", "scheduler")})
    except ValueError as e:
        print(f"rsicbench evaluate: {e}", file=sys.stderr)
        return 2
    worst = 0
    for rate in rates:  # every rate even after a failed one: what ran is kept, the exit code says
        worst = max(worst, _evaluate_one(a, cfg, rate, samples, ds, where))
    return worst


if __name__ == "__main__":
    sys.exit(main())
