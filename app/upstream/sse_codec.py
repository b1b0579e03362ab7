"""Incremental Server-Sent Events parsing and encoding.

Parsing follows the WHATWG event-stream interpretation rules, with one
deliberate difference: an event still pending at end of stream is dispatched
rather than discarded, because some upstreams omit the final blank line.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEEvent", "SSETooLarge", "encode_sse", "iter_sse", "iter_sse_batches"]


class SSETooLarge(ValueError):
    """A line or an event grew past the parser's bound before it ended."""


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched server-sent event."""

    data: str
    event: str | None = None
    id: str | None = None


def _iter_lines(chunks: Iterable[bytes], max_line: int | None = None) -> Iterator[list[str]]:
    """Yield the complete lines found in each chunk; at EOF, the tail plus a blank line."""
    # utf-8-sig drops the optional leading BOM even when it is split across chunks.
    decode = codecs.getincrementaldecoder("utf-8-sig")(errors="replace").decode
    pending: list[str] = []
    pending_size = 0  # characters held in pending: an unterminated line must not grow without end
    skip_lf = False  # the previous chunk ended in CR, so a leading LF belongs to it
    for chunk in chunks:
        text = decode(chunk)
        if not text:
            continue
        if skip_lf and text[0] == "\n":
            text = text[1:]
        skip_lf = text[-1:] == "\r"
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            if text:
                pending.append(text)
                pending_size += len(text)
                if max_line is not None and pending_size > max_line:
                    raise SSETooLarge(f"a line is longer than {max_line} characters")
            continue
        lines = text.split("\n")
        if pending:
            pending.append(lines[0])
            lines[0] = "".join(pending)
        tail = lines.pop()
        pending, pending_size = ([tail], len(tail)) if tail else ([], 0)
        if max_line is not None and (pending_size > max_line or any(len(line) > max_line for line in lines)):
            raise SSETooLarge(f"a line is longer than {max_line} characters")
        yield lines
    # Flushing can only add replacement characters, never a line break.
    last = "".join(pending) + decode(b"", True)
    # The trailing blank line forces dispatch of an unterminated final event.
    yield [last, ""] if last else [""]


def iter_sse(chunks: Iterable[bytes], max_event: int | None = None) -> Iterator[SSEEvent]:
    """Parse an SSE byte stream, yielding each event as soon as it is complete.

    With ``max_event``, a line or an event's data longer than that many
    characters raises SSETooLarge instead of being held in memory.
    """
    for batch in iter_sse_batches(chunks, max_event):
        yield from batch


def iter_sse_batches(chunks: Iterable[bytes], max_event: int | None = None) -> Iterator[list[SSEEvent]]:
    """Parse an SSE byte stream, yielding the events each chunk completes as one list (never an empty one).

    A chunk is what one read brought, so a consumer can handle together
    everything that arrived together. Events a chunk completed before a line
    or event overflows ``max_event`` are yielded before SSETooLarge is raised.
    """
    data: list[str] = []
    size = 0
    event: str | None = None
    last_id: str | None = None
    batch: list[SSEEvent] = []
    try:
        for lines in _iter_lines(chunks, max_event):
            for line in lines:
                if not line:
                    if data:
                        batch.append(SSEEvent("\n".join(data), event, last_id))
                        data, size = [], 0
                    event = None
                    continue
                colon = line.find(":")
                if colon == 0:
                    continue
                if colon < 0:
                    name, value = line, ""
                else:
                    name = line[:colon]
                    value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
                if name == "data":
                    data.append(value)
                    size += len(value) + 1
                    if max_event is not None and size > max_event:
                        raise SSETooLarge(f"an event is longer than {max_event} characters")
                elif name == "event":
                    event = value or None
                elif name == "id":
                    # WHATWG: the id persists across events; ids containing NUL are ignored.
                    if "\0" not in value:
                        last_id = value or None
                # "retry" and unknown fields carry nothing we use.
            if batch:
                yield batch
                batch = []
    except SSETooLarge:
        if batch:
            yield batch
        raise


def encode_sse(data: str) -> bytes:
    """Encode ``data`` as one SSE ``data:`` event, one data line per text line."""
    if "\n" in data or "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\ndata: ")
    return f"data: {data}\n\n".encode()
