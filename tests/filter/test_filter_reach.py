"""Reach bounds that decide when a streamed match attempt is final."""
from __future__ import annotations

import pytest

from app.filter.reach import UnboundedPattern, pattern_reach


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


def test_anchors_look_one_character_back():
    assert pattern_reach("^a").ahead == 2
    assert pattern_reach("(?m)^a").behind == 1


def test_shortest():
    assert pattern_reach("a{2,4}").shortest == 2
    assert pattern_reach("a?").shortest == 0
