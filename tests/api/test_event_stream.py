"""Streaming through a real local upstream: filtered, never buffered, always ending honestly."""
from __future__ import annotations

import json

import pytest
import responses

from support import wait_for

from app.upstream.sse_codec import iter_sse
from mock_upstream import canned
from mock_upstream import run_in_thread


@pytest.fixture
def mock():
    """A real streaming upstream on a local port: 8 chunks, 5 ms apart by default."""
    with run_in_thread(chunks=8, interval_ms=5) as server:
        yield server


@pytest.fixture
def streaming(make_app, mock):
    """An app whose upstream is the local mock; options ride in the base URL's path."""
    def factory(options: str = "", **env):
        base = mock.base_url if not options else mock.base_url[:-3] + "/" + options + "/v1"
        env.setdefault("UPSTREAM_TIMEOUT", 5)
        return make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=base, **env).test_client()
    return factory


def open_stream(client, prompt="Hello", **body):
    return client.post("/chat", json={"prompt": prompt, "stream": True, **body}, buffered=False)


def events(resp):
    """The decoded data of every event, in order ('[DONE]' kept as a string)."""
    out = []
    for event in iter_sse(resp.response):
        out.append(event.data if event.data == "[DONE]" else json.loads(event.data))
    resp.close()
    return out


def test_a_stream_delivers_filtered_deltas_then_the_final_event_then_done(streaming, mock):
    resp = open_stream(streaming())
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["X-Accel-Buffering"] == "no"
    got = events(resp)
    assert got[-1] == "[DONE]"
    final = got[-2]
    assert final["finish_reason"] == "stop" and isinstance(final["conversation_id"], str)
    assert final["filter"] == {"action": "none", "findings": []}
    # The usage chunk comes only when we ask for it with stream_options.include_usage.
    assert final["usage"]["prompt_tokens"] == canned.PROMPT_TOKENS
    assert "".join(e["delta"] for e in got[:-2]) == canned.stream_text(8)
    assert mock.stats.streams_finished == 1


def test_deltas_reach_the_client_while_the_upstream_is_still_streaming(streaming, mock):
    resp = open_stream(streaming("chunks=40,interval_ms=20"))
    stream = iter_sse(resp.response)
    first = json.loads(next(stream).data)
    assert "delta" in first
    assert mock.stats.streams_open == 1 and mock.stats.streams_finished == 0  # nothing was buffered to the end
    resp.close()


@pytest.mark.parametrize("status, ours, code", [(500, 502, "upstream_error"), (503, 502, "upstream_error"),
                                                (401, 502, "upstream_misconfigured"),
                                                (429, 429, "upstream_rate_limited")])
def test_failures_before_the_first_byte_are_plain_http_errors(streaming, status, ours, code):
    resp = streaming(f"fault={status}").post("/chat", json={"prompt": "hi", "stream": True})
    assert resp.status_code == ours
    assert resp.mimetype == "application/json" and resp.get_json()["error"]["code"] == code


def test_retries_happen_only_before_the_stream_begins(streaming, mock, sleeps):
    got = events(open_stream(streaming("fault=503,times=2")))
    assert got[-1] == "[DONE]" and len(sleeps) == 2
    assert mock.stats.requests == 3


def test_a_cut_before_any_chunk_is_still_a_plain_error(streaming):
    resp = streaming("fault=cut,after=0").post("/chat", json={"prompt": "hi", "stream": True})
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_stream_broken"


@pytest.mark.parametrize("fault, code", [
    ("cut", "upstream_stream_broken"),
    ("reset", "upstream_stream_broken"),
    ("malformed", "bad_upstream_response"),
    ("error_event", "upstream_error"),
])
def test_mid_stream_failures_end_with_one_error_event(streaming, mock, fault, code):
    # Far enough in that the filter's hold-back window has released some text already.
    got = events(open_stream(streaming(f"fault={fault},chunks=40,after=25")))
    assert "[DONE]" not in got
    assert [e for e in got if "error" in e] == [got[-1]]
    assert got[-1]["error"]["code"] == code and set(got[-1]["error"]) == {"message", "type", "param", "code"}
    assert all("delta" in e for e in got[:-1]) and got[:-1]


def test_a_stalled_upstream_ends_with_a_timeout_event(streaming):
    got = events(open_stream(streaming("fault=stall,chunks=40,after=25,stall_s=30", UPSTREAM_TIMEOUT=0.3)))
    assert got[-1]["error"]["code"] == "upstream_timeout"
    assert "[DONE]" not in got


