"""GET /metrics: every metric, recorded where it happens, bounded labels, behind METRICS_TOKEN; Server-Timing."""
from __future__ import annotations

import re

import pytest
import responses
from conftest import UPSTREAM
from prometheus_client.parser import text_string_to_metric_families
from support import completion

from app.ops import metrics as m

URL = UPSTREAM + "/chat/completions"
EXPORTED = ("gen_ai_client_operation_duration_seconds", "gen_ai_client_token_usage",
            "gen_ai_server_time_to_first_token_seconds", "chatgate_http_requests", "chatgate_upstream_requests",
            "chatgate_filter_actions", "chatgate_filter_findings", "chatgate_limit_rejections",
            "chatgate_open_streams", "chatgate_gateway_overhead_seconds", "chatgate_spend_usd",
            "chatgate_cache_requests")


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from /metrics."""
    resp = client.get("/metrics", headers=headers, buffered=True)
    assert resp.status_code == 200, resp.json
    assert resp.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True)) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    """The sum of every sample called ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in samples.items() if n == name and set(labels.items()) <= set(lab))


def v1(client, stream=False, **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], **extra}
    if stream:
        body["stream"] = True
    return client.post("/v1/chat/completions", json=body, buffered=True)


def test_every_metric_is_exported_with_the_genai_buckets(client):
    client.post("/chat", json={"prompt": "echo: mail jane.doe@example.com", "stream": True}, buffered=True)
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(EXPORTED) <= set(families)
    buckets = {name: sorted({float(s.labels["le"]) for s in families[name].samples if "le" in s.labels})
               for name in ("gen_ai_client_operation_duration_seconds", "gen_ai_client_token_usage",
                            "gen_ai_server_time_to_first_token_seconds")}
    assert buckets["gen_ai_client_operation_duration_seconds"][:-1] == list(m.DURATION_BUCKETS)
    assert buckets["gen_ai_client_token_usage"][:-1] == list(m.TOKEN_BUCKETS)
    assert buckets["gen_ai_server_time_to_first_token_seconds"][:-1] == list(m.TTFT_BUCKETS)
    assert "chatgate_circuit_state" not in families
    # Every cache result is there from the start (at 0 while the cache is off), so dashboards have a series.
    assert {s.labels["result"] for s in families["chatgate_cache_requests"].samples
            if s.name.endswith("_total")} == set(m.CACHE_RESULTS)


def test_a_chat_call_is_counted_where_it_happens(client):
    resp = client.post("/chat", json={"prompt": "echo: mail jane.doe@example.com"}, buffered=True)
    usage = resp.json["usage"]
    samples = scrape(client)
    common = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o-mini",
              "gen_ai_provider_name": "offline"}
    assert value(samples, "gen_ai_client_operation_duration_seconds_count", error_type="", **common) == 1
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input", **common) == usage[
        "prompt_tokens"]
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", **common) == usage[
        "completion_tokens"]
    assert value(samples, "chatgate_spend_usd_total", model="gpt-4o-mini") == pytest.approx(usage["cost_usd"])
    assert value(samples, "chatgate_http_requests_total", route="/chat", status="200") == 1
    assert value(samples, "chatgate_filter_actions_total", action="redacted") == 1
    assert value(samples, "chatgate_filter_findings_total", type="email") == 1
    assert value(samples, "chatgate_upstream_requests_total", upstream="offline", outcome="ok") == 1
    assert value(samples, "chatgate_gateway_overhead_seconds_count") == 1


def test_a_stream_counts_as_open_until_it_ends_and_records_time_to_first_token(client):
    resp = client.post("/chat", json={"prompt": "Hello", "stream": True})
    iterator = iter(resp.response)
    next(iterator)  # the first event is out; the stream is still open
    assert value(scrape(client), "chatgate_open_streams") == 1
    resp.close()
    samples = scrape(client)
    assert value(samples, "chatgate_open_streams") == 0
    assert value(samples, "gen_ai_server_time_to_first_token_seconds_count", gen_ai_request_model="gpt-4o-mini") == 1
    # The client left mid-stream: the call is recorded with that as its error type.
    assert value(samples, "gen_ai_client_operation_duration_seconds_count", error_type="client_closed") == 1


@responses.activate
def test_upstream_attempts_count_retries_by_outcome(remote):
    responses.post(URL, status=503)
    responses.post(URL, status=429)
    responses.post(URL, json=completion())
    assert v1(remote).status_code == 200
    samples = scrape(remote)
    assert {o: value(samples, "chatgate_upstream_requests_total", upstream="default", outcome=o)
            for o in ("server_error", "rate_limited", "ok")} == {"server_error": 1, "rate_limited": 1, "ok": 1}


