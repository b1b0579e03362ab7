"""The chat pipeline shared by every front door: guard, call upstream, filter.

Front doors (``/chat``, later ``/v1/chat/completions``) only translate their
own wire format to and from these calls, so no check can exist on one door
and not the other.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .accounting import Meter
from .errors import APIError, InvalidRequest, PromptRejected, ServiceUnavailable
from .filter import ContentFilter, FilterResult
from .relay import BLOCKED_FINISH, ReplyStream, completion_id
from .tokens import usage_or_estimate
from .upstream import StreamFailed, UpstreamClient

log = logging.getLogger(__name__)

@dataclass
class Choice:
    """One filtered reply of a completion."""

    index: int
    reply: str
    finish_reason: str | None
    filter: FilterResult
    tool_calls: list | None = None


@dataclass
class Completion:
    """A filtered completion, ready for any front door to format."""

    id: str
    model: str
    created: int
    usage: dict
    choices: list[Choice]


class Gateway:
    """Holds the upstream client and the filter; runs one chat request through both."""

    def __init__(self, upstream: UpstreamClient, content_filter: ContentFilter, meter: Meter, *,
                 default_model: str, allowed_models: tuple[str, ...], prompt_redact: tuple[str, ...],
                 moderation: str = "off", moderation_fail: str = "closed"):
        self.upstream = upstream
        self.meter = meter
        self.filter = content_filter
        self.default_model = default_model
        self.allowed_models = allowed_models
        self.prompt_redact = prompt_redact
        self.moderation = moderation
        self.moderation_fail = moderation_fail

    def resolve_model(self, requested: str | None) -> str:
        """The model to use: the requested one if allowed, else the default."""
        if requested is None:
            return self.default_model
        if requested not in self.allowed_models:
            raise InvalidRequest(f"model {requested!r} is not available; see GET /v1/models",
                                 param="model", code="model_not_found")
        return requested

    def guard(self, messages: list[dict]) -> list[dict]:
        """Redact high-risk PII from every message and refuse blocked prompts; returns new messages."""
        return [self._guard_message(message) for message in messages]

    def _guard_message(self, message: dict) -> dict:
        content = message.get("content")
        if isinstance(content, str):
            return {**message, "content": self._guard_text(content)}
        if isinstance(content, list):
            parts = [{**part, "text": self._guard_text(part["text"])}
                     if isinstance(part, dict) and isinstance(part.get("text"), str) else part for part in content]
            return {**message, "content": parts}
        return message

    def _guard_text(self, text: str) -> str:
        if not text:
            return text
        scan = self.filter.scan_prompt(text, redact=self.prompt_redact)
        if scan.action == "blocked":
            raise PromptRejected()
        if self._flagged(scan.text):
            raise PromptRejected("the prompt was flagged by moderation", code="prompt_flagged")
        return scan.text

    def _flagged(self, text: str) -> bool:
        if self.moderation != "openai" or not text:
            return False
        try:
            return self.upstream.moderate(text)
        except APIError as err:
            if self.moderation_fail == "open":
                log.warning("moderation unavailable (%s); failing open", err.code)
                return False
            raise ServiceUnavailable("content moderation is unavailable", code="moderation_unavailable") from None

    def complete(self, payload: dict, caller, endpoint: str) -> Completion:
        """One non-streamed call: admit, upstream, the response filter on every choice, record."""
        ticket = self.meter.admit(caller, payload, endpoint, stream=False)
        try:
            done = self._complete(payload)
        except APIError as err:
            ticket.close(err.status, None)
            raise
        blocked = any(c.filter.action == "blocked" for c in done.choices)
        redacted = any(c.filter.action == "redacted" for c in done.choices)
        ticket.close(200, done.usage, "blocked" if blocked else "redacted" if redacted else "none")
        return done

    def _complete(self, payload: dict) -> Completion:
        body = self.upstream.chat(payload)
        choices, raw_texts = [], []
        for position, choice in enumerate(body["choices"]):
            message = choice["message"]  # shape checked by check_completion
            raw_text = message.get("content") if isinstance(message.get("content"), str) else ""
            raw_texts.append(raw_text)
            result = self.filter.apply(raw_text)
            if result.action != "blocked" and self._flagged(result.text):
                result = FilterResult("", "blocked", result.findings + ({"type": "moderation", "count": 1},))
            blocked = result.action == "blocked"
            index = choice.get("index")
            choices.append(Choice(index=index if isinstance(index, int) else position, reply=result.text,
                                  finish_reason=BLOCKED_FINISH if blocked else choice.get("finish_reason"),
                                  filter=result, tool_calls=None if blocked else message.get("tool_calls")))
        created = body.get("created")
        return Completion(id=str(body.get("id") or completion_id()), model=str(body.get("model") or payload["model"]),
                          created=created if isinstance(created, int) else int(time.time()),
                          usage=usage_or_estimate(body.get("usage"), payload["messages"], "".join(raw_texts)),
                          choices=choices)

    def open_stream(self, payload: dict, caller, endpoint: str) -> "ReplyStream":
        """Start a streamed call; any failure before the first event raises an ordinary APIError."""
        ticket = self.meter.admit(caller, payload, endpoint, stream=True)
        try:
            upstream = self.upstream.chat_stream(payload)
        except APIError as err:
            ticket.close(err.status, None)
            raise
        stream = ReplyStream(upstream, self.filter.stream(), payload, ticket)
        try:
            stream.prime()
        except StreamFailed as failed:
            upstream.close()
            ticket.close(failed.error.status, None)
            raise failed.error from None
        return stream


class NoUpstream:
    """Stands in for the client when no upstream is configured: every call is a 503."""

    def _refuse(self, *_args, **_kwargs):
        raise ServiceUnavailable("no upstream is configured", code="upstream_not_configured")

    chat = chat_stream = moderate = _refuse


def build_messages(prompt: str, system: str | None, history: list[dict] | None = None) -> list[dict]:
    """System message first, then history, then the new user prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.extend(history or ())
    messages.append({"role": "user", "content": prompt})
    return messages


