"""The admin API through real gunicorn servers (two workers) on SQLite and PostgreSQL.

Keys are issued over HTTP and used on both doors; a patched limit, a rotation
with a grace period, an expiry and a revocation each reach every worker within
the verification cache's few seconds (polled with a deadline, never timed).
Then the doors: 404 without ADMIN_TOKEN, 401 and then 429 for a wrong token,
no CORS; and neither a key nor the admin token in any log line.
"""
from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from support import LiveServer, wait_for

from dbfixtures import pg_schema

ADMIN_TOKEN = "admin-e2e-" + "A" * 24
HASH_SECRET = "hash-secret-" + "s" * 30
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ORIGIN = "https://app.example.com"
# Longer than a verification cache entry lives (keys.CACHE_SECONDS), with room for a loaded machine.
PROPAGATION = 30.0
# The server trusts one proxy hop from loopback: each client request comes "from" an address of its own, so
# refused client keys never throttle one another, and admin calls come from ADMIN_ADDRESS.
ADDRESSES = (f"10.{i // 250}.{i % 250}.1" for i in itertools.count())
ADMIN_ADDRESS = "198.51.100.7"


def chat(url: str, key: str, door: str = "/chat") -> requests.Response:
    body = ({"prompt": "Hello"} if door == "/chat"
            else {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]})
    # A connection each, so both workers serve some of a batch.
    return requests.post(url + door, json=body, headers={"Authorization": f"Bearer {key}", "Connection": "close",
                                                         "X-Forwarded-For": next(ADDRESSES)}, timeout=30)


