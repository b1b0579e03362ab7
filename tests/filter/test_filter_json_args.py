"""Tool-call arguments: redaction inside JSON string values, valid JSON stays valid, streams equal whole."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.filter import Blocklist, ContentFilter, FilterResult
from app.filter.json_args import _LiteralDecoder

FILTER = ContentFilter()
NO_BLOCKLIST = ContentFilter(blocklist=Blocklist())
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CARD = "4" + "1" * 15


@pytest.mark.parametrize("arguments,expected", [
    ('{"email": "jane.doe@example.com", "ip": "10.1.2.3"}', '{"email": "[EMAIL]", "ip": "[IP]"}'),
    ('{"email": "jane\\u0040example.com"}', '{"email": "[EMAIL]"}'),
    ('{"note": "write to jane\\u002edoe@example\\u002ecom today"}', '{"note": "write to [EMAIL] today"}'),
    ('{"card": ' + CARD + "}", '{"card": "[CARD]"}'),
    ('{"q": "say \\"hi\\" to a@example.com\\n"}', '{"q": "say \\"hi\\" to [EMAIL]\\n"}'),
    ('{"a": "x@example.com", "b": "y"}', '{"a": "[EMAIL]", "b": "y"}'),
    ('["jane@", "example.com"]', '["jane@", "example.com"]'),
    ('{"key": "-----BEGIN RSA PRIVATE KEY-----\\nabc\\ndef"}', '{"key": "[SECRET]"}'),
    ('{"emoji": "\\ud83d\\ude00 a@example.com"}', '{"emoji": "\\ud83d\\ude00 [EMAIL]"}'),
])
def test_whole_arguments(arguments, expected):
    result = FILTER.apply_arguments(arguments)
    assert result.text == expected
    json.loads(result.text)


@pytest.mark.parametrize("escape", ["\\b", "\\f", "\\n", "\\r", "\\t", "\\/", "\\\\", '\\"'])
def test_every_simple_escape_is_read_as_the_character_it_stands_for(escape):
    # none of these characters can be in an address's local part, so the address starts after the escape;
    # an escape read as a letter would join the local part, and the redaction would swallow the escape
    result = FILTER.apply_arguments('{"q": "x' + escape + 'jane@example.com"}')
    assert result.text == '{"q": "x' + escape + '[EMAIL]"}'
    assert json.loads(result.text)["q"] == "x" + json.loads('"' + escape + '"') + "[EMAIL]"


def _escaped(text: str) -> str:
    # every character as JSON's \\u escape, characters beyond the BMP as surrogate pairs
    return json.dumps(text, ensure_ascii=True)[1:-1]


# A card in mathematical bold digits (U+1D7CE...), which read as plain digits once folded; escaped, each
# digit is a surrogate pair.
BOLD_CARD = _escaped("".join(chr(0x1D7CE + int(d)) for d in CARD))


def test_surrogate_pairs_are_joined_before_the_scan():
    assert "\\ud835\\udfd2" in BOLD_CARD
    assert FILTER.apply_arguments('{"n": "' + BOLD_CARD + '"}').text == '{"n": "[CARD]"}'


@pytest.mark.parametrize("cut", [3, 8, 9, 14])  # inside the high escape, between the two, inside the low one
def test_a_surrogate_pair_split_over_chunks_is_still_one_character(cut):
    text = '{"n": "' + BOLD_CARD + '"}'
    at = len('{"n": "') + 12 * 5 + cut  # within the sixth digit's pair
    sf = FILTER.stream_arguments()
    out = sf.feed(text[:at]) + sf.feed(text[at:]) + sf.finish()
    assert out == '{"n": "[CARD]"}'


@pytest.mark.parametrize("arguments,expected", [
    ('{"unterminated": "a@example.com', '{"unterminated": "[EMAIL]'),
    ("not json: a@example.com and 10.0.0.1", 'not json: "[EMAIL]" and "[IP]"'),
    ('{"a": 1, "half": "\\u00', '{"a": 1, "half": "\\u00'),
    ('{"bad": "\\q a@example.com"}', '{"bad": "\\q [EMAIL]"}'),
])
def test_partial_or_invalid_json_is_filtered_piece_by_piece(arguments, expected):
    assert FILTER.apply_arguments(arguments).text == expected


@pytest.mark.parametrize("arguments", [
    '{"text": "fuck"}', '{"text": "f\\u0075ck"}', '{"fuck": 1}', '{"a": "ok"} shit', '{"t": "fu\\u200bck"}',
])
def test_a_blocked_term_anywhere_blocks(arguments):
    assert FILTER.apply_arguments(arguments) == FilterResult("", "blocked", ({"type": "blocked_content", "count": 1},))


def test_findings_count_every_place_and_redact_can_be_narrowed():
    args = '{"a": "x@example.com", "b": ["y@example.com", "10.0.0.1"]}'
    assert FILTER.apply_arguments(args).findings == ({"type": "email", "count": 2}, {"type": "ip", "count": 1})
    assert FILTER.apply_arguments(args, redact=("ip",)).text == '{"a": "x@example.com", "b": ["y@example.com", "[IP]"]}'


def test_stream_api():
    sf = FILTER.stream_arguments()
    out = sf.feed('{"email": "jane') + sf.feed("@example.com") + sf.feed('", "n": 1}') + sf.finish()
    assert out == '{"email": "[EMAIL]", "n": 1}'
    assert sf.result() == FilterResult(out, "redacted", ({"type": "email", "count": 1},))
    assert sf.finish() == ""
    with pytest.raises(RuntimeError, match=r"feed\(\) called after finish\(\)"):
        sf.feed("x")
    with pytest.raises(TypeError, match="chunk must be str, not bytes"):
        FILTER.stream_arguments().feed(b"{}")
    once = FILTER.stream_arguments()
    once.feed("{}")
    once.finish()
    with pytest.raises(RuntimeError):
        once.feed('"')  # a quote alone would reach no piece's own check


def test_a_blocked_stream_keeps_its_findings_and_refuses_more():
    # blocked while an escape waits for its end: finishing does not count the piece twice
    sf = FILTER.stream_arguments()
    shown = sf.feed('{"q": "mail a@example.com now, ' + "ordinary words " * 10)
    assert "[EMAIL]" in shown
    assert sf.feed(" fuck " + "and more words " * 5 + "\\u00") == ""
    assert sf.blocked
    expected = FilterResult(shown, "blocked", ({"type": "blocked_content", "count": 1}, {"type": "email", "count": 1}))
    assert sf.result() == expected
    assert sf.finish() == ""
    assert sf.result() == expected
    with pytest.raises(RuntimeError):
        sf.feed("x")


def test_stream_result_counts_what_the_open_piece_has_found():
    # findings are reported as they are decided, before the piece holding them ends
    sf = FILTER.stream_arguments()
    emitted = sf.feed('{"note": "card ' + CARD + " is the one on file, " + "as the ledger says " * 8)
    assert emitted.startswith('{"note": "card [CARD] is the one')
    assert sf.result() == FilterResult(emitted, "redacted", ({"type": "card", "count": 1},))


@pytest.mark.parametrize("tail", ["\\u1", "\\u12", "\\u123", "\\ud83d\\u12"])
def test_an_unfinished_escape_at_the_end_is_read_as_its_characters(tail):
    # the whole filter reads an escape cut off by the end as the characters it is made of, like the
    # stream does when the arguments end there; a block-list pattern over a backslash shows it
    strict = ContentFilter(blocklist=Blocklist(patterns=[(1, r"\\u1")]))
    arguments = '{"q": "partial ' + tail
    assert strict.apply_arguments(arguments).action == "blocked"
    sf = strict.stream_arguments()
    sf.feed(arguments)
    sf.finish()
    assert sf.result().action == "blocked"
    assert FILTER.apply_arguments(arguments).text == arguments


def test_stream_stops_when_blocked():
    sf = FILTER.stream_arguments()
    first = sf.feed('{"note": "' + "ordinary words here " * 12 + '", "x": "')
    assert sf.feed('fuck"}') == "" and sf.finish() == ""
    assert sf.blocked and sf.result().action == "blocked"
    assert "fuck" not in first


# --- the stream property ------------------------------------------------------------------

pii_value = st.sampled_from([
    "jane.doe@example.com", "jane\\u0040example.com", "+44 20 7946 0958", "(202) 555-0143 x12", "10.1.2.3",
    "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "sk-" + "abcdefghijklmnopqrst0123",
    "-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\\nabc",
    "\\ud83d\\ude00", "\\u200b", "\\\\", '\\"', "fuck", "f\\u0075ck", "ordinary", "", "a\\nb",
])
scalar = st.one_of(
    st.lists(st.one_of(pii_value, st.text(max_size=6)), max_size=4).map(
        lambda parts: '"' + "".join(p.replace('"', "'").replace("\\", "/") if not p.startswith(("\\", "-")) and "\\u" not in p
                                    else p for p in parts) + '"'),
    st.integers().map(str), st.sampled_from(["true", "null", CARD, "12025550143", "1.5e3"]),
)
json_values = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(st.tuples(scalar, inner), max_size=4).map(lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"),
), max_leaves=8)
arguments = st.one_of(json_values, json_values.map(lambda s: s[: len(s) // 2]), st.text(max_size=40))


def split(data, text: str) -> list[str]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def check(cf: ContentFilter, text: str, chunks) -> None:
    whole = cf.apply_arguments(text)
    sf = cf.stream_arguments()
    emitted = "".join(sf.feed(c) for c in chunks) + sf.finish()
    if whole.action == "blocked":
        assert sf.blocked and sf.result().action == "blocked"
        return
    assert emitted == whole.text
    assert (sf.result().action, sf.result().findings) == (whole.action, whole.findings)
    try:
        json.loads(text)
    except ValueError:
        return
    json.loads(whole.text)  # valid JSON stays valid JSON


@PROPERTY
@given(text=arguments, data=st.data())
def test_streamed_arguments_equal_whole_arguments(text, data):
    check(FILTER, text, split(data, text))


@PROPERTY
@given(text=arguments, data=st.data())
def test_streamed_arguments_equal_whole_with_an_empty_block_list(text, data):
    check(NO_BLOCKLIST, text, split(data, text))


@PROPERTY
@given(text=json_values)
def test_arguments_one_character_at_a_time(text):
    check(FILTER, text, list(text))


# --- what the detectors read inside a string literal ------------------------------------------

def decoded(raw: str, final: bool = True):
    """(shadow, raw text consumed, raw text held back) of one literal's content pushed at once."""
    decoder = _LiteralDecoder()
    folded = decoder.push(raw, final)
    return folded.shadow, folded.text, decoder.pending


