"""Image files decoded as stored, for the two readers that apply their own policies on top: dataset preparation
(:func:`srgan_plugin.prepare.imgops.read_image`: 8-bit BGR) and inference
(:func:`srgan_plugin.inference.imageio.read_picture`: bit depth, grey and alpha kept)."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ['decode_unchanged']


def decode_unchanged(path: str) -> np.ndarray | None:
    """The file decoded by OpenCV as stored (depth, channels, alpha), or None when it cannot be decoded; any
    characters in the name."""
    try:
        return cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
