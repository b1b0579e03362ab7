"""Reading a chunked HTTP body by what has arrived, not by HTTP chunk.

urllib3 decodes a chunked body one HTTP chunk at a time, and an upstream
stream sends one event per HTTP chunk, so a reader above it sees one event
per read even when dozens arrived together. ``available_pieces`` reads the
connection's buffered socket file directly (each read returns whatever is
buffered or has arrived, never waiting for more) and decodes the chunked
framing itself, so everything that arrived together is handed on together.
When the body ends cleanly the connection goes back to the pool, as it does
after urllib3's own reading.
"""
from __future__ import annotations

from collections.abc import Iterator

import requests
import urllib3.exceptions

# A chunk-size line or a trailer line longer than this is not HTTP (urllib3 allows 4 KB + 1).
MAX_LINE = 4097
_HEX = frozenset(b"0123456789abcdefABCDEF")

_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """An incremental decoder of HTTP/1.1 chunked framing (RFC 9112, 7.1): framed bytes in, body bytes out."""

    def __init__(self) -> None:
        self._state = _SIZE
        self._left = 0       # body bytes still due in the current chunk, or CRLF bytes still to skip
        self._line = b""     # an incomplete size or trailer line
        self.extra = False   # bytes came after the end: the connection is not clean enough to reuse

    @property
    def done(self) -> bool:
        """True once the last chunk and the trailer section have been read."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """The body bytes ``data`` completes; ProtocolError on framing that is not chunked HTTP."""
        if self._line:
            data, self._line = self._line + data, b""
        out = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                out.append(data[pos:pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state, self._left = _CRLF, 2
            elif state == _CRLF:
                take = min(self._left, end - pos)
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _SIZE
            elif state == _DONE:
                self.extra = True
                break
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self._line = data[pos:]
                    if len(self._line) > MAX_LINE:
                        raise urllib3.exceptions.ProtocolError("a chunk line exceeded the maximum length")
                    break
                line = data[pos:newline].rstrip(b"\r")
                pos = newline + 1
                if len(line) > MAX_LINE:
                    raise urllib3.exceptions.ProtocolError("a chunk line exceeded the maximum length")
                if state == _TRAILER:
                    if not line:
                        self._state = _DONE
                    continue
                size = line.split(b";", 1)[0].strip()
                if not size or not _HEX.issuperset(size):
                    raise urllib3.exceptions.ProtocolError(f"invalid chunk length {line[:40]!r}")
                self._left = int(size, 16)
                self._state = _DATA if self._left else _TRAILER
        return b"".join(out)


def available_pieces(resp: requests.Response, size: int) -> Iterator[bytes] | None:
    """The chunked body of ``resp`` in pieces of what has arrived; None when it cannot be read this way."""
    raw = resp.raw
    original = getattr(raw, "_original_response", None)
    source = getattr(getattr(raw, "_fp", None), "fp", None)
    # Only an untouched, uncompressed body of an http.client response over a buffered socket file.
    if (original is None or source is None or not hasattr(source, "read1") or raw._fp is not original
            or getattr(raw, "chunk_left", None) is not None
            or resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")):
        return None
    return _pieces(raw, original, source, size)


def _pieces(raw, original, source, size: int) -> Iterator[bytes]:
    decoder = ChunkedDecoder()
    while not decoder.done:
        try:
            data = source.read1(size)
        except TimeoutError as err:
            # Read timeouts must stay timeouts, as urllib3 reports them.
            raise requests.exceptions.ReadTimeout("the upstream stalled") from err
        if not data:
            raise urllib3.exceptions.ProtocolError("Response ended prematurely")
        body = decoder.feed(data)
        if decoder.done and not decoder.extra:
            # Read to its end, usually with the last events: the connection can serve another request now,
            # before the reader stops at [DONE] and never asks for more.
            original.close()
            raw.release_conn()
        if body:
            yield body
