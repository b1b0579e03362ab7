"""The chat page in a real browser: playwright-core drives Debian's headless Chromium."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from support import ROOT, LiveServer, run_cli

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "browser")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def require_browser_tools() -> str:
    """The node binary; fail with the fix when node, the npm packages or Chromium are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node 20+ is needed for the browser test)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        pytest.fail("tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (make test does)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (.ci/run does)")
    return node


def test_chat_page_streams_a_redacted_reply_and_keeps_the_conversation(tmp_path):
    node = require_browser_tools()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    keys_env = {"AUTH_MODE": "keys", "DATABASE_URL": f"sqlite:///{tmp_path}/keys.db",
                "KEY_HASH_SECRET": "browser-test-secret-0123456789abcdef"}
    made = run_cli("keys", "create", "browser", env=keys_env)
    assert made.returncode == 0, made.stderr
    # A small per-piece delay makes the offline model stream the way a real model does.
    with LiveServer(OFFLINE_STREAM_DELAY="0.02", AUTH_MODE="open",
                    DATABASE_URL=f"sqlite:///{tmp_path}/chatgate.db") as server, LiveServer(**keys_env) as keyed:
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BASE_URL": server.url,
               "KEYS_URL": keyed.url, "API_KEY": made.stdout.strip().splitlines()[-1],
               "ARTIFACTS": ARTIFACTS, "CHROMIUM_PATH": CHROMIUM}
        proc = subprocess.run([node, "chat.spec.mjs"], cwd=BROWSER_DIR, env=env, capture_output=True,
                              text=True, timeout=180)
        logs = server.output() + keyed.output()
    assert proc.returncode == 0, f"browser test failed:\n{proc.stdout}\n{proc.stderr}"
    assert "browser test passed" in proc.stdout
    for name in ("chat.png", "chat-narrow.png", "chat-keys.png", "docs.png"):
        with open(os.path.join(ARTIFACTS, name), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n", name
    assert "Traceback" not in logs
