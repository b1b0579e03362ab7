"""/metrics under gunicorn with 2 workers: counts add up across workers, a killed worker's live series are dropped."""
from __future__ import annotations

import http.client
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families
from support import LiveServer, wait_for


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(url + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return sum(v for (n, lab), v in samples.items() if n == name and set(labels.items()) <= set(lab))


def workers(master: int) -> list[int]:
    """The gunicorn workers of ``master`` (its child processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == master:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(found)


def holder(workers_: list[int], server_port: int, client_port: int) -> int:
    """Which worker holds the server side of the connection from ``client_port``."""
    inode = None
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            parts = line.split()
            local, remote, state = parts[1], parts[2], parts[3]
            if state == "01" and int(local.split(":")[1], 16) == server_port \
                    and int(remote.split(":")[1], 16) == client_port:  # established, not an old TIME_WAIT
                inode = parts[9]
    assert inode is not None
    for pid in workers_:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


def open_stream(port: int) -> http.client.HTTPConnection:
    """A /chat stream whose first event has arrived; the connection stays open."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/chat", body=json.dumps({"prompt": "echo: " + "word " * 400, "stream": True}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.readline()  # the first chunk is on its way
    conn._stream = resp  # type: ignore[attr-defined]  # keep it referenced
    return conn


def test_counts_add_up_across_workers_and_a_killed_workers_series_are_marked_dead():
    # Long, slow offline streams (an echo of 400 words, 0.2 s a word): still open when a worker is killed.
    with LiveServer(workers=2, OFFLINE_STREAM_DELAY="0.2") as server:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: requests.post(server.url + "/chat", json={"prompt": "hi"},
                                                             timeout=30).status_code, range(24)))
        assert statuses == [200] * 24
        pids = workers(server.proc.pid)
        assert len(pids) == 2
        # Whichever worker answers the scrape, it reports every worker's counts.
        for _ in range(4):
            samples = scrape(server.url)
            assert value(samples, "chatgate_http_requests_total", route="/chat", status="200") == 24
            assert value(samples, "gen_ai_client_operation_duration_seconds_count", error_type="") == 24

        with ThreadPoolExecutor(max_workers=6) as pool:
            streams = list(pool.map(lambda _: open_stream(server.port), range(6)))
        held = [holder(pids, server.port, conn.sock.getsockname()[1]) for conn in streams]
        assert wait_for(lambda: value(scrape(server.url), "chatgate_open_streams") == 6)
        victim = held[0]
        survivors = sum(1 for pid in held if pid != victim)
        os.kill(victim, signal.SIGKILL)
        # gunicorn's child_exit marks it dead: its open streams stop counting; its counters still count.
        assert wait_for(lambda: value(scrape(server.url), "chatgate_open_streams") == survivors, 20)
        samples = scrape(server.url)
        assert value(samples, "chatgate_http_requests_total", route="/chat", status="200") == 24
        assert len(workers(server.proc.pid)) == 2  # replaced
        for conn in streams:
            conn.close()
