"""Streaming filter: exact agreement with the whole-reply filter for every chunking."""
from __future__ import annotations

import ipaddress
import string

import pytest
from filter_values import iban_complete, luhn_complete
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.filter import PII_TYPES, Blocklist, ContentFilter
from app.filter.normalize import fold
from app.filter.pii import SCANNER
from app.filter.result import PLACEHOLDERS
from app.filter.stream import STREAM_BATCH

FILTER = ContentFilter()
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- building blocks ------------------------------------------------------------------

def group(text: str, size: int, sep: str) -> str:
    return sep.join(text[i:i + size] for i in range(0, len(text), size))


digits = st.text("0123456789", min_size=1, max_size=1)
word = st.text(string.ascii_lowercase, min_size=1, max_size=8)


@st.composite
def emails(draw):
    # local parts reach the 64-character limit (and pass it) to exercise the longest head
    local = draw(st.one_of(
        st.text(string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=12),
        st.integers(60, 66).map(lambda n: "l" * n),
    ))
    label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=30)
    labels = draw(st.lists(label, min_size=1, max_size=3))
    tld = draw(st.sampled_from(["com", "org", "io", "co.uk", "x"]))
    return f"{local}@{'.'.join(labels)}.{tld}"


@st.composite
def cards(draw):
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    number = luhn_complete(draw(st.sampled_from("3456")) + body[1:])
    if draw(st.booleans()):  # a near miss that fails Luhn
        number = number[:-1] + str((int(number[-1]) + 1) % 10)
    style = draw(st.sampled_from(["", " ", "-"]))
    return group(number, 4, style) if style else number


@st.composite
def ibans(draw):
    country, length = draw(st.sampled_from([("DE", 22), ("GB", 22), ("NL", 18), ("FR", 27), ("NO", 15), ("LC", 32)]))
    bban = draw(st.text(string.digits + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=length - 4, max_size=length - 4))
    iban = iban_complete(country, bban)
    return group(iban, 4, " ") if draw(st.booleans()) else iban


@st.composite
def ips(draw):
    if draw(st.booleans()):
        return ".".join(str(draw(st.integers(0, 255))) for _ in range(4))
    addr = ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))
    return addr.compressed if draw(st.booleans()) else addr.exploded


@st.composite
def phones(draw):
    d = [draw(st.text("0123456789", min_size=n, max_size=n)) for n in (3, 3, 4)]
    return draw(st.sampled_from([
        f"+1-{d[0]}-{d[1]}-{d[2]}", f"({d[0]}) {d[1]}-{d[2]}", f"{d[0]}-{d[1]}-{d[2]}",
        f"{d[0]}.{d[1]}.{d[2]}", f"0{d[0][:2]} {d[1]}{d[2][0]} {d[2]}", f"+44 {d[0][:2]} {d[1]}{d[2][:1]} {d[2]}",
        f"+49 30 {d[1]}{d[0]}", f"{d[0]}-{d[1][:2]}-{d[2]}", f"+1 ({d[0]}) {d[1]} {d[2][:2]} {d[2][2:]} 0 0",
    ]))


# tokens longer than the hold-back window exercise the open-ended tails
token = st.one_of(
    st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=30),
    st.integers(60, 150).map(lambda n: ("aZ9_-" * 40)[:n]),
)


@st.composite
def secrets(draw):
    t = draw(token) + draw(digits) + "x" * 20
    kind = draw(st.sampled_from(["sk", "aws", "bearer", "jwt", "pem", "pem_open"]))
    if kind == "sk":
        return draw(st.sampled_from(["sk-", "sk-proj-"])) + t
    if kind == "aws":
        return "AKIA" + draw(st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16))
    if kind == "bearer":
        return "Bearer " + t
    if kind == "jwt":
        return f"eyJ{t}.eyJ{draw(token)}.{draw(token)}"
    body = draw(st.text(string.ascii_letters + string.digits + "+/=\n", max_size=40)) * draw(st.integers(1, 6))
    if kind == "pem":
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    return f"-----BEGIN PRIVATE KEY-----\n{body}"


LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}


@st.composite
def blocked_terms(draw):
    term = draw(st.sampled_from(["fuck", "shit", "cunt", "motherfucker", "blowjob", "nigger", "whore", "bullshit"]))
    style = draw(st.sampled_from(["plain", "upper", "leet", "spelled"]))
    if style == "upper":
        return term.upper()
    if style == "leet":
        return "".join(LEET.get(ch, ch) if draw(st.booleans()) else ch for ch in term)
    if style == "spelled":
        sep = draw(st.sampled_from([".", "-", " ", "*", "_", " . "]))
        return sep.join(term)
    return term


hard_negatives = st.sampled_from([
    "Order #123456789", "2024-05-17", "12:30:45", "1.2.3", "v10.0.19045", "3.11.7", "task-list",
    "$1,299.99", "90210", "class", "assess", "cocktail", "Scunthorpe", "std::vector", "a[1::2]",
    "4111111111111112", "sk-learn", "Bearer of news", "who re-ran it", "shiitake", "-----BEGIN",
    "0.5", "1-800", "@", "x@", "@y.com", "+", "(", "ASIA", "eyJ", "...", "10.0.0", "::",
])
noise = st.text(alphabet=string.ascii_letters[:8] + "019 .,:;-+@()#$!_\n*/", max_size=12)
separators = st.sampled_from(["", " ", "  ", "\n", ", ", ". ", "-", ":", "@", "/", "(", ")", "."])

pii_piece = st.one_of(emails(), cards(), ibans(), ips(), phones(), secrets())
clean_piece = st.one_of(pii_piece, hard_negatives, noise, word)
any_piece = st.one_of(clean_piece, blocked_terms())


def join(parts_and_seps) -> str:
    return "".join(p + s for p, s in parts_and_seps)


clean_texts = st.lists(st.tuples(clean_piece, separators), max_size=8).map(join)
any_texts = st.lists(st.tuples(any_piece, separators), max_size=8).map(join)


def split(data, text: str) -> list[str]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def run_stream(cf: ContentFilter, chunks):
    sf = cf.stream()
    emitted = "".join(sf.feed(c) for c in chunks)
    emitted += sf.finish()
    return sf, emitted


def redacted_length_at(text: str, offset: int, cf: ContentFilter) -> int:
    """Length of the redacted output that covers text[:offset] entirely."""
    out = offset
    for a, b, kind in SCANNER.find(text):
        if kind not in cf.redact or a >= offset:
            continue
        if b > offset:  # a redaction straddling the cut: only what precedes it is covered
            return out - (offset - a)
        out += len(PLACEHOLDERS[kind]) - (b - a)
    return out


def check_stream(cf: ContentFilter, text: str, chunks) -> None:
    whole = cf.apply(text)
    sf, emitted = run_stream(cf, chunks)
    if whole.action != "blocked":
        assert emitted == whole.text
        assert sf.result().text == whole.text
        assert (sf.result().action, sf.result().findings) == (whole.action, whole.findings)
        assert not sf.blocked
        return
    assert sf.blocked and sf.result().action == "blocked"
    assert any(f["type"] == "blocked_content" and f["count"] >= 1 for f in sf.result().findings)
    # what was shown is clean text from before the first blocked hit, already redacted
    unblocked = ContentFilter(blocklist=Blocklist(), redact=tuple(cf.redact)).apply(text).text
    assert unblocked.startswith(emitted)
    first_hit = cf.blocklist.find(text)[0][0]
    assert len(emitted) <= redacted_length_at(text, first_hit, cf)


# --- properties -----------------------------------------------------------------------

@PROPERTY
@given(text=clean_texts, data=st.data())
def test_stream_equals_whole_filter_for_any_chunking(text, data):
    check_stream(FILTER, text, split(data, text))


@PROPERTY
@given(text=any_texts, data=st.data())
def test_stream_with_blocked_terms_never_leaks(text, data):
    check_stream(FILTER, text, split(data, text))


