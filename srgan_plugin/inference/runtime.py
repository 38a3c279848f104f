"""What the inference commands share: device and precision choice, progress lines, recognising out-of-memory errors,
and what an interruption leaves (:data:`INTERRUPTED`). Their errors are
:class:`~srgan_plugin.base.errors.InferenceError` and their exit statuses those of :mod:`srgan_plugin.base.errors`;
their outputs are written whole or not at all (:func:`srgan_plugin.base.files.atomic_output`)."""
from __future__ import annotations

import sys

import torch

from srgan_plugin.base.errors import InferenceError

__all__ = ['INTERRUPTED', 'resolve_device', 'resolve_dtype', 'is_out_of_memory', 'log']
INTERRUPTED = 'the files written so far are complete, and no partial file was left'  # after 'error: interrupted; '

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def log(message: str) -> None:
    """Print a progress or warning line on stderr without breaking a tqdm bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def resolve_device(name: str = 'auto') -> torch.device:
    """The ``torch.device`` for ``--device``.

    Args:
        name (str): ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``. Default: 'auto'.

    Returns:
        torch.device: The device.

    Raises:
        InferenceError: CUDA was asked for but is not available.
    """
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise InferenceError(f'--device {name}: CUDA is not available to this torch ({torch.__version__}); '
                             'use --device cpu or auto')
    try:
        return torch.device(name)
    except RuntimeError:
        raise InferenceError(f'--device {name}: expected auto, cpu or cuda') from None


def resolve_dtype(half: bool = False, bf16: bool = False) -> torch.dtype:
    """The compute dtype for ``--half`` / ``--bf16`` (float32 when neither).

    Args:
        half (bool): float16. Default: False.
        bf16 (bool): bfloat16. Default: False.

    Returns:
        torch.dtype: The dtype.
    """
    if half and bf16:
        raise InferenceError('--half and --bf16 exclude each other; pick one')
    return DTYPES['fp16'] if half else DTYPES['bf16'] if bf16 else DTYPES['fp32']


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (CUDA's ``OutOfMemoryError`` or the CPU allocator's)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
