"""Upstreams and routes as the app uses them: from ``UPSTREAMS_FILE``, or one upstream made from ``OPENAI_*``.

Without the file, the ``OPENAI_*`` settings make one upstream (``default``,
or ``offline`` for the embedded model) with one route per allowed model and
no circuit breaker, so everything behaves as it did before routing existed.
With the file, its routes are the public model names: ``ALLOWED_MODELS``, if
set, may only narrow them, and ``OPENAI_MODEL`` must be one of them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .parsers import Secret

DEFAULT_DEADLINE = 120.0

# A settings.Config; not imported, since Config calls into this module.
Config = Any


@dataclass(frozen=True)
class BreakerSpec:
    """When an upstream's circuit opens, and for how long it cools down."""

    failure_rate: float = 0.5
    min_requests: int = 5
    window: float = 60.0
    cooldown: float = 30.0
    enabled: bool = True


@dataclass(frozen=True)
class UpstreamSpec:
    """One named upstream: where, as whom, and with which timeouts."""

    name: str
    kind: str = "openai"
    base_url: str = ""
    api_key: Secret | None = None
    key_source: str = "none"
    auth: str = "bearer"
    query: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0
    connect_timeout: float = 5.0
    max_retries: int = 2
    developer_role: str = "developer"
    breaker: BreakerSpec = field(default_factory=BreakerSpec)


@dataclass(frozen=True)
class TargetSpec:
    """One target of a route: an upstream, and the model name to ask it for."""

    upstream: str
    model: str


@dataclass(frozen=True)
class RouteSpec:
    """A public model name and the targets that serve it."""

    name: str
    targets: tuple[TargetSpec, ...]
    strategy: str = "fallback"
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class Routing:
    """Every upstream and route; ``source`` is ``file`` or ``settings`` (one upstream from OPENAI_*)."""

    upstreams: dict[str, UpstreamSpec]
    routes: dict[str, RouteSpec]
    deadline: float | None = DEFAULT_DEADLINE
    source: str = "file"

    def secrets(self) -> list[str]:
        """Every upstream key, for the log scrubber."""
        return [spec.api_key.reveal() for spec in self.upstreams.values() if spec.api_key is not None]

    def in_clear(self) -> list[str]:
        """The upstreams whose key would travel in clear (plain http:// to another host)."""
        return [spec.name for spec in self.upstreams.values()
                if spec.api_key is not None and sends_in_clear(spec.base_url)]


@dataclass(frozen=True)
class Defaults:
    """What an upstream gets for a setting it leaves out: the UPSTREAM_* settings."""

    timeout: float
    connect_timeout: float
    max_retries: int


def sends_in_clear(url: str) -> bool:
    """True for plain http:// to a host that is not this one."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


def from_settings(config: Config) -> Routing:
    """The one upstream of the OPENAI_* settings, a route per allowed model, no breaker: behaviour as before."""
    offline = config.offline
    spec = UpstreamSpec(name="offline" if offline else "default", kind="offline" if offline else "openai",
                        base_url="" if offline else config.OPENAI_BASE_URL,
                        api_key=None if offline else config.OPENAI_API_KEY,
                        key_source=config.KEY_SOURCE, timeout=config.UPSTREAM_TIMEOUT,
                        connect_timeout=config.UPSTREAM_CONNECT_TIMEOUT, max_retries=config.UPSTREAM_MAX_RETRIES,
                        breaker=BreakerSpec(enabled=False))
    models = dict.fromkeys((config.OPENAI_MODEL, *config.ALLOWED_MODELS, *config.ALLOWED_EMBEDDING_MODELS))
    routes = {m: RouteSpec(m, (TargetSpec(spec.name, m),)) for m in models}
    return Routing({spec.name: spec}, routes, deadline=None, source="settings")
