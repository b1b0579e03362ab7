"""Multi-turn /chat on SQLite and PostgreSQL: history sent upstream, turns stored filtered, usage recorded."""
from __future__ import annotations

import json
import threading

import responses
from conftest import UPSTREAM
from dbfixtures import raw_rows
from support import completion

from app.core.estimate import estimate_messages
from app.core.turns import ChatTurns

URL = UPSTREAM + "/chat/completions"


def history(store, conversation, budget):
    """What /chat sends upstream of ``conversation`` within ``budget`` tokens."""
    return ChatTurns(None, store, history_budget=budget).history(conversation)


def turn(store, conversation, n):
    """Append turn ``n`` with recognisable texts."""
    store.append_turn(conversation, f"question {n}", f"answer {n}", model="gpt-4o-mini", finish_reason="stop",
                      filter_action="none")


def remote_client(db_app, **env):
    app = db_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM, **env)
    return app, app.test_client()


@responses.activate
def test_three_turns_send_the_trimmed_history_each_time(db_app):
    # Room for the system prompt and about two short turns: the third call must drop the first turn.
    app, client = remote_client(db_app, HISTORY_TOKEN_BUDGET=40)
    for reply in ("First answer.", "Second answer.", "Third answer."):
        responses.post(URL, json=completion(reply))
    first = client.post("/chat", json={"prompt": "Question one?", "system": "Be brief."}).get_json()
    conv = first["conversation_id"]
    client.post("/chat", json={"prompt": "Question two?", "conversation_id": conv})
    client.post("/chat", json={"prompt": "Question three?", "conversation_id": conv})
    sent = [json.loads(call.request.body)["messages"] for call in responses.calls]
    assert sent[0] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question one?"}]
    assert sent[1] == [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "Question one?"},
                       {"role": "assistant", "content": "First answer."},
                       {"role": "user", "content": "Question two?"}]
    assert sent[2][0] == {"role": "system", "content": "Be brief."}
    assert sent[2][-1] == {"role": "user", "content": "Question three?"}
    assert {"role": "user", "content": "Question one?"} not in sent[2]  # trimmed: oldest turn first to go
    assert sent[2][-3:-1] == [{"role": "user", "content": "Question two?"},
                              {"role": "assistant", "content": "Second answer."}]
    transcript = client.get(f"/conversations/{conv}").get_json()
    assert [m["content"] for m in transcript["messages"]] == [
        "Question one?", "First answer.", "Question two?", "Second answer.", "Question three?", "Third answer."]


def test_replies_are_stored_as_filtered_and_prompts_as_redacted(db_app):
    app = db_app(PROMPT_REDACT="card")
    client = app.test_client()
    body = client.post("/chat", json={"prompt": "echo: card 4111 1111 1111 1111, mail me at jo@example.com"}).get_json()
    assert body["reply"] == "card [CARD], mail me at [EMAIL]"
    messages = client.get(f"/conversations/{body['conversation_id']}").get_json()["messages"]
    assert messages[0]["content"] == "echo: card [CARD], mail me at jo@example.com"
    assert messages[1]["content"] == "card [CARD], mail me at [EMAIL]"
    raw = repr(raw_rows(app, "SELECT content FROM messages"))
    assert "4111" not in raw and "jo@example.com" not in raw and "[EMAIL]" not in raw  # encrypted at rest