def init_app(app, config) -> None:
    """Build the process's pooled session, upstream client, filter and gateway (after db and limits)."""
    from .settings import ConfigError

    from .filter import load_blocklist
    from .offline import OFFLINE_BASE_URL, OfflineAdapter
    from .upstream import build_session

    session = build_session(config.UPSTREAM_POOL_SIZE, config.UPSTREAM_CA_BUNDLE)
    if config.offline:
        session.mount(OFFLINE_BASE_URL, OfflineAdapter(chunk_delay=config.OFFLINE_STREAM_DELAY,
                                                       models=list(config.ALLOWED_MODELS)))
        base_url, key = OFFLINE_BASE_URL, None
    else:
        base_url = config.OPENAI_BASE_URL
        key = config.OPENAI_API_KEY.reveal() if config.OPENAI_API_KEY else None
    client = UpstreamClient(session, base_url, key, config.UPSTREAM_CONNECT_TIMEOUT,
                            config.UPSTREAM_TIMEOUT, config.UPSTREAM_MAX_RETRIES)
    if config.upstream_mode == "none":
        client = NoUpstream()
    try:
        blocklist = load_blocklist(config.BLOCKLIST_FILE)
    except ValueError as err:
        raise ConfigError(f"BLOCKLIST_FILE: {err}") from None
    content_filter = ContentFilter(blocklist, redact=config.REPLY_REDACT)
    meter = Meter(app.extensions["limiter"], app.extensions["store"], max_tokens_cap=config.MAX_TOKENS_CAP,
                  max_messages=config.MAX_MESSAGES, max_total_chars=config.MAX_TOTAL_CHARS)
    app.extensions["chatgate"] = Gateway(
        client, content_filter, meter, default_model=config.OPENAI_MODEL, allowed_models=config.ALLOWED_MODELS,
        prompt_redact=config.PROMPT_REDACT, moderation=config.MODERATION, moderation_fail=config.MODERATION_FAIL)
