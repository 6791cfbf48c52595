"""`rsicbench train`: train one learned codec at one rate (resumes if interrupted).

    rsicbench train --model bmshj2018-hyperprior --rate r1          # profile from params.yaml
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench train", description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--rate", help="rate tag r<i>: the i-th λ of the model in configs/train.yaml")
    ap.add_argument("--profile", help="ci | default | paper (overrides params.yaml)")
    ap.add_argument("--out", help="output folder (default results/train/<model>/<rate>)")
    ap.add_argument("--train-dir", help="train on the images of this folder instead of the split")
    ap.add_argument("--val-dir", help="validate on the images of this folder instead of the split")
    ap.add_argument("--steps", type=int_at_least(1), help="override the number of steps")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a train setting, e.g. --set batch=2 --set 'arch={\"N\":8,\"M\":8}'")
    ap.add_argument("--show-lambdas", action="store_true", help="print every λ conversion and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    cfg = settings("train", a.profile)
    if a.show_lambdas:
        print(format_table(conversion_table(cfg.get("models", {}))))
        return 0
    if not (a.model and a.rate):
        ap.error("--model and --rate are required")
    from rsicbench.results import run_dir
    from rsicbench.reproduce.training.weight_sources import skip_training

    try:  # models.<model>.source zoo / checkpoint:<path>: nothing to train (reproduce/training/weight_sources.py)
        if skip_training(a.model, a.rate, cfg, Path(a.out) if a.out else run_dir(a.model, a.rate)):
            return 0
    except ValueError as e:
        print(f"rsicbench train: error: {e}", file=sys.stderr)
        return 2
    overrides = parse_overrides(a.set)
    if a.steps is not None:
        overrides["steps"] = a.steps
    try:
        tc = run_config(a.model, a.rate, cfg, overrides)
        check_config(tc)
        from rsicbench.results import run_dir
        from rsicbench.reproduce.training.train import train

        out = Path(a.out) if a.out else run_dir(a.model, a.rate)
        ds = cfg.get("dataset", "ucmerced")
        result = train(tc, _paths(ds, "train", a.train_dir), _paths(ds, "val", a.val_dir), out,
                       progress=not a.quiet and sys.stderr.isatty())
    except (ValueError, FileNotFoundError) as e:
        print(f"rsicbench train: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"model": a.model, "rate": a.rate, "lambda_compressai": tc.lam, "out": str(out), **result},
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
