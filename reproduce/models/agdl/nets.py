"""The two AGDL networks (Zhang & Wu, CVPR 2021): mask predictor F and dual-domain restorer G.

Both work on the luminance channel scaled to [0, 1] (Bx1xHxW), as the paper does (Sec. 4.1).

F (Sec. 3.3, Fig. 3): a U-Net-like encoder-decoder revised from BASNet: input 3x3 conv, a
size-invariant residual stage, then down-sampling residual stages; the decoder mirrors it
and each stage takes the concatenation of the up-sampled previous output and the matching
encoder feature, three conv-BN-ReLU layers per stage. Output: per-pixel logits (BCE).
Assumption: the number of down-sampling stages (`depth`) and `width` are parameters (paper:
64 filters, 4 down-sampling stages); tiny settings are used on CPU.

G (Sec. 3.4, Fig. 4 lost): a pixel-domain branch (residual conv stack predicting a pixel
correction) and a DCT-domain branch (8x8 block DCT of the base layer, as JPEG uses, conv
stack over the 64 coefficient channels predicting coefficient corrections, inverse DCT), then
a fusion conv over [base, pixel estimate, DCT estimate] predicting the final residual.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def dct_basis(n: int = 8) -> torch.Tensor:
    """Orthonormal 2-D DCT-II basis as (n*n)x1xnxn conv filters (JPEG's 8x8 block DCT)."""
    k = torch.arange(n, dtype=torch.float64)
    c = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    basis = torch.einsum("ux,vy->uvxy", c, c).reshape(n * n, 1, n, n)
    return basis.float()


class BlockDCT(nn.Module):
    """Block DCT / inverse as stride-n convs with a fixed orthonormal basis (exactly invertible)."""

    def __init__(self, n: int = 8) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("basis", dct_basis(n), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.basis, stride=self.n)

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(c, self.basis, stride=self.n)


def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResDown(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Identity() if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class MaskPredictor(nn.Module):
    """F: base-layer luminance -> critical-pixel logits."""

    def __init__(self, width: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.inp = nn.Conv2d(1, width, 3, padding=1)
        self.enc = nn.ModuleList([ResDown(width, width, 1)] + [ResDown(width, width, 2) for _ in range(depth)])
        self.dec = nn.ModuleList(
            nn.Sequential(_cbr(2 * width, width), _cbr(width, width), _cbr(width, width)) for _ in range(depth)
        )
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        p = 2 ** self.depth
        y = F.pad(y, (0, (-w) % p, 0, (-h) % p), mode="replicate")
        feats = []
        x = self.inp(y)
        for stage in self.enc:
            x = stage(x)
            feats.append(x)
        for i, stage in enumerate(self.dec):
            skip = feats[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        return self.out(x)[..., :h, :w]


class DualDomainRestorer(nn.Module):
    """G: base-layer luminance -> restored luminance (pixel + DCT branches, fused)."""

    def __init__(self, width: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.dct = BlockDCT(8)
        layers = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        self.pixel = nn.Sequential(*layers, nn.Conv2d(width, 1, 3, padding=1))
        self.coef = nn.Sequential(
            nn.Conv2d(64, 2 * width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 64, 1),
        )
        self.fuse = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, yb: torch.Tensor) -> torch.Tensor:
        h, w = yb.shape[-2:]
        x = F.pad(yb, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")
        pix = x + self.pixel(x)
        c = self.dct(x)
        dct = self.dct.inverse(c + self.coef(c))
        out = x + self.fuse(torch.cat([x, pix, dct], dim=1))
        return out[..., :h, :w]
