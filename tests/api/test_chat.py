"""POST /chat end to end inside the process: offline model, filter, prompt guard."""
from __future__ import annotations

import json

import pytest
import responses
from conftest import UPSTREAM
from support import completion

URL = UPSTREAM + "/chat/completions"


def ask(client, prompt, **body):
    return client.post("/chat", json={"prompt": prompt, **body})


def test_offline_reply_has_the_contract_shape(client):
    body = ask(client, "Hello").get_json()
    assert list(body) == ["id", "conversation_id", "model", "reply", "finish_reason", "usage", "filter"]
    assert body["reply"].startswith("[offline model]")
    assert body["model"] == "gpt-4o-mini" and body["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["filter"] == {"action": "none", "findings": []}


def test_offline_replies_are_deterministic(client):
    first, second = ask(client, "Tell me about the solar system."), ask(client, "Tell me about the solar system.")
    assert first.get_json()["reply"] == second.get_json()["reply"]


def test_system_prompt_and_parameters_reach_the_model(client):
    body = ask(client, "Tell me about Jupiter", system="Answer like a pirate", max_tokens=3).get_json()
    assert body["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("said, shown, kind", [
    ("write to jane.doe@example.com", "write to [EMAIL]", "email"),
    ("card 4111 1111 1111 1111 ok", "card [CARD] ok", "card"),
    ("call +1-202-555-0143 now", "call [PHONE] now", "phone"),
    ("key sk-proj-" + "abcdefghijklmnopqrstuvwxyz012345", "key [SECRET]", "secret"),  # fake, split on purpose
])
def test_pii_in_replies_is_redacted(make_app, said, shown, kind):
    # Prompt redaction off, so the PII reaches the model and comes back in the reply.
    client = make_app(PROMPT_REDACT="none").test_client()
    body = ask(client, "echo: " + said).get_json()
    assert body["reply"] == shown
    assert body["filter"] == {"action": "redacted", "findings": [{"type": kind, "count": 1}]}


def test_hard_negatives_pass_untouched(client):
    text = "Order #123456789 shipped 2024-05-17 with version 3.11.7 for $19.99"
    body = ask(client, "echo: " + text).get_json()
    assert body["reply"] == text and body["filter"]["action"] == "none"


def test_prompt_pii_is_redacted_before_the_model_sees_it(client):
    body = ask(client, "echo: card 4111 1111 1111 1111 ok").get_json()
    assert body["reply"] == "card [CARD] ok" and body["filter"]["action"] == "none"


@responses.activate
def test_blocked_reply_is_withheld(make_app, tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("# test list\nzorblax\n")
    client = make_app(BLOCKLIST_FILE=str(blocklist), OPENAI_API_KEY="sk-test-0123456789",
                      OPENAI_BASE_URL=UPSTREAM).test_client()
    responses.post(URL, json=completion("you are a z0rbl@x indeed"))
    body = client.post("/chat", json={"prompt": "hello"}).get_json()
    assert body["reply"] == "" and body["finish_reason"] == "content_filter"
    assert body["filter"]["action"] == "blocked"
    assert "zorblax" not in json.dumps(body)


def test_blocked_prompt_is_refused(make_app, tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("zorblax\n")
    client = make_app(BLOCKLIST_FILE=str(blocklist)).test_client()
    resp = client.post("/chat", json={"prompt": "say Z.O.R.B.L.A.X"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "prompt_blocked"


def test_bad_blocklist_file_stops_start_up(make_app, tmp_path):
    from config import ConfigError

    blocklist = tmp_path / "block.txt"
    blocklist.write_text("re:(unclosed\n")
    with pytest.raises(ConfigError, match="^BLOCKLIST_FILE: "):
        make_app(BLOCKLIST_FILE=str(blocklist))


@responses.activate
def test_high_risk_pii_is_removed_from_prompts_before_they_leave(remote):
    responses.post(URL, json=completion())
    ask(remote, "my card is 4111-1111-1111-1111, ssn 123-45-6789, mail a@b.co", system="key AKIA" + "ABCDEFGHIJKLMNOP")
    sent = json.loads(responses.calls[0].request.body)["messages"]
    assert sent[0]["content"] == "key [SECRET]"
    assert sent[1]["content"] == "my card is [CARD], ssn [SSN], mail a@b.co"


@responses.activate
def test_prompt_redaction_is_configurable(make_app):
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM,
                      PROMPT_REDACT="email").test_client()
    responses.post(URL, json=completion())
    ask(client, "card 4111 1111 1111 1111 mail a@b.co")
    assert json.loads(responses.calls[0].request.body)["messages"][0]["content"] == "card 4111 1111 1111 1111 mail [EMAIL]"


@responses.activate
def test_reply_redaction_is_configurable(make_app):
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM,
                      REPLY_REDACT="none").test_client()
    responses.post(URL, json=completion("mail a@b.co"))
    assert ask(client, "hi").get_json()["reply"] == "mail a@b.co"


MODERATION = UPSTREAM + "/moderations"


@responses.activate
def test_moderation_flags_prompts_and_replies(make_app):
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM,
                      MODERATION="openai").test_client()
    responses.post(MODERATION, json={"results": [{"flagged": True}]})
    resp = ask(client, "something nasty")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "prompt_flagged"
    responses.replace(responses.POST, MODERATION, json={"results": [{"flagged": False}]})
    responses.post(URL, json=completion("fine"))
    assert ask(client, "hello").get_json()["reply"] == "fine"


@responses.activate
def test_moderation_flagged_reply_is_blocked(make_app):
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM,
                      MODERATION="openai").test_client()
    responses.post(MODERATION, json={"results": [{"flagged": False}]})
    responses.post(MODERATION, json={"results": [{"flagged": True}]})
    responses.post(URL, json=completion("a nasty reply"))
    body = ask(client, "hello").get_json()
    assert body["reply"] == "" and body["finish_reason"] == "content_filter"
    assert {"type": "moderation", "count": 1} in body["filter"]["findings"]


@pytest.mark.parametrize("mode, status", [("closed", 503), ("open", 200)])
@responses.activate
def test_moderation_outage_follows_the_fail_mode(make_app, mode, status):
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM, MODERATION="openai",
                      MODERATION_FAIL=mode, UPSTREAM_MAX_RETRIES=0).test_client()
    responses.post(MODERATION, status=500)
    responses.post(URL, json=completion("ok"))
    resp = ask(client, "hello")
    assert resp.status_code == status
    if status == 503:
        assert resp.get_json()["error"]["code"] == "moderation_unavailable"


def test_moderation_needs_a_real_upstream():
    from config import ConfigError, load_config

    with pytest.raises(ConfigError, match="^MODERATION: "):
        load_config({"APP_ENV": "testing", "MODERATION": "openai"})
