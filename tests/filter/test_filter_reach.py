"""Reach bounds that decide when a streamed match attempt is final."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.filter import pii, secrets
from app.filter.reach import Frontier, UnboundedPattern, pattern_alphabet, pattern_reach


@pytest.mark.parametrize("pattern,ahead,behind", [
    ("abc", 3, 0),
    ("a{2,5}", 5, 0),
    ("(?:ab|cde)x", 4, 0),
    ("ab(?=cde)", 5, 0),
    ("(?<=xy)ab", 2, 3),
    ("(?<!q)a(?!bc)", 3, 2),
    ("\\bword\\b", 6, 1),
    ("a$", 3, 1),
    ("(?>ab)c", 3, 0),
    ("(a)?(?(1)bc|d)", 3, 0),
    ("(a)?(?(1)b(?=cd)|e)f", 4, 0),  # a branch that peeks further than it consumes
    ("(a)?(?(1)b|e(?=cd))f", 4, 0),
    ("(ab)\\1", 4, 0),
    ("x{0}y", 1, 0),
    ("a{1,3}?b", 4, 0),
])
def test_reach(pattern, ahead, behind):
    reach = pattern_reach(pattern)
    assert (reach.ahead, reach.behind) == (ahead, behind)


@pytest.mark.parametrize("pattern", ["a*", "a+", "a{2,}", "(a+)\\1", "(?=a*)b", "(a*)b"])
def test_unbounded(pattern):
    with pytest.raises(UnboundedPattern):
        pattern_reach(pattern)


def test_an_unbounded_repetition_says_what_to_write_instead():
    # block-list authors see this message at start-up, next to their pattern
    with pytest.raises(UnboundedPattern, match=r"unbounded repetition \(\*, \+, \{n,\}\) is not supported; use \{m,n\}"):
        pattern_reach("ab+")


def test_anchors_look_one_character_back():
    assert pattern_reach("^a").ahead == 2
    assert pattern_reach("(?m)^a").behind == 1


def test_shortest():
    assert pattern_reach("a{2,4}").shortest == 2
    assert pattern_reach("a?").shortest == 0


# --- where a growing text is settled ----------------------------------------------------

@pytest.mark.parametrize("pattern,chars,peek,first", [
    ("ab[0-2]", "ab012", 1, "a"),
    ("(?<![\\w-])x[yz]{2}(?![A-Za-z0-9]{2})", "xyz", 2, "x"),  # look-behinds add nothing, look-aheads peek
    ("a\\b", "a", 2, "a"),
    ("(?:c|d)?e", "cde", 1, "cde"),                          # an optional head lets the next item start
    ("a(?=[0-9]{4})", "a", 4, "a"),
])
def test_alphabet(pattern, chars, peek, first):
    alphabet = pattern_alphabet(pattern)
    assert alphabet.chars == frozenset(chars) and alphabet.peek == peek and alphabet.first == frozenset(first)


@pytest.mark.parametrize("pattern,flags", [("a\\w", 0), ("a.b", 0), ("[^x]y", 0), ("ab", re.IGNORECASE)])
def test_open_alphabets_are_not_guessed(pattern, flags):
    assert pattern_alphabet(pattern, flags).chars is None


SETTLED_PATTERNS = [body for _name, body in (*secrets.HEADS, *pii._HEADS)] + [
    "[0-9]{3}-[0-9]{4}(?![0-9])", "x(?:y z){1,3}", "ab?c?(?=d{1,2})", "ab$", "a\\b"]


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(SETTLED_PATTERNS) - 1),
       text=st.text(alphabet="ab cdxyz01234-+()@.ghp_sk\n", max_size=60),
       more=st.text(alphabet="ab cdxyz01234-+()@.ghp_sk\n", max_size=60))
def test_attempts_before_the_frontier_do_not_change_as_the_text_grows(index, text, more):
    pattern = SETTLED_PATTERNS[index]
    rx = re.compile(pattern)
    frontier = Frontier(pattern, pattern_reach(pattern).ahead)
    settled = frontier(text, 0)
    assert 0 <= settled <= len(text)
    for p in range(settled):
        now, later = rx.match(text, p), rx.match(text + more, p)
        assert (now and now.span()) == (later and later.span()), (pattern, text, more, p)


def test_prose_settles_up_to_its_last_word():
    scanner = pii.scanner_for(("US",))
    text = "Mars is the fourth planet from the Sun and the second smallest in the Solar System. It is"
    assert scanner.reach > 100
    assert scanner.horizon(text, 0) >= len(text) - len(" It is")


@pytest.mark.parametrize("pattern,expected", [
    ("(?=a)b", (1, 0, 1)),      # a look-ahead consumes nothing, so what follows starts at the same place
    ("b(?<=b)", (1, 2, 1)),     # a look-behind reads back, not ahead
    ("ba{0}", (1, 0, 1)),       # a repetition of zero times reads nothing
    ("(a)?(?(1)(?:))b", (2, 0, 1)),  # a conditional without a "no" branch may match nothing
    ("(a)?(?(1)b)c", (3, 0, 1)),
    ("(a)?(?(1)(?:))", (1, 0, 0)),
])
def test_reach_of_zero_width_constructs(pattern, expected):
    reach = pattern_reach(pattern)
    assert (reach.ahead, reach.behind, reach.shortest) == expected


@pytest.mark.parametrize("pattern,chars,first", [
    ("ab", {"a", "b"}, {"a"}),
    ("a{1,3}b", {"a", "b"}, {"a"}),        # one "a" is required, so "b" never comes first
    ("(?:ab|cd)x", set("abcdx"), {"a", "c"}),
    ("a?b?", {"a", "b"}, None),            # can match empty: any position may start a match
    ("[\u1000-\u1fff]", {chr(c) for c in range(0x1000, 0x2000)}, {chr(c) for c in range(0x1000, 0x2000)}),
    ("[\u1000-\u2000]", None, None),       # 4,097 characters: treated as any character
])
def test_alphabet_and_first_characters(pattern, chars, first):
    alphabet = pattern_alphabet(pattern)
    assert alphabet.chars == (None if chars is None else frozenset(chars))
    assert alphabet.first == (None if first is None else frozenset(first))


def test_reach_and_alphabet_are_values():
    # scanners built once are shared between threads and cached by their phone regions
    with pytest.raises(AttributeError):
        pattern_reach("ab").ahead = 9  # type: ignore[misc]
    with pytest.raises(AttributeError):
        pattern_alphabet("ab").peek = 9  # type: ignore[misc]
    assert hash(pattern_reach("ab")) == hash(pattern_reach("ab"))


@pytest.mark.parametrize("text,expected", [
    ("aaaaaa", 3),    # the first position whose attempt could still read past the end
    ("xaaa b", 6),    # a space settles every attempt before it; nothing after it can start a match
])
def test_frontier_positions(text, expected):
    assert Frontier("a[a-z]{3}", 4)(text, 0) == expected


@pytest.mark.parametrize("text,expected", [
    ("xaa ab", 4),
    ("aa a a!", 5),   # the "!" settles nothing yet: the look-ahead past it has not arrived
])
def test_frontier_waits_for_the_look_ahead_past_a_foreign_character(text, expected):
    pattern = "a[a-z]{3}(?![0-9]{2})"
    assert Frontier(pattern, pattern_reach(pattern).ahead)(text, 0) == expected