def test_a_reply_blocked_mid_stream_stops_with_content_filter(streaming, mock, tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("foxtrot\n")  # the sixth word the mock streams
    got = events(open_stream(streaming("chunks=200,interval_ms=2", BLOCKLIST_FILE=str(blocklist))))
    assert got[-1] == "[DONE]"
    final = got[-2]
    assert final["finish_reason"] == "content_filter" and final["filter"]["action"] == "blocked"
    text = "".join(e["delta"] for e in got if isinstance(e, dict) and "delta" in e)
    assert "foxtrot" not in text and canned.stream_text(5).startswith(text)
    assert wait_for(lambda: mock.stats.streams_open == 0)
    assert mock.stats.streams_finished == 0  # closed early: no more tokens generated or billed


def test_pii_split_across_chunks_is_still_redacted(streaming, make_app):
    client = make_app(PROMPT_REDACT="none", OFFLINE_STREAM_DELAY=0).test_client()
    got = events(open_stream(client, "echo: mail jane.doe@example.com or call +1-202-555-0143 today"))
    text = "".join(e["delta"] for e in got if isinstance(e, dict) and "delta" in e)
    assert text == "mail [EMAIL] or call [PHONE] today"
    assert got[-2]["filter"]["action"] == "redacted"


def test_the_client_leaving_closes_the_upstream(streaming, mock):
    resp = open_stream(streaming("chunks=500,interval_ms=5"))
    stream = iter_sse(resp.response)
    next(stream)
    next(stream)
    resp.close()  # what the server does when the client's socket goes away
    assert wait_for(lambda: mock.stats.streams_open == 0, 2)
    assert mock.stats.streams_finished == 0


def test_offline_model_streams_in_pieces(make_app):
    client = make_app(OFFLINE_STREAM_DELAY=0).test_client()
    whole = client.post("/chat", json={"prompt": "Tell me about Mars"}).get_json()
    got = events(open_stream(client, "Tell me about Mars"))
    deltas = [e["delta"] for e in got if "delta" in e]
    assert len(deltas) > 3 and "".join(deltas) == whole["reply"]
    assert got[-2]["usage"] == whole["usage"] and got[-1] == "[DONE]"


def test_stream_validation_errors_are_plain_json(client):
    resp = client.post("/chat", json={"prompt": "", "stream": True})
    assert resp.status_code == 400 and resp.mimetype == "application/json"


SSE_URL = "https://upstream.test/v1/chat/completions"


def sse_body(*events: str) -> bytes:
    return "".join(events).encode()


def chunk(text: str, finish=None) -> str:
    return "data: " + json.dumps({"id": "c1", "model": "gpt-4o-mini", "choices": [
        {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}) + "\n\n"


@responses.activate
def test_upstream_sse_quirks_are_parsed(make_app):
    body = sse_body(": keep-alive\n\n", chunk("Hel"), "\n", ": ping\n\n",
                    'data: {"id": "c1", "choices": [{"index": 0,\ndata:  "delta": {"content": "lo"}}]}\n\n',
                    chunk("", "stop"), "data: [DONE]")  # no final blank line
    responses.post(SSE_URL, body=body, content_type="text/event-stream")
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL="https://upstream.test/v1").test_client()
    got = events(open_stream(client))
    assert "".join(e["delta"] for e in got if isinstance(e, dict) and "delta" in e) == "Hello"
    assert got[-2]["finish_reason"] == "stop" and got[-1] == "[DONE]"
    sent = json.loads(responses.calls[0].request.body)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@responses.activate
def test_a_clean_end_without_done_is_reported_as_truncated(make_app):
    responses.post(SSE_URL, body=sse_body(*(chunk("word ") for _ in range(40))), content_type="text/event-stream")
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL="https://upstream.test/v1").test_client()
    got = events(open_stream(client))
    assert got[-1]["error"]["code"] == "upstream_stream_truncated"
    assert "[DONE]" not in got and "delta" in got[0]


@responses.activate
def test_a_non_stream_answer_to_a_stream_request_is_502(make_app):
    responses.post(SSE_URL, json={"choices": []})
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL="https://upstream.test/v1").test_client()
    resp = client.post("/chat", json={"prompt": "hi", "stream": True})
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "bad_upstream_response"
