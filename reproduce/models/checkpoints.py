"""Learned-codec weights from anywhere: our checkpoints, CompressAI's, CompressAI-Trainer's, the zoo.

Formats read (always `torch.load(..., weights_only=True)`):
  * ours (`rsicbench train`): `{"model": state, "model_name": ..., "arch": {...}, "lambda": ...}`
  * CompressAI-Trainer (Catalyst `runner.<best|last|epoch>.pth`): `{"model_state_dict": state, ...}`
    (the key its own `state_dict_from_checkpoint` reads first);
  * CompressAI `examples/train.py`: `{"state_dict": state, "epoch": ..., ...}`;
  * a bare state dict, e.g. a CompressAI zoo file.
Keys are normalised as CompressAI's zoo loader does (`module.` from DataParallel/DDP,
`_orig_mod.` from torch.compile, the zoo's old EntropyBottleneck/`downsample` names).
Entropy-coding tables (`_quantized_cdf`, `_offset`, `_cdf_length`, `scale_table`) are
derived data: missing ones are filled in and the caller rebuilds them all
(`model.update(force=True)`), so a checkpoint without them codes exactly like one with them.
Widths: for the CompressAI families N (and M) are read from the tensors, as the zoo's
`from_state_dict` does; other models take them from the checkpoint (ours) or the config.
A checkpoint of another architecture gets one CodecError naming the missing and
unexpected keys and the mismatched shapes.

Zoo: `zoo_file(name, quality, metric)` is the torch hub cache path of CompressAI's file
(`$TORCH_HOME/hub/checkpoints/<file name of compressai.zoo's URL>`). A file there is used
offline; otherwise it is downloaded with torch.hub (sha256 prefix of its name checked).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from rsicbench.errors import CodecError

# derived entropy-coding tables: not part of what a model learned
DERIVED_KEYS = ("_quantized_cdf", "_offset", "_cdf_length")


def state_fingerprint(state: dict) -> str:
    """sha256 of a state dict's learned tensors (names + bytes; not the derived CDF tables),
    12 hex digits: the codec's weights tag and a fine-tuned run's record of its anchor."""
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        if any(d in k for d in DERIVED_KEYS) or not isinstance(v, torch.Tensor):
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]

TABLE_SUFFIXES = ("._quantized_cdf", "._offset", "._cdf_length", ".scale_table")
_LIST_MAX = 6  # names shown per list in a mismatch error

# name -> how N/M sit in the tensors (compressai's from_state_dict, per family)
_TWO_WIDTH = {"bmshj2018-factorized", "bmshj2018-factorized-relu", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018"}
_CHENG = {"cheng2020-anchor", "cheng2020-attn", "cheng2020-gmm"}


def load_failure(e: Exception) -> str:
    """Why torch.load(weights_only=True) refused a file, in one short line."""
    text = " ".join(str(e).split())
    # torch's weights_only message: a long preamble, then the reason, then a docs link
    detail = text.split("WeightsUnpickler error:")[-1].split("trusted source.")[-1]
    detail = detail.split(" Check the documentation")[0].strip()[:160]
    if "GLOBAL" in text.upper():
        return f"it asks to run code or build objects other than tensors; refused, nothing run ({detail})"
    return f"corrupt ({type(e).__name__}: {detail})"


def read_file(path: Path) -> dict:
    if not path.is_file():
        raise CodecError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle of arbitrary objects, truncated file, not a torch file
        raise CodecError(f"{path}: not a loadable checkpoint with weights_only=True: {load_failure(e)}") from None
    if not isinstance(obj, dict):
        raise CodecError(f"{path}: checkpoint holds {type(obj).__name__}, expected a dict")
    return obj


def _is_state(d: Any) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def split(obj: dict, path: Path, name: str) -> tuple[dict, dict]:
    """(state dict, meta with `format`) of a loaded checkpoint object."""
    if "model" in obj and "model_name" in obj:
        if obj["model_name"] != name:
            raise CodecError(f"{path}: checkpoint is for model {obj['model_name']!r}, not {name!r}")
        meta = {k: v for k, v in obj.items() if k not in ("model", "optimizer", "aux_optimizer", "scheduler")}
        meta["format"] = "rsicbench"
        return obj["model"], meta
    for key, fmt in (("model_state_dict", "compressai-trainer"), ("state_dict", "compressai")):
        if key in obj:
            if not _is_state(obj[key]):
                raise CodecError(f"{path}: {key!r} is not a state dict of tensors")
            meta = {"format": fmt}
            if isinstance(obj.get("epoch"), int):
                meta["epoch"] = obj["epoch"]
            return obj[key], meta
    if _is_state(obj):
        return obj, {"format": "state_dict"}
    raise CodecError(f"{path}: no weights found; expected a state dict or one under 'model', 'model_state_dict' "
                     f"or 'state_dict' (top-level keys: {_short(sorted(map(str, obj)))})")


def normalize(state: dict) -> dict:
    """CompressAI's zoo key conversion plus the wrappers' prefixes."""
    from compressai.zoo.pretrained import rename_key

    out = {}
    for k, v in state.items():
        while k.startswith(("module.", "_orig_mod.")):
            k = k.split(".", 1)[1]
        out[rename_key(k)] = v
    return out


def infer_arch(name: str, state: dict) -> dict:
    """N (and M) from the tensors for the CompressAI families; {} for other models."""
    def width(key: str) -> int | None:
        t = state.get(key)
        return int(t.shape[0]) if isinstance(t, torch.Tensor) and t.ndim else None

    if name in _TWO_WIDTH:
        n, m = width("g_a.0.weight"), width("g_a.6.weight")
        return {k: v for k, v in (("N", n), ("M", m)) if v is not None}
    if name in _CHENG:
        n = width("g_a.0.conv1.weight")
        return {"N": n} if n is not None else {}
    return {}


def _is_table(key: str) -> bool:
    return key.endswith(TABLE_SUFFIXES)


def _short(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_MAX])
    return shown + (f" (+{len(items) - _LIST_MAX} more)" if len(items) > _LIST_MAX else "")


def check_fit(model: torch.nn.Module, state: dict, what: str) -> list[str]:
    """Raise one CodecError if `state` does not fit `model`; return the missing table keys."""
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state)
    missing_tables = [k for k in missing if _is_table(k)]
    missing = [k for k in missing if not _is_table(k)]
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
                    if k in own and not _is_table(k) and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = [f"{label} ({len(v)}): {_short(v)}" for label, v in
                 (("missing keys", missing), ("unexpected keys", unexpected),
                  ("shape mismatches (checkpoint vs model)", shapes)) if v]
        raise CodecError(f"{what}: " + "; ".join(parts))
    return missing_tables


def build(name: str, state: dict, arch: dict, what: str) -> tuple[torch.nn.Module, dict]:
    """The model `name` with `arch`, loaded with `state`; tables rebuilt. Returns (model, info)."""
    from rsicbench.reproduce.models.registry import create_model, model_arch

    try:
        arch = model_arch(name, arch)  # recorded as built: no width the model does not take
        model = create_model(name, **arch)
    except ValueError as e:
        raise CodecError(f"{what}: {e}") from None
    from compressai.entropy_models import EntropyBottleneck
    from compressai.models.utils import remap_old_keys

    for mod_name, mod in model.named_modules():  # `_bias0` (old compressai) -> `biases.0`
        if isinstance(mod, EntropyBottleneck):
            state = remap_old_keys(mod_name, state)
    missing_tables = check_fit(model, state, f"{what}: weights do not fit {name} with {arch}")
    full = dict(state)
    own = model.state_dict()
    for k in missing_tables:  # empty placeholders; update(force=True) below rebuilds every table
        full[k] = own[k]
    try:
        model.load_state_dict(full)  # compressai's override resizes the table buffers
    except RuntimeError as e:
        raise CodecError(f"{what}: weights do not fit {name} with {arch} ({str(e).splitlines()[0]})") from None
    if missing_tables:
        model.update(force=True)
    return model, {"tables_rebuilt_from_weights": bool(missing_tables), "arch": arch}


def load_model(name: str, checkpoint: str | Path, **arch: Any) -> tuple[torch.nn.Module, dict]:
    """Build `name` and load `checkpoint` (any format above). Returns (model, meta).

    meta: `format`, `arch` (the widths used: explicit `arch` > checkpoint/tensors), `checkpoint`,
    `tables_rebuilt_from_weights`, and for ours `lambda`, `step`, ..."""
    path = Path(checkpoint)
    state, meta = split(read_file(path), path, name)
    state = normalize(state)
    base = dict(meta.pop("arch", {}) or {}) if meta["format"] == "rsicbench" else {}
    cfg = {**base, **infer_arch(name, state), **{k: v for k, v in arch.items() if v is not None}}
    model, info = build(name, state, cfg, str(path))
    meta.update(info, checkpoint=str(path))
    return model, meta


# ----------------------------------------------------------------------------- zoo


def zoo_url(name: str, quality: int, metric: str = "mse") -> str:
    from compressai.zoo.image import model_urls

    urls = model_urls.get(name, {}).get(metric)
    if not urls:
        known = sorted(n for n in model_urls if metric in model_urls[n])
        raise CodecError(f"{name}: CompressAI's zoo has no {metric} weights for this model (it has: {', '.join(known)})")
    if quality not in urls:
        raise CodecError(f"{name}: CompressAI's zoo has no {metric} quality {quality} (it has {sorted(urls)})")
    return urls[quality]


def zoo_file(name: str, quality: int, metric: str = "mse") -> Path:
    """Where torch.hub (and so compressai.zoo) caches the file: $TORCH_HOME/hub/checkpoints/<name>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / zoo_url(name, quality, metric).rsplit("/", 1)[-1]