@responses.activate
def test_a_failed_call_carries_its_error_type(remote):
    responses.post(URL, status=401)
    assert v1(remote).status_code == 502
    samples = scrape(remote)
    assert value(samples, "gen_ai_client_operation_duration_seconds_count", error_type="upstream_misconfigured",
                 gen_ai_provider_name="openai_compatible") == 1
    assert value(samples, "chatgate_upstream_requests_total", outcome="client_error") == 1
    assert value(samples, "chatgate_http_requests_total", route="/v1/chat/completions", status="502") == 1


def test_limit_refusals_are_counted_by_limit(make_app):
    client = make_app(RATE_LIMIT="1/hour", MAX_STREAMS_PER_CLIENT=1).test_client()
    assert client.post("/chat", json={"prompt": "hi"}, buffered=True).status_code == 200
    assert client.post("/chat", json={"prompt": "hi"}, buffered=True).status_code == 429
    assert value(scrape(client), "chatgate_limit_rejections_total", limit="rate") == 1


def test_labels_are_bounded_and_carry_no_secret_or_content(make_app):
    app = make_app(AUTH_MODE="keys")
    with app.app_context():
        key = app.extensions["chatgate"].keyring.create("alice")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    client.post("/chat", json={"prompt": "a private prompt"}, headers=headers, buffered=True)
    client.get("/conversations/some-private-id", headers=headers, buffered=True)
    client.get("/no/such/" + key, buffered=True)
    text = client.get("/metrics").get_data(as_text=True)
    assert key not in text and "alice" not in text and "private" not in text
    routes = {s.labels["route"] for f in text_string_to_metric_families(text) for s in f.samples
              if "route" in s.labels}
    assert routes == {"/chat", "/conversations/<conversation_id>", "unmatched"}


def test_an_unknown_model_label_folds_into_other():
    metrics = m.Metrics(provider="openai", upstream="default", models=("gpt-4o-mini",))
    metrics.call("made-up", 0.1, None, 1, 1, 0)
    metrics.call("made-up", 0.1, "upstream_timeout", 0, 0, 0)
    text = metrics.exposition()[0].decode()
    assert "made-up" not in text and 'gen_ai_request_model="other"' in text


@pytest.mark.parametrize("sent, status", [(None, 401), ("Bearer wrong-token-0123456789", 401),
                                          ("Bearer metrics-token-0123456789", 200), ("metrics-token-0123456789", 401)])
def test_the_metrics_token_guards_metrics(make_app, sent, status):
    client = make_app(METRICS_TOKEN="metrics-token-0123456789").test_client()
    resp = client.get("/metrics", headers={"Authorization": sent} if sent else {})
    assert resp.status_code == status
    if status == 401:
        assert resp.json["error"]["code"] == "invalid_api_key"
        assert "metrics-token-0123456789" not in resp.get_data(as_text=True)


def test_metrics_need_no_client_key(make_app):
    assert make_app(AUTH_MODE="keys").test_client().get("/metrics").status_code == 200


# --- Server-Timing


TIMING = re.compile(r"^upstream;dur=(\d+\.\d), gateway;dur=(\d+\.\d)$")


@pytest.mark.parametrize("call", [
    lambda c: c.post("/chat", json={"prompt": "Hello"}, buffered=True),
    lambda c: c.post("/chat", json={"prompt": "Hello", "stream": True}, buffered=True),
    lambda c: v1(c),
    lambda c: v1(c, stream=True),
    lambda c: c.post("/chat", json={"prompt": "Hello", "temperature": 9}, buffered=True),
    lambda c: c.post("/chat", data="not json", buffered=True),
])
def test_every_chat_response_says_where_its_time_went(client, call):
    resp = call(client)
    match = TIMING.match(resp.headers.get("Server-Timing", ""))
    assert match, resp.headers
    upstream, gateway = map(float, match.groups())
    assert upstream >= 0 and gateway >= 0
    if resp.status_code == 400:
        assert upstream == 0  # refused before any upstream call


@responses.activate
def test_server_timing_counts_the_upstream_wait_as_upstream(remote, monkeypatch):
    from app.upstream import retry

    responses.post(URL, status=503)
    responses.post(URL, json=completion())
    # A retry's back-off is time spent on the upstream's account, not chatgate's.
    monkeypatch.setattr(retry, "sleep", lambda s: __import__("time").sleep(0.05))
    resp = v1(remote)
    upstream, _gateway = map(float, TIMING.match(resp.headers["Server-Timing"]).groups())
    assert upstream >= 50


def test_other_routes_carry_no_server_timing(client):
    assert "Server-Timing" not in client.get("/healthz").headers
    assert "Server-Timing" not in client.get("/v1/models").headers
