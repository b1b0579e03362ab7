"""No secret in any log line of a real gunicorn run: chatgate's, gunicorn's error and access logs, tracebacks included.

A full scenario in keys mode, against the mock upstream with the upstream key
set: whole and streamed replies, retries logged at debug level, wrong keys,
keys in URLs and request ids, upstream failures, and two routes that quote
secrets in messages and tracebacks. Then the whole output is searched for
every secret the run used.
"""
from __future__ import annotations

import json
import os
import signal
import sys

import pytest
import requests
from cryptography.fernet import Fernet
from support import LiveServer, run_cli

from mock_upstream import run_in_thread

UPSTREAM_KEY = "sk-live-" + "u" * 10 + "0123456789hygiene"
HASH_SECRET = "hash-secret-" + "h" * 30
METRICS_TOKEN = "metrics-token-" + "m" * 20
WRONG_KEY = "cg-" + "W" * 43


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_full_run_logs_no_secret(tmp_path, log_format):
    encryption_key = Fernet.generate_key().decode()
    db = f"sqlite:///{tmp_path}/db.sqlite"
    common = {"AUTH_MODE": "keys", "KEY_HASH_SECRET": HASH_SECRET, "DATA_ENCRYPTION_KEY": encryption_key,
              "DATABASE_URL": db}
    made = run_cli("keys", "create", "hygiene", env={**common, "OPENAI_API_KEY": UPSTREAM_KEY})
    assert made.returncode == 0, made.stderr
    client_key = made.stdout.strip().splitlines()[-1]
    secrets = (client_key, WRONG_KEY, UPSTREAM_KEY, HASH_SECRET, METRICS_TOKEN, encryption_key)

    with run_in_thread(chunks=6, interval_ms=1) as mock:
        # The first two upstream calls fail with 503 (retried, logged at debug level), later ones succeed.
        base = mock.base_url[:-3] + "/fault=503/times=2/v1"
        server = LiveServer(workers=2, OPENAI_API_KEY=UPSTREAM_KEY, OPENAI_BASE_URL=base, LOG_LEVEL="debug",
                            LOG_FORMAT=log_format, METRICS_TOKEN=METRICS_TOKEN, GUNICORN_ACCESS_LOG="-",
                            ALLOWED_MODELS="gpt-4o-mini,broken", **common)
        server.cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--pythonpath",
                      os.path.join("tests", "e2e"), "leaky_app:app"]
        with server:
            url = server.url
            auth = {"Authorization": f"Bearer {client_key}"}
            chat = requests.post(url + "/chat", json={"prompt": "Hello"}, headers=auth, timeout=30)
            assert chat.status_code == 200, chat.text
            streamed = requests.post(url + "/v1/chat/completions", headers=auth, timeout=30, json={
                "model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
            assert streamed.status_code == 200 and "[DONE]" in streamed.text
            # A key where a careless client puts it: a request id, a query string, a path.
            assert requests.get(url + "/usage", headers={**auth, "X-Request-ID": client_key},
                                timeout=10).status_code == 200
            assert requests.get(url + f"/usage?key={client_key}", headers=auth, timeout=10).status_code == 400
            assert requests.get(url + f"/conversations/{client_key}", headers=auth, timeout=10).status_code == 404
            assert requests.post(url + "/chat", json={"prompt": "Hi"}, timeout=10,
                                 headers={"Authorization": f"Bearer {WRONG_KEY}"}).status_code == 401
            assert requests.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                                timeout=10).status_code == 200
            assert requests.get(url + "/metrics", headers={"Authorization": f"Bearer {client_key}"},
                                timeout=10).status_code == 401
            # Code that quotes secrets in messages and tracebacks, and a body that fails mid-way (gunicorn logs it).
            assert requests.get(url + "/leak/log", headers=auth, timeout=10).status_code == 200
            with pytest.raises(requests.RequestException):
                requests.get(url + f"/leak/body?key={client_key}", headers=auth, timeout=10).content
            # A graceful stop, as a process manager sends it: the workers write every line they hold.
            os.kill(server.proc.pid, signal.SIGTERM)
            server.proc.wait(30)
        with open(server.log_path, encoding="utf-8") as fh:
            output = fh.read()

    assert "Traceback" in output and "Error handling request" in output
    assert "retrying upstream call: status 503" in output
    assert "[SECRET]" in output
    leaked = [name for name, secret in zip(("client key", "wrong key", "upstream key", "KEY_HASH_SECRET",
                                            "METRICS_TOKEN", "DATA_ENCRYPTION_KEY"), secrets, strict=True)
              if secret in output or json.dumps(secret)[1:-1] in output]
    assert leaked == []
    if log_format == "json":
        lines = [line for line in output.splitlines() if line.strip()]
        assert all(line.startswith("{") for line in lines), [ln for ln in lines if not ln.startswith("{")][:3]
        parsed = [json.loads(line) for line in lines]
        assert {p["logger"] for p in parsed} >= {"gunicorn.error", "gunicorn.access", "app.request"}
