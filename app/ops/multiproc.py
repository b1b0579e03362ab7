"""The metrics directory of one gunicorn instance: made (or cleared) by the master, tidied as workers die.

prometheus_client decides at import whether it writes samples to files, from
``PROMETHEUS_MULTIPROC_DIR``; so the master sets it before any worker exists
and before it imports prometheus_client itself. Each instance gets a fresh
directory of its own unless the operator names one, which is then emptied at
start-up: a second instance on the same host never wipes or adds to the
first one's counts.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"
_MADE_HERE = "CHATGATE_METRICS_DIR_MADE"


def prepare() -> str:
    """Make this instance's directory (or clear the operator's) and export it to the workers to come."""
    path = os.environ.get(ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)  # counts of an earlier run of this instance
    else:
        path = tempfile.mkdtemp(prefix="chatgate-metrics-")
        os.environ[ENV] = path
        os.environ[_MADE_HERE] = path
    return path


def worker_exited(pid: int) -> None:
    """Mark a dead worker's live gauges gone (its counters stay: they still count)."""
    path = os.environ.get(ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def cleanup() -> None:
    """Remove the directory at shutdown when this instance made it."""
    path = os.environ.get(_MADE_HERE)
    if path and path == os.environ.get(ENV):
        shutil.rmtree(path, ignore_errors=True)
