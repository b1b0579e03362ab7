"""The prompt guard: every string a client sends upstream is checked before it leaves.

Two kinds of string, two treatments:

- **prose** the model reads (message text, tool and function descriptions,
  tool-call arguments and results, the strings of a JSON schema, ``stop``,
  ``user``, metadata values, predicted output): a block-list hit refuses the
  request (400 ``prompt_blocked``) and the PII types in ``PROMPT_REDACT`` are
  replaced by placeholders;
- **identifiers** a client needs verbatim (function, tool and property names,
  enum and const values, schema keywords such as ``type`` or ``pattern``,
  metadata keys): a block-list hit refuses the request, but they are never
  rewritten, since a rewritten name would break the client's own code.

Images, audio and files are passed as they are; only their text is read.
With ``MODERATION=openai`` the upstream's moderation endpoint may refuse
message text too (``prompt_flagged``).
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

from ..errors import APIError, PromptRejected, ServiceUnavailable
from ..filter import ContentFilter

log = logging.getLogger(__name__)

# JSON Schema keys whose string values are names or syntax, not prose.
SCHEMA_IDENTIFIERS = frozenset({"type", "format", "pattern", "$ref", "$id", "$schema", "$anchor", "required",
                                "enum", "const", "contentEncoding", "contentMediaType", "propertyNames"})
# JSON Schema keys whose values map names to sub-schemas.
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


class Moderator(Protocol):
    """What the guard needs of an upstream client for moderation."""

    def moderate(self, text: str) -> bool:
        """True when ``text`` is flagged."""


class PromptGuard:
    """Guards whole upstream requests, and asks moderation about replies when it is on."""

    def __init__(self, content_filter: ContentFilter, moderator: Moderator, *, redact: tuple[str, ...],
                 moderation: str = "off", moderation_fail: str = "closed"):
        self.filter = content_filter
        self.moderator = moderator
        self.redact = redact
        self.moderation = moderation
        self.moderation_fail = moderation_fail

    # --- whole requests

    def payload(self, payload: dict) -> dict:
        """A copy of a chat-completions request with every client string guarded; raises PromptRejected."""
        out = dict(payload)
        out["messages"] = self.messages(payload["messages"])
        for key in ("tools", "functions"):
            if payload.get(key):
                out[key] = [self._tool(tool) for tool in payload[key]]
        fmt = payload.get("response_format")
        if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
            spec = dict(fmt["json_schema"])
            self.identifier(spec.get("name"))
            if isinstance(spec.get("description"), str):
                spec["description"] = self.prose(spec["description"])
            if isinstance(spec.get("schema"), dict):
                spec["schema"] = self.schema(spec["schema"])
            out["response_format"] = {**fmt, "json_schema": spec}
        stop = payload.get("stop")
        if isinstance(stop, str):
            out["stop"] = self.prose(stop)
        elif isinstance(stop, list):
            out["stop"] = [self.prose(s) for s in stop]
        for key in ("user", "safety_identifier"):
            if isinstance(payload.get(key), str):
                out[key] = self.prose(payload[key])
        if isinstance(payload.get("metadata"), dict):
            out["metadata"] = {self.identifier(k): self.prose(v) for k, v in payload["metadata"].items()}
        prediction = payload.get("prediction")
        if isinstance(prediction, dict) and "content" in prediction:
            out["prediction"] = {**prediction, "content": self._content(prediction["content"], moderate=False)}
        self._names(payload.get("tool_choice"))
        self._names(payload.get("function_call"))
        return out

    def messages(self, messages: list[dict]) -> list[dict]:
        """New messages with every text guarded; raises PromptRejected."""
        return [self._message(message) for message in messages]

    def texts(self, texts: list[str]) -> list[str]:
        """Guarded copies of plain texts (embedding inputs, for example)."""
        return [self.text(t) or "" for t in texts]

    # --- one string

    def text(self, text: str | None) -> str | None:
        """Message text: prose, and asked of moderation when it is on (None and "" pass through)."""
        if not text:
            return text
        guarded = self.prose(text)
        if self.flagged(guarded):
            raise PromptRejected("the prompt was flagged by moderation", code="prompt_flagged")
        return guarded

    def prose(self, text: str) -> str:
        """Block-listed terms refuse; PROMPT_REDACT types are replaced."""
        if not text:
            return text
        scan = self.filter.scan_prompt(text, redact=self.redact)
        if scan.action == "blocked":
            raise PromptRejected()
        return scan.text

    def identifier(self, name: Any) -> Any:
        """A name the client needs verbatim: block-listed terms refuse, nothing is rewritten."""
        if isinstance(name, str) and name and self.filter.scan_prompt(name, redact=()).action == "blocked":
            raise PromptRejected()
        return name

    def schema(self, node: Any, key: str | None = None) -> Any:
        """A JSON Schema (tool parameters, response format) with its prose guarded and its names checked."""
        if isinstance(node, dict):
            out = {}
            for k, value in node.items():
                self.identifier(k)
                if k in SCHEMA_MAPS and isinstance(value, dict):
                    out[k] = {self.identifier(name): self.schema(sub) for name, sub in value.items()}
                else:
                    out[k] = self.schema(value, k)
            return out
        if isinstance(node, list):
            return [self.schema(item, key) for item in node]
        if isinstance(node, str):
            return self.identifier(node) if key in SCHEMA_IDENTIFIERS else self.prose(node)
        return node

    # --- parts of a request

    def _message(self, message: dict) -> dict:
        out = dict(message)
        if "content" in message:
            out["content"] = self._content(message["content"], moderate=True)
        self.identifier(message.get("name"))
        if isinstance(message.get("refusal"), str):
            out["refusal"] = self.prose(message["refusal"])
        if message.get("tool_calls"):
            out["tool_calls"] = [self._tool_call(call) for call in message["tool_calls"]]
        call = message.get("function_call")
        if isinstance(call, dict):
            out["function_call"] = {**call, "name": self.identifier(call.get("name")),
                                    "arguments": self.arguments(call.get("arguments"))}
        return out

    def _content(self, content: Any, *, moderate: bool) -> Any:
        guard = self.text if moderate else self.prose
        if isinstance(content, str):
            return guard(content)
        if isinstance(content, list):
            out = []
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part = {**part, "text": guard(part["text"])}
                elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
                    part = {**part, "refusal": self.prose(part["refusal"])}
                out.append(part)
            return out
        return content

    def _tool_call(self, call: Any) -> Any:
        if not isinstance(call, dict):
            return call
        if isinstance(call.get("function"), dict):
            fn = call["function"]
            return {**call, "function": {**fn, "name": self.identifier(fn.get("name")),
                                         "arguments": self.arguments(fn.get("arguments"))}}
        if isinstance(call.get("custom"), dict):
            custom = call["custom"]
            return {**call, "custom": {**custom, "name": self.identifier(custom.get("name")),
                                       "input": self.prose(custom.get("input") or "")}}
        return call

    def arguments(self, arguments: Any) -> Any:
        """Tool-call arguments (JSON text): redacted inside string values only, so JSON stays JSON."""
        if not isinstance(arguments, str) or not arguments:
            return arguments
        scan = self.filter.apply_arguments(arguments, redact=self.redact)
        if scan.action == "blocked":
            raise PromptRejected()
        return scan.text

    def _tool(self, tool: Any) -> Any:
        if not isinstance(tool, dict):
            return tool
        # {"type": "function", "function": {...}}, {"type": "custom", "custom": {...}}, or a legacy function.
        inner_key = "function" if isinstance(tool.get("function"), dict) else (
            "custom" if isinstance(tool.get("custom"), dict) else None)
        spec = dict(tool[inner_key]) if inner_key else dict(tool)
        self.identifier(spec.get("name"))
        if isinstance(spec.get("description"), str):
            spec["description"] = self.prose(spec["description"])
        if isinstance(spec.get("parameters"), dict):
            spec["parameters"] = self.schema(spec["parameters"])
        fmt = spec.get("format")
        if isinstance(fmt, dict) and isinstance(fmt.get("grammar"), dict):
            self.identifier(fmt["grammar"].get("definition"))
        return {**tool, inner_key: spec} if inner_key else spec

    def _names(self, choice: Any) -> None:
        # A forced tool or function choice names tools: identifiers, at any depth.
        if isinstance(choice, dict):
            for key, value in choice.items():
                if key == "name":
                    self.identifier(value)
                else:
                    self._names(value)
        elif isinstance(choice, list):
            for item in choice:
                self._names(item)

    # --- moderation

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
