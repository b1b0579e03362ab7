"""Traces: off by default; on, a span `chat <model>` per call with GenAI attributes, under the caller's traceparent."""
from __future__ import annotations

import pytest
import responses
from conftest import UPSTREAM
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support import completion

from app.errors import ConfigError
from app.ops import tracing
from app.ops.tracing import NO_TRACING, Tracing, build_tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
URL = UPSTREAM + "/chat/completions"


@pytest.fixture
def traced(make_app):
    """An app whose spans land in memory; returns (app factory result, exporter)."""
    def factory(**env):
        exporter = InMemorySpanExporter()
        app = make_app(**env)
        found = app.extensions["chatgate"]
        found.tracing = found.gateway.meter.tracing = Tracing(SimpleSpanProcessor(exporter),
                                                              provider_name="openai_compatible")
        return app, exporter
    return factory


def test_tracing_is_off_by_default(app):
    assert app.extensions["chatgate"].tracing is NO_TRACING and not NO_TRACING.enabled


@responses.activate
def test_a_chat_call_is_one_span_with_genai_attributes(traced):
    responses.post(URL, json=completion("Hi there.", usage=(12, 4), model="gpt-4o-mini-2024-07-18"))
    app, exporter = traced(OPENAI_API_KEY="sk-test-0123456789abcdef", OPENAI_BASE_URL=UPSTREAM)
    resp = app.test_client().post("/chat", json={"prompt": "a private prompt"}, buffered=True)
    assert resp.status_code == 200
    [span] = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini" and span.kind == SpanKind.CLIENT
    attrs = dict(span.attributes)
    assert attrs == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai_compatible",
                     "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                     "gen_ai.response.id": "chatcmpl-test", "gen_ai.usage.input_tokens": 12,
                     "gen_ai.usage.output_tokens": 4, "gen_ai.response.finish_reasons": ("stop",)}
    assert "private" not in repr(span.to_json())
    assert span.parent is None


def test_an_incoming_traceparent_makes_the_span_its_child(traced):
    app, exporter = traced()
    app.test_client().post("/v1/chat/completions", buffered=True,
                           json={"model": "gpt-4o-mini", "stream": True,
                                 "messages": [{"role": "user", "content": "Hi"}]},
                           headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01", "tracestate": "vendor=x"})
    [span] = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT and span.parent.is_remote
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert span.start_time <= span.end_time


@responses.activate
def test_a_failed_call_is_an_error_span(traced):
    responses.post(URL, status=401)
    app, exporter = traced(OPENAI_API_KEY="sk-test-0123456789abcdef", OPENAI_BASE_URL=UPSTREAM)
    assert app.test_client().post("/chat", json={"prompt": "Hi"}, buffered=True).status_code == 502
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "upstream_misconfigured"


def test_a_malformed_traceparent_starts_a_new_trace(traced):
    app, exporter = traced()
    app.test_client().post("/chat", json={"prompt": "Hi"}, headers={"traceparent": "garbage"}, buffered=True)
    [span] = exporter.get_finished_spans()
    assert span.parent is None


def test_an_endpoint_without_the_sdk_stops_start_up_with_one_line(monkeypatch):
    monkeypatch.setattr(tracing, "_installed", lambda _name: False)
    with pytest.raises(ConfigError, match=r"^OTEL_EXPORTER_OTLP_ENDPOINT: tracing needs the OpenTelemetry SDK"):
        build_tracing("http://127.0.0.1:4318", provider_name="openai")


def test_an_endpoint_builds_an_otlp_exporter(make_app):
    app = make_app(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")  # nothing is sent until a span ends
    found = app.extensions["chatgate"].tracing
    assert found.enabled
    found.shutdown()
