"""params.yaml, the per-area config files and the profiles.

params.yaml holds the switch `profile: ci|default|paper` plus `seed` and `threads`.
Each area (data, metrics, eval, train, downstream, report, ...) has its own file
`configs/<area>.yaml` with a `common:` block and one block per profile. `settings(area)`
returns `common` deep-merged with the active profile's block, so a stage reads one dict
and never needs to know which profile is active.

Select a profile with `dvc exp run -S profile=paper` (DVC), or `--profile` /
$RSICBENCH_PROFILE on any command (the environment variable wins over params.yaml).
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any

import yaml

from rsicbench.errors import UserError
from rsicbench.paths import ENV_ROOT, project_root

PROFILES = ("ci", "default", "paper")
ENV_PROFILE = "RSICBENCH_PROFILE"


class ConfigError(UserError):
    """params.yaml or a configs/<area>.yaml that cannot be used; the message names the file."""


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    path = Path(path) if path else project_root() / "params.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = ""
        if path.name == "params.yaml":
            hint = (f"; run rsicbench in the project folder (the one holding params.yaml and "
                    f"pyproject.toml) or set ${ENV_ROOT}")
        raise FileNotFoundError(f"{path}: params file not found{hint}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return data


def _int_param(params: dict[str, Any], key: str, default: int, minimum: int, source: str) -> int:
    v = params.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"{source}: {key}: expected an integer >= {minimum}, got {v!r}")
    return v


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def active_profile(profile: str | None = None, params: dict[str, Any] | None = None) -> str:
    params = load_params() if params is None else params
    name = profile or os.environ.get(ENV_PROFILE) or params.get("profile", "default")
    if name not in PROFILES:
        where = ("--profile" if profile else f"${ENV_PROFILE}" if os.environ.get(ENV_PROFILE)
                 else "params.yaml: profile")
        raise ConfigError(f"{where}: unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def settings(area: str, profile: str | None = None, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The effective settings of one area: configs/<area>.yaml `common` + the profile's block.

    Always contains `profile`, `seed` and `threads` from params.yaml as well.
    """
    root = Path(root) if root else project_root()
    params = load_params(root / "params.yaml")
    name = active_profile(profile, params)
    seed = _int_param(params, "seed", 0, 0, str(root / "params.yaml"))
    threads = _int_param(params, "threads", 2, 1, str(root / "params.yaml"))
    path = root / "configs" / f"{area}.yaml"
    cfg = load_params(path)
    unknown = set(cfg) - {"common", *PROFILES}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; expected common, {', '.join(PROFILES)}")
    for block in ("common", name):
        if not isinstance(cfg.get(block) or {}, dict):
            raise ConfigError(f"{path}: {block}: expected a mapping, got {type(cfg[block]).__name__}")
    out = deep_merge(cfg.get("common") or {}, cfg.get(name) or {})
    out.setdefault("profile", name)
    out.setdefault("seed", seed)
    out.setdefault("threads", threads)
    if area == "train":
        variants = _with_paper_models(out, root)
        _resolve_rates(out, variants, root / "configs" / "train.yaml")
    return out


#: the one key of a configs/papers.yaml variants row that is not a module switch: the row is a
#: seed control, its family's baseline retrained with params.yaml `seed` + this offset
SEED_OFFSET = "seed_offset"


def variants_by_family(variants: dict) -> dict[str, dict[str, dict]]:
    """configs/papers.yaml `variants` (rows `<family>-<variant>: switches`) as
    family -> variant -> switches, in file order. A row with `seed_offset: k` (k >= 1) must have
    exactly its family baseline's switches besides: it is a seed control, not a module ablation."""
    out: dict[str, dict[str, dict]] = {}
    for name, switches in variants.items():
        family, sep, variant = str(name).partition("-")
        if not (family and sep and variant):
            raise ConfigError(f"configs/papers.yaml: variants: {name!r} is not named <family>-<variant>")
        out.setdefault(family, {})[variant] = switches
    for family, rows in out.items():
        for variant, row in rows.items():
            if isinstance(row, dict) and SEED_OFFSET in row:
                _check_seed_control(f"{family}-{variant}", row, rows.get("baseline"))
    return out


