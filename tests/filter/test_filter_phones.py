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
    with pytest.raises(ValueError, match="phone_regions"):
        PhoneCheck(regions)


def test_regions_as_a_string_are_refused():
    with pytest.raises(TypeError, match="phone_regions"):
        ContentFilter(phone_regions="US,GB")
