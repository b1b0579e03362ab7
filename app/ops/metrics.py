"""Prometheus metrics: definitions, cheap recording on the hot path, and the /metrics exposition.

Names follow OpenTelemetry's GenAI conventions where one exists, with their
histogram buckets; the rest start with ``chatgate_``. Every label is bounded:
models come from ALLOWED_MODELS, upstreams and providers from the upstreams
configured at start-up, routes from the URL rules, error types and outcomes
from fixed sets. No key, prompt, reply or user is ever a label.

``chatgate_circuit_state`` is read at scrape time from the circuit breakers'
shared store (``watch_circuits``), so every worker and instance reports the
same state: 0 closed, 1 half-open, 2 open.

Under gunicorn every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (which gunicorn.conf.py makes per instance and
clears at start-up), and a scrape sums them across workers, so any worker
answers for all of them. Without that variable (the development server, the
tests) values live in this process. Series whose labels are known at
start-up are bound once, so recording is an add, not a label lookup.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
    """The series of one model served by one provider, bound at start-up."""

    __slots__ = ("duration_ok", "input_tokens", "output_tokens", "spend", "ttft")

    def __init__(self, metrics: Metrics, model: str, provider: str):
        common = (OPERATION, model, provider)
        self.duration_ok = metrics.duration.labels(*common, "")
        self.input_tokens = metrics.tokens.labels(*common, "input")
        self.output_tokens = metrics.tokens.labels(*common, "output")
        self.ttft = metrics.ttft.labels(*common)
        self.spend = metrics.spend.labels(model)


class _Circuits(Collector):
    """chatgate_circuit_state, computed when scraped."""

    def __init__(self, states: Callable[[], Mapping[str, int]]):
        self.states = states

    def collect(self):
        """One gauge sample per upstream whose state could be read."""
        family = GaugeMetricFamily("chatgate_circuit_state", "Circuit breaker state per upstream: 0 closed, "
                                   + "1 half-open, 2 open", labels=["upstream"])
        for name, value in self.states().items():
            family.add_metric([name], value)
        yield family


class Metrics:
    """Every metric chatgate exports, for one app.

    ``provider`` and ``upstream`` name the default upstream; ``upstreams``
    maps every configured upstream to its provider, so each one's series are
    bound at start-up.
    """

    def __init__(self, *, provider: str, upstream: str, models: tuple[str, ...],
                 upstreams: Mapping[str, str] | None = None):
        self.provider = provider
        self.upstream = upstream
        self.upstreams = dict(upstreams or {upstream: provider})
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
        self._models = {model: _ModelSeries(self, model, provider) for model in models}
        self._served = {(model, p): _ModelSeries(self, model, p) for model in models
                        for p in set(self.upstreams.values()) - {provider}}
        self._outcomes = {(name, o): self.upstream_requests.labels(name, o)
                          for name in self.upstreams for o in UPSTREAM_OUTCOMES}
        self._actions = {a: self.filter_actions.labels(a) for a in FILTER_ACTIONS}
        self._findings = {t: self.filter_findings.labels(t) for t in (*FINDING_TYPES, OTHER)}
        self._limits = {name: self.limit_rejections.labels(name) for name in LIMITS}
        self._cache = {result: self.cache_requests.labels(result) for result in CACHE_RESULTS}
        self._routes: dict[tuple[str, int], object] = {}
        self._overhead = self.overhead
        self._circuits: _Circuits | None = None

    def _series(self, model: str, provider: str | None = None) -> _ModelSeries:
        if provider is not None and provider != self.provider:
            return self._provided(model, provider)
        series = self._models.get(model)
        if series is None:
            series = self._models.get(OTHER)
            if series is None:
                series = self._models[OTHER] = _ModelSeries(self, OTHER, self.provider)
        return series

    def _provided(self, model: str, provider: str) -> _ModelSeries:
        """The series of a model served by another upstream's provider (a fallback); bounded like the rest."""
        model = model if model in self._models else OTHER
        provider = provider if provider in self.upstreams.values() else OTHER
        series = self._served.get((model, provider))
        if series is None:
            series = self._served[(model, provider)] = _ModelSeries(self, model, provider)
        return series

    def call(self, model: str, seconds: float, error: str | None, input_tokens: int, output_tokens: int,
             cost_micros: int, provider: str | None = None) -> None:
        """One finished chat call: its duration, tokens and spend (``provider``: whose upstream served it)."""
        series = self._series(model, provider)
        if error is None:
            series.duration_ok.observe(seconds)
        else:
            self.duration.labels(OPERATION, model if model in self._models else OTHER, provider or self.provider,
                                 error).observe(seconds)
        if input_tokens or output_tokens:
            series.input_tokens.observe(input_tokens)
            series.output_tokens.observe(output_tokens)
        if cost_micros:
            series.spend.inc(cost_micros / 1_000_000)

    def first_token(self, model: str, seconds: float, provider: str | None = None) -> None:
        """A stream sent its first token ``seconds`` after the request arrived."""
        self._series(model, provider).ttft.observe(seconds)

    def http_request(self, route: str, status: int) -> None:
        """One answered HTTP request."""
        child = self._routes.get((route, status))
        if child is None:
            child = self._routes[(route, status)] = self.http.labels(route, str(status))
        child.inc()  # type: ignore[attr-defined]

    def gateway_overhead(self, seconds: float) -> None:
        """Time one chat request spent in chatgate itself."""
        self._overhead.observe(seconds)

    def upstream_attempt(self, outcome: str, upstream: str | None = None) -> None:
        """One attempt at ``upstream`` (default: the default one) ended with ``outcome`` (one of UPSTREAM_OUTCOMES)."""
        self._outcomes[(upstream or self.upstream, outcome)].inc()

    def watch_circuits(self, states: Callable[[], Mapping[str, int]]) -> None:
        """Report ``states()`` (upstream -> 0 closed, 1 half-open, 2 open) as chatgate_circuit_state at each scrape."""
        self._circuits = _Circuits(states)
        self.registry.register(self._circuits)

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
            if self._circuits is not None:
                registry.register(self._circuits)  # read live from the shared store, not summed from files
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class NullMetrics:
    """Stands in where no metrics are wanted (objects built alone in tests or tools)."""

    def __getattr__(self, _name):
        return _ignore


def _ignore(*_args, **_kwargs) -> None:
    return None


NULL = NullMetrics()
