"""gunicorn settings for chatgate (``make run`` uses this file).

Worker model: gevent. A chat reply is mostly waiting on the upstream, and a
stream holds its connection for tens of seconds, so the server must keep
~1,000 connections open on 2 cores. Green threads cost a few KB each; an OS
thread per stream (gthread) costs far more memory and context switches, and
sync workers hold one connection each. Measurements: docs/benchmarks.md.
"""
import os

WORKER_CLASS = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
if WORKER_CLASS == "gevent":
    # Patch before anything imports socket/ssl, so requests and urllib3 get cooperative sockets.
    from gevent import monkey

    monkey.patch_all()

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = WORKER_CLASS
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))  # used only by the gthread class
# gevent workers heartbeat from their own greenlet, so a long stream never trips this.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Bounded request lines and headers: hostile clients get a 4xx from gunicorn, not our memory.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# gunicorn's own lines in chatgate's LOG_FORMAT, scrubbed of secrets like every other line.
logger_class = "app.ops.gunicorn_logs.GunicornLogger"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn believes no forwarded header itself (not even X-Forwarded-Proto from loopback): chatgate decides,
# from TRUSTED_PROXIES and TRUSTED_PROXY_HOPS, so the dev server and gunicorn agree (app/access/proxy.py).
forwarded_allow_ips = ""
secure_scheme_headers: dict = {}
# Several instances may share a host (and the test suite starts many): no shared control socket.
control_socket_disable = True

# The upstream pool matches how many requests one worker may have in flight.
os.environ.setdefault("UPSTREAM_POOL_SIZE", str(worker_connections if worker_class == "gevent" else threads))

certfile = os.environ.get("TLS_CERT_FILE") or None
keyfile = os.environ.get("TLS_KEY_FILE") or None


def _json_http_error(sock, status_int, reason, mesg):
    """gunicorn's own rejections (bad request line, hostile or huge headers) in our error shape."""
    import json
    import uuid

    from gunicorn.util import write_nonblock

    codes = {400: "bad_request", 414: "request_line_too_long", 431: "headers_too_large", 403: "forbidden",
             417: "expectation_failed", 501: "not_implemented"}
    # The detail gunicorn prepared may quote the hostile input, so only the reason goes out.
    body = json.dumps({"error": {"message": reason.lower(), "type": "invalid_request_error" if status_int < 500
                                 else "api_error", "param": None, "code": codes.get(status_int, "internal_error")}})
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            + f"X-Request-ID: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n")
    write_nonblock(sock, (head + body).encode("latin-1"))


def post_worker_init(worker):
    """Make gunicorn's own error pages JSON, like everything else we send; freeze the start-up heap."""
    import gc

    import gunicorn.util

    gunicorn.util.write_error = _json_http_error
    # The app is built: its long-lived objects (settings, compiled filters, pools, metrics) are moved out of
    # the collector's reach, so each request's garbage collection scans only what requests allocate.
    gc.freeze()


def ssl_context(conf, default_ssl_context_factory):
    """gunicorn's TLS context with our floor: TLS 1.2 minimum, no compression."""
    from app.ops.tls import harden

    return harden(default_ssl_context_factory())


def on_starting(server):
    """In the master: the metrics directory, one settings check (every problem at once), the limits table, the banner."""
    import sys

    from app.ops import multiproc

    # Before any worker exists and before prometheus_client is imported anywhere: it reads this at import.
    metrics_dir = multiproc.prepare()

    from app.ops.logs import announce
    from config import ConfigError, load_config

    try:
        settings = load_config()
        settings.check_serving()
    except ConfigError as err:
        # One line per problem, all of them at once: an operator fixes everything in one restart.
        for problem in err.problems:
            print(f"chatgate: configuration error: {problem}", file=sys.stderr, flush=True)
        sys.exit(2)
    share_limits(settings)
    scheme = "https" if settings.tls else "http"
    banner = settings.banner(f"{scheme}://{bind}")
    banner.append(f"  server: gunicorn, {workers} {worker_class} workers; metrics summed in {metrics_dir}")
    announce(banner, settings.LOG_FORMAT)


def child_exit(server, worker):
    """A worker died (or was replaced): its live gauges stop counting; its counters stay in the sums."""
    from app.ops import multiproc

    multiproc.worker_exited(worker.pid)


def on_exit(server):
    """Remove this instance's metrics directory when gunicorn made it."""
    from app.ops import multiproc

    multiproc.cleanup()


def share_limits(settings):
    """Without Redis, one shared-memory table made before the workers fork, so limits are exact on this host."""
    from app.access.shared_table import create_table, make_table

    if settings.REDIS_URL:
        return
    if settings.LIMITS_TABLE and not settings.LIMITS_TABLE.startswith("fd:"):
        create_table(settings.LIMITS_TABLE, settings.LIMITS_SLOTS)  # a path: instances on this host may share it
        return
    # Workers inherit the descriptor and the variable; the file has no name, so it goes when they all do.
    settings.LIMITS_TABLE = os.environ["LIMITS_TABLE"] = make_table(settings.LIMITS_SLOTS)
