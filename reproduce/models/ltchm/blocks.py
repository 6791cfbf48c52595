"""LTCHM blocks (Zhang et al., Radioengineering 2024): DAM (IDConv), GCA, MSB-FFN, HPHAM,
and the Table 5 comparison blocks SWAtten (Liu 2023) and WAM (Zou 2022).

Cheng's simplified attention module (SAM) is compressai's `AttentionBlock` (used as is).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import GDN, AttentionBlock

from rsicbench.reproduce.models.blocks import LayerNorm2d, SwinMLPBlock, WindowMSA


class IDConv(nn.Module):
    """Input-dependent depth-wise convolution (LTCHM Sec. 2.2, Eq. 5, Fig. 2a; TransXNet [34]).

    AdaptiveAvgPool(X) -> KxK; 1x1 conv C -> C/r; 1x1 conv C/r -> G*C; reshape G x C x K x K;
    softmax over G; D = sum_G (L_G * F_G) with a learnable kernel bank L (G x C x K x K);
    Out = depthwise conv of X with the per-sample kernels D.
    Paper: G = 2, r = 2, K in {1, 3}. Assumption: a GELU between the two 1x1 convs (the
    TransXNet IDConv the paper cites has Conv-BN-GELU; BN is dropped because it fails on
    batch 1 with K = 1). The released code uses r = 4 and also generates an input-dependent
    bias; the paper's Eq. 5 has no bias, so none here.
    """

    def __init__(self, channels: int, kernel_size: int = 3, groups: int = 2, reduction: int = 2):
        super().__init__()
        self.c, self.k, self.g = channels, kernel_size, groups
        self.pool = nn.AdaptiveAvgPool2d(kernel_size)
        self.reduce = nn.Conv2d(channels, max(1, channels // reduction), 1)
        self.act = nn.GELU()
        self.expand = nn.Conv2d(max(1, channels // reduction), groups * channels, 1)
        self.bank = nn.Parameter(torch.empty(groups, channels, kernel_size, kernel_size))
        nn.init.trunc_normal_(self.bank, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        f = self.expand(self.act(self.reduce(self.pool(x))))
        f = torch.softmax(f.view(b, self.g, c, self.k, self.k), dim=1)
        kernel = (f * self.bank.unsqueeze(0)).sum(1)  # B, C, K, K
        out = F.conv2d(x.reshape(1, b * c, h, w), kernel.reshape(b * c, 1, self.k, self.k),
                       padding=self.k // 2, groups=b * c)
        return out.view(b, c, h, w)


class DynamicResBlock(nn.Module):
    """Residual block made of IDConvs (Fig. 2b): IDConv(K1)-ReLU-IDConv(K3)-ReLU-IDConv(K1) + x.

    The K1/K3/K1 pattern mirrors Cheng's residual unit (1x1, 3x3, 1x1) with K in {1, 3}
    as the paper states; it is an assumption where Fig. 2b is lost.
    """

    def __init__(self, channels: int, groups: int = 2, reduction: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            IDConv(channels, 1, groups, reduction), nn.ReLU(inplace=True),
            IDConv(channels, 3, groups, reduction), nn.ReLU(inplace=True),
            IDConv(channels, 1, groups, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DAM(nn.Module):
    """Dynamic Attention Module (Sec. 2.2, Fig. 2b): Cheng's attention layout with IDConv
    residual blocks - trunk = 3 blocks, mask = 3 blocks + 1x1 conv + sigmoid,
    out = x + trunk * mask."""

    def __init__(self, channels: int, groups: int = 2, reduction: int = 2, blocks: int = 3):
        super().__init__()
        self.trunk = nn.Sequential(*[DynamicResBlock(channels, groups, reduction) for _ in range(blocks)])
        self.mask = nn.Sequential(*[DynamicResBlock(channels, groups, reduction) for _ in range(blocks)],
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


class GatedChannelAttention(nn.Module):
    """GCA (Sec. 2.3, Fig. 3): GAP -> split the pooled vector into 4 channel groups -> a 1x1
    conv per group followed by a gate -> concat -> 1x1 conv -> channel-wise product with x.

    Assumptions (Fig. 3 lost): the gate is a self-gate u * sigmoid(u) on each branch; the
    re-aggregated vector goes through a sigmoid before the product (SE convention, as in
    the SaE module [35] it is derived from)."""

    def __init__(self, channels: int, branches: int = 4):
        super().__init__()
        if channels % branches:
            raise ValueError(f"GCA: {channels} channels not divisible into {branches} branches")
        self.branches = branches
        part = channels // branches
        self.convs = nn.ModuleList(nn.Conv2d(part, part, 1) for _ in range(branches))
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = F.adaptive_avg_pool2d(x, 1).chunk(self.branches, dim=1)
        gated = [u * torch.sigmoid(u) for u in (conv(pi) for conv, pi in zip(self.convs, p))]
        return x * torch.sigmoid(self.fuse(torch.cat(gated, 1)))


class MSBFFN(nn.Module):
    """Multi-Scale Multi-Branch FFN (Sec. 2.4, Fig. 4): 1x1 conv C -> 4C, split into 4 parts,
    depthwise 1x1/3x3/5x5/7x7 with hierarchical (Res2Net-style) hand-over: branch i's output
    is added to branch i+1's input; concat -> 1x1 conv 4C -> C.

    Fig. 4 says each depthwise conv has C channels, hence the 4x expansion. Assumption: a
    LeakyReLU after each 1x1 (activation not stated; the released code uses LeakyReLU).
    The outer residual is LTCHM Eq. 6's `MSB-FFN(LN(X_mid)) + X_mid`, applied by the caller.
    """

    def __init__(self, channels: int, expansion: int = 4, kernels=(1, 3, 5, 7)):
        super().__init__()
        hidden = channels * expansion
        if hidden % len(kernels):
            raise ValueError("MSBFFN: hidden width not divisible by the branch count")
        part = hidden // len(kernels)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.dw = nn.ModuleList(nn.Conv2d(part, part, k, padding=k // 2, groups=part) for k in kernels)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.act = nn.LeakyReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.act(self.fc1(x)).chunk(len(self.dw), dim=1)
        outs, carry = [], None
        for conv, p in zip(self.dw, parts):
            carry = conv(p if carry is None else p + carry)
            outs.append(carry)
        return self.act(self.fc2(torch.cat(outs, 1)))


class HPHAMStage(nn.Module):
    """One HPHAM stage (Sec. 2.5, Eq. 6, Fig. 5) on a 2C-channel input X:
        X_cha, X_trans = Split(Conv1x1(LN(X)));  X'_cha = GCA(X_cha);  X'_trans = (S)W-MSA(X_trans)
        X_mid = Conv1x1(Concat(X'_cha, X'_trans)) + X;  X_out = MSB-FFN(LN(X_mid)) + X_mid.
    `gca=False` (Table 4 "w/o GCA") passes X_cha through unchanged (assumption: the paper
    does not say what replaces GCA)."""

    def __init__(self, dim: int, head_dim: int = 32, window: int = 4, shift: bool = False, gca: bool = True):
        super().__init__()
        if dim % 2:
            raise ValueError("HPHAM needs an even channel count")
        half = dim // 2
        self.norm1 = LayerNorm2d(dim)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.gca = GatedChannelAttention(half) if gca else nn.Identity()
        self.msa = WindowMSA(half, head_dim, window, shift)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = MSBFFN(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_cha, x_trans = self.proj_in(self.norm1(x)).chunk(2, dim=1)
        mid = self.proj_out(torch.cat((self.gca(x_cha), self.msa(x_trans)), 1)) + x
        return self.ffn(self.norm2(mid)) + mid


class HPHAM(nn.Sequential):
    """Hyper-Prior Hybrid Attention Model: a W-MSA stage then an SW-MSA stage (Sec. 2.5)."""

    def __init__(self, dim: int, head_dim: int = 32, window: int = 4, gca: bool = True):
        super().__init__(HPHAMStage(dim, head_dim, window, False, gca), HPHAMStage(dim, head_dim, window, True, gca))


class WAM(nn.Module):
    """Window attention module of Zou et al. CVPR 2022 [17] (LTCHM Table 5 "WAM"):
    x + W-MSA(x), 8 heads, window 8, no norm/MLP (their `WinBasedAttention`)."""

    def __init__(self, channels: int, heads: int = 8, window: int = 8):
        super().__init__()
        self.attn = WindowMSA(channels, window=window, heads=heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(x)


class SWAtten(AttentionBlock):
    """Swin-transformer attention of Liu et al. CVPR 2023 [33] (LTCHM Table 5 "SWAtten"):
    1x1 in-projection to `inter` channels, Cheng's attention layout whose mask branch
    reads a W+SW Swin block's output, 1x1 out-projection. inter = 128, head dim 32,
    window 8 follow the public TCM code (the LTCHM paper does not state them)."""

    def __init__(self, channels: int, inter: int = 128, head_dim: int = 32, window: int = 8):
        super().__init__(inter)
        self.non_local = nn.Sequential(SwinMLPBlock(inter, head_dim, window, False),
                                       SwinMLPBlock(inter, head_dim, window, True))
        self.in_conv = nn.Conv2d(channels, inter, 1)
        self.out_conv = nn.Conv2d(inter, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        out = self.conv_a(x) * torch.sigmoid(self.conv_b(self.non_local(x))) + x
        return self.out_conv(out)


class ResidualBlockUpsampleT(nn.Module):
    """Decoder upsampling block of LTCHM Table 1: [ConvT K3 C S2 - LeakyReLU - Conv K3 C S1 -
    IGDN] + a ConvT K1 S2 shortcut (the released code uses transposed convs; compressai's
    Cheng2020 uses sub-pixel convs here, which has 4x the weights)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
        self.act = nn.LeakyReLU(inplace=True)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1)
        self.igdn = GDN(cout, inverse=True)
        self.skip = nn.ConvTranspose2d(cin, cout, 1, stride=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.igdn(self.conv(self.act(self.up(x)))) + self.skip(x)


def attention_block(kind: str, channels: int, **kw) -> nn.Module:
    """The main-codec attention used at Cheng's four attention positions (Table 5 sweep)."""
    kinds = {
        "none": lambda: nn.Identity(),
        "sam": lambda: AttentionBlock(channels),
        "dam": lambda: DAM(channels, kw.get("groups", 2), kw.get("reduction", 2)),
        "wam": lambda: WAM(channels),
        "swatten": lambda: SWAtten(channels),
    }
    if kind not in kinds:
        raise ValueError(f"unknown attention {kind!r}; choose one of {', '.join(kinds)}")
    return kinds[kind]()
