"""The usage ledger writes in batches, in the background, and keeps rows while the database is down."""
from __future__ import annotations

import time

from dbfixtures import raw_rows

from app.errors import ServiceUnavailable

ROW = dict(client_id="alice", model="gpt-4o-mini", prompt_tokens=3, completion_tokens=4, latency_ms=1.0,
           status=200, filter_action="none", endpoint="/chat", stream=False)


def count(app) -> int:
    return raw_rows(app, "SELECT COUNT(*) FROM usage")[0][0]


def test_rows_reach_the_database_by_themselves(db_app):
    app = db_app()
    ledger = app.extensions["chatgate"].ledger
    for _ in range(5):
        ledger.record(**ROW)
    deadline = time.monotonic() + 10
    while count(app) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(app) == 5


def test_rows_wait_while_the_database_is_down(db_app, monkeypatch):
    app = db_app()
    ledger = app.extensions["chatgate"].ledger
    database = app.extensions["chatgate"].database
    real_session = database.session

    def down(**_kw):
        raise ServiceUnavailable("the database is unavailable", code="database_unavailable")

    monkeypatch.setattr(database, "session", down)
    ledger.record(**ROW)
    ledger.record(**ROW)
    assert ledger.flush() == 0
    monkeypatch.setattr(database, "session", real_session)
    ledger.record(**ROW)
    ledger.flush()
    assert count(app) == 3
