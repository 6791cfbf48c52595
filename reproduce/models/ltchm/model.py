"""LTCHM (Zhang et al., "A Low-Complexity Transformer-CNN Hybrid Model Combining Dynamic
Attention for Remote Sensing Image Compression", Radioengineering 2024).

Built on Cheng2020 (compressai's cheng2020 encoder layout: residual blocks with stride,
residual blocks; Table 1's decoder with transposed-conv upsampling blocks) with a K = 3 discretized Gaussian mixture (Eqs. 1-2) coded
by `rsicbench.reproduce.coding.entropy.GaussianMixtureConditional` with the 5x5 masked context
model (autoregressive coding through `ar_compress` / `ar_decompress`).

Switches (Table 4 ablation; Table 5 attention sweep):
  * attention: "dam" (paper) | "none" (baseline) | "sam" (Cheng) | "wam" | "swatten",
    placed at Cheng's four attention positions (2 in the encoder, 2 in the decoder);
  * hpham: HPHAM (Table 2) in the hyper encoder and decoder; gca: GCA inside HPHAM.

Assumptions (also in docs/papers.md):
  * Table 1's text extraction lists DAM in more rows (and 2C widths) than the parameter
    count allows: Table 4's +0.98M for DAM is exactly four DAMs at C = 128 (see
    docs/papers.md), so DAM sits where Cheng2020 has its attention, all widths C.
  * Hyper codec per Table 2 / the released code: enc conv3x3 C,C s1 - conv3x3 C,C s1 -
    conv3x3 C,2C s2 - HPHAM(2C) - conv3x3 2C,C s1 - conv3x3 C,C s2; dec conv3x3 C,C s1 -
    up 2C - HPHAM(2C) - conv3x3 2C,1.5C - up 1.5C - conv3x3 1.5C,2C (LeakyReLU between).
    Table 2 prints the hyper-encoder input as 2C; the main encoder outputs C, so C.
    Upsampling is a transposed conv (k3 s2) as in the released code. Without HPHAM the
    2C stages are C wide: that reproduces Table 4's baseline (7.43M) exactly.
  * Entropy parameters: 1x1 convs 4C -> 640 -> 640 -> 9C (Cheng2020 GMM, released code),
    ordered [scales | means | weight logits], each K*C channels component-major.
  * The released code's "GMM" uses Laplace components; the paper says Gaussian: Gaussian here.
  * C = 192 for lambda in {128, 256, 512}, 256 above (Fig. 1); `N` is that C.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import MaskedConv2d, ResidualBlock, ResidualBlockWithStride, conv3x3
from compressai.models import CompressionModel

from rsicbench.reproduce.coding.entropy import GaussianMixtureConditional, JointAutoregressiveGMM
from rsicbench.reproduce.models.ltchm.blocks import HPHAM, ResidualBlockUpsampleT, attention_block
from rsicbench.reproduce.models.registry import register_model


def _up(cin: int, cout: int) -> nn.Module:
    return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)


class LTCHM(JointAutoregressiveGMM, CompressionModel):
    downsampling = 64

    def __init__(self, N: int = 192, K: int = 3, attention: str = "dam", hpham: bool = True, gca: bool = True,
                 dam_groups: int = 2, dam_reduction: int = 2, head_dim: int = 32, window: int = 4,
                 ep_hidden: int = 640):
        super().__init__()
        self.N, self.K = N, K
        att = dict(groups=dam_groups, reduction=dam_reduction)
        self.g_a = nn.Sequential(
            ResidualBlockWithStride(3, N, 2), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, 2), attention_block(attention, N, **att),
            ResidualBlock(N, N), ResidualBlockWithStride(N, N, 2), ResidualBlock(N, N),
            conv3x3(N, N, 2), attention_block(attention, N, **att),
        )
        self.g_s = nn.Sequential(
            attention_block(attention, N, **att), ResidualBlock(N, N), ResidualBlockUpsampleT(N, N),
            ResidualBlock(N, N), ResidualBlockUpsampleT(N, N), attention_block(attention, N, **att),
            ResidualBlock(N, N), ResidualBlockUpsampleT(N, N), ResidualBlock(N, N), _up(N, 3),
        )
        lrelu = lambda: nn.LeakyReLU(inplace=True)  # noqa: E731
        mid = (3 * N) // 2
        # Table 2 widens the HPHAM stages to 2C; the Table 4 baseline (7.43M) is exactly this
        # hyper codec with HPHAM removed and those stages C wide (docs/papers.md).
        w = 2 * N if hpham else N
        hyper_att = (lambda: HPHAM(w, head_dim, window, gca)) if hpham else nn.Identity
        self.h_a = nn.Sequential(
            conv3x3(N, N), lrelu(), conv3x3(N, N), lrelu(), conv3x3(N, w, 2), lrelu(),
            hyper_att(), conv3x3(w, N), lrelu(), conv3x3(N, N, 2),
        )
        self.h_s = nn.Sequential(
            conv3x3(N, N), lrelu(), _up(N, w), lrelu(), hyper_att(),
            conv3x3(w, mid), lrelu(), _up(mid, mid), lrelu(), conv3x3(mid, 2 * N),
        )
        self.context_prediction = MaskedConv2d(N, 2 * N, kernel_size=5, padding=2, stride=1)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(4 * N, ep_hidden, 1), lrelu(), nn.Conv2d(ep_hidden, ep_hidden, 1), lrelu(),
            nn.Conv2d(ep_hidden, 3 * K * N, 1),
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gmm = GaussianMixtureConditional(K=K)

    @property
    def gmm_channels(self) -> int:
        return self.N

    def gmm_split(self, out: torch.Tensor):
        """Entropy-parameter output -> (scales, means, weight logits), each B x K*C x H x W."""
        return out.chunk(3, dim=1)


@register_model("ltchm")
def build_ltchm(N: int = 192, attention: str = "dam", hpham: bool = True, gca: bool = True, **kw) -> LTCHM:
    """LTCHM and its ablations (configs/papers.yaml: ltchm variants)."""
    return LTCHM(N=N, attention=attention, hpham=hpham, gca=gca, **kw)