def batch(url: str, key: str, n: int = 12) -> list[tuple[int, str | None]]:
    """Status and error code of ``n`` concurrent requests, across both doors."""
    doors = ["/chat", "/v1/chat/completions"] * (n // 2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda door: chat(url, key, door), doors))
    return [(r.status_code, r.json().get("error", {}).get("code") if r.status_code != 200 else None)
            for r in answers]


def everywhere(url: str, key: str, status: int, code: str | None = None) -> bool:
    """Poll until a whole batch answers ``status`` (with ``code``): every worker has seen the change."""
    return wait_for(lambda: set(batch(url, key)) == {(status, code)}, PROPAGATION)


def admin(method: str, url: str, path: str, **kw) -> requests.Response:
    headers = {**ADMIN, "X-Forwarded-For": ADMIN_ADDRESS, **kw.pop("headers", {})}
    return requests.request(method, url + path, headers=headers, timeout=30, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/chatgate.db"
    else:
        with pg_schema() as url:
            yield url


def test_keys_issued_changed_rotated_expired_and_revoked_over_http(database):
    env = {"AUTH_MODE": "keys", "KEY_HASH_SECRET": HASH_SECRET, "ADMIN_TOKEN": ADMIN_TOKEN,
           "AUTH_FAILURE_LIMIT": "4/minute", "CORS_ORIGINS": ORIGIN, "DATABASE_URL": database,
           "TRUSTED_PROXY_HOPS": "1"}
    issued: list[str] = []
    with LiveServer(workers=2, **env) as server:
        url = server.url

        # Issue, then use on both doors; the key's usage shows in its record.
        made = admin("POST", url, "/admin/keys", json={"name": "user-42", "metadata": {"user": "42"}})
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["id"]
        issued.append(key)
        assert set(batch(url, key, 4)) == {(200, None)}
        listed = admin("GET", url, "/admin/keys", params={"metadata.user": "42"}).json()
        assert [k["id"] for k in listed["data"]] == [key_id] and key not in str(listed)
        assert wait_for(lambda: admin("GET", url, f"/admin/keys/{key_id}").json()["usage"]["today"]["requests"] == 4,
                        PROPAGATION)

        # A patched limit is enforced by every worker.
        limited = admin("POST", url, "/admin/keys", json={"name": "limited"}).json()
        issued.append(limited["key"])
        assert set(batch(url, limited["key"], 2)) == {(200, None)}
        assert admin("PATCH", url, f"/admin/keys/{limited['id']}",
                     json={"rate_limit": "1 per 30 days"}).status_code == 200
        assert everywhere(url, limited["key"], 429, "rate_limit_exceeded")

        # Rotation with a 3 s grace: old and new work, then only the new; the id (and usage) stays.
        rotated = admin("POST", url, f"/admin/keys/{key_id}/rotate", json={"grace_seconds": 3}).json()
        new = rotated["key"]
        issued.append(new)
        assert rotated["id"] == key_id
        assert chat(url, key).status_code == 200 and chat(url, new, "/v1/chat/completions").status_code == 200
        assert everywhere(url, key, 401, "key_expired")
        assert set(batch(url, new)) == {(200, None)}
        assert wait_for(lambda: admin("GET", url, f"/admin/keys/{key_id}").json()["usage"]["today"]["requests"] > 5,
                        PROPAGATION)

        # Expiry: two seconds from now, then 401 key_expired on every worker.
        soon = admin("POST", url, "/admin/keys", json={"name": "soon"}).json()
        issued.append(soon["key"])
        later = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        assert admin("PATCH", url, f"/admin/keys/{soon['id']}", json={"expires_at": later}).status_code == 200
        assert everywhere(url, soon["key"], 401, "key_expired")
        assert admin("GET", url, f"/admin/keys/{soon['id']}").json()["state"] == "expired"

        # Revocation: 401 key_revoked on every worker.
        assert admin("DELETE", url, f"/admin/keys/{key_id}").json()["state"] == "revoked"
        assert everywhere(url, new, 401, "key_revoked")

        # The audit trail: one row per action, with a token fingerprint and the address.
        audit = admin("GET", url, "/admin/audit", params={"limit": 100}).json()["data"]
        assert [(r["action"], r["key_id"]) for r in audit] == [
            ("create", key_id), ("create", limited["id"]), ("update", limited["id"]), ("rotate", key_id),
            ("create", soon["id"]), ("update", soon["id"]), ("revoke", key_id)]
        assert {r["actor"] for r in audit} == {audit[0]["actor"]} and audit[0]["actor"].startswith("admin:")
        assert {r["address"] for r in audit} == {ADMIN_ADDRESS}

        # No CORS on admin routes, whatever CORS_ORIGINS says; the client routes still answer the origin.
        got = admin("GET", url, "/admin/keys", headers={"Origin": ORIGIN})
        assert got.status_code == 200 and not [h for h in got.headers if h.lower().startswith("access-control-")]
        preflight = requests.options(url + "/admin/keys", timeout=10, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 405
        assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]
        assert requests.options(url + "/chat", timeout=10, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST"}).headers["Access-Control-Allow-Origin"] == ORIGIN

        # A wrong token is 401; repeated, the address is throttled (the count is shared by the workers).
        wrong = {"Authorization": "Bearer wrong-admin-token-0123456789"}
        for _ in range(4):
            refused = admin("GET", url, "/admin/keys", headers={**wrong, "Connection": "close"})
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_admin_token"
        throttled = admin("GET", url, "/admin/keys")
        assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "too_many_auth_failures"
        assert admin("GET", url, "/admin/keys", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 200
        # Client keys are counted apart, even from the throttled address.
        assert chat(url, limited["key"]).status_code == 429
        assert requests.post(url + "/chat", json={"prompt": "hi"}, timeout=30, headers={
            "Authorization": f"Bearer {new}", "X-Forwarded-For": ADMIN_ADDRESS}).json()["error"]["code"] == "key_revoked"
        log = server.output()

    assert log.count("admin: create key") == 3 and "admin: rotate key" in log and "admin: revoke key" in log
    leaked = [secret for secret in (*issued, ADMIN_TOKEN, HASH_SECRET) if secret in log]
    assert leaked == []
    assert "Traceback" not in log


def test_without_admin_token_the_admin_api_is_absent(tmp_path):
    with LiveServer(workers=2, AUTH_MODE="keys", KEY_HASH_SECRET=HASH_SECRET,
                    DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite") as server:
        for method, path in (("POST", "/admin/keys"), ("GET", "/admin/keys"), ("GET", "/admin/audit"),
                             ("DELETE", "/admin/keys/1"), ("OPTIONS", "/admin/keys")):
            resp = requests.request(method, server.url + path, headers=ADMIN, json={}, timeout=10)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", (method, path)
        paths = requests.get(server.url + "/openapi.json", timeout=10).json()["paths"]
        assert not [p for p in paths if p.startswith("/admin")]
