"""EMTCAL-style scene classifier (Tang et al., "EMTCAL: Efficient Multiscale Transformer and
Cross-Level Attention Learning for Remote Sensing Scene Classification", IEEE TGRS 60, 2022).

Structure, following the paper and the facts read from its official code
(see ../shared/papers/README.md, section EMTCAL):
  1. a CNN backbone giving three feature levels (strides 8, 16, 32: ResNet layer2/3/4 in
     EMTCAL); here a timm `features_only` backbone, EfficientNet-Lite0 by default;
  2. one efficient multi-scale transformer block per level (`MultiScaleTransformerBlock`):
     LN -> efficient multi-scale attention -> residual, LN -> MLP(x4) -> residual,
     DropPath 0.1, 4 heads, plus an outer residual around the whole block;
  3. cross-level attention (`CrossLevelAttention`): levels 2 and 3 projected to the level-4
     width and pooled to the level-4 grid; queries from level 2, keys/values from level 3;
     the result is added to level 4;
  4. class-score fusion: logits = (fc(GAP(l4)) + fc_m(L2norm(GAP(fused)))) / 2.

Assumptions (the task or the paper is silent, or the backbone differs):
  * Channel widths follow the backbone's levels (EfficientNet-Lite0: 40, 112, 320 instead
    of ResNet-34's 128, 256, 512); the cross-level projection width is the level-4 width.
  * The transformer blocks are side branches on the backbone's feature maps (timm
    `features_only` runs the backbone as one piece); their outputs do not feed the next
    backbone stage.
  * `l4` in the fusion is the level-4 map after its transformer block; `fused` = that map
    plus the cross-level attention output.
  * Key/value reductions: the C channels split into 4 equal groups, reduced by a 1x1 conv
    stride 2 and by 3x3 convs stride 2 with dilation 1, 2, 3 (padding = dilation); each is
    followed by a residual 3x3 depthwise conv (positional encoding). Needs C % 4 == 0.
  * Input size is free: every layer adapts to the feature-map sizes (tested at 96..256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsicbench.downstream.backbones import Normalization, create_feature_backbone


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class EfficientMultiScaleAttention(nn.Module):
    """EMTCAL's efficient multi-scale self-attention on a BxCxHxW map.

    Q comes from all HxW tokens; K and V come from a spatially reduced (stride 2) token set
    built from 4 channel groups, each reduced by a different receptive field (1x1; 3x3 with
    dilation 1, 2, 3) and given a depthwise-conv positional encoding; the groups are
    concatenated, layer-normed and projected to K, V.
    """

    def __init__(self, dim: int, heads: int = 4, groups: int = 4) -> None:
        super().__init__()
        if dim % heads or dim % groups:
            raise ValueError(f"width {dim} must be divisible by heads={heads} and groups={groups}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        g = dim // groups
        self.group_width = g
        reducers = [nn.Conv2d(g, g, kernel_size=1, stride=2)]
        reducers += [nn.Conv2d(g, g, kernel_size=3, stride=2, padding=d, dilation=d) for d in (1, 2, 3)][: groups - 1]
        self.reducers = nn.ModuleList(reducers)
        self.pos = nn.ModuleList(nn.Conv2d(g, g, 3, padding=1, groups=g) for _ in reducers)
        self.q = nn.Linear(dim, dim)
        self.kv_norm = nn.LayerNorm(dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = tokens.shape
        q = self.q(tokens).reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        fmap = tokens.transpose(1, 2).reshape(b, c, h, w)
        parts = []
        for chunk, reduce, pos in zip(fmap.split(self.group_width, dim=1), self.reducers, self.pos):
            r = reduce(chunk)
            parts.append(r + pos(r))
        red = torch.cat(parts, dim=1).flatten(2).transpose(1, 2)  # B x N' x C
        kv = self.kv(self.kv_norm(red)).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class MultiScaleTransformerBlock(nn.Module):
    """One EMTCAL transformer block on a feature map, with an outer residual (map in, map out)."""

    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 4.0, drop_path: float = 0.1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientMultiScaleAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        y = t + self.drop_path(self.attn(self.norm1(t), h, w))
        y = y + self.drop_path(self.mlp(self.norm2(y)))
        return x + y.transpose(1, 2).reshape(b, c, h, w)  # outer residual


class CrossLevelAttention(nn.Module):
    """Queries from level 2, keys/values from level 3, both on the level-4 grid; added to level 4."""

    def __init__(self, c2: int, c3: int, c4: int, heads: int = 4) -> None:
        super().__init__()
        if c4 % heads:
            raise ValueError(f"level-4 width {c4} must be divisible by heads={heads}")
        self.heads = heads
        self.proj2 = nn.Sequential(nn.Conv2d(c2, c4, 1, bias=False), nn.BatchNorm2d(c4))
        self.proj3 = nn.Sequential(nn.Conv2d(c3, c4, 1, bias=False), nn.BatchNorm2d(c4))
        self.q = nn.Linear(c4, c4)
        self.kv = nn.Linear(c4, 2 * c4)
        self.out = nn.Linear(c4, c4)

    def forward(self, l2: torch.Tensor, l3: torch.Tensor, l4: torch.Tensor) -> torch.Tensor:
        b, c, h, w = l4.shape
        t2 = F.adaptive_avg_pool2d(self.proj2(l2), (h, w)).flatten(2).transpose(1, 2)
        t3 = F.adaptive_avg_pool2d(self.proj3(l3), (h, w)).flatten(2).transpose(1, 2)
        d = c // self.heads
        q = self.q(t2).reshape(b, -1, self.heads, d).transpose(1, 2)
        kv = self.kv(t3).reshape(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, kv[0], kv[1]).transpose(1, 2).reshape(b, h * w, c)
        return l4 + self.out(att).transpose(1, 2).reshape(b, c, h, w)


class EMTCAL(nn.Module):
    """Backbone (3 levels) + per-level transformer + cross-level attention + score fusion.

    `forward` takes uint8-range floats (0..255) BxCxHxW and normalises them itself, so the
    caller never needs to know the backbone's preprocessing.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "efficientnet_lite0",
        pretrained: bool = True,
        heads: int = 4,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone, norm = create_feature_backbone(backbone, pretrained=pretrained)
        self.backbone_name = backbone
        c2, c3, c4 = self.backbone.feature_info.channels()  # type: ignore[union-attr]  # timm features_only
        self.register_buffer("mean", torch.tensor(norm.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm.std).view(1, 3, 1, 1), persistent=False)
        self.blocks = nn.ModuleList(MultiScaleTransformerBlock(c, heads, 4.0, drop_path) for c in (c2, c3, c4))
        self.cross = CrossLevelAttention(c2, c3, c4, heads)
        self.fc = nn.Linear(c4, num_classes)
        self.fc_m = nn.Linear(c4, num_classes)
        self.num_classes = num_classes
        self.frozen_prefix: tuple[str, ...] = ()

    def normalization(self) -> Normalization:
        return Normalization(tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist()))

    def freeze_backbone_prefix(self, prefixes: tuple[str, ...]) -> int:
        """Freeze backbone parameters whose names start with any prefix; returns their count.

        Frozen parts also stay in eval mode (BatchNorm statistics fixed), see `train`.
        """
        self.frozen_prefix = tuple(prefixes)
        n = 0
        for name, p in self.backbone.named_parameters():
            if name.startswith(self.frozen_prefix):
                p.requires_grad_(False)
                n += p.numel()
        return n

    def train(self, mode: bool = True) -> "EMTCAL":
        super().train(mode)
        if mode and self.frozen_prefix:
            for name, m in self.backbone.named_modules():
                if name and name.startswith(self.frozen_prefix):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        l2, l3, l4 = (blk(f) for blk, f in zip(self.blocks, self.backbone(x)))
        fused = self.cross(l2, l3, l4)
        g4 = l4.mean(dim=(2, 3))
        gf = F.normalize(fused.mean(dim=(2, 3)), dim=1)
        return (self.fc(g4) + self.fc_m(gf)) / 2
