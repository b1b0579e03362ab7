#!/usr/bin/env python3
"""Render collapsed stacks (``frame;frame;frame count`` a line, as py-spy's raw format writes) as an SVG flame graph.

The drawing follows flamegraph.pl's: the root at the bottom, each frame as
wide as its share of the samples, siblings in alphabetical order, a tooltip
(``<title>``) per frame with its samples and share. No script and no
dependencies, so the file opens anywhere, including GitHub's file view.

    python3 bench/flamegraph.py bench/profiles/live-….txt -o docs/flame.svg --title "…"
"""
from __future__ import annotations

import argparse
import html
import sys
import zlib
from pathlib import Path

WIDTH = 1200
ROW = 16
PAD = 10
MIN_WIDTH = 0.1  # frames narrower than this (px) are left out, as flamegraph.pl does


def fold(lines: list[str]) -> tuple[dict, int]:
    """The stacks as a tree of {name: [count, children]}, and the total count."""
    root: dict = {}
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        level = root
        for frame in stack.split(";"):
            # py-spy's process and thread frames say nothing about the code.
            if not frame or frame.startswith(("process ", "thread ")):
                continue
            node = level.setdefault(frame, [0, {}])
            node[0] += n
            level = node[1]
    return root, total


def _depth(level: dict) -> int:
    return 1 + max((_depth(children) for _, children in level.values()), default=0) if level else 0


def _color(name: str) -> str:
    # Stable warm colours from the name; chatgate's own frames in a cooler hue so they stand out.
    h = zlib.crc32(name.encode())
    if "(app/" in name or "(config.py" in name or "(wsgi.py" in name:
        return f"rgb({60 + h % 50},{150 + (h >> 8) % 60},{200 + (h >> 16) % 55})"
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 120},{40 + (h >> 16) % 40})"


def render(lines: list[str], title: str) -> str:
    """The SVG document for the collapsed stacks in ``lines``."""
    root, total = fold(lines)
    depth = _depth(root)
    height = (depth + 3) * ROW + 2 * PAD
    scale = (WIDTH - 2 * PAD) / max(total, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="Verdana, sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="#f8f8f8"/>',
           f'<text x="{WIDTH / 2}" y="{PAD + 12}" text-anchor="middle" font-size="15">{html.escape(title)}</text>',
           f'<text x="{PAD}" y="{PAD + 28}" font-size="11" fill="#555">{total:,} samples; width = share of '
           'samples; hover a frame for its figures; blue frames are chatgate\'s own code</text>']

    def draw(level: dict, x: float, row: int) -> None:
        for name in sorted(level):
            count, children = level[name]
            w = count * scale
            if w < MIN_WIDTH:
                x += w
                continue
            y = height - PAD - (row + 1) * ROW
            label = html.escape(name)
            out.append(f'<g><title>{label} ({count:,} samples, {100 * count / total:.2f}%)</title>'
                       f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{ROW - 1}" fill="{_color(name)}" '
                       'rx="2"/>')
            chars = int(w / 7)
            if chars >= 3:
                text = name if len(name) <= chars else name[:chars - 2] + ".."
                out.append(f'<text x="{x + 3:.2f}" y="{y + ROW - 4}">{html.escape(text)}</text>')
            out.append("</g>")
            draw(children, x, row + 1)
            x += w

    draw(root, PAD, 0)
    out.append("</svg>")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", help="collapsed stacks (py-spy record --format raw)")
    parser.add_argument("-o", "--output", required=True, help="the SVG to write")
    parser.add_argument("--title", default="chatgate flame graph")
    args = parser.parse_args(argv)
    svg = render(Path(args.stacks).read_text(errors="replace").splitlines(), args.title)
    Path(args.output).write_text(svg, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
