"""What the inference commands share: the error type they turn into one ``error:`` line (Ctrl-C and SIGTERM too),
device and precision choice, and recognising out-of-memory errors. Their outputs are written whole or not at all
(:func:`srgan_plugin.base.files.atomic_output`)."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import torch

from srgan_plugin.interrupts import sigterm_as_interrupt

__all__ = [
    'InferenceError', 'one_line_errors', 'resolve_device', 'resolve_dtype', 'is_out_of_memory', 'log'
]
INTERRUPTED = 'error: interrupted; the files written so far are complete, and no partial file was left'

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class InferenceError(ValueError):
    """Bad input to an inference command; the message says what is wrong and what to do."""


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Context manager for CLIs: an :class:`InferenceError` becomes ``SystemExit('error: ...')`` (status 1); Ctrl-C
    and SIGTERM end with one ``error: interrupted`` line and status 130 (outputs are written through
    :func:`srgan_plugin.base.files.atomic_output`, so none is left half-written)."""
    try:
        with sigterm_as_interrupt():
            yield
    except InferenceError as error:
        raise SystemExit(f'error: {error}') from None
    except KeyboardInterrupt:
        sys.stderr.write(f'{INTERRUPTED}\n')
        raise SystemExit(130) from None


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
