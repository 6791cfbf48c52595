"""Small blocks shared by the paper models (LTCHM, MGSS-Net, DMENet).

Paper-specific blocks live in `blocks_ltchm.py`, `blocks_mgss.py` and `blocks_dmenet.py`;
this file holds the generic pieces they share: a channels-first LayerNorm, padding to a
multiple, and Swin-style (shifted) window multi-head self-attention (Liu et al., ICCV 2021,
Eqs. 1-4) as used by LTCHM's HPHAM (Sec. 2.5, Eq. 6) and by the Table 5 comparison blocks.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of a BxCxHxW tensor (the "LayerNorm" of LTCHM Eq. 6)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, int, int]:
    """Zero-pad H and W (bottom/right) up to multiples of m; returns (x, pad_h, pad_w)."""
    ph = (-x.shape[-2]) % m
    pw = (-x.shape[-1]) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, ph, pw


def _shift_mask(hp: int, wp: int, win: int, shift: int, device) -> torch.Tensor:
    """Swin's attention mask for cyclically shifted windows: (nW, win*win, win*win) of 0/-inf."""
    img = torch.zeros(1, hp, wp, 1, device=device)
    cnt = 0
    for hs in (slice(0, -win), slice(-win, -shift), slice(-shift, None)):
        for ws in (slice(0, -win), slice(-win, -shift), slice(-shift, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    windows = _partition(img, win).squeeze(-1)  # nW, win*win
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, float("-inf"))


def _partition(x: torch.Tensor, win: int) -> torch.Tensor:
    """B,H,W,C -> (B*nW), win*win, C."""
    b, h, w, c = x.shape
    x = x.view(b, h // win, win, w // win, win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, win * win, c)


def _merge(windows: torch.Tensor, win: int, b: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(b, h // win, w // win, win, win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class WindowMSA(nn.Module):
    """(Shifted) window multi-head self-attention with relative position bias (Swin Eq. 4).

    Input/output BxCxHxW. `heads = dim // head_dim` (LTCHM Table 2: head dim 32, window 4).
    Inputs whose H, W are not multiples of the window are zero-padded (Swin does the same)
    and cropped back. `shift=True` is SW-MSA (cyclic shift by win//2 plus the Swin mask).
    When the padded map is a single window, shifting is a no-op and is skipped.
    """

    def __init__(self, dim: int, head_dim: int = 32, window: int = 4, shift: bool = False,
                 heads: int | None = None):
        super().__init__()
        self.heads = heads or max(1, dim // head_dim)
        if dim % self.heads:
            raise ValueError(f"WindowMSA: dim {dim} not divisible by {self.heads} heads")
        self.window, self.shift = window, shift
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, self.heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("rel_index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        win = self.window
        x, ph, pw = pad_to_multiple(x, win)
        hp, wp = h + ph, w + pw
        t = x.permute(0, 2, 3, 1)
        shift = win // 2 if (self.shift and (hp > win or wp > win)) else 0
        if shift:
            t = torch.roll(t, (-shift, -shift), dims=(1, 2))
        win_t = _partition(t, win)  # (B*nW), N, C
        n = win * win
        qkv = self.qkv(win_t).view(-1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.rel_bias[self.rel_index.reshape(-1)].view(n, n, self.heads).permute(2, 0, 1)
        mask = bias.unsqueeze(0)  # 1, heads, N, N
        if shift:
            m = _shift_mask(hp, wp, win, shift, x.device)  # nW, N, N
            nw = m.shape[0]
            mask = (mask.unsqueeze(0) + m.view(1, nw, 1, n, n)).expand(b, -1, -1, -1, -1).reshape(-1, self.heads, n, n)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask.to(qkv.dtype))
        out = self.proj(out.transpose(1, 2).reshape(-1, n, c))
        t = _merge(out, win, b, hp, wp)
        if shift:
            t = torch.roll(t, (shift, shift), dims=(1, 2))
        return t.permute(0, 3, 1, 2)[:, :, :h, :w].contiguous()


class SwinMLPBlock(nn.Module):
    """A standard Swin transformer block: x + MSA(LN(x)); x + MLP(LN(x)) (Swin Eq. 3)."""

    def __init__(self, dim: int, head_dim: int, window: int, shift: bool, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.attn = WindowMSA(dim, head_dim, window, shift)
        self.norm2 = LayerNorm2d(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mlp_ratio * dim, 1), nn.GELU(), nn.Conv2d(mlp_ratio * dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
