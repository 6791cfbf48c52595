"""`rsicbench train`: train one learned codec at one rate (resumes if interrupted).

    rsicbench train --model bmshj2018-hyperprior --rate r1          # profile from params.yaml
    rsicbench train --model ltchm-full --rates profile              # the profile's rates, one process
    rsicbench train --plan --profile paper                           # what each model trains
    rsicbench train --show-lambdas                                   # every λ conversion
    torchrun --nproc_per_node=4 -m rsicbench.cli train --model mbt2018 --rate r0   # DDP

Settings: configs/train.yaml (`common` + the active profile; a model entry may override
`arch` and `train`). Data: the train/val splits of `dataset` (rsicbench.datasets.load_split),
or image folders given with --train-dir/--val-dir. Output: results/train/<model>/<rate>/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsicbench.reproduce.training.lambdas import (
    conversion_table,
    format_table,
)
from rsicbench.reproduce.training.run_config import (
    check_config,
    parse_overrides,
    rate_tags,
    run_config,
)

from rsicbench.config import settings
from rsicbench.errors import int_at_least


def _paths(dataset: str, split: str, folder: str | None) -> list[str]:
    if folder:
        from rsicbench.reproduce.evaluation.engine import samples_from_folder

        return [s.path for s in samples_from_folder(folder)]
    from rsicbench.datasets import load_split

    return [str(s.path) for s in load_split(dataset, split)]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rsicbench train", description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--rate", help="rate tag r<i>: the i-th λ of the model in configs/train.yaml")
    ap.add_argument("--rates", help="several rates in one process: `profile` (the profile's list, "
                    "configs/train.yaml rates) or r0,r2,...; results/train/<model>/<rate>/ each")
    ap.add_argument("--plan", action="store_true", help="print every model's rate tags under the profile and exit")
    ap.add_argument("--profile", help="ci | default | paper (overrides params.yaml)")
    ap.add_argument("--out", help="output folder (default results/train/<model>/<rate>; one rate only)")
    ap.add_argument("--train-dir", help="train on the images of this folder instead of the split")
    ap.add_argument("--val-dir", help="validate on the images of this folder instead of the split")
    ap.add_argument("--steps", type=int_at_least(1), help="override the number of steps")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a train setting, e.g. --set batch=2 --set 'arch={\"N\":8,\"M\":8}'")
    ap.add_argument("--on-config-change", choices=("error", "restart"), default="error",
                    help="the output folder holds a run with other settings: stop (default) or set it "
                    "aside under results/train/.superseded/ and train from scratch (the DVC stages)")
    ap.add_argument("--show-lambdas", action="store_true", help="print every λ conversion and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _train_one(a: argparse.Namespace, cfg: dict, rate: str, overrides: dict) -> dict | None:
    """One rate: the run's result line, or None when its weights come from elsewhere."""
    from rsicbench.results import run_dir
    from rsicbench.reproduce.training.weight_sources import skip_training
    from rsicbench.reproduce.training.train import anchor_state, train

    out = Path(a.out) if a.out else run_dir(a.model, rate)
    # models.<model>.source zoo / checkpoint:<path>: nothing to train (reproduce/training/weight_sources.py)
    if skip_training(a.model, rate, cfg, out):
        return None
    tc = run_config(a.model, rate, cfg, overrides)
    check_config(tc)
    init = None
    if tc.init_from:  # fine-tuning: the anchor's final weights, its budget and its fingerprint
        init, tc.init_steps, tc.init_digest = anchor_state(run_dir(a.model, tc.init_from))
    ds = cfg.get("dataset", "ucmerced")
    result = train(tc, _paths(ds, "train", a.train_dir), _paths(ds, "val", a.val_dir), out,
                   progress=not a.quiet and sys.stderr.isatty(), on_change=a.on_config_change, init=init)
    return {"model": a.model, "rate": rate, "lambda_compressai": tc.lam, "out": str(out), **result}


def _plan_note(model: str, tags: list[str], cfg: dict) -> str:
    """'\t<steps> steps' and, with train.finetune, which rates start from which weights."""
    runs = dict(zip(tags, (run_config(model, t, cfg) for t in tags)))
    anchors = [(t, r) for t, r in runs.items() if r.snapshot_at]
    if not anchors:
        return f"\t{'/'.join(str(s) for s in sorted({r.steps for r in runs.values()}))} steps"
    (src, anchor), tuned = anchors[0], [t for t, r in runs.items() if r.init_from]
    return (f"\t{anchor.steps} steps per rate; {','.join(tuned)} start from {src} at step "
            f"{anchor.snapshot_at} and train {anchor.steps - anchor.snapshot_at} steps at their own λ")


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    cfg = settings("train", a.profile)
    if a.show_lambdas:
        print(format_table(conversion_table(cfg.get("models", {}))))
        return 0
    if a.plan:
        # the plan is the profile's: an override it would not show must not pass silently
        if a.steps is not None or a.set or a.rate or a.rates:
            ap.error("--plan prints the profile's plan (configs/train.yaml); --steps, --set, --rate and "
                     "--rates are not applied to it")
        names = sorted(cfg.get("models") or {})
        if a.model and a.model not in names:
            ap.error(f"--plan: no model {a.model!r} under profile {cfg.get('profile', a.profile)!r}")
        for name in [a.model] if a.model else names:
            tags = rate_tags(name, "profile", cfg)
            print(f"{name}\t{','.join(tags)}{_plan_note(name, tags, cfg)}")
        return 0
    if not a.model or bool(a.rate) == bool(a.rates):
        ap.error("--model and one of --rate / --rates are required")
    try:
        rates = [a.rate] if a.rate else rate_tags(a.model, a.rates, cfg)
        if a.out and len(rates) > 1:
            raise ValueError("--out takes one rate; give --rate, or leave --out out")
        overrides = parse_overrides(a.set)
        if a.steps is not None:
            overrides["steps"] = a.steps
        for rate in rates:
            line = _train_one(a, cfg, rate, overrides)
            if line is not None:
                print(json.dumps(line, sort_keys=True), flush=True)
    except (ValueError, FileNotFoundError) as e:
        print(f"rsicbench train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
