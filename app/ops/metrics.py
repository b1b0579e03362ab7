"""Prometheus metrics: definitions, cheap recording on the hot path, and the /metrics exposition.

Names follow OpenTelemetry's GenAI conventions where one exists, with their
histogram buckets; the rest start with ``chatgate_``. Every label is bounded:
models come from ALLOWED_MODELS, routes from the URL rules, error types and
outcomes from fixed sets. No key, prompt, reply or user is ever a label.

Under gunicorn every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (which gunicorn.conf.py makes per instance and
clears at start-up), and a scrape sums them across workers, so any worker
answers for all of them. Without that variable (the development server, the
tests) values live in this process. Series whose labels are known at
start-up are bound once, so recording is an add, not a label lookup.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# OpenTelemetry GenAI semantic conventions' advised buckets.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# chatgate's own time per request is a millisecond or two; these resolve it.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

OPERATION = "chat"
LIMITS = ("rate", "token_rate", "daily_quota", "streams", "budget_day", "budget_month", "auth_failures")
UPSTREAM_OUTCOMES = ("ok", "rate_limited", "client_error", "server_error", "timeout", "unreachable",
                     "stream_failed")
FILTER_ACTIONS = ("none", "redacted", "blocked")
CACHE_RESULTS = ("hit", "miss", "bypass", "store", "error")
FINDING_TYPES = ("email", "phone", "card", "ssn", "iban", "ip", "secret", "blocked_content", "moderation")
OTHER = "other"  # any value outside a bounded set


class _ModelSeries:
    """The series of one model, bound at start-up."""

    __slots__ = ("duration_ok", "input_tokens", "output_tokens", "spend", "ttft")

    def __init__(self, metrics: Metrics, model: str):
        common = (OPERATION, model, metrics.provider)
        self.duration_ok = metrics.duration.labels(*common, "")
        self.input_tokens = metrics.tokens.labels(*common, "input")
        self.output_tokens = metrics.tokens.labels(*common, "output")
        self.ttft = metrics.ttft.labels(*common)
        self.spend = metrics.spend.labels(model)


class Metrics:
    """Every metric chatgate exports, for one app."""

    def __init__(self, *, provider: str, upstream: str, models: tuple[str, ...]):
        self.provider = provider
        self.upstream = upstream
        r = self.registry = CollectorRegistry(auto_describe=True)
        common = ("gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name")
        self.duration = Histogram("gen_ai_client_operation_duration_seconds",
                                  "Duration of chat calls through chatgate, admission to last byte",
                                  (*common, "error_type"), buckets=DURATION_BUCKETS, registry=r)
        self.tokens = Histogram("gen_ai_client_token_usage", "Tokens per chat call, by input and output",
                                (*common, "gen_ai_token_type"), buckets=TOKEN_BUCKETS, registry=r)
        self.ttft = Histogram("gen_ai_server_time_to_first_token_seconds",
                              "Time from a streamed request's arrival to its first token sent", common,
                              buckets=TTFT_BUCKETS, registry=r)
        self.http = Counter("chatgate_http_requests_total", "HTTP requests answered", ("route", "status"),
                            registry=r)
        self.upstream_requests = Counter("chatgate_upstream_requests_total",
                                         "Upstream attempts (retries included) by how they ended",
                                         ("upstream", "outcome"), registry=r)
        self.filter_actions = Counter("chatgate_filter_actions_total", "Replies by what the filter did",
                                      ("action",), registry=r)
        self.filter_findings = Counter("chatgate_filter_findings_total", "Things the filter found, by type",
                                       ("type",), registry=r)
        self.limit_rejections = Counter("chatgate_limit_rejections_total", "Requests refused by a limit",
                                        ("limit",), registry=r)
        self.open_streams = Gauge("chatgate_open_streams", "Streams open now", registry=r,
                                  multiprocess_mode="livesum")
        self.overhead = Histogram("chatgate_gateway_overhead_seconds",
                                  "Time a chat request spent in chatgate, upstream waits excluded",
                                  buckets=OVERHEAD_BUCKETS, registry=r)
        self.spend = Counter("chatgate_spend_usd_total", "Spend at the price table's prices, in US dollars",
                             ("model",), registry=r)
        self.cache_requests = Counter("chatgate_cache_requests_total",
                                      "Response cache: requests answered (hit), sent upstream (miss) or not "
                                      + "looked up (bypass); entries written (store); failed operations (error)",
                                      ("result",), registry=r)
        # Bound once: the hot path only adds.
        self._models = {model: _ModelSeries(self, model) for model in models}
        self._outcomes = {o: self.upstream_requests.labels(upstream, o) for o in UPSTREAM_OUTCOMES}
        self._actions = {a: self.filter_actions.labels(a) for a in FILTER_ACTIONS}
        self._findings = {t: self.filter_findings.labels(t) for t in (*FINDING_TYPES, OTHER)}
        self._limits = {name: self.limit_rejections.labels(name) for name in LIMITS}
        self._cache = {result: self.cache_requests.labels(result) for result in CACHE_RESULTS}
        self._routes: dict[tuple[str, int], object] = {}
        self._overhead = self.overhead

    def _series(self, model: str) -> _ModelSeries:
        series = self._models.get(model)
        if series is None:
            series = self._models.get(OTHER)
            if series is None:
                series = self._models[OTHER] = _ModelSeries(self, OTHER)
        return series

    def call(self, model: str, seconds: float, error: str | None, input_tokens: int, output_tokens: int,
             cost_micros: int) -> None:
        """One finished chat call: its duration, tokens and spend."""
        series = self._series(model)
        if error is None:
            series.duration_ok.observe(seconds)
        else:
            self.duration.labels(OPERATION, model if model in self._models else OTHER, self.provider,
                                 error).observe(seconds)
        if input_tokens or output_tokens:
            series.input_tokens.observe(input_tokens)
            series.output_tokens.observe(output_tokens)
        if cost_micros:
            series.spend.inc(cost_micros / 1_000_000)

    def first_token(self, model: str, seconds: float) -> None:
        """A stream sent its first token ``seconds`` after the request arrived."""
        self._series(model).ttft.observe(seconds)

    def http_request(self, route: str, status: int) -> None:
        """One answered HTTP request."""
        child = self._routes.get((route, status))
        if child is None:
            child = self._routes[(route, status)] = self.http.labels(route, str(status))
        child.inc()  # type: ignore[attr-defined]

    def gateway_overhead(self, seconds: float) -> None:
        """Time one chat request spent in chatgate itself."""
        self._overhead.observe(seconds)

    def upstream_attempt(self, outcome: str) -> None:
        """One upstream attempt ended with ``outcome`` (one of UPSTREAM_OUTCOMES)."""
        self._outcomes[outcome].inc()

    def filtered(self, action: str, findings) -> None:
        """The filter's verdict on one reply."""
        self._actions.get(action, self._actions["none"]).inc()
        for finding in findings:
            self._findings.get(finding["type"], self._findings[OTHER]).inc(finding["count"])

    def rejected(self, limit: str) -> None:
        """A limit refused a request (``limit`` is one of LIMITS)."""
        self._limits[limit].inc()

    def cache(self, result: str, count: int = 1) -> None:
        """Response-cache events (``result`` is one of CACHE_RESULTS)."""
        self._cache[result].inc(count)

    def stream_opened(self) -> None:
        """A stream began."""
        self.open_streams.inc()

    def stream_closed(self) -> None:
        """A stream ended."""
        self.open_streams.dec()

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format: summed over every worker in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class NullMetrics:
    """Stands in where no metrics are wanted (objects built alone in tests or tools)."""

    def __getattr__(self, _name):
        return _ignore


def _ignore(*_args, **_kwargs) -> None:
    return None


NULL = NullMetrics()
