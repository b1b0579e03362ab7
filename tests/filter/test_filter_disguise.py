"""Disguised values: the shadow copy reads through them and the redaction covers the disguise."""
from __future__ import annotations

import pytest

from app.filter import Blocklist, ContentFilter, FilterResult
from app.filter.normalize import fold, fold_char

FILTER = ContentFilter(blocklist=Blocklist())
BLOCKING = ContentFilter()


@pytest.mark.parametrize("text,expected", [
    ("card 521\u200b1490677199249 ok", "card [CARD] ok"),
    ("card ５１０５ １０５１ ０５１０ ５１００ ok", "card [CARD] ok"),
    ("card 4111\u00a01111\u00a01111\u00a01111 ok", "card [CARD] ok"),
    ("card 4111\u20091111\u20091111\u20091111 ok", "card [CARD] ok"),
    ("card 4111\u20131111\u20131111\u20131111 ok", "card [CARD] ok"),
    ("mail jane.doe＠example．com ok", "mail [EMAIL] ok"),
    ("mail jane\u00addoe@example.com ok", "mail [EMAIL] ok"),
    ("mail jаne@example.com ok", "mail [EMAIL] ok"),  # Cyrillic а
    ("ip １９２．１６８．１．１ ok", "ip [IP] ok"),
    ("ssn 123\u201145\u20116789", "ssn [SSN]"),
    ("call +44\u202f20\u202f7946\u202f0958 now", "call [PHONE] now"),
    ("iban DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000 ok", "iban [IBAN] ok"),
    ("key AKIA\u200d" + "IOSFODNN7EXAMPLE ok", "key [SECRET] ok"),
])
def test_disguised_values_are_redacted_whole(text, expected):
    assert FILTER.apply(text).text == expected


@pytest.mark.parametrize("text", [
    "fuсk", "ｆｕｃｋ", "fück", "f\u200buck", "f\u20ddu\u20ddck", "sh\u0489it", "FUСK", "shіt", "𝐟𝐮𝐜𝐤", "f\u00aduck", "s h і t",
])
def test_disguised_blocked_terms_are_blocked(text):
    assert BLOCKING.apply(text).action == "blocked"


@pytest.mark.parametrize("text", [
    "Ceci est une réponse ordinaire, à propos du café.",
    "Dies ist eine gewöhnliche Antwort über Straßen und Größen.",
    "Это обычный ответ о погоде.",
    "これは普通の返事です。",
    "ﬁne — “quoted” – text… with ½ and №5",
    "naïve façade coöperate",
])
def test_text_without_disguise_is_unchanged(text):
    assert BLOCKING.apply(text) == FilterResult(text, "none", ())


def test_redaction_keeps_text_around_a_disguised_value_byte_for_byte():
    text = "Grüße — mail: jane\u200b.doe＠example．com — ciao"
    assert FILTER.apply(text).text == "Grüße — mail: [EMAIL] — ciao"


@pytest.mark.parametrize("ch,folded", [
    ("a", "a"), ("\u200b", ""), ("\u00ad", ""), ("\u00a0", " "), ("\u2009", " "), ("\u3000", " "),
    ("\u2013", "-"), ("\u2212", "-"), ("\uff0d", "-"), ("５", "5"), ("٣", "3"), ("＠", "@"), ("．", "."),
    ("с", "c"), ("Α", "A"), ("ü", "u"), ("\u0301", ""), ("ß", "ss"), ("ﬁ", "fi"), ("\u2028", "\n"), ("é", "e"),
    # no compatibility form: the Ogham space, the paragraph separator, the heavy minus, an enclosing circle
    ("\u1680", " "), ("\u2029", "\n"), ("\u2796", "-"), ("\ufe63", "-"), ("\u20dd", ""), ("\u0489", ""),
])
def test_fold_char(ch, folded):
    assert fold_char(ch) == folded


def test_fold_map_points_back_to_the_original():
    folded = fold("a\u200bｂß")
    assert folded.shadow == "abss"
    assert folded.starts == [0, 2, 3, 3] and folded.ends == [1, 3, 4, 4]
    assert folded.span(0, 2) == (0, 3)
    assert folded.spans([(2, 4, "x")]) == [(3, 4, "x")]
    ascii_only = fold("plain")
    assert ascii_only.shadow == "plain" and ascii_only.starts is None and ascii_only.span(1, 3) == (1, 3)
    trailing = fold("ß ab")  # plain text after the last folded character keeps its own offsets
    assert (trailing.starts, trailing.ends) == ([0, 0, 1, 2, 3], [1, 1, 2, 3, 4])
    same_length = fold("café")
    assert same_length.shadow == "cafe" and same_length.starts is None


@pytest.mark.parametrize("chunks", [
    ["mail jane\u200b", ".doe＠exa", "mple．com ok"],
    ["card ５１０５ １", "０５１ ０５１０", " ５１００ ok"],
    ["x \u200b" * 3, "4111\u00a0", "1111\u00a01111\u00a01111", "\u200b end"],
    # plain text first, then a disguise: the offset map must start by covering the plain text exactly
    ["hello there, write to ", "jane\u200b@example.com now"],
])
def test_disguised_value_split_over_chunks(chunks):
    text = "".join(chunks)
    sf = FILTER.stream()
    out = "".join(sf.feed(c) for c in chunks) + sf.finish()
    assert out == FILTER.apply(text).text
    assert "[" in out


# Every look-alike the fold knows, written out here rather than read from the module, so that a changed
# entry fails: (look-alikes, what each reads as), one character for one in each pair of strings.
LOOKALIKES = [
    ("авеорсухкѕіјԁһӏԛԝү", "abeopcyxksijdhlqwy"),                  # Cyrillic lower case
    ("АВЕКМНОРСТХУЅІЈԚԜҮ", "ABEKMHOPCTXYSIJQWY"),                  # Cyrillic upper case
    ("αορνικτυχε", "aopviktuxe"),                                   # Greek lower case
    ("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX"),                            # Greek upper case
    ("ıȷłŁøØđĐħŧɑɡ", "ijlLoOdDhtag"),                                # Latin letters without a decomposition
]


@pytest.mark.parametrize("lookalikes,latin", LOOKALIKES)
def test_every_lookalike_folds_to_its_latin_letter(lookalikes, latin):
    assert len(lookalikes) == len(latin)
    assert [fold_char(ch) for ch in lookalikes] == list(latin)


@pytest.mark.parametrize("ch,folded", [("ß", "ss"), ("æ", "ae"), ("Æ", "AE"), ("œ", "oe"), ("Œ", "OE")])
def test_ligature_lookalikes_fold_to_two_letters(ch, folded):
    assert fold_char(ch) == folded
