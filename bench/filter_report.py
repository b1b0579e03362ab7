"""Filter quality report: recall per type, keep-rate on hard negatives, stream agreement.

Run: .venv/bin/python bench/filter_report.py [--seed N] [--per-locale N] [--markdown]

A value counts as caught when the filtered text no longer contains it, read
through the filter's own normalisation (so a disguised value that survives
half-redacted, or with its zero-width space still inside, is a miss). A hard
negative is kept when it comes out byte for byte. Every text is also streamed
in random chunks; a stream whose output differs from the whole-text output is
a leak across chunk boundaries.
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.filter import Blocklist, ContentFilter  # noqa: E402
from app.filter.normalize import fold  # noqa: E402
from filter_corpus import LOCALES, build  # noqa: E402


def read(text: str) -> str:
    """How a text reads once normalised (what a person, or a second filter, would see)."""
    return fold(text).shadow


def chunked(rng: random.Random, text: str) -> list[str]:
    """The text cut at random places."""
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(1, 8))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def main() -> None:
    """Run the corpus through the filter and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--per-locale", type=int, default=40)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses per type")
    args = parser.parse_args()
    cf = ContentFilter(blocklist=Blocklist())
    rng = random.Random(args.seed)
    stats = defaultdict(lambda: [0, 0])  # (group, type) -> [good, total]
    misses = defaultdict(list)
    leaks = streams = 0
    for group, kind, text, value in build(args.seed, args.per_locale):
        out = cf.apply(text).text
        if value is None:
            good = out == text
        else:
            good = read(value) not in read(out) and value not in out
        stats[(group, kind)][0] += good
        stats[(group, kind)][1] += 1
        if not good:
            misses[(group, kind)].append((text, out))
        sf = cf.stream()
        emitted = "".join(sf.feed(c) for c in chunked(rng, text)) + sf.finish()
        streams += 1
        leaks += emitted != out
    rows = []
    for group in ("ordinary", "new", "disguised", "negative"):
        keys = sorted(k for k in stats if k[0] == group)
        good = sum(stats[k][0] for k in keys)
        total = sum(stats[k][1] for k in keys)
        for k in keys:
            rows.append((group, k[1], stats[k][0], stats[k][1]))
        rows.append((group, "all", good, total))
    metric = {"negative": "keep-rate"}
    if args.markdown:
        print("| group | type | measure | rate | n |\n|---|---|---|---|---|")
        for group, kind, good, total in rows:
            name = f"**{kind}**" if kind == "all" else kind
            print(f"| {group} | {name} | {metric.get(group, 'recall')} | {good / total:.3f} | {total} |")
    else:
        for group, kind, good, total in rows:
            print(f"{group:10s} {kind:24s} {metric.get(group, 'recall'):9s} {good / total:6.3f}  ({good}/{total})")
    print(f"\nlocales: {len(LOCALES)}; streamed texts: {streams}; stream outputs differing from whole: {leaks}")
    for key, items in sorted(misses.items()):
        for text, out in items[:args.misses]:
            print(f"MISS {key}: {text!r} -> {out!r}")


if __name__ == "__main__":
    main()
