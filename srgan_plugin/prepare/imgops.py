"""Image operations shared by the dataset preparation subcommands, done the way BasicSR's own tools do them.

* MATLAB-style bicubic resizing (``basicsr.utils.matlab_functions.imresize``) on ``[0, 1]`` float images, rounded back
  to uint8 -- the degradation behind BasicSR's ``LR_bicubic`` data and the SRGAN paper's 4x bicubic setting.
* Mod-crop to the scale (``basicsr.data.transforms.mod_crop``), so that HR sizes are multiples of the scale.
* Sub-image cropping with crop size / step / threshold, as BasicSR's ``scripts/data_preparation/extract_subimages.py``
  (positions ``0, step, 2 * step, ...`` plus one last crop flush with the border when more than ``thresh_size``
  pixels would be left over; the n-th crop of an image, row-major and counted from 1, is named ``{name}_s{n:03d}``).
  :func:`subimage_boxes` is the one place the crops are computed; unlike BasicSR's script it keeps images smaller
  than the crop: along an axis shorter than the crop, the sub-image spans the whole axis.
* Reading any input image into the one form everything here works on (:func:`read_image`, policy in
  :func:`to_bgr_uint8`): 8-bit, 3 channels, BGR.

All images are HWC (or HW) uint8 numpy arrays; channel order does not matter to any of these functions.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import cv2
import numpy as np
import torch
from basicsr.data.transforms import mod_crop
from basicsr.utils.matlab_functions import imresize

from srgan_plugin.base.errors import BadImage
from srgan_plugin.base.images import decode_unchanged

__all__ = [
    'mod_crop', 'torch_threads', 'imresize_uint8', 'bicubic_downscale', 'center_crop', 'subimage_starts',
    'subimage_key', 'subimage_boxes', 'count_subimages', 'extract_subimages', 'BadImage', 'to_bgr_uint8', 'read_image'
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


def subimage_key(name: str, index: int) -> str:
    """The key / file stem BasicSR gives crop ``index`` (from 1) of image ``name``: ``{name}_s{index:03d}``."""
    return f'{name}_s{index:03d}'


def subimage_boxes(h: int, w: int, crop_size: int, step: int, thresh_size: int = 0) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y, x, height, width)`` of the sub-images of an ``h x w`` image, row-major, keeping small images.

    Along an axis at least ``crop_size`` long, the starts are :func:`subimage_starts`'s (BasicSR's) and the extent is
    ``crop_size``; along a shorter axis there is one sub-image spanning the whole axis. So an image smaller than the
    crop is kept whole, and one that is narrower than the crop but tall gives full-width strips.

    Args:
        h (int): Image height.
        w (int): Image width.
        crop_size (int): Side of the square crops.
        step (int): Distance between consecutive crops.
        thresh_size (int): See :func:`subimage_starts`. Default: 0.

    Returns:
        list[tuple[int, int, int, int]]: The boxes; sub-image ``n`` (counted from 1) is ``boxes[n - 1]``.
    """

    def spans(length: int) -> list[tuple[int, int]]:
        if length < crop_size:
            return [(0, length)] if length > 0 else []
        return [(start, crop_size) for start in subimage_starts(length, crop_size, step, thresh_size)]

    return [(y, x, bh, bw) for y, bh in spans(h) for x, bw in spans(w)]


def count_subimages(h: int, w: int, crop_size: int, step: int, thresh_size: int = 0) -> int:
    """Number of sub-images :func:`subimage_boxes` gives for an ``h x w`` image (e.g. 40 for DIV2K's 0001,
    2040x1356, with 480 / 240 / 0)."""
    return len(subimage_boxes(h, w, crop_size, step, thresh_size))


def extract_subimages(img: np.ndarray,
                      name: str,
                      crop_size: int,
                      step: int,
                      thresh_size: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Cut an image into its sub-images (:func:`subimage_boxes`), keyed as BasicSR's ``extract_subimages.py`` does.

    Args:
        img (np.ndarray): HxWxC or HxW image.
        name (str): Image name; the sub-images are keyed ``{name}_s001``, ``{name}_s002``, ...
        crop_size (int): Side of the square crops.
        step (int): Distance between consecutive crops.
        thresh_size (int): See :func:`subimage_starts`. Default: 0.

    Yields:
        tuple[str, np.ndarray]: ``(key, contiguous crop)`` in BasicSR's order.
    """
    for index, (y, x, h, w) in enumerate(subimage_boxes(*img.shape[:2], crop_size, step, thresh_size), start=1):
        yield subimage_key(name, index), np.ascontiguousarray(img[y:y + h, x:x + w, ...])


def to_bgr_uint8(img: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Bring a decoded image into the form the datasets store: uint8, 3 channels (BGR), and say what was changed.

    Policy: 16-bit images are scaled to 8 bits (``round(v / 257)``); grayscale images get three equal channels;
    the alpha channel of RGBA / grey+alpha images is dropped (as BasicSR's readers, ``cv2.IMREAD_COLOR``, do).
    Other pixel types (float, 32-bit) are refused.

    Args:
        img (np.ndarray): HxW or HxWxC image as decoded by ``cv2.imdecode(..., cv2.IMREAD_UNCHANGED)``.

    Returns:
        tuple[np.ndarray, list[str]]: The contiguous HxWx3 uint8 image and the changes made, from
        ``'16-bit'``, ``'grayscale'``, ``'alpha'``.

    Raises:
        BadImage: For a pixel type or channel count that has no such conversion.
    """
    notes = []
    if img.dtype == np.uint16:
        img = np.round(img / 257.).astype(np.uint8)
        notes.append('16-bit')
    elif img.dtype != np.uint8:
        raise BadImage(f'{img.dtype} pixels are not supported (8- or 16-bit images only)')
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels in (2, 4):
        notes.append('alpha')
        img = img[..., :channels - 1]
        channels -= 1
    if channels == 1:
        notes.append('grayscale')
        img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif channels != 3:
        raise BadImage(f'{channels}-channel images are not supported')
    return np.ascontiguousarray(img), notes


def read_image(path: str) -> tuple[np.ndarray, list[str]]:
    """Read an image file as an HxWx3 uint8 BGR array (policy: :func:`to_bgr_uint8`), never modifying the file.

    Args:
        path (str): The file (any format cv2 decodes; any characters in the name).

    Returns:
        tuple[np.ndarray, list[str]]: The image and the conversions applied.

    Raises:
        BadImage: When the file cannot be decoded as an image, or has an unsupported pixel type.
    """
    img = decode_unchanged(path)
    if img is None:
        raise BadImage('not an image (cv2 cannot decode it)')
    return to_bgr_uint8(img)
