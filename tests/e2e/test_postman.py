"""The Postman collection: it covers every endpoint, and newman runs it green against a live server."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from support import ROOT, LiveServer, run_cli

from app.openapi.operations import OPERATIONS

COLLECTION = os.path.join(ROOT, "postman", "chatgate.postman_collection.json")
ENVIRONMENT = os.path.join(ROOT, "postman", "chatgate.postman_environment.json")
NEWMAN = os.path.join(ROOT, "tests", "browser", "node_modules", ".bin", "newman")
REPORT = os.path.join(ROOT, "tests", "artifacts", "newman-{mode}.json")
# Run only against a server with AUTH_MODE=keys (and, for the admin folder, ADMIN_TOKEN); the rest runs in both modes.
KEYS_ONLY = "Auth (AUTH_MODE=keys)"
ADMIN_ONLY = "Admin (ADMIN_TOKEN)"
ADMIN_TOKEN = "newman-admin-token-0123456789"


def load_collection() -> dict:
    """The collection as stored."""
    with open(COLLECTION, encoding="utf-8") as fh:
        return json.load(fh)


def requests_in(folder: dict) -> list[dict]:
    """Every request item under a folder."""
    return [item for item in folder["item"] if "request" in item]


def template(url: str) -> str:
    """The path of a Postman URL with variables as {}: {{base_url}}/a/{{id}}?x=1 -> /a/{}."""
    path = url.replace("{{base_url}}", "").split("?")[0]
    return re.sub(r"\{\{[^}]+\}\}|no-such-[\w-]+", "{}", path)


def test_the_collection_covers_every_operation_and_checks_every_response():
    collection = load_collection()
    folders = collection["item"]
    covered = set()
    for folder in folders:
        for item in requests_in(folder):
            covered.add((item["request"]["method"].lower(), template(item["request"]["url"]["raw"])))
            tests = "\n".join(line for event in item["event"] if event["listen"] == "test"
                              for line in event["script"]["exec"])
            assert "pm.response.to.have.status(" in tests, item["name"]
    wanted = {(op.method, re.sub(r"\{[^}]+\}", "{}", op.path)) for op in OPERATIONS}
    assert wanted <= covered, wanted - covered
    assert {KEYS_ONLY, ADMIN_ONLY} <= {folder["name"] for folder in folders}


def test_the_environment_names_every_variable_the_collection_uses():
    with open(ENVIRONMENT, encoding="utf-8") as fh:
        env = {value["key"] for value in json.load(fh)["values"]}
    text = open(COLLECTION, encoding="utf-8").read()
    used = set(re.findall(r"\{\{(\w+)\}\}", text))
    # Set by the collection's own scripts as it runs.
    assert used - env == {"conversation_id", "too_long", "admin_key_id"}


def run_newman(server: LiveServer, folders: list[dict], report: str, api_key: str = "", admin_token: str = "") -> None:
    """Run the named folders of the collection against ``server`` and check that every assertion passed."""
    if not os.access(NEWMAN, os.X_OK):
        pytest.fail("newman is missing: run `npm ci --prefix tests/browser` (make test does)")
    cmd = [NEWMAN, "run", COLLECTION, "-e", ENVIRONMENT, "--env-var", f"base_url={server.url}",
           "--env-var", f"api_key={api_key}", "--env-var", f"admin_token={admin_token}", "--color", "off", "--reporters", "cli,json",
           "--reporter-json-export", report]
    for folder in folders:
        cmd += ["--folder", folder["name"]]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"newman failed:\n{proc.stdout[-15000:]}\n{proc.stderr[-3000:]}"
    with open(report, encoding="utf-8") as fh:
        stats = json.load(fh)["run"]["stats"]
    expected_requests = sum(len(requests_in(f)) for f in folders)
    assert stats["requests"] == {"total": expected_requests, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] >= 3 * expected_requests
    assert "Traceback" not in server.output()


def test_newman_runs_the_collection_green_in_open_mode(tmp_path):
    folders = [f for f in load_collection()["item"] if f["name"] not in (KEYS_ONLY, ADMIN_ONLY)]
    with LiveServer(AUTH_MODE="open", DATABASE_URL=f"sqlite:///{tmp_path}/chatgate.db") as server:
        run_newman(server, folders, REPORT.format(mode="open"))


def test_newman_runs_the_whole_collection_green_with_a_client_key(tmp_path):
    env = {"AUTH_MODE": "keys", "DATABASE_URL": f"sqlite:///{tmp_path}/chatgate.db",
           "KEY_HASH_SECRET": "newman-test-secret-0123456789abcdef", "ADMIN_TOKEN": ADMIN_TOKEN}
    made = run_cli("keys", "create", "newman", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    with LiveServer(**env) as server:
        run_newman(server, load_collection()["item"], REPORT.format(mode="keys"), api_key=key, admin_token=ADMIN_TOKEN)
