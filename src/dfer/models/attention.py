"""Spatio-temporal self-attention block, eqs (1)-(3) of the paper.

    s(f) = V_s softmax(Q_s K_s^T)      spatial: per time step, an (HW x HW) map
    d(f) = V_d softmax(Q_d K_d^T)      temporal: per spatial position, a (T x T) map
    p(f) = f + gamma * (s(f) + d(f))   gamma starts at 0, so the block starts as the identity
"""

from __future__ import annotations

import torch
from torch import nn


class SpatioTemporalAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.channels = channels
        self.inner = inner
        # 1x1x1 convolutions; Q/K compressed to C/reduction, V keeps C.
        self.q_s = nn.Conv3d(channels, inner, kernel_size=1)
        self.k_s = nn.Conv3d(channels, inner, kernel_size=1)
        self.v_s = nn.Conv3d(channels, channels, kernel_size=1)
        self.q_t = nn.Conv3d(channels, inner, kernel_size=1)
        self.k_t = nn.Conv3d(channels, inner, kernel_size=1)
        self.v_t = nn.Conv3d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        # With keep_maps set (explanations), the last forward's attention maps are kept here:
        # "spatial" (B, T, H, W, HW): query position (H, W) -> key position, and "temporal" (B, HW, T, T).
        self.keep_maps = False
        self.maps: dict[str, torch.Tensor] = {}

    def spatial(self, f: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = f.shape
        # (B,C',T,H,W) -> (B*T, HW, C')
        q = self.q_s(f).permute(0, 2, 3, 4, 1).reshape(b * t, h * w, self.inner)
        k = self.k_s(f).permute(0, 2, 1, 3, 4).reshape(b * t, self.inner, h * w)
        v = self.v_s(f).permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # (B*T, HW, HW)
        if self.keep_maps:
            self.maps["spatial"] = attn.detach().reshape(b, t, h, w, h * w)
        out = torch.bmm(v, attn.transpose(1, 2))  # (B*T, C, HW)
        return out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)

    def temporal(self, f: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = f.shape
        # (B,C',T,H,W) -> (B*HW, T, C')
        q = self.q_t(f).permute(0, 3, 4, 2, 1).reshape(b * h * w, t, self.inner)
        k = self.k_t(f).permute(0, 3, 4, 1, 2).reshape(b * h * w, self.inner, t)
        v = self.v_t(f).permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # (B*HW, T, T)
        if self.keep_maps:
            self.maps["temporal"] = attn.detach().reshape(b, h * w, t, t)
        out = torch.bmm(v, attn.transpose(1, 2))  # (B*HW, C, T)
        return out.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)  # (B, C, T, H, W)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f + self.gamma * (self.spatial(f) + self.temporal(f))  # (B, C, T, H, W)
