"""SRGAN losses, registered in BasicSR's ``LOSS_REGISTRY`` on import (option files name them in ``type:``).

* ``VGGContentLoss``: the paper's VGG19 content loss (``perceptual_opt``; returns ``(loss, None)``).
* ``TVLoss``: total-variation regulariser.
* ``GridLoss``: the error on the sub-pixel grid's frequencies (checkerboard penalty).
* ``GradientPenaltyLoss``: WGAN-GP gradient penalty.

The VGG19 weight policy (``vgg_weights``) lives in :mod:`srgan_plugin.losses.vgg`.
"""
from srgan_plugin.losses.content_loss import VGGContentLoss
from srgan_plugin.losses.gradient_penalty_loss import GradientPenaltyLoss
from srgan_plugin.losses.grid_loss import GridLoss
from srgan_plugin.losses.tv_loss import TVLoss
from srgan_plugin.losses.vgg import (VGG19Features, VGGWeightsError, VGGWeightsMismatchError, check_vgg19_weights,
                                     resolve_vgg19_weights, vgg19_cache_path, vgg19_weights_available)

__all__ = [
    'VGGContentLoss', 'TVLoss', 'GridLoss', 'GradientPenaltyLoss', 'VGG19Features', 'VGGWeightsError',
    'VGGWeightsMismatchError', 'check_vgg19_weights', 'resolve_vgg19_weights', 'vgg19_cache_path',
    'vgg19_weights_available'
]
