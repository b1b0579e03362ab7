"""Log lines: one JSON object (or one readable line) per request with the issue's fields, never content or secrets."""
from __future__ import annotations

import io
import json
import logging
import re
import sys
import time

import pytest

from support import wait_for

from app.ops.logs import JsonFormatter, Scrubber, TextFormatter, make_formatter
from config import load_config

PROMPT = "my secret diagnosis is private"
CLIENT_KEY_SHAPE = "cg-" + "Q" * 43


@pytest.fixture
def captured():
    """Everything the root logger's handlers write, as the app's formatter renders it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    started = time.time()
    # Earlier tests' apps may still be writing their requests' lines: only this test's count.
    handler.addFilter(lambda record: record.created >= started)
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


# The test client leaves a response open unless buffered; a real server always closes it, which ends the record.


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def request_lines(stream: io.StringIO, app) -> list[dict]:
    app.extensions["chatgate"].request_log.flush()  # lines are written by a background writer
    return [line for line in lines(stream) if line["logger"] == "app.request"]


def test_log_format_defaults_to_json_in_production_and_text_elsewhere():
    assert load_config({"APP_ENV": "production"}).LOG_FORMAT == "json"
    assert load_config({"APP_ENV": "development"}).LOG_FORMAT == "text"
    assert load_config({"APP_ENV": "testing"}).LOG_FORMAT == "text"
    assert load_config({"APP_ENV": "testing", "LOG_FORMAT": "JSON"}).LOG_FORMAT == "json"


def test_a_json_line_per_request_with_every_field_and_no_content(make_app, captured):
    app = make_app(LOG_FORMAT="json", AUTH_MODE="keys")
    with app.app_context():
        key = app.extensions["chatgate"].keyring.create("mobile-app")
    resp = app.test_client().post("/chat", json={"prompt": PROMPT}, buffered=True,
                                  headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-42"})
    assert resp.status_code == 200
    [line] = request_lines(captured, app)
    assert set(line) >= {"time", "level", "request_id", "route", "status", "duration_ms", "upstream_ms", "gateway_ms",
                         "model", "upstream", "prompt_tokens", "completion_tokens", "cost_usd", "filter", "cache",
                         "key", "error"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    usage = resp.json["usage"]
    assert (line["level"], line["request_id"], line["route"], line["status"]) == ("info", "req-42", "/chat", 200)
    assert (line["model"], line["upstream"], line["key"], line["filter"]) == ("gpt-4o-mini", "offline",
                                                                             "mobile-app", "none")
    assert (line["prompt_tokens"], line["completion_tokens"], line["cost_usd"]) == (
        usage["prompt_tokens"], usage["completion_tokens"], usage["cost_usd"])
    assert line["error"] is None and line["cache"] is None
    assert line["upstream_ms"] + line["gateway_ms"] == pytest.approx(line["duration_ms"], abs=0.02)
    text = captured.getvalue()
    assert PROMPT not in text and resp.json["reply"][:40] not in text and key not in text


def test_the_log_line_names_the_error_code(make_app, captured):
    app = make_app(LOG_FORMAT="json", AUTH_MODE="keys")
    app.test_client().post("/chat", json={"prompt": "hi"}, headers={"Authorization": "Bearer " + CLIENT_KEY_SHAPE},
                           buffered=True)
    [line] = request_lines(captured, app)
    assert (line["status"], line["error"], line["route"]) == (401, "invalid_api_key", "/chat")
    assert CLIENT_KEY_SHAPE not in captured.getvalue()


def test_a_streams_line_is_written_when_it_ends_with_its_tokens(make_app, captured):
    app = make_app(LOG_FORMAT="json")
    resp = app.test_client().post("/v1/chat/completions", json={
        "model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": PROMPT}]})
    body = resp.get_data()
    resp.close()
    assert b"[DONE]" in body
    [line] = request_lines(captured, app)
    assert line["stream"] is True and line["completion_tokens"] > 0 and line["route"] == "/v1/chat/completions"
    assert PROMPT not in captured.getvalue()


def test_unknown_paths_are_logged_by_pattern_not_by_path(make_app, captured):
    app = make_app(LOG_FORMAT="json")
    app.test_client().get("/nope/" + CLIENT_KEY_SHAPE, buffered=True)
    app.test_client().get("/conversations/abc123", buffered=True)
    first, second = request_lines(captured, app)
    assert (first["route"], first["status"]) == ("unmatched", 404)
    assert (second["route"], second["status"]) == ("/conversations/<conversation_id>", 404)
    assert "abc123" not in captured.getvalue()


def test_lines_are_written_in_the_background_soon_after(make_app, captured):
    app = make_app(LOG_FORMAT="json")
    app.test_client().get("/healthz", buffered=True)
    assert wait_for(lambda: '"logger":"app.request"' in captured.getvalue())


def test_text_lines_stay_readable(make_app, captured):
    app = make_app(LOG_FORMAT="text")
    app.test_client().post("/chat", json={"prompt": PROMPT}, buffered=True)
    app.extensions["chatgate"].request_log.flush()
    [line] = [ln for ln in captured.getvalue().splitlines() if "app.request" in ln]
    assert "INFO app.request: POST /chat 200 " in line
    assert "route=/chat" in line and "model=gpt-4o-mini" in line and "upstream_ms=" in line
    assert "cache=" not in line  # nothing logged for what is not known
    assert PROMPT not in captured.getvalue()


# --- scrubbing, in the formatter


SECRETS = ("sk-live-upstream-0123456789abcdef", 'odd"secret\\with-quotes-1234')


def record(msg: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("app.test", logging.ERROR, __file__, 1, msg, args, exc_info)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_scrubbed_from_messages_arguments_and_tracebacks(fmt):
    formatter = make_formatter(fmt, SECRETS)
    try:
        raise RuntimeError(f"upstream refused {SECRETS[0]} for {CLIENT_KEY_SHAPE} and {SECRETS[1]}")
    except RuntimeError:
        exc = sys.exc_info()
    out = formatter.format(record("calling with %s and Bearer %s", SECRETS[1], CLIENT_KEY_SHAPE, exc_info=exc))
    assert "Traceback" in out and "RuntimeError" in out
    for secret in (*SECRETS, CLIENT_KEY_SHAPE, json.dumps(SECRETS[1])[1:-1]):
        assert secret not in out
    assert "[SECRET]" in out
    if fmt == "json":
        parsed = json.loads(out)  # still one valid JSON object
        assert "[SECRET]" in parsed["exception"] and "[SECRET]" in parsed["message"]


def test_a_traceback_cached_by_another_handler_is_still_scrubbed():
    try:
        raise ValueError(CLIENT_KEY_SHAPE)
    except ValueError:
        rec = record("failed", exc_info=sys.exc_info())
    logging.Formatter().format(rec)  # a plain formatter fills the record's exc_text cache unscrubbed
    assert CLIENT_KEY_SHAPE in rec.exc_text
    assert CLIENT_KEY_SHAPE not in TextFormatter(Scrubber()).format(rec)
    assert CLIENT_KEY_SHAPE not in JsonFormatter(Scrubber()).format(rec)


# Built from parts, so that no literal in the tree looks like a live credential.
@pytest.mark.parametrize("shape", ["sk-proj-" + "abcdefghijklmnop", "AKIA" + "ABCDEFGHIJKLMNOP",
                                   "Bearer " + "abcdefgh12345678", "eyJhbGciOi" + ".eyJzdWIiOi.c2lnbmF0dXJl",
                                   "cg-" + "abcdefghijklmnopqrstu"])
def test_credential_shapes_are_scrubbed_without_knowing_them(shape):
    assert shape not in Scrubber()(f"x {shape} y")


def test_the_configured_secrets_include_the_metrics_token():
    config = load_config({"APP_ENV": "testing", "METRICS_TOKEN": "metrics-token-0123456789"})
    assert "metrics-token-0123456789" in config.secret_values()
