"""AGDL: attention-guided dual-layer compression (Zhang & Wu, CVPR 2021) as a `Codec`.

Encoder (Alg. 1): base layer = any registered classical codec (JPEG by default) ->
F(base luminance) = critical-pixel probabilities -> top-K pixels c -> y = H c with a seeded
full-row-rank H (m x K, m < K) -> y quantized (step `step`) and range-coded.
Decoder: base layer -> G (dual-domain restorer) -> least-norm projection (Eq. 10)
  c_hat = c_g + H^T (H H^T)^-1 (y_hat - H c_g), so H c_hat = y_hat exactly, i.e. H c_hat = y
up to the measurement quantization (|y_hat - y| <= step/2 per measurement).
Luminance only (paper Sec. 4.1: YCbCr, Y channel); colour (Cb, Cr) comes from the decoded
base layer and is added back for display. Rate = len(whole stream) = header + base-layer
bytes + refinement bytes, all real.

Training labels (Eq. 1): C = edges (Canny on the original Y) AND ROI AND |Y - CAR(Y_b)| > 8.
Assumptions where the paper is silent or relies on unavailable nets:
  * CAR (the paper's DnCNN) = our G trained first without the refinement layer ("G_car");
    it also provides the "base + artifact removal" comparison row (codec `agdl-car`).
  * ROI (the paper's BASNet) = any ROI provider (rsicbench.reproduce.roi.providers): saliency for
    general scenes, non-cloud for Landsat, full ROI otherwise.
  * H: i.i.d. Gaussian (seeded by `seed`, K, m), rows orthonormalised by QR, so it is full
    row rank by construction (the paper's supplement, which defines H, is not available).
  * K = round(critical_fraction * H * W) (capped at `max_critical`), m = round(cs_ratio * K).
  * Measurements are coded as residuals against H c_b (c_b = the critical pixels of the base
    layer, known to the decoder) with a Laplace model whose scale is sent in the header; the
    measurement vector itself is unchanged by this choice.
  * F's probabilities are quantised to 1/1024 before ranking (ties: lower pixel index first)
    so that encoder and decoder pick the same K pixels despite float round-off.
  * The final image is rounded to 8 bits, which moves each pixel by <= 0.5 after projection.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsicbench.reproduce.models.agdl.nets import DualDomainRestorer, MaskPredictor
from rsicbench.reproduce.codecs.base import Codec, CodecError, create_codec, register_factory

MAGIC = b"AGD1"
ERROR_THRESHOLD = 8.0  # paper Sec. 4.2: "large restoration errors (error > 8)"
SYMBOL_RANGE = 1 << 20


# --------------------------------------------------------------------------- colour
def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JFIF (BT.601 full-range) RGB -> YCbCr, float64, the JPEG colour space."""
    a = np.asarray(rgb, dtype=np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128.0, ycc[..., 2] - 128.0
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- CS pieces
def sensing_matrix(m: int, k: int, seed: int) -> np.ndarray:
    """Seeded m x K (m <= K) Gaussian matrix with orthonormal rows (full row rank)."""
    if not (0 < m <= k):
        raise ValueError(f"sensing matrix needs 0 < m <= K, got m={m}, K={k}")
    rng = np.random.default_rng([int(seed), int(k), int(m)])
    q, r = np.linalg.qr(rng.standard_normal((k, m)))
    q *= np.sign(np.diag(r))[None, :]  # unique QR: deterministic signs
    return np.ascontiguousarray(q.T)


def least_norm_projection(c_g: np.ndarray, h: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Eq. 10: c_g + H^T (H H^T)^-1 (y - H c_g); afterwards H c = y (float64 round-off)."""
    residual = y - h @ c_g
    return c_g + h.T @ np.linalg.solve(h @ h.T, residual)


def least_norm_projection_torch(c_g: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable Eq. 10 (used while fine-tuning G, as the paper trains through R)."""
    return c_g + h.T @ torch.linalg.solve(h @ h.T, y - h @ c_g)


def topk_indices(prob: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the K most probable pixels, sorted ascending (deterministic ties)."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    q = np.round(np.asarray(prob, dtype=np.float64).ravel() * 1024).astype(np.int64)
    order = np.lexsort((np.arange(q.size), -q))  # by -q, then by index
    return np.sort(order[:k])


def critical_mask(y_orig: np.ndarray, y_car: np.ndarray, roi: np.ndarray | None = None,
                  threshold: float = ERROR_THRESHOLD, canny_sigma: float = 1.0) -> np.ndarray:
    """Eq. 1: Canny edges of the original Y AND ROI AND |Y - CAR(Y_b)| > threshold."""
    from skimage.feature import canny

    edges = canny(np.asarray(y_orig, dtype=np.float64) / 255.0, sigma=canny_sigma)
    big_error = np.abs(np.asarray(y_orig, dtype=np.float64) - y_car) > threshold
    c = edges & big_error
    if roi is not None:
        if roi.shape != c.shape:
            raise ValueError(f"critical mask: ROI {roi.shape} vs image {c.shape}")
        c &= roi.astype(bool)
    return c


def encode_residuals(symbols: np.ndarray) -> tuple[bytes, float]:
    """Range-code integer residuals with a zero-mean Laplace model; returns (bytes, scale)."""
    import constriction

    if symbols.size == 0:
        return b"", 1.0
    scale = float(np.float32(max(np.mean(np.abs(symbols)), 0.1)))
    if np.abs(symbols).max() >= SYMBOL_RANGE:
        raise CodecError("agdl: measurement residual outside the coder range; raise `step`")
    model = constriction.stream.model.QuantizedLaplace(-SYMBOL_RANGE, SYMBOL_RANGE)
    enc = constriction.stream.queue.RangeEncoder()
    n = symbols.size
    enc.encode(symbols.astype(np.int32), model, np.zeros(n), np.full(n, scale))
    return enc.get_compressed().tobytes(), scale


def decode_residuals(data: bytes, n: int, scale: float) -> np.ndarray:
    import constriction

    if n == 0:
        return np.zeros(0, dtype=np.int64)
    model = constriction.stream.model.QuantizedLaplace(-SYMBOL_RANGE, SYMBOL_RANGE)
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
    return dec.decode(model, np.zeros(n), np.full(n, scale)).astype(np.int64)


# --------------------------------------------------------------------------- networks
class AGDLNets:
    """F, G (fine-tuned with the projection) and G_car (CAR only), with their config."""

    def __init__(self, width: int = 16, depth: int = 2, blocks: int = 3) -> None:
        self.config = {"width": int(width), "depth": int(depth), "blocks": int(blocks)}
        self.F = MaskPredictor(width, depth)
        self.G = DualDomainRestorer(width, blocks)
        self.G_car = DualDomainRestorer(width, blocks)
        for net in (self.F, self.G, self.G_car):
            net.eval()

    def state(self) -> dict[str, Any]:
        return {"config": dict(self.config), "F": self.F.state_dict(), "G": self.G.state_dict(),
                "G_car": self.G_car.state_dict()}

    def save(self, path: str | Path) -> None:
        from rsicbench.fsutil import atomic_path

        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    @classmethod
    def load(cls, path: str | Path) -> "AGDLNets":
        path = Path(path)
        if not path.is_file():
            raise CodecError(f"agdl: checkpoint {path} not found (train it: dvc repro roi-agdl-train)")
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
            nets = cls(**st["config"])
            nets.F.load_state_dict(st["F"])
            nets.G.load_state_dict(st["G"])
            nets.G_car.load_state_dict(st["G_car"])
        except (KeyError, RuntimeError, TypeError) as e:
            raise CodecError(f"agdl: {path}: not a valid AGDL checkpoint ({e})") from None
        return nets

    @torch.no_grad()
    def predict_prob(self, y_b: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.asarray(y_b, dtype=np.float32) / 255.0)[None, None]
        return torch.sigmoid(self.F(t))[0, 0].numpy()

    @torch.no_grad()
    def restore(self, y_b: np.ndarray, car: bool = False) -> np.ndarray:
        t = torch.from_numpy(np.asarray(y_b, dtype=np.float32) / 255.0)[None, None]
        net = self.G_car if car else self.G
        return net(t)[0, 0].double().numpy() * 255.0


# --------------------------------------------------------------------------- codec
class AGDLCodec(Codec):
    """Two-layer AGDL codec; `quality` is the base codec's quality (JPEG q by default).

    `refine=False` gives the comparison system "base + G_car artifact removal" (no refinement
    layer, codec name `agdl-car`).
    """

    quality_name = "base_quality"
    quality_range = (0, 1000)  # the base codec checks its own range
    integer_quality = False

    def __init__(self, quality: float, base: str = "jpeg", checkpoint: str | None = None,
                 critical_fraction: float = 0.02, cs_ratio: float = 0.5, step: float = 2.0,
                 max_critical: int = 4096, seed: int = 0, refine: bool = True,
                 nets: AGDLNets | None = None) -> None:
        super().__init__(quality, base=base, checkpoint=checkpoint, critical_fraction=critical_fraction,
                         cs_ratio=cs_ratio, step=step, max_critical=max_critical, seed=seed, refine=refine)
        if not (0.0 <= critical_fraction <= 1.0 and 0.0 < cs_ratio <= 1.0 and step > 0):
            raise CodecError(f"{self.name}: need 0<=critical_fraction<=1, 0<cs_ratio<=1, step>0")
        self.name = "agdl" if refine else "agdl-car"
        self.base_codec = create_codec(base, quality)
        if nets is None:
            if checkpoint is None:
                raise CodecError(f"{self.name}: needs `checkpoint` (an AGDL checkpoint) or `nets`")
            nets = AGDLNets.load(checkpoint)
        self.nets = nets
        self.base, self.critical_fraction, self.cs_ratio = base, critical_fraction, cs_ratio
        self.step, self.max_critical, self.seed, self.refine = float(step), int(max_critical), int(seed), refine

    @property
    def version(self) -> str:
        return f"agdl (torch {torch.__version__}) + base {self.base_codec.version}"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["base"] = self.base_codec.describe()
        return d

    def sizes(self, h: int, w: int) -> tuple[int, int]:
        """(K critical pixels, m measurements) for an HxW image."""
        if not self.refine:
            return 0, 0
        k = min(self.max_critical, int(round(self.critical_fraction * h * w)))
        m = int(round(self.cs_ratio * k))
        return (k, m) if m > 0 else (0, 0)

    # ----------------------------------------------------------------- encode
    def encode(self, image: np.ndarray) -> bytes:
        img = self.check_image(image, self.name)
        h, w = img.shape[:2]
        base_bytes = self.base_codec.encode(img)
        parts = self.analyse(img, base_bytes)
        header = struct.pack("<4sIIIdfI", MAGIC, parts["k"], parts["m"], self.seed, self.step,
                             parts["scale"], len(base_bytes))
        return header + base_bytes + parts["refinement"]

    def analyse(self, img: np.ndarray, base_bytes: bytes) -> dict[str, Any]:
        """Encoder side after the base layer: indices, H, y and the coded refinement bytes."""
        h, w = img.shape[:2]
        k, m = self.sizes(h, w)
        if k == 0:
            return {"k": 0, "m": 0, "scale": 1.0, "refinement": b"", "y": np.zeros(0)}
        y_b = rgb_to_ycbcr(self.base_codec.decode(base_bytes))[..., 0]
        idx = topk_indices(self.nets.predict_prob(y_b), k)
        hm = sensing_matrix(m, k, self.seed)
        c = rgb_to_ycbcr(img)[..., 0].ravel()[idx]
        y = hm @ c
        symbols = np.round((y - hm @ y_b.ravel()[idx]) / self.step).astype(np.int64)
        data, scale = encode_residuals(symbols)
        return {"k": k, "m": m, "scale": scale, "refinement": data, "y": y, "idx": idx, "H": hm}

    # ----------------------------------------------------------------- decode
    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_full(data)["rgb"]

    def decode_full(self, data: bytes) -> dict[str, Any]:
        """Decoded RGB plus the float luminance before rounding and the CS quantities."""
        hsize = struct.calcsize("<4sIIIdfI")
        if len(data) < hsize:
            raise CodecError(f"{self.name}: stream of {len(data)} bytes is shorter than its header")
        magic, k, m, seed, step, scale, nbase = struct.unpack("<4sIIIdfI", data[:hsize])
        if magic != MAGIC or hsize + nbase > len(data):
            raise CodecError(f"{self.name}: not an AGDL stream (bad magic or truncated base layer)")
        base_rgb = self.base_codec.decode(data[hsize:hsize + nbase])
        ycc_b = rgb_to_ycbcr(base_rgb)
        y_b = ycc_b[..., 0]
        y_g = self.nets.restore(y_b, car=not self.refine)
        out: dict[str, Any] = {"y_g": y_g}
        if k > 0:
            idx = topk_indices(self.nets.predict_prob(y_b), k)
            hm = sensing_matrix(m, k, seed)
            symbols = decode_residuals(data[hsize + nbase:], m, scale)
            y_hat = hm @ y_b.ravel()[idx] + symbols * step
            c_hat = least_norm_projection(y_g.ravel()[idx], hm, y_hat)
            y_g = y_g.copy()
            y_g.ravel()[idx] = c_hat
            out.update(idx=idx, H=hm, y_hat=y_hat, c_hat=c_hat)
        out["y_float"] = y_g
        ycc_b[..., 0] = np.clip(y_g, 0, 255)
        out["rgb"] = ycbcr_to_rgb(ycc_b)
        return out


def _factory(refine: bool):
    def make(quality: float, **options: Any) -> Codec:
        return AGDLCodec(quality, refine=refine, **options)

    return make


def _register() -> None:
    for name, refine in (("agdl", True), ("agdl-car", False)):
        make = _factory(refine)
        try:
            register_factory(name, make)
        except ValueError:  # module re-imported (e.g. importlib.reload in tests)
            pass


_register()
AGDLCodec.name = "agdl"


# --------------------------------------------------------------------------- training
def _crops(arrays: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = arrays[0].shape[:2]
    if h < size or w < size:
        raise ValueError(f"agdl training: image {w}x{h} smaller than the crop {size}")
    i, j = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return [a[i:i + size, j:j + size] for a in arrays]


def _batch(items: list[tuple[np.ndarray, ...]], size: int, bs: int, rng: np.random.Generator, cols: int):
    picks = [_crops(list(items[int(rng.integers(0, len(items)))][:cols]), size, rng) for _ in range(bs)]
    return [torch.from_numpy(np.stack([p[c] for p in picks])[:, None].astype(np.float32) / 255.0) for c in range(cols)]


def _luminance_pairs(images: list[np.ndarray], rois: list[np.ndarray | None], base: str,
                     qualities: tuple[float, ...]) -> tuple[list, list]:
    """(Y, Y_b) per image and quality (Y_b: luminance after the base codec), and each pair's ROI."""
    lum, masks_roi = [], []
    for img, roi in zip(images, rois):
        y = rgb_to_ycbcr(img)[..., 0]
        for q in qualities:
            codec = create_codec(base, q)
            yb = rgb_to_ycbcr(codec.decode(codec.encode(img)))[..., 0]
            lum.append((np.clip(np.round(y), 0, 255), np.clip(np.round(yb), 0, 255)))
            masks_roi.append(roi)
    return lum, masks_roi


def _fit(log: dict, name: str, net: torch.nn.Module, n: int, loss_fn, *, lr: float, progress: bool) -> None:
    """`n` Adam steps on `loss_fn()`; records the first and the mean of the last 10 % losses in `log[name]`."""
    from tqdm import tqdm

    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    losses = []
    for _ in tqdm(range(n), desc=f"agdl {name}", disable=not progress):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    log[name] = {"steps": n, "first_loss": losses[0] if losses else None,
                 "last_loss": float(np.mean(losses[-max(1, n // 10):])) if losses else None}


def _car_loss(nets: AGDLNets, lum: list, crop: int, batch: int, rng: np.random.Generator) -> torch.Tensor:
    y, yb = _batch(lum, crop, batch, rng, 2)
    return (nets.G_car(yb) - y).abs().mean()


def _f_loss(nets: AGDLNets, labelled: list, crop: int, batch: int, rng: np.random.Generator) -> torch.Tensor:
    yb, c = _batch(labelled, crop, batch, rng, 2)
    return torch.nn.functional.binary_cross_entropy_with_logits(nets.F(yb), c)


def _g_loss(nets: AGDLNets, lum: list, crop: int, batch: int, rng: np.random.Generator, k: int,
            hm: torch.Tensor, step: float) -> torch.Tensor:
    """L1 after projecting the top-K pixels F picks onto y = H c (+ one quantisation step of noise)."""
    y, yb = _batch(lum, crop, batch, rng, 2)
    with torch.no_grad():
        prob = torch.sigmoid(nets.F(yb))
    out = nets.G(yb)
    total = []
    for b in range(y.shape[0]):
        idx = torch.from_numpy(topk_indices(prob[b, 0].numpy(), k))
        c = y[b, 0].reshape(-1)[idx]
        meas = hm @ c + (torch.rand(hm.shape[0]) - 0.5) * (step / 255.0)
        flat = out[b, 0].reshape(-1)
        c_hat = least_norm_projection_torch(flat[idx], hm, meas)
        refined = flat.index_put((idx,), c_hat)
        total.append((refined - y[b, 0].reshape(-1)).abs().mean())
    return torch.stack(total).mean()


def train_agdl(images: list[np.ndarray], rois: list[np.ndarray | None], *, base: str = "jpeg",
               qualities: tuple[float, ...] = (10, 30, 50), steps: tuple[int, int, int] = (200, 200, 200),
               crop: int = 64, batch: int = 8, lr: float = 1e-4, width: int = 16, depth: int = 2,
               blocks: int = 3, critical_fraction: float = 0.02, cs_ratio: float = 0.5, step: float = 2.0,
               seed: int = 0, progress: bool = False) -> tuple[AGDLNets, dict[str, Any]]:
    """Train the AGDL nets in three stages; returns the nets and a log of mean losses.

    1. G_car: L1 restoration of the base-layer luminance (multi-rate, `qualities`, as the
       paper's multi-rate training set; the CAR step of Sec. 4.2).
    2. F: BCE against C = edges AND ROI AND |Y - G_car(Y_b)| > 8 (Eq. 1, Sec. 4.2).
    3. G (initialised from G_car): L1 after the differentiable projection with y = H c of the
       top-K pixels that F picks, plus uniform noise of one quantisation step (Sec. 3.4).
    Adam (0.9, 0.999) as in the paper; lr and steps are the profile's (far fewer than 100 epochs).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    nets = AGDLNets(width, depth, blocks)
    lum, masks_roi = _luminance_pairs(images, rois, base, qualities)
    log: dict[str, Any] = {}
    _fit(log, "G_car", nets.G_car, steps[0], lambda: _car_loss(nets, lum, crop, batch, rng), lr=lr, progress=progress)

    # (Y_b, C) with C from Eq. 1 using the trained CAR
    labelled = [(yb, critical_mask(y, nets.restore(yb, car=True), roi).astype(np.float64) * 255.0)
                for (y, yb), roi in zip(lum, masks_roi)]
    log["critical_fraction_labels"] = float(np.mean([c.mean() / 255.0 for _, c in labelled]))
    _fit(log, "F", nets.F, steps[1], lambda: _f_loss(nets, labelled, crop, batch, rng), lr=lr, progress=progress)

    nets.G.load_state_dict(nets.G_car.state_dict())
    k = max(1, int(round(critical_fraction * crop * crop)))
    m = max(1, int(round(cs_ratio * k)))
    hm = torch.from_numpy(sensing_matrix(m, k, seed)).float()
    _fit(log, "G", nets.G, steps[2], lambda: _g_loss(nets, lum, crop, batch, rng, k, hm, step), lr=lr,
         progress=progress)
    return nets, log
