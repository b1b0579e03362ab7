"""The thin client against a mocked upstream: status mapping, retries, secrecy."""
from __future__ import annotations

import json
import logging

import pytest
import requests
import responses
from conftest import UPSTREAM, UPSTREAM_KEY
from support import completion

from app.upstream import retry

URL = UPSTREAM + "/chat/completions"


def ask(client, **body):
    return client.post("/chat", json={"prompt": "Hello", **body})


@responses.activate
def test_success_relays_the_filtered_reply_and_usage(remote):
    responses.post(URL, json=completion("The sun is a star."))
    resp = ask(remote, temperature=0.2, max_tokens=50, top_p=0.9, presence_penalty=0.5,
               frequency_penalty=-0.5, system="Be brief.", model="gpt-4o")
    assert resp.status_code == 200
    body = resp.get_json()
    assert isinstance(body.pop("conversation_id"), str)
    assert body == {"id": "chatcmpl-test", "model": "gpt-4o-mini",
                    "reply": "The sun is a star.", "finish_reason": "stop",
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                              "cost_usd": 0.000043},  # gpt-4o: 5 x $2.50/M + 3 x $10/M, rounded up
                    "filter": {"action": "none", "findings": []}}
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": "Hello"}],
                    "temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "presence_penalty": 0.5,
                    "frequency_penalty": -0.5}
    assert responses.calls[0].request.headers["Authorization"] == "Bearer " + UPSTREAM_KEY


@responses.activate
def test_only_configured_url_is_called(remote):
    responses.post(URL, json=completion())
    ask(remote)
    assert [c.request.url for c in responses.calls] == [URL]


@pytest.mark.parametrize("status, ours, code", [
    (401, 502, "upstream_misconfigured"),
    (403, 502, "upstream_misconfigured"),
    (400, 400, "upstream_rejected"),
    (404, 502, "upstream_error"),
    (500, 502, "upstream_error"),
    (502, 502, "upstream_error"),
    (503, 502, "upstream_error"),
    (504, 504, "upstream_timeout"),
    (408, 504, "upstream_timeout"),
    (429, 429, "upstream_rate_limited"),
])
@responses.activate
def test_upstream_status_mapping_never_relays_the_body(remote, status, ours, code, sleeps):
    secret_body = {"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY} internal detail xyzzy"}}
    responses.post(URL, json=secret_body, status=status)
    resp = ask(remote)
    assert resp.status_code == ours
    assert resp.get_json()["error"]["code"] == code
    assert b"xyzzy" not in resp.data and UPSTREAM_KEY.encode() not in resp.data


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
@responses.activate
def test_retryable_statuses_are_retried_then_succeed(remote, status, sleeps):
    responses.post(URL, json={"error": {}}, status=status)
    responses.post(URL, json={"error": {}}, status=status)
    responses.post(URL, json=completion("finally"))
    resp = ask(remote)
    assert resp.status_code == 200 and resp.get_json()["reply"] == "finally"
    assert len(responses.calls) == 3
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0  # 0.5 s doubling, up to 25 % jitter


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@responses.activate
def test_non_retryable_statuses_are_tried_once(remote, status, sleeps):
    responses.post(URL, json={}, status=status)
    ask(remote)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_retries_are_bounded_by_upstream_max_retries(make_app, sleeps):
    app = make_app(OPENAI_API_KEY=UPSTREAM_KEY, OPENAI_BASE_URL=UPSTREAM, UPSTREAM_MAX_RETRIES=4)
    responses.post(URL, json={}, status=500)
    assert ask(app.test_client()).status_code == 502
    assert len(responses.calls) == 5 and len(sleeps) == 4
    assert sleeps[3] <= 4.0


@responses.activate
def test_retry_after_is_honoured(remote, sleeps):
    responses.post(URL, json={}, status=429, headers={"Retry-After": "3"})
    responses.post(URL, json={}, status=429, headers={"retry-after-ms": "250"})
    responses.post(URL, json=completion())
    assert ask(remote).status_code == 200
    assert sleeps == [3.0, 0.25]


@responses.activate
def test_absurd_retry_after_falls_back_to_backoff(remote, sleeps):
    responses.post(URL, json={}, status=503, headers={"Retry-After": "3600"})
    responses.post(URL, json=completion())
    assert ask(remote).status_code == 200
    assert sleeps[0] <= 0.5


@responses.activate
def test_x_should_retry_false_is_respected(remote, sleeps):
    responses.post(URL, json={}, status=500, headers={"x-should-retry": "false"})
    assert ask(remote).status_code == 502
    assert len(responses.calls) == 1


