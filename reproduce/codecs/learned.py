"""Learned codecs behind the `Codec` interface, with real entropy-coded bitstreams.

`create_codec("<model>", quality=<rate index>, checkpoint=..., ...)` works for every model
in `reproduce.models.registry`. Options (all picklable, so the engine can rebuild the codec
in a worker process):
  * `source`: `train` (default: `results/train/<model>/r<quality>/best.pt`), `checkpoint`
    (the `checkpoint` option) or `zoo` (CompressAI's zoo weights from the torch hub cache,
    downloaded when absent; `zoo_quality` default rate index + 1, `zoo_metric` default mse).
    `pretrained=True` is the old spelling of `source="zoo"`.
  * `checkpoint`: a file written by `rsicbench train` (ours), CompressAI's examples/train.py,
    CompressAI-Trainer, or a bare state dict (reproduce/models/checkpoints.py).
  * `N`, `M`: widths, only needed when they cannot be read from the tensors (the CompressAI
    families' widths are inferred as compressai's `from_state_dict` does).
  * `threads` (default 1): torch CPU threads, fixed so encode/decode are deterministic and
    a decode in another process gives bit-identical pixels on the same machine.
  * `max_pixels` (default 2**26): the largest image encoded or decoded; a bitstream whose
    header declares more is refused before decoding (container.py).
  * `roi_provider` (ROI models only, `model.needs_roi`, e.g. MROI-CFHPM): name of an ROI
    provider (reproduce.roi: cloud, saliency, full) used when `encode` is called without
    `roi=`. The ROI is ENCODER side information: MROI-CFHPM adds the ROI-attention output to
    the input image before g_a (Zhang et al. 2023, Sec. 3.3), so the bitstream carries no
    mask and `decode` never needs it. `encode(image, roi=mask)` passes a mask explicitly
    (the engine does so from its `roi_dir`); with neither, encoding an ROI model fails.

Pipeline: uint8 HxWx3 -> float [0,1] -> pad bottom/right to a multiple of
`model.downsampling` (default 64; replicate padding, which costs fewer bits than zeros) ->
`model.compress` with every entropy model coding into one rANS stream (coding/rans.py,
shared_stream.py; compressai's tables for factorized/Gaussian models, per-symbol rows for
mixtures, entropy.py) -> container format 4 (container.py). Decode reverses it and crops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rsicbench.reproduce.coding import coding_tables, container

from rsicbench.reproduce.coding import learned_stream
from rsicbench.reproduce.codecs.base import Codec, CodecError, register_factory
from rsicbench.reproduce.models.registry import list_models
from rsicbench.results import run_dir

DEFAULT_DOWNSAMPLING = 64


def load_model(name: str, checkpoint: str | Path, **arch: Any) -> tuple[torch.nn.Module, dict]:
    """Build `name` and load `checkpoint` (ours, CompressAI, CompressAI-Trainer or a bare state
    dict; reproduce/models/checkpoints.py). Returns (model, meta)."""
    from rsicbench.reproduce.models.checkpoints import load_model as _load

    return _load(name, checkpoint, **arch)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the parameters (not the derived CDF tables), 12 hex digits."""
    from rsicbench.reproduce.models.checkpoints import state_fingerprint

    return state_fingerprint(model.state_dict())


