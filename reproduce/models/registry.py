"""One registry of learned models: `create_model(name, **cfg)` and `list_models()`.

A model is a compressai `CompressionModel` (forward -> {"x_hat", "likelihoods"},
compress -> {"strings", "shape"}, decompress(strings, shape) -> {"x_hat"}, aux_loss(),
update()). Optional hooks the training loop and the codec adapter honour:
  * `model.extra_loss(x, out) -> Tensor | None`: an extra distortion term (e.g. DMENet MDEI),
    added inside the lambda-weighted distortion as the paper defines it.
  * `model.needs_roi = True`: forward/compress also take `roi` (Bx1xHxW float mask in {0,1}).
  * `model.downsampling`: the factor input sizes are padded to (default 64).
Variants (ablations) are keyword arguments of the builder, never copied classes.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

_MODELS: dict[str, Callable[..., Any]] = {}
_MODULES = (
    "rsicbench.reproduce.models.baselines",
    "rsicbench.reproduce.models.ltchm",
    "rsicbench.reproduce.models.mgss",
    "rsicbench.reproduce.models.dmenet",
    "rsicbench.reproduce.models.mroi",
)


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = builder
        return builder

    return deco


def _load() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a real missing dependency, not a part not built yet
                raise


def list_models() -> list[str]:
    _load()
    return sorted(_MODELS)


def create_model(name: str, **cfg: Any):
    _load()
    try:
        builder = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}") from None
    return builder(**cfg)
