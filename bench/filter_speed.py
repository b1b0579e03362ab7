"""Micro-benchmark of the filter's hot path: an ordinary ~1 KB reply with no PII, whole and streamed.

Run: .venv/bin/python bench/filter_speed.py [--rounds N]
Prints the best-of-rounds time per call in microseconds for `apply()` and for
a 64-chunk `stream()`; compare runs on the same machine only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.filter import ContentFilter  # noqa: E402

REPLY = (
    "Sure! Here is a short overview of how the solar system formed. About 4.6 billion years ago, "
    + "a cloud of gas and dust collapsed under its own gravity. Most of the material gathered in "
    + "the centre and became the Sun, while the rest flattened into a spinning disk. Within that "
    + "disk, small grains stuck together and grew into pebbles, then boulders, then planetesimals "
    + "a few kilometres across. Close to the Sun it was too hot for ice, so the inner planets "
    + "(Mercury, Venus, Earth and Mars) are made mostly of rock and metal. Further out, beyond the "
    + "so-called frost line, ice was plentiful, and the cores of Jupiter and Saturn grew large "
    + "enough to pull in huge envelopes of hydrogen and helium. Uranus and Neptune formed later "
    + "and are richer in ices. Left-over bodies survive today as asteroids, comets and the objects "
    + "of the Kuiper belt. If you would like, I can go into more detail on any of these steps, "
    + "for example how the Moon formed after a giant impact, or why the planets orbit in nearly "
    + "the same plane. Let me know what interests you most!"
)


def chunks(text: str, n: int) -> list[str]:
    """Cut text into n nearly equal pieces."""
    cuts = [len(text) * i // n for i in range(n + 1)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]


def best(fn, rounds: int, inner: int) -> float:
    """Best time of one call in microseconds over `rounds` batches of `inner` calls."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return min(times) * 1e6


def main() -> None:
    """Time apply() and a 64-chunk stream on the ordinary reply."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cf = ContentFilter()
    pieces = chunks(REPLY, 64)
    assert cf.apply(REPLY).text == REPLY

    def streamed():
        sf = cf.stream()
        for piece in pieces:
            sf.feed(piece)
        sf.finish()

    print(f"reply: {len(REPLY)} characters, {len(pieces)} stream chunks")
    print(f"apply():  {best(lambda: cf.apply(REPLY), args.rounds, 200):8.1f} us")
    print(f"stream(): {best(streamed, args.rounds, 50):8.1f} us")


if __name__ == "__main__":
    main()
