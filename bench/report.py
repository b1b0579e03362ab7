"""Turn a benchmark result into derived numbers, verdicts, one table and the docs section."""
from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

DOC_START = "<!-- bench:results:start (bench/run.py rewrites this section) -->"
DOC_END = "<!-- bench:results:end -->"
SUBJECTS = ("bare", "chatgate", "chatgate_cache_hit", "chatgate_cache_miss", "litellm")

# The targets for chatgate, from one run on the 2-core reference machine: every feature on, and still no
# more than the bare proxy costs (req/s, CPU per request and per stream, added TTFB), 1 ms added at one
# connection, and a quarter of a gigabyte for 1,000 streams.
TARGET_RPS_VS_LITELLM = 6.0
TARGET_RPS_VS_BARE = 1.0
TARGET_CPU_PER_REQUEST_VS_BARE = 1.0
TARGET_ADDED_P50_C1_MS = 1.0
TARGET_STREAMS = 1000
TARGET_STREAM_CPU_VS_BARE = 1.0
TARGET_ADDED_TTFB_P99_VS_BARE = 1.0
TARGET_PEAK_MB = 250.0
# The response cache: a hit costs less than the bare proxy's round trip; a miss about what a call costs without it.
TARGET_CACHE_HIT_VS_BARE = 2.0
TARGET_CACHE_MISS_VS_CHATGATE = 0.95


# --------------------------------------------------------------------------- machine


