#!/usr/bin/env python3
"""Plot a client's spend from chatgate's GET /usage: one bar a day, stacked by model, as an SVG file.

    python3 examples/usage_plot.py --url http://127.0.0.1:8000 --key "$CHATGATE_KEY" --days 30 --out usage.svg

Standard library only. ``--key`` (or $CHATGATE_KEY) is the client key whose
usage to plot; leave it out for a server in AUTH_MODE=open. Open the SVG in
any browser.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from datetime import date, timedelta
from html import escape

WIDTH, HEIGHT = 880, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 50, 60
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def fetch(url: str, key: str | None, days: int) -> dict:
    """GET /usage?days=N as JSON."""
    request = urllib.request.Request(f"{url.rstrip('/')}/usage?days={days}")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.load(resp)


def render(report: dict, title: str = "chatgate spend by day and model") -> str:
    """The SVG of a /usage report: cost per day, stacked by model, with the period's total."""
    days = report["days"]
    last = date.today() if not report["data"] else max(date.fromisoformat(r["day"]) for r in report["data"])
    axis = [(last - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    models = sorted({r["model"] for r in report["data"]})
    cost = {(r["day"], r["model"]): r["cost_usd"] for r in report["data"]}
    per_day = [sum(cost.get((d, m), 0.0) for m in models) for d in axis]
    top = _nice(max(per_day, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(days, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           + f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
           f'<text x="{LEFT}" y="28" font-size="16" font-weight="bold">{escape(title)}</text>',
           f'<text x="{WIDTH - RIGHT}" y="28" text-anchor="end">total ${sum(per_day):,.2f} over {days} days, '
           + f'{sum(r["requests"] for r in report["data"]):,} requests</text>']
    for i in range(5):  # grid and y labels
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">${value:,.2f}</text>')
    for i, day in enumerate(axis):
        x = LEFT + i * slot + slot * 0.15
        y = TOP + plot_h
        for j, model in enumerate(models):
            height = plot_h * cost.get((day, model), 0.0) / top if top else 0.0
            if height > 0:
                y -= height
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
                           + f'fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(day)} {escape(model)}: '
                           + f'${cost[(day, model)]:.4f}</title></rect>')
        if days <= 14 or i % max(1, days // 10) == 0 or i == days - 1:
            out.append(f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">'
                       + f'{escape(day[5:])}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#333"/>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 14}" text-anchor="middle">day (UTC)</text>')
    for j, model in enumerate(models):  # legend
        y = TOP + 10 + j * 22
        total = sum(cost.get((d, model), 0.0) for d in axis)
        out.append(f'<rect x="{WIDTH - RIGHT + 20}" y="{y - 10}" width="12" height="12" '
                   + f'fill="{COLOURS[j % len(COLOURS)]}"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 38}" y="{y}">{escape(model)} ${total:,.2f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 100 if value >= 1 else 0.01
    while step * 4 < value:
        step *= 2.5 if str(step).startswith("2") else 2
    return step * 4


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description="Plot GET /usage as an SVG bar chart.")
    parser.add_argument("--url", default=os.environ.get("BASE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("CHATGATE_KEY"), help="client key (default $CHATGATE_KEY)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--out", default="usage.svg")
    args = parser.parse_args(argv)
    svg = render(fetch(args.url, args.key, args.days))
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(svg)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
