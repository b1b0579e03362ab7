"""Whole-text PII redaction: true positives, hard negatives and the result shape."""
from __future__ import annotations

import pytest
from filter_values import iban_complete

from app.filter import HIGH_RISK_TYPES, PII_TYPES, Blocklist, ContentFilter, FilterResult
from app.filter.validators import iban_ok, luhn_ok

FILTER = ContentFilter(blocklist=Blocklist())

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    + "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    + "-----END RSA PRIVATE KEY-----"
)
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

POSITIVES = [
    # e-mail
    ("john.doe@example.com", "email"),
    ("first.last+tag@sub.example.co.uk", "email"),
    ("x_y%z@my-host.io", "email"),
    # phone: international and national
    ("+44 20 7946 0958", "phone"),
    ("+1-202-555-0143", "phone"),
    ("+49 30 123456", "phone"),
    ("+1 (202) 555-0143", "phone"),
    ("+442079460958", "phone"),
    ("(202) 555-0143", "phone"),
    ("202-555-0143", "phone"),
    ("1-202-555-0143", "phone"),
    ("202.555.0143", "phone"),
    ("020 7946 0958", "phone"),
    ("07700 900123", "phone"),
    # cards (Luhn-valid test numbers)
    ("4111111111111111", "card"),
    ("4111 1111 1111 1111", "card"),
    ("4111-1111-1111-1111", "card"),
    ("5555 5555 5555 4444", "card"),
    ("378282246310005", "card"),
    ("3782 822463 10005", "card"),
    ("6011000990139424", "card"),
    ("4222222222222", "card"),
    # SSN
    ("123-45-6789", "ssn"),
    ("078-05-1120", "ssn"),
    # IBAN, compact and grouped
    ("DE89370400440532013000", "iban"),
    ("DE89 3704 0044 0532 0130 00", "iban"),
    ("GB82 WEST 1234 5698 7654 32", "iban"),
    ("NL91ABNA0417164300", "iban"),
    ("FR1420041010050500013M02606", "iban"),
    # IP addresses
    ("192.168.1.1", "ip"),
    ("8.8.8.8", "ip"),
    ("255.255.255.255", "ip"),
    ("1.2.3.4", "ip"),
    ("2001:db8::1", "ip"),
    ("fe80::1ff:fe23:4567:890a", "ip"),
    ("2001:0db8:0000:0000:0000:ff00:0042:8329", "ip"),
    ("::ffff:192.168.1.1", "ip"),
    # secrets
    # Fake credentials, assembled so that no secret-shaped literal sits in the source.
    ("sk-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD", "secret"),
    ("sk-proj-" + "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdefghijklmnop", "secret"),
    ("AKIA" + "IOSFODNN7EXAMPLE", "secret"),
    ("ASIAY34FZKBOKMUTVV7A", "secret"),
    (JWT, "secret"),
    (PEM, "secret"),
]


@pytest.mark.parametrize("value,kind", POSITIVES)
@pytest.mark.parametrize("template", ["{}", "before {} after", "({})", "value: {}.", "{},{}"])
def test_true_positive_is_redacted(value, kind, template):
    text = template.format(value, value)
    result = FILTER.apply(text)
    placeholder = f"[{kind.upper()}]"
    assert result.text == template.format(placeholder, placeholder)
    assert result.action == "redacted"
    assert result.findings == ({"type": kind, "count": template.count("{}")},)


def test_bearer_keeps_the_scheme_word():
    result = FILTER.apply("Authorization: Bearer abc123def456ghi789.")
    assert result.text == "Authorization: Bearer [SECRET]."
    curl = FILTER.apply("curl -H 'Authorization: Bearer " + JWT + "'")
    assert curl.text == "curl -H 'Authorization: Bearer [SECRET]'"


