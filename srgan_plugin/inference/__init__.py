"""Inference with trained generators: checkpoint loading, tiled upscaling, image I/O, BatchNorm folding.

Used by ``python -m srgan_plugin.upscale``, ``.evaluate``, ``.export`` and ``.interpolate``; importing it registers
nothing in BasicSR's registries.
"""
from srgan_plugin.base.errors import InferenceError
from srgan_plugin.inference.bn_fold import count_batchnorm, fold_batchnorm
from srgan_plugin.inference.imageio import Picture, read_picture, write_image
from srgan_plugin.inference.runtime import resolve_device, resolve_dtype
from srgan_plugin.inference.tiling import Upscaler, receptive_radius
from srgan_plugin.inference.weights import (ArchSpec, infer_arch, load_generator, read_state_dict, require_same_arch,
                                            resolve_model, shipped_models)

__all__ = [
    'ArchSpec', 'InferenceError', 'Picture', 'Upscaler', 'count_batchnorm', 'fold_batchnorm', 'infer_arch',
    'load_generator', 'read_picture', 'read_state_dict', 'receptive_radius', 'require_same_arch', 'resolve_device',
    'resolve_dtype', 'resolve_model', 'shipped_models', 'write_image'
]
