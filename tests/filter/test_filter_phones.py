"""Phone numbers through phonenumbers: countries, extensions, regions, and numbers that must stay."""
from __future__ import annotations

import pytest

from app.filter import Blocklist, ContentFilter, DEFAULT_PHONE_REGIONS
from app.filter.phones import PhoneCheck

FILTER = ContentFilter(blocklist=Blocklist())


@pytest.mark.parametrize("number", [
    # France, Germany, UK, US, Spain, Italy, Netherlands, India, Japan, Brazil, Australia
    "+33 1 42 68 53 00", "01 42 68 53 00", "+33 (0)1 41 63 60 83",
    "+49 30 123456", "02471 39484", "+49 (0) 9141 777631", "030/12345678",
    "+44 20 7946 0958", "020 7946 0958", "07700 900123", "+44(0)115 4960914", "(0161) 4960066",
    "(202) 555-0143", "(202)555-0143", "202-555-0143", "1-202-555-0143", "202.555.0143", "+1-202-555-0143",
    "+34 912 345 678", "+39 06 6982 1234", "+39 3420837783", "+31 20 123 4567", "+31(0)83-4497869",
    "+91 98765 43210", "+919141777631", "+81 3-1234-5678", "090-1234-5678", "+55 11 91234-5678",
    "+61 2 9876 5432", "+61.437.406.812", "02 4177 7631",
    # extensions
    "(544) 944-9474 x894", "825.960.0666x75920", "+1-780-563-6083x7783", "020 7946 0958 ext. 12",
    "+49 30 123456 extension 7", "202-555-0143 #21",
])
@pytest.mark.parametrize("template", ["{}", "call {} now", "tel.: {}.", "({})"])
def test_phone_numbers_are_redacted(number, template):
    assert FILTER.apply(template.format(number)).text == template.format("[PHONE]")


@pytest.mark.parametrize("text", [
    "order 4728 1234 5678 9012 shipped", "4728123456789012", "call 555-0143", "zip 90210",
    "2024-05-17", "17.05.2024", "05/17/2024", "12:30:45", "1.2.3", "40.7128, -74.0060",
    "isbn 978-3-16-148410-0", "000-12-3456", "912-34-5678", "Order #123456789", "PO 3615-34487",
    "514014194366", "5882 6852 2951", "162.207.144", "4.6 billion", "v10.0.19045", "1 2 3 4 5 6 7 8 9 0 1 2 3",
    "ORD-20240517", "+12", "(0)", "0088 3765 0049 4648",
])
def test_numbers_that_are_not_phones_stay(text):
    assert FILTER.apply(text).text == text


def test_parts_of_longer_digit_runs_stay():
    assert FILTER.apply("ref 4728 0044 0532 0130 02").text == "ref 4728 0044 0532 0130 02"
    # after a card number a phone number may start
    assert FILTER.apply("x 4111111111111111 202-555-0143 y").text == "x [CARD] [PHONE] y"


