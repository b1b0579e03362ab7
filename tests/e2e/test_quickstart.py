"""The README's quick start, followed word for word on a fresh copy of the project."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess

import requests
from support import ROOT, free_port, wait_for


def quick_start_commands() -> list[str]:
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def fresh_copy(target: str) -> None:
    """The project's files as a clean clone has them: tracked and new files, nothing ignored."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(target, name))


def test_make_run_then_the_readme_curls(tmp_path):
    commands = quick_start_commands()
    assert commands[:2] == ["make run", "make test"]
    curls = [c for c in commands if c.startswith("curl ")]
    assert len(curls) == 2
    project = str(tmp_path / "chatgate")
    fresh_copy(project)
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PORT": str(port),
           "LANG": "C.UTF-8"}
    log = open(tmp_path / "make-run.log", "w+")
    server = subprocess.Popen(["make", "run"], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        def up_or_gone() -> bool:
            if server.poll() is not None:
                return True
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        assert wait_for(up_or_gone, 600) and server.poll() is None, open(tmp_path / "make-run.log").read()[-3000:]
        outputs = [subprocess.run(["sh", "-c", curl.replace("localhost:8000", f"localhost:{port}")],
                                  capture_output=True, text=True, timeout=60).stdout for curl in curls]
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(30)
    reply = json.loads(outputs[0])
    assert reply["reply"].startswith("[offline model]") and reply["finish_reason"] == "stop"
    assert reply["conversation_id"] and reply["filter"] == {"action": "none", "findings": []}
    events = [line[len("data: "):] for line in outputs[1].splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and len(events) > 5
    assert json.loads(events[-2])["finish_reason"] == "stop"
    banner = open(tmp_path / "make-run.log").read()
    assert "OFFLINE MODEL" in banner and os.path.isdir(os.path.join(project, ".venv"))