@PROPERTY
@given(text=any_texts, data=st.data())
def test_stream_one_character_at_a_time(text, data):
    check_stream(FILTER, text, list(text))


@PROPERTY
@given(text=st.text(max_size=60), data=st.data())
def test_stream_random_unicode(text, data):
    check_stream(FILTER, text, split(data, text))


@PROPERTY
@given(text=clean_texts, data=st.data(), redact=st.sets(st.sampled_from(PII_TYPES)))
def test_stream_with_partial_redaction(text, data, redact):
    check_stream(ContentFilter(redact=tuple(redact)), text, split(data, text))


CUSTOM = Blocklist.from_text(
    "forbidden\nre:se[c]ret\\s{1,3}plan\nre:(?<![0-9])42(?![0-9])\nre:^start\nre:(?m)^bye$\nre:\\Aopen\n"
)


@PROPERTY
@given(text=st.lists(st.tuples(st.one_of(clean_piece, st.sampled_from(
    ["forbidden", "f.o.r.b.i.d.d.e.n", "secret  plan", "42", "x42", "420", "SECRET plan", "start", "bye",
     "\nbye", "open"])), separators),
    max_size=8).map(join), data=st.data())
def test_stream_with_custom_patterns(text, data):
    check_stream(ContentFilter(blocklist=CUSTOM), text, split(data, text))


def meant_as_pii(value: str) -> bool:
    """False for the deliberate near misses the strategies also produce."""
    if "@" in value:
        return len(value.split("@")[0]) <= 64 and len(value.rsplit(".", 1)[1]) >= 2
    if ":" in value and " " not in value and "-" not in value:  # IPv6: short forms are left alone on purpose
        return sum(ch in string.hexdigits for ch in value) >= 4 and any(ch.isdigit() for ch in value)
    return True


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(emails(), ibans(), ips(), secrets()).filter(meant_as_pii))
def test_generated_values_are_detected(value):
    # the strategies above must really produce PII, or the stream properties prove little
    result = ContentFilter(blocklist=Blocklist()).apply(f"see {value} now")
    assert result.action == "redacted", value
    assert value not in result.text


# --- hand-written cases -----------------------------------------------------------------

def test_email_split_over_five_chunks():
    sf = FILTER.stream()
    chunks = ["Write to jo", "hn.do", "e@exa", "mple.c", "om today please, thanks a lot for reading this"]
    outputs = [sf.feed(c) for c in chunks]
    outputs.append(sf.finish())
    joined = "".join(outputs)
    assert joined == "Write to [EMAIL] today please, thanks a lot for reading this"
    assert all("john" not in out and "example" not in out for out in outputs)
    assert sf.result().findings == ({"type": "email", "count": 1},)


def test_blocked_term_mid_stream_stops_emission():
    sf = FILTER.stream()
    prose = "This is a long and perfectly polite opening sentence that goes on for a while. " * 3
    first = sf.feed(prose)
    assert first and prose.startswith(first)
    assert sf.feed("And then: f.u.c.k" + " and more text that is clean again" * 3) == ""
    assert sf.blocked
    assert sf.feed("even more clean text " * 5) == ""
    assert sf.finish() == ""
    result = sf.result()
    assert result.action == "blocked"
    assert result.text == first
    assert "f.u.c.k" not in result.text
    assert {"type": "blocked_content", "count": 1} in result.findings


def test_blocked_term_found_only_at_finish():
    sf = FILTER.stream()
    assert sf.feed("ok then shit") == ""
    assert not sf.blocked
    assert sf.finish() == ""
    assert sf.blocked and sf.result().action == "blocked"


def test_blocked_result_counts_pii_already_emitted():
    sf = FILTER.stream()
    sf.feed("mail a@example.com now. " + "padding words here " * 10)
    sf.feed("then fuck")
    sf.finish()
    findings = {f["type"]: f["count"] for f in sf.result().findings}
    assert findings == {"blocked_content": 1, "email": 1}


# a long prefix makes the stream forget text before the open block or token while it waits
LONG_PREFIX = "Some words before it all. " * 20


