"""Losses: the sparse center loss and the paper's combined objective."""

from __future__ import annotations

import torch
from torch import nn

from dfer.losses.sparse_center import SparseCenterLoss


class DferLoss(nn.Module):
    """Total loss `CE + lambda * L_sc` (lambda 0.01 as DACL; 1.0 is the paper's eq. 6 literally).

    Returns (total, ce, sc) so callers can log both parts.
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int = 256,
        lam: float = 0.01,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.lam = lam
        self.ce = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)
        self.center = SparseCenterLoss(num_classes, feat_dim)

    def forward(self, logits, embedding, weights, labels):
        ce = self.ce(logits.float(), labels)
        if self.lam == 0 or embedding is None:  # lambda 0, or a baseline without the center-loss head
            return ce, ce.detach(), torch.zeros((), device=ce.device)
        sc = self.center(embedding, weights, labels)
        return ce + self.lam * sc, ce.detach(), sc.detach()


__all__ = ["DferLoss", "SparseCenterLoss"]
