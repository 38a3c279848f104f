"""SIGTERM handled as Ctrl-C, for the commands that clean up on ``KeyboardInterrupt`` (prepare and the inference
commands)."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a job scheduler's stop) into ``KeyboardInterrupt`` inside the block, so that partial
    outputs are cleaned up as on Ctrl-C. Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
