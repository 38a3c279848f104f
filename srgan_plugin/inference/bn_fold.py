"""Fold SRResNet's BatchNorm layers into the convolutions before them, for export and faster inference.

In eval mode a BatchNorm is an affine map per channel with its running statistics,
``y = gamma * (x - mean) / sqrt(var + eps) + beta``, so ``bn(conv(x))`` is one convolution with rescaled weights
and a shifted bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``). SRResNet has three such pairs: ``conv1``/``bn1``
and ``conv2``/``bn2`` in each residual block and ``conv_body``/``bn_body``; each BatchNorm becomes ``nn.Identity``.
"""
from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ['FOLD_PAIRS', 'fold_batchnorm', 'count_batchnorm']

FOLD_PAIRS = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv_body', 'bn_body'))


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in eval mode with every (conv, BatchNorm) pair of :data:`FOLD_PAIRS` fused.

    Args:
        net (nn.Module): An SRResNet (any module whose sub-modules name their pairs as in :data:`FOLD_PAIRS`).

    Returns:
        nn.Module: The folded copy; ``net`` itself is unchanged. Its outputs equal ``net.eval()``'s up to float
        rounding.
    """
    folded = copy.deepcopy(net).eval()
    for module in folded.modules():
        for conv_name, bn_name in FOLD_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return folded


def count_batchnorm(net: nn.Module) -> int:
    """Number of BatchNorm layers left in ``net`` (0 after :func:`fold_batchnorm` on an SRResNet)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
