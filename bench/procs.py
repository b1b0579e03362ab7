"""Child processes for the benchmark: start, wait for, measure and always stop.

Every server is started in its own session (its own process group), so it
can be stopped with all its workers by its own id, and nothing the bench
started outlives it, also on an error or Ctrl-C.
"""
from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on ``port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Managed:
    """The processes this run started, stopped in reverse order by ``stop_all``."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict | None = None, cwd: str | None = None
              ) -> subprocess.Popen:
        """Start ``argv`` in a new session with output to ``log``."""
        fh = open(log, "ab")
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
        fh.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        self.procs = [(n, p) for n, p in self.procs if p is not proc]
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Workers can outlive their master for a moment; the group id still names them.
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        """Stop everything still running, newest first."""
        for _, proc in reversed(list(self.procs)):
            self.stop(proc, grace=5.0)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for(check, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.2) -> bool:
    """Poll ``check()`` until it is true; False on timeout or when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if check():
                return True
        except Exception:  # a probe that fails is just "not yet"
            pass
        time.sleep(interval)
    return False


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses; the fields after the last ')' do not.
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root: int) -> list[int]:
    """``root`` and all its descendants that exist now."""
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size (shared pages split between sharers), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pids) -> float:
    """User plus system CPU time of ``pids`` so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def system_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (all cores, from /proc/stat)."""
    with open("/proc/stat", "rb") as fh:
        vals = [int(v) for v in fh.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    # guest time is already counted in user time
    return (sum(vals[:8]) - idle) / TICKS


def own_seconds() -> float:
    """CPU seconds used by this process and every child it has reaped."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def busy_percent(seconds: float = 1.0) -> float:
    """How busy all CPUs were over ``seconds`` (from /proc/stat), as a percentage."""
    def snap():
        with open("/proc/stat", "rb") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle

    total0, idle0 = snap()
    time.sleep(seconds)
    total1, idle1 = snap()
    span = total1 - total0
    return round(100.0 * (1 - (idle1 - idle0) / span), 1) if span > 0 else 0.0


class MemorySampler:
    """Samples the summed RSS and PSS of a process tree every ``interval`` seconds."""

    def __init__(self, root: int, interval: float = 0.1):
        self.root = root
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        """Take one sample now."""
        pids = tree(self.root)
        self.peak_rss = max(self.peak_rss, sum(rss_bytes(p) for p in pids))
        self.peak_pss = max(self.peak_pss, sum(pss_bytes(p) for p in pids))
        self.peak_procs = max(self.peak_procs, len(pids))
        self.samples += 1

    def __enter__(self) -> "MemorySampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def result(self) -> dict:
        """Peaks in MB (10^6 bytes) and how many samples were taken."""
        return {"peak_rss_mb": round(self.peak_rss / 1e6, 1), "peak_pss_mb": round(self.peak_pss / 1e6, 1),
                "processes": self.peak_procs, "samples": self.samples, "interval_s": self.interval}
