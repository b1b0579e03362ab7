"""A background writer: queued work flushed in batches by a daemon thread, and once more at exit.

The usage ledger, the request log and the response cache each queue what a
request produced and let this thread write it a batch at a time, so no
request waits on a database, a disk or a log handler.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable


class BackgroundWriter:
    """Calls ``flush`` every ``seconds`` on a daemon thread while ``idle()`` is false; ``flush`` again at exit."""

    def __init__(self, name: str, flush: Callable[[], object], idle: Callable[[], bool], lock: threading.Lock,
                 seconds: float, failed: str, log: logging.Logger):
        self._name = name
        self._flush = flush
        self._idle = idle
        self._lock = lock  # the owner's queue lock: idle() is read under it
        self._seconds = seconds
        self._failed = failed  # the log message, with %s for the error's type
        self._log = log
        self._thread: threading.Thread | None = None
        self._exit_hook = False

    def wake(self) -> None:
        """Start the thread if none runs; call with the owner's lock held, after queueing."""
        if self._thread is not None:
            return
        # Started when there is something to write, in the serving process (after gunicorn forks), never at
        # import; it ends once nothing is queued, and the next wake starts another.
        self._thread = threading.Thread(target=self.run, name=self._name, daemon=True)
        self._thread.start()
        if not self._exit_hook:
            atexit.register(self._flush)
            self._exit_hook = True

    def run(self) -> None:
        """Flush every ``seconds`` until nothing is queued."""
        while True:
            time.sleep(self._seconds)
            try:
                self._flush()
            except Exception as err:  # a failing flush must not end the writer
                self._log.error(self._failed, type(err).__name__)
            with self._lock:
                if self._idle():
                    self._thread = None
                    return
