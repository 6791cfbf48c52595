"""DMENet (Shi et al., "Dynamic feature enhancement network guided by multi-dimensional
collaborative edge information for remote sensing image compression", KBS 2025).

Mean-scale Gaussian hyperprior (compressai MeanScaleHyperprior: forward, compress and
decompress with GaussianConditional + EntropyBottleneck) with:
  * g_a = C block 1, C block 2, [SDPM], C block 3, C block 4 (Table 1, Sec. 2.1 work flow);
  * g_s = R block 4, R block 3, [SDPM], R block 2, R block 1;
  * hyper encoder / decoder per Table 2 (3x3 convs, ReLU), N = 256;
  * [LSM] on the hyper-decoder output giving scales and means (Eq. 10); without LSM a plain
    1x1 conv N -> 2N does that (ASSUMPTION: Table 2's decoder ends at N channels);
  * [MDEI]: `extra_loss` returns psi * MSE(MDEI(x), MDEI(x_hat)), psi = 0.0185, which the
    training loop adds inside lambda's bracket: R + lambda (D + psi Loss_MDSE) (Eq. 15).
Switches sdpm / lsm / mdei give the 8 ablation variants (configs/papers.yaml).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.models.google import MeanScaleHyperprior

from rsicbench.reproduce.models.dmenet.blocks import LSM, MDEI, SDPM, c_block, r_block
from rsicbench.reproduce.models.registry import register_model


class DMENet(MeanScaleHyperprior):
    downsampling = 64

    def __init__(self, N: int = 256, sdpm: bool = True, lsm: bool = True, mdei: bool = True, psi: float = 0.0185,
                 sdpm_slices: int = 4, lsm_kernel: int = 11):
        super().__init__(N=N, M=N)
        q, h, t = N // 4, N // 2, 3 * N // 4
        self.g_a = nn.Sequential(c_block(3, q, 7), c_block(q, h), SDPM(h, sdpm_slices) if sdpm else nn.Identity(),
                                 c_block(h, t), c_block(t, N))
        self.g_s = nn.Sequential(r_block(N, t), r_block(t, h), SDPM(h, sdpm_slices) if sdpm else nn.Identity(),
                                 r_block(h, q), r_block(q, 3))
        self.h_a = nn.Sequential(nn.Conv2d(N, N, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(N, N, 3, 2, 1),
                                 nn.ReLU(inplace=True), nn.Conv2d(N, N, 3, 2, 1))
        up = lambda: nn.ConvTranspose2d(N, N, 3, 2, 1, output_padding=1)  # noqa: E731
        self.h_s = nn.Sequential(up(), nn.ReLU(inplace=True), up(), nn.ReLU(inplace=True), nn.Conv2d(N, N, 3, 1, 1),
                                 nn.ReLU(inplace=True), LSM(N, 2 * N, lsm_kernel) if lsm else nn.Conv2d(N, 2 * N, 1))
        self.psi = psi
        self.mdei = MDEI(3) if mdei else None

    def extra_loss(self, x: torch.Tensor, out: dict) -> torch.Tensor | None:
        """psi * Loss_MDSE (Eq. 15); None for variants without MDEI."""
        if self.mdei is None:
            return None
        return self.psi * F.mse_loss(self.mdei(out["x_hat"]), self.mdei(x))


@register_model("dmenet")
def build_dmenet(N: int = 256, sdpm: bool = True, lsm: bool = True, mdei: bool = True, **kw) -> DMENet:
    """DMENet and its 8 ablation variants (configs/papers.yaml: dmenet variants)."""
    return DMENet(N=N, sdpm=sdpm, lsm=lsm, mdei=mdei, **kw)
