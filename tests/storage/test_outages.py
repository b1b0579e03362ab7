"""A stalled database (packets dropped, nothing refused) answers 503 database_unavailable in bounded time."""
from __future__ import annotations

import select
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from dbfixtures import PG_URL, pg_schema

from app import create_app, start


class StallingProxy:
    """A TCP proxy to PostgreSQL that can stop forwarding while keeping every connection open."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._closed:
            self._forwarding.wait()
            ready, _, _ = select.select(list(peers), [], [], 0.05)
            if not self._forwarding.is_set():
                continue  # stalled: what arrived stays unread, nothing is closed
            for sock in ready:
                try:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
                except OSError:
                    return

    def stall(self) -> None:
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def close(self) -> None:
        self._closed = True
        self._forwarding.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def stalling():
    """An app on PostgreSQL through a StallingProxy, with one-second timeouts."""
    parts = urlsplit(PG_URL)
    proxy = StallingProxy((parts.hostname, parts.port or 5432))
    with pg_schema() as url:
        via = url.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{proxy.port}")
        app = start(create_app({"APP_ENV": "testing", "DATABASE_URL": via, "DB_STATEMENT_TIMEOUT": "1",
                                "DB_POOL_TIMEOUT": "1", "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0"}))
        yield app, proxy
        proxy.resume()
        app.extensions["chatgate"].ledger.flush()
        app.extensions["chatgate"].database.dispose()
    proxy.close()


def timed(call, limit: float = 30.0):
    """``call()``'s result and how long it took; fails (rather than hangs) past ``limit`` seconds."""
    box: list = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(limit)
    assert box, f"still waiting after {limit} s"
    return box[0], time.monotonic() - started


def test_a_stalled_database_is_a_503_within_seconds_then_recovers(stalling):
    app, proxy = stalling
    client = app.test_client()
    conv = client.post("/chat", json={"prompt": "hello"}).get_json()["conversation_id"]
    proxy.stall()
    for call in (lambda: client.post("/chat", json={"prompt": "again", "conversation_id": conv}),
                 lambda: client.get("/conversations"), lambda: client.get(f"/conversations/{conv}")):
        resp, took = timed(call)
        assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "database_unavailable"
        assert took < 10  # the timeouts are 1 s (plus 1 s of grace, plus a 2 s connect floor)
    ready, took = timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "unavailable" and took < 10
    proxy.resume()
    again = client.post("/chat", json={"prompt": "and again", "conversation_id": conv})
    assert again.status_code == 200
    assert len(client.get(f"/conversations/{conv}").get_json()["messages"]) == 4


def test_a_slow_statement_is_cancelled_by_the_server(stalling):
    app, _proxy = stalling
    database = app.extensions["chatgate"].database
    with pytest.raises(Exception) as err, database.session() as session:
        session.connection().exec_driver_sql("SELECT pg_sleep(5)")
    assert getattr(err.value, "code", None) == "database_unavailable"
    with database.session() as session:  # the pool is healthy afterwards
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
