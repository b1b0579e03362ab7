"""Checks that turn a pattern candidate into a PII finding (or reject it).

Each check gets the scanned text and the candidate's (start, end) and returns
the (start, end) span to redact, or None when the candidate is not PII. Checks
only look at the candidate itself, so a streamed reply reaches the same verdict
as the whole text; they take offsets rather than a slice so that a long
candidate is never copied.
"""
from __future__ import annotations

import ipaddress
import re

_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_NON_DIGIT = re.compile(r"[^0-9]")
_HEX = re.compile(r"[0-9A-Fa-f]")

# Registered IBAN lengths (ISO 13616 registry); an unknown country is not an IBAN.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a string of decimal digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    """ISO 7064 mod-97 check of an IBAN without spaces."""
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _check_card(s: str, start: int, end: int):
    digits = _NON_DIGIT.sub("", s[start:end])
    if not (13 <= len(digits) <= 19 or (len(digits) == 12 and digits[0] in "56")):
        return None  # 12 digits only for Maestro (50, 56-69), not for other 12-digit numbers
    return (start, end) if luhn_ok(digits) else None


def _check_iban(s: str, start: int, end: int):
    want = _IBAN_LENGTHS.get(s[start:start + 2])
    if want is None:
        return None
    compact = s[start:end].replace(" ", "")
    if len(compact) != want and 15 <= len(compact) <= 34 and iban_ok(compact):
        # generated and hand-typed IBANs are sometimes a character off their country's length;
        # the mod-97 check over the whole candidate is still as selective (1 in 97)
        return start, end
    seen = 0
    for i in range(start, end):
        if s[i] != " ":
            seen += 1
            if seen == want:
                stop = i + 1
                # a trimmed IBAN must end where a group ends, not mid-group
                if stop < end and s[stop] != " ":
                    return None
                return (start, stop) if iban_ok(s[start:stop].replace(" ", "")) else None
    return None


def _check_ssn(s: str, start: int, end: int):
    area, group, serial = s[start:end].split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return start, end


def _check_email(s: str, start: int, end: int):
    at = s.index("@", start, end)
    stop = end
    while stop > at + 1 and s[stop - 1] in ".-":
        stop -= 1
    if not _DOMAIN.fullmatch(s, at + 1, stop):
        return None
    return start, stop


def _check_ipv6(s: str, start: int, end: int):
    cand = s[start:end]
    if len(_HEX.findall(cand)) < 4 or not any(ch.isdigit() for ch in cand):
        return None
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return None
    return start, end


def _accept(s: str, start: int, end: int):
    return start, end


VALIDATORS = {
    "ipv4": _accept, "ssn": _check_ssn, "email": _check_email,
    "iban": _check_iban, "card": _check_card, "ipv6": _check_ipv6,
}
