"""Resolve one training run's settings: profile + per-model block + `--set` overrides ->
a checked TrainConfig (the architecture, lambda conversion and seed a run really uses)."""

from __future__ import annotations

import json
import math

from rsicbench.reproduce.training.lambdas import (
    to_compressai,
)

from rsicbench.config import deep_merge
from rsicbench.errors import UserError

# TrainConfig fields that --set may not change: they come from --model and --rate, or (init_*)
# from the anchor run that `train.finetune` / init_from names
_NOT_SETTABLE = ("model", "lam", "snapshot_at", "init_steps", "init_digest")


# settings that must be >= 1 (a run with steps <= 0 would exit 0 and write nothing)
_POSITIVE = ("steps", "batch", "patch", "val_every", "val_patch", "val_images", "ckpt_every", "threads")



def settable_keys() -> list[str]:
    from rsicbench.reproduce.training.train import TrainConfig

    return sorted(k for k in TrainConfig.__dataclass_fields__ if k not in _NOT_SETTABLE)


def parse_overrides(items: list[str]) -> dict:
    """`--set KEY=JSON` items -> {key: value}: keys checked against TrainConfig, values parsed
    as JSON (a bare word is accepted as a string only for text settings such as distortion)."""
    from rsicbench.reproduce.training.train import TrainConfig

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
    from rsicbench.reproduce.training.train import TrainConfig

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
    train_cfg, tune_steps = _finetune(model, rate, train_cfg, len(lambdas))
    merged = {**train_cfg, "model": model, "lam": lam, "arch": arch,  # seed_offset: a seed control's
              "seed": cfg.get("seed", 0) + int(spec.get("seed_offset", 0)), "threads": cfg.get("threads", 2)}
    # --set overrides win over everything above, the profile's arch, seed and threads included
    over = dict(overrides or {})
    if "arch" in over:
        if not isinstance(over["arch"], dict):
            raise UserError(f"--set arch: expected a mapping, e.g. {{\"N\": 8, \"M\": 8}}, got {over['arch']!r}")
        merged["arch"] = deep_merge(arch, over.pop("arch"))
    merged.update(over)
    merged["arch"] = _model_arch(model, merged["arch"])
    _check_init_from(model, rate, merged.get("init_from", ""), len(lambdas))
    if tune_steps and not merged.get("init_from"):  # the anchor: its weights at steps - finetune.steps
        total = merged.get("steps", TrainConfig.steps)
        if not isinstance(total, int) or isinstance(total, bool) or total <= tune_steps:
            raise UserError(f"configs/train.yaml {model}: steps ({total!r}) must exceed train.finetune.steps "
                            f"({tune_steps}): the other rates start from its weights at steps - finetune.steps")
        merged["snapshot_at"] = total - tune_steps
    return TrainConfig.from_dict(merged)


def _model_arch(model: str, arch: dict) -> dict:
    """The widths `model` is built with (registry.model_arch): the profile-wide M dropped where
    the model has none, so checkpoints and reports record what was built; any other setting it
    does not take (a misspelt `--set arch` key) is refused before anything trains."""
    from rsicbench.reproduce.models.registry import list_models, model_arch

    if model not in list_models():
        return arch  # not a known model: create_model names the problem when the run builds it
    try:
        return model_arch(model, arch)
    except ValueError as e:
        raise UserError(f"configs/train.yaml / --set arch for {model}: {e}") from None


def _finetune(model: str, rate: str, train_cfg: dict, n_rates: int) -> tuple[dict, int]:
    """`train.finetune: {from: r<i>, steps: F}`: every rate point gets `steps` in all. r<i> trains
    them from scratch and saves its weights at steps - F; every other rate starts from those
    and trains its own λ for F steps. Returns (train settings, F or 0)."""
    train_cfg = dict(train_cfg)
    ft = train_cfg.pop("finetune", None)
    if ft is None:
        return train_cfg, 0
    where = f"configs/train.yaml {model}: train.finetune"
    if not isinstance(ft, dict) or set(ft) != {"from", "steps"}:
        raise UserError(f"{where}: expected {{from: r<i>, steps: <int>}}, got {ft!r}")
    src, steps = ft["from"], ft["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"{where}.steps: expected an integer >= 1, got {steps!r}")
    _check_init_from(model, None, src, n_rates, where + ".from")
    if rate != src:
        train_cfg.update(init_from=src, steps=steps)
    return train_cfg, steps


def _check_init_from(model: str, rate: str | None, src, n_rates: int, where: str = "init_from") -> None:
    if src in ("", None):
        return
    if not (isinstance(src, str) and src.startswith("r") and src[1:].isdigit() and int(src[1:]) < n_rates):
        raise UserError(f"{where}: expected a rate tag r0..r{n_rates - 1} of {model}, got {src!r}")
    if src == rate:
        raise UserError(f"{where}: {model} {rate} cannot start from itself")


def rate_tags(model: str, rates: str, cfg: dict) -> list[str]:
    """--rates: `profile` = the profile's indices for this model (configs/train.yaml `rates`),
    else a comma list of rate tags r<i>."""
    if rates == "profile":
        entry = (cfg.get("models") or {}).get(model)
        if not isinstance(entry, dict):
            raise ValueError(f"configs/train.yaml: no entry for model {model!r}")
        tags = anchors_first([f"r{i}" for i in entry["rates"]], cfg, model)
        src = finetune_source(cfg, model)
        if src and src not in tags:
            raise UserError(f"configs/train.yaml {model}: train.finetune.from {src} is not among the profile's "
                            f"rates {','.join(tags)}; the other rates start from it, so it must train too")
        return tags
    tags = [t.strip() for t in rates.split(",") if t.strip()]
    bad = [t for t in tags if not (t.startswith("r") and t[1:].isdigit())]
    if bad or not tags:
        raise ValueError(f"--rates {rates!r}: expected `profile` or rate tags like r0,r2")
    return anchors_first(tags, cfg, model)


def finetune_source(cfg: dict, model: str) -> str | None:
    """The rate tag a model's other rates fine-tune from (train.finetune.from), or None."""
    spec = (cfg.get("models") or {}).get(model) or {}
    ft = deep_merge(cfg.get("train", {}), spec.get("train", {})).get("finetune")
    return ft.get("from") if isinstance(ft, dict) else None


def anchors_first(tags: list[str], cfg: dict, model: str) -> list[str]:
    """The rate that the others fine-tune from (train.finetune.from) goes first."""
    src = finetune_source(cfg, model)
    return sorted(tags, key=lambda t: t != src)