def _name_hash(path: Path) -> str | None:
    """The sha256 prefix in a zoo file name (`...-446d5c7f.pth.tar`), as torch.hub reads it."""
    stem = path.name.split(".", 1)[0]
    tail = stem.rsplit("-", 1)[-1]
    return tail if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail) else None


def load_zoo(name: str, quality: int, metric: str = "mse", download: bool = True) -> tuple[torch.nn.Module, dict]:
    """CompressAI zoo weights from the torch hub cache (downloaded into it when absent)."""
    url = zoo_url(name, quality, metric)
    path = zoo_file(name, quality, metric)
    if not path.is_file():
        if not download:
            raise CodecError(f"{name}: zoo weights not in the torch hub cache ({path}); fetch {url} there")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # torch.hub writes a temp file and renames it: no partial file is left behind
            torch.hub.download_url_to_file(url, str(path), hash_prefix=_name_hash(path), progress=False)
        except Exception as e:
            raise CodecError(f"{name}: zoo weights not in the torch hub cache ({path}) and the download of "
                             f"{url} failed ({type(e).__name__}: {e})") from None
    model, meta = load_model(name, path)
    expect = _name_hash(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    meta.update(format="compressai-zoo", zoo_quality=int(quality), zoo_metric=metric, zoo_url=url,
                sha256=sha[:16], zoo_hash_ok=(sha.startswith(expect) if expect else None))
    return model, meta