def _check_seed_control(name: str, row: dict, baseline: Any) -> None:
    k = row[SEED_OFFSET]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"configs/papers.yaml: variants: {name}: {SEED_OFFSET} must be an integer >= 1, got {k!r}")
    if not isinstance(baseline, dict) or variant_switches(baseline) != variant_switches(row):
        raise ConfigError(f"configs/papers.yaml: variants: {name} has {SEED_OFFSET} (a seed control), so its other "
                          f"switches must equal its family's baseline row's ({baseline!r}); got {variant_switches(row)!r}")


def variant_switches(row: dict) -> dict:
    """A variants row's module switches (the builder's keyword arguments): the row less `seed_offset`."""
    return {k: v for k, v in row.items() if k != SEED_OFFSET}


def seed_offset(row: dict) -> int:
    """0 for a module variant; k for a seed control (its family baseline, trained at seed + k)."""
    return int(row.get(SEED_OFFSET, 0)) if isinstance(row, dict) else 0


def _with_paper_models(cfg: dict[str, Any], root: Path) -> set[str]:
    """configs/train.yaml `families`: each paper family's entry (λ list, sizes) becomes the
    `models` entry of every `<family>-<variant>` row of configs/papers.yaml, so a variant is one
    row there; a `models` entry of the same name is merged on top. Returns the variants' names."""
    families = cfg.pop("families", None) or {}
    if not families:
        return set()
    path = root / "configs" / "papers.yaml"
    variants = (load_params(path).get("common") or {}).get("variants") or {}
    models = cfg.setdefault("models", {})
    names: set[str] = set()
    for family, rows in variants_by_family(variants).items():
        if family not in families:
            raise ConfigError(f"{root / 'configs' / 'train.yaml'}: families: no entry for paper family {family!r} "
                              f"({path} variants)")
        for variant, row in rows.items():
            name = f"{family}-{variant}"
            models[name] = deep_merge(families[family] or {}, models.get(name) or {})
            if seed_offset(row):  # read by run_config: the run's seed is params.yaml seed + this
                models[name][SEED_OFFSET] = seed_offset(row)
            names.add(name)
    return names


def _resolve_rates(cfg: dict[str, Any], variants: set[str], path: Path) -> None:
    """Each `models.<name>.rates` as a list of λ indices: its own list, else the profile's
    `rates.papers` (paper variants) or `rates.models`; `all` = every λ of the model."""
    lists = cfg.pop("rates", None) or {}
    for name, entry in (cfg.get("models") or {}).items():
        if not isinstance(entry, dict):
            continue
        group = "papers" if name in variants else "models"
        want = entry.get("rates", lists.get(group, [0]))
        n = len(entry.get("lambdas") or [])
        if want == "all":
            want = list(range(n))
        if (not isinstance(want, list) or not want
                or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in want)):
            raise ConfigError(f"{path}: rates of {name}: expected `all` or a non-empty list of indices "
                              f"into its {n} lambdas, got {want!r}")
        entry["rates"] = sorted(set(want))


def use_source_root_outside_project() -> Path | None:
    """Outside any project folder, point $RSICBENCH_ROOT at the checkout this package runs from.

    For the commands that only read settings (metrics, codecs, gate): they then work from
    any directory. Pipeline commands do not call this: outside the project they refuse to run
    rather than read one project's settings and write results elsewhere.
    """
    if os.environ.get(ENV_ROOT) or (project_root() / "params.yaml").is_file():
        return None
    src = Path(__file__).resolve().parents[1]
    if (src / "params.yaml").is_file() and (src / "configs").is_dir():
        os.environ[ENV_ROOT] = str(src)
        return src
    return None


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Fix every RNG and the thread count so reruns give identical numbers."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(int(threads))


def pick_device(requested: str | None = None) -> str:
    """'cuda' when present unless a device is requested explicitly."""
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"
