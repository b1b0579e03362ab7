"""Tests for the incremental SSE parser and encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.upstream.sse_codec import SSEEvent, SSETooLarge, encode_sse, iter_sse


def parse(*chunks: bytes) -> list[SSEEvent]:
    return list(iter_sse(chunks))


E = SSEEvent

CASES = [
    ("simple", b"data: hello\n\n", [E("hello")]),
    ("no space after colon", b"data:hello\n\n", [E("hello")]),
    ("only one leading space stripped", b"data:  two\n\n", [E(" two")]),
    ("trailing space kept", b"data: x \n\n", [E("x ")]),
    ("multi-line data joined", b"data: a\ndata: b\ndata:\n\n", [E("a\nb\n")]),
    ("CRLF line endings", b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")]),
    ("CR line endings", b"data: a\rdata: b\r\r", [E("a\nb")]),
    ("mixed line endings", b"data: a\r\n\rdata: b\n\r\n", [E("a"), E("b")]),
    ("comment ignored", b": keep-alive\n\ndata: x\n: mid\n\n", [E("x")]),
    ("bare colon keep-alive", b":\n\n:\n\n", []),
    ("field without colon is empty data", b"data\n\n", [E("")]),
    ("empty data field dispatches", b"data:\n\n", [E("")]),
    ("two empty data lines", b"data\ndata\n\n", [E("\n")]),
    ("no data no dispatch", b"event: ping\n\n", []),
    ("event type", b"event: delta\ndata: {}\n\n", [E("{}", "delta")]),
    ("event type reset after dispatch", b"event: a\ndata: 1\n\ndata: 2\n\n", [E("1", "a"), E("2")]),
    ("event type reset on empty event", b"event: a\n\ndata: 2\n\n", [E("2")]),
    ("empty event type is default", b"event:\ndata: 1\n\n", [E("1")]),
    ("id persists across events", b"id: 7\ndata: a\n\ndata: b\n\n", [E("a", None, "7"), E("b", None, "7")]),
    ("empty id resets", b"id: 7\ndata: a\n\nid\ndata: b\n\n", [E("a", None, "7"), E("b")]),
    ("id with NUL ignored", b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n", [E("a", None, "1"), E("b", None, "1")]),
    ("retry and unknown fields ignored", b"retry: 10\nfoo: bar\ndata: x\n\n", [E("x")]),
    ("field name is case sensitive", b"Data: x\n\n", []),
    ("colon in value kept", b'data: {"a": "b:c"}\n\n', [E('{"a": "b:c"}')]),
    ("leading BOM stripped", b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    ("second BOM kept", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),
    ("unterminated last event dispatched", b"data: a\n\ndata: b", [E("a"), E("b")]),
    ("last event without blank line", b"data: a\ndata: b\n", [E("a\nb")]),
    ("last event ends in CR", b"data: a\r", [E("a")]),
    ("unterminated comment", b"data: a\n\n: bye", [E("a")]),
    ("empty stream", b"", []),
    ("only newlines", b"\n\r\n\r", []),
    ("invalid utf-8 replaced", b"data: a\xffb\n\n", [E("a\ufffdb")]),
    ("truncated utf-8 at EOF replaced", b"data: \xe2\x82", [E("\ufffd")]),
    ("openai done", b"data: {\"x\":1}\n\ndata: [DONE]\n\n", [E('{"x":1}'), E("[DONE]")]),
]


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_table(stream: bytes, expected: list[SSEEvent]) -> None:
    assert parse(stream) == expected
    # The same stream fed one byte at a time must agree.
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == expected


def test_crlf_split_across_chunks() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [E("a\nb")]
    # A CR at a chunk end followed by a non-LF must still end the line.
    assert parse(b"data: a\r", b"\r") == [E("a")]
    # Empty chunks between CR and LF must not lose the pairing.
    assert parse(b"data: a\r", b"", b"\n", b"\n") == [E("a")]


def test_multibyte_character_split_across_chunks() -> None:
    raw = "data: caf\u00e9 \U0001f600\n\n".encode()
    split = raw.index(b"\xf0") + 2
    assert parse(raw[:split], raw[split:]) == [E("caf\u00e9 \U0001f600")]


def test_events_are_yielded_before_stream_ends() -> None:
    def chunks():
        yield b"data: first\n\n"
        raise AssertionError("parser read ahead of the first event")

    assert next(iter_sse(chunks())) == E("first")


def test_accepts_bytearray_and_memoryview() -> None:
    assert parse(bytearray(b"data: a\n\n"), memoryview(b"data: b\n\n")) == [E("a"), E("b")]


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        ("hello", b"data: hello\n\n"),
        ("", b"data: \n\n"),
        ("a\nb", b"data: a\ndata: b\n\n"),
        ("a\r\nb\rc", b"data: a\ndata: b\ndata: c\n\n"),
        (" lead", b"data:  lead\n\n"),
        ("caf\u00e9", "data: caf\u00e9\n\n".encode()),
    ],
)
def test_encode_sse(data: str, encoded: bytes) -> None:
    assert encode_sse(data) == encoded


# Streams assembled from SSE-ish fragments hit the interesting paths far more
# often than arbitrary bytes would.
_FRAGMENTS = st.sampled_from(
    [b"data", b"data:", b"data: ", b"event: x", b"id: 1", b":", b"retry: 5", b"x", b" ",
     b"\n", b"\r", b"\r\n", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xff", b"\xef\xbb\xbf"]
)
_STREAMS = st.one_of(st.lists(_FRAGMENTS, max_size=40).map(b"".join), st.binary(max_size=200))


@settings(max_examples=400)
@given(stream=_STREAMS, data=st.data())
def test_any_chunking_gives_same_events(stream: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:])]
    assert parse(*chunks) == parse(stream)


@given(st.lists(st.text(), max_size=5))
def test_encode_then_parse_round_trips(messages: list[str]) -> None:
    stream = b"".join(encode_sse(m) for m in messages)
    normalized = [m.replace("\r\n", "\n").replace("\r", "\n") for m in messages]
    assert [e.data for e in parse(stream)] == normalized


@pytest.mark.parametrize("chunks", [
    [b"data: " + b"x" * 50],                            # one unterminated line in one piece
    [b"data: " + b"x" * 30, b"x" * 30],                 # ... or growing over several
    [b"data: " + b"x" * 60 + b"\n"],                    # a terminated line that is simply too long
    [b"data: " + b"x" * 30 + b"\ndata: " + b"y" * 30 + b"\n"],  # lines under the bound, the event over it
])
def test_a_line_or_event_past_the_bound_raises_instead_of_growing(chunks):
    with pytest.raises(SSETooLarge):
        list(iter_sse(chunks, max_event=50))


def test_events_within_the_bound_pass_and_the_count_restarts_per_event():
    chunks = [b"data: " + b"a" * 40 + b"\n\n", b"data: " + b"b" * 40 + b"\n\n"]
    assert [len(e.data) for e in iter_sse(chunks, max_event=50)] == [40, 40]
