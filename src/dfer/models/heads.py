"""Classifier head and the DACL-style center-loss head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """Pooled features -> dropout -> FC to K classes."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(pooled))  # (B, K)


class CenterLossHead(nn.Module):
    """Embedding for the sparse center loss plus one attention weight per embedding dimension.

    embedding: Linear(C -> D) of the pooled features.
    weights:   feature map -> adaptive-avg-pool to `grid` -> flatten -> FC1-BN-ReLU -> FC2-BN-ReLU
               -> FC3-BN-Tanh -> Linear(-> 2D) -> (B, D, 2) -> softmax -> [..., 1], each in (0, 1).
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int = 256,
        grid: Sequence[int] = (1, 2, 2),
        hidden: Sequence[int] = (512, 256, 64),
    ) -> None:
        super().__init__()
        if len(hidden) != 3:
            raise ValueError(f"center-loss head needs 3 hidden sizes (FC1-FC3), got {tuple(hidden)}")
        self.embed_dim = embed_dim
        self.embed = nn.Linear(in_channels, embed_dim)
        self.pool = nn.AdaptiveAvgPool3d(tuple(grid))
        flat = in_channels * grid[0] * grid[1] * grid[2]
        h1, h2, h3 = hidden
        self.attention = nn.Sequential(
            nn.Linear(flat, h1), nn.BatchNorm1d(h1), nn.ReLU(inplace=True),
            nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.ReLU(inplace=True),
            nn.Linear(h2, h3), nn.BatchNorm1d(h3), nn.Tanh(),
            nn.Linear(h3, 2 * embed_dim),
        )

    def forward(self, fmap: torch.Tensor, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(pooled)  # (B, D)
        ctx = self.pool(fmap).flatten(1)  # (B, C*gt*gh*gw)
        logits = self.attention(ctx).view(-1, self.embed_dim, 2)  # (B, D, 2)
        weights = torch.softmax(logits, dim=-1)[..., 1]  # (B, D), in (0, 1)
        return embedding, weights
