"""MS-SSIM (Wang, Simoncelli, Bovik 2003) on batched torch tensors.

Convention: 11x11 Gaussian window (sigma 1.5, separable, valid convolution), K1=0.01,
K2=0.03, data range 255, Wang 2003 weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
2x2 average-pool downsampling; contrast-structure terms and the last scale's SSIM are
clipped at 0 (relu) before the weighted product; the value is the mean over the R, G, B
channels. This is pytorch_msssim's (CompressAI's) definition, including its odd-size rule:
an odd side is zero-padded by one before pooling (avg_pool2d padding=s%2, zeros counted).
piq pads by replication instead, so piq agrees with us on even sizes only.

Small images (the rule pytorch_msssim and piq lack): 5 scales need a shorter side of at
least 161 px ((11-1)*2^4 + 1). A smaller image uses the largest number of scales m that fits
(side >= 10*2^(m-1) + 1) and the first m Wang weights renormalised to sum to 1; below 11 px
(not even one 11x11 window) the value is nan.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def n_scales(height: int, width: int, win_size: int = WIN_SIZE, max_scales: int = len(WANG_WEIGHTS)) -> int:
    """Largest number of scales (<= 5) whose coarsest scale still holds one window; 0 if none."""
    side = min(height, width)
    m = 0
    for k in range(1, max_scales + 1):
        if side >= (win_size - 1) * 2 ** (k - 1) + 1:
            m = k
    return m


def scale_weights(m: int) -> tuple[float, ...]:
    """The first m Wang weights, renormalised to sum to 1 (m = 5: the weights unchanged)."""
    if m == len(WANG_WEIGHTS):
        return WANG_WEIGHTS
    w = WANG_WEIGHTS[:m]
    s = sum(w)
    return tuple(v / s for v in w)


def gauss_1d(size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def separable_blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Valid (unpadded) separable convolution of every channel of x with the 1-D kernel g.

    Written as k shifted multiply-adds per axis rather than a grouped conv2d: the same
    sum, but several times faster on CPU (PyTorch's depthwise conv kernels are slow there,
    especially in float64).
    """
    taps = [float(v) for v in g.flatten().tolist()]
    k = len(taps)
    h, w = x.shape[-2:]
    ho, wo = h - k + 1, w - k + 1
    y = x[..., 0:ho, :] * taps[0]
    for i in range(1, k):
        y.add_(x[..., i : i + ho, :], alpha=taps[i])
    z = y[..., 0:wo] * taps[0]
    for i in range(1, k):
        z.add_(y[..., i : i + wo], alpha=taps[i])
    return z


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, data_range: float):
    """Per-channel mean SSIM and contrast-structure terms, shape (N, C) each."""
    c = x.shape[1]
    # One grouped convolution for the five local moments: fewer kernel launches.
    m = separable_blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mu1, mu2, e11, e22, e12 = m.split(c, dim=1)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    cs_map = (2 * (e12 - mu12) + c2) / ((e11 - mu1_sq) + (e22 - mu2_sq) + c2)
    ssim_map = ((2 * mu12 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """MS-SSIM per image, shape (N,), for float tensors (N, C, H, W) in [0, data_range].

    Symmetric in x and y. Returns nan for images under 11 px (see module docstring).
    """
    n, _, h, w = x.shape
    m = n_scales(h, w)
    if m == 0:
        return torch.full((n,), math.nan, dtype=x.dtype, device=x.device)
    weights = torch.tensor(scale_weights(m), dtype=x.dtype, device=x.device)
    g = gauss_1d(WIN_SIZE, WIN_SIGMA, dtype=x.dtype, device=x.device)
    terms = []
    for i in range(m):
        ssim_pc, cs_pc = _ssim_cs(x, y, g, data_range)
        if i < m - 1:
            terms.append(torch.relu(cs_pc))
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(torch.relu(ssim_pc))
    stacked = torch.stack(terms, dim=0)  # (scales, N, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def msssim_db(value: float) -> float:
    """-10*log10(1 - MS-SSIM); +inf when MS-SSIM == 1, nan when the value is nan."""
    if math.isnan(value):
        return math.nan
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)
