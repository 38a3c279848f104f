"""WGAN-GP gradient penalty (Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017)."""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


def _eager() -> ContextManager[None]:
    """Ignore ``torch.compile`` inside the block (a no-op before torch 2.6)."""
    set_stance = getattr(torch.compiler, 'set_stance', None)
    return set_stance('force_eager') if set_stance else contextlib.nullcontext()


@LOSS_REGISTRY.register()
class GradientPenaltyLoss(nn.Module):
    """Two-sided gradient penalty ``loss_weight * mean((||grad D(x_hat)||_2 - 1) ** 2)``.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one uniform ``alpha`` per sample; the norm is taken per sample
    over all of its elements (BasicSR's ``gradient_penalty_loss`` takes it over dim 1 only, i.e. per pixel). The
    penalty is built with ``create_graph=True`` so that backpropagating it reaches the discriminator's parameters;
    ``real`` and ``fake`` are detached, so no gradient reaches the generator. The discriminator is only called, so a
    DistributedDataParallel-wrapped one works (backpropagate the penalty in the same backward pass as the rest of the
    discriminator's loss). A compiled discriminator (``train.compile``) is run eagerly here, as a compiled graph cannot
    be differentiated twice (this needs ``torch.compiler.set_stance``, torch 2.6 or newer).

    The penalty is per sample, so the discriminator must not have BatchNorm, which mixes the samples of a batch
    (Gulrajani et al., section 4): use ``SRGANDiscriminator`` with ``norm: spectral`` or ``norm: none``.

    Args:
        loss_weight (float): The penalty coefficient lambda. Default: 10.0.
    """

    def __init__(self, loss_weight: float = 10.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                fake: torch.Tensor) -> torch.Tensor:
        """Scalar gradient penalty of ``discriminator`` on interpolates of ``real`` and ``fake`` (same shapes)."""
        alpha_shape = (real.size(0), ) + (1, ) * (real.dim() - 1)
        alpha = torch.rand(alpha_shape, device=real.device, dtype=real.dtype)
        x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
        with _eager():
            d_hat = discriminator(x_hat)
        grad, = torch.autograd.grad(outputs=d_hat, inputs=x_hat, grad_outputs=torch.ones_like(d_hat), create_graph=True)
        grad_norm = grad.flatten(1).norm(2, dim=1)
        return (grad_norm - 1).square().mean() * self.loss_weight
