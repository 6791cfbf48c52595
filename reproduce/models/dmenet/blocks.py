"""DMENet blocks (Shi et al., Knowledge-Based Systems 2025): C/R blocks (Table 1), SDPM,
LSM (Eq. 10) and MDEI (Eqs. 2-5).

The text describing SDPM (SS, SEB, PEB) and most of LSM is lost; what survives is the
introduction's description (Sec. 1, 2.1) and Eq. 10. Every structural choice below that
the surviving text does not state is marked ASSUMPTION; docs/papers.md lists them all.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import GDN

from rsicbench.reproduce.models.ltchm.blocks import IDConv


def c_block(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    """Table 1 C block: Conv2D kxk stride 2 -> GDN."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=2, padding=k // 2), GDN(cout))


def r_block(cin: int, cout: int) -> nn.Sequential:
    """Table 1 R block: (transposed) Conv2D 3x3 x2 upsampling -> IGDN (R block 1 too, as printed)."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1), GDN(cout, inverse=True))


class SDPM(nn.Module):
    """Slice dynamic pyramid module (Sec. 1: SS + SEB + PEB).

    ASSUMPTIONS (section lost): SS slices the channels into `slices` equal groups (computation
    and memory per slice shrink); SEB ("dynamic extraction of irregular features") is an
    input-dependent depthwise 3x3 conv (LTCHM's IDConv) per slice with dilation growing
    1, 2, ... per slice so the slices see differently shaped neighbourhoods; PEB pools the
    re-joined features to 1/2 and 1/4 (plus full size), applies a shared 1x1 conv, upsamples
    and sums (multi-scale); a 1x1 conv fuses and the module is residual."""

    def __init__(self, channels: int, slices: int = 4, pyramid=(1, 2, 4)):
        super().__init__()
        if channels % slices:
            raise ValueError(f"SDPM: {channels} channels not divisible into {slices} slices")
        part = channels // slices
        self.slices = slices
        self.seb = nn.ModuleList(IDConv(part, 3, 2, 2) for _ in range(slices))
        self.dilations = [1 + i for i in range(slices)]
        self.pyramid = pyramid
        self.peb = nn.Conv2d(channels, channels, 1)
        self.fuse = nn.Conv2d(channels, channels, 1)

    def _seb(self, conv: IDConv, x: torch.Tensor, d: int) -> torch.Tensor:
        if d == 1:
            return conv(x)
        # dilated application of the same dynamic kernel: space-to-batch by the dilation
        b, c, h, w = x.shape
        ph, pw = (-h) % d, (-w) % d
        xp = F.pad(x, (0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        xs = xp.view(b, c, hp // d, d, wp // d, d).permute(0, 3, 5, 1, 2, 4).reshape(b * d * d, c, hp // d, wp // d)
        ys = conv(xs).view(b, d, d, c, hp // d, wp // d).permute(0, 3, 4, 1, 5, 2).reshape(b, c, hp, wp)
        return ys[:, :, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.chunk(self.slices, dim=1)
        s = torch.cat([self._seb(conv, p, d) for conv, p, d in zip(self.seb, parts, self.dilations)], 1)
        h, w = s.shape[-2:]
        pyr = 0
        for r in self.pyramid:
            t = s if r == 1 else F.avg_pool2d(s, r, r, ceil_mode=True)
            t = self.peb(t)
            pyr = pyr + (t if r == 1 else F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False))
        return x + self.fuse(F.leaky_relu(pyr))


class LSM(nn.Module):
    """Latent representation space enhancement (Sec. 1, 2.1, Eq. 10) on the hyper decoder output.

    Survives: spatial enhancement and channel enhancement are separate; spatial uses large
    strip kernels; Output_LSM = Conv1x1(Output_LKE) (Eq. 10). ASSUMPTIONS: spatial branch =
    depthwise 1xk then kx1 strips (k = 11) gating the input with a sigmoid; channel branch =
    squeeze-excitation (reduction 16); Output_LKE = x + spatial + channel; the final 1x1
    maps N -> 2N (scales and means of the conditional Gaussian)."""

    def __init__(self, channels: int, out_channels: int, k: int = 11, reduction: int = 16):
        super().__init__()
        c = channels
        self.strip = nn.Sequential(nn.Conv2d(c, c, (1, k), padding=(0, k // 2), groups=c),
                                   nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0), groups=c))
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, max(1, c // reduction), 1), nn.ReLU(inplace=True),
                                nn.Conv2d(max(1, c // reduction), c, 1), nn.Sigmoid())
        self.out = nn.Conv2d(c, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lke = x + x * torch.sigmoid(self.strip(x)) + x * self.se(x)
        return self.out(lke)


def _gauss5() -> torch.Tensor:
    g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    return torch.outer(g, g)  # M * outer / N with M = 1, N = 256 (Fig. 3)


class MDEI(nn.Module):
    """Multi-dimensional feature extraction guided by edge information (Sec. 2.2, Eqs. 2-5):
    HA (horizontal), VA (vertical), EEM (edge) branches fused as e*X6 + f*X3 + g*X7.

    HA: average and std pooling over channels and rows -> a 1xW profile, a*avg + b*std,
    1x3 bar conv, sigmoid, expand to CxHxW (Eq. 2). VA: the same over columns (Eq. 3).
    EEM: X - G2(up0(down2(G1(X)))) with 5x5 3->3 Gaussian convs initialised to
    M*[1 4 6 4 1]^T[1 4 6 4 1]/N (M = 1, N = 256), G2 = 4 x G1, interval down-sampling and
    zero-insertion up-sampling (Eq. 4, Fig. 3). a=b=c=d=0.5, e=0.5, f=0.1, g=0.5.
    ASSUMPTION: the MDEI weights are frozen (the paper lets M, N adapt; a trainable feature
    extractor inside the loss can shrink its own output and void the loss), and the Gaussian
    convs start channel-diagonal."""

    def __init__(self, channels: int = 3, a=0.5, b=0.5, c=0.5, d=0.5, e=0.5, f=0.1, g=0.5, k: int = 3):
        super().__init__()
        self.w = dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g)
        self.bar_h = nn.Conv1d(1, 1, k, padding=k // 2)
        self.bar_v = nn.Conv1d(1, 1, k, padding=k // 2)
        g1 = torch.zeros(channels, channels, 5, 5)
        for i in range(channels):
            g1[i, i] = _gauss5() / 256.0
        self.g1 = nn.Conv2d(channels, channels, 5, padding=2, bias=False)
        self.g2 = nn.Conv2d(channels, channels, 5, padding=2, bias=False)
        with torch.no_grad():
            self.g1.weight.copy_(g1)
            self.g2.weight.copy_(4 * g1)
            for conv in (self.bar_h, self.bar_v):
                conv.weight.fill_(1.0 / k)
                assert conv.bias is not None  # built with a bias
                conv.bias.zero_()
        for p in self.parameters():
            p.requires_grad_(False)

    def _profile(self, x: torch.Tensor, dims, wa: float, wb: float, conv: nn.Conv1d) -> torch.Tensor:
        v = wa * x.mean(dims) + wb * x.std(dims)  # B, L
        return torch.sigmoid(conv(v.unsqueeze(1)))  # B, 1, L

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, h, w = x.shape
        x6 = self._profile(x, (1, 2), self.w["a"], self.w["b"], self.bar_h).view(b, 1, 1, w).expand(b, ch, h, w)
        x7 = self._profile(x, (1, 3), self.w["c"], self.w["d"], self.bar_v).view(b, 1, h, 1).expand(b, ch, h, w)
        low = self.g1(x)[:, :, ::2, ::2]
        up = torch.zeros_like(x)
        up[:, :, ::2, ::2] = low
        x3 = x - self.g2(up)
        return self.w["e"] * x6 + self.w["f"] * x3 + self.w["g"] * x7
