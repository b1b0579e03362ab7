"""`flask --app wsgi upstreams check`: one GET /models per upstream, a table, exit 1 when any failed."""
from __future__ import annotations

import pytest
from mock_upstream import run_in_thread
from support import free_port

KEY = "sk-" + "check-0123456789abcdef"


@pytest.fixture(scope="module")
def mock():
    with run_in_thread() as server:
        yield server


def check(app, *args):
    return app.test_cli_runner().invoke(args=["upstreams", "check", *args])


def test_each_upstream_is_probed_and_listed(make_app, tmp_path, mock):
    dead = free_port()
    refusing = run_in_thread(fault="401")
    text = f'''
[upstreams.good]
base_url = "{mock.base_url}"
api_key_env = "CHECK_KEY"
auth = "api-key"
query = {{ "api-version" = "2024-10-21" }}
[upstreams.refuses-key]
base_url = "{refusing.base_url}"
[upstreams.gone]
base_url = "http://127.0.0.1:{dead}/v1"
[upstreams.demo]
kind = "offline"
[models."gpt-4o-mini"]
targets = ["good", "refuses-key", "gone", "demo"]
'''
    path = tmp_path / "upstreams.toml"
    path.write_text(text, encoding="utf-8")
    try:
        result = check(make_app(UPSTREAMS_FILE=str(path), CHECK_KEY=KEY), "--timeout", "2")
    finally:
        refusing.stop()
    assert result.exit_code == 1, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["upstream"].split() == ["upstream", "base", "URL", "answer", "time", "models", "circuit"]
    assert " ok " in lines["good"] and mock.base_url in lines["good"] and lines["good"].endswith("closed")
    assert "FAILED 401 upstream_misconfigured" in lines["refuses-key"]
    assert "FAILED upstream_unreachable" in lines["gone"]
    assert "embedded offline model" in lines["demo"] and " ok " in lines["demo"]
    assert KEY not in result.output
    last = mock.stats.as_dict()["last"]
    assert last["path"] == "/v1/models" and last["api-key"] == KEY and last["query"] == "api-version=2024-10-21"


def test_all_well_exits_0_and_works_without_the_file(make_app, mock):
    result = check(make_app(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=mock.base_url))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[:3] == ["default", mock.base_url, "ok"]
