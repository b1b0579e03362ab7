"""Every long-lived object of one app, built in one visible order (lower rooms first).

``create_app`` calls ``build`` once; views reach the result through
``app.extensions["chatgate"]``. Building opens no connection: engines, pools
and Redis clients connect on first use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .access.budgets import Budgets
from .access.counters import MemoryCounters
from .access.key_admin import KeyAdmin
from .access.keys import KeyRing, hash_secret
from .access.limits import Limiter
from .access.redis_counters import RedisCounters
from .access.shared_table import SharedCounters
from .config import Config
from .config.routing import Routing, UpstreamSpec, from_settings
from .core.bounds import Bounds
from .core.cache import ResponseCache, policy_version
from .core.gateway import Gateway
from .core.guard import PromptGuard
from .core.meter import Meter
from .core.pricing import PriceTable, load_prices
from .core.turns import ChatTurns
from .errors import ConfigError
from .filter import ContentFilter, load_blocklist
from .ops.metrics import Metrics
from .ops.record import RequestLog
from .ops.tracing import NoTracing, Tracing, build_tracing
from .storage.cache_backends import DatabaseEntries, RedisEntries
from .storage.conversations import ConversationStore
from .storage.crypto import Cipher, NoCipher, load_cipher
from .storage.database import Database, database_url, make_engine
from .storage.response_cache import CacheStore
from .storage.usage import UsageLedger
from .upstream.breaker import STATE_VALUES, Breaker
from .upstream.client import NoUpstream, UpstreamClient, build_session
from .upstream.offline import OFFLINE_BASE_URL, OfflineAdapter
from .upstream.router import Route, Router
from .upstream.targets import Target

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Services:
    """The app's long-lived objects."""

    database: Database
    cipher: Cipher | NoCipher
    conversations: ConversationStore
    ledger: UsageLedger
    keyring: KeyRing
    key_admin: KeyAdmin
    limiter: Limiter
    upstream: Router | NoUpstream
    routing: Routing
    content_filter: ContentFilter
    gateway: Gateway
    turns: ChatTurns
    metrics: Metrics
    prices: PriceTable
    budgets: Budgets
    tracing: NoTracing | Tracing
    request_log: RequestLog
    cache_store: CacheStore
    cache: ResponseCache | None


def build(config: Config, instance_path: str) -> Services:
    """Build observability, storage, access, the upstream router, the filter and the core, in that order."""
    # Without UPSTREAMS_FILE, the OPENAI_* settings make one upstream with one route per allowed model.
    routing = config.routing or from_settings(config)
    providers = {name: provider_of(spec) for name, spec in routing.upstreams.items()}
    upstream_name = first_upstream(config, routing)
    provider = providers.get(upstream_name, "openai_compatible")

    # Observability first: every room below records into it.
    metrics = Metrics(provider=provider, upstream=upstream_name, models=config.ALLOWED_MODELS,
                      upstreams=providers or None)
    default = routing.upstreams.get(upstream_name)
    address = urlsplit(default.base_url).hostname if default is not None and default.base_url else None
    tracing = build_tracing(config.OTEL_EXPORTER_OTLP_ENDPOINT, provider_name=provider, server_address=address)

    # Storage: a relative SQLite path is relative to the project, not the working directory.
    engine = make_engine(database_url(config.DATABASE_URL, PROJECT_ROOT), pool_size=config.DB_POOL_SIZE,
                         max_overflow=config.DB_MAX_OVERFLOW, pool_timeout=config.DB_POOL_TIMEOUT,
                         statement_timeout=config.DB_STATEMENT_TIMEOUT)
    database = Database(engine, check_schema=not config.DB_AUTO_MIGRATE)
    cipher = load_cipher(config, instance_path)
    conversations = ConversationStore(database, cipher, ttl_seconds=config.CONVERSATION_TTL,
                                      idempotency_ttl=config.IDEMPOTENCY_TTL)
    ledger = UsageLedger(database)
    # Built even with the cache off: `db purge-expired` and `db rotate-key` look after what it left.
    db_entries = DatabaseEntries(database)
    cache_store = CacheStore(RedisEntries(config.REDIS_URL) if config.REDIS_URL else db_entries, cipher,
                             ttl=config.CACHE_TTL, max_entries=config.CACHE_MAX_ENTRIES, metrics=metrics,
                             also=(db_entries,) if config.REDIS_URL else ())

    # Access: who is calling, and what they may spend.
    keyring = KeyRing(database, hash_secret(config, instance_path))
    # Limits and budgets count in one store, so budgets are exact wherever limits are.
    counters = build_counters(config)
    limiter = Limiter(counters, rate_limit=config.RATE_LIMIT, token_rate_limit=config.TOKEN_RATE_LIMIT,
                      daily_token_quota=config.DAILY_TOKEN_QUOTA, max_streams=config.MAX_STREAMS_PER_CLIENT,
                      fail=config.LIMITS_FAIL, auth_failure_limit=config.AUTH_FAILURE_LIMIT, metrics=metrics)
    budgets = Budgets(counters, fail=config.LIMITS_FAIL, metrics=metrics, spent_since=ledger.spent_since)

    upstream = build_router(config, routing, metrics, counters)
    if isinstance(upstream, Router) and routing.source == "file":  # without the file there is no breaker
        metrics.watch_circuits(lambda: {name: STATE_VALUES[state.kind] for name, state in upstream.states().items()
                                        if state.known})

    try:
        blocklist = load_blocklist(config.BLOCKLIST_FILE)
    except ValueError as err:
        raise ConfigError(f"BLOCKLIST_FILE: {err}") from None
    content_filter = ContentFilter(blocklist, redact=config.REPLY_REDACT, phone_regions=config.PHONE_REGIONS)

    # The core, on top of all of the above.
    bounds = Bounds(max_prompt_chars=config.MAX_PROMPT_CHARS, max_messages=config.MAX_MESSAGES,
                    max_total_chars=config.MAX_TOTAL_CHARS, max_tokens_cap=config.MAX_TOKENS_CAP)
    guard = PromptGuard(content_filter, upstream, redact=config.PROMPT_REDACT, moderation=config.MODERATION,
                        moderation_fail=config.MODERATION_FAIL)
    prices = load_prices(config.PRICES_FILE)
    meter = Meter(limiter, ledger, bounds, prices=prices, budgets=budgets, metrics=metrics, tracing=tracing,
                  upstream_name=upstream_name)
    cache = None
    if config.CACHE_TTL:
        cache = ResponseCache(cache_store, ttl=config.CACHE_TTL, scope=config.CACHE_SCOPE, metrics=metrics,
                              policy=policy_version(content_filter.fingerprint, config.MODERATION))
    gateway = Gateway(upstream, content_filter, guard, meter, default_model=config.OPENAI_MODEL,
                      allowed_models=config.ALLOWED_MODELS, embedding_models=config.ALLOWED_EMBEDDING_MODELS,
                      cache=cache)
    turns = ChatTurns(gateway, conversations, history_budget=config.HISTORY_TOKEN_BUDGET)
    return Services(database=database, cipher=cipher, conversations=conversations, ledger=ledger,
                    keyring=keyring, key_admin=KeyAdmin(database, keyring, ledger), limiter=limiter,
                    upstream=upstream, routing=routing, content_filter=content_filter,
                    gateway=gateway, turns=turns, metrics=metrics, prices=prices, budgets=budgets, tracing=tracing,
                    request_log=RequestLog(), cache_store=cache_store, cache=cache)


