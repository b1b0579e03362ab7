"""Schemathesis against a live server: generated requests from /openapi.json, bounded in size."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from support import ROOT, LiveServer

ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "schemathesis")
HOOKS = os.path.join(ROOT, "tests", "e2e", "schemathesis_hooks.py")
CONFIG = os.path.join(ROOT, "tests", "e2e", "schemathesis.toml")
# Bounded: a few dozen cases per operation keeps the run well under a minute on two cores.
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
# A fixed seed makes CI reproducible; set SCHEMATHESIS_SEED to explore other inputs locally.
SEED = os.environ.get("SCHEMATHESIS_SEED", "20250101")


def schemathesis_cli() -> str:
    """The schemathesis CLI installed beside this Python."""
    path = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    assert os.path.exists(path), "schemathesis is missing: install requirements-dev.txt (make test does)"
    return path


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(tmp_path):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    os.makedirs(ARTIFACTS)
    with LiveServer(workers=2, DATABASE_URL=f"sqlite:///{tmp_path}/chatgate.db") as server:
        cmd = [schemathesis_cli(), "--config-file", CONFIG, "run", f"{server.url}/openapi.json",
               # every check: no 5xx, statuses/headers/bodies as documented, invalid data refused,
               # valid data accepted, wrong methods answered with 405
               "--checks", "all", "--mode", "all", "--max-examples", MAX_EXAMPLES, "--seed", SEED,
               "--workers", "2", "--request-timeout", "20", "--no-color", "--output-sanitize", "false",
               "--report", "junit", "--report-dir", ARTIFACTS]
        # Run inside the artifacts folder: schemathesis keeps its crash cache in the working directory.
        env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS}
        proc = subprocess.run(cmd, cwd=ARTIFACTS, env=env, capture_output=True, text=True, timeout=900)
        log = server.output()
    with open(os.path.join(ARTIFACTS, "run.log"), "w") as fh:
        fh.write(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"schemathesis failed:\n{proc.stdout[-20000:]}\n{proc.stderr[-4000:]}"
    assert "Test cases:" in proc.stdout and " passed" in proc.stdout, proc.stdout[-4000:]
    assert "Traceback" not in log
