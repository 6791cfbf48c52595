"""One registry of learned models: `create_model(name, **cfg)` and `list_models()`.

A model is a compressai `CompressionModel` (forward -> {"x_hat", "likelihoods"},
compress -> {"strings", "shape"}, decompress(strings, shape) -> {"x_hat"}, aux_loss(),
update()). Optional hooks the training loop and the codec adapter honour:
  * `model.extra_loss(x, out) -> Tensor | None`: an extra distortion term (e.g. DMENet MDEI),
    added inside the lambda-weighted distortion as the paper defines it.
  * `model.needs_roi = True`: forward/compress also take `roi` (Bx1xHxW float mask in {0,1}).
  * `model.downsampling`: the factor input sizes are padded to (default 64).
Variants (ablations) are keyword arguments of the builder, never copied classes.

Lazy loading: `MODEL_MODULES` maps every model name to the module that registers it, so
`create_model("bmshj2018-hyperprior")` imports only `baselines` and `list_models()` imports
no model module at all. A model module registers its builders with `@register_model(name)`
at import time; adding a model = one `register_model` line in its module + one line in
`MODEL_MODULES` (tests/test_registry.py fails when the table and the modules disagree).
A name missing from the table still works: `create_model` then imports every module.
Paper ablation variants (`<family>-<variant>`) are rows of configs/papers.yaml; their table
entries are read from that YAML (no model import) and point to models/variants.py.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any, Callable

_PKG = "rsicbench.reproduce.models."

#: model name -> module (relative to rsicbench.reproduce.models) whose import registers it
MODEL_MODULES: dict[str, str] = {
    "bmshj2018-factorized": "baselines",
    "bmshj2018-factorized-relu": "baselines",
    "bmshj2018-hyperprior": "baselines",
    "mbt2018-mean": "baselines",
    "mbt2018": "baselines",
    "cheng2020-anchor": "baselines",
    "cheng2020-attn": "baselines",
    "cheng2020-gmm": "baselines",
    "ltchm": "ltchm.model",
    "mgss": "mgss.model",
    "mgss_factorized": "mgss.model",
    "dmenet": "dmenet.model",
    "cfhpm": "mroi.model",
    "mroi-cfhpm": "mroi.model",
}



def _paper_variant_names() -> list[str]:
    """`<family>-<variant>` for every row of configs/papers.yaml `common.variants` (YAML only,
    no model import); models/variants.py registers them (papers part)."""
    import yaml

    from rsicbench.paths import project_root

    path = project_root() / "configs" / "papers.yaml"
    if not path.is_file():
        return []
    table = ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("common") or {}).get("variants") or {}
    return [str(name) for name in table]


MODEL_MODULES.update({name: "variants" for name in _paper_variant_names()})

_MODELS: dict[str, Callable[..., Any]] = {}
_ORIGIN: dict[str, str] = {}  # name -> module that called register_model (checked by the tests)


def model_modules() -> list[str]:
    """Full names of the model modules, sorted."""
    return sorted({_PKG + m for m in MODEL_MODULES.values()})


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    # the caller is the registering module's top level (decorator or call form)
    origin = sys._getframe(1).f_globals.get("__name__", "?")

    def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = builder
        _ORIGIN[name] = origin
        return builder

    return deco


def registered_by() -> dict[str, str]:
    """name -> registering module, for the models imported so far."""
    return dict(_ORIGIN)


def _import(mod: str) -> None:
    """Import one model module of the table; a listed module that does not exist is an error
    naming it (every module of MODEL_MODULES ships with the package)."""
    try:
        importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name is None or not (mod == e.name or mod.startswith(e.name + ".")):
            raise  # a dependency of the module: its own message names it
        names = sorted(n for n, m in MODEL_MODULES.items() if _PKG + m == mod)
        raise ModuleNotFoundError(f"model module {mod} is missing (reproduce/models/registry.py MODEL_MODULES "
                                  f"lists it for {', '.join(names) or 'no model'})", name=mod) from None


def load_all() -> None:
    """Import every model module (slow path: only for names missing from MODEL_MODULES)."""
    for mod in model_modules():
        _import(mod)


def list_models() -> list[str]:
    """Every model name: the table plus anything registered elsewhere (imports no model module)."""
    return sorted(set(MODEL_MODULES) | set(_MODELS))


#: profile-wide width keys a model may not take: dropped for it instead of raising (the profiles
#: set M for every model; Cheng2020, LTCHM and DMENet have none)
OPTIONAL_WIDTHS = ("M",)


def _builder(name: str) -> Callable[..., Any]:
    if name not in _MODELS:
        mod = MODEL_MODULES.get(name)
        if mod is not None:
            _import(_PKG + mod)
        if name not in _MODELS:
            load_all()
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def without_lacking_widths(arch: dict, keys: set[str] | None) -> dict:
    """`arch` without the OPTIONAL_WIDTHS that a builder taking `keys` lacks (None: takes any)."""
    return {k: v for k, v in arch.items() if keys is None or k in keys or k not in OPTIONAL_WIDTHS}


def arch_keys(name: str) -> set[str] | None:
    """The settings `name`'s builder takes; None = not knowable (a builder with **kwargs that
    does not declare `arch_keys`). Paper variants declare theirs (models/variants.py)."""
    builder = _builder(name)
    if hasattr(builder, "arch_keys"):
        return None if builder.arch_keys is None else set(builder.arch_keys)
    params = inspect.signature(builder).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def model_arch(name: str, arch: dict) -> dict:
    """The settings `name` is built with: `arch` without the optional widths it does not take.
    Any other key it does not take is an error, never dropped: a misspelt width once trained a
    whole measurement at the wrong size."""
    keys = arch_keys(name)
    if keys is None:
        return dict(arch)
    out = without_lacking_widths(arch, keys)
    unknown = sorted(set(out) - keys)
    if unknown:
        raise ValueError(f"model {name!r} takes no setting {', '.join(map(repr, unknown))} "
                         f"(it takes: {', '.join(sorted(keys - {'self'}))})")
    return out


def create_model(name: str, **cfg: Any):
    """Build `name` with `cfg` (model_arch: optional widths it lacks dropped, unknown keys refused)."""
    return _builder(name)(**model_arch(name, cfg))
