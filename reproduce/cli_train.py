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
import math
import sys
from pathlib import Path

from rsicbench.config import deep_merge, settings
from rsicbench.errors import UserError, int_at_least
from rsicbench.reproduce.lambdas import conversion_table, format_table, to_compressai

# TrainConfig fields that --set may not change: they come from --model and --rate
_NOT_SETTABLE = ("model", "lam")
# settings that must be >= 1 (a run with steps <= 0 would exit 0 and write nothing)
_POSITIVE = ("steps", "batch", "patch", "val_every", "val_patch", "val_images", "ckpt_every", "threads")


def settable_keys() -> list[str]:
    from rsicbench.reproduce.train import TrainConfig

    return sorted(k for k in TrainConfig.__dataclass_fields__ if k not in _NOT_SETTABLE)


def parse_overrides(items: list[str]) -> dict:
    """`--set KEY=JSON` items -> {key: value}: keys checked against TrainConfig, values parsed
    as JSON (a bare word is accepted as a string only for text settings such as distortion)."""
    from rsicbench.reproduce.train import TrainConfig

    keys, out = settable_keys(), {}
    for item in items:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep or not k:
            raise UserError(f"--set {item!r}: expected KEY=JSON, e.g. --set batch=2")
        if k not in keys:
            raise UserError(f"--set {item!r}: unknown key {k!r}; valid keys: {', '.join(keys)}")
        default = TrainConfig.__dataclass_fields__[k].default
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            if not isinstance(default, str):
                raise UserError(f"--set {item!r}: {v!r} is not valid JSON") from None
            out[k] = v
    return out


def _check_value(key: str, value, default) -> None:
    def bad(expected: str):
        return UserError(f"train setting {key}: expected {expected}, got {value!r}")

    if key in ("arch",):
        if not isinstance(value, dict):
            raise bad("a mapping, e.g. {\"N\": 8, \"M\": 8}")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        if key in _POSITIVE and value < 1:
            raise bad("an integer >= 1")
        if value < 0:
            raise bad("an integer >= 0")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise bad("a finite number >= 0")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
    elif isinstance(default, (tuple, list)):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < 1 for x in value):
            raise bad("a list of fractions of the run in (0, 1), e.g. [0.9]")


def check_config(tc) -> None:
    """Every field of a TrainConfig has a usable value, else a UserError naming the setting."""
    import dataclasses

    for f in dataclasses.fields(tc):
        if f.name not in _NOT_SETTABLE:
            default = f.default if f.default is not dataclasses.MISSING else None
            _check_value(f.name, getattr(tc, f.name), default)


def run_config(model: str, rate: str, cfg: dict, overrides: dict | None = None):
    """The TrainConfig of one (model, rate tag) from the merged train settings."""
    from rsicbench.reproduce.train import TrainConfig

    models = cfg.get("models", {})
    if model not in models:
        raise ValueError(f"configs/train.yaml: no entry for model {model!r}; known: {', '.join(sorted(models))}")
    spec = models[model]
    if not (rate.startswith("r") and rate[1:].isdigit()):
        raise ValueError(f"rate tag {rate!r}: expected r<index>, e.g. r0")
    lambdas = spec.get("lambdas", [])
    i = int(rate[1:])
    if i >= len(lambdas):
        raise ValueError(f"configs/train.yaml: {model} has {len(lambdas)} lambdas, no {rate}")
    lam = to_compressai(lambdas[i], spec.get("lambda_convention", "compressai"))
    train_cfg = deep_merge(cfg.get("train", {}), spec.get("train", {}))
    arch = deep_merge(cfg.get("arch", {}), spec.get("arch", {}))
    per_rate = spec.get("arch_per_rate")  # widths that change with λ (LTCHM: C=192/256, Fig. 1)
    if per_rate is not None:
        if not isinstance(per_rate, list) or len(per_rate) != len(lambdas):
            raise ValueError(f"configs/train.yaml: {model}.arch_per_rate must list one arch mapping per λ "
                             f"({len(lambdas)})")
        arch = deep_merge(arch, per_rate[i] or {})
    merged = {**train_cfg, "model": model, "lam": lam, "arch": arch,
              "seed": cfg.get("seed", 0), "threads": cfg.get("threads", 2)}
    # --set overrides win over everything above, the profile's arch, seed and threads included
    over = dict(overrides or {})
    if "arch" in over:
        if not isinstance(over["arch"], dict):
            raise UserError(f"--set arch: expected a mapping, e.g. {{\"N\": 8, \"M\": 8}}, got {over['arch']!r}")
        merged["arch"] = deep_merge(arch, over.pop("arch"))
    merged.update(over)
    return TrainConfig.from_dict(merged)


def _paths(dataset: str, split: str, folder: str | None) -> list[str]:
    if folder:
        from rsicbench.reproduce.engine import samples_from_folder

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
    from rsicbench.reproduce.learned import run_dir
    from rsicbench.reproduce.weight_sources import skip_training

    try:  # models.<model>.source zoo / checkpoint:<path>: nothing to train (reproduce/weight_sources.py)
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
        from rsicbench.reproduce.learned import run_dir
        from rsicbench.reproduce.train import train

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
