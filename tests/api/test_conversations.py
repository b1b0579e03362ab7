"""GET /conversations, GET/DELETE /conversations/<id> and GET /usage, on SQLite and PostgreSQL."""
from __future__ import annotations

import re

import pytest
from dbfixtures import identify_clients, raw_rows
from flask import g

from app.access.keys import Caller
from app.api.admission import current_caller

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture
def app(db_app):
    """A testing app on the parametrised database; X-Test-Client picks the caller."""
    return identify_clients(db_app())


@pytest.fixture
def store(app):
    """That app's conversation store."""
    return app.extensions["chatgate"].conversations


def as_(name: str) -> dict:
    """Headers that make the request come from client ``name``."""
    return {"X-Test-Client": name}


def conversation(store, client="alice", turns=1, system="Be kind.") -> str:
    """A stored conversation with ``turns`` turns; returns its id."""
    conv = store.open(client, None, system)
    for n in range(turns):
        store.append_turn(conv, f"hello {n}", f"hi {n}", model="gpt-4o-mini", finish_reason="stop",
                          filter_action="none")
    return conv.id


def assert_error(resp, status, code=None, param=None):
    """The one error shape, with the given status (and code/param when given)."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS
    if code:
        assert body["error"]["code"] == code
    if param:
        assert body["error"]["param"] == param


def test_get_returns_the_transcript(app, store):
    cid = conversation(store, turns=2)
    body = app.test_client().get(f"/conversations/{cid}", headers=as_("alice")).get_json()
    assert set(body) == {"id", "created_at", "updated_at", "system", "messages"}
    assert body["id"] == cid and body["system"] == "Be kind."
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "hello 0"), ("assistant", "hi 0"), ("user", "hello 1"), ("assistant", "hi 1")]
    assert all(ISO.match(m["created_at"]) for m in body["messages"])
    assert ISO.match(body["created_at"]) and body["updated_at"] >= body["created_at"]


def test_the_default_client_is_its_address(app, store):
    cid = conversation(store, client="ip:127.0.0.1")
    client = app.test_client()
    assert client.get(f"/conversations/{cid}").status_code == 200
    assert_error(client.get(f"/conversations/{cid}", environ_base={"REMOTE_ADDR": "127.0.0.2"}), 404)
    assert_error(client.get(f"/conversations/{cid}", headers=as_("alice")), 404, "conversation_not_found")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.7"}):
        assert current_caller().id == "ip:198.51.100.7"
        g.caller = Caller(id="key_123", limit_key="key:123")
        assert current_caller().id == "key_123"


def test_other_clients_get_404_on_get_and_delete(app, store):
    cid = conversation(store)
    client = app.test_client()
    assert_error(client.get(f"/conversations/{cid}", headers=as_("bob")), 404, "conversation_not_found",
                 "conversation_id")
    assert_error(client.delete(f"/conversations/{cid}", headers=as_("bob")), 404, "conversation_not_found")
    assert client.get("/conversations", headers=as_("bob")).get_json() == {"data": [], "next_cursor": None}
    assert client.get(f"/conversations/{cid}", headers=as_("alice")).status_code == 200


@pytest.mark.parametrize("path", ["/conversations/nope", "/conversations/" + "a" * 65, "/conversations/a.b",
                                  "/conversations/%20"])
def test_unknown_and_malformed_ids_are_404(app, path):
    assert_error(app.test_client().get(path, headers=as_("alice")), 404)
    assert_error(app.test_client().delete(path, headers=as_("alice")), 404)


def test_delete_erases_the_rows(app, store):
    cid = conversation(store, turns=3)
    client = app.test_client()
    resp = client.delete(f"/conversations/{cid}", headers=as_("alice"))
    assert resp.status_code == 200 and resp.get_json() == {"id": cid, "deleted": True}
    assert raw_rows(app, f"SELECT id FROM conversations WHERE id = '{cid}'") == []
    assert raw_rows(app, f"SELECT seq FROM messages WHERE conversation_id = '{cid}'") == []
    assert_error(client.get(f"/conversations/{cid}", headers=as_("alice")), 404)
    assert_error(client.delete(f"/conversations/{cid}", headers=as_("alice")), 404)


def test_continuing_another_clients_conversation_is_404(store):
    cid = conversation(store)
    with pytest.raises(Exception) as err:
        store.open("bob", cid, None)
    assert getattr(err.value, "status", None) == 404


def test_list_pages_newest_first(app, store):
    ids = [conversation(store, turns=n % 2 + 1) for n in range(5)]
    conversation(store, client="bob")
    client = app.test_client()
    first = client.get("/conversations?limit=2", headers=as_("alice")).get_json()
    assert set(first) == {"data", "next_cursor"} and len(first["data"]) == 2
    item = first["data"][0]
    assert set(item) == {"id", "created_at", "updated_at", "turns", "title"}
    assert item["title"] == "hello 0" and item["turns"] == 1
    seen, cursor = [d["id"] for d in first["data"]], first["next_cursor"]
    while cursor:
        page = client.get("/conversations", query_string={"limit": 2, "cursor": cursor},
                          headers=as_("alice")).get_json()
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    default = client.get("/conversations", headers=as_("alice")).get_json()
    assert len(default["data"]) == 5 and default["next_cursor"] is None


@pytest.mark.parametrize("query, param", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
    ("limit=1.5", "limit"), ("limit=", "limit"), ("limit=2&limit=3", "limit"), ("cursor=zzz", "cursor"),
    ("cursor=", "cursor"), ("page=2", "page"), ("limit=%EF%BC%93", "limit"),
])
def test_list_rejects_bad_query_parameters(app, query, param):
    assert_error(app.test_client().get(f"/conversations?{query}"), 400, param=param)


def test_get_and_delete_take_no_query_parameters(app, store):
    cid = conversation(store)
    assert_error(app.test_client().get(f"/conversations/{cid}?x=1", headers=as_("alice")), 400, "unknown_parameter")
    assert_error(app.test_client().delete(f"/conversations/{cid}?x=1", headers=as_("alice")), 400)
    assert app.test_client().get(f"/conversations/{cid}", headers=as_("alice")).status_code == 200


def test_wrong_methods_are_405(app):
    assert_error(app.test_client().post("/conversations", json={}), 405)
    assert_error(app.test_client().put("/conversations/abc", json={}), 405)
    assert_error(app.test_client().delete("/usage"), 405)


def test_usage_totals_for_the_caller(app):
    ledger = app.extensions["chatgate"].ledger
    for client_id, model, tokens in (("alice", "gpt-4o-mini", (10, 5)), ("alice", "gpt-4o-mini", (1, 1)),
                                     ("alice", "gpt-4o", (3, 4)), ("bob", "gpt-4o", (100, 100))):
        ledger.record(client_id=client_id, model=model, prompt_tokens=tokens[0], completion_tokens=tokens[1],
                      latency_ms=42.0, status=200, filter_action="none", endpoint="/chat", stream=False)
    client = app.test_client()
    body = client.get("/usage", headers=as_("alice")).get_json()
    assert body["days"] == 30
    assert [(r["model"], r["requests"], r["prompt_tokens"], r["completion_tokens"], r["total_tokens"])
            for r in body["data"]] == [("gpt-4o", 1, 3, 4, 7), ("gpt-4o-mini", 2, 11, 6, 17)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r["day"]) for r in body["data"])
    assert client.get("/usage?days=1", headers=as_("carol")).get_json() == {"days": 1, "data": []}


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=x", "days=1&days=2", "since=1"])
def test_usage_rejects_bad_query_parameters(app, query):
    assert_error(app.test_client().get(f"/usage?{query}"), 400)


def test_an_expired_conversation_is_404_over_http(app, store):
    cid = conversation(store)
    from datetime import datetime, timedelta, timezone

    from app.storage.tables import ConversationRow

    with app.extensions["chatgate"].database.session(write=True) as session:
        session.get(ConversationRow, cid).updated_at = datetime.now(timezone.utc) - timedelta(days=40)
    assert_error(app.test_client().get(f"/conversations/{cid}", headers=as_("alice")), 404)
    assert app.test_client().get("/conversations", headers=as_("alice")).get_json()["data"] == []


def test_readyz_includes_the_database(app):
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "checks": {"upstream": "offline", "database": "ok"}}
