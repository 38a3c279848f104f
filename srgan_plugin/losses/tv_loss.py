"""Total-variation regulariser, as some SRGAN implementations add to the generator loss."""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


@LOSS_REGISTRY.register()
class TVLoss(nn.Module):
    """Total-variation loss: the mean of ``|difference|**p`` between vertical neighbours plus that between
    horizontal neighbours.

    ``loss = loss_weight * (mean(|x[..., 1:, :] - x[..., :-1, :]|**p) + mean(|x[..., :, 1:] - x[..., :, :-1]|**p))``.
    A direction with a single row (column) contributes 0. Unlike BasicSR's ``WeightedTVLoss`` (L1 with per-pixel
    weights), this is the plain, unweighted regulariser. Both plugin models take it as ``train.tv_opt``: it is applied
    to the generator's output only and logged as ``l_tv`` (``SRResNetModel``) or ``l_g_tv`` (``SRGANPluginModel``)::

        tv_opt:
          type: TVLoss
          loss_weight: 1.0
          p: 2

    Args:
        loss_weight (float): Weight of the loss. Default: 1.0.
        p (int): 2 for squared differences, 1 for absolute ones. Default: 2.
    """

    def __init__(self, loss_weight: float = 1.0, p: int = 2) -> None:
        super().__init__()
        if p not in (1, 2):
            raise ValueError(f'TVLoss supports p=1 or p=2, got p={p!r}')
        self.loss_weight = loss_weight
        self.p = p

    def _penalty(self, diff: torch.Tensor) -> torch.Tensor:
        if diff.numel() == 0:
            return diff.new_zeros(())
        return (diff.abs() if self.p == 1 else diff.square()).mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scalar TV loss of ``x`` with shape (..., h, w), e.g. (n, c, h, w)."""
        loss = self._penalty(torch.diff(x, dim=-2)) + self._penalty(torch.diff(x, dim=-1))
        return loss * self.loss_weight
