"""MGSS-Net (Shi et al., "Multihead Global Attention and Spatial Spectral Information Fusion
for Remote Sensing Image Compression", IEEE JSTARS 2024) and its generalization study.

Minnen-style joint autoregressive + hyperprior model (compressai's
JointAutoregressiveHierarchicalPriors supplies the context model, entropy parameters,
Gaussian conditional with means and the autoregressive compress/decompress); the
transforms are replaced by MGSS-Net's (Sec. II-A):
  * each of the 4 downsamplings (5x5 conv s2) is followed by LeakyReLU, a 3x3 s1 conv and
    GDN (with an identity skip around the three: `stage_skip`, blocks.StageTail) and a buffer
    block; the decoder mirrors it with 5x5 transposed convs and IGDN;
  * module placement per the ablation (Sec. III-F): `modules` = "baseline" (none),
    "ssif" (SSIF-AM after down 1-3 / up 1-3), "mhg" (MHG-AM after down 3 / up 1),
    "full" (SSIF-AM after down 1, 2 and up 2, 3; LGCM after down 3 and up 1);
  * hyper codec with LeakyReLU (Eqs. 3-4: five convs, four LeakyReLUs).
Assumptions: a module sits after its stage's buffer block; the last upsampling (to RGB)
has no LeakyReLU/conv/IGDN/buffer tail; hyper layers are conv3x3 N s1 - conv3x3 N s1 -
conv5x5 N s2 - conv3x3 N s1 - conv5x5 N s2 (encoder) and the mirror with transposed
convs widening to 3M/2 and 2M (decoder); N = 192, M = 320 as Minnen 2018 (not stated).

`mgss_factorized` is Balle 2017 factorized-ReLU (compressai FactorizedPriorReLU) with one
MGSS module added (Sec. IV-A generalization): SSIF-AM at the first three down/up
samplings, MHG-AM or LGCM after the third downsampling and the first upsampling
(placement not stated; this mirrors the ablation's placement).
"""

from __future__ import annotations

import torch.nn as nn
from compressai.models.google import FactorizedPriorReLU, JointAutoregressiveHierarchicalPriors
from compressai.models.utils import conv, deconv

from rsicbench.reproduce.models.mgss.blocks import BufferBlock, StageTail, mgss_module
from rsicbench.reproduce.models.registry import register_model

# stage index (0-based: encoder downsampling i, decoder upsampling i) -> module kind
PLACEMENT = {
    "baseline": {"enc": {}, "dec": {}},
    "ssif": {"enc": {0: "ssif", 1: "ssif", 2: "ssif"}, "dec": {0: "ssif", 1: "ssif", 2: "ssif"}},
    "mhg": {"enc": {2: "mhg"}, "dec": {0: "mhg"}},
    "full": {"enc": {0: "ssif", 1: "ssif", 2: "lgcm"}, "dec": {0: "lgcm", 1: "ssif", 2: "ssif"}},
    "lgcm": {"enc": {2: "lgcm"}, "dec": {0: "lgcm"}},
}


def _placement(modules: str) -> dict:
    if modules not in PLACEMENT:
        raise ValueError(f"unknown MGSS placement {modules!r}; choose one of {', '.join(PLACEMENT)}")
    return PLACEMENT[modules]


class MGSSNet(JointAutoregressiveHierarchicalPriors):
    downsampling = 64

    def __init__(self, N: int = 192, M: int = 320, modules: str = "full", beta: float = 0.1,
                 strip_kernels=(5, 7, 9), heads: int = 4, stage_skip: bool = True):
        super().__init__(N=N, M=M)
        place = _placement(modules)
        mod = lambda kind, c: mgss_module(kind, c, beta, tuple(strip_kernels), heads)  # noqa: E731
        lrelu = lambda: nn.LeakyReLU(inplace=True)  # noqa: E731
        enc = []
        for i, (cin, cout) in enumerate(((3, N), (N, N), (N, N), (N, M))):
            enc += [conv(cin, cout), StageTail(cout, skip=stage_skip), BufferBlock(cout)]
            if i in place["enc"]:
                enc.append(mod(place["enc"][i], cout))
        self.g_a = nn.Sequential(*enc)
        dec = []
        for i, (cin, cout) in enumerate(((M, N), (N, N), (N, N))):
            dec += [deconv(cin, cout), StageTail(cout, inverse=True, skip=stage_skip), BufferBlock(cout)]
            if i in place["dec"]:
                dec.append(mod(place["dec"][i], cout))
        dec.append(deconv(N, 3))
        self.g_s = nn.Sequential(*dec)
        self.h_a = nn.Sequential(
            conv(M, N, 3, 1), lrelu(), conv(N, N, 3, 1), lrelu(), conv(N, N, 5, 2), lrelu(),
            conv(N, N, 3, 1), lrelu(), conv(N, N, 5, 2),
        )
        self.h_s = nn.Sequential(
            deconv(N, N, 3, 1), lrelu(), deconv(N, M, 5, 2), lrelu(), deconv(M, M * 3 // 2, 3, 1), lrelu(),
            deconv(M * 3 // 2, M * 3 // 2, 5, 2), lrelu(), conv(M * 3 // 2, M * 2, 3, 1),
        )


class MGSSFactorized(FactorizedPriorReLU):
    """Balle factorized-ReLU with one MGSS module inserted (Sec. IV-A)."""

    downsampling = 16

    def __init__(self, N: int = 128, M: int = 192, module: str = "none", beta: float = 0.1,
                 strip_kernels=(5, 7, 9), heads: int = 4):
        super().__init__(N=N, M=M)
        place = _placement({"none": "baseline", "ssif": "ssif", "mhg": "mhg", "lgcm": "lgcm"}.get(module, module))
        mod = lambda kind, c: mgss_module(kind, c, beta, tuple(strip_kernels), heads)  # noqa: E731
        enc = []
        for i, (cin, cout) in enumerate(((3, N), (N, N), (N, N), (N, M))):
            enc.append(conv(cin, cout))
            if i < 3:
                enc.append(nn.ReLU(inplace=True))
                if i in place["enc"]:
                    enc.append(mod(place["enc"][i], cout))
        self.g_a = nn.Sequential(*enc)
        dec = []
        for i, (cin, cout) in enumerate(((M, N), (N, N), (N, N), (N, 3))):
            dec.append(deconv(cin, cout))
            if i < 3:
                dec.append(nn.ReLU(inplace=True))
                if i in place["dec"]:
                    dec.append(mod(place["dec"][i], cout))
        self.g_s = nn.Sequential(*dec)


@register_model("mgss")
def build_mgss(N: int = 192, M: int = 320, modules: str = "full", **kw) -> MGSSNet:
    """MGSS-Net and its ablations (configs/papers.yaml: mgss variants)."""
    return MGSSNet(N=N, M=M, modules=modules, **kw)


@register_model("mgss_factorized")
def build_mgss_factorized(N: int = 128, M: int = 192, module: str = "none", **kw) -> MGSSFactorized:
    """Generalization study: Balle factorized-ReLU + SSIF-AM / MHG-AM / LGCM."""
    return MGSSFactorized(N=N, M=M, module=module, **kw)
