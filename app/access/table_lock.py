"""Who may touch the shared limits table at a time: one flock for the processes, a thread lock within each.

``flock`` excludes open file descriptions, so each worker takes it through a
description of its own (``SharedCounters.attach``), and the kernel drops it
if the worker dies holding it. It does not exclude threads of one process,
hence the thread lock, which gevent's workers do not need (``green``).
"""
from __future__ import annotations

import fcntl
import sys
import threading


def green() -> bool:
    """True under gevent's monkey-patching, where no thread lock is needed."""
    # Greenlets switch only where they would block in gevent, and nothing between taking and dropping
    # the file lock does: one process's greenlets cannot interleave inside the table.
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


class NoLock:
    """A lock for a process whose only concurrency is greenlets (see ``green``)."""

    __slots__ = ()

    def acquire(self) -> bool:
        """Nothing to wait for."""
        return True

    def release(self) -> None:
        """Nothing to give back."""


def thread_lock():
    """The lock that keeps this process's threads apart inside the table: a real one unless under gevent."""
    return NoLock() if green() else threading.Lock()


class TableLock:
    """The thread lock, then the file lock; released in reverse."""

    __slots__ = ("_fd", "_mutex")

    def __init__(self, mutex, fd: int):
        self._mutex = mutex
        self._fd = fd

    def __enter__(self) -> None:
        """Take the thread lock, then the file lock."""
        self._mutex.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def __exit__(self, *exc) -> None:
        """Give both back, file lock first."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()
