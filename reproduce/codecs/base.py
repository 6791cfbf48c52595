"""One interface for every codec, classical or learned, and the registry that lists them.

A codec turns an HxWx3 uint8 RGB array into bytes and back. Its rate is set by one
`quality` value whose meaning is codec-specific (JPEG quality, JPEG2000 compression ratio,
a learned model's rate index...) and named by `quality_name`. `encode` returns the *whole*
stream that a decoder needs, so bpp = 8 * len(bytes) / (H * W) is an honest rate.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar

import numpy as np

from rsicbench.errors import CodecError




class Codec(abc.ABC):
    #: registry name, e.g. "jpeg", "jpeg2000", "bmshj2018-hyperprior"
    name: ClassVar[str] = ""
    #: what `quality` means for this codec, e.g. "quality", "ratio", "lambda_index"
    quality_name: ClassVar[str] = "quality"
    #: True when larger quality values mean more bits (JPEG q); False for ratios
    higher_is_better: ClassVar[bool] = True
    #: the range accepted by `quality` (inclusive), used by target-bpp search
    quality_range: ClassVar[tuple[float, float]] = (0, 100)
    #: integer qualities only (most classical codecs)
    integer_quality: ClassVar[bool] = True

    def __init__(self, quality: float, **options: Any) -> None:
        lo, hi = self.quality_range
        if not (lo <= quality <= hi):
            raise CodecError(f"{self.name}: {self.quality_name}={quality} outside [{lo}, {hi}]")
        self.quality = int(quality) if self.integer_quality else float(quality)
        self.options = options

    @abc.abstractmethod
    def encode(self, image: np.ndarray) -> bytes:
        """Encode an HxWx3 uint8 image to a self-contained bitstream."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode a bitstream from `encode` to an HxWx3 uint8 image of the original size."""

    @property
    def version(self) -> str:
        """The library (and its version) that does the coding, recorded in every result."""
        return "unknown"

    def describe(self) -> dict[str, Any]:
        return {
            "codec": self.name,
            "quality_name": self.quality_name,
            "quality": self.quality,
            "version": self.version,
            "options": dict(self.options),
        }

    @staticmethod
    def check_image(image: np.ndarray, who: str) -> np.ndarray:
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise CodecError(f"{who}: expected HxWx3 uint8 image, got {a.dtype} {a.shape}")
        return np.ascontiguousarray(a)


_REGISTRY: dict[str, Callable[..., Codec]] = {}


def register_codec(name: str) -> Callable[[type[Codec]], type[Codec]]:
    def deco(cls: type[Codec]) -> type[Codec]:
        if name in _REGISTRY:
            raise ValueError(f"codec {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def register_factory(name: str, factory: Callable[..., Codec]) -> None:
    """Register a callable (e.g. a learned model bound to its checkpoint) as a codec."""
    if name in _REGISTRY:
        raise ValueError(f"codec {name!r} registered twice")
    _REGISTRY[name] = factory


#: modules whose import registers the built-in codecs
BUILTIN_MODULES = ("rsicbench.reproduce.codecs.classical", "rsicbench.reproduce.codecs.learned",
                   "rsicbench.reproduce.codecs.agdl", "rsicbench.reproduce.codecs.external")


def _load_builtin() -> None:
    # Imported for their registration side effect; kept lazy so `import rsicbench` is cheap.
    import importlib

    for mod in BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a dependency of the module: its own message names it
                raise
            raise ModuleNotFoundError(f"codec module {mod} is missing (listed in "
                                      f"reproduce/codecs/base.py BUILTIN_MODULES)", name=mod) from None


def list_codecs() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def codec_factory(name: str) -> Callable[..., Codec]:
    """The registered class (or factory) of `name`: its class attributes without building it."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CodecError(f"unknown codec {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def mid_quality(name: str) -> int:
    """The middle of the codec's quality range: a valid quality for probing a codec."""
    rng = getattr(codec_factory(name), "quality_range", None)
    if rng is None:
        raise CodecError(f"codec {name!r} has no quality range")
    return int((rng[0] + rng[1]) // 2)


def create_codec(name: str, quality: float, **options: Any) -> Codec:
    return codec_factory(name)(quality, **options)
