"""MGSS-Net blocks (Shi et al., IEEE JSTARS 2024): SSIF-AM (Eq. 7), MHG-AM (Eq. 8,
Algorithm 1), LGCM (Eq. 9), the tail of each down/up-sampling and the "buffer" block (Sec. II-A)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import GDN


class SSIFAM(nn.Module):
    """Spatial spectral information fusion attention (Eq. 7, Fig. 2):
        f = Conv5x5(I);  s = sum_k Conv_kx1(Conv_1xk(f)) + AvgPool(f) + MaxPool(f) + f
        out = I (Hadamard) Conv1x1(s) + I
    Strip ("bar") kernels k = 5, 7, 9 (Sec. III-C; swept in Fig. 7a via `strip_kernels`).
    Assumptions (Fig. 2 lost): the 5x5 and strip convs are depthwise (the paper stresses
    their low parameter cost; this is SegNeXt's MSCA pattern); pools are 3x3 stride 1;
    the residual ("some residuals are introduced") is the final + I."""

    def __init__(self, channels: int, strip_kernels=(5, 7, 9)):
        super().__init__()
        c = channels
        self.local = nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.strips = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, (1, k), padding=(0, k // 2), groups=c),
                          nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0), groups=c))
            for k in strip_kernels
        )
        self.fuse = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.local(x)
        s = f + F.avg_pool2d(f, 3, 1, 1, count_include_pad=False) + F.max_pool2d(f, 3, 1, 1)
        for strip in self.strips:
            s = s + strip(f)
        return x * self.fuse(s) + x


class MHGAM(nn.Module):
    """Multi-head global attention (Algorithm 1, Fig. 3), on all H*W tokens:
        q, k, v = Linear(tokens);  x1 = Conv3x3(x)
        attn3 = Linear(Dropout(Softmax(q k^T / sqrt(d))) v)   (reshaped to BxCxHxW)
        out = x + Conv5x5(attn3 + x1) (Hadamard) x1
    Algorithm 1 is followed where it differs from Eq. 8 (which multiplies by the input
    instead of x1). 4 heads (Sec. III-C; swept in Fig. 7b via `heads`). Attention runs
    through scaled_dot_product_attention (memory-efficient on large latents)."""

    def __init__(self, channels: int, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"MHG-AM: {channels} channels not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv5 = nn.Conv2d(channels, channels, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # B, N, C
        q, k, v = self.qkv(t).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        a = self.proj(a.transpose(1, 2).reshape(b, h * w, c)).transpose(1, 2).view(b, c, h, w)
        x1 = self.conv3(x)
        return x + self.conv5(a + x1) * x1


class LGCM(nn.Module):
    """Local-global collaboration (Eq. 9, Fig. 4): SSIF-AM(x) + beta * MHG-AM(x), beta = 0.1."""

    def __init__(self, channels: int, beta: float = 0.1, strip_kernels=(5, 7, 9), heads: int = 4):
        super().__init__()
        self.beta = beta
        self.ssif = SSIFAM(channels, strip_kernels)
        self.mhg = MHGAM(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ssif(x) + self.beta * self.mhg(x)


class StageTail(nn.Module):
    """What follows each down/up-sampling (Sec. II-A): "LeakyReLU, convolution with stride 1,
    and GDN will be sequentially added" (IGDN in the decoder), here with an identity skip
    around the three (`skip=True`, the default).
    Assumption (Fig. 1 lost): the text lists the layers of CompressAI's Cheng2020
    ResidualBlockWithStride, which has a skip; this one adds no parameters, so params and
    FLOPs beside DMENet Table 3 are unchanged. Without it the 16-deep transforms barely
    learned at our budgets (measured: docs/papers.md "MGSS-Net: the stage skip").
    `skip=False` is the literal sequential reading."""

    def __init__(self, channels: int, inverse: bool = False, skip: bool = True):
        super().__init__()
        self.skip = skip
        # not in-place: the skip needs the input unchanged
        self.body = nn.Sequential(nn.LeakyReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  GDN(channels, inverse=inverse))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.skip else self.body(x)


class BufferBlock(nn.Module):
    """"Buffer" module after each GDN (Sec. II-A): two stride-1 convs and two LeakyReLUs with
    a residual connection. Assumption: 3x3 kernels, x + LReLU(Conv(LReLU(Conv(x))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def mgss_module(kind: str, channels: int, beta: float = 0.1, strip_kernels=(5, 7, 9), heads: int = 4) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "ssif":
        return SSIFAM(channels, strip_kernels)
    if kind == "mhg":
        return MHGAM(channels, heads)
    if kind == "lgcm":
        return LGCM(channels, beta, strip_kernels, heads)
    raise ValueError(f"unknown MGSS module {kind!r}; choose none, ssif, mhg, lgcm")
