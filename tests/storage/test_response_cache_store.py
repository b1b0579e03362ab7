"""The response cache's store: encrypted entries in the database or Redis, expiry, the size bound, upkeep, outages."""
from __future__ import annotations

import logging

import pytest
import redis as redis_lib
from cryptography.fernet import Fernet
from dbfixtures import raw_rows

from app.errors import StoreDown
from app.ops import writer
from app.ops.metrics import Metrics
from app.ops.writer import BackgroundWriter
from app.storage import response_cache as rc
from app.storage.cache_backends import REDIS_INDEX, REDIS_PREFIX, DatabaseEntries, RedisEntries
from app.storage.crypto import Cipher, cache_context
from app.storage.response_cache import CacheStore

REDIS = "redis://127.0.0.1:6379/3"
BODY = {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Mars is red."},
                                         "finish_reason": "stop"}], "usage": {"prompt_tokens": 3}}


class Clock:
    """A settable clock (epoch seconds)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_background_writer(monkeypatch):
    """Tests flush by hand, so a background flush never races their assertions (nor one at exit, on no database)."""
    started = BackgroundWriter.run
    monkeypatch.setattr(BackgroundWriter, "run", lambda self: None if self._name == "response-cache" else started(self))
    monkeypatch.setattr(writer.atexit, "register", lambda *_args: None)


@pytest.fixture(params=["database", "redis"])
def backend(request, db_app):
    """Each backend: the test's database (SQLite, then PostgreSQL), and Redis (DB 3, emptied)."""
    app = db_app()
    if request.param == "database":
        return DatabaseEntries(app.extensions["chatgate"].database)
    redis_lib.Redis.from_url(REDIS).flushdb()
    return RedisEntries(REDIS)


def store_on(backend, clock=None, **kw) -> CacheStore:
    settings = {"ttl": 600, "max_entries": 100, "cipher": Cipher([Fernet.generate_key().decode()])}
    settings.update(kw)
    return CacheStore(backend, settings.pop("cipher"), clock=clock or Clock(), **settings)


def digest(n: int) -> str:
    return f"{n:064x}"


def test_an_entry_is_read_back_from_the_queue_then_from_the_backend(backend):
    clock = Clock()
    store = store_on(backend, clock)
    store.put(digest(1), BODY)
    queued = store.get(digest(1))
    assert queued is not None and queued.body == BODY and queued.stored_at == clock.now
    assert store.flush() == 1
    clock.now += 30
    written = store.get(digest(1))
    assert written is not None and written.body == BODY and written.stored_at == clock.now - 30
    assert store.get(digest(2)) is None


def test_every_hit_gets_its_own_copy(backend):
    store = store_on(backend)
    body = {"choices": [{"message": {"content": "x"}}]}
    store.put(digest(1), body)
    body["choices"][0]["message"]["content"] = "changed by the caller afterwards"
    first = store.get(digest(1))
    first.body["choices"].clear()
    assert store.get(digest(1)).body == {"choices": [{"message": {"content": "x"}}]}


def test_database_entries_expire_on_read(db_app):
    clock = Clock()
    store = store_on(DatabaseEntries(db_app().extensions["chatgate"].database), clock, ttl=60)
    store.put(digest(1), BODY)
    store.flush()
    clock.now += 59
    assert store.get(digest(1)) is not None
    clock.now += 2
    assert store.get(digest(1)) is None


def test_the_oldest_entries_go_first_past_the_bound(backend):
    clock = Clock()
    store = store_on(backend, clock, max_entries=3)
    for n in range(5):
        store.put(digest(n), {**BODY, "id": str(n)})
        clock.now += 1
        store.flush()
    reader = store_on(backend, clock, max_entries=3, cipher=store.cipher)  # another process: what is stored
    assert [reader.get(digest(n)) is not None for n in range(5)] == [False, False, True, True, True]


def test_a_process_keeps_the_entries_it_used_last_in_memory(backend, monkeypatch):
    monkeypatch.setattr(rc, "RECENT_ENTRIES", 2)
    clock = Clock()
    writer = store_on(backend, clock)
    for n in range(3):
        writer.put(digest(n), BODY)
    writer.flush()
    reader = store_on(backend, clock, cipher=writer.cipher)
    assert reader.get(digest(0)) is not None and reader.get(digest(1)) is not None
    reader.backend = Down()
    clock.now += rc.REST_SECONDS  # no rest yet: the backend would be asked, and fail
    assert reader.get(digest(1)) is not None and reader.get(digest(0)) is not None  # from memory
    assert reader.get(digest(2)) is None  # never read by this process: the backend, which is down
    clock.now += 600  # past the TTL, memory forgets too
    assert reader.get(digest(0)) is None


def test_entries_are_encrypted_at_rest(db_app):
    app = db_app()
    services = app.extensions["chatgate"]
    store = CacheStore(DatabaseEntries(services.database), services.cipher, ttl=600, max_entries=10)
    store.put(digest(7), BODY)
    store.flush()
    [(key, body)] = raw_rows(app, "SELECT key, body FROM response_cache")
    assert key == digest(7) and b"Mars" not in bytes(body)
    assert "Mars is red." in services.cipher.decrypt(bytes(body), cache_context(key))


