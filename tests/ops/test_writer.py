"""The background writer: flushes while work is queued, ends when idle, survives a failing flush."""
from __future__ import annotations

import logging
import threading

import pytest

from app.ops import writer as writer_module
from app.ops.writer import BackgroundWriter
from support import wait_for


class Queue:
    def __init__(self, fail_first: int = 0):
        self.items: list[int] = []
        self.written: list[int] = []
        self.lock = threading.Lock()
        self.fail_first = fail_first

    def flush(self) -> int:
        if self.fail_first:
            self.fail_first -= 1
            raise OSError("disk full")
        with self.lock:
            batch, self.items = self.items, []
        self.written += batch
        return len(batch)


@pytest.fixture
def exits(monkeypatch):
    registered: list = []
    monkeypatch.setattr(writer_module.atexit, "register", registered.append)
    return registered


def make(queue: Queue) -> BackgroundWriter:
    return BackgroundWriter("test-writer", queue.flush, lambda: not queue.items, queue.lock, 0.01,
                            "test writer: write failed (%s)", logging.getLogger("test.writer"))


def test_queued_work_is_written_and_the_thread_ends_when_idle(exits):
    queue = Queue()
    w = make(queue)
    with queue.lock:
        queue.items += [1, 2]
        w.wake()
        first = w._thread
        w.wake()  # already running: no second thread
        assert w._thread is first
    assert wait_for(lambda: w._thread is None, 5)
    assert queue.written == [1, 2]
    with queue.lock:
        queue.items.append(3)
        w.wake()  # a new thread for new work, the exit hook registered only once
    assert wait_for(lambda: w._thread is None, 5)
    assert queue.written == [1, 2, 3] and exits == [queue.flush]


def test_a_failing_flush_is_logged_and_the_writer_goes_on(exits, caplog):
    queue = Queue(fail_first=1)
    w = make(queue)
    with queue.lock:
        queue.items.append(7)
        w.wake()
    assert wait_for(lambda: w._thread is None, 5)
    assert queue.written == [7]
    assert "test writer: write failed (OSError)" in caplog.text
