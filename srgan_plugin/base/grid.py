"""The Fourier bins where a sub-pixel upsampler's checkerboard lives, shared by the loss that penalises it
(:class:`srgan_plugin.losses.GridLoss`) and the metric that measures it
(:func:`srgan_plugin.metrics.grid_amplitude`)."""
from __future__ import annotations

__all__ = ['grid_frequencies']


def grid_frequencies(height: int, width: int, period: int) -> list[tuple[int, int]]:
    """The (row, column) bins of a ``height`` x ``width`` FFT that hold a texture repeating every ``period`` pixels:
    (i height // period, j width // period) for i, j in [0, period), (i, j) != (0, 0)."""
    return [(height * i // period, width * j // period) for i in range(period) for j in range(period) if i or j]