@pytest.mark.parametrize("prefix,lines", [("", 20), (LONG_PREFIX, 20), (LONG_PREFIX, 2), (LONG_PREFIX, 0)])
def test_pem_block_is_held_until_its_end(prefix, lines):
    sf = FILTER.stream()
    head = prefix + "Here is the key:\n-----BEGIN RSA PRIVATE KEY-----\n"
    out = sf.feed(head)
    for _ in range(lines):
        out += sf.feed("MIIEowIBAAKCAQEA" * 8 + "\n")
    assert "MIIE" not in out and "BEGIN" not in out
    assert sf.pending > lines * 128
    after_end = sf.feed("-----END RSA PRIVATE KEY-----\nDone. " + "More text follows here. " * 6)
    assert "[SECRET]\nDone." in after_end  # released as soon as the block ends, not at finish
    out += after_end + sf.finish()
    assert out == prefix + "Here is the key:\n[SECRET]\nDone. " + "More text follows here. " * 6


@pytest.mark.parametrize("prefix", ["", LONG_PREFIX])
def test_long_token_is_released_once_it_ends(prefix):
    sf = FILTER.stream()
    out = sf.feed(prefix + "token sk-proj-")
    for _ in range(50):
        out += sf.feed("Ab3_x9" * 5)
    assert "Ab3" not in out
    out += sf.feed(" and then plenty of ordinary words to move the window along. " * 3)
    assert "[SECRET] and then" in out
    assert out + sf.finish() == FILTER.apply(prefix + "token sk-proj-" + "Ab3_x9" * 250
                                             + (" and then plenty of ordinary words " + "to move the window along. ") * 3).text


def test_unterminated_pem_block_is_redacted_to_the_end():
    text = "key: -----BEGIN EC PRIVATE KEY-----\nabc\ndef"
    assert FILTER.apply(text).text == "key: [SECRET]"
    assert run_stream(FILTER, [text[:12], text[12:30], text[30:]])[1] == "key: [SECRET]"


def test_phone_that_grows_into_a_card_is_not_emitted_early():
    card = luhn_complete("411111111111111")
    chunks = ["pay with 202-555-0143", "", " no wait ", card[:6], card[6:], " ok"]
    text = "".join(chunks)
    assert run_stream(FILTER, chunks)[1] == FILTER.apply(text).text == "pay with [PHONE] no wait [CARD] ok"


def test_clean_prose_is_held_back_less_than_max_span():
    sf = FILTER.stream()
    text = "The quick brown fox jumps over the lazy dog. " * 20
    emitted = ""
    for ch in text:
        emitted += sf.feed(ch)
        assert sf.pending < sf.max_span
    assert emitted + sf.finish() == text


def test_stream_feed_after_finish_and_bad_chunk():
    sf = FILTER.stream()
    with pytest.raises(TypeError, match="chunk must be str, not bytes"):
        sf.feed(b"bytes")
    assert sf.feed("") == ""
    assert sf.finish() == ""
    assert sf.finish() == ""
    with pytest.raises(RuntimeError, match=r"feed\(\) called after finish\(\)"):
        sf.feed("late")
    assert sf.result().action == "none"


def test_result_before_finish_reports_progress():
    sf = FILTER.stream()
    sf.feed("address a@example.com " + "and some more words to push the window along " * 6)
    assert sf.result().findings == ({"type": "email", "count": 1},)
    assert sf.result().action == "redacted"


NO_BLOCKLIST = ContentFilter(blocklist=Blocklist())


@PROPERTY
@given(text=any_texts, data=st.data())
def test_stream_equals_whole_filter_with_an_empty_block_list(text, data):
    check_stream(NO_BLOCKLIST, text, split(data, text))


@pytest.mark.parametrize("text", ["+44 20 7946 0958", "call +44 20 7946 0958 x12 now", "(202) 555-0143."])
def test_phone_split_everywhere_with_an_empty_block_list(text):
    for cut in range(len(text) + 1):
        check_stream(NO_BLOCKLIST, text, [text[:cut], text[cut:]])