@responses.activate
def test_429_after_retries_carries_retry_after(remote):
    for _ in range(3):
        responses.post(URL, json={}, status=429, headers={"Retry-After": "7"})
    resp = ask(remote)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.get_json()["error"]["type"] == "rate_limit_error"


@responses.activate
def test_connection_errors_are_retried_then_502(remote, sleeps):
    responses.post(URL, body=requests.ConnectionError("refused"))
    responses.post(URL, body=requests.ConnectionError("refused"))
    responses.post(URL, body=requests.ConnectionError("refused"))
    resp = ask(remote)
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_unreachable"
    assert len(sleeps) == 2


@responses.activate
def test_connection_error_then_success(remote):
    responses.post(URL, body=requests.ConnectionError("reset"))
    responses.post(URL, json=completion("ok"))
    assert ask(remote).get_json()["reply"] == "ok"


@responses.activate
def test_read_timeout_is_504_and_not_retried(remote):
    responses.post(URL, body=requests.ReadTimeout("slow"))
    resp = ask(remote)
    assert resp.status_code == 504 and resp.get_json()["error"]["code"] == "upstream_timeout"
    assert len(responses.calls) == 1


@pytest.mark.parametrize("body", [
    "not json at all", "[]", '{"choices": []}', '{"choices": [{"message": {"content": 5}}]}',
    '{"choices": [{"message": {"role": "assistant"}}]}', '{"choices": [null]}', "null",
])
@responses.activate
def test_unusable_upstream_body_is_502(remote, body):
    responses.post(URL, body=body, content_type="application/json")
    resp = ask(remote)
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "bad_upstream_response"


@responses.activate
def test_missing_usage_is_estimated(remote):
    body = completion("twelve chars")
    del body["usage"]
    responses.post(URL, json=body)
    usage = ask(remote).get_json()["usage"]
    assert usage["completion_tokens"] >= 3 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@responses.activate
def test_the_key_never_reaches_logs_or_bodies(remote, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post(URL, json={"error": {"message": UPSTREAM_KEY}}, status=401)
    resp = ask(remote)
    assert UPSTREAM_KEY not in resp.get_data(as_text=True)
    assert UPSTREAM_KEY not in caplog.text
    assert UPSTREAM_KEY not in repr(remote.application.config)
    assert UPSTREAM_KEY not in repr(remote.application.extensions["chatgate"].upstream)


def test_backoff_is_capped_at_eight_seconds():
    for attempt in range(10):
        assert retry.retry_delay(attempt) <= 8.0
    assert retry.retry_delay(10) >= 6.0


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "100"}, 0.1),
    ({"retry-after-ms": "nonsense", "retry-after": "4"}, 4.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after_parsing(headers, expected):
    assert retry.retry_after(headers) == expected


def test_retry_after_http_date_is_understood():
    import email.utils
    import time

    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 <= retry.retry_after({"retry-after": when}) <= 6


def test_no_upstream_configured_is_503(make_app):
    from cryptography.fernet import Fernet

    client = make_app(APP_ENV="production", AUTH_MODE="open", DATA_ENCRYPTION_KEY=Fernet.generate_key().decode(),
                      DATABASE_URL="sqlite://",
                      DB_AUTO_MIGRATE="true").test_client()
    resp = ask(client)
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "upstream_not_configured"


@responses.activate
@pytest.mark.parametrize("request_id, logged", [("req_abc123", "req_abc123"), ("bad id\nINJECTED", "badidINJECTED"),
                                                (None, "-")])
def test_a_failure_logs_the_upstream_status_and_request_id_never_its_body(remote, caplog, request_id, logged):
    headers = {"x-request-id": request_id} if request_id else {}
    responses.post(URL, json={"error": {"message": "secret upstream detail"}}, status=500, headers=headers)
    with caplog.at_level(logging.DEBUG, logger="app"):
        assert ask(remote).status_code == 502
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"upstream answered 500 (upstream request id {logged})" in text
    assert "secret upstream detail" not in text and "\nINJECTED" not in text


@responses.activate
def test_each_retry_says_why_at_debug_level(remote, caplog):
    responses.post(URL, status=503)
    responses.post(URL, json=completion("ok"))
    with caplog.at_level(logging.DEBUG, logger="app.upstream"):
        assert ask(remote).status_code == 200
    assert any("retrying upstream call: status 503" in r.getMessage() for r in caplog.records)
