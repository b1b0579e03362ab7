"""The real server as `make run` starts it, and as `python wsgi.py` starts it."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from cryptography.fernet import Fernet
from support import ROOT, LiveServer, server_env


def test_gunicorn_serves_a_real_offline_reply():
    with LiveServer() as server:
        resp = requests.post(server.url + "/chat", json={"prompt": "Hello"}, timeout=10)
        assert resp.status_code == 200
        body = resp.json()
        assert set(body) == {"id", "conversation_id", "model", "reply", "finish_reason", "usage", "filter"}
        assert "offline" in body["reply"].lower()
        assert body["finish_reason"] == "stop" and body["usage"]["total_tokens"] > 0
        assert resp.headers["X-Request-ID"]
        banner = server.output()
    assert "OFFLINE MODEL" in banner and "chatgate listening on http://127.0.0.1" in banner


def test_the_server_never_answers_with_a_traceback():
    with LiveServer() as server:
        cases = [
            ("POST", "/chat", {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
            ("POST", "/chat", {"data": b"[" * 200000, "headers": {"Content-Type": "application/json"}}),
            ("POST", "/chat", {"data": b"x" * (2 * 1024 * 1024), "headers": {"Content-Type": "application/json"}}),
            ("GET", "/chat", {}),
            ("POST", "/chat", {"headers": {"X-Request-ID": "\x7f" * 10, "Content-Type": "text/plain"}}),
        ]
        for method, path, kw in cases:
            resp = requests.request(method, server.url + path, timeout=10, **kw)
            assert 400 <= resp.status_code < 500, (path, resp.status_code)
            assert set(resp.json()) == {"error"}
        huge_header = requests.get(server.url + "/healthz", headers={"X-Big": "a" * 20000}, timeout=10)
        assert huge_header.status_code == 431
        assert huge_header.json()["error"]["code"] == "headers_too_large" and huge_header.headers["X-Request-ID"]
        assert "Traceback" not in server.output()


def test_a_chunked_body_over_the_limit_is_413():
    def body():
        yield b'{"prompt": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    with LiveServer(MAX_CONTENT_LENGTH=4096) as server:
        resp = requests.post(server.url + "/chat", data=body(), headers={"Content-Type": "application/json"},
                             timeout=10)
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
        small = requests.post(server.url + "/chat", data=iter([b'{"prompt": ', b'"hi"}']),
                              headers={"Content-Type": "application/json"}, timeout=10)
        assert small.status_code == 200


def start_failure(cmd: list[str], **env) -> list[str]:
    """The chatgate lines a server prints when it refuses to start (it must exit, without a traceback)."""
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=server_env(PORT="1", **env), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("chatgate:")]


GUNICORN = ["-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]


@pytest.mark.parametrize("cmd", [GUNICORN, ["wsgi.py"]], ids=["gunicorn", "dev"])
def test_production_names_every_missing_setting_at_once(cmd):
    assert start_failure(cmd, APP_ENV="production") == [
        "chatgate: configuration error: OPENAI_API_KEY: production needs an upstream key "
        + "(or OPENAI_API_KEY_FILE, or SECRETS_FILE with SECRETS_KEY); set OFFLINE_MODEL=true to serve the offline model",
        "chatgate: configuration error: KEY_HASH_SECRET: production needs a secret for hashing client keys "
        + "(32+ random characters, e.g. from `openssl rand -base64 32`)",
        "chatgate: configuration error: DATA_ENCRYPTION_KEY: production needs a key for conversation text at rest; "
        + "make one with `flask --app wsgi db generate-key`"]
    bad = start_failure(cmd, APP_ENV="production", OFFLINE_MODEL="true", RATE_LIMIT="60/0 minute",
                        BODY_TIMEOUT="soon")
    assert [line.split(":")[2].strip() for line in bad] == ["BODY_TIMEOUT", "RATE_LIMIT", "KEY_HASH_SECRET",
                                                            "DATA_ENCRYPTION_KEY"]


def test_production_refuses_open_mode_with_one_line():
    assert start_failure(GUNICORN, APP_ENV="production", OFFLINE_MODEL="true", AUTH_MODE="open",
                         DATA_ENCRYPTION_KEY=Fernet.generate_key().decode()) == [
        "chatgate: configuration error: AUTH_MODE: open mode is for one developer (callers are told apart only "
        + "by address); production needs AUTH_MODE=keys"]


def test_bad_setting_stops_start_up_naming_the_variable():
    proc = subprocess.run([sys.executable, "wsgi.py"], cwd=ROOT, env=server_env(UPSTREAM_MAX_RETRIES="many"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "chatgate: configuration error: UPSTREAM_MAX_RETRIES: expected a whole number"


def test_development_server_serves_too():
    with LiveServer(dev=True) as server:
        resp = requests.post(server.url + "/chat", json={"prompt": "Hello"}, timeout=10)
        assert resp.status_code == 200 and "offline" in resp.json()["reply"].lower()
