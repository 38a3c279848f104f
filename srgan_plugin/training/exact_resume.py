"""What a training state needs beyond BasicSR's (optimizers, schedulers, epoch, iteration) for an exact resume: each
rank's random number generators and the position in the epoch's sample order."""
from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler


def capture_rng() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU and CUDA generator states (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'python': random.getstate(),
        'numpy': (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng`` (the CUDA states only where the same number of devices is visible)."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Whatever the block draws, the generators afterwards are as before (validation does not change training)."""
    saved = capture_rng()
    try:
        yield
    finally:
        restore_rng(saved)


class ResumableSampler(EnlargedSampler):
    """BasicSR's ``EnlargedSampler`` (the same per-epoch order) that can start an epoch part-way through.

    ``start_at(n)`` makes the next ``__iter__`` skip the first ``n`` indices of the epoch, i.e. the samples of the
    batches already trained on before the save that is being resumed; later epochs start at 0 again.
    """

    def __init__(self, dataset: Any, num_replicas: int, rank: int, ratio: int = 1) -> None:
        super().__init__(dataset, num_replicas, rank, ratio)
        self._start = 0

    def start_at(self, position: int) -> None:
        self._start = position

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self._start = self._start, 0
        return iter(indices[start:])
