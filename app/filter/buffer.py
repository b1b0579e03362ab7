"""A growing text and its shadow, for filters that see the text a piece at a time."""
from __future__ import annotations

from .normalize import Folded, fold


class ShadowBuffer:
    """The not yet forgotten tail of a text, its shadow, and the offset map between them.

    `starts`/`ends` are None while the shadow has the text's own offsets (all
    ASCII so far), so ordinary streams never build a map.
    """

    def __init__(self):
        self.text = ""
        self.shadow = ""
        self.starts: list | None = None
        self.ends: list | None = None

    def append(self, piece: str) -> None:
        """Add the next piece of original text."""
        self.extend(fold(piece))

    def extend(self, folded: Folded) -> None:
        """Add an already folded piece."""
        base = len(self.text)
        if folded.starts is None and self.starts is None:
            self.text += folded.text
            self.shadow += folded.shadow
            return
        starts, ends = self.starts, self.ends
        if starts is None or ends is None:
            starts, ends = self.starts, self.ends = list(range(base)), list(range(1, base + 1))
        if folded.starts is None or folded.ends is None:
            starts.extend(range(base, base + len(folded.text)))
            ends.extend(range(base + 1, base + len(folded.text) + 1))
        else:
            starts.extend(i + base for i in folded.starts)
            ends.extend(i + base for i in folded.ends)
        self.text += folded.text
        self.shadow += folded.shadow

    def boundary(self, k: int) -> int:
        """Original offset of the boundary before shadow character k (the text's end for k == len)."""
        if self.starts is None:
            return k
        return self.starts[k] if k < len(self.shadow) else len(self.text)

    def spans(self, found) -> list:
        """Shadow (start, end, type) spans mapped to the original text."""
        starts, ends = self.starts, self.ends
        if starts is None or ends is None:
            return found
        return [(starts[a], ends[b - 1], kind) for a, b, kind in found]

    def drop(self, k: int) -> int:
        """Forget the shadow before k and the text before its boundary; returns the text offset dropped."""
        cut = self.boundary(k)
        self.shadow = self.shadow[k:]
        self.text = self.text[cut:]
        if self.starts is not None and self.ends is not None:
            self.starts = [i - cut for i in self.starts[k:]]
            self.ends = [i - cut for i in self.ends[k:]]
        return cut

    def clear(self) -> None:
        """Forget everything."""
        self.text = self.shadow = ""
        self.starts = self.ends = None
