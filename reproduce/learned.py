"""Learned codecs behind the `Codec` interface, with real entropy-coded bitstreams.

`create_codec("<model>", quality=<rate index>, checkpoint=..., ...)` works for every model
in `reproduce.models.registry`. Options (all picklable, so the engine can rebuild the codec
in a worker process):
  * `checkpoint`: a file written by `rsicbench train` (ours) or a CompressAI state dict
    (plain, or `{"state_dict": ...}` as CompressAI's examples/train.py saves it). Default:
    `results/train/<model>/r<quality>/best.pt`.
  * `N`, `M`: widths, only needed for a CompressAI-format file whose widths cannot be read
    from the tensors (they are inferred from `g_a.0`/`g_a.6` otherwise).
  * `pretrained=True`: CompressAI's zoo weights (quality = rate index + 1), online only.
  * `threads` (default 1): torch CPU threads, fixed so encode/decode are deterministic and
    a decode in another process gives bit-identical pixels on the same machine.
  * `roi_provider` (ROI models only, `model.needs_roi`, e.g. MROI-CFHPM): name of an ROI
    provider (reproduce.roi: cloud, saliency, full) used when `encode` is called without
    `roi=`. The ROI is ENCODER side information: MROI-CFHPM adds the ROI-attention output to
    the input image before g_a (Zhang et al. 2023, Sec. 3.3), so the bitstream carries no
    mask and `decode` never needs it. `encode(image, roi=mask)` passes a mask explicitly
    (the engine does so from its `roi_dir`); with neither, encoding an ROI model fails.

Pipeline: uint8 HxWx3 -> float [0,1] -> pad bottom/right to a multiple of
`model.downsampling` (default 64; replicate padding, which costs fewer bits than zeros) ->
`model.compress` (compressai ANS for factorized/Gaussian models, constriction ANS for
mixtures, see entropy.py) -> container (container.py). Decode reverses it and crops.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rsicbench.reproduce import container
from rsicbench.reproduce.codec import Codec, CodecError, register_factory
from rsicbench.reproduce.models.registry import create_model, list_models

DEFAULT_DOWNSAMPLING = 64


def run_dir(model: str, rate: str, root: Path | None = None) -> Path:
    from rsicbench.paths import project_root

    return (root or project_root()) / "results" / "train" / model / rate


def _load_file(path: Path) -> dict:
    if not path.is_file():
        raise CodecError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CodecError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise CodecError(f"{path}: checkpoint holds {type(obj).__name__}, expected a dict")
    return obj


def infer_widths(state: dict) -> dict:
    """N and M from a CompressAI-style state dict (first and last conv of g_a)."""
    out = {}
    for key in ("g_a.0.weight", "g_a.0.conv1.weight"):
        if key in state:
            out["N"] = int(state[key].shape[0])
            break
    if "g_a.6.weight" in state:
        out["M"] = int(state["g_a.6.weight"].shape[0])
    return out


def load_model(name: str, checkpoint: str | Path, **arch: Any) -> tuple[torch.nn.Module, dict]:
    """Build `name` and load `checkpoint` (ours or CompressAI format). Returns (model, meta)."""
    path = Path(checkpoint)
    obj = _load_file(path)
    if "model" in obj and "model_name" in obj:  # ours (train.py)
        if obj["model_name"] != name:
            raise CodecError(f"{path}: checkpoint is for model {obj['model_name']!r}, not {name!r}")
        state, meta = obj["model"], {k: v for k, v in obj.items() if k not in ("model", "optimizer", "aux_optimizer", "scheduler")}
        cfg = {**obj.get("arch", {}), **arch}
    else:  # CompressAI: a bare state dict or examples/train.py's {"state_dict": ...}
        state = obj.get("state_dict", obj)
        meta = {"format": "compressai"}
        cfg = {**infer_widths(state), **arch}
    model = create_model(name, **cfg)
    try:
        model.load_state_dict(state)  # compressai's override resizes the CDF buffers
    except RuntimeError as e:
        raise CodecError(f"{path}: weights do not fit {name} with {cfg} ({str(e).splitlines()[0]})") from None
    meta["arch"] = cfg
    return model, meta


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the parameters (not the derived CDF tables), 12 hex digits."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        if "_quantized_cdf" in k or "_offset" in k or "_cdf_length" in k:
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


class LearnedCodec(Codec):
    quality_name = "rate_index"
    higher_is_better = True
    quality_range = (0, 15)
    integer_quality = True
    # Separate instances may code in threads of one process (engine "thread" mode): nothing
    # is shared between instances. Worth it when the time is in torch ops, which release
    # the GIL; an instance with an autoregressive context model says False (see below).
    thread_parallel = True

    def __init__(self, quality: float, **options: Any) -> None:
        super().__init__(quality, **options)
        torch.set_num_threads(int(options.get("threads", 1)))
        self.device = options.get("device", "cpu")
        arch = {k: options[k] for k in ("N", "M") if options.get(k) is not None}
        ckpt = options.get("checkpoint")
        if options.get("pretrained") and ckpt is None:
            self.model, self.meta = self._zoo(), {"format": "compressai-zoo"}
        else:
            ckpt = ckpt or run_dir(self.name, f"r{self.quality}") / "best.pt"
            self.model, self.meta = load_model(self.name, ckpt, **arch)
            self.options["checkpoint"] = str(ckpt)
        self.model = self.model.to(self.device).eval()
        self.model.update(force=True)
        self.downsampling = int(getattr(self.model, "downsampling", DEFAULT_DOWNSAMPLING))
        # Serial per-position decoding is a Python loop holding the GIL: use processes.
        self.thread_parallel = not hasattr(self.model, "context_prediction")
        self.fingerprint = weights_fingerprint(self.model)

    def _zoo(self) -> torch.nn.Module:
        """CompressAI's pretrained weights; needs the internet (never used in tests)."""
        from compressai.zoo import image_models

        if self.name not in image_models:
            raise CodecError(f"{self.name}: no CompressAI zoo weights for this model")
        try:
            return image_models[self.name](quality=self.quality + 1, pretrained=True)
        except Exception as e:
            raise CodecError(f"{self.name}: cannot fetch zoo weights ({e})") from None

    @property
    def version(self) -> str:
        import compressai

        return f"compressai {compressai.__version__}; weights {self.fingerprint}"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(weights=self.fingerprint, arch=self.meta.get("arch"),
                 lambda_compressai=self.meta.get("lambda"), step=self.meta.get("step"))
        return d

    # ---- tensors ----
    def _to_tensor(self, image: np.ndarray) -> tuple[torch.Tensor, int, int]:
        h, w = image.shape[:2]
        x = torch.from_numpy(image).permute(2, 0, 1).contiguous().float().div(255.0).unsqueeze(0)
        d = self.downsampling
        ph, pw = (-h) % d, (-w) % d
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x.to(self.device), ph, pw

    @property
    def needs_roi(self) -> bool:
        return bool(getattr(self.model, "needs_roi", False))

    def _roi_tensor(self, image: np.ndarray, roi: np.ndarray | None, ph: int, pw: int) -> torch.Tensor | None:
        """The Bx1xHxW ROI for an ROI model (padded like the image), None for other models."""
        if not self.needs_roi:
            return None
        from rsicbench.reproduce.roi import RoiError, check_mask, create_roi_provider

        try:
            if roi is None:
                name = self.options.get("roi_provider")
                if not name:
                    raise CodecError(f"{self.name}: needs an ROI mask (encode(image, roi=...)) or the roi_provider option")
                roi = create_roi_provider(name)(image, source=f"{self.name} input")
            m = check_mask(roi, image.shape, f"{self.name} ROI")
        except RoiError as e:
            raise CodecError(str(e)) from None
        t = torch.from_numpy(m.astype(np.float32))[None, None]
        if ph or pw:
            t = F.pad(t, (0, pw, 0, ph), mode="replicate")
        return t.to(self.device)

    def encode(self, image: np.ndarray, roi: np.ndarray | None = None) -> bytes:
        image = self.check_image(image, self.name)
        x, ph, pw = self._to_tensor(image)
        roi_t = self._roi_tensor(image, roi, ph, pw)
        with torch.no_grad():
            out = self.model.compress(x) if roi_t is None else self.model.compress(x, roi=roi_t)
        strings = [[bytes(s) for s in group] for group in out["strings"]]
        return container.pack(container.Container(
            self.name, self.fingerprint, image.shape[0], image.shape[1], ph, pw,
            [int(s) for s in out["shape"]], strings))

    def decode(self, data: bytes) -> np.ndarray:
        c = container.unpack(data, who=self.name)
        if c.model_id != self.name:
            raise CodecError(f"{self.name}: bitstream was made by model {c.model_id!r}")
        if c.model_version != self.fingerprint:
            raise CodecError(f"{self.name}: bitstream was made with weights {c.model_version}, "
                             f"this codec has {self.fingerprint} (wrong checkpoint)")
        hp, wp = c.height + c.pad_h, c.width + c.pad_w
        if hp % self.downsampling or wp % self.downsampling or len(c.shape) != 2 \
                or not all(0 < s <= max(hp, wp) for s in c.shape) or c.shape[0] * c.shape[1] * 256 > hp * wp * 16:
            raise CodecError(f"{self.name}: inconsistent header (size {c.height}x{c.width}, "
                             f"pad {c.pad_h}x{c.pad_w}, latent shape {c.shape})")
        try:
            with torch.no_grad():
                x_hat = self.model.decompress(c.strings, torch.Size(c.shape))["x_hat"]
        except CodecError:
            raise
        except Exception as e:  # a malformed string inside a valid container
            raise CodecError(f"{self.name}: cannot decode bitstream ({type(e).__name__}: {e})") from None
        if x_hat.shape[-2:] != (hp, wp):
            raise CodecError(f"{self.name}: decoded {tuple(x_hat.shape[-2:])}, header says {(hp, wp)}")
        return to_uint8(x_hat[..., :c.height, :c.width])

    def estimate_bits(self, image: np.ndarray, roi: np.ndarray | None = None) -> float:
        """Bits the entropy model predicts (−Σ log2 likelihoods, eval-mode forward)."""
        image = self.check_image(image, self.name)
        x, ph, pw = self._to_tensor(image)
        roi_t = self._roi_tensor(image, roi, ph, pw)
        with torch.no_grad():
            out = self.model(x) if roi_t is None else self.model(x, roi=roi_t)
        return float(sum((-torch.log2(lk)).sum() for lk in out["likelihoods"].values()))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy().copy()


def _register_all() -> None:
    for model_name in list_models():
        cls = type(f"Learned_{model_name.replace('-', '_')}", (LearnedCodec,), {"name": model_name})
        register_factory(model_name, cls)


_register_all()
