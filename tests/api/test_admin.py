"""The admin API's doors: absent without ADMIN_TOKEN, the token checked and throttled, no CORS, the one error shape."""
from __future__ import annotations

import logging

import pytest

TOKEN = "admin-token-" + "t" * 20
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "https://app.example.com"


@pytest.fixture
def admin_app(make_app):
    return make_app(AUTH_MODE="keys", ADMIN_TOKEN=TOKEN, CORS_ORIGINS=ORIGIN, AUTH_FAILURE_LIMIT="3/minute")


@pytest.fixture
def admin(admin_app):
    return admin_app.test_client()


def make_key(client, **fields):
    resp = client.post("/admin/keys", json=fields, headers=ADMIN)
    assert resp.status_code == 201, resp.json
    return resp.json


ROUTES = [("post", "/admin/keys"), ("get", "/admin/keys"), ("get", "/admin/keys/1"), ("patch", "/admin/keys/1"),
          ("post", "/admin/keys/1/rotate"), ("delete", "/admin/keys/1"), ("get", "/admin/audit"),
          ("options", "/admin/keys")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_without_admin_token_every_admin_route_is_the_ordinary_404(make_app, method, path):
    client = make_app(AUTH_MODE="keys").test_client()
    resp = getattr(client, method)(path, json={}, headers=ADMIN)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    assert "/admin/keys" not in client.get("/openapi.json").json["paths"]


@pytest.mark.parametrize("method, path", ROUTES[:-1])
@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                    f"{TOKEN}"])
def test_a_missing_or_wrong_admin_token_is_401(admin, method, path, header):
    resp = getattr(admin, method)(path, json={}, headers={"Authorization": header} if header else {})
    assert resp.status_code == 401
    assert resp.json["error"] == {"message": "the admin API needs Authorization: Bearer <ADMIN_TOKEN>",
                                  "type": "authentication_error", "param": None, "code": "invalid_admin_token"}
    assert TOKEN not in resp.get_data(as_text=True)


