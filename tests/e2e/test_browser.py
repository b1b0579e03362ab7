"""The chat page and /docs in a real browser: playwright-core drives Debian's headless Chromium."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from support import ROOT, LiveServer, run_cli

from mock_upstream import run_in_thread

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "browser")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PNG = b"\x89PNG\r\n\x1a\n"


def require_browser_tools() -> str:
    """The node binary; fail with the fix when node, the npm packages or Chromium are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node 20+ is needed for the browser test)")
    for package in ("playwright-core", "axe-core"):
        if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", package)):
            pytest.fail(f"tests/browser/node_modules/{package} is missing: run `npm ci --prefix tests/browser` "
                        + "(make test does)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (.ci/run does)")
    return node


class Servers:
    """The live servers a browser spec talks to, and the environment that names them."""

    def __init__(self, env: dict, servers: list[LiveServer]):
        self.env = env
        self.servers = servers

    def logs(self) -> str:
        """Everything every server printed so far."""
        return "".join(server.output() for server in self.servers)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """An offline-model server (open), a keyed one with a key, and one in front of the mock upstream."""
    node = require_browser_tools()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    tmp = tmp_path_factory.mktemp("browser")
    keys_env = {"AUTH_MODE": "keys", "DATABASE_URL": f"sqlite:///{tmp}/keys.db",
                "KEY_HASH_SECRET": "browser-test-secret-0123456789abcdef"}
    made = run_cli("keys", "create", "browser", env=keys_env)
    assert made.returncode == 0, made.stderr
    with run_in_thread(chunks=6, interval_ms=5) as mock:
        upstream = {"AUTH_MODE": "open", "OPENAI_API_KEY": "-".join(("mock", "upstream", "key")),
                    "OPENAI_BASE_URL": mock.base_url, "OPENAI_MODEL": "gpt-4o-mini",
                    "ALLOWED_MODELS": "gpt-4o-mini,gpt-4o", "DATABASE_URL": f"sqlite:///{tmp}/mock.db"}
        # A small per-piece delay makes the offline model stream the way a real model does.
        with LiveServer(OFFLINE_STREAM_DELAY="0.02", AUTH_MODE="open", DATABASE_URL=f"sqlite:///{tmp}/chatgate.db") \
                as server, LiveServer(**keys_env) as keyed, LiveServer(**upstream) as mocked:
            env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "NODE": node,
                   "BASE_URL": server.url, "KEYS_URL": keyed.url, "API_KEY": made.stdout.strip().splitlines()[-1],
                   "MOCK_CHAT": mocked.url, "MOCK_URL": mock.base_url[: -len("/v1")],
                   "ARTIFACTS": ARTIFACTS, "CHROMIUM_PATH": CHROMIUM}
            yield Servers(env, [server, keyed, mocked])


def run_spec(servers: Servers, name: str) -> subprocess.CompletedProcess:
    """Run one browser spec with node; its output goes into the assertion message."""
    return subprocess.run([servers.env["NODE"], name], cwd=BROWSER_DIR, env=servers.env, capture_output=True,
                          text=True, timeout=300)


def assert_screenshots(*names: str) -> None:
    """Each named screenshot exists and is a PNG."""
    for name in names:
        with open(os.path.join(ARTIFACTS, name), "rb") as fh:
            assert fh.read(8) == PNG, name


def test_chat_page_in_chromium(servers):
    proc = run_spec(servers, "chat.spec.mjs")
    assert proc.returncode == 0, f"browser test failed:\n{proc.stdout}\n{proc.stderr}"
    assert "chat page browser test passed" in proc.stdout
    assert_screenshots("chat.png", "chat-markdown.png", "chat-inert.png", "chat-errors.png", "chat-sidebar.png",
                       "chat-delete.png", "chat-usage.png", "chat-narrow.png", "chat-narrow-history.png",
                       "chat-dark.png", "chat-model.png", "chat-keys.png", "chat-page.png")
    assert "Traceback" not in servers.logs()


def test_docs_page_in_chromium(servers):
    proc = run_spec(servers, "docs.spec.mjs")
    assert proc.returncode == 0, f"browser test failed:\n{proc.stdout}\n{proc.stderr}"
    assert "docs page browser test passed" in proc.stdout
    assert_screenshots("docs.png", "docs-try.png")
    assert "Traceback" not in servers.logs()
