"""CFHPM and MROI-CFHPM (Zhang et al., Remote Sens. 15:522, 2023; CFHPM: Hu, Yang & Liu, AAAI 2020).

Structure (paper Sec. 3.1-3.3, Tables 1-2, Figs. 2-4, 6):
  x --(+ ROI attention, MROI only)--> g_a --y--> h_a1 --z1--> h_a2 --z2
  z2: factorized entropy model (EntropyBottleneck; the paper's "zero-mean Gaussian with one
      variance per channel" for the innermost layer is a per-channel density too).
  h_s2(z2^) -> estimation subnet (5x5 windows) -> (mu, sigma) of z1   [GaussianConditional]
  h_s1(z1^) -> estimation subnet (5x5 windows) -> (mu, sigma) of y    [GaussianConditional]
  information-aggregation decoder: g_s(y^) and the h_s1 features, both brought to H/2,
      concatenated, residual block, up-sampled to H (Fig. 2).

Assumptions where the text is silent (figures are lost in the extraction):
  * g_a / g_s are the Balle 2018 transforms (4 stride-2 5x5 convs with GDN), N/M channels.
  * Tables 1-2: `c` = channels of the layer's input, c' = `hyper_channels`. Table 2's
    "Space-to-Depth" row is read as depth-to-space (its output grows to (h, w)).
  * Estimation subnet (Fig. 3): per-location 1x1 conv layers on the hyper features, then the
    "fully connected layer over the tiled 5x5 window, shared over all locations" = one 5x5 conv.
    sigma goes through softplus (floor 0.11 = the scale-table minimum).
  * ROI attention (Fig. 4 lost; Sec. 3.3 text): at each scale s in `roi_scales` (1, 2 -> "the
    input passes through the ROI module twice"): masked = x * roi; features = two 3x3 convs;
    CBAM-style spatial attention (channel mean & max -> 7x7 conv -> sigmoid) gives normalised
    weights; weights * x. The mean over scales is the module output, ADDED to x (Sec. 3.3).
    The mask is needed by the encoder only; decoding never sees it.
  * 3-stage training (Sec. 4.3) via `set_stage(k)`: 1 = single-layer hyperprior (z1 coded by
    its own EntropyBottleneck) with the plain last decoder layer; 2 = second hyper layer
    added, end-to-end; 3 = the last g_s layer replaced by the information-aggregation subnet.
    `stage_schedule(total_steps)` splits the steps 40/30/30 % (the paper gives no split).
  * Entropy coding uses CompressAI's range coder (the paper used CABAC).
  * Inputs of any size: forward/compress pad (replicate) to a multiple of 64; forward crops
    the output back; decompress returns the padded size (the codec adapter crops).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.base import CompressionModel

from rsicbench.reproduce.models.registry import register_model

SCALE_MIN = 0.11


def _conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


class HyperAnalysis(nn.Module):
    """Table 1: conv3x3 (c->2c, linear), space-to-depth (->8c, /2), 1x1 4c ReLU, 1x1 4c ReLU, 1x1 c'."""

    def __init__(self, c: int, c_out: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.s2d = nn.PixelUnshuffle(2)
        self.body = nn.Sequential(
            nn.Conv2d(8 * c, 4 * c, 1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * c, 4 * c, 1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * c, c_out, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.s2d(self.expand(x)))


class HyperSynthesis(nn.Module):
    """Table 2: 1x1 (c'->4c, linear), depth-to-space (->c, x2), 1x1 4c ReLU, 1x1 4c ReLU, 3x3 -> c."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(c_in, 4 * c, 1)
        self.d2s = nn.PixelShuffle(2)
        self.body = nn.Sequential(
            nn.Conv2d(c, 4 * c, 1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * c, 4 * c, 1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * c, c, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.d2s(self.expand(z)))


class EstimationSubnet(nn.Module):
    """Fig. 3: per-location conv subnet, then an FC over the 5x5 window (= 5x5 conv) -> (mu, sigma)."""

    def __init__(self, c_in: int, c_out: int, window: int = 5) -> None:
        super().__init__()
        self.local = nn.Sequential(
            nn.Conv2d(c_in, 2 * c_in, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(2 * c_in, 2 * c_in, 1), nn.LeakyReLU(inplace=True),
        )
        self.window_fc = nn.Conv2d(2 * c_in, 2 * c_out, window, padding=window // 2)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, s = self.window_fc(self.local(h)).chunk(2, dim=1)
        return mu, F.softplus(s) + SCALE_MIN


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class InformationAggregation(nn.Module):
    """Fig. 2: g_s features and hyper features, both at H/2, concatenated, ResBlock, up to H."""

    def __init__(self, n: int, c_hyper: int) -> None:
        super().__init__()
        # hyper features live at H/16; three x2 deconvs bring them to H/2
        self.hyper_up = nn.Sequential(
            _deconv(c_hyper, n), nn.LeakyReLU(inplace=True),
            _deconv(n, n), nn.LeakyReLU(inplace=True),
            _deconv(n, n),
        )
        self.fuse = nn.Conv2d(2 * n, n, 1)
        self.res = ResBlock(n)
        self.out = _deconv(n, 3)

    def forward(self, feat_half: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        h = self.hyper_up(hyper)
        return self.out(self.res(self.fuse(torch.cat([feat_half, h], dim=1))))


class RoiSpatialAttention(nn.Module):
    """Multiscale ROI spatial attention (Sec. 3.2-3.3, Fig. 4); returns the term ADDED to x."""

    def __init__(self, width: int = 16, scales: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.feats = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1))
            for _ in self.scales
        )
        self.spatial = nn.ModuleList(nn.Conv2d(2, 1, 7, padding=3) for _ in self.scales)

    def forward(self, x: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        masked = x * roi
        out = torch.zeros_like(x)
        for s, feat, spatial in zip(self.scales, self.feats, self.spatial):
            m = F.avg_pool2d(masked, s) if s > 1 else masked
            f = feat(m)
            w = torch.sigmoid(spatial(torch.cat([f.mean(1, keepdim=True), f.amax(1, keepdim=True)], dim=1)))
            if s > 1:
                w = F.interpolate(w, size=x.shape[-2:], mode="bilinear", align_corners=False)
            out = out + w * x
        return out / len(self.scales)


class CFHPM(CompressionModel):
    """Coarse-to-fine two-layer hyperprior; `roi_attention=True` gives MROI-CFHPM."""

    downsampling = 64

    def __init__(self, N: int = 128, M: int = 192, hyper_channels: int = 128, roi_attention: bool = False,
                 roi_width: int = 16, roi_scales: tuple[int, ...] = (1, 2), stage: int = 3) -> None:
        super().__init__()
        self.N, self.M, self.C = N, M, hyper_channels
        self.needs_roi = bool(roi_attention)
        self.roi_attention = RoiSpatialAttention(roi_width, roi_scales) if roi_attention else None
        self.g_a = nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M))
        self.g_s_body = nn.Sequential(
            _deconv(M, N), GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True)
        )
        self.g_s_last = _deconv(N, 3)  # stages 1-2
        self.h_a1 = HyperAnalysis(M, hyper_channels)
        self.h_a2 = HyperAnalysis(hyper_channels, hyper_channels)
        self.h_s1 = HyperSynthesis(hyper_channels, M)
        self.h_s2 = HyperSynthesis(hyper_channels, hyper_channels)
        self.est_y = EstimationSubnet(M, M)
        self.est_z1 = EstimationSubnet(hyper_channels, hyper_channels)
        self.aggregate = InformationAggregation(N, M)  # stage 3
        self.entropy_bottleneck = EntropyBottleneck(hyper_channels)  # z2 (stages 2-3)
        # z1 in stage 1 only; NOT named entropy_bottleneck_*: CompressionModel.load_state_dict
        # rewrites every key starting with 'entropy_bottleneck' and breaks on such a name
        self.z1_entropy_bottleneck = EntropyBottleneck(hyper_channels)
        self.gaussian_z1 = GaussianConditional(None)
        self.gaussian_y = GaussianConditional(None)
        self.set_stage(stage)

    # ---------------------------------------------------------------- training schedule
    def set_stage(self, stage: int) -> None:
        """Select the training stage of Sec. 4.3 (1, 2 or 3; 3 = the full model)."""
        if stage not in (1, 2, 3):
            raise ValueError(f"CFHPM stage must be 1, 2 or 3, got {stage}")
        self.stage = int(stage)

    @staticmethod
    def stage_schedule(total_steps: int, fractions: tuple[float, float, float] = (0.4, 0.3, 0.3)) -> list[int]:
        """First step of stages 1, 2, 3 for a run of `total_steps` (split is an assumption)."""
        b1 = int(round(total_steps * fractions[0]))
        b2 = b1 + int(round(total_steps * fractions[1]))
        return [0, b1, b2]

    def stage_for_step(self, step: int, total_steps: int) -> int:
        starts = self.stage_schedule(total_steps)
        return 3 if step >= starts[2] else 2 if step >= starts[1] else 1

    # ---------------------------------------------------------------- helpers
    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        p = self.downsampling
        ph, pw = (-h) % p, (-w) % p
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x, (h, w)

    def _check_roi(self, x: torch.Tensor, roi: torch.Tensor | None) -> torch.Tensor | None:
        """The ROI as Bx1xHxW float, or None for CFHPM (which ignores any ROI given)."""
        if self.roi_attention is None:
            return None
        if roi is None:
            raise ValueError("MROI-CFHPM needs an ROI mask (Bx1xHxW, 1 = non-cloud)")
        if roi.dim() == 3:
            roi = roi.unsqueeze(1)
        if roi.dim() != 4 or roi.shape[0] != x.shape[0] or roi.shape[-2:] != x.shape[-2:] or roi.shape[1] != 1:
            raise ValueError(f"ROI mask shape {tuple(roi.shape)} does not match image {tuple(x.shape)}")
        return roi.to(x.dtype)

    def _prepare(self, x: torch.Tensor, roi: torch.Tensor | None) -> torch.Tensor:
        """Sec. 3.3: the ROI attention output is ADDED to the input image."""
        roi = self._check_roi(x, roi)
        if roi is None:
            return x
        return x + self.roi_attention(x, roi)

    def _decode(self, y_hat: torch.Tensor, hyper_y: torch.Tensor) -> torch.Tensor:
        feat = self.g_s_body(y_hat)
        if self.stage == 3:
            return self.aggregate(feat, hyper_y)
        return self.g_s_last(feat)

    # ---------------------------------------------------------------- forward (training)
    def forward(self, x: torch.Tensor, roi: torch.Tensor | None = None) -> dict:
        roi = self._check_roi(x, roi)
        x_in, (h, w) = self._pad(x)
        if roi is not None:
            roi, _ = self._pad(roi)
        y = self.g_a(self._prepare(x_in, roi))
        z1 = self.h_a1(y)
        if self.stage == 1:
            z1_hat, z1_lik = self.z1_entropy_bottleneck(z1)
            likelihoods = {"y": None, "z1": z1_lik}
        else:
            z2 = self.h_a2(z1)
            z2_hat, z2_lik = self.entropy_bottleneck(z2)
            mu1, s1 = self.est_z1(self.h_s2(z2_hat))
            z1_hat, z1_lik = self.gaussian_z1(z1, s1, means=mu1)
            likelihoods = {"y": None, "z1": z1_lik, "z2": z2_lik}
        hyper_y = self.h_s1(z1_hat)
        mu, s = self.est_y(hyper_y)
        y_hat, y_lik = self.gaussian_y(y, s, means=mu)
        likelihoods["y"] = y_lik
        x_hat = self._decode(y_hat, hyper_y)[..., :h, :w]
        return {"x_hat": x_hat, "likelihoods": likelihoods}

    # ---------------------------------------------------------------- real bitstreams
    def compress(self, x: torch.Tensor, roi: torch.Tensor | None = None) -> dict:
        roi = self._check_roi(x, roi)
        x_in, _ = self._pad(x)
        if roi is not None:
            roi, _ = self._pad(roi)
        y = self.g_a(self._prepare(x_in, roi))
        z1 = self.h_a1(y)
        if self.stage == 1:
            z1_strings = self.z1_entropy_bottleneck.compress(z1)
            z1_hat = self.z1_entropy_bottleneck.decompress(z1_strings, z1.shape[-2:])
            strings = [z1_strings]
            shape = z1.shape[-2:]
        else:
            z2 = self.h_a2(z1)
            z2_strings = self.entropy_bottleneck.compress(z2)
            z2_hat = self.entropy_bottleneck.decompress(z2_strings, z2.shape[-2:])
            mu1, s1 = self.est_z1(self.h_s2(z2_hat))
            idx1 = self.gaussian_z1.build_indexes(s1)
            z1_strings = self.gaussian_z1.compress(z1, idx1, means=mu1)
            z1_hat = self.gaussian_z1.decompress(z1_strings, idx1, means=mu1)
            strings = [z2_strings, z1_strings]
            shape = z2.shape[-2:]
        mu, s = self.est_y(self.h_s1(z1_hat))
        idx = self.gaussian_y.build_indexes(s)
        strings.append(self.gaussian_y.compress(y, idx, means=mu))
        return {"strings": strings, "shape": shape}

    def decompress(self, strings: list, shape) -> dict:
        if self.stage == 1:
            z1_hat = self.z1_entropy_bottleneck.decompress(strings[0], shape)
        else:
            z2_hat = self.entropy_bottleneck.decompress(strings[0], shape)
            mu1, s1 = self.est_z1(self.h_s2(z2_hat))
            idx1 = self.gaussian_z1.build_indexes(s1)
            z1_hat = self.gaussian_z1.decompress(strings[1], idx1, means=mu1)
        hyper_y = self.h_s1(z1_hat)
        mu, s = self.est_y(hyper_y)
        idx = self.gaussian_y.build_indexes(s)
        y_hat = self.gaussian_y.decompress(strings[-1], idx, means=mu)
        return {"x_hat": self._decode(y_hat, hyper_y).clamp(0, 1)}


@register_model("cfhpm")
def build_cfhpm(N: int = 128, M: int = 192, hyper_channels: int = 128, stage: int = 3) -> CFHPM:
    """CFHPM (Hu et al. 2020) as used by Zhang et al. 2023: no ROI input."""
    return CFHPM(N=N, M=M, hyper_channels=hyper_channels, roi_attention=False, stage=stage)


@register_model("mroi-cfhpm")
def build_mroi_cfhpm(N: int = 128, M: int = 192, hyper_channels: int = 128, roi_width: int = 16,
                     roi_scales: tuple[int, ...] = (1, 2), stage: int = 3) -> CFHPM:
    """MROI-CFHPM: CFHPM + multiscale ROI spatial attention added to the input (needs_roi=True)."""
    return CFHPM(N=N, M=M, hyper_channels=hyper_channels, roi_attention=True, roi_width=roi_width,
                 roi_scales=tuple(roi_scales), stage=stage)
