"""Settings for chatgate, read from the environment (and ``.env``).

Nothing here runs at import time: ``load_config()`` reads the environment
when the app is built. Every value is parsed strictly; a bad one raises
``ConfigError`` whose message is one line naming the variable and what it
accepts. The upstream key is loaded by ``api_key``.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from ..errors import ConfigError
from . import parsers, serving, upstreams
from .admin_token import load_admin_token
from .api_key import load_api_key
from .parsers import Secret
from .routing import Routing

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENVIRONMENTS = ("development", "production", "testing")


class Config:
    """Settings shared by every environment; subclasses change defaults only."""

    APP_ENV = "development"
    DEBUG = False
    TESTING = False
    OPENAI_BASE_URL = OPENAI_DEFAULT_BASE_URL
    UPSTREAMS_FILE = None
    routing: Routing | None = None  # set from UPSTREAMS_FILE; None: one upstream from OPENAI_*
    OPENAI_MODEL = "gpt-4o-mini"
    ALLOWED_MODELS: tuple[str, ...] = ()
    ALLOWED_EMBEDDING_MODELS: tuple[str, ...] = ("text-embedding-3-small",)
    OFFLINE_MODEL = False
    OFFLINE_STREAM_DELAY = 0.03
    UPSTREAM_TIMEOUT = 60.0
    UPSTREAM_CONNECT_TIMEOUT = 5.0
    UPSTREAM_MAX_RETRIES = 2
    UPSTREAM_CA_BUNDLE = None
    UPSTREAM_POOL_SIZE = 64
    MAX_PROMPT_CHARS = 32000
    MAX_CONTENT_LENGTH = 1048576
    DATABASE_URL = "sqlite:///instance/chatgate.db"
    DB_POOL_SIZE = 10
    DB_MAX_OVERFLOW = 20
    DB_AUTO_MIGRATE = True
    HISTORY_TOKEN_BUDGET = 3000
    CONVERSATION_TTL = 30 * 86400
    DATA_ENCRYPTION_KEY: Secret | None = None
    REDIS_URL = None
    CACHE_TTL = 0  # seconds; 0 is off
    CACHE_SCOPE = "key"
    CACHE_MAX_ENTRIES = 10_000
    TLS_CERT_FILE = None
    TLS_KEY_FILE = None
    TRUSTED_PROXY_HOPS = 0
    TRUSTED_PROXIES: tuple = parsers.networks("127.0.0.1,::1")
    BODY_TIMEOUT = 30.0
    MAX_STREAM_DURATION = 600
    ALLOW_PLAINTEXT_UPSTREAM = False
    DB_STATEMENT_TIMEOUT = 5.0
    DB_POOL_TIMEOUT = 5.0
    IDEMPOTENCY_TTL = 86400
    LIMITS_TABLE: str | None = None
    LIMITS_SLOTS = 262144
    AUTH_FAILURE_LIMIT: str | None = "20/minute"
    AUTH_MODE = "open"
    KEY_HASH_SECRET: Secret | None = None
    RATE_LIMIT: str | None = None
    TOKEN_RATE_LIMIT: str | None = None
    DAILY_TOKEN_QUOTA: int | None = None
    MAX_STREAMS_PER_CLIENT = 8
    LIMITS_FAIL = "closed"
    MAX_TOKENS_CAP = 4096
    MAX_MESSAGES = 256
    MAX_TOTAL_CHARS = 128000
    CORS_ORIGINS: tuple[str, ...] = ()
    BLOCKLIST_FILE = None
    PROMPT_REDACT: tuple[str, ...] = ("card", "ssn", "secret")
    PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "JP", "BR", "AU")
    REPLY_REDACT: tuple[str, ...] = ("email", "phone", "card", "ssn", "iban", "ip", "secret")
    MODERATION = "off"
    MODERATION_FAIL = "closed"
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "text"
    METRICS_TOKEN: Secret | None = None
    ADMIN_TOKEN: Secret | None = None  # from ADMIN_TOKEN, ADMIN_TOKEN_FILE or SECRETS_FILE
    PRICES_FILE = None
    OTEL_EXPORTER_OTLP_ENDPOINT = None
    OPENAI_API_KEY: Secret | None = None
    KEY_SOURCE = "none"

    # variable -> parser; the order is the order of .env.example
    PARSERS: ClassVar[dict[str, Callable[[str], object]]] = {
        "OPENAI_BASE_URL": parsers.http_url,
        "UPSTREAMS_FILE": parsers.path,
        "OPENAI_MODEL": str.strip,
        "ALLOWED_MODELS": parsers.comma_list,
        "ALLOWED_EMBEDDING_MODELS": parsers.comma_list,
        "OFFLINE_MODEL": parsers.boolean,
        "OFFLINE_STREAM_DELAY": parsers.number(0, 5),
        "UPSTREAM_TIMEOUT": parsers.number(0.1, 3600),
        "UPSTREAM_CONNECT_TIMEOUT": parsers.number(0.1, 300),
        "UPSTREAM_MAX_RETRIES": parsers.integer(0, 10),
        "UPSTREAM_CA_BUNDLE": parsers.path,
        "UPSTREAM_POOL_SIZE": parsers.integer(1, 10000),
        "MAX_STREAM_DURATION": parsers.duration,
        "ALLOW_PLAINTEXT_UPSTREAM": parsers.boolean,
        "MAX_PROMPT_CHARS": parsers.integer(1, 10_000_000),
        "MAX_CONTENT_LENGTH": parsers.integer(1024, 1 << 30),
        "BODY_TIMEOUT": parsers.number(0.1, 3600),
        "DATABASE_URL": parsers.database_url,
        "DB_POOL_SIZE": parsers.integer(1, 1000),
        "DB_MAX_OVERFLOW": parsers.integer(0, 1000),
        "DB_AUTO_MIGRATE": parsers.boolean,
        "DB_STATEMENT_TIMEOUT": parsers.number(0.1, 3600),
        "DB_POOL_TIMEOUT": parsers.number(0.1, 3600),
        "HISTORY_TOKEN_BUDGET": parsers.integer(0, 10_000_000),
        "CONVERSATION_TTL": parsers.duration,
        "IDEMPOTENCY_TTL": parsers.duration,
        "DATA_ENCRYPTION_KEY": parsers.fernet_keys,
        "REDIS_URL": parsers.redis_url,
        "LIMITS_TABLE": parsers.limits_table,
        "LIMITS_SLOTS": parsers.integer(1024, 1 << 26),
        "CACHE_TTL": parsers.duration_or_off,
        "CACHE_SCOPE": parsers.choice("key", "shared"),
        "CACHE_MAX_ENTRIES": parsers.integer(1, 10_000_000),
        "TLS_CERT_FILE": parsers.path,
        "TLS_KEY_FILE": parsers.path,
        "TRUSTED_PROXY_HOPS": parsers.integer(0, 10),
        "TRUSTED_PROXIES": parsers.networks,
        "AUTH_MODE": parsers.choice("keys", "open"),
        "KEY_HASH_SECRET": parsers.secret,
        "RATE_LIMIT": parsers.rate,
        "TOKEN_RATE_LIMIT": parsers.rate,
        "DAILY_TOKEN_QUOTA": parsers.integer(1, 10**12),
        "MAX_STREAMS_PER_CLIENT": parsers.integer(0, 100000),
        "LIMITS_FAIL": parsers.choice("open", "closed"),
        "AUTH_FAILURE_LIMIT": parsers.rate,
        "MAX_TOKENS_CAP": parsers.integer(1, 10_000_000),
        "MAX_MESSAGES": parsers.integer(1, 100000),
        "MAX_TOTAL_CHARS": parsers.integer(1, 100_000_000),
        "CORS_ORIGINS": parsers.comma_list,
        "BLOCKLIST_FILE": parsers.path,
        "PROMPT_REDACT": parsers.comma_list,
        "REPLY_REDACT": parsers.comma_list,
        "PHONE_REGIONS": parsers.regions,
        "MODERATION": parsers.choice("off", "openai"),
        "MODERATION_FAIL": parsers.choice("open", "closed"),
        "LOG_LEVEL": parsers.choice("debug", "info", "warning", "error"),
        "LOG_FORMAT": parsers.choice("text", "json"),
        "METRICS_TOKEN": parsers.token,
        "PRICES_FILE": parsers.path,
        "OTEL_EXPORTER_OTLP_ENDPOINT": parsers.http_url,
    }

    def __init__(self, environ: Mapping[str, str]):
        # Every problem is collected, so an operator fixes them all in one restart.
        problems: list[str] = []
        for name, parse in self.PARSERS.items():
            raw = environ.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                setattr(self, name, parse(raw))
            except ValueError as err:
                problems.append(f"{name}: {err}")
        self.LOG_LEVEL = str(self.LOG_LEVEL).upper()
        if not self.ALLOWED_MODELS:
            self.ALLOWED_MODELS = (self.OPENAI_MODEL,)
        problems += self._check_types() + self._check_tls()
        try:
            self.OPENAI_API_KEY, self.KEY_SOURCE = load_api_key(environ)
        except ConfigError as err:
            problems += err.problems
        try:
            self.ADMIN_TOKEN = load_admin_token(environ)
        except ConfigError as err:
            # Both read SECRETS_FILE: a problem with it is said once.
            problems += [p for p in err.problems if p not in problems]
        if self.UPSTREAMS_FILE:
            problems += upstreams.apply_file(self, environ)
        if self.MODERATION == "openai" and self.upstream_mode != "remote":
            problems.append("MODERATION: openai moderation needs a real upstream (set OPENAI_API_KEY)")
        if problems:
            if self.APP_ENV == "production":
                named = {problem.split(":", 1)[0] for problem in problems}
                problems += [p for p in self.serving_problems() if p.split(":", 1)[0] not in named]
            raise ConfigError(*problems)

    def _check_types(self) -> list[str]:
        known = set(Config.REPLY_REDACT)
        problems = []
        for name in ("PROMPT_REDACT", "REPLY_REDACT"):
            unknown = set(getattr(self, name)) - known - {"none"}
            if unknown:
                problems.append(f"{name}: unknown type {sorted(unknown)[0]!r}; expected a comma list of "
                                + ", ".join(sorted(known)) + " or none")
            setattr(self, name, tuple(t for t in getattr(self, name) if t != "none"))
        return problems

    def _check_tls(self) -> list[str]:
        if bool(self.TLS_CERT_FILE) != bool(self.TLS_KEY_FILE):
            return ["TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE must be set together"]
        return [f"{name}: no readable file at the given path"
                for name in ("TLS_CERT_FILE", "TLS_KEY_FILE", "UPSTREAM_CA_BUNDLE", "BLOCKLIST_FILE",
                             "PRICES_FILE")
                if getattr(self, name) and not os.path.isfile(getattr(self, name))]

    @property
    def upstream_mode(self) -> str:
        """'offline' (embedded model), 'remote' (a real upstream) or 'none' (nothing usable)."""
        if self.OFFLINE_MODEL:
            return "offline"
        if self.routing is not None:
            return "remote"  # the file's upstreams (an offline one among them is an upstream like the others)
        # A key, or a non-OpenAI base URL (Ollama, vLLM and llama.cpp need no key), means a real upstream.
        if self.OPENAI_API_KEY is not None or self.OPENAI_BASE_URL != OPENAI_DEFAULT_BASE_URL:
            return "remote"
        return "none" if self.APP_ENV == "production" else "offline"

    @property
    def offline(self) -> bool:
        """True when replies come from the embedded offline model."""
        return self.upstream_mode == "offline"

    @property
    def tls(self) -> bool:
        """True when the server itself speaks HTTPS."""
        return bool(self.TLS_CERT_FILE)

    @property
    def plaintext_upstream(self) -> bool:
        """True when the upstream key would travel in clear: plain http:// to a host that is not this one."""
        return serving.plaintext_upstream(self)

    def serving_problems(self) -> list[str]:
        """What makes this configuration unfit to serve, one line each."""
        return serving.problems(self)

    def check_serving(self) -> None:
        """Refuse to serve a configuration that is only fit for tools and tests, naming every problem at once."""
        problems = self.serving_problems()
        if problems:
            raise ConfigError(*problems)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret this configuration holds, for the log redactor."""
        values = [s.reveal() for s in (self.OPENAI_API_KEY, self.KEY_HASH_SECRET, self.DATA_ENCRYPTION_KEY,
                                       self.METRICS_TOKEN, self.ADMIN_TOKEN) if s]
        values += [k for v in list(values) for k in v.split(",")]  # each of several rotation keys
        values += self.routing.secrets() if self.routing is not None else []
        for url in (self.DATABASE_URL, self.REDIS_URL):
            password = urlsplit(url).password if url else None
            if password:
                values.append(password)
        return tuple(v for v in values if len(v) >= 6)

    def as_mapping(self) -> dict:
        """Every upper-case setting, for ``app.config``."""
        return {name: getattr(self, name) for name in dir(self) if name.isupper()}

    def banner(self, url: str) -> list[str]:
        """The start-up block: where, which mode, which upstream, which stores, and every warning."""
        return serving.banner(self, url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} env={self.APP_ENV} upstream={self.upstream_mode}>"


class DevelopmentConfig(Config):
    """Local work: open auth, offline model when no key is set."""

    APP_ENV = "development"


class ProductionConfig(Config):
    """Serving real users: client keys on, limits on, a real upstream key required."""

    APP_ENV = "production"
    AUTH_MODE = "keys"
    RATE_LIMIT = "60/minute"
    TOKEN_RATE_LIMIT = "40000/minute"
    DAILY_TOKEN_QUOTA = 1_000_000
    # One JSON object a line: what log collectors parse without a pattern.
    LOG_FORMAT = "json"
    # Several instances may start at once: the schema is upgraded by one deliberate `db upgrade`.
    DB_AUTO_MIGRATE = False


class TestingConfig(Config):
    """The test suite: offline model, no stream delays, no retry sleeps."""

    APP_ENV = "testing"
    TESTING = True
    OFFLINE_STREAM_DELAY = 0.0
    DATABASE_URL = "sqlite://"


CONFIGS = {"development": DevelopmentConfig, "production": ProductionConfig, "testing": TestingConfig}


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Build the Config for APP_ENV from ``environ`` (default: os.environ after .env)."""
    if environ is None:
        from dotenv import load_dotenv

        load_dotenv(override=False)
        environ = os.environ
    env = (environ.get("APP_ENV") or "development").strip().lower()
    if env not in CONFIGS:
        raise ConfigError("APP_ENV: expected one of " + ", ".join(ENVIRONMENTS))
    return CONFIGS[env](environ)