# Characters whose shadow is several characters ("¼" is "1⁄4", "…" is "..."): a match may end, or a
# scan may stop, inside one of them, and the character must then be emitted once, redacted or not.
EXPANDING = ["¼", "½", "ﬁ", "№", "㎞", "Ⅻ", "…", "℡", "⑫", "㈱", "ﬀ "]
folding_texts = st.lists(st.tuples(clean_piece, st.sampled_from(EXPANDING + ["", " "])), max_size=8).map(join)


@PROPERTY
@given(text=folding_texts, data=st.data())
def test_stream_equals_whole_next_to_characters_that_fold_to_several(text, data):
    check_stream(NO_BLOCKLIST, text, split(data, text))


@pytest.mark.parametrize("text,expected", [
    # the extension reads "x121" (the "1" of "1⁄4"), so the redaction covers the "¼"
    ("call (202) 555-0143 x12¼0000 now", "call [PHONE]0000 now"),
    ("mail a@example.com… or 10.0.0.1½ later", "mail [EMAIL]… or [IP] later"),
])
def test_a_match_ending_inside_a_folded_character_is_emitted_once(text, expected):
    assert NO_BLOCKLIST.apply(text).text == expected
    for cut in range(len(text) + 1):
        check_stream(NO_BLOCKLIST, text, [text[:cut], text[cut:]])


@PROPERTY
@given(text=any_texts, data=st.data())
def test_the_horizon_is_the_nearest_frontier_of_any_head(text, data):
    # horizon() stops early once no head with a shorter reach can start sooner; that must not change it
    pos = data.draw(st.integers(0, len(text)))
    expected = min([len(text)] + [frontier(text, pos) for frontier in SCANNER._frontiers])
    assert SCANNER.horizon(text, pos) == expected


def test_the_horizon_of_a_colon_past_the_last_word():
    # only the IPv6 head can start at ":", where the e-mail head's frontier is not earlier
    text = "zz :" + "a" * 51
    assert SCANNER.horizon(text, 0) == 3


@pytest.mark.parametrize("feed", ["feed", "feed_folded"])
def test_a_stream_scans_once_per_batch_of_characters(feed):
    # small chunks are gathered: nothing is scanned (or emitted) until STREAM_BATCH characters arrived
    sf = NO_BLOCKLIST.stream()
    send = sf.feed if feed == "feed" else (lambda text: sf.feed_folded(fold(text)))
    words = "plain words " * 10
    assert STREAM_BATCH == 32
    assert send(words[:31]) == ""
    assert sf.pending == 31
    first = send(words[31])
    assert first and words.startswith(first)
    assert sf.pending == 32 - len(first)
    assert send(words[32:63]) == ""
    second = send(words[63])
    assert second != ""
    assert first + second + send(words[64:]) + sf.finish() == words


def test_a_blocked_stream_emits_nothing_more():
    sf = FILTER.stream()
    sf.feed("some words and then fuck " + "and so on " * 30)
    assert sf.blocked
    assert sf.feed("plenty of clean words that would otherwise be emitted at once") == ""
    assert sf.feed_folded(fold("plenty of clean words that would otherwise be emitted at once")) == ""
    assert sf.finish() == "" and sf.result().text == ""


@pytest.mark.parametrize("opening,rest,released", [
    ("Here is the key:\n-----BEGIN RSA PRIVATE KEY-----\n" + "MIIEowIBAAKCAQEA" * 8 + "\n",
     "-----END RSA PRIVATE KEY-----\nDone. " + "More text follows here. " * 6, "[SECRET]\nDone."),
    ("token sk-proj-" + "Ab3_x9" * 5, " and then plenty of ordinary words to move the window along. " * 3, "[SECRET] and then"),
])
def test_an_open_block_after_long_text_is_released_when_it_ends(opening, rest, released):
    # the stream forgets the text before the block while waiting, and must still find where it ends
    sf = FILTER.stream()
    out = sf.feed(LONG_PREFIX + opening)
    assert "BEGIN" not in out and "Ab3" not in out
    assert released in sf.feed(rest)