def provider_of(spec: UpstreamSpec) -> str:
    """An upstream's OpenTelemetry provider name (gen_ai.provider.name)."""
    if spec.kind == "offline":
        return "offline"
    host = (urlsplit(spec.base_url).hostname or "").lower()
    if host == "api.openai.com":
        return "openai"
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    return "openai_compatible"


def first_upstream(config: Config, routing: Routing) -> str:
    """The default model's first upstream: the one metrics and logs name when no other served."""
    route = routing.routes.get(config.OPENAI_MODEL) or next(iter(routing.routes.values()), None)
    return route.targets[0].upstream if route is not None else "default"


def build_counters(config: Config) -> RedisCounters | SharedCounters | MemoryCounters:
    """Where limits count: Redis (every instance), the instance's shared table (every worker), or this process."""
    if config.REDIS_URL:
        return RedisCounters(config.REDIS_URL)
    if config.LIMITS_TABLE:
        try:
            return SharedCounters.attach(config.LIMITS_TABLE)
        except (OSError, ValueError) as err:
            raise ConfigError(f"LIMITS_TABLE: cannot open the shared limits table ({type(err).__name__})") from None
    return MemoryCounters()


def build_router(config: Config, routing: Routing, metrics, counters) -> Router | NoUpstream:
    """A client per upstream (the offline model mounted on its own session), the routes over them, and breakers."""
    if config.upstream_mode == "none":
        return NoUpstream()
    clients = {name: build_client(config, spec, routing, metrics) for name, spec in routing.upstreams.items()}
    specs = routing.upstreams
    routes = {name: Route(name, tuple(Target(clients[t.upstream], t.model, specs[t.upstream].developer_role,
                                             provider_of(specs[t.upstream])) for t in route.targets),
                          route.strategy, route.weights)
              for name, route in routing.routes.items()}
    breakers = {name: spec.breaker for name, spec in specs.items()}
    # Breakers count in the limits' store: every worker (shared table) or every instance (Redis) sees one state.
    store = counters if any(b.enabled for b in breakers.values()) else None
    return Router(routes, Breaker(store, breakers), default_model=config.OPENAI_MODEL, deadline=routing.deadline,
                  metrics=metrics, upstreams=clients)


def build_client(config: Config, spec: UpstreamSpec, routing: Routing, metrics=None) -> UpstreamClient:
    """One upstream's pooled client: a real upstream, or the offline model mounted on its session."""
    session = build_session(config.UPSTREAM_POOL_SIZE, config.UPSTREAM_CA_BUNDLE)
    if spec.kind == "offline":
        served = [t.model for r in routing.routes.values() for t in r.targets if t.upstream == spec.name]
        session.mount(OFFLINE_BASE_URL, OfflineAdapter(chunk_delay=config.OFFLINE_STREAM_DELAY,
                                                       models=list(dict.fromkeys(served))))
        base_url, key = OFFLINE_BASE_URL, None
    else:
        base_url, key = spec.base_url, spec.api_key.reveal() if spec.api_key else None
    extra = {"metrics": metrics} if metrics is not None else {}
    return UpstreamClient(session, base_url, key, spec.connect_timeout, spec.timeout, spec.max_retries,
                          name=spec.name, max_stream_seconds=config.MAX_STREAM_DURATION, auth=spec.auth,
                          query=spec.query, **extra)
