"""Save a training state when the job is told to stop (SIGTERM from a cluster's preemption, SIGINT from Ctrl-C).

The handler only sets a flag; the loop checks it between iterations, where a checkpoint is consistent, saves and
exits. Under distributed training the ranks agree on the flag (one tiny all-reduce per iteration), so that they all
stop after the same iteration. A second signal of the same kind interrupts at once.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable, Optional

import torch

from srgan_plugin.training.distributed import any_rank

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