def test_concurrent_turns_are_neither_lost_nor_interleaved(db_app):
    app = db_app()
    client = app.test_client()
    conv = client.post("/chat", json={"prompt": "echo: start"}).get_json()["conversation_id"]
    errors = []

    def talk(who: str):
        local = app.test_client()
        for i in range(8):
            resp = local.post("/chat", json={"prompt": f"echo: {who}-{i}", "conversation_id": conv})
            if resp.status_code != 200:
                errors.append(resp.status_code)

    threads = [threading.Thread(target=talk, args=(name,)) for name in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    messages = client.get(f"/conversations/{conv}").get_json()["messages"]
    assert len(messages) == 2 * (1 + 3 * 8)
    pairs = list(zip(messages[::2], messages[1::2]))
    assert all(u["role"] == "user" and a["role"] == "assistant" for u, a in pairs)
    assert all(u["content"] == "echo: " + a["content"] for u, a in pairs)
    for who in "abc":
        order = [a["content"] for _, a in pairs if a["content"].startswith(who + "-")]
        assert order == [f"{who}-{i}" for i in range(8)]


def test_streamed_turns_are_stored_and_continue(db_app):
    app = db_app(OFFLINE_STREAM_DELAY=0)
    client = app.test_client()
    body = client.post("/chat", json={"prompt": "echo: streamed hello", "stream": True}).get_data(as_text=True)
    final = json.loads([line for line in body.splitlines() if '"finish_reason"' in line][0][len("data: "):])
    conv = final["conversation_id"]
    again = client.post("/chat", json={"prompt": "What did I say?", "conversation_id": conv}).get_json()
    assert again["conversation_id"] == conv
    assert "message 2" in again["reply"]  # the offline model counts the user turns it was sent
    messages = client.get(f"/conversations/{conv}").get_json()["messages"]
    assert [m["content"] for m in messages[:2]] == ["echo: streamed hello", "streamed hello"]


def test_a_failed_call_stores_no_turn(db_app):
    with responses.RequestsMock() as mock:
        app, client = remote_client(db_app, UPSTREAM_MAX_RETRIES=0)
        mock.post(URL, json=completion("ok"))
        conv = client.post("/chat", json={"prompt": "hi"}).get_json()["conversation_id"]
        mock.replace(responses.POST, URL, status=500)
        assert client.post("/chat", json={"prompt": "again", "conversation_id": conv}).status_code == 502
    assert len(client.get(f"/conversations/{conv}").get_json()["messages"]) == 2
    assert raw_rows(app, "SELECT COUNT(*) FROM conversations") == [(1,)]


def test_an_erased_conversation_cannot_be_continued(db_app):
    client = db_app().test_client()
    conv = client.post("/chat", json={"prompt": "hi"}).get_json()["conversation_id"]
    assert client.delete(f"/conversations/{conv}").status_code in (200, 204)
    resp = client.post("/chat", json={"prompt": "hi", "conversation_id": conv})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "conversation_not_found"


def test_usage_is_recorded_for_both_doors_streamed_or_not(db_app):
    app = db_app(OFFLINE_STREAM_DELAY=0)
    client = app.test_client()
    v1 = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    client.post("/chat", json={"prompt": "hi"})
    client.post("/chat", json={"prompt": "hi", "stream": True}).get_data()
    client.post("/v1/chat/completions", json=v1)
    client.post("/v1/chat/completions", json={**v1, "stream": True}).get_data()
    app.extensions["chatgate"].ledger.flush()
    rows = raw_rows(app, "SELECT endpoint, stream, status, prompt_tokens > 0, completion_tokens > 0 "
                         + "FROM usage ORDER BY id")
    assert [(r[0], bool(r[1]), r[2], bool(r[3]), bool(r[4])) for r in rows] == [
        ("/chat", False, 200, True, True), ("/chat", True, 200, True, True),
        ("/v1/chat/completions", False, 200, True, True), ("/v1/chat/completions", True, 200, True, True)]
    totals = client.get("/usage").get_json()
    assert sum(day["requests"] for day in totals["data"]) == 4


# --- history within the token budget


def test_history_keeps_the_system_prompt_and_drops_whole_oldest_turns(db_app):
    store = db_app().extensions["chatgate"].conversations
    conv = store.open("alice", None, "S" * 300)
    for n in range(1, 6):
        turn(store, conv, n)
    everything = history(store, conv, 10_000)
    assert [m["role"] for m in everything] == ["system"] + ["user", "assistant"] * 5
    assert everything[1]["content"] == "question 1" and everything[-1]["content"] == "answer 5"
    # Just enough for the system prompt and the two newest turns.
    budget = estimate_messages([everything[0]] + everything[-4:])
    trimmed = history(store, conv, budget)
    assert trimmed == [everything[0]] + everything[-4:]
    assert history(store, conv, budget - 1) == [everything[0]] + everything[-2:]
    # The system prompt stays even when it alone is over budget.
    assert history(store, conv, 1) == [everything[0]]


def test_history_of_a_long_conversation_without_system(db_app):
    store = db_app().extensions["chatgate"].conversations
    conv = store.open("alice", None, None)
    for n in range(1, 81):
        turn(store, conv, n)
    sent = history(store, conv, 100_000)
    assert len(sent) == 160 and sent[0] == {"role": "user", "content": "question 1"}
    assert all(h["content"].endswith(str((i // 2) + 1)) for i, h in enumerate(sent))
    assert history(store, conv, 0) == []
