"""examples/curl.sh runs end to end against a live server and every call answers as its comment says."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from support import ROOT, LiveServer

SCRIPT = os.path.join(ROOT, "examples", "curl.sh")


def sections(output: str) -> list[tuple[str, list[int], str]]:
    """(section title, the HTTP statuses printed in it, its text) in order."""
    found = []
    for block in output.split("\n## ")[1:]:
        title, _, body = block.partition("\n")
        found.append((title.split(":")[0], [int(s) for s in re.findall(r"^-> HTTP (\d{3})$", body, re.M)], body))
    return found


def test_the_curl_examples_run_against_a_live_server(tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (apt-get install -y curl)")
    admin_token = "curl-admin-token-0123456789"
    with LiveServer(DATABASE_URL=f"sqlite:///{tmp_path}/chatgate.db", ADMIN_TOKEN=admin_token) as server:
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BASE_URL": server.url,
               "ADMIN_TOKEN": admin_token}
        proc = subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
        log = server.output()
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
    assert proc.stderr == ""
    got = sections(proc.stdout)
    assert [(title, statuses) for title, statuses, _ in got] == [
        ("health", [200, 200]),
        ("chat", [200]),
        ("chat", [200]),
        ("chat", [200]),
        ("streaming", [200]),
        # start, continue, read, delete, read again (gone), list, usage
        ("conversations", [200, 200, 200, 200, 404, 200, 200]),
        ("OpenAI-compatible", [200, 200]),
        # range, unknown field, wrong type, unknown conversation, wrong method, not JSON
        ("errors", [400, 400, 400, 404, 405, 415]),
        # create, list, show, change, rotate, revoke, audit, wrong token
        ("admin", [201, 200, 200, 200, 200, 200, 200, 401]),
    ]
    text = {title: body for title, _, body in got}
    redaction = got[2][2]
    assert "write to me at [EMAIL]" in redaction and "jane.doe" not in redaction.split('"reply"')[1]
    assert '"action":"redacted","findings":[{"type":"email","count":1}]' in redaction
    assert re.search(r'data: \{"delta":.*data: \[DONE\]\n', text["streaming"], re.S)
    assert "This is message 2 in our conversation" in text["conversations"]
    assert re.search(r"^Allow: .*POST", text["errors"], re.M)
    assert '"state":"revoked"' in text["admin"] and '"action":"rotate"' in text["admin"]
    assert admin_token not in text["admin"] and admin_token not in log
    assert "Traceback" not in log
