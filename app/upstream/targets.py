"""A route's target (an upstream client and the model to ask it for), and a request shaped for it.

A request arrives under its public model name; each target gets it with its
own model name, the ``developer`` role as that upstream understands it, and
the reply cap in the field that model takes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .client import UpstreamClient

# OpenAI's reasoning models (o1, o3, o4-mini …, the gpt-5 family) refuse max_tokens and take
# max_completion_tokens; every other model, and every other server (Ollama, vLLM …), takes max_tokens.
_COMPLETION_TOKENS_MODELS = re.compile(r"^(o\d|gpt-5)")
_CAP_FIELDS = ("max_tokens", "max_completion_tokens")


def reply_cap_field(model: str) -> str:
    """The request field that caps a reply for ``model``: max_completion_tokens or max_tokens."""
    name = model.rsplit("/", 1)[-1].lower()  # "openai/o3-mini" is o3-mini
    return "max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(name) else "max_tokens"


@dataclass(frozen=True)
class Target:
    """One target of a route."""

    client: UpstreamClient
    model: str
    developer_role: str = "developer"  # or "system", for an upstream that does not know the role
    provider: str = "openai_compatible"  # OpenTelemetry's gen_ai.provider.name

    @property
    def name(self) -> str:
        """The upstream's name."""
        return self.client.name

    def shape(self, payload: dict) -> dict:
        """``payload`` as this target takes it (the same object when nothing changes)."""
        if payload.get("model") == self.model and self.developer_role == "developer":
            return payload
        out = dict(payload)
        out["model"] = self.model
        messages = payload.get("messages")
        if messages is None:
            return out  # embeddings: only the model changes
        if self.developer_role == "system" and any(m.get("role") == "developer" for m in messages):
            out["messages"] = [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]
        wanted = reply_cap_field(self.model)
        other = _CAP_FIELDS[1 - _CAP_FIELDS.index(wanted)]
        if wanted not in out and other in out:
            out[wanted] = out.pop(other)  # a reasoning model refuses max_tokens; older servers lack the other
        return out
