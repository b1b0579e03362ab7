"""Conversation ids and the opaque cursors that page through a client's conversations."""
from __future__ import annotations

import base64
import re
from datetime import datetime

from ..errors import InvalidRequest

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def encode_cursor(updated_at: datetime, conversation_id: str) -> str:
    """An opaque cursor for the page after (updated_at, id)."""
    raw = f"{updated_at.isoformat()}|{conversation_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (updated_at, id) inside a cursor; InvalidRequest if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        stamp, conversation_id = raw.split("|")
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not ID_PATTERN.fullmatch(conversation_id):
            raise ValueError(cursor)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise InvalidRequest("cursor is not valid; pass next_cursor from the previous page", param="cursor",
                             code="invalid_cursor") from None
    return when, conversation_id
