"""Routing through /chat and /v1 against several real local mock upstreams, whole and streamed.

Each upstream of a test's file is the same kind of local mock, its faults
riding in the base URL's path (``/fault=503/v1``); each target asks for a
model name of its own, so the mocks' per-model counters say who was called.
"""
from __future__ import annotations

import json
import logging
import random
import time

import pytest
from mock_upstream import run_in_thread
from sqlalchemy import select
from support import FakeClock, free_port

from app.access.counters import MemoryCounters
from app.storage.tables import LedgerRow
from app.upstream.breaker import Breaker
from app.upstream.sse_codec import iter_sse

KEY = "sk-" + "routing-test-0123456789abcdef"


@pytest.fixture(scope="module")
def mock_a():
    with run_in_thread(chunks=6, interval_ms=1) as server:
        yield server


@pytest.fixture(scope="module")
def mock_b():
    with run_in_thread(chunks=6, interval_ms=1) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(mock_a, mock_b):
    mock_a.stats.reset()
    mock_b.stats.reset()


def at(mock, options: str = "") -> str:
    """The mock's base URL, with fault options in its path."""
    return mock.base_url if not options else mock.base_url[:-3] + "/" + options + "/v1"


@pytest.fixture
def routed(make_app, tmp_path):
    """An app built from an UPSTREAMS_FILE with this text."""
    def factory(text: str, **env):
        path = tmp_path / "upstreams.toml"
        path.write_text(text, encoding="utf-8")
        return make_app(UPSTREAMS_FILE=str(path), UPSTREAM_KEY=KEY, **env)
    return factory


def two(first: str, second: str, *, extra: str = "", retries: int = 0) -> str:
    """A file routing gpt-4o-mini to ``first`` (as model first-model), then ``second`` (as served-model)."""
    return f'''
deadline = 10
[upstreams.first]
base_url = "{first}"
max_retries = {retries}
timeout = 0.5
[upstreams.second]
base_url = "{second}"
api_key_env = "UPSTREAM_KEY"
[upstreams.demo]
kind = "offline"
{extra}
[models."gpt-4o-mini"]
targets = ["first:first-model", "second:served-model"]
'''


def ask(client, door: str, stream: bool, **extra):
    """One chat call through ``door``; the response, with a stream's events decoded."""
    if door == "/chat":
        resp = client.post("/chat", json={"prompt": "Hello", "stream": stream, **extra}, buffered=not stream)
    else:
        resp = client.post("/v1/chat/completions", buffered=not stream,
                           json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}],
                                 "stream": stream, **extra})
    resp.events = None
    if stream and resp.status_code == 200:
        resp.events = [e.data if e.data == "[DONE]" else json.loads(e.data) for e in iter_sse(resp.response)]
        resp.close()
    return resp


def finished(resp) -> bool:
    """A whole reply, or a stream that ended with [DONE] and no error event."""
    if resp.events is None:
        return resp.status_code == 200
    return resp.events[-1] == "[DONE]" and not any(isinstance(e, dict) and "error" in e for e in resp.events)


def model_of(resp, door: str) -> str:
    """The reply's model: the one that answered."""
    if resp.events is None:
        return resp.json["model"]
    return next(e["model"] for e in resp.events if isinstance(e, dict) and "model" in e)


TRIGGERS = ["fault=500", "fault=502", "fault=503", "fault=504", "fault=408", "fault=409", "fault=429,retry_after=0",
            "fault=401", "fault=403", "fault=404", "refused", "fault=stall,after=0,stall_s=5"]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("door, stream", [("/chat", False), ("/chat", True), ("/v1", False), ("/v1", True)])
def test_failover_on_each_trigger(routed, mock_a, mock_b, trigger, door, stream):
    first = f"http://127.0.0.1:{free_port()}/v1" if trigger == "refused" else at(mock_a, trigger)
    client = routed(two(first, at(mock_b))).test_client()
    resp = ask(client, door, stream)
    assert resp.status_code == 200 and finished(resp), resp.get_data(as_text=True)
    assert resp.headers["X-Chatgate-Upstream"] == "second"
    assert model_of(resp, door) == "served-model"  # the reply's model is the one that answered
    assert mock_b.stats.models == {"served-model": 1}
    if trigger != "refused":
        assert mock_a.stats.models == {"first-model": 1}


@pytest.mark.parametrize("door, stream", [("/chat", False), ("/chat", True), ("/v1", False), ("/v1", True)])
def test_no_failover_on_400(routed, mock_a, mock_b, door, stream):
    client = routed(two(at(mock_a, "fault=400"), at(mock_b))).test_client()
    resp = ask(client, door, stream)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "upstream_rejected"
    assert resp.headers["X-Chatgate-Upstream"] == "first"
    assert mock_b.stats.requests == 0


@pytest.mark.parametrize("fault", ["fault=cut,after=0", "fault=reset,after=0", "fault=malformed,after=0",
                                   "fault=error_event,after=0"])
