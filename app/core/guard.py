"""The prompt guard: what a client sends is checked before it leaves for the upstream.

A block-list hit refuses the request (400 ``prompt_blocked``); the PII types
in ``PROMPT_REDACT`` are replaced by placeholders; with ``MODERATION=openai``
the upstream's moderation endpoint may refuse it too (``prompt_flagged``).
"""
from __future__ import annotations

import logging
from typing import Protocol

from ..errors import APIError, PromptRejected, ServiceUnavailable
from ..filter import ContentFilter

log = logging.getLogger(__name__)


class Moderator(Protocol):
    """What the guard needs of an upstream client for moderation."""

    def moderate(self, text: str) -> bool:
        """True when ``text`` is flagged."""


class PromptGuard:
    """Guards prompts, and asks moderation about replies when it is on."""

    def __init__(self, content_filter: ContentFilter, moderator: Moderator, *, redact: tuple[str, ...],
                 moderation: str = "off", moderation_fail: str = "closed"):
        self.filter = content_filter
        self.moderator = moderator
        self.redact = redact
        self.moderation = moderation
        self.moderation_fail = moderation_fail

    def messages(self, messages: list[dict]) -> list[dict]:
        """New messages with every text guarded; raises PromptRejected."""
        return [self._message(message) for message in messages]

    def text(self, text: str | None) -> str | None:
        """One guarded text (None and "" pass through)."""
        if not text:
            return text
        scan = self.filter.scan_prompt(text, redact=self.redact)
        if scan.action == "blocked":
            raise PromptRejected()
        if self.flagged(scan.text):
            raise PromptRejected("the prompt was flagged by moderation", code="prompt_flagged")
        return scan.text

    def _message(self, message: dict) -> dict:
        content = message.get("content")
        if isinstance(content, str):
            return {**message, "content": self.text(content)}
        if isinstance(content, list):
            parts = [{**part, "text": self.text(part["text"])}
                     if isinstance(part, dict) and isinstance(part.get("text"), str) else part for part in content]
            return {**message, "content": parts}
        return message

    def flagged(self, text: str) -> bool:
        """True when moderation is on and flags ``text`` (an outage follows MODERATION_FAIL)."""
        if self.moderation != "openai" or not text:
            return False
        try:
            return self.moderator.moderate(text)
        except APIError as err:
            if self.moderation_fail == "open":
                log.warning("moderation unavailable (%s); failing open", err.code)
                return False
            raise ServiceUnavailable("content moderation is unavailable", code="moderation_unavailable") from None
