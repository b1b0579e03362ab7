"""`db purge-expired` and `db rotate-key` look after response-cache entries too, on every backend."""
from __future__ import annotations

from cryptography.fernet import Fernet
from dbfixtures import raw_rows

BODY = {"choices": [{"index": 0, "message": {"content": "Mars is red."}, "finish_reason": "stop"}]}


def test_purge_expired_clears_cache_entries_past_the_ttl(db_app):
    app = db_app(CACHE_TTL="1h")
    store = app.extensions["chatgate"].cache_store
    store.put("a" * 64, BODY)
    store.flush()
    out = app.test_cli_runner().invoke(args=["db", "purge-expired"])
    assert out.exit_code == 0 and "purged 0 expired response-cache entries" in out.output
    # With the cache turned off, every entry has outlived it.
    off = db_app(CACHE_TTL="0").test_cli_runner().invoke(args=["db", "purge-expired"])
    assert off.exit_code == 0 and "purged 1 expired response-cache entry" in off.output
    assert raw_rows(app, "SELECT COUNT(*) FROM response_cache") == [(0,)]


def test_rotate_key_re_encrypts_cache_entries(db_app):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = db_app(CACHE_TTL="1h", DATA_ENCRYPTION_KEY=old)
    store = app.extensions["chatgate"].cache_store
    for n in range(3):
        store.put(f"{n:064x}", BODY)
    store.flush()
    out = db_app(CACHE_TTL="1h", DATA_ENCRYPTION_KEY=f"{new},{old}").test_cli_runner().invoke(args=["db", "rotate-key"])
    assert out.exit_code == 0 and "re-encrypted 0 rows and 3 response-cache entries" in out.output
    after = db_app(CACHE_TTL="1h", DATA_ENCRYPTION_KEY=new).extensions["chatgate"].cache_store
    assert all(after.get(f"{n:064x}").body == BODY for n in range(3))


def test_redis_out_of_reach_is_one_line(make_app):
    app = make_app(CACHE_TTL="1h", REDIS_URL="redis://127.0.0.1:1/0")
    out = app.test_cli_runner().invoke(args=["db", "purge-expired"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines()[-1] == (
        "Error: the response cache store (Redis) is unavailable (ConnectionError)")
    assert "Traceback" not in out.output