def test_phone_regions_decide_national_formats():
    uk_only = ContentFilter(blocklist=Blocklist(), phone_regions=("GB",))
    fr_only = ContentFilter(blocklist=Blocklist(), phone_regions=("FR",))
    assert uk_only.apply("020 7946 0958").text == "[PHONE]"
    assert fr_only.apply("01 42 68 53 00").text == "[PHONE]"
    assert uk_only.apply("202-555-0143").text == "202-555-0143"  # the 3-3-4 layout counts for US/CA only
    assert uk_only.apply("+33 1 42 68 53 00").text == "[PHONE]"  # international numbers always count
    assert FILTER.phone_regions == DEFAULT_PHONE_REGIONS == (
        "US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "JP", "BR", "AU")


@pytest.mark.parametrize("regions", [(), ("XX",), ("GB", "nope")])
def test_unknown_regions_are_refused(regions):
    with pytest.raises(ValueError, match="phone_regions must be ISO 3166 region codes known to phonenumbers"):
        PhoneCheck(regions)


def test_regions_as_a_string_are_refused():
    with pytest.raises(TypeError, match="phone_regions"):
        ContentFilter(phone_regions="US,GB")


# Each rule of the judgement, pinned by a number on each side of it (see the phones module docstring).
@pytest.mark.parametrize("text,expected", [
    # extensions, in every spelling the pattern knows, belong to the number
    ("call (202) 555-0143 EXT 12 now", "call [PHONE] now"),
    ("call (202) 555-0143 EXT. 12 now", "call [PHONE] now"),
    ("call 555-0143 extension 12 now", "call [PHONE] now"),   # 7 digits are enough with an extension
    ("call 555-0143 x12 now", "call [PHONE] now"),
    ("call 555-014 x12 now", "call 555-014 x12 now"),          # 6 are not
    # a number never ends right before a decimal point: "12.5" stays a quantity
    ("call 0 20 79 46 09 58 12.5 now", "call [PHONE] 12.5 now"),
    # international call prefixes lead to a valid number, or to nothing
    ("call 011 44 20 7946 0958 now", "call [PHONE] now"),
    ("call 001-281-390-7236 now", "call [PHONE] now"),
    ("call 001-305-655-2667x869 now", "call [PHONE] now"),
    ("call 011 98765 4321 now", "call [PHONE] now"),
    ("call 000 1234 5678 now", "call 000 1234 5678 now"),       # no number starts with three zeros
    # with "+", a possible number of its country code, up to 17 digits in all
    ("call +999 123 4567 now", "call +999 123 4567 now"),      # no such country code
    ("call +62 8123 4567 8901 2345 now", "call +62 8123 4567 8901 2345 now"),
    # national numbers: at most 12 digits, and never an SSN layout
    ("call 030 1234 567890 now", "call 030 1234 567890 now"),
    ("call 1-123-456-7890 now", "call 1-123-456-7890 now"),   # 1 + an area code that does not exist
    # dialled: an area code in parentheses, or a trunk 0 in groups
    ("call (202) 5550143 now", "call [PHONE] now"),
    ("call 0761 67065 now", "call [PHONE] now"),
    ("call 097525899 now", "call 097525899 now"),              # a 9-digit run with a 0 is an order number
    # dots only in dialled or North American layouts: versions and decimals stay
    ("call 08.4942.0555 now", "call [PHONE] now"),
    ("call 202.555.0143 now", "call [PHONE] now"),
    ("version 4.942.0555 now", "version 4.942.0555 now"),
    # the North American 3-3-4 layout, one separator throughout
    ("call 111-222-3333 now", "call [PHONE] now"),
    ("call 5899139441 now", "call 5899139441 now"),            # a bare run must be a valid number
    ("call 6114980364 now", "call [PHONE] now"),
    # undialled numbers laid out as groups of 3-4 after the first, 9 to 11 digits, and valid
    ("call 3-1234-5678 now", "call [PHONE] now"),
    ("call 412 345 678 now", "call [PHONE] now"),
    ("call 62-3286-0129 now", "call [PHONE] now"),
    ("call 62-32-860129 now", "call 62-32-860129 now"),
])
def test_each_rule_of_the_judgement(text, expected):
    assert FILTER.apply(text).text == expected


def test_a_trunk_zero_run_of_ten_digits_is_dialled():
    # in the UK alone, this number is possible but not assigned: dialled with its 0, it still counts
    assert PhoneCheck(("GB",))("0423388635", 0, 10) == (0, 10)
    assert PhoneCheck(("GB",))("042338863", 0, 9) is None


def test_the_north_american_layout_counts_for_canada_too():
    assert PhoneCheck(("CA",))("111-222-3333", 0, 12) == (0, 12)
    assert PhoneCheck(("GB",))("111-222-3333", 0, 12) is None