@pytest.mark.parametrize("door", ["/chat", "/v1"])
def test_a_stream_that_fails_before_its_first_byte_falls_over_invisibly(routed, mock_a, mock_b, fault, door):
    client = routed(two(at(mock_a, fault), at(mock_b))).test_client()
    resp = ask(client, door, True)
    assert resp.status_code == 200 and finished(resp)
    assert resp.headers["X-Chatgate-Upstream"] == "second"
    assert mock_a.stats.streams == 1 and mock_b.stats.streams == 1


@pytest.mark.parametrize("door", ["/chat", "/v1"])
def test_a_stream_cut_after_its_first_byte_ends_with_an_error_event(routed, mock_a, mock_b, door):
    client = routed(two(at(mock_a, "fault=cut,after=3,chunks=12"), at(mock_b))).test_client()
    resp = ask(client, door, True)
    assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "first"
    assert "[DONE]" not in resp.events
    assert resp.events[-1]["error"]["code"] == "upstream_stream_broken"
    assert mock_b.stats.requests == 0  # too late to fall back: the client had it started


def test_azure_style_auth_and_query_reach_the_upstream(routed, mock_a):
    text = f'''
[upstreams.azure]
base_url = "{mock_a.base_url}"
api_key_env = "UPSTREAM_KEY"
auth = "api-key"
query = {{ "api-version" = "2024-10-21" }}
[models."gpt-4o-mini"]
targets = ["azure:my-deployment"]
'''
    client = routed(text).test_client()
    for stream in (False, True):
        assert ask(client, "/v1", stream).status_code == 200
        last = mock_a.stats.as_dict()["last"]
        assert last["path"] == "/v1/chat/completions" and last["query"] == "api-version=2024-10-21"
        assert last["api-key"] == KEY and last["authorization"] is None
    assert mock_a.stats.models == {"my-deployment": 2}


def test_bearer_auth_is_the_default(routed, mock_a, mock_b):
    ask(routed(two(at(mock_a, "fault=503"), at(mock_b))).test_client(), "/v1", False)
    assert mock_b.stats.as_dict()["last"]["authorization"] == "Bearer " + KEY
    assert mock_a.stats.as_dict()["last"]["authorization"] is None  # first has no key


def test_weights_spread_requests_as_configured(routed, mock_a, mock_b):
    text = f'''
[upstreams.a]
base_url = "{mock_a.base_url}"
[upstreams.b]
base_url = "{mock_b.base_url}"
[models."gpt-4o-mini"]
targets = ["a:model-a", "b:model-b"]
strategy = "weighted"
weights = [3, 1]
'''
    app = routed(text)
    app.extensions["chatgate"].upstream.rng = random.Random(2024)  # a fixed seed: the same draw every run
    client = app.test_client()
    for _ in range(200):
        assert ask(client, "/v1", False).status_code == 200
    to_a = mock_a.stats.models.get("model-a", 0)
    assert to_a + mock_b.stats.models.get("model-b", 0) == 200
    # 3:1 is 150 of 200; the binomial's standard deviation is about 6.1: four of them either side.
    assert 150 - 25 <= to_a <= 150 + 25


def breaker_file(url: str) -> str:
    return f'''
[breaker]
min_requests = 2
failure_rate = 0.5
cooldown = 30
[upstreams.flaky]
base_url = "{url}"
max_retries = 0
[models."gpt-4o-mini"]
targets = ["flaky"]
'''


@pytest.mark.parametrize("stream", [False, True])
def test_breaker_open_fast_503_then_a_probe_closes_it(routed, mock_a, stream):
    app = routed(breaker_file(at(mock_a, "fault=500,times=2")))
    clock = FakeClock(1_000_000.0)
    router = app.extensions["chatgate"].upstream
    router.breaker = Breaker(MemoryCounters(clock), {"flaky": app.config["SETTINGS"].routing.upstreams[
        "flaky"].breaker}, clock=clock)
    client = app.test_client()
    for _ in range(2):
        resp = ask(client, "/v1", stream)
        assert resp.status_code == 502 and resp.headers["X-Chatgate-Upstream"] == "flaky"
    assert client.get("/readyz").json["checks"]["upstreams"] == {"flaky": "open"}
    assert client.get("/readyz").status_code == 503
    resp = ask(client, "/v1", stream)
    assert resp.status_code == 503 and resp.json["error"]["code"] == "upstream_unavailable"
    assert resp.headers["Retry-After"] == "30" and resp.headers["x-should-retry"] == "true"
    assert "X-Chatgate-Upstream" not in resp.headers
    assert mock_a.stats.requests == 2  # the 503 was answered without calling it
    assert 'chatgate_circuit_state{upstream="flaky"} 2.0' in client.get("/metrics").get_data(as_text=True)
    clock.advance(31)
    assert client.get("/readyz").json["checks"]["upstreams"] == {"flaky": "half_open"}
    resp = ask(client, "/chat", stream)  # the probe: the mock's two faults are spent, so it succeeds
    assert resp.status_code == 200 and finished(resp)
    assert client.get("/readyz").json == {"status": "ready", "checks": {
        "upstream": "configured", "upstreams": {"flaky": "closed"}, "database": "ok"}}


