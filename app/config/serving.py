"""What a configuration needs before it may serve: the problems that stop start-up, and the start-up banner.

Production start-up names every problem at once (one line each), so an
operator fixes them in one restart rather than one restart per setting.
"""
from __future__ import annotations

from typing import Any

from . import parsers
from .routing import Routing, sends_in_clear

# A settings.Config; not imported, since Config calls into this module.
Config = Any


def plaintext_upstream(config: Config) -> bool:
    """True when an upstream key would travel in clear: plain http:// to a host that is not this one."""
    if config.routing is not None:
        return bool(config.routing.in_clear())
    return config.OPENAI_API_KEY is not None and not config.offline and sends_in_clear(config.OPENAI_BASE_URL)


def problems(config: Config) -> list[str]:
    """What makes ``config`` unfit to serve, one line each; outside production only a missing upstream counts."""
    found = []
    if config.upstream_mode == "none":
        found.append("OPENAI_API_KEY: production needs an upstream key (or OPENAI_API_KEY_FILE, "
                     + "or SECRETS_FILE with SECRETS_KEY); set OFFLINE_MODEL=true to serve the offline model")
    if config.APP_ENV != "production":
        return found
    if config.AUTH_MODE == "open":
        found.append("AUTH_MODE: open mode is for one developer (callers are told apart only by address); "
                     + "production needs AUTH_MODE=keys")
    if config.AUTH_MODE == "keys" and config.KEY_HASH_SECRET is None:
        found.append("KEY_HASH_SECRET: production needs a secret for hashing client keys "
                     + "(32+ random characters, e.g. from `openssl rand -base64 32`)")
    if config.DATA_ENCRYPTION_KEY is None:
        found.append("DATA_ENCRYPTION_KEY: production needs a key for conversation text at rest; "
                     + "make one with `flask --app wsgi db generate-key`")
    if plaintext_upstream(config) and not config.ALLOW_PLAINTEXT_UPSTREAM:
        if config.routing is None:
            found.append("OPENAI_BASE_URL: plain http:// to another host would send the upstream key in clear; "
                         + "use https:// or set ALLOW_PLAINTEXT_UPSTREAM=true")
        else:
            found += [f"UPSTREAMS_FILE: [upstreams.{name}] plain http:// to another host would send its key in "
                      + "clear; use https:// or set ALLOW_PLAINTEXT_UPSTREAM=true"
                      for name in config.routing.in_clear()]
    return found


def banner(config: Config, url: str) -> list[str]:
    """The start-up block: where, which mode, which upstream, which stores, and every warning."""
    upstream = {"offline": "embedded offline model", "none": "none configured",
                "remote": f"{config.OPENAI_BASE_URL} (key from {config.KEY_SOURCE})"}[config.upstream_mode]
    limits = ", ".join(f"{name}={value}" for name, value in (
        ("requests", config.RATE_LIMIT), ("tokens", config.TOKEN_RATE_LIMIT),
        ("daily", config.DAILY_TOKEN_QUOTA), ("streams", config.MAX_STREAMS_PER_CLIENT)) if value) or "none"
    if config.REDIS_URL:
        store = parsers.without_password(config.REDIS_URL)
    else:
        store = "shared by this instance's workers" if config.LIMITS_TABLE else "in-process"
    lines = [f"chatgate listening on {url}",
             f"  mode: {config.APP_ENV}   auth: {config.AUTH_MODE}   model: {config.OPENAI_MODEL}",
             *(routing_lines(config.routing) if config.routing is not None else [f"  upstream: {upstream}"]),
             f"  storage: {parsers.without_password(config.DATABASE_URL)}",
             f"  limits: {limits} (store: {store}, fail {config.LIMITS_FAIL})"]
    if config.CACHE_TTL:
        where = "Redis" if config.REDIS_URL else "the database"
        lines.append(f"  response cache: {config.CACHE_TTL} s, {config.CACHE_SCOPE} scope, "
                     + f"at most {config.CACHE_MAX_ENTRIES} entries in {where}")
    if config.offline:
        lines.append("  !! OFFLINE MODEL: replies are canned and deterministic. Set OPENAI_API_KEY "
                     + "(or OPENAI_API_KEY_FILE, or SECRETS_FILE + SECRETS_KEY) to use OpenAI.")
    if config.AUTH_MODE == "open":
        lines.append("  !! AUTH_MODE=open: anyone who can reach this port spends your upstream budget, and callers "
                     + "are told apart only by address; set AUTH_MODE=keys and create keys with "
                     + "`flask --app wsgi keys create NAME`.")
    if plaintext_upstream(config) and config.routing is None:
        refused = "" if config.ALLOW_PLAINTEXT_UPSTREAM else ", and production refuses it"
        lines.append("  !! the upstream key goes in clear to a plain http:// upstream on another host: "
                     + f"use https://{refused} unless ALLOW_PLAINTEXT_UPSTREAM=true")
    return lines


def routing_lines(routing: Routing) -> list[str]:
    """The banner's upstreams (where, and where each key came from) and routes (targets and strategy)."""
    lines = ["  upstreams:"]
    for spec in routing.upstreams.values():
        key = f"key from {spec.key_source}" if spec.api_key is not None else "no key"
        url = parsers.without_password(spec.base_url)
        where = "embedded offline model" if spec.kind == "offline" else f"{url} ({key})"
        auth = ", api-key header" if spec.auth == "api-key" else ""
        b = spec.breaker
        lines.append(f"    {spec.name}: {where}{auth}; timeout {spec.timeout:g}s, {spec.max_retries} retries; breaker "
                     + f"opens at {b.failure_rate:.0%} failed of {b.min_requests}+ calls in {b.window:g}s, "
                     + f"cools {b.cooldown:g}s")
    lines.append(f"  routes (deadline {routing.deadline:g}s a call):" if routing.deadline else "  routes:")
    for route in routing.routes.values():
        targets = [t.upstream if t.model == route.name else f"{t.upstream}:{t.model}" for t in route.targets]
        if route.strategy == "weighted":
            targets = [f"{t} x{w:g}" for t, w in zip(targets, route.weights, strict=True)]
        lines.append(f"    {route.name} -> " + ", ".join(targets) + f" ({route.strategy})")
    for spec in routing.upstreams.values():
        if spec.api_key is not None and sends_in_clear(spec.base_url):
            lines.append(f"  !! upstream {spec.name}: its key goes in clear to a plain http:// upstream on another "
                         + "host; use https://")
    return lines