def test_redis_entries_are_encrypted_and_expire_by_themselves():
    redis_lib.Redis.from_url(REDIS).flushdb()
    store = store_on(RedisEntries(REDIS), ttl=600)
    store.put(digest(1), BODY)
    store.flush()
    client = redis_lib.Redis.from_url(REDIS)
    value = client.get(REDIS_PREFIX + digest(1))
    assert value is not None and b"Mars" not in value
    assert 590_000 < client.pttl(REDIS_PREFIX + digest(1)) <= 600_000
    assert client.zcard(REDIS_INDEX) == 1


def test_purge_deletes_what_expired_and_everything_when_the_cache_is_off(backend):
    clock = Clock()
    store = store_on(backend, clock, ttl=60)
    store.put(digest(1), BODY)
    store.flush()
    clock.now += 30
    store.put(digest(2), BODY)
    store.flush()
    clock.now += 40  # the first is 70 s old, the second 40 s
    assert store.purge_expired() == 1
    assert store_on(backend, clock, ttl=0).purge_expired() == 1
    assert store_on(backend, clock, ttl=60, cipher=store.cipher).get(digest(2)) is None


def test_rotation_re_encrypts_every_entry(backend):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = store_on(backend, cipher=Cipher([old]))
    for n in range(3):
        before.put(digest(n), BODY)
    before.flush()
    rotating = store_on(backend, cipher=Cipher([new, old]))
    assert rotating.reencrypt() == 3
    after = store_on(backend, cipher=Cipher([new]))
    assert all(after.get(digest(n)).body == BODY for n in range(3))


def test_an_entry_no_key_opens_is_a_miss_with_one_warning(backend, caplog):
    metrics = Metrics(provider="offline", upstream="offline", models=("gpt-4o-mini",))
    writer = store_on(backend)
    writer.put(digest(1), BODY)
    writer.flush()
    reader = store_on(backend, metrics=metrics)  # another key
    with caplog.at_level(logging.WARNING, logger="app.storage.response_cache"):
        assert reader.get(digest(1)) is None
        assert reader.get(digest(1)) is None
    assert [r.getMessage() for r in caplog.records] == [
        "response cache: an entry could not be read (Undecryptable); treated as a miss"]
    assert metrics.registry.get_sample_value("chatgate_cache_requests_total", {"result": "error"}) == 2


class Down:
    """A backend whose every call fails the way an unreachable Redis does."""

    calls = 0

    def get(self, *_args):
        Down.calls += 1
        raise redis_lib.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    put = purge_expired = reencrypt = get


def test_an_outage_is_a_miss_one_warning_and_a_rest(caplog):
    clock = Clock()
    Down.calls = 0
    store = store_on(Down(), clock)
    with caplog.at_level(logging.INFO, logger="app.storage.response_cache"):
        assert store.get(digest(1)) is None
        assert store.get(digest(1)) is None  # resting: the backend is not asked again
        assert Down.calls == 1
        store.put(digest(1), BODY)
        assert store.get(digest(1)) is None  # nothing is kept while resting, not even in this process
        assert store.flush() == 0
        clock.now += rc.REST_SECONDS + 1
        assert store.get(digest(2)) is None and Down.calls == 2
    assert [r.getMessage() for r in caplog.records] == [
        "response cache unavailable (ConnectionError on read); serving without it"]


def test_the_backend_coming_back_is_noticed(backend, caplog):
    clock = Clock()
    store = store_on(backend, clock)
    real = store.backend
    store.backend = Down()
    with caplog.at_level(logging.INFO, logger="app.storage.response_cache"):
        assert store.get(digest(1)) is None
        store.backend = real
        clock.now += rc.REST_SECONDS + 1
        store.put(digest(1), BODY)
        assert store.flush() == 1
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert caplog.records[-1].getMessage() == "response cache available again"


def test_operator_commands_report_redis_down_as_one_error():
    with pytest.raises(StoreDown, match="ConnectionError"):
        store_on(Down()).purge_expired()
    with pytest.raises(StoreDown, match="ConnectionError"):
        store_on(Down()).reencrypt()


def test_a_bug_in_a_backend_is_not_hidden():
    class Broken:
        def get(self, *_args):
            raise TypeError("a bug")

    with pytest.raises(TypeError):
        store_on(Broken()).get(digest(1))


def test_the_queue_is_bounded_while_the_backend_is_down(monkeypatch):
    monkeypatch.setattr(rc, "MAX_PENDING", 3)
    monkeypatch.setattr(rc, "RECENT_ENTRIES", 0)  # only the queue answers
    store = store_on(Down())  # down, but not known to be: puts are queued for a writer that never comes
    for n in range(5):
        store.put(digest(n), BODY)
    assert [store.get(digest(n)) is not None for n in range(5)] == [False, False, True, True, True]


def test_a_database_without_the_table_is_an_outage(tmp_path, caplog):
    from sqlalchemy.engine import make_url

    from app.errors import StorageUnavailable
    from app.storage.database import Database, make_engine

    database = Database(make_engine(make_url(f"sqlite:///{tmp_path}/empty.db")))  # never migrated
    with pytest.raises(StorageUnavailable):
        database.quick_read("SELECT body FROM response_cache WHERE key = ?", (digest(1),))
    with caplog.at_level(logging.WARNING, logger="app.storage.response_cache"):
        assert store_on(DatabaseEntries(database)).get(digest(1)) is None
    assert "response cache unavailable (StorageUnavailable on read)" in caplog.text
    database.dispose()
