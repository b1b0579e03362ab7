"""docs/grafana-dashboard.json: valid JSON, and every query names metrics that chatgate really exports."""
from __future__ import annotations

import json
import os
import re

from prometheus_client.parser import text_string_to_metric_families
from support import ROOT

METRIC = re.compile(r"\b(?:gen_ai|chatgate)_[a-z_]+\b")


def test_every_query_names_a_metric_chatgate_exports(client, make_app, tmp_path):
    client.post("/chat", json={"prompt": "echo: jane.doe@example.com", "stream": True}, buffered=True)
    text = client.get("/metrics").get_data(as_text=True)
    # Circuit states exist only with UPSTREAMS_FILE (one upstream from OPENAI_* has no breaker).
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text('[upstreams.demo]\nkind = "offline"\n[models."gpt-4o-mini"]\ntargets = ["demo"]\n')
    text += make_app(UPSTREAMS_FILE=str(upstreams)).test_client().get("/metrics").get_data(as_text=True)
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    exported = {s.name for s in samples}
    labels = {label for s in samples for label in s.labels}  # gen_ai_token_type and friends name labels
    with open(os.path.join(ROOT, "docs", "grafana-dashboard.json"), encoding="utf-8") as fh:
        dashboard = json.load(fh)
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert queries
    for expr in queries:
        named = set(METRIC.findall(expr)) - labels
        assert named and named <= exported, (expr, named - exported)
    shown = {name for expr in queries for name in METRIC.findall(expr)} - labels
    # What the issue asks the picture to show: requests, errors, latency, TTFT, overhead, tokens, spend, filter.
    assert {"chatgate_http_requests_total", "gen_ai_client_operation_duration_seconds_bucket",
            "gen_ai_server_time_to_first_token_seconds_bucket", "chatgate_gateway_overhead_seconds_bucket",
            "gen_ai_client_token_usage_sum", "chatgate_spend_usd_total", "chatgate_filter_actions_total",
            "chatgate_cache_requests_total", "chatgate_circuit_state"} <= shown