def _train_budget(config: Any) -> dict[str, Any] | None:
    """What the report labels a learned curve with: the run's planned steps, crop, batch, lr
    (our checkpoints' `config`; None for zoo / foreign checkpoints, which do not record it)."""
    if not isinstance(config, dict):
        return None
    out = {k: config.get(k) for k in ("steps", "patch", "batch", "lr")}
    if config.get("init_from"):  # fine-tuned: its anchor's steps count in its budget
        out.update(init_from=config["init_from"], init_steps=config.get("init_steps") or 0)
    return out


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
        source = options.get("source") or ("zoo" if options.get("pretrained") and ckpt is None
                                           else "checkpoint" if ckpt else "train")
        if source == "zoo":
            self.model, self.meta = self._zoo()
        elif source in ("train", "checkpoint"):
            ckpt = ckpt or run_dir(self.name, f"r{self.quality}") / "best.pt"
            self.model, self.meta = load_model(self.name, ckpt, **arch)
            self.options["checkpoint"] = str(ckpt)
        else:
            raise CodecError(f"{self.name}: source {source!r}: expected train, zoo or checkpoint")
        self.meta["source"] = source
        self.model = self.model.to(self.device).eval()
        self.model.update(force=True)
        self.downsampling = int(getattr(self.model, "downsampling", DEFAULT_DOWNSAMPLING))
        # Serial per-position decoding is a Python loop holding the GIL: use processes.
        self.thread_parallel = not hasattr(self.model, "context_prediction")
        self.fingerprint = weights_fingerprint(self.model)
        coding_tables.install(self.model)  # derived tables only (coding/coding_tables.py)

    def _zoo(self) -> tuple[torch.nn.Module, dict]:
        """CompressAI's zoo weights from the torch hub cache (offline once there; downloaded
        otherwise). Zoo quality = `zoo_quality` option, default rate index + 1."""
        from rsicbench.reproduce.models.checkpoints import load_zoo

        q = int(self.options.get("zoo_quality") or self.quality + 1)
        return load_zoo(self.name, q, str(self.options.get("zoo_metric", "mse")))

    @property
    def version(self) -> str:
        import compressai

        return f"compressai {compressai.__version__}; weights {self.fingerprint}"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(weights=self.fingerprint, arch=self.meta.get("arch"),
                 lambda_compressai=self.meta.get("lambda"), step=self.meta.get("step"),
                 source=self.meta.get("source"), checkpoint_format=self.meta.get("format"),
                 train=_train_budget(self.meta.get("config")))
        if self.meta.get("source") == "zoo":
            d.update({k: self.meta.get(k) for k in ("zoo_quality", "zoo_metric", "zoo_url", "sha256", "zoo_hash_ok")})
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
        from rsicbench.reproduce.roi.providers import RoiError, check_mask, create_roi_provider

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
        container.check_size(image.shape[0], image.shape[1], learned_stream.max_pixels(self), self.name)
        x, ph, pw = self._to_tensor(image)
        roi_t = self._roi_tensor(image, roi, ph, pw)
        return learned_stream.encode(self, image.shape[0], image.shape[1], x, roi_t)

    def decode(self, data: bytes) -> np.ndarray:
        """Container format 4 (container.py): every header field and string checked before and while
        decoding (learned_stream.py); any problem is a `CodecError`."""
        return to_uint8(learned_stream.decode(self, data))

    def estimate_bits(self, image: np.ndarray, roi: np.ndarray | None = None) -> float:
        """Bits the entropy model predicts for exactly the symbols `encode` codes (−Σ log2 of
        the model's likelihoods of them, observed in `compress`; coding/coded_info.py). Not
        the eval-mode forward: for autoregressive models that quantizes other symbols."""
        return sum(b.model for b in self.coded_bits(image, roi).values())

    def coded_bits(self, image: np.ndarray, roi: np.ndarray | None = None) -> dict:
        """Per entropy model (module path) the `coded_info.Bits` of what `encode` codes."""
        from rsicbench.reproduce.coding import coded_info

        image = self.check_image(image, self.name)
        x, ph, pw = self._to_tensor(image)
        roi_t = self._roi_tensor(image, roi, ph, pw)
        from rsicbench.reproduce.coding import shared_stream

        learned_stream.prepare(self)  # before observing: the observers wrap the prepared modules

        def compress():
            with shared_stream.encoding(0):
                return learned_stream.compress(self, x, roi_t)

        return coded_info.measure(self.model, compress)[1]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy().copy()


def _register_all() -> None:
    for model_name in list_models():
        cls = type(f"Learned_{model_name.replace('-', '_')}", (LearnedCodec,), {"name": model_name})
        register_factory(model_name, cls)


_register_all()
