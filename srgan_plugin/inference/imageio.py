"""Reading and writing images for inference, keeping what the input was: bit depth, grey, alpha.

* 8-bit in -> 8-bit out; 16-bit PNG in -> 16-bit PNG out (values scaled by 65535, not squeezed to 8 bits).
* Grey in -> grey out: the 3-channel network runs on the grey channel replicated, and the three output channels
  are averaged back to one.
* RGBA (and grey + alpha, which OpenCV decodes as BGRA) -> the colour channels go through the network, the alpha
  channel is upscaled with bicubic interpolation (``cv2.INTER_CUBIC``, clipped) and re-attached.
* Files are decoded with OpenCV (``IMREAD_UNCHANGED``); empty, truncated and non-image files raise
  :class:`~srgan_plugin.inference.runtime.InferenceError` saying which. Files are written whole or not at all
  (:func:`srgan_plugin.base.files.atomic_output`), so a failed write leaves no partial file.

Colour images reach the network in RGB order, as BasicSR trains it (``img2tensor(bgr2rgb=True)``).
"""
from __future__ import annotations

import contextlib
import dataclasses
from os import path as osp
from typing import Callable, Iterator, Optional

import cv2
import numpy as np

from srgan_plugin.base.errors import InferenceError
from srgan_plugin.base.files import atomic_output
from srgan_plugin.base.images import decode_unchanged

__all__ = [
    'IMAGE_EXTENSIONS', 'JPEG_QUALITY', 'Picture', 'read_picture', 'to_picture', 'quantize', 'output_converter',
    'upscale_alpha', 'attach_alpha', 'fit_format', 'write_image'
]

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
JPEG_QUALITY = 95
MAX_VALUES = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


@dataclasses.dataclass
class Picture:
    """A decoded image, ready for the network.

    Args:
        rgb (np.ndarray): HxWx3 float32 RGB in [0, 1] (grey replicated to three channels).
        alpha (np.ndarray | None): HxW float32 alpha in [0, 1], or None.
        grey (bool): Whether the file was single-channel.
        max_value (int): 255 for 8-bit files, 65535 for 16-bit ones.
    """
    rgb: np.ndarray
    alpha: Optional[np.ndarray]
    grey: bool
    max_value: int

    @property
    def dtype(self) -> np.dtype:
        """The file's pixel type: uint8 or uint16."""
        return np.dtype(np.uint8 if self.max_value == 255 else np.uint16)

    def describe(self) -> str:
        """E.g. ``16-bit grey + alpha``."""
        bits = '8-bit' if self.max_value == 255 else '16-bit'
        return f'{bits} {"grey" if self.grey else "colour"}{" + alpha" if self.alpha is not None else ""}'


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings (e.g. about a truncated file) while decoding: we report those ourselves."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def to_picture(raw: np.ndarray) -> Picture:
    """Split an ``IMREAD_UNCHANGED`` array (HxW, HxWx1, HxWx3 BGR or HxWx4 BGRA; uint8 or uint16) into a Picture."""
    if raw.dtype not in MAX_VALUES:
        raise InferenceError(f'{raw.dtype} pixels are not supported (8- or 16-bit images only)')
    max_value = MAX_VALUES[raw.dtype]
    channels = 1 if raw.ndim == 2 else raw.shape[2]
    if channels not in (1, 3, 4):
        raise InferenceError(f'{channels}-channel images are not supported (grey, RGB or RGBA only)')
    scale = np.float32(1 / max_value)
    alpha = raw[..., 3].astype(np.float32) * scale if channels == 4 else None
    if channels == 1:
        grey = raw.reshape(raw.shape[:2]).astype(np.float32) * scale
        return Picture(np.repeat(grey[..., None], 3, axis=2), alpha, True, max_value)
    rgb = np.ascontiguousarray(raw[..., 2::-1]).astype(np.float32) * scale
    return Picture(rgb, alpha, False, max_value)


def read_picture(path: str) -> Picture:
    """Read an image file (never modifying it).

    Args:
        path (str): The file; any characters in the name.

    Returns:
        Picture: The decoded image.

    Raises:
        InferenceError: An empty, truncated or undecodable file, or an unsupported pixel type.
    """
    if osp.getsize(path) == 0:
        raise InferenceError('empty file (0 bytes)')
    with _quiet_opencv():
        raw = decode_unchanged(path)
    if raw is None:
        raise InferenceError('cannot be decoded as an image (truncated, damaged or not an image)')
    return to_picture(raw)


def quantize(values: np.ndarray, max_value: int) -> np.ndarray:
    """Round float values in [0, 1] to uint8 (``max_value`` 255) or uint16 (65535), clipping out-of-range ones."""
    dtype = np.uint8 if max_value == 255 else np.uint16
    return np.clip(np.rint(values * max_value), 0, max_value).astype(dtype)


def output_converter(picture: Picture) -> Callable[[np.ndarray], np.ndarray]:
    """The per-tile conversion of the network's float RGB output back to the file's form: BGR (or grey, the mean of
    the three channels) in the file's bit depth."""

    def convert(tile: np.ndarray) -> np.ndarray:
        values = tile.mean(axis=2) if picture.grey else tile[..., ::-1]
        return quantize(values, picture.max_value)

    return convert


def upscale_alpha(alpha: np.ndarray, size: tuple[int, int], max_value: int) -> np.ndarray:
    """Bicubic (``cv2.INTER_CUBIC``) upscaling of an alpha channel to ``size`` = (width, height), quantized."""
    return quantize(cv2.resize(alpha, size, interpolation=cv2.INTER_CUBIC), max_value)


def attach_alpha(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx4 BGRA from an HxW grey or HxWx3 BGR image and an HxW alpha of the same dtype."""
    bgr = cv2.cvtColor(color, cv2.COLOR_GRAY2BGR) if color.ndim == 2 else color
    return np.dstack([bgr, alpha])


def fit_format(pixels: np.ndarray, ext: str) -> tuple[np.ndarray, list[str]]:
    """Adapt pixels to what ``ext`` can store: JPEG has no alpha and 8 bits only; say what was changed.

    Args:
        pixels (np.ndarray): HxW, HxWx3 or HxWx4 uint8 / uint16 image.
        ext (str): Output extension with the dot, e.g. ``.jpg``.

    Returns:
        tuple[np.ndarray, list[str]]: The pixels to write and notes such as ``'alpha dropped (JPEG)'``.
    """
    notes = []
    if ext in ('.jpg', '.jpeg'):
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = pixels[..., :3]
            notes.append('alpha dropped (JPEG has none; use --ext png)')
        if pixels.dtype == np.uint16:
            pixels = np.round(pixels / 257.).astype(np.uint8)
            notes.append('16-bit reduced to 8-bit (JPEG; use --ext png)')
    return pixels, notes


def write_image(path: str, pixels: np.ndarray) -> None:
    """Encode ``pixels`` (BGR / BGRA / grey) by ``path``'s extension and write it whole or not at all.

    Args:
        path (str): Output file; its folder must exist.
        pixels (np.ndarray): The image, already fitted to the format (:func:`fit_format`).
    """
    ext = osp.splitext(path)[1].lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in ('.jpg', '.jpeg') else []
    ok, encoded = cv2.imencode(ext, pixels, params)
    if not ok:
        raise InferenceError(f'OpenCV cannot encode a {pixels.dtype} {pixels.shape} image as {ext}')
    with atomic_output(path) as temp:
        encoded.tofile(temp)
