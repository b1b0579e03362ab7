"""Secret kinds anchored on prefix and length, overlapping detectors, and linear time."""
from __future__ import annotations

import time

import pytest

from app.filter import Blocklist, ContentFilter
from app.filter.pii import SCANNER

FILTER = ContentFilter(blocklist=Blocklist())
B62 = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8"


def body(n: int) -> str:
    """n token characters, built at run time so no secret-shaped literal sits in the source."""
    return (B62 * (n // len(B62) + 1))[:n]


# (value, what is left of it once redacted); every value is assembled from parts
SECRETS = [
    ("ghp_" + body(36), "[SECRET]"), ("gho_" + body(36), "[SECRET]"), ("ghu_" + body(36), "[SECRET]"),
    ("ghs_" + body(36), "[SECRET]"), ("ghr_" + body(40), "[SECRET]"),
    ("github_pat_" + body(22) + "_" + body(59), "[SECRET]"),
    ("xoxb-" + "123456789012-1234567890123-" + body(24), "[SECRET]"),
    ("xoxp-" + "1234567890-1234567890-1234567890-" + body(32), "[SECRET]"),
    ("sk_live_" + body(24), "[SECRET]"), ("rk_live_" + body(24), "[SECRET]"), ("sk_test_" + body(99), "[SECRET]"),
    ("AIza" + body(35), "[SECRET]"), ("glpat-" + body(20), "[SECRET]"),
    ("sk-ant-api03-" + body(93) + "AA", "[SECRET]"), ("sk-" + body(40), "[SECRET]"),
    ("ASIA" + "Y34FZKBOKMUTVV7A", "[SECRET]"), ("AKIA" + "IOSFODNN7EXAMPLE", "[SECRET]"),
    ("Bearer " + body(30), "Bearer [SECRET]"), ("bearer " + body(12), "bearer [SECRET]"),
    ("BEARER " + body(24), "BEARER [SECRET]"), ("Bearer\t" + body(12), "Bearer\t[SECRET]"),
    # digits deep in the token belong to it; twenty letters are a token even without a digit
    ("Bearer " + "abcdefgh12345678xyz", "Bearer [SECRET]"), ("Bearer " + "abcdefghijklmnopqrst", "Bearer [SECRET]"),
    ("Bearer " + "abcd1234", "Bearer [SECRET]"),  # the shortest token: eight characters, a letter and a digit
    ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + body(70) + "\n-----END OPENSSH PRIVATE KEY-----", "[SECRET]"),
    ("-----begin rsa private key-----\n" + body(64) + "\n-----end rsa private key-----", "[SECRET]"),
    ("-----BEGIN ENCRYPTED RSA PRIVATE KEY-----\n" + body(64) + "\n-----END ENCRYPTED RSA PRIVATE KEY-----",
     "[SECRET]"),
    ("---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\n" + body(64) + "\n---- END SSH2 ENCRYPTED PRIVATE KEY ----",
     "[SECRET]"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n" + body(64) + "\n-----END PGP PRIVATE KEY BLOCK-----", "[SECRET]"),
]


@pytest.mark.parametrize("value,left", SECRETS)
@pytest.mark.parametrize("template", ["{}", "token: {} ok", "({})", "x={}\n", "\t{}."])
def test_secret_kinds_are_redacted(value, left, template):
    assert FILTER.apply(template.format(value)).text == template.format(left)


@pytest.mark.parametrize("text", [
    "ghp_" + body(35), "xghp_" + body(36), "ghx_" + body(36), "github_pat_" + body(30),
    "xoxb-" + body(10), "xoxq-" + "123456789012-" + body(24), "sk_live_" + body(23), "pk_live_" + body(24),
    "AIza" + body(34), "AIza" + body(36), "glpat-" + body(19), "my_glpat-" + body(20), "sk-ant-short",
    "ASIA" + body(16), "XASIA" + "Y34FZKBOKMUTVV7A", "the bearer of bad news", "Bearer authentication", "Bearer " + "abcdefghijklmnopqrs",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN PUBLIC KEY-----",
    "------------------", "eyJ alone",
])
def test_secret_look_alikes_stay(text):
    assert FILTER.apply(text).text == text


@pytest.mark.parametrize("text,expected", [
    ("sk-" + "abcdefghijklmnopqrstuvwx@example.com", "[EMAIL]"),
    ("eyJ" + "abcdefghijk@example.com", "[EMAIL]"),
    ("mail sk-" + "abcdefghijklmnopqrstuvwx@example.com now", "mail [EMAIL] now"),
    ("ops@10.0.0.1", "ops@[IP]"),
    ("DE89 3704 0044 0532 0130 00 1234", "[IBAN] 1234"),
    ("000-12-3456", "000-12-3456"),
])
def test_a_rejected_detector_leaves_its_place_to_the_others(text, expected):
    assert FILTER.apply(text).text == expected


@pytest.mark.parametrize("unit", [
    "eyJaaaaaaaa.a.a.", "a@", "a@b.", "sk-" + "a" * 25 + " ", "Bearer aaaaaaaa.", "-----BEGIN PRIVATE KEY-----",
    "1-", "1 ", "(1) ", "+1 ", "1.1.1.", "::", "a:b:", "DE89 ", "4111 ", "ghp_" + "a" * 30 + "-", "xoxb-aaaaaa-",
    "f.", "AKIA", "0" * 7 + " ", "x@y.z@",
])
def test_scan_is_linear_in_the_input(unit):
    # time per character must not grow with the input: compare a text with one 8 times longer
    def cost(n: int) -> float:
        text = unit * (n // len(unit))
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            SCANNER.find(text)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(4000), cost(32000)
    assert large / small < 20, (unit, small, large)


@pytest.mark.parametrize("after", [";", ":", "@", "?", "<", ">", ","])
def test_a_bearer_token_ends_at_a_character_tokens_do_not_use(after):
    text = "auth Bearer " + "abcdefgh12345678" + after + " more"
    assert FILTER.apply(text).text == "auth Bearer [SECRET]" + after + " more"


B20 = "AbCdEfGhIjKlMnOpQrSt"
XOXB, SK = "xox" + "b-", "s" + "k-"  # token prefixes, so no literal here reads as a live token


@pytest.mark.parametrize("text,expected", [
    # a token runs to its last token character, past the length its head needs
    ("token glpat-" + B20 + "UvWxYz here", "token [SECRET] here"),
    ("(token [glpat-" + B20 + "] here)", "(token [[SECRET]] here)"),
    # Slack: dash-separated groups of any letters and digits; trailing dashes are not the token's
    (XOXB + "1234567890Z-1234567890123-abcdefghijklmnopqrstuvwx", "[SECRET]"),
    (XOXB + "1234567890-1234567890123-abcdefghijklmnopqrstuvwx- next", "[SECRET]- next"),
    # at least 24 characters, and a digit somewhere after "xoxb-"
    (XOXB + "1234-abcdefghijklmn", "[SECRET]"),
    ("t " + XOXB + "1234-abcdefghijklmn", "t [SECRET]"),
    ("t " + XOXB + "1234-abcdefghijklm", "t " + XOXB + "1234-abcdefghijklm"),
    ("t " + XOXB + "1abcdefghij-klmnopqrstuv", "t [SECRET]"),
    # "sk-" keys need a digit; the first character after the dash counts
    ("t " + SK + "1abcdefghijklmnopqrstuvwxyz ok", "t [SECRET] ok"),
    # glued to a word, a key prefix is part of that word
    ("xsk-ant-" + B20 + "1", "xsk-ant-" + B20 + "1"),
    # GitHub classic tokens up to 255 characters after "ghp_"; fine-grained ones have an 82-character body
    ("t ghp_" + "a1" * 127 + "a", "t [SECRET]"),
    ("t ghp_" + "a1" * 128, "t ghp_" + "a1" * 128),
    ("t github_pat_" + "A1" * 11 + "_" + "b2" * 29 + "c", "t [SECRET]"),
    ("t github_pat_" + "A1" * 11 + "_" + "b2" * 29, "t github_pat_" + "A1" * 11 + "_" + "b2" * 29),
])
def test_token_bounds(text, expected):
    assert FILTER.apply(text).text == expected
