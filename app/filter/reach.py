"""How far a compiled pattern can look from the position where a match attempt starts.

The streaming filter decides that a match attempt is final once every
character it could examine has arrived; these bounds make that decision exact
instead of heuristic.
"""
from __future__ import annotations

from dataclasses import dataclass

# The stdlib parser is the only source of the pattern structure; it is private
# but has been stable for years and is pinned by the interpreter version.
try:  # pragma: no cover - depends on the interpreter version
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _p


class UnboundedPattern(ValueError):
    """The pattern can examine an unbounded amount of text."""


@dataclass(frozen=True)
class Reach:
    """Characters a match attempt may examine: `ahead` from its start, `behind` before it."""

    ahead: int
    behind: int
    shortest: int = 0


_ONE_CHAR = {_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN}
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT)}


def pattern_reach(pattern: str, flags: int = 0) -> Reach:
    """Bound the text a match attempt of `pattern` can examine; raises UnboundedPattern."""
    tree = _p.parse(pattern, flags)
    walker = _Walker(tree.state.groupwidths)
    _advance, ahead = walker.seq(tree)
    return Reach(ahead=ahead, behind=walker.behind, shortest=tree.getwidth()[0])


class _Walker:
    def __init__(self, groupwidths):
        self.groupwidths = groupwidths
        self.behind = 0

    def seq(self, items) -> tuple[int, int]:
        # (max characters consumed, max offset examined + 1) for a sequence
        advance = reach = 0
        for op, av in items:
            adv, rch = self.node(op, av)
            reach = max(reach, advance + rch)
            advance += adv
        return advance, reach

    def node(self, op, av) -> tuple[int, int]:
        if op in _ONE_CHAR:
            return 1, 1
        if op is _c.AT:
            # boundaries peek one character back; `$` may peek at a final newline
            self.behind = max(self.behind, 1)
            return 0, 2
        if op is _c.SUBPATTERN:
            return self.seq(av[-1])
        if op is _c.ATOMIC_GROUP:
            return self.seq(av)
        if op is _c.BRANCH:
            widths = [self.seq(alt) for alt in av[1]]
            return max(w[0] for w in widths), max(w[1] for w in widths)
        if op in _REPEATS:
            _low, high, item = av
            if high == _c.MAXREPEAT:
                raise UnboundedPattern("unbounded repetition (*, +, {n,}) is not supported; use {m,n}")
            adv, rch = self.seq(item)
            if high == 0:
                return 0, 0
            return high * adv, (high - 1) * adv + rch
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, sub = av
            adv, rch = self.seq(sub)
            if direction < 0:
                self.behind = max(self.behind, adv + 1)
                return 0, 0
            return 0, rch
        if op is _c.GROUPREF:
            # the group itself was walked first, so its width is already known to be bounded
            width = self.groupwidths[av][1]
            return width, width
        if op is _c.GROUPREF_EXISTS:
            _group, yes, no = av
            a = self.seq(yes)
            b = self.seq(no) if no is not None else (0, 0)
            return max(a[0], b[0]), max(a[1], b[1])
        raise UnboundedPattern(f"unsupported pattern construct {op}")  # pragma: no cover
