"""Optional OpenTelemetry traces: each chat call becomes a span ``chat <model>`` with GenAI attributes.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and then only with the SDK
installed (``requirements-otel.txt``). An incoming W3C ``traceparent`` makes
the span its caller's child. Spans carry models, token counts, finish reasons
and the response id: never a prompt, a reply or a key. The provider is built
per app, in the serving process (after gunicorn forks), and exports in
batches from a background thread.
"""
from __future__ import annotations

import importlib.util
import os
import time

from ..errors import ConfigError

OPERATION = "chat"


class NoTracing:
    """Tracing off: nothing is started, nothing costs more than a call."""

    enabled = False

    def start(self, _model: str, _record) -> None:
        """No span."""
        return None

    def end(self, *_args) -> None:
        """Nothing to end."""

    def shutdown(self) -> None:
        """Nothing to flush."""


NO_TRACING = NoTracing()


class Tracing:
    """Spans through an OpenTelemetry TracerProvider of this app's own."""

    enabled = True

    def __init__(self, processor, *, provider_name: str, server_address: str | None = None):
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        service = os.environ.get("OTEL_SERVICE_NAME") or "chatgate"
        self._provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("chatgate")
        self._propagator = TraceContextTextMapPropagator()
        self._kind = SpanKind.CLIENT
        self._error = (Status, StatusCode.ERROR)
        self._common = {"gen_ai.operation.name": OPERATION, "gen_ai.provider.name": provider_name}
        if server_address:
            self._common["server.address"] = server_address

    def start(self, model: str, record):
        """Open the span of one call, as the child of the request's traceparent when it has one."""
        carrier = {}
        if record is not None and record.traceparent:
            carrier["traceparent"] = record.traceparent
            if record.tracestate:
                carrier["tracestate"] = record.tracestate
        parent = self._propagator.extract(carrier) if carrier else None
        # The span starts when the request arrived, not when it was admitted.
        started = time.time_ns() - (int((time.perf_counter() - record.started) * 1e9) if record is not None else 0)
        return self._tracer.start_span(f"{OPERATION} {model}", context=parent, kind=self._kind,
                                       start_time=started,
                                       attributes={**self._common, "gen_ai.request.model": model})

    def end(self, span, ticket, input_tokens: int, output_tokens: int, error: str | None) -> None:
        """Close the span with what the call came to."""
        attributes: dict[str, object] = {"gen_ai.usage.input_tokens": input_tokens,
                                         "gen_ai.usage.output_tokens": output_tokens}
        if ticket.provider:
            attributes["gen_ai.provider.name"] = ticket.provider  # whose upstream served it, after any fallback
        if ticket.response_model:
            attributes["gen_ai.response.model"] = ticket.response_model
        if ticket.response_id:
            attributes["gen_ai.response.id"] = ticket.response_id
        if ticket.finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = [str(r) for r in ticket.finish_reasons]
        span.set_attributes(attributes)
        if error is not None:
            status, code = self._error
            span.set_attribute("error.type", error)
            span.set_status(status(code, error))
        span.end()

    def shutdown(self) -> None:
        """Export what is pending and stop."""
        self._provider.shutdown()


def build_tracing(endpoint: str | None, *, provider_name: str, server_address: str | None = None):
    """Tracing to the OTLP/HTTP ``endpoint``, or NO_TRACING when none is set."""
    if not endpoint:
        return NO_TRACING
    if not all(_installed(name) for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")):
        raise ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT: tracing needs the OpenTelemetry SDK; "
                          + "install it with `pip install -r requirements-otel.txt`")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    return Tracing(BatchSpanProcessor(exporter), provider_name=provider_name, server_address=server_address)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
