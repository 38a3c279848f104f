"""Save a training state when the job is told to stop (SIGTERM from a cluster's preemption, SIGINT from Ctrl-C).

The handler only sets a flag; the loop checks it between iterations, where a checkpoint is consistent, saves and
exits. Under distributed training the ranks agree on the flag (one tiny all-reduce per iteration), so that they all
stop after the same iteration. A second signal of the same kind interrupts at once.

Ctrl-C, ``kill -- -PGID`` and job schedulers signal the whole process group, DataLoader workers included. A worker
killed that way makes the main process fail (``DataLoader worker (pid N) is killed by signal``) in the middle of
whatever it is doing, the save included. So workers ignore both signals (:func:`quiet_workers`; they are started
with them blocked, :func:`workers_start_deaf`, so that none arrives before they ignore them): only the main process
reacts, and it shuts the workers down when it exits.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Any, Callable, Iterator, Optional

import torch

from srgan_plugin.base.distributed import any_rank

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Context manager that turns SIGTERM/SIGINT into ``requested`` (active only when ``enabled``)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: Optional[int] = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> 'StopRequest':
        if self.enabled:
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        self.signum = signum
        previous: Callable[..., Any] | int | None = self._previous.get(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)  # a second one stops at once

    def requested(self, device: torch.device) -> bool:
        """Whether any rank has been signalled (collective when distributed: call it on every rank)."""
        if not self.enabled:
            return False
        return any_rank(self.signum is not None, device)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ''


class QuietWorkerInit:
    """A DataLoader ``worker_init_fn`` that makes the worker ignore SIGTERM and SIGINT, then runs ``inner``.

    Args:
        inner (Callable[[int], None] | None): The loader's own ``worker_init_fn`` (BasicSR's seeding), or None.
    """

    def __init__(self, inner: Optional[Callable[[int], None]]) -> None:
        self.inner = inner

    def __call__(self, worker_id: int) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by workers_start_deaf until now
        if self.inner is not None:
            self.inner(worker_id)


def quiet_workers(loader: torch.utils.data.DataLoader) -> torch.utils.data.DataLoader:
    """Make the worker processes of ``loader`` ignore SIGTERM and SIGINT (see the module docstring); returns it."""
    if loader.num_workers > 0 and not isinstance(loader.worker_init_fn, QuietWorkerInit):
        loader.worker_init_fn = QuietWorkerInit(loader.worker_init_fn)
    return loader


@contextlib.contextmanager
def workers_start_deaf() -> Iterator[None]:
    """Block SIGTERM and SIGINT in this thread while DataLoader workers are started (create the loader's iterator
    inside): they inherit the mask until :class:`QuietWorkerInit` has made them ignore both. A signal that comes
    meanwhile is handled by this process when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
