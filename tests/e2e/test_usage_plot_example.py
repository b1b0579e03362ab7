"""examples/usage_plot.py draws a live server's GET /usage as an SVG bar chart."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import requests
from support import ROOT, LiveServer


def test_the_plot_script_draws_what_usage_reports(tmp_path):
    out = tmp_path / "usage.svg"
    with LiveServer(dev=True, ALLOWED_MODELS="gpt-4o-mini,gpt-4o") as server:
        for model in ("gpt-4o-mini", "gpt-4o", "gpt-4o"):
            assert requests.post(server.url + "/chat", json={"prompt": "Hello", "model": model},
                                 timeout=30).status_code == 200
        report = requests.get(server.url + "/usage?days=7", timeout=10).json()
        done = subprocess.run([sys.executable, "examples/usage_plot.py", "--url", server.url, "--days", "7",
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    svg = ET.parse(out).getroot()
    texts = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    total = sum(r["cost_usd"] for r in report["data"])
    assert f"total ${total:,.2f} over 7 days, 3 requests" in texts
    assert any(t.startswith("gpt-4o-mini $") for t in texts) and any(t.startswith("gpt-4o $") for t in texts)
    bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title")
            is not None]
    assert len(bars) == 2  # today, one bar per model