@pytest.mark.parametrize("raw,shadow", [
    ('a\\"b', 'a"b'), ("a\\\\b", "a\\b"), ("a\\/b", "a/b"), ("a\\nb", "a\nb"), ("a\\n", "a\n"),
    ("\\u0041\\u0062", "Ab"),
    # surrogate pairs at both ends of both ranges
    ("\\ud800\\udc00", "\U00010000"), ("\\udbff\\udfff", "\U0010ffff"), ("\\ud83d\\ude00", "\U0001f600"),
    # what is not a pair stays two characters, read one by one
    ("\\ud800\\ue000", "\ud800\ue000"), ("\\ud800\\udbff", "\ud800\udbff"), ("\\udc00\\udc00", "\udc00\udc00"),
    ("\\ud7ff\\udc00", "\ud7ff\udc00"), ("\\ud83dxxdc00", "\ud83dxxdc00"), ("\\ud83d\\u0041", "\ud83dA"),
    # not escapes: the backslash is read as itself and what follows as plain text
    ("a\\qb", "a\\qb"), ("\\u12x4", "\\u12x4"), ("\\u12", "\\u12"), ("\\", "\\"), ("x\\u", "x\\u"),
    ("\\ud83d\\u12", "\ud83d\\u12"),
])
def test_a_literal_is_read_as_the_value_it_encodes(raw, shadow):
    assert decoded(raw) == (shadow, raw, "")


