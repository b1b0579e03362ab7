"""Reading ``UPSTREAMS_FILE`` (TOML): named upstreams and model routes, checked strictly.

The file's shape (README, "Routing and fallbacks")::

    deadline = "120s"                     # one call, every target and retry included
    [breaker]                             # defaults; [upstreams.NAME.breaker] overrides them
    failure_rate = 0.5
    min_requests = 5
    window = "60s"
    cooldown = "30s"
    [upstreams.primary]
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"        # or api_key_file = "/run/secrets/openai"
    auth = "bearer"                       # or "api-key" (Azure OpenAI)
    query = { "api-version" = "2024-10-21" }
    timeout = 60
    connect_timeout = 5
    max_retries = 2
    developer_role = "developer"          # or "system", for an upstream that does not know the role
    [upstreams.demo]
    kind = "offline"                      # the embedded offline model
    [models."gpt-4o-mini"]
    targets = ["primary", "demo"]         # "upstream" or "upstream:its model name"
    strategy = "fallback"                 # or "weighted", with weights = [3, 1]

Every problem is one line naming its entry (``[upstreams.local] timeout: …``);
``ConfigError`` carries them all, so start-up stops naming each at once.
Keys are ``Secret``s: they never show in a repr, a log line or an error.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .parsers import Secret, duration, http_url
from .routing import DEFAULT_DEADLINE, BreakerSpec, Config, Defaults, RouteSpec, Routing, TargetSpec, UpstreamSpec

KINDS = ("openai", "offline")
AUTH_SCHEMES = ("bearer", "api-key")
DEVELOPER_ROLES = ("developer", "system")
STRATEGIES = ("fallback", "weighted")
# Names label metrics and travel in a response header: short, plain and bounded by the file.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEY = re.compile(r"[\x21-\x7e]{8,512}")
_UPSTREAM_KEYS = frozenset({"kind", "base_url", "api_key_env", "api_key_file", "auth", "query", "timeout",
                            "connect_timeout", "max_retries", "developer_role", "breaker"})
_BREAKER_KEYS = frozenset({"failure_rate", "min_requests", "window", "cooldown"})
_ROUTE_KEYS = frozenset({"targets", "strategy", "weights"})


def load_routing(path: str, environ: Mapping[str, str], defaults: Defaults) -> Routing:
    """Read and check ``UPSTREAMS_FILE``; ConfigError with one line per problem."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError("UPSTREAMS_FILE: no readable file at the given path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"UPSTREAMS_FILE: not valid TOML ({err})") from None
    return _Reader(environ, defaults).routing(raw)


