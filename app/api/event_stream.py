"""Event streams: a ReplyStream turned into a server-sent-events HTTP response, in any door's format."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from flask import Response

from ..core.reply_stream import ReplayStream, ReplyStream
from ..upstream.sse_codec import encode_sse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"

# A formatter turns one pipeline event (kind, data) into zero or more SSE frames.
Formatter = Callable[[str, object], Iterator[bytes]]


def event(obj) -> bytes:
    """One ``data:`` frame holding compact JSON."""
    return encode_sse(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def sse_response(stream: ReplyStream | ReplayStream, formatter: Formatter, opening: bytes = b"") -> Response:
    """A text/event-stream response that proxies must not buffer and that always ends honestly."""
    def body() -> Iterator[bytes]:
        # One bytes object per upstream read, so the server writes the frames that arrived together at once.
        batches = stream.batches()
        try:
            first = opening
            for batch in batches:
                frames = [frame for kind, data in batch for frame in formatter(kind, data)]
                if first:
                    frames.insert(0, first)
                    first = b""
                if frames:
                    yield frames[0] if len(frames) == 1 else b"".join(frames)
            if first:
                yield first
        finally:
            # The client may leave mid-stream: closing the relay closes the upstream response.
            batches.close()

    headers = SSE_HEADERS if stream.cache is None else {**SSE_HEADERS, **stream.cache.headers()}
    return Response(body(), mimetype="text/event-stream", headers=headers, direct_passthrough=True)