@pytest.mark.parametrize("raw,consumed,pending", [
    # only what may still become an escape is held back while more text can come
    ("ab\\", "ab", "\\"), ("ab\\u00", "ab", "\\u00"), ("ab\\ud83d", "ab", "\\ud83d"), ("ab\\ud83d\\ud", "ab", "\\ud83d\\ud"),
    ("ab\\u0041", "ab\\u0041", ""), ("ab\\ud83d\\ude00", "ab\\ud83d\\ude00", ""), ("\\ud83dab", "\\ud83dab", ""),
    ("\\ud83d\\ux", "\\ud83d\\ux", ""), ("\\ud83d\\u12x4", "\\ud83d\\u12x4", ""), ("\\qab", "\\qab", ""),
])
def test_an_unfinished_escape_waits_for_the_next_delta(raw, consumed, pending):
    _shadow, text, held = decoded(raw, final=False)
    assert (text, held) == (consumed, pending)


def test_each_decoded_character_maps_back_to_its_whole_escape():
    folded = _LiteralDecoder().push("a\\u0040\\ud83d\\ude00\\", True)
    assert folded.shadow == "a@\U0001f600\\"
    assert (folded.starts, folded.ends) == ([0, 1, 7, 19], [1, 7, 19, 20])


def test_escapes_outside_a_string_are_not_decoded():
    # between literals the text is read as it is: "\u0040" there is six characters, not an "@"
    arguments = "{note: jane\\u0040example.com}"
    assert FILTER.apply_arguments(arguments).text == arguments
