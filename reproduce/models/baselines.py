"""CompressAI baselines, registered with channel widths N/M set by the profile.

| name | class | paper |
|---|---|---|
| bmshj2018-factorized | FactorizedPrior | Ballé et al. ICLR 2018 (factorized prior, GDN) |
| bmshj2018-factorized-relu | FactorizedPriorReLU | same, ReLU instead of GDN |
| bmshj2018-hyperprior | ScaleHyperprior | Ballé et al. ICLR 2018 (scale hyperprior) |
| mbt2018-mean | MeanScaleHyperprior | Minnen et al. NeurIPS 2018 (mean-scale) |
| mbt2018 | JointAutoregressiveHierarchicalPriors | Minnen et al. 2018 (+ context model) |
| cheng2020-anchor | Cheng2020Anchor | Cheng et al. CVPR 2020, single Gaussian (compressai) |
| cheng2020-attn | Cheng2020Attention | Cheng et al. CVPR 2020, + attention (compressai) |
| cheng2020-gmm | Cheng2020GMM (here) | Cheng et al. CVPR 2020 with the paper's K=3 GMM (Eq. 6) |

The Cheng models take only N (compressai sets M = N): a profile-wide `M` is dropped for them
(registry.model_arch), any other unknown setting is an error.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from compressai import models as cm

from rsicbench.reproduce.coding.entropy import GaussianMixtureConditional, JointAutoregressiveGMM
from rsicbench.reproduce.models.registry import register_model


def _two_width(cls):
    def build(N: int = 128, M: int = 192):
        return cls(N=int(N), M=int(M))
    return build


def _one_width(cls):
    def build(N: int = 128):
        return cls(N=int(N))
    return build


register_model("bmshj2018-factorized")(_two_width(cm.FactorizedPrior))
register_model("bmshj2018-factorized-relu")(_two_width(cm.FactorizedPriorReLU))
register_model("bmshj2018-hyperprior")(_two_width(cm.ScaleHyperprior))
register_model("mbt2018-mean")(_two_width(cm.MeanScaleHyperprior))
register_model("mbt2018")(_two_width(cm.JointAutoregressiveHierarchicalPriors))
register_model("cheng2020-anchor")(_one_width(cm.Cheng2020Anchor))
register_model("cheng2020-attn")(_one_width(cm.Cheng2020Attention))


class Cheng2020GMM(JointAutoregressiveGMM, cm.Cheng2020Anchor):
    """Cheng2020-anchor with the paper's K=3 discretized Gaussian mixture (Eq. 6).

    The entropy-parameter network ends in 3·K·M channels: (weights, means, scales) for each
    of K components, ordered component-major. ŷ = round(y), no mean subtraction, since a
    mixture has no single mean. Coding: `reproduce.coding.entropy.ar_compress` (our rANS,
    per-symbol 24-bit rows, one stream with z); z keeps compressai's factorized entropy bottleneck.
    Assumption: the hidden widths of the entropy-parameter 1x1 convs follow compressai's
    anchor (4M -> 10M/3 -> 8M/3) with the last layer widened to 3KM.
    """

    def __init__(self, N: int = 192, K: int = 3, **kwargs):
        super().__init__(N=N, **kwargs)
        M = self.M
        self.K = int(K)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(M * 12 // 3, M * 10 // 3, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(M * 10 // 3, M * 8 // 3, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(M * 8 // 3, 3 * self.K * M, 1),
        )
        self.gmm = GaussianMixtureConditional(K=self.K)

    @property
    def gmm_channels(self) -> int:
        return self.M

    def gmm_split(self, out: torch.Tensor):
        weights, means, scales = out.chunk(3, 1)
        return scales, means, weights


@register_model("cheng2020-gmm")
def build_cheng2020_gmm(N: int = 128, K: int = 3):
    return Cheng2020GMM(N=int(N), K=int(K))