def test_a_route_with_one_open_target_of_two_stays_ready(routed, mock_a, mock_b):
    app = routed(two(at(mock_a, "fault=500"), at(mock_b)).replace("deadline = 10", "[breaker]\nmin_requests = 2"))
    client = app.test_client()
    for _ in range(3):
        assert ask(client, "/v1", False).status_code == 200
    checks = client.get("/readyz").json["checks"]
    assert checks["upstreams"]["first"] == "open" and "unusable_models" not in checks
    assert client.get("/readyz").status_code == 200
    assert mock_a.stats.requests == 2  # the third went straight to second


def test_the_offline_model_is_an_upstream_a_route_can_fall_back_to(routed, mock_a):
    text = f'''
[upstreams.down]
base_url = "http://127.0.0.1:{free_port()}/v1"
max_retries = 0
[upstreams.demo]
kind = "offline"
[models."gpt-4o-mini"]
targets = ["down", "demo"]
[models."text-embedding-3-small"]
targets = ["down", "demo"]
'''
    client = routed(text).test_client()
    resp = ask(client, "/chat", False)
    assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "demo"
    assert resp.json["reply"].startswith("[offline model]")
    resp = client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hello"})
    assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "demo"
    resp = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hello"})
    assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "demo"


def test_the_ledger_log_and_metrics_name_the_upstream_that_served(routed, mock_a, mock_b, caplog):
    app = routed(two(at(mock_a, "fault=503"), at(mock_b)))
    client = app.test_client()
    started = time.time()  # earlier tests' apps may still be writing their lines
    with caplog.at_level(logging.INFO, logger="app.request"):
        assert ask(client, "/chat", False).status_code == 200
        assert ask(client, "/v1", True).status_code == 200
        app.extensions["chatgate"].request_log.flush()
    found = app.extensions["chatgate"]
    found.ledger.flush()
    with found.database.session() as session:
        rows = session.execute(select(LedgerRow.model, LedgerRow.upstream, LedgerRow.upstream_model,
                                      LedgerRow.stream)).all()
    assert sorted(rows) == [("gpt-4o-mini", "second", "served-model", False),
                            ("gpt-4o-mini", "second", "served-model", True)]
    lines = [r.chatgate_fields for r in caplog.records if hasattr(r, "chatgate_fields") and r.created >= started]
    assert [line["upstream"] for line in lines] == ["second", "second"]
    text = client.get("/metrics").get_data(as_text=True)
    assert 'chatgate_upstream_requests_total{outcome="server_error",upstream="first"} 2.0' in text
    assert 'chatgate_upstream_requests_total{outcome="ok",upstream="second"} 2.0' in text
    assert 'chatgate_circuit_state{upstream="second"} 0.0' in text


def test_every_upstream_failing_is_a_503_with_retry_after(routed, mock_a, mock_b):
    client = routed(two(at(mock_a, "fault=500"), at(mock_b, "fault=502"))).test_client()
    for door, stream in (("/chat", False), ("/v1", True)):
        resp = ask(client, door, stream)
        assert resp.status_code == 503 and resp.json["error"]["code"] == "upstream_unavailable"
        assert resp.headers["Retry-After"] == "1" and "X-Chatgate-Upstream" not in resp.headers


def test_the_deadline_bounds_the_whole_call(routed, mock_a, mock_b):
    text = two(at(mock_a, "delay_ms=3000"), at(mock_b)).replace("deadline = 10", "deadline = 0.3")
    resp = ask(routed(text).test_client(), "/v1", False)
    assert resp.status_code == 503 and resp.json["error"]["code"] == "upstream_unavailable"
    assert mock_b.stats.requests == 0  # no time was left for it


def test_models_lists_the_routes(routed, mock_a):
    text = two(at(mock_a), at(mock_a)) + '[models."fast"]\ntargets = ["demo"]\n'
    ids = [m["id"] for m in routed(text).test_client().get("/v1/models").json["data"]]
    assert ids == ["gpt-4o-mini", "fast", "text-embedding-3-small"]
    client = routed(text, ALLOWED_MODELS="fast").test_client()
    assert [m["id"] for m in client.get("/v1/models").json["data"]] == ["fast", "text-embedding-3-small"]
    resp = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "hi"}]})
    assert resp.status_code == 400 and resp.json["error"]["code"] == "model_not_found"


def test_without_the_file_one_upstream_answers_as_before(make_app, mock_a):
    client = make_app(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=mock_a.base_url).test_client()
    resp = ask(client, "/v1", False)
    assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "default"
    assert "upstreams" not in client.get("/readyz").json["checks"]
    assert "chatgate_circuit_state" not in client.get("/metrics").get_data(as_text=True)
    offline = make_app().test_client()
    assert ask(offline, "/chat", True).headers["X-Chatgate-Upstream"] == "offline"