def apply_file(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Load UPSTREAMS_FILE onto ``config`` (routing, allowed and default models); the problems, one line each."""
    if config.OFFLINE_MODEL:
        return ['UPSTREAMS_FILE: cannot be combined with OFFLINE_MODEL=true; give the file an upstream with '
                + 'kind = "offline" instead']
    try:
        routing = load_routing(config.UPSTREAMS_FILE, environ, Defaults(
            config.UPSTREAM_TIMEOUT, config.UPSTREAM_CONNECT_TIMEOUT, config.UPSTREAM_MAX_RETRIES))
    except ConfigError as err:
        return list(err.problems)
    config.routing = routing
    embedding = set(config.ALLOWED_EMBEDDING_MODELS)
    problems = []
    if (environ.get("ALLOWED_MODELS") or "").strip():
        unknown = [m for m in config.ALLOWED_MODELS if m not in routing.routes]
        if unknown:
            problems.append(f"ALLOWED_MODELS: {unknown[0]!r} is not a route of UPSTREAMS_FILE; with the file, "
                            + 'ALLOWED_MODELS may only narrow its [models."NAME"] routes')
    else:
        config.ALLOWED_MODELS = tuple(name for name in routing.routes if name not in embedding)
        if not config.ALLOWED_MODELS:
            problems.append("UPSTREAMS_FILE: every route is an embedding model (ALLOWED_EMBEDDING_MODELS); "
                            + "add a chat route")
    if (environ.get("OPENAI_MODEL") or "").strip():
        if config.OPENAI_MODEL not in config.ALLOWED_MODELS:
            problems.append(f"OPENAI_MODEL: {config.OPENAI_MODEL!r} is not one of the chat routes clients may use "
                            + "(the routes of UPSTREAMS_FILE, narrowed by ALLOWED_MODELS)")
    elif config.ALLOWED_MODELS and config.OPENAI_MODEL not in config.ALLOWED_MODELS:
        config.OPENAI_MODEL = config.ALLOWED_MODELS[0]  # the file's first chat route
    return problems


class _Reader:
    """Turns the parsed TOML into a Routing, collecting one line per problem."""

    def __init__(self, environ: Mapping[str, str], defaults: Defaults):
        self.environ = environ
        self.defaults = defaults
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"UPSTREAMS_FILE: {where}{message}")

    def routing(self, raw: dict) -> Routing:
        for key in sorted(set(raw) - {"deadline", "breaker", "upstreams", "models"}):
            self.fail("", f"unknown key {key!r} (expected deadline, [breaker], [upstreams.*], [models.*])")
        deadline = self.seconds("", "deadline", raw.get("deadline", DEFAULT_DEADLINE))
        breaker = self.breaker("[breaker] ", self.table("", "breaker", raw.get("breaker", {})), BreakerSpec())
        upstreams: dict[str, UpstreamSpec] = {}
        for name, entry in self.table("", "upstreams", raw.get("upstreams", {})).items():
            spec = self.upstream(name, entry, breaker)
            if spec is not None:
                upstreams[name] = spec
        routes: dict[str, RouteSpec] = {}
        for name, entry in self.table("", "models", raw.get("models", {})).items():
            route = self.route(name, entry, raw.get("upstreams", {}))
            if route is not None:
                routes[name] = route
        if not upstreams and not self.problems:
            self.fail("", "no [upstreams.NAME] entry")
        if not routes and not self.problems:
            self.fail("", 'no [models."NAME"] route')
        if self.problems:
            raise ConfigError(*self.problems)
        return Routing(upstreams, routes, deadline)

    def table(self, where: str, key: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"{key}: expected a table")
            return {}
        return value

    def seconds(self, where: str, key: str, value: Any, low: float = 0.1, high: float = 3600.0) -> float:
        if isinstance(value, str):
            try:
                value = duration(value)
            except ValueError as err:
                self.fail(where, f"{key}: {err}")
                return low
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            self.fail(where, f"{key}: expected seconds from {low:g} to {high:g} (a number, or a duration such "
                      + "as 90s or 10m)")
            return low
        return float(value)

    def integer(self, where: str, key: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"{key}: expected a whole number from {low} to {high}")
            return low
        return value

    def choice(self, where: str, key: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options:
            self.fail(where, f"{key}: expected one of " + ", ".join(f'"{o}"' for o in options))
            return options[0]
        return value

    def breaker(self, where: str, entry: dict, base: BreakerSpec) -> BreakerSpec:
        for key in sorted(set(entry) - _BREAKER_KEYS):
            self.fail(where, f"unknown key {key!r} (expected " + ", ".join(sorted(_BREAKER_KEYS)) + ")")
        rate = entry.get("failure_rate", base.failure_rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            self.fail(where, "failure_rate: expected a number above 0 and at most 1 (0.5 is half the calls)")
            rate = base.failure_rate
        return BreakerSpec(failure_rate=float(rate),
                           min_requests=self.integer(where, "min_requests",
                                                     entry.get("min_requests", base.min_requests), 1, 100000),
                           window=self.seconds(where, "window", entry.get("window", base.window), 1, 86400),
                           cooldown=self.seconds(where, "cooldown", entry.get("cooldown", base.cooldown), 0.1, 86400))

    def upstream(self, name: str, entry: Any, breaker: BreakerSpec) -> UpstreamSpec | None:
        where = f"[upstreams.{name}] "
        if not _NAME.fullmatch(name):
            self.fail(where, "the name must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter "
                      + "or digit")
            return None
        if not isinstance(entry, dict):
            self.fail(where, "expected a table")
            return None
        for key in sorted(set(entry) - _UPSTREAM_KEYS):
            self.fail(where, f"unknown key {key!r} (expected " + ", ".join(sorted(_UPSTREAM_KEYS)) + ")")
        kind = self.choice(where, "kind", entry.get("kind", "openai"), KINDS)
        base_url, key, source = "", None, "none"
        if kind == "offline":
            for key_name in ("base_url", "api_key_env", "api_key_file", "auth", "query"):
                if key_name in entry:
                    self.fail(where, f"{key_name}: an offline upstream has no {key_name}")
        else:
            try:
                base_url = http_url(str(entry["base_url"])) if isinstance(entry.get("base_url"), str) else ""
            except ValueError as err:
                self.fail(where, f"base_url: {err}")
            else:
                if not base_url:
                    self.fail(where, "base_url: expected an http(s) URL such as https://api.openai.com/v1")
            key, source = self.api_key(where, entry)
        return UpstreamSpec(
            name=name, kind=kind, base_url=base_url, api_key=key, key_source=source,
            auth=self.choice(where, "auth", entry.get("auth", "bearer"), AUTH_SCHEMES),
            query=self.query(where, entry.get("query", {})),
            timeout=self.seconds(where, "timeout", entry.get("timeout", self.defaults.timeout)),
            connect_timeout=self.seconds(where, "connect_timeout",
                                         entry.get("connect_timeout", self.defaults.connect_timeout), 0.1, 300),
            max_retries=self.integer(where, "max_retries", entry.get("max_retries", self.defaults.max_retries), 0, 10),
            developer_role=self.choice(where, "developer_role", entry.get("developer_role", "developer"),
                                       DEVELOPER_ROLES),
            breaker=self.breaker(where + "breaker ", self.table(where, "breaker", entry.get("breaker", {})), breaker))

    def api_key(self, where: str, entry: dict) -> tuple[Secret | None, str]:
        env, path = entry.get("api_key_env"), entry.get("api_key_file")
        if env is not None and path is not None:
            self.fail(where, "api_key_env and api_key_file: set one of them, not both")
            return None, "none"
        if env is not None:
            setting = "api_key_env"
            if not isinstance(env, str) or not _ENV_NAME.fullmatch(env):
                self.fail(where, "api_key_env: expected the name of an environment variable")
                return None, "none"
            raw, source = (self.environ.get(env) or "").strip(), f"env {env}"
            if not raw:
                self.fail(where, f"api_key_env: {env} is not set")
                return None, "none"
        elif path is not None:
            setting, source = "api_key_file", f"file {path}"
            try:
                raw = Path(str(path)).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                self.fail(where, "api_key_file: no readable UTF-8 file at the given path")
                return None, "none"
        else:
            return None, "none"
        if not _KEY.fullmatch(raw):
            # Never the value: it may be most of a key with one bad character.
            self.fail(where, f"{setting}: the key must be 8 to 512 printable ASCII characters without spaces")
            return None, "none"
        return Secret(raw), source

    def query(self, where: str, value: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                  for k, v in value.items()):
            self.fail(where, 'query: expected a table of strings, such as { "api-version" = "2024-10-21" }')
            return ()
        return tuple(sorted(value.items()))

    def route(self, name: str, entry: Any, upstreams: Any) -> RouteSpec | None:
        where = f'[models."{name}"] '
        if not name or len(name) > 255 or not name.isprintable() or name != name.strip():
            self.fail(where, "the model name must be 1 to 255 printable characters")
            return None
        if not isinstance(entry, dict):
            self.fail(where, "expected a table")
            return None
        for key in sorted(set(entry) - _ROUTE_KEYS):
            self.fail(where, f"unknown key {key!r} (expected targets, strategy, weights)")
        raw_targets = entry.get("targets")
        if not isinstance(raw_targets, list) or not raw_targets or not all(isinstance(t, str) for t in raw_targets):
            self.fail(where, 'targets: expected a list such as ["primary", "local:qwen2.5:7b"]')
            return None
        targets = []
        for text in raw_targets:
            upstream, _, model = text.partition(":")
            if not isinstance(upstreams, dict) or upstream not in upstreams:
                self.fail(where, f"targets: {upstream!r} is not an [upstreams.NAME] entry")
            targets.append(TargetSpec(upstream, model or name))
        if len(set(targets)) != len(targets):
            self.fail(where, "targets: each target may appear once")
        strategy = self.choice(where, "strategy", entry.get("strategy", "fallback"), STRATEGIES)
        weights = entry.get("weights")
        if strategy == "fallback" and weights is not None:
            self.fail(where, 'weights: only a "weighted" route has weights')
        if strategy == "weighted":
            if (not isinstance(weights, list) or len(weights) != len(targets)
                    or not all(not isinstance(w, bool) and isinstance(w, (int, float)) and w > 0 for w in weights)):
                self.fail(where, "weights: expected one positive number per target, such as [3, 1]")
                weights = [1] * len(targets)
        return RouteSpec(name, tuple(targets), strategy, tuple(float(w) for w in weights or ()))
