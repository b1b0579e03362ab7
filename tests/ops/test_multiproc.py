"""The metrics directory of a gunicorn instance: its own, emptied at start-up, tidied as workers die."""
from __future__ import annotations

import os

from app.ops import multiproc


def test_each_instance_gets_a_fresh_directory_of_its_own(monkeypatch):
    monkeypatch.delenv(multiproc.ENV, raising=False)
    monkeypatch.delenv("CHATGATE_METRICS_DIR_MADE", raising=False)  # restored after the test, as ENV is
    first = multiproc.prepare()
    monkeypatch.delenv(multiproc.ENV)
    second = multiproc.prepare()
    assert first != second and os.path.isdir(first) and os.path.isdir(second)
    assert os.environ[multiproc.ENV] == second  # what the workers to come inherit
    multiproc.cleanup()
    assert not os.path.exists(second) and os.path.isdir(first)  # one instance never removes another's
    os.rmdir(first)


def test_a_named_directory_is_emptied_of_earlier_samples_only(monkeypatch, tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("keep", encoding="utf-8")
    monkeypatch.setenv(multiproc.ENV, str(tmp_path))
    monkeypatch.delenv("CHATGATE_METRICS_DIR_MADE", raising=False)
    assert multiproc.prepare() == str(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
    multiproc.cleanup()
    assert tmp_path.is_dir()  # the operator's directory stays


def test_a_dead_workers_live_gauges_are_removed_and_its_counters_kept(monkeypatch, tmp_path):
    monkeypatch.setenv(multiproc.ENV, str(tmp_path))
    for name in ("gauge_livesum_41.db", "gauge_livesum_42.db", "counter_41.db", "histogram_41.db"):
        (tmp_path / name).write_bytes(b"")
    multiproc.worker_exited(41)
    assert sorted(os.listdir(tmp_path)) == ["counter_41.db", "gauge_livesum_42.db", "histogram_41.db"]