def _cmd(argv) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (res.stdout + res.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine(app_python: str, litellm_venv: Path) -> dict:
    """What the run ran on: CPU, cores, memory, OS, kernel, Python and tool versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        pass
    os_name = platform.platform()
    try:
        os_name = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    versions = {
        "python": _cmd([app_python, "-c", "import platform; print(platform.python_version())"]) or platform.python_version(),
        "nginx": _cmd(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": (_cmd(["wrk", "-v"]).splitlines() or [""])[0].split(" [")[0],
    }
    app_pkgs = _cmd([app_python, "-c", "import importlib.metadata as m; print(' '.join(p + '=' + m.version(p) "
                     + "for p in ('flask', 'gunicorn', 'gevent', 'requests')))"])
    if app_pkgs and "Error" not in app_pkgs:
        versions["app_packages"] = app_pkgs
    commit = _cmd(["git", "-C", str(Path(__file__).resolve().parent.parent), "rev-parse", "--short", "HEAD"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "versions": versions,
        "commit": commit if re.fullmatch(r"[0-9a-f]{4,40}", commit or "") else "none (no commit yet)",
    }


# --------------------------------------------------------------------------- derived numbers


def _ms(us) -> float | None:
    return None if us is None else us / 1000.0


def _sub(a, b) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a, b) -> float | None:
    return None if a is None or not b else a / b


def derive(result: dict) -> None:
    """Add added-latency, ratio and target verdicts to ``result`` in place."""
    up = result.get("upstream", {})
    up_ns = up.get("nonstream", {})
    up_stream = up.get("stream", {})
    for entry in result.get("subjects", {}).values():
        d = entry.setdefault("derived", {})
        ns = entry.get("nonstream")
        if ns:
            d["rps_c16"] = ns["c16"]["rps"]
            d["cpu_ms_per_request"] = ns["c16"].get("server_cpu_ms_per_request")
            for c in ("c1", "c16"):
                for p in ("p50", "p99"):
                    d[f"added_{p}_{c}_ms"] = _sub(_ms(ns[c]["latency_us"][p]),
                                                 _ms(up_ns.get(c, {}).get("latency_us", {}).get(p)))
            d["nonstream_errors"] = ns["c16"]["non_2xx_or_errors"] + ns["c1"]["non_2xx_or_errors"]
        st = entry.get("stream")
        if st:
            for p in ("p50", "p99"):
                d[f"added_ttfb_{p}_ms"] = _sub(st["ttfb_ms"].get(p), up_stream.get("ttfb_ms", {}).get(p))
            d["stream_errors"] = st["errors"]
            d["peak_rss_mb"] = st.get("memory", {}).get("peak_rss_mb")
            d["peak_pss_mb"] = st.get("memory", {}).get("peak_pss_mb")
    subj = result.get("subjects", {})
    cg = subj.get("chatgate", {}).get("derived", {})
    bare = subj.get("bare", {}).get("derived", {})
    lite = subj.get("litellm", {}).get("derived", {})
    hit = subj.get("chatgate_cache_hit", {}).get("derived", {})
    miss = subj.get("chatgate_cache_miss", {}).get("derived", {})
    ratios = {
        "rps_c16_chatgate_over_litellm": _ratio(cg.get("rps_c16"), lite.get("rps_c16")),
        "rps_c16_chatgate_over_bare": _ratio(cg.get("rps_c16"), bare.get("rps_c16")),
        "added_p50_c1_chatgate_over_litellm": _ratio(cg.get("added_p50_c1_ms"), lite.get("added_p50_c1_ms")),
        "added_p50_c1_chatgate_over_bare": _ratio(cg.get("added_p50_c1_ms"), bare.get("added_p50_c1_ms")),
        "cpu_per_request_chatgate_over_litellm": _ratio(cg.get("cpu_ms_per_request"), lite.get("cpu_ms_per_request")),
        "cpu_per_request_chatgate_over_bare": _ratio(cg.get("cpu_ms_per_request"), bare.get("cpu_ms_per_request")),
        "added_ttfb_p99_chatgate_over_litellm": _ratio(cg.get("added_ttfb_p99_ms"), lite.get("added_ttfb_p99_ms")),
        "added_ttfb_p99_chatgate_over_bare": _ratio(cg.get("added_ttfb_p99_ms"), bare.get("added_ttfb_p99_ms")),
        "peak_rss_chatgate_over_litellm": _ratio(cg.get("peak_rss_mb"), lite.get("peak_rss_mb")),
        "peak_rss_chatgate_over_bare": _ratio(cg.get("peak_rss_mb"), bare.get("peak_rss_mb")),
        "rps_c16_cache_hit_over_bare": _ratio(hit.get("rps_c16"), bare.get("rps_c16")),
        "rps_c16_cache_hit_over_chatgate": _ratio(hit.get("rps_c16"), cg.get("rps_c16")),
        "rps_c16_cache_miss_over_chatgate": _ratio(miss.get("rps_c16"), cg.get("rps_c16")),
        "cpu_per_request_cache_hit_over_bare": _ratio(hit.get("cpu_ms_per_request"), bare.get("cpu_ms_per_request")),
        "cpu_per_request_cache_miss_over_chatgate": _ratio(miss.get("cpu_ms_per_request"),
                                                           cg.get("cpu_ms_per_request")),
    }
    result["ratios"] = {k: (round(v, 3) if v is not None else None) for k, v in ratios.items()}
    _derive_failover(subj.get("chatgate", {}).get("failover") or {})
    cg_stream = subj.get("chatgate", {}).get("stream") or {}
    targets = []

    def target(name, measured, ok, shown):
        verdict = "NOT MEASURED" if measured is None else ("PASS" if ok else "MISS")
        targets.append({"target": name, "measured": measured, "shown": shown, "verdict": verdict})

    r = ratios["rps_c16_chatgate_over_litellm"]
    target(f"req/s @16 ≥ {TARGET_RPS_VS_LITELLM:g}× LiteLLM", r, r is not None and r >= TARGET_RPS_VS_LITELLM,
           _x(r))
    r = ratios["rps_c16_chatgate_over_bare"]
    target(f"req/s @16 ≥ {TARGET_RPS_VS_BARE:g}× bare proxy", r, r is not None and r >= TARGET_RPS_VS_BARE, _x(r))
    r = ratios["cpu_per_request_chatgate_over_bare"]
    target(f"server CPU per request ≤ {TARGET_CPU_PER_REQUEST_VS_BARE:g}× bare proxy", r,
           r is not None and r <= TARGET_CPU_PER_REQUEST_VS_BARE, _x(r))
    v = cg.get("added_p50_c1_ms")
    target(f"added latency p50 @1 ≤ {TARGET_ADDED_P50_C1_MS:g} ms", v, v is not None and v <= TARGET_ADDED_P50_C1_MS,
           _fmt_ms(v))
    if cg_stream:
        ok_streams = cg_stream.get("ok")
        peak = cg_stream.get("peak_open_streams")
        errors = cg_stream.get("errors")
        target(f"{TARGET_STREAMS:,} concurrent streams, zero errors", errors,
               errors == 0 and ok_streams == TARGET_STREAMS and (peak or 0) >= TARGET_STREAMS,
               f"{ok_streams:,} ok, {errors:,} errors, {peak:,} open at peak")
    else:
        target(f"{TARGET_STREAMS:,} concurrent streams, zero errors", None, False, "—")
    bare_stream = subj.get("bare", {}).get("stream") or {}
    r = _ratio((cg_stream.get("cpu_s") or {}).get("server"), (bare_stream.get("cpu_s") or {}).get("server"))
    target(f"server CPU s for the streams ≤ {TARGET_STREAM_CPU_VS_BARE:g}× bare proxy", r,
           r is not None and r <= TARGET_STREAM_CPU_VS_BARE, _x(r))
    r = ratios["added_ttfb_p99_chatgate_over_bare"]
    target(f"added TTFB p99 ≤ {TARGET_ADDED_TTFB_P99_VS_BARE:g}× bare proxy", r,
           r is not None and r <= TARGET_ADDED_TTFB_P99_VS_BARE, _x(r))
    v = cg.get("peak_rss_mb")
    target(f"all server processes ≤ {TARGET_PEAK_MB:g} MB during the streams", v,
           v is not None and v <= TARGET_PEAK_MB, f"{v:,.0f} MB RSS" if v is not None else "—")
    if "chatgate_cache_hit" in subj or "chatgate_cache_miss" in subj:
        r = ratios["rps_c16_cache_hit_over_bare"]
        target(f"cache hit req/s @16 ≥ {TARGET_CACHE_HIT_VS_BARE:g}× bare proxy", r,
               r is not None and r >= TARGET_CACHE_HIT_VS_BARE, _x(r))
        r = ratios["rps_c16_cache_miss_over_chatgate"]
        target(f"cache miss req/s @16 ≥ {TARGET_CACHE_MISS_VS_CHATGATE:g}× chatgate without the cache", r,
               r is not None and r >= TARGET_CACHE_MISS_VS_CHATGATE, _x(r))
    result["targets"] = targets


def _derive_failover(failover: dict) -> None:
    """Each failover row against the primary-only one: added latency at 1 connection, req/s ratio at 16."""
    base = failover.get("primary")
    if not isinstance(base, dict) or "c1" not in base:
        return
    for run in failover.values():
        if not isinstance(run, dict) or "c1" not in run:
            continue
        run["derived"] = {
            "added_p50_c1_ms": _sub(_ms(run["c1"]["latency_us"]["p50"]), _ms(base["c1"]["latency_us"]["p50"])),
            "added_p99_c1_ms": _sub(_ms(run["c1"]["latency_us"]["p99"]), _ms(base["c1"]["latency_us"]["p99"])),
            "rps_c16_over_primary": _ratio(run["c16"]["rps"], base["c16"]["rps"]),
        }


# --------------------------------------------------------------------------- formatting


def _x(v) -> str:
    return "—" if v is None else f"{v:.2f}×"


def _fmt_ms(v) -> str:
    if v is None:
        return "—"
    return f"{v:.2f} ms" if abs(v) < 100 else f"{v:,.0f} ms"


def _int(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _mb(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _features(entry: dict) -> str:
    feats = entry.get("features") or {}
    on = [name for name in ("auth", "filter", "limits", "cache") if feats.get(name)]
    return ", ".join(on) if on else "none"


def table(result: dict) -> str:
    """The whole result as Markdown (readable as plain text too)."""
    m = result.get("machine", {})
    st = result.get("settings", {})
    up = result.get("upstream", {})
    subj = result.get("subjects", {})
    lines = [
        f"**Run:** {result.get('started_at', '?')} UTC, commit {m.get('commit', '?')}, "
        + f"{result.get('elapsed_s', 0):.0f} s in all.  ",
        f"**Machine:** {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB RAM, "
        + f"{m.get('os', '?')} (kernel {m.get('kernel', '?')}), Python {m.get('versions', {}).get('python', '?')}, "
        + f"nginx {m.get('versions', {}).get('nginx', '?')}, {m.get('versions', {}).get('wrk', 'wrk ?')}.",
        "",
        f"**Non-streamed** — wrk, 1 thread, {st.get('wrk_duration_s', 0):g} s per run after a "
        + f"{st.get('wrk_warmup_s', 0):g} s warm-up"
        + (f", median of {st['wrk_repeat']} runs" if st.get("wrk_repeat", 1) > 1 else ", one run per setting")
        + ". *Added* = subject minus the direct upstream at the same number of connections.",
        "",
        _row(["subject", "measured on", "features on", "req/s @16", "added p50 @1", "added p99 @1",
              "added p50 @16", "added p99 @16", "server CPU per request", "errors"]),
        _row(["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    ns = up.get("nonstream")
    if ns:
        lat = lambda c, p: _fmt_ms(_ms(ns[c]["latency_us"][p]))  # noqa: E731
        lines.append(_row(["upstream direct (nginx)", "`POST /v1/chat/completions`", "—", _int(ns["c16"]["rps"]),
                           f"({lat('c1', 'p50')})", f"({lat('c1', 'p99')})", f"({lat('c16', 'p50')})",
                           f"({lat('c16', 'p99')})", "—",
                           ns["c16"]["non_2xx_or_errors"] + ns["c1"]["non_2xx_or_errors"]]))
    for name in SUBJECTS:
        entry = subj.get(name)
        if not entry:
            continue
        d = entry.get("derived", {})
        if entry.get("nonstream"):
            lines.append(_row([entry["label"], f"`POST {entry.get('path')}`", _features(entry), _int(d.get("rps_c16")),
                               _fmt_ms(d.get("added_p50_c1_ms")), _fmt_ms(d.get("added_p99_c1_ms")),
                               _fmt_ms(d.get("added_p50_c16_ms")), _fmt_ms(d.get("added_p99_c16_ms")),
                               _fmt_ms(d.get("cpu_ms_per_request")), d.get("nonstream_errors", 0)]))
        else:
            lines.append(_row([entry["label"], "—", "—", f"not measured: {entry.get('reason', '?')}", "", "", "", "",
                               "", ""]))
    lines.append("")
    lines.append("Direct-upstream figures in parentheses are absolute latencies, not added ones. Server CPU "
                 + "per request = CPU time of the server's whole process tree during the 16-connection run ÷ requests. "
                 + "A negative added value means the difference is within run-to-run noise.")
    lines.append("")
    lines += _failover_table(subj.get("chatgate", {}).get("failover") or {})
    lines += [
        f"**Streamed** — {st.get('streams', 0):,} concurrent streams of {st.get('stream_chunks')} chunks at "
        + f"{st.get('stream_interval_ms', 0):g} ms from the asyncio mock, opened over {st.get('stream_ramp_s', 0):g} s "
        + f"by {st.get('stream_client_procs')} client processes. TTFB = request sent → first content chunk. "
        + "Memory = peak summed RSS of the server's whole process tree, sampled every 100 ms (PSS beside it).",
        "",
        _row(["subject", "ok / streams", "errors", "open at peak", "TTFB p50", "TTFB p99", "added TTFB p50",
              "added TTFB p99", "peak MB RSS (PSS)", "server CPU s"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    ups = up.get("stream")
    if ups:
        lines.append(_row(["upstream direct (mock)", f"{ups['ok']:,} / {ups['streams']:,}", _errors(ups),
                           f"{ups['peak_open_streams']:,}", _fmt_ms(ups["ttfb_ms"]["p50"]),
                           _fmt_ms(ups["ttfb_ms"]["p99"]), "—", "—", "—",
                           f"{ups.get('cpu_s', {}).get('upstream', 0):.1f}"]))
    for name in SUBJECTS:
        entry = subj.get(name)
        if not entry or entry.get("nonstream_only"):
            continue
        s = entry.get("stream")
        d = entry.get("derived", {})
        if s:
            mem = s.get("memory", {})
            lines.append(_row([entry["label"], f"{s['ok']:,} / {s['streams']:,}", _errors(s),
                               f"{s['peak_open_streams']:,}", _fmt_ms(s["ttfb_ms"]["p50"]),
                               _fmt_ms(s["ttfb_ms"]["p99"]), _fmt_ms(d.get("added_ttfb_p50_ms")),
                               _fmt_ms(d.get("added_ttfb_p99_ms")),
                               f"{_mb(mem.get('peak_rss_mb'))} ({_mb(mem.get('peak_pss_mb'))})",
                               f"{s.get('cpu_s', {}).get('server', 0):.1f}"]))
        else:
            lines.append(_row([entry["label"], f"not measured: {entry.get('reason', '?')}", "", "", "", "", "", "",
                               "", ""]))
    r = result.get("ratios", {})
    lines += [
        "",
        "**Ratios**",
        "",
        _row(["", "chatgate / LiteLLM", "chatgate / bare"]),
        _row(["---", "---:", "---:"]),
        _row(["req/s @16 (higher is better)", _x(r.get("rps_c16_chatgate_over_litellm")),
              _x(r.get("rps_c16_chatgate_over_bare"))]),
        _row(["added p50 @1 (lower is better)", _x(r.get("added_p50_c1_chatgate_over_litellm")),
              _x(r.get("added_p50_c1_chatgate_over_bare"))]),
        _row(["server CPU per request (lower is better)", _x(r.get("cpu_per_request_chatgate_over_litellm")),
              _x(r.get("cpu_per_request_chatgate_over_bare"))]),
        _row(["added TTFB p99 (lower is better)", _x(r.get("added_ttfb_p99_chatgate_over_litellm")),
              _x(r.get("added_ttfb_p99_chatgate_over_bare"))]),
        _row(["peak memory RSS (lower is better)", _x(r.get("peak_rss_chatgate_over_litellm")),
              _x(r.get("peak_rss_chatgate_over_bare"))]),
        "",
    ]
    if "chatgate_cache_hit" in subj or "chatgate_cache_miss" in subj:
        lines += [
            "**Response cache** (chatgate restarted with `CACHE_TTL=1h`: every request alike, so all hit after the "
            + "first; then every request different, so all miss and each reply is stored)",
            "",
            _row(["", "ratio"]),
            _row(["---", "---:"]),
            _row(["cache hit req/s @16 ÷ bare proxy req/s", _x(r.get("rps_c16_cache_hit_over_bare"))]),
            _row(["cache hit req/s @16 ÷ chatgate req/s (cache off)", _x(r.get("rps_c16_cache_hit_over_chatgate"))]),
            _row(["cache hit server CPU per request ÷ bare proxy's", _x(r.get("cpu_per_request_cache_hit_over_bare"))]),
            _row(["cache miss req/s @16 ÷ chatgate req/s (cache off)",
                  _x(r.get("rps_c16_cache_miss_over_chatgate"))]),
            _row(["cache miss server CPU per request ÷ chatgate's (cache off)",
                  _x(r.get("cpu_per_request_cache_miss_over_chatgate"))]),
            "",
        ]
    lines += [
        "**Targets for chatgate**",
        "",
        _row(["target", "measured", "verdict"]),
        _row(["---", "---:", "---"]),
    ]
    for t in result.get("targets", []):
        verdict = t["verdict"] if t["verdict"] != "MISS" else "**MISS**"
        lines.append(_row([t["target"], t["shown"], verdict]))
    lines.append("")
    lines += _notes(result)
    return "\n".join(lines)


def _failover_table(failover: dict) -> list[str]:
    """chatgate through a route of two targets whose first fails, against a route of the primary alone."""
    rows = [run for run in failover.values() if isinstance(run, dict) and "c1" in run]
    if not rows and not failover.get("failed"):
        return []
    lines = ["**Failover** — chatgate, non-streamed, one route (`UPSTREAMS_FILE`) whose first target fails on every "
             + "call without retrying and without its circuit opening (except in the last row), then the primary "
             + "(nginx) answers. *Added* = against the primary-only route.",
             "",
             _row(["route", "req/s @16", "p50 @1", "p99 @1", "added p50 @1", "added p99 @1", "req/s vs primary",
                   "errors"]),
             _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"])]
    for run in rows:
        d = run.get("derived", {})
        lines.append(_row([run["label"], _int(run["c16"]["rps"]), _fmt_ms(_ms(run["c1"]["latency_us"]["p50"])),
                           _fmt_ms(_ms(run["c1"]["latency_us"]["p99"])), _fmt_ms(d.get("added_p50_c1_ms")),
                           _fmt_ms(d.get("added_p99_c1_ms")), _x(d.get("rps_c16_over_primary")),
                           run["c16"]["non_2xx_or_errors"] + run["c1"]["non_2xx_or_errors"]]))
    if failover.get("failed"):
        lines.append(f"\nFailover rows incomplete: {failover['failed']}")
    return lines + [""]


def _errors(s: dict) -> str:
    if not s["errors"]:
        return "0"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s["error_kinds"].items()))
    return f"{s['errors']:,} ({kinds})"


def _notes(result: dict) -> list[str]:
    notes = []
    m = result.get("machine", {})
    other = m.get("other_work_pct")
    if other is not None and (other > 10 or (m.get("busy_before_pct") or 0) > 15):
        notes.append(f"- **The machine was not idle**: work outside the benchmark used {other:.0f}% of the CPU during "
                     + f"the run ({m.get('busy_before_pct')}% busy just before it), so these numbers are lower than "
                     + "an idle machine gives.")
    elif other is not None:
        notes.append(f"- Other work on the machine during the run: {other:.0f}% of the CPU.")
    ups = result.get("upstream", {}).get("stream") or {}
    if ups.get("cpu_s"):
        notes.append(f"- Harness cost for the direct streams: mock {ups['cpu_s'].get('upstream', 0):.1f} CPU s, "
                     + f"client {ups['cpu_s'].get('client', 0):.1f} CPU s (all on the same {m.get('cores', '?')} cores).")
    subj = result.get("subjects", {})
    cg = subj.get("chatgate")
    if cg:
        feats = cg.get("features") or {}
        if feats:
            notes.append("**chatgate features during the run** (from what the server did, not from settings):")
            for name in ("auth", "filter", "limits"):
                state = "on" if feats.get(name) else "**off**"
                evidence = feats.get(f"{name}_evidence", "")
                notes.append(f"- {name}: {state}" + (f" — {evidence}" if evidence else ""))
        if cg.get("server"):
            g = cg.get("gunicorn") or {}
            notes.append(f"- server: `{cg['server']}` ({g.get('workers', '?')} {g.get('worker_class', '?')} "
                         + f"workers, {g.get('worker_connections', '?')} connections each)")
        if cg.get("overridden_settings"):
            notes.append("- chatgate settings given through BENCH_CHATGATE_*: " + ", ".join(cg["overridden_settings"]))
        if cg.get("status") == "failed":
            notes.append(f"- chatgate not measured: {cg.get('reason')}")
    bare = subj.get("bare")
    if bare and bare.get("server"):
        notes.append(f"- bare proxy: `{bare['server']}` (chatgate's worker class and count)")
    lite = subj.get("litellm")
    if lite:
        if lite.get("server"):
            notes.append(f"- LiteLLM {lite.get('version', '?')}: `{lite['server']}`; master key set (it refuses "
                         + "to start without one), no database, its default logging")
        if lite.get("status") == "failed":
            notes.append(f"- LiteLLM not measured: {lite.get('reason')}")
    for name in SUBJECTS:
        entry = subj.get(name) or {}
        s = entry.get("stream") or {}
        if s.get("content_mismatch"):
            notes.append(f"- {entry.get('label', name)}: {s['content_mismatch']} streams completed with text that "
                         + "differs from what the upstream sent")
    return notes


# --------------------------------------------------------------------------- docs


def update_docs(path: Path, result: dict, table_md: str) -> None:
    """Replace the results section of docs/benchmarks.md (create the file if needed)."""
    section = f"{DOC_START}\n{table_md}\n{DOC_END}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if DOC_START in text and DOC_END in text:
        head, rest = text.split(DOC_START, 1)
        _, tail = rest.split(DOC_END, 1)
        text = head + section + tail
    else:
        text = (text.rstrip() + "\n\n" if text else "# Benchmarks\n\n") + "## Latest results\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