def test_a_client_key_is_no_admin_token_and_the_admin_token_is_no_client_key(admin):
    key = make_key(admin, name="alice")["key"]
    assert admin.get("/admin/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    resp = admin.post("/chat", json={"prompt": "hi"}, headers=ADMIN)
    assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_api_key"


def test_repeated_failures_from_one_address_are_throttled_even_with_the_right_token(admin):
    for _ in range(3):
        assert admin.get("/admin/keys", headers={"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
    resp = admin.get("/admin/keys", headers=ADMIN)
    assert resp.status_code == 429 and resp.json["error"]["code"] == "too_many_auth_failures"
    assert int(resp.headers["Retry-After"]) >= 1
    # Another address is not affected, and client keys are counted apart.
    assert admin.get("/admin/keys", headers=ADMIN, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


def test_admin_routes_never_answer_cross_origin(admin):
    resp = admin.get("/admin/keys", headers={**ADMIN, "Origin": ORIGIN})
    assert resp.status_code == 200
    assert not [h for h in resp.headers.keys() if h.lower().startswith("access-control-")]
    pre = admin.options("/admin/keys", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "Authorization"})
    assert pre.status_code == 405 and not [h for h in pre.headers.keys() if h.lower().startswith("access-control-")]
    # The client routes still do, so the refusal is the admin API's own.
    chat = admin.options("/chat", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert chat.headers.get("Access-Control-Allow-Origin") == ORIGIN


def test_the_full_flow_and_the_audit_trail(admin, caplog):
    with caplog.at_level(logging.INFO, logger="app.access.key_admin"):
        made = make_key(admin, name="bob", rate_limit="5/minute", max_streams=2, budget_usd_day=1.25,
                        expires_at="2031-01-01T00:00:00+01:00", metadata={"user": "42", "plan": "pro"})
        key_id, key = made["id"], made["key"]
        assert made["prefix"] == key[:10] and made["state"] == "active" and made["budget_usd_day"] == 1.25
        assert made["expires_at"] == "2030-12-31T23:00:00.000Z" and made["metadata"] == {"user": "42", "plan": "pro"}
        assert admin.post("/chat", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {key}"}).status_code == 200

        shown = admin.get(f"/admin/keys/{key_id}", headers=ADMIN).json
        assert "key" not in shown and shown["usage"]["today"]["requests"] == 1
        assert shown["usage"]["month"]["total_tokens"] == shown["usage"]["today"]["total_tokens"] > 0
        patched = admin.patch(f"/admin/keys/{key_id}", json={"rate_limit": None, "daily_token_quota": 900000,
                                                             "metadata": {"user": "43"}}, headers=ADMIN).json
        assert (patched["rate_limit"], patched["daily_token_quota"], patched["metadata"]) == (None, 900000, {"user": "43"})
        rotated = admin.post(f"/admin/keys/{key_id}/rotate", json={"grace_seconds": 60}, headers=ADMIN).json
        assert rotated["id"] == key_id and rotated["key"] != key and rotated["previous_key_expires_at"]
        for k in (key, rotated["key"]):
            assert admin.post("/chat", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {k}"}).status_code == 200
        # Usage stays with the id across the rotation.
        assert admin.get(f"/admin/keys/{key_id}", headers=ADMIN).json["usage"]["today"]["requests"] == 3
        assert admin.delete(f"/admin/keys/{key_id}", headers=ADMIN).json["state"] == "revoked"
        refused = admin.post("/chat", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {rotated['key']}"})
        assert refused.status_code == 401 and refused.json["error"]["code"] == "key_revoked"

    audit = admin.get("/admin/audit", headers=ADMIN).json
    assert [(r["action"], r["key_id"]) for r in audit["data"]] == [("create", key_id), ("update", key_id),
                                                                   ("rotate", key_id), ("revoke", key_id)]
    row = audit["data"][0]
    assert row["actor"].startswith("admin:") and row["address"] == "127.0.0.1" and TOKEN not in row["actor"]
    assert row["detail"] == "budget_usd_day,expires_at,max_streams,metadata,name,rate_limit"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("admin: ")]
    assert len(lines) == 4 and lines[0].startswith(f"admin: create key {key_id} by admin:")
    text = "\n".join(lines) + admin.get("/admin/audit", headers=ADMIN).get_data(as_text=True)
    assert key not in text and rotated["key"] not in text and TOKEN not in text


def test_lists_page_and_filter_by_metadata_and_never_show_a_key(admin):
    keys = [make_key(admin, name=f"k{i}", metadata={"user": str(i % 2)}) for i in range(5)]
    first = admin.get("/admin/keys?limit=2", headers=ADMIN).json
    assert [k["name"] for k in first["data"]] == ["k0", "k1"] and first["has_more"] is True
    rest = admin.get(f"/admin/keys?limit=10&after={first['next_after']}", headers=ADMIN).json
    assert [k["name"] for k in rest["data"]] == ["k2", "k3", "k4"] and rest["next_after"] is None
    odd = admin.get("/admin/keys?metadata.user=1", headers=ADMIN).json
    assert [k["name"] for k in odd["data"]] == ["k1", "k3"]
    body = admin.get("/admin/keys?limit=100", headers=ADMIN).get_data(as_text=True)
    assert not [k for k in keys if k["key"] in body]
    audit = admin.get(f"/admin/audit?key_id={keys[2]['id']}", headers=ADMIN).json["data"]
    assert [(r["action"], r["key_id"]) for r in audit] == [("create", keys[2]["id"])]


@pytest.mark.parametrize("body, param", [
    ({"rate_limit": "fast"}, "rate_limit"),
    ({"rate_limit": "0/minute"}, "rate_limit"),
    ({"daily_token_quota": 0}, "daily_token_quota"),
    ({"daily_token_quota": True}, "daily_token_quota"),
    ({"max_streams": -1}, "max_streams"),
    ({"budget_usd_day": 0}, "budget_usd_day"),
    ({"budget_usd_month": 0.0000001}, "budget_usd_month"),
    ({"budget_usd_day": "5"}, "budget_usd_day"),
    ({"expires_at": "tomorrow"}, "expires_at"),
    ({"expires_at": "2031-01-01T00:00:00"}, "expires_at"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"metadata": {"user": 42}}, "metadata.user"),
    ({"metadata": {"bad name": "x"}}, "metadata"),
    ({"metadata": {"u": "x" * 257}}, "metadata.u"),
    ({"metadata": {f"m{i}": "x" for i in range(17)}}, "metadata"),
    ({"name": "has space"}, "name"),
    ({"key": "cg-mine"}, "key"),
])
def test_invalid_fields_are_400_naming_the_field(admin, body, param):
    resp = admin.post("/admin/keys", json=body, headers=ADMIN)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["type"] == "invalid_request_error" and resp.json["error"]["param"] == param
    made = make_key(admin, name="target")
    patched = admin.patch(f"/admin/keys/{made['id']}", json=body, headers=ADMIN)
    assert patched.status_code == 400 and patched.json["error"]["param"] == param


@pytest.mark.parametrize("method, path, body", [
    ("get", "/admin/keys/999", None), ("patch", "/admin/keys/999", {"rate_limit": "1/minute"}),
    ("post", "/admin/keys/999/rotate", {}), ("delete", "/admin/keys/999", None), ("get", "/admin/keys/abc", None),
])
def test_an_unknown_id_is_404(admin, method, path, body):
    resp = getattr(admin, method)(path, json=body, headers=ADMIN) if body is not None \
        else getattr(admin, method)(path, headers=ADMIN)
    assert resp.status_code == 404 and resp.json["error"]["type"] == "invalid_request_error"


def test_conflicts_grace_bounds_and_empty_changes(admin):
    made = make_key(admin, name="dup")
    assert admin.post("/admin/keys", json={"name": "dup"}, headers=ADMIN).json["error"]["code"] == "duplicate"
    for grace in (-1, 7 * 86400 + 1, "60", True):
        resp = admin.post(f"/admin/keys/{made['id']}/rotate", json={"grace_seconds": grace}, headers=ADMIN)
        assert resp.status_code == 400 and resp.json["error"]["param"] == "grace_seconds"
    # No body at all is no grace.
    assert admin.post(f"/admin/keys/{made['id']}/rotate", headers=ADMIN).status_code == 200
    assert admin.patch(f"/admin/keys/{made['id']}", json={}, headers=ADMIN).json["error"]["code"] == "empty_update"
    assert admin.patch(f"/admin/keys/{made['id']}", json={"name": None}, headers=ADMIN).json["error"]["param"] == "name"
    assert admin.delete(f"/admin/keys/{made['id']}", headers=ADMIN).status_code == 200
    assert admin.delete(f"/admin/keys/{made['id']}", headers=ADMIN).json["state"] == "revoked"
    for resp in (admin.patch(f"/admin/keys/{made['id']}", json={"max_streams": 1}, headers=ADMIN),
                 admin.post(f"/admin/keys/{made['id']}/rotate", json={}, headers=ADMIN)):
        assert resp.status_code == 409 and resp.json["error"]["code"] == "key_revoked"
        assert resp.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("query, param", [("limit=0", "limit"), ("limit=101", "limit"), ("after=x", "after"),
                                          ("cursor=1", "cursor"), ("limit=1&limit=2", "limit")])
def test_bad_paging_is_400(admin, query, param):
    resp = admin.get(f"/admin/keys?{query}", headers=ADMIN)
    assert resp.status_code == 400 and resp.json["error"]["param"] == param


def test_admin_answers_are_never_cached(admin):
    assert make_key(admin) and admin.get("/admin/keys", headers=ADMIN).headers["Cache-Control"] == "no-store"
