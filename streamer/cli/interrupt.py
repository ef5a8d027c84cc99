"""Ctrl-C for the command line: the first one stops the work, later ones never break the cleanup.

The first SIGINT raises KeyboardInterrupt in the main thread as usual; the ``finally`` blocks then
stop worker threads and close media and sessions in order. A second SIGINT during that cleanup
only prints a line (a KeyboardInterrupt raised inside a ``finally`` would skip the rest of it:
a media container closed under its decoding thread crashes the process). A third quits at once
with ``os._exit`` (no destructor runs, so nothing is freed twice; saved state is always written
atomically, so it stays valid).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["graceful_interrupts", "EXIT_INTERRUPTED"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


@contextmanager
def graceful_interrupts(prog: str) -> Iterator[None]:
    """Install the handler described in the module docstring for the duration of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    count = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        if count == 1:
            raise KeyboardInterrupt
        if count == 2:
            os.write(2, f"{prog}: stopping cleanly (press Ctrl-C again to quit at once)\n".encode())
            return
        os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        # Once interrupted, the process is on its way out: a late Ctrl-C must not kill it by signal
        # (exit status -2 instead of 130) while the interpreter shuts down.
        signal.signal(signal.SIGINT, signal.SIG_IGN if count else previous)
