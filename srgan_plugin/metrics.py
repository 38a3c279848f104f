"""Extra metrics for BasicSR validation and ``python -m srgan_plugin.evaluate``: LPIPS (Zhang et al., CVPR 2018) and
the grid-artefact score (the checkerboard texture a sub-pixel upsampler can leave).

``calculate_lpips`` is registered in BasicSR's ``METRIC_REGISTRY`` when the ``lpips`` package is importable and its
backbone weights (torchvision's AlexNet, ``alexnet-owt-7be5be79.pth`` in ``torch.hub.get_dir()/checkpoints``) are
on disk: nothing is downloaded. Otherwise nothing is registered, silently; :func:`lpips_unavailable_reason` says why.
In an option file (lower is better)::

    val:
      metrics:
        lpips:
          type: calculate_lpips
          crop_border: 4
          better: lower
"""
from __future__ import annotations

import functools
import importlib.util
import warnings
from os import path as osp
from typing import Any, Optional

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY

from srgan_plugin.base.grid import grid_frequencies

__all__ = [
    'LPIPS_BACKBONE_FILE', 'LPIPS_MIN_SIZE', 'lpips_backbone_path', 'lpips_unavailable_reason', 'calculate_lpips',
    'grid_amplitude', 'calculate_grid_artifacts', 'register'
]

LPIPS_BACKBONE_FILE = 'alexnet-owt-7be5be79.pth'
LPIPS_MIN_SIZE = 32  # AlexNet's first layers need 31 px; smaller images have no LPIPS


def lpips_backbone_path() -> str:
    """Where torchvision keeps (and LPIPS loads) the AlexNet weights: ``torch.hub.get_dir()/checkpoints/...``."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', LPIPS_BACKBONE_FILE)


def lpips_unavailable_reason() -> Optional[str]:
    """None when LPIPS can be computed offline, else why not (a sentence for notes)."""
    if importlib.util.find_spec('lpips') is None:
        return 'LPIPS not computed: the lpips package is not installed (pip install lpips)'
    if not osp.isfile(lpips_backbone_path()):
        return (f'LPIPS not computed: its AlexNet backbone weights are not at {lpips_backbone_path()} '
                '(torchvision downloads them when online; this run does not download)')
    return None


@functools.lru_cache(maxsize=None)
def _lpips_network() -> Any:
    """The LPIPS(AlexNet) network on CPU in eval mode, built once (quietly: lpips prints and warns by default)."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net = lpips.LPIPS(net='alex', verbose=False)
    return net.eval().requires_grad_(False)


