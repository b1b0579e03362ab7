"""OpenAI's Node SDK, the Vercel AI SDK and OpenAI's SDK in a cross-origin browser page, against a live server."""
from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading

from support import ROOT, LiveServer, free_port
from test_browser import CHROMIUM, require_browser_tools

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")


class _Assets(http.server.SimpleHTTPRequestHandler):
    # ES modules must be served as JavaScript, and the SDK's files end in .mjs.
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript"}

    def log_message(self, *_args):
        pass


def static_origin() -> tuple[http.server.ThreadingHTTPServer, str]:
    """tests/browser served on a port of its own: a second origin, as a browser app's would be."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()),
                                             functools.partial(_Assets, directory=BROWSER_DIR))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_official_sdks_in_node_and_in_a_cross_origin_page():
    node = require_browser_tools()
    allowed, allowed_origin = static_origin()
    other, other_origin = static_origin()
    try:
        with LiveServer(CORS_ORIGINS=allowed_origin) as server:
            env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BASE_URL": server.url,
                   "ALLOWED_PAGE": allowed_origin + "/pages/cross-origin.html",
                   "OTHER_PAGE": other_origin + "/pages/cross-origin.html", "CHROMIUM_PATH": CHROMIUM}
            proc = subprocess.run([node, "sdk.spec.mjs"], cwd=BROWSER_DIR, env=env, capture_output=True, text=True,
                                  timeout=180)
    finally:
        allowed.shutdown()
        other.shutdown()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    passed = json.loads(proc.stdout.strip().splitlines()[-1])["passed"]
    assert len(passed) == 11, passed
