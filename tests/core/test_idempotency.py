"""Idempotency-Key on /chat: a retried turn gets its stored reply, never a second stored turn (SQLite, PostgreSQL)."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from dbfixtures import identify_clients, raw_rows

from app.errors import StorageUnavailable
from app.storage.conversations import ConversationStore
from app.storage.tables import utcnow

KEY = "5f0c6a1e-2b7d-4c1a-9e8f-0a1b2c3d4e5f"


@pytest.fixture
def app(db_app):
    """A testing app on the parametrised database; X-Test-Client picks the caller."""
    return identify_clients(db_app())


def chat(client, body: dict, key: str | None = KEY, who: str = "alice"):
    headers = {"X-Test-Client": who}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/chat", json=body, headers=headers)


def turns(app) -> int:
    return raw_rows(app, "SELECT COUNT(*) FROM messages")[0][0] // 2


def test_a_retry_whose_first_answer_was_lost_gets_the_stored_reply(app, monkeypatch):
    # The commit reached the database; the acknowledgement did not, so the client saw a 503 and retries.
    real_save = ConversationStore.save_turn
    lost = []

    def save_then_lose_the_ack(self, *args, **kwargs):
        result = real_save(self, *args, **kwargs)
        if not lost:
            lost.append(result)
            raise StorageUnavailable()
        return result

    monkeypatch.setattr(ConversationStore, "save_turn", save_then_lose_the_ack)
    client = app.test_client()
    first = chat(client, {"prompt": "Hello"})
    assert first.status_code == 503 and first.get_json()["error"]["code"] == "database_unavailable"
    retry = chat(client, {"prompt": "Hello"})
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    body = retry.get_json()
    assert body["conversation_id"] == lost[0] and body["reply"].startswith("[offline model]")
    assert turns(app) == 1


def test_the_same_key_and_body_answer_the_same_reply_once_stored(app):
    client = app.test_client()
    first = chat(client, {"prompt": "Hello", "temperature": 0.5})
    again = chat(client, {"temperature": 0.5, "prompt": "Hello"})  # same JSON, other key order
    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert turns(app) == 1
    ledger = app.extensions["chatgate"].ledger
    assert sum(row["requests"] for row in ledger.totals("alice", 1)) == 1  # the replay cost nothing upstream


def test_the_same_key_with_another_body_is_422(app):
    client = app.test_client()
    assert chat(client, {"prompt": "Hello"}).status_code == 200
    resp = chat(client, {"prompt": "Goodbye"})
    assert resp.status_code == 422
    assert resp.get_json()["error"] == {
        "message": "this Idempotency-Key was used for a different request body; use a new key for a new request",
        "type": "invalid_request_error", "param": None, "code": "idempotency_key_reused"}
    assert resp.headers["x-should-retry"] == "false" and turns(app) == 1


def test_keys_belong_to_their_caller(app):
    client = app.test_client()
    mine = chat(client, {"prompt": "Hello"}).get_json()
    theirs = chat(client, {"prompt": "Hello"}, who="bob")
    assert theirs.status_code == 200 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["conversation_id"] != mine["conversation_id"] and turns(app) == 2


def test_without_a_key_every_request_is_a_new_turn(app):
    client = app.test_client()
    assert chat(client, {"prompt": "Hello"}, key=None).status_code == 200
    assert chat(client, {"prompt": "Hello"}, key=None).status_code == 200
    assert turns(app) == 2


def test_a_continued_conversation_is_replayed_too(app):
    client = app.test_client()
    conversation = chat(client, {"prompt": "Hello"}, key=None).get_json()["conversation_id"]
    body = {"prompt": "And then?", "conversation_id": conversation}
    first = chat(client, body, key="turn-2")
    assert chat(client, body, key="turn-2").get_json() == first.get_json()
    messages = client.get(f"/conversations/{conversation}", headers={"X-Test-Client": "alice"}).get_json()["messages"]
    assert [m["content"] for m in messages][::2] == ["Hello", "And then?"]


def test_a_streamed_turn_is_replayed_as_a_stream(app):
    client = app.test_client()
    body = {"prompt": "Hello", "stream": True}

    def events(resp):
        text = resp.get_data(as_text=True)
        return [line[6:] for line in text.splitlines() if line.startswith("data: ")]

    first = events(chat(client, body))
    replay = chat(client, body)
    assert replay.headers["Idempotent-Replayed"] == "true"
    again = events(replay)
    assert again[-1] == "[DONE]" and json.loads(again[-2]) == json.loads(first[-2])
    assert "".join(json.loads(e)["delta"] for e in again[:-2]) == "".join(json.loads(e)["delta"] for e in first[:-2])
    assert chat(client, {"prompt": "Hello"}).status_code == 422  # the body differs: stream is part of it
    assert turns(app) == 1


def test_concurrent_duplicates_store_one_turn(app):
    client = app.test_client()
    answers: list = []

    def send():
        answers.append(chat(app.test_client(), {"prompt": "Hello"}, key="race"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.get_json()["conversation_id"] for a in answers}) == 1
    assert turns(app) == 1
    assert chat(client, {"prompt": "Hello"}, key="race").headers["Idempotent-Replayed"] == "true"


def test_keys_expire_and_are_purged(db_app):
    app = identify_clients(db_app(IDEMPOTENCY_TTL="1h"))
    client = app.test_client()
    chat(client, {"prompt": "Hello"})
    store = app.extensions["chatgate"].conversations
    assert store.purge_idempotency_keys() == 0
    store._clock = lambda: utcnow() + timedelta(hours=2)
    fresh = chat(client, {"prompt": "Goodbye"})  # the key expired: a new request, not a 422
    assert fresh.status_code == 200 and turns(app) == 2
    store._clock = lambda: utcnow() + timedelta(hours=4)
    out = app.test_cli_runner().invoke(args=["db", "purge-expired"])
    assert out.exit_code == 0 and "and 1 expired idempotency key" in out.output


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 256, "tab\there"])
def test_a_malformed_key_is_400(app, key):
    resp = chat(app.test_client(), {"prompt": "Hello"}, key=key)
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == "Idempotency-Key"
    assert turns(app) == 0


def test_erasing_a_conversation_forgets_its_keys(app):
    client = app.test_client()
    conversation = chat(client, {"prompt": "Hello"}).get_json()["conversation_id"]
    assert client.delete(f"/conversations/{conversation}", headers={"X-Test-Client": "alice"}).status_code == 200
    assert raw_rows(app, "SELECT COUNT(*) FROM idempotency_keys") == [(0,)]
    again = chat(client, {"prompt": "Hello"})
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
