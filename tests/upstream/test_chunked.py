"""The chunked-body reader: every split of the framing decodes to the same body."""
from __future__ import annotations

import random
import socket
import threading

import pytest
import requests
import urllib3

from app.upstream.chunked import ChunkedDecoder
from app.upstream.stream import ChatStream
from app.upstream.sse_codec import iter_sse_batches


def framed(parts: list[bytes]) -> bytes:
    return b"".join(b"%x;name=value\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: 1\r\n\r\n"


@pytest.mark.parametrize("seed", range(50))
def test_any_split_of_the_framing_decodes_to_the_body(seed):
    rng = random.Random(seed)
    parts = [rng.randbytes(rng.randrange(1, 40)) for _ in range(rng.randrange(1, 8))]
    data, decoder, out, pos = framed(parts), ChunkedDecoder(), b"", 0
    while pos < len(data):
        step = rng.randrange(1, 12)
        out += decoder.feed(data[pos:pos + step])
        pos += step
    assert out == b"".join(parts) and decoder.done and not decoder.extra


def test_several_chunks_in_one_read_come_out_as_one_piece():
    assert ChunkedDecoder().feed(framed([b"data: 1\n\n", b"data: 2\n\n"])) == b"data: 1\n\ndata: 2\n\n"


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-5\r\n", b"0x5\r\n", b"\r\n", b"1" * 5000])
def test_framing_that_is_not_chunked_http_is_refused(bad):
    with pytest.raises(urllib3.exceptions.ProtocolError):
        ChunkedDecoder().feed(bad)


def test_bytes_after_the_end_mark_the_connection_unusable():
    decoder = ChunkedDecoder()
    decoder.feed(b"0\r\n\r\nHTTP/1.1")
    assert decoder.done and decoder.extra


def test_sse_batches_hold_what_each_read_completed():
    reads = [b"data: a\n\ndata: b\n\nda", b"ta: c\n", b"\n", b": ping\n\n"]
    assert [[e.data for e in batch] for batch in iter_sse_batches(reads)] == [["a", "b"], ["c"]]


def test_a_stream_read_to_its_end_returns_its_connection_to_the_pool():
    events = [b'data: {"choices": [{"index": 0, "delta": {"content": "%d "}}]}\n\n' % n for n in range(3)]
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
              + framed([*events, b"data: [DONE]\n\n"]))
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        conn, _ = listener.accept()
        accepted.append(conn)
        with conn:
            for _ in range(2):  # two requests on one connection, each answered in one write
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(65536)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"
    with requests.Session() as session:
        for _ in range(2):
            resp = session.post(url, json={"stream": True}, stream=True, timeout=5)
            stream = ChatStream(resp, read_timeout=5, max_seconds=10)
            assert [len(batch) for batch in stream.batches()] == [3]  # one read, one batch
            stream.close()
    listener.close()
    assert len(accepted) == 1