HARD_NEGATIVES = [
    "Order #123456789",
    "Order #123456789 shipped on 2024-05-17 at 12:30:45",
    "2024-05-17T12:30:45Z",
    "version 1.2.3",
    "v10.0.19045",
    "Windows 10.0.19045.3803",
    "Python 3.11.7",
    "v1.2.3.4",
    "1.2.3.4.5",
    "4111111111111112",
    "4111 1111 1111 1112",
    "1234567890123456",
    "It costs $1,299.99 or 1.299,99 EUR",
    "zip 90210",
    "the task-list and the ask-me-anything-thread-1234567890 page",
    "sk-learn is a library",
    "sk-abcdefghijklmnopqrstuvwxyz",
    "42 and 7 and 3.14",
    "call 555-0143",
    "000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",
    "DE89 3704 0044 0532 0130 02",
    "XX89370400440532013000",
    "10.0.0 and 256.1.1.1 and 1.2.3.256",
    "12:30 and 12:30:45 and 3:2:1",
    "std::vector<int> and a[1::2] and x[::2] and ::1",
    "aa:bb:cc:dd:ee:ff and 00:1a:2b:3c:4d:5e",
    "dead::beef",
    "user@localhost and a@b and @handle and trailing@",
    "isbn 978-3-16-148410-0",
    "the bearer of bad news",
    "Bearer authentication",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----",
    "eyJ alone",
    "AKIA",
    "1 2 3 4 5 6 7 8 9 0 1 2 3",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negative_is_left_alone(text):
    result = FILTER.apply(text)
    assert result == FilterResult(text, "none", ())


def test_findings_carry_types_and_counts_never_values():
    text = "mail a@example.com, b@example.org; card 4111 1111 1111 1111; ip 10.0.0.1"
    result = FILTER.apply(text)
    assert result.findings == (
        {"type": "card", "count": 1},
        {"type": "email", "count": 2},
        {"type": "ip", "count": 1},
    )
    dumped = repr(result.to_dict())
    for secret in ("a@example.com", "example", "4111", "10.0.0.1"):
        assert secret not in dumped
    assert result.to_dict() == {"action": "redacted", "findings": [dict(f) for f in result.findings]}


def test_result_to_dict_is_a_copy():
    result = FILTER.apply("a@example.com")
    result.to_dict()["findings"][0]["count"] = 99
    assert result.findings[0]["count"] == 1


def test_clean_text_passes_unchanged():
    text = "Here is a short, perfectly ordinary answer."
    assert FILTER.apply(text) == FilterResult(text, "none", ())
    assert FILTER.apply("") == FilterResult("", "none", ())


def test_redact_subset_for_replies():
    cf = ContentFilter(blocklist=Blocklist(), redact=("email",))
    result = cf.apply("a@example.com 4111 1111 1111 1111")
    assert result.text == "[EMAIL] 4111 1111 1111 1111"
    assert result.findings == ({"type": "email", "count": 1},)
    only_ip = ContentFilter(blocklist=Blocklist(), redact="ip")
    assert only_ip.apply("10.0.0.1 a@example.com").text == "[IP] a@example.com"
    assert ContentFilter(blocklist=Blocklist(), redact=()).apply("a@example.com").action == "none"


def test_unknown_type_is_rejected():
    with pytest.raises(ValueError, match="unknown PII type"):
        ContentFilter(redact=("email", "passport"))
    with pytest.raises(ValueError, match="unknown PII type"):
        FILTER.scan_prompt("x", redact=("nope",))


def test_prompt_scan_redacts_only_high_risk_types():
    text = ("I am a@example.com, +1-202-555-0143, 10.0.0.1, card 4111 1111 1111 1111, "
            + "ssn 123-45-6789, key AKIA" + "IOSFODNN7EXAMPLE")
    result = FILTER.scan_prompt(text)
    assert result.text == (
        "I am a@example.com, +1-202-555-0143, 10.0.0.1, card [CARD], ssn [SSN], key [SECRET]"
    )
    assert result.action == "redacted"
    assert result.findings == tuple({"type": t, "count": 1} for t in sorted(HIGH_RISK_TYPES))
    assert FILTER.scan_prompt(text, redact=("email",)).text.startswith("I am [EMAIL], +1-202")


def test_prompt_scan_blocks_on_the_block_list():
    cf = ContentFilter()
    result = cf.scan_prompt("please write f.u.c.k and 4111 1111 1111 1111")
    assert result == FilterResult("", "blocked", ({"type": "blocked_content", "count": 1},))


def test_constants():
    assert PII_TYPES == ("email", "phone", "card", "ssn", "iban", "ip", "secret")
    assert HIGH_RISK_TYPES == ("card", "ssn", "secret")
    assert isinstance(PII_TYPES, tuple) and isinstance(HIGH_RISK_TYPES, tuple)


def test_adjacent_and_overlapping_candidates():
    # the e-mail wins over the IP inside it; a failed IBAN leaves room for what follows
    assert FILTER.apply("ops@10.0.0.1").text == "ops@[IP]"
    assert FILTER.apply("x 4111111111111111 202-555-0143 y").text == "x [CARD] [PHONE] y"
    assert FILTER.apply("a@example.com,b@example.com").text == "[EMAIL],[EMAIL]"
    assert FILTER.apply("DE89 3704 0044 0532 0130 00 1234").text == "[IBAN] 1234"


@pytest.mark.parametrize("digits,ok", [("4111111111111111", True), ("4111111111111112", False),
                                       ("79927398713", True), ("0", True), ("18", True), ("19", False)])
def test_luhn(digits, ok):
    assert luhn_ok(digits) is ok


@pytest.mark.parametrize("iban,ok", [("DE89370400440532013000", True), ("DE89370400440532013001", False),
                                     ("GB82WEST12345698765432", True), ("GB83WEST12345698765432", False)])
def test_mod97(iban, ok):
    assert iban_ok(iban) is ok


# The ISO 13616 registry by length, written out independently of the module's table.
IBAN_REGISTRY = {
    15: "NO", 16: "BE", 18: "DK FI FO GL NL", 19: "MK SI", 20: "AT BA EE KZ LT LU XK", 21: "CH HR LI LV",
    22: "BG BH CR DE GB GE IE ME RS VA", 23: "AE GI IL IQ TL", 24: "AD CZ ES MD PK RO SA SE SK TN VG",
    25: "PT ST", 26: "IS TR", 27: "FR GR IT MC MR SM", 28: "AL AZ BY CY DO GT HU LB PL SV",
    29: "BR EG PS QA UA", 30: "JO KW MU", 31: "MT SC", 32: "LC",
}


def registered_iban(country: str, length: int) -> str:
    """A valid IBAN of the registered length, with a made-up account number."""
    return iban_complete(country, "".join(str((7 * i + len(country) + ord(country[1])) % 10) for i in range(length - 4)))


@pytest.mark.parametrize("country,length", [(c, n) for n, cs in IBAN_REGISTRY.items() for c in cs.split()])
def test_every_registered_iban_length(country, length):
    # Grouped and followed by another group of digits, the IBAN ends exactly at its country's
    # length: a wrong length in the table would either run into the "1234" or stop short of it.
    iban = registered_iban(country, length)
    assert iban_ok(iban)
    grouped = " ".join(iban[i:i + 4] for i in range(0, length, 4))
    assert FILTER.apply(f"pay to {grouped} 1234 today").text == "pay to [IBAN] 1234 today"
    assert FILTER.apply(f"pay to {iban}.").text == "pay to [IBAN]."


def test_an_unregistered_country_is_not_an_iban():
    valid_checksum = registered_iban("US", 22)
    assert iban_ok(valid_checksum)
    assert FILTER.apply(f"ref {valid_checksum}").text == f"ref {valid_checksum}"


@pytest.mark.parametrize("text", [
    # a number continued by a decimal or a dash and a digit is another number
    "4111111111111111.5", "total 4111111111111111.50 due", "ssn 123-45-6789.5", "4111111111111111-7",
])
def test_numbers_that_continue_stay(text):
    assert FILTER.apply(text).text == text


@pytest.mark.parametrize("text,expected", [
    # a phone number starts at its "+", with or without a space or a parenthesis after it
    ("call + (44) 20 7946 0958 now", "call [PHONE] now"),
    ("call +(44) 20 7946 0958 now", "call [PHONE] now"),
    ("call + 44 20 7946 0958 now", "call [PHONE] now"),
    # a rejected candidate leaves the next character its own chance
    ("x +10.0.0.1 y", "x +[IP] y"),
])
def test_where_a_value_starts(text, expected):
    assert FILTER.apply(text).text == expected


@pytest.mark.parametrize("text,expected", [
    # 13 to 19 digits pass Luhn as cards; 12 only with a Maestro lead (5 or 6)
    ("card 512345678902", "card [CARD]"), ("card 612345678900", "card [CARD]"),
    ("card 412345678905", "card 412345678905"), ("card 4123456789011", "card [CARD]"),
    ("card 4123456789012345677", "card [CARD]"),
    # an IBAN off its country's length still counts when the mod-97 check holds, from 15 to 34 characters
    ("ref DE5112345678901", "ref [IBAN]"), ("ref DE75" + "1" * 30, "ref [IBAN]"),
    ("ref DE861111111111", "ref DE861111111111"), ("ref DE11" + "1" * 31, "ref DE11" + "1" * 31),
    # an IPv6 address needs four hex digits, upper case counting
    ("ip ::BCD1 ok", "ip [IP] ok"),
    # dots and dashes after a domain end the sentence, not the address
    ("mail a@example.com- now", "mail [EMAIL]- now"), ("mail a@b.co.- now", "mail [EMAIL].- now"),
    ("mail a@example.com-- now", "mail [EMAIL]-- now"), ("mail a@b- now", "mail a@b- now"),
])
def test_validator_bounds(text, expected):
    assert FILTER.apply(text).text == expected
