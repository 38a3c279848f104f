"""Grid loss: the generator's error on the frequencies of its sub-pixel grid, where the checkerboard lives."""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import Tensor, nn

from srgan_plugin.base.grid import grid_frequencies


def grid_frequency_mask(height: int, width: int, period: int, spread: int) -> Tensor:
    """Boolean (height, width) mask of the Fourier bins (i height / period, j width / period), (i, j) != (0, 0), each
    with its neighbours up to ``spread`` bins away (in both directions, wrapping)."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    offsets = torch.arange(-spread, spread + 1)
    for fy, fx in grid_frequencies(height, width, period):
        mask[((fy + offsets) % height)[:, None], (fx + offsets) % width] = True
    return mask


@LOSS_REGISTRY.register()
class GridLoss(nn.Module):
    """Mean square of the part of ``output - gt`` that repeats on a ``period``-pixel grid: a checkerboard penalty.

    A sub-pixel (PixelShuffle) upsampler computes each output pixel from one of period x period channel groups; when
    adversarial training pulls the groups apart, the output gains a texture repeating exactly every ``period`` pixels
    (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016). Its energy sits in the Fourier bins
    (i h / period, j w / period); this loss is the error's power in those bins and their ``spread`` neighbours (the
    texture's envelope widens its peaks), per image and channel, as a mean square in the images' units (by Parseval).
    Those frequencies (1/4 and 1/2 cycle per pixel at x4) lie above the LR image's Nyquist frequency, so the error
    there is texture the generator invents; a weight far above the pixel loss's keeps it from inventing a grid while
    the rest of the spectrum stays free. ``train.grid_opt`` of both plugin models, logged as ``l_g_grid`` (phase 2)
    or ``l_grid`` (phase 1)::

        grid_opt:
          type: GridLoss
          loss_weight: 1000.0
          period: 4      # the upscaling factor
          spread: 1

    Args:
        loss_weight (float): Weight of the loss. Default: 1.0.
        period (int): The grid, the upscaling factor (x4 also covers period 2). Default: 4.
        spread (int): Neighbouring bins counted on each side of each grid frequency. Default: 1.
    """

    def __init__(self, loss_weight: float = 1.0, period: int = 4, spread: int = 1) -> None:
        super().__init__()
        if period < 2:
            raise ValueError(f'GridLoss: period must be at least 2 (the upscaling factor), got {period!r}')
        if spread < 0:
            raise ValueError(f'GridLoss: spread must be 0 or more, got {spread!r}')
        self.loss_weight = loss_weight
        self.period = period
        self.spread = spread

    def forward(self, output: Tensor, gt: Tensor) -> Tensor:
        """Scalar loss for (n, c, h, w) ``output`` and ``gt``; h and w are multiples of ``period``."""
        height, width = output.shape[-2:]
        if height % self.period or width % self.period:
            raise ValueError(f'GridLoss: the crops ({height}x{width}) must be multiples of period {self.period}')
        spectrum = torch.fft.fft2((output - gt).float())  # no half-precision FFT of arbitrary sizes
        mask = grid_frequency_mask(height, width, self.period, self.spread).to(spectrum.device)
        power = spectrum.abs().square()[..., mask].sum(-1) / (height * width)**2
        return power.mean() * self.loss_weight
