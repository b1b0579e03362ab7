"""Phone numbers: a bounded candidate pattern, judged by `phonenumbers` (libphonenumber's port).

The pattern only finds runs that are laid out like a phone number: an optional
"+", digit groups (one may be in parentheses) joined by single spaces, dots,
dashes or slashes, and an optional extension ("x894", "ext. 12", "#7"). It
never starts or ends inside a longer run of digits, so a 16-digit order number
is one candidate, and an invalid one, rather than a source of shorter ones.

`phonenumbers` then decides, per candidate:
- with "+" (or an international call prefix "00"/"011"): a possible number for
  its country code;
- otherwise (at most 12 digits), for each region in `phone_regions`: a
  possible national number that also looks dialled, i.e. it has a trunk "0"
  (in groups, or as a run of 10 or more digits), an area code in parentheses,
  an extension, or the North American 3-3-4 layout; or a number
  `phonenumbers` holds valid that is laid out like one: 9-11 digits in groups
  of 3-4 after the first, or one run of 10-11 digits. So SSN shapes
  ("912-34-5678"), dates, dotted quads, 12-digit tracking numbers and short
  order numbers ("order 0255034") never qualify.
Possible rather than valid, because real directories, and generated test data,
contain many numbers in ranges that libphonenumber does not know as assigned.
"""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "JP", "BR", "AU")

_SEP = r"(?:[ ]?[-./][ ]?|[ ])"
_PGROUP = r"\([0-9]{1,6}\)"
_DGROUP = r"[0-9]{1,12}+"
_EXT = r"(?:[ ]?,?[ ]?(?:x|X|ext\.?|Ext\.?|EXT\.?|extension|Extension|#)[ ]?[0-9]{1,6})?"
# A candidate may not start right after a word character, a digit-ish symbol or a path/ID separator,
# nor inside a run of digit groups ("4728 1234 5678 9012" is one candidate, not "1234 5678 9012");
# after a run too long to be a phone group (a card number), a phone number may start.
# The first character is matched on its own (the regex engine then skips ahead to it); what
# follows depends on which it was.
HEAD = (
    r"[+(0-9](?<![\w+#@.$€£%/-][+(0-9])(?:(?<![0-9][ ./-][+(0-9])|(?<=[0-9]{13}[ ./-][+(0-9]))"
    # at least seven characters that can belong to a number: "4.6 billion" is not even tried
    + r"(?=[-() ./0-9]{6})"
    + rf"(?:(?<=\+)[ ]?(?:{_PGROUP}|{_DGROUP})|(?<=\()[0-9]{{1,6}}\)|(?<=[0-9])[0-9]{{0,14}}+)"
    + rf"(?:{_SEP}?{_PGROUP}|{_SEP}{_DGROUP}|(?<=\)){_DGROUP}){{0,6}}"
    + _EXT
    + r"(?![\w]|[.:-][0-9])"
)

_EXT_SPLIT = re.compile(r"[ ]?,?[ ]?(?:x|ext\.?|extension|#)[ ]?([0-9]{1,6})$", re.IGNORECASE)
_NON_DIGIT = re.compile(r"[^0-9]")
_GROUPS = re.compile(r"[0-9]+")
_NANP = re.compile(r"(?:\+?1[ .-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}([ .-]))[0-9]{3}(?(1)\1|[ .-])[0-9]{4}")
_DATE = re.compile(r"[0-9]{4}[-./][0-9]{1,2}[-./][0-9]{1,2}|[0-9]{1,2}[-./][0-9]{1,2}[-./][0-9]{2,4}$")
_DECIMAL = re.compile(r"[0-9]+\.[0-9]+")
_SSN = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")
_IDD = ("011", "00")


class PhoneCheck:
    """Accepts a phone candidate when `phonenumbers` holds it a number of one of `regions`."""

    def __init__(self, regions=DEFAULT_REGIONS):
        regions = tuple(regions)
        if not regions or any(r not in phonenumbers.SUPPORTED_REGIONS for r in regions):
            raise ValueError(f"phone_regions must be ISO 3166 region codes known to phonenumbers, got {regions!r}")
        self.regions = regions
        self._judge = lru_cache(maxsize=4096)(self._is_phone)

    def __call__(self, s: str, start: int, end: int):
        """The (start, end) span of the phone number in s[start:end], or None."""
        return (start, end) if self._judge(s[start:end]) else None

    def _is_phone(self, cand: str) -> bool:
        ext = _EXT_SPLIT.search(cand)
        main = cand[:ext.start()] if ext else cand
        digits = _NON_DIGIT.sub("", main)
        if not 7 <= len(digits) <= 17 or _DATE.match(main) or _DECIMAL.fullmatch(main):
            return False
        if main.startswith("+"):
            return _possible(main, None)
        for idd in _IDD:
            # a call prefix must lead to a number libphonenumber knows, not just a possible length
            number = _parse("+" + digits[len(idd):], None) if digits.startswith(idd) else None
            if number is not None and phonenumbers.is_valid_number(number):
                return True
        if len(digits) > 12 or _SSN.fullmatch(main) or digits.startswith("000"):
            return False
        groups = _GROUPS.findall(main)
        bare = len(groups) == 1
        if "." in main and not (digits[0] == "0" or _NANP.fullmatch(main)):
            return False  # dotted numbers are versions, addresses and decimals unless dialled
        dialled = ext is not None or "(" in main or (digits[0] == "0" and (not bare or len(digits) >= 10))
        # an undialled number must be laid out like one: short groups after the first, or one run of 10-11
        laid_out = 9 <= len(digits) <= 11 and (bare or all(3 <= len(g) <= 4 for g in groups[1:]))
        nanp = _NANP.fullmatch(main) is not None
        for region in self.regions:
            number = _parse(main, region)
            if number is None or phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
                continue
            if dialled or (nanp and region in ("US", "CA")):
                return True
            if laid_out and (not bare or len(digits) >= 10):
                if phonenumbers.is_valid_number(number):
                    return True
        return False


def _parse(text: str, region):
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _possible(text: str, region) -> bool:
    number = _parse(text, region)
    return number is not None and phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE
