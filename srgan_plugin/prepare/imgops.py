"""Image operations shared by the dataset preparation subcommands, done the way BasicSR's own tools do them.

* MATLAB-style bicubic resizing (``basicsr.utils.matlab_functions.imresize``) on ``[0, 1]`` float images, rounded back
  to uint8 -- the degradation behind BasicSR's ``LR_bicubic`` data and the SRGAN paper's 4x bicubic setting.
* Mod-crop to the scale (``basicsr.data.transforms.mod_crop``), so that HR sizes are multiples of the scale.
* Sub-image cropping with crop size / step / threshold, as BasicSR's ``scripts/data_preparation/extract_subimages.py``
  (positions ``0, step, 2 * step, ...`` plus one last crop flush with the border when more than ``thresh_size``
  pixels would be left over; the n-th crop of an image, row-major and counted from 1, is named ``{name}_s{n:03d}``).

All images are HWC (or HW) uint8 numpy arrays; channel order does not matter to any of these functions.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from basicsr.data.transforms import mod_crop
from basicsr.utils.matlab_functions import imresize

__all__ = [
    'mod_crop', 'torch_threads', 'imresize_uint8', 'bicubic_downscale', 'center_crop', 'subimage_starts',
    'subimage_positions', 'extract_subimages', 'subimage_key'
]


@contextlib.contextmanager
def torch_threads(num_threads: int = 1) -> Iterator[None]:
    """Context manager: run with ``torch.set_num_threads(num_threads)``, restoring the previous setting after.

    ``imresize`` loops over rows and columns with tiny torch operations; for many small images one thread is several
    times faster than intra-op threading, especially when the CPU cores are busy with other work.

    Args:
        num_threads (int): Number of intra-op threads inside the block. Default: 1.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def imresize_uint8(img: np.ndarray, factor: float) -> np.ndarray:
    """Resize a uint8 image with MATLAB's bicubic ``imresize`` (antialiasing on), as BasicSR does.

    The image is divided by 255 (float), resized with ``basicsr.utils.matlab_functions.imresize`` and rounded back:
    ``np.clip(np.round(imresize(img / 255., factor) * 255.), 0, 255).astype(np.uint8)``. The output size is
    ``ceil(h * factor) x ceil(w * factor)`` (MATLAB's rule).

    Args:
        img (np.ndarray): HxWxC or HxW uint8 image.
        factor (float): Scale factor, < 1 to downscale, > 1 to upscale.

    Returns:
        np.ndarray: The resized uint8 image, with ``img``'s number of dimensions.
    """
    if img.dtype != np.uint8:
        raise TypeError(f'Expected a uint8 image, got {img.dtype}.')
    out = imresize(img.astype(np.float32) / 255., factor)
    return np.clip(np.round(out * 255.), 0, 255).astype(np.uint8)


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-bicubic downscale by an integer ``scale``: the LR counterpart of an HR image (BasicSR's ``LR_bicubic``).

    Args:
        img (np.ndarray): HxWxC or HxW uint8 HR image; height and width must be multiples of ``scale`` (mod-crop
            it first).
        scale (int): Downscale factor.

    Returns:
        np.ndarray: The (h / scale) x (w / scale) uint8 LR image.
    """
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f'HR size {h}x{w} is not a multiple of scale {scale}; mod-crop it first.')
    return imresize_uint8(img, 1 / scale)


def center_crop(img: np.ndarray, max_size: int) -> np.ndarray:
    """Crop the centre of an image to at most ``max_size`` pixels per side (smaller sides are kept).

    Args:
        img (np.ndarray): HxWxC or HxW image.
        max_size (int): Largest height and width of the result.

    Returns:
        np.ndarray: The contiguous centre crop.
    """
    h, w = img.shape[:2]
    new_h, new_w = min(h, max_size), min(w, max_size)
    top, left = (h - new_h) // 2, (w - new_w) // 2
    return np.ascontiguousarray(img[top:top + new_h, left:left + new_w, ...])


def subimage_starts(length: int, crop_size: int, step: int, thresh_size: int = 0) -> list[int]:
    """Start offsets of the crops along one axis, as BasicSR's ``extract_subimages.py`` computes them.

    Args:
        length (int): Image height or width.
        crop_size (int): Crop size along this axis.
        step (int): Distance between consecutive crops.
        thresh_size (int): A last crop flush with the border is added when more than this many pixels would
            otherwise be left over. Default: 0.

    Returns:
        list[int]: Start offsets; empty when ``length < crop_size``.
    """
    if crop_size <= 0 or step <= 0:
        raise ValueError(f'crop_size and step must be positive, got {crop_size} and {step}.')
    if length < crop_size:
        return []
    starts = list(range(0, length - crop_size + 1, step))
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


def subimage_positions(h: int, w: int, crop_size: int, step: int, thresh_size: int = 0) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of all crops of an ``h x w`` image, row-major (BasicSR's order).

    Args:
        h (int): Image height.
        w (int): Image width.
        crop_size (int): Side of the square crops.
        step (int): Distance between consecutive crops.
        thresh_size (int): See :func:`subimage_starts`. Default: 0.

    Returns:
        list[tuple[int, int]]: The corners; crop ``n`` (counted from 1) is ``positions[n - 1]``.
    """
    ys = subimage_starts(h, crop_size, step, thresh_size)
    xs = subimage_starts(w, crop_size, step, thresh_size)
    return [(y, x) for y in ys for x in xs]


def subimage_key(name: str, index: int) -> str:
    """The key / file stem BasicSR gives crop ``index`` (from 1) of image ``name``: ``{name}_s{index:03d}``."""
    return f'{name}_s{index:03d}'


def extract_subimages(img: np.ndarray,
                      name: str,
                      crop_size: int,
                      step: int,
                      thresh_size: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Crop an image into overlapping square sub-images, like BasicSR's ``extract_subimages.py``.

    Args:
        img (np.ndarray): HxWxC or HxW image.
        name (str): Image name; the sub-images are keyed ``{name}_s001``, ``{name}_s002``, ...
        crop_size (int): Side of the square crops.
        step (int): Distance between consecutive crops.
        thresh_size (int): See :func:`subimage_starts`. Default: 0.

    Yields:
        tuple[str, np.ndarray]: ``(key, contiguous crop)`` in BasicSR's order.
    """
    h, w = img.shape[:2]
    for index, (y, x) in enumerate(subimage_positions(h, w, crop_size, step, thresh_size), start=1):
        yield subimage_key(name, index), np.ascontiguousarray(img[y:y + crop_size, x:x + crop_size, ...])
