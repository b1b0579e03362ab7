"""GET /conversations, GET/DELETE /conversations/<id> and GET /usage: a client's own data."""
from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, jsonify, request

from ..errors import InvalidRequest
from .admission import current_caller, services

bp = Blueprint("conversations", __name__)

MAX_USAGE_DAYS = 366
_DIGITS = re.compile(r"[0-9]{1,6}")


@bp.get("/conversations")
def list_conversations():
    """The caller's conversations, most recently active first, one page at a time."""
    args = query_args("limit", "cursor")
    limit = int_arg(args, "limit", default=20, low=1, high=100)
    page = services().conversations.list(current_caller().id, limit, args.get("cursor"))
    data = [{"id": c.id, "created_at": timestamp(c.created_at), "updated_at": timestamp(c.updated_at),
             "turns": c.turns, "title": c.title} for c in page.items]
    return jsonify(data=data, next_cursor=page.next_cursor)


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str):
    """One of the caller's conversations with every message."""
    query_args()
    conversation, messages = services().conversations.get(current_caller().id, conversation_id)
    return jsonify(id=conversation.id, created_at=timestamp(conversation.created_at),
                   updated_at=timestamp(conversation.updated_at), system=conversation.system,
                   messages=[{"role": m.role, "content": m.content, "created_at": timestamp(m.created_at)}
                             for m in messages])


@bp.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str):
    """Erase one of the caller's conversations."""
    query_args()
    services().conversations.delete(current_caller().id, conversation_id)
    return jsonify(id=conversation_id, deleted=True)


@bp.get("/usage")
def usage():
    """The caller's requests and tokens by day and model."""
    args = query_args("days")
    days = int_arg(args, "days", default=30, low=1, high=MAX_USAGE_DAYS)
    return jsonify(days=days, data=services().ledger.totals(current_caller().id, days))


def query_args(*allowed: str) -> dict[str, str]:
    """The query string as a dict; unknown or repeated parameters are a 400."""
    for name in request.args:
        if name not in allowed:
            raise InvalidRequest(f"unknown query parameter {name!r}", param=name, code="unknown_parameter")
        if len(request.args.getlist(name)) > 1:
            raise InvalidRequest(f"{name} may be given once", param=name)
    return {name: request.args[name] for name in request.args}


def int_arg(args: dict[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high]."""
    raw = args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}", param=name)
    return int(raw)


def timestamp(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2025-01-31T12:00:00.000Z."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
