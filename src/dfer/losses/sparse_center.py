"""Sparse center loss (DACL, Farzaneh & Qi, WACV 2021).

    L_sc = sum_i sum_j w_ij (e_ij - c_{y_i j})^2 / (2B)

Gradients (what autograd sees):
    dL/de = w (e - c_y) / B
    dL/dw = (e - c_y)^2 / (2B)
    dL/dc_k = -sum_{i: y_i = k} w_i (e_i - c_k) / (1 + n_k)     (DACL's center rule)

The center gradient ignores the incoming gradient on purpose, so the centers move at
their own SGD rate alpha whatever the loss weight lambda is (`center_optimizer`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd import Function


class _SparseCenterLossFn(Function):
    @staticmethod
    def forward(ctx, embedding, weights, labels, centers):  # noqa: D401
        diff = embedding - centers.index_select(0, labels)  # (B, D)
        ctx.save_for_backward(diff, weights, labels)
        ctx.num_classes = centers.shape[0]
        batch = embedding.shape[0]
        return (weights * diff.pow(2)).sum() / (2.0 * batch)

    @staticmethod
    def backward(ctx, grad_out):
        diff, weights, labels = ctx.saved_tensors
        batch = diff.shape[0]
        grad_e = grad_out * weights * diff / batch
        grad_w = grad_out * diff.pow(2) / (2.0 * batch)
        counts = torch.bincount(labels, minlength=ctx.num_classes).to(diff.dtype)  # (K,)
        grad_c = torch.zeros(ctx.num_classes, diff.shape[1], dtype=diff.dtype, device=diff.device)
        grad_c.index_add_(0, labels, -(weights * diff))
        grad_c = grad_c / (1.0 + counts).unsqueeze(1)  # (K, D); not scaled by grad_out (lambda)
        return grad_e, grad_w, None, grad_c


class SparseCenterLoss(nn.Module):
    """`forward(embedding (B,D), weights (B,D), labels (B,)) -> scalar`.

    `centers` (K, D) is a parameter: give it to `center_optimizer()` (plain SGD, lr alpha),
    not to the network's optimizer.
    """

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        # As DACL's reference code: Kaiming normal over the (feat_dim, num_classes) matrix, transposed,
        # so fan-in is K and the std is sqrt(2 / K) (about 0.53 for 7 classes).
        init = torch.empty(feat_dim, num_classes)
        nn.init.kaiming_normal_(init)
        self.centers = nn.Parameter(init.t().contiguous())  # (K, D)

    def forward(self, embedding: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if embedding.shape != weights.shape:
            raise ValueError(f"embedding {tuple(embedding.shape)} and weights {tuple(weights.shape)} differ")
        # Under autocast the head may emit bf16; the loss is computed in the centers' dtype.
        return _SparseCenterLossFn.apply(
            embedding.to(self.centers.dtype), weights.to(self.centers.dtype), labels.long(), self.centers
        )

    def center_optimizer(self, lr: float = 0.5) -> torch.optim.SGD:
        return torch.optim.SGD([self.centers], lr=lr)
