"""Traces end to end: gunicorn exports a chat call's span over OTLP/HTTP to a small receiver written here."""
from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from support import LiveServer, wait_for

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP (protobuf) trace receiver that keeps every span it is sent."""

    daemon_threads = True

    def __init__(self):
        self.spans: list = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the stdlib's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.server.spans.append((service, span))  # type: ignore[attr-defined]
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args):
        pass


def attributes(span) -> dict:
    out = {}
    for attr in span.attributes:
        value = attr.value
        kind = value.WhichOneof("value")
        out[attr.key] = [v.string_value for v in value.array_value.values] if kind == "array_value" \
            else getattr(value, kind)
    return out


def test_gunicorn_exports_a_chat_span_under_the_callers_trace():
    receiver = Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        # A short batch delay, so the span is exported while the test waits rather than seconds later.
        with LiveServer(workers=2, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="100",
                        OTEL_SERVICE_NAME="chatgate-e2e") as server:
            resp = requests.post(server.url + "/chat", json={"prompt": "a private prompt"}, timeout=30,
                                 headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
            assert resp.status_code == 200
            assert wait_for(lambda: len(receiver.spans) >= 1, 20)
    finally:
        receiver.shutdown()
    assert receiver.paths[0] == "/v1/traces"
    [(service, span)] = receiver.spans
    assert service == "chatgate-e2e"
    assert span.name == "chat gpt-4o-mini"
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT
    attrs = attributes(span)
    usage = resp.json()["usage"]
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"] and attrs["gen_ai.response.id"] == resp.json()["id"]
    assert "private" not in str(span)