def _to_lpips_tensor(img: np.ndarray, crop_border: int, input_order: str) -> torch.Tensor:
    """uint8-range BGR HWC/CHW image -> 1x3xHxW RGB tensor in [-1, 1], borders cropped."""
    if input_order == 'CHW':
        img = img.transpose(1, 2, 0)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    rgb = np.ascontiguousarray(img[..., ::-1], dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


def calculate_lpips(img: np.ndarray,
                    img2: np.ndarray,
                    crop_border: int,
                    input_order: str = 'HWC',
                    test_y_channel: bool = False,
                    **kwargs: Any) -> float:
    """LPIPS distance (AlexNet, v0.1) between two images, BasicSR's metric signature (lower is better).

    Args:
        img (np.ndarray): Image in [0, 255], BGR (as BasicSR's ``tensor2img`` gives).
        img2 (np.ndarray): Reference image, same shape.
        crop_border (int): Pixels cropped from each border first.
        input_order (str): 'HWC' or 'CHW'. Default: 'HWC'.
        test_y_channel (bool): Not supported (LPIPS needs colour); must be False. Default: False.
        **kwargs: Ignored (BasicSR passes e.g. ``better``).

    Returns:
        float: The distance.
    """
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes differ: {img.shape}, {img2.shape}.')
    if test_y_channel:
        raise ValueError('calculate_lpips needs colour images; remove test_y_channel.')
    a, b = _to_lpips_tensor(img, crop_border, input_order), _to_lpips_tensor(img2, crop_border, input_order)
    if min(a.shape[2:]) < LPIPS_MIN_SIZE:
        raise ValueError(
            f'LPIPS needs images of at least {LPIPS_MIN_SIZE} px after cropping, got {tuple(a.shape[2:])}.')
    with torch.inference_mode():
        distance = _lpips_network()(a, b)
    return float(distance.item())


def grid_amplitude(y: np.ndarray, period: int) -> float:
    """RMS amplitude of the texture that repeats on a ``period``-pixel grid aligned with the image, in ``y``'s units.

    A sub-pixel upsampler computes each output pixel from one of ``period`` x ``period`` channel groups, so a mismatch
    between the groups repeats exactly every ``period`` pixels: a checkerboard. Its power sits in the Fourier bins
    (i h / period, j w / period), (i, j) != (0, 0). At each of them the power beyond what the 48 neighbouring bins
    (their median) suggest is counted; by Parseval, the square root of the sum over the bins, divided by h w, is that
    periodic texture's RMS amplitude. A natural image has little there, which its own value measures.

    Args:
        y (np.ndarray): One channel, HxW (e.g. Y in [0, 255]); cropped to a multiple of ``period`` first.
        period (int): The grid: the upscaling factor (x4 covers periods 4 and 2).

    Returns:
        float: The amplitude (0 without a grid).
    """
    h, w = (y.shape[0] // period) * period, (y.shape[1] // period) * period
    if min(h, w) < 8 * period:
        raise ValueError(f'grid_amplitude needs at least {8 * period} px per side, got {y.shape[0]}x{y.shape[1]}.')
    y = y[:h, :w].astype(np.float64)
    magnitude = np.abs(np.fft.fft2(y - y.mean()))
    offsets = np.arange(-3, 4)
    excess = 0.
    for fy, fx in grid_frequencies(h, w, period):
        around = magnitude[np.ix_((fy + offsets) % h, (fx + offsets) % w)].ravel()
        background = np.median(np.delete(around, around.size // 2))
        excess += max(magnitude[fy, fx]**2 - background**2, 0.)
    return float(np.sqrt(excess) / (h * w))


@METRIC_REGISTRY.register()
def calculate_grid_artifacts(img: np.ndarray,
                             img2: np.ndarray,
                             crop_border: int,
                             period: int = 4,
                             input_order: str = 'HWC',
                             **kwargs: Any) -> float:
    """Grid artefacts (checkerboard) of an SR image: :func:`grid_amplitude` of its Y channel minus the HR image's, in
    8-bit levels (lower is better; about 0: no more grid than the real image). Registered in ``METRIC_REGISTRY``
    (``val.metrics``: ``grid: {type: calculate_grid_artifacts, crop_border: 4, period: 4, better: lower}``).

    Args:
        img (np.ndarray): SR image in [0, 255], BGR.
        img2 (np.ndarray): HR image, same shape.
        crop_border (int): Pixels cropped from each border first.
        period (int): The upsampler's grid: the upscaling factor. Default: 4.
        input_order (str): 'HWC' or 'CHW'. Default: 'HWC'.
        **kwargs: Ignored (BasicSR passes e.g. ``better``).

    Returns:
        float: The difference.
    """
    from basicsr.metrics.metric_util import reorder_image, to_y_channel

    if img.shape != img2.shape:
        raise ValueError(f'Image shapes differ: {img.shape}, {img2.shape}.')
    amplitudes = []
    for image in (img, img2):
        y = to_y_channel(reorder_image(image, input_order=input_order))[..., 0]
        amplitudes.append(
            grid_amplitude(y[crop_border:-crop_border, crop_border:-crop_border] if crop_border else y, period))
    return amplitudes[0] - amplitudes[1]


def register() -> bool:
    """Register :func:`calculate_lpips` in ``METRIC_REGISTRY`` when LPIPS is available; never raises or warns.

    Returns:
        bool: Whether it is registered now.
    """
    if 'calculate_lpips' in METRIC_REGISTRY:
        return True
    if lpips_unavailable_reason() is not None:
        return False
    METRIC_REGISTRY.register(calculate_lpips)
    return True


register()
