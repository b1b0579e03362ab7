"""The thin client for an OpenAI-compatible chat-completions API.

One pooled ``requests.Session`` per process, ``(connect, read)`` timeouts on
every call, retries with backoff only where a retry can help, and upstream
failures mapped onto our error hierarchy. The base URL, key and headers come
from configuration only, never from a request.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from time import perf_counter

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict

from ..errors import (
    APIError,
    InvalidRequest,
    RateLimited,
    ServiceUnavailable,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    translate,
)
from ..ops.metrics import NULL
from ..ops.record import current
from . import retry
from .stream import MAX_BODY_BYTES, MAX_EMBEDDINGS_BYTES, ChatStream, read_bounded

log = logging.getLogger(__name__)

# The longest stream, in seconds, when the client is built without MAX_STREAM_DURATION.
DEFAULT_MAX_STREAM_SECONDS = 600.0


def build_session(pool_size: int, ca_bundle: str | None = None) -> requests.Session:
    """A Session whose connection pool matches the server's concurrency."""
    session = requests.Session()
    # Our own retry loop decides; urllib3's would retry blindly and double-count.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0, pool_block=False)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = ca_bundle or True  # upstream TLS is always verified
    session.trust_env = False  # a stray HTTP(S)_PROXY or .netrc must not redirect or re-key our calls
    return session


class UpstreamClient:
    """Calls the upstream chat-completions API with retries and error mapping."""

    def __init__(self, session: requests.Session, base_url: str, api_key: str | None,
                 connect_timeout: float, read_timeout: float, max_retries: int, *, name: str = "default",
                 metrics=NULL, max_stream_seconds: float = DEFAULT_MAX_STREAM_SECONDS):
        self._session = session
        self.name = name  # bounded: it labels metrics and log lines
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = "Bearer " + api_key
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.max_stream_seconds = max_stream_seconds
        # The session's own headers (User-Agent, Accept-Encoding, ...) under ours, merged once, not per call.
        session_headers = {name: value if isinstance(value, str) else value.decode("latin-1")
                           for name, value in session.headers.items()}
        self._sent_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(session_headers)
        self._sent_headers.update(self._headers)

    def __repr__(self) -> str:
        return f"<UpstreamClient {self.base_url} retries={self.max_retries}>"

    def chat(self, payload: dict) -> dict:
        """One non-streamed completion, validated enough to use."""
        return check_completion(self._json("/chat/completions", payload))

    def chat_stream(self, payload: dict) -> ChatStream:
        """Open a streamed completion; failures before the first byte raise here."""
        resp = self._send("/chat/completions", payload)
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            resp.close()
            raise UpstreamBadResponse("the upstream model service did not answer with a stream")
        return ChatStream(resp, self.timeout[1], self.max_stream_seconds, record=current())

    def embeddings(self, payload: dict) -> dict:
        """One embeddings call, its body checked enough to relay."""
        body = self._json("/embeddings", payload, MAX_EMBEDDINGS_BYTES)
        return check_embeddings(body, len(payload["input"]) if isinstance(payload["input"], list) else 1)

    def moderate(self, text: str) -> bool:
        """True when the upstream moderation endpoint flags ``text``."""
        body = self._json("/moderations", {"input": text})
        try:
            return bool(body["results"][0]["flagged"])
        except (KeyError, IndexError, TypeError):
            raise UpstreamBadResponse() from None

    def _json(self, path: str, payload: dict, limit: int = MAX_BODY_BYTES):
        """The JSON body of a non-streamed call, read to at most ``limit`` bytes."""
        resp = self._send(path, payload)
        record, started = current(), perf_counter()
        try:
            raw = read_bounded(resp, limit)
        except (requests.RequestException, OSError) as err:
            raise _transport_error(err) from None
        finally:
            resp.close()
            if record is not None:
                record.upstream_s += perf_counter() - started  # reading the reply is upstream time too
        try:
            return json.loads(raw)
        except ValueError:
            raise UpstreamBadResponse() from None

    def _send(self, path: str, payload: dict) -> requests.Response:
        # Every second spent here (connecting, waiting, backing off) is upstream time, not chatgate's.
        record = current()
        started = perf_counter()
        try:
            return self._attempts(path, payload)
        finally:
            if record is not None:
                record.upstream_s += perf_counter() - started

    def _post(self, url: str, body: bytes) -> requests.Response:
        """What ``session.post(url, json=payload, stream=True, allow_redirects=False)`` sends, prepared directly.

        Session.request merges the session's settings into every call through
        typing-Protocol isinstance checks that cost about ten times the rest of
        the call; here the session's headers are merged once, at start-up.
        Session cookies are not sent: the upstream is an API, not a browser.
        Bodies are read by us, in bounded pieces; a redirect would send the
        prompt (and our key's reputation) wherever the upstream points, so a
        3xx is an answer, never followed.
        """
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url, prepared.body = "POST", url, body
        prepared.headers = self._sent_headers.copy()
        prepared.headers["Content-Length"] = str(len(body))
        prepared.hooks = {"response": []}
        prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]  # what requests' own path sets
        return self._session.send(prepared, stream=True, timeout=self.timeout, verify=self._session.verify,
                                  cert=self._session.cert, proxies={}, allow_redirects=False)

    def _attempts(self, path: str, payload: dict) -> requests.Response:
        url = self.base_url + path
        try:
            # As requests encodes json=: NaN and infinities are refused, not sent.
            body = json.dumps(payload, allow_nan=False).encode("utf-8")
        except ValueError as err:
            raise _transport_error(requests.exceptions.InvalidJSONError(str(err))) from None
        attempt = 0
        count = self.metrics.upstream_attempt
        while True:
            try:
                resp = self._post(url, body)
            except requests.ConnectionError as err:
                count("timeout" if isinstance(translate(err), UpstreamTimeout) else "unreachable")
                # ConnectTimeout is a ConnectionError too: nothing reached the model, so retry.
                if attempt < self.max_retries:
                    log.debug("retrying upstream call: %s", type(err).__name__)
                    retry.sleep(retry.retry_delay(attempt))
                    attempt += 1
                    continue
                raise _transport_error(err) from None
            except requests.RequestException as err:
                count("timeout" if isinstance(translate(err), UpstreamTimeout) else "unreachable")
                raise _transport_error(err) from None
            count(_outcome(resp.status_code))
            if resp.status_code < 300:
                return resp
            if attempt < self.max_retries and retry.should_retry(resp.status_code, resp.headers):
                delay = retry.retry_delay(attempt, resp.headers)
                log.debug("retrying upstream call: status %s, waiting %.2f s", resp.status_code, delay)
                resp.close()
                retry.sleep(delay)
                attempt += 1
                continue
            resp.close()
            raise status_error(resp.status_code, resp.headers)


def _outcome(status: int) -> str:
    """The chatgate_upstream_requests_total outcome of an HTTP answer."""
    if status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"


def _transport_error(err: Exception) -> APIError:
    ours = translate(err)
    if not isinstance(ours, APIError):  # pragma: no cover - every RequestException has an entry
        ours = UpstreamError("the upstream model service could not be reached", code="upstream_unreachable")
    log.warning("upstream %s (%s)", "timed out" if isinstance(ours, UpstreamTimeout) else "unreachable",
                type(err).__name__)
    return ours


_SAFE_ID = re.compile(r"[^A-Za-z0-9._:-]")


def upstream_request_id(headers: Mapping[str, str]) -> str:
    """The upstream's x-request-id, cut to a safe, short token for our logs."""
    return _SAFE_ID.sub("", headers.get("x-request-id") or "")[:64] or "-"


def status_error(status: int, headers) -> APIError:
    """Our error for an upstream status; the upstream's body is never relayed (nor logged)."""
    log.warning("upstream answered %s (upstream request id %s)", status, upstream_request_id(headers))
    if status in (401, 403):
        return UpstreamAuthError()
    if status == 429:
        wait = retry.retry_after(headers)
        seconds = max(1, round(wait)) if wait is not None else 1
        return RateLimited("the upstream model service is rate limiting; retry later",
                           code="upstream_rate_limited", headers={"Retry-After": str(seconds)})
    if status in (400, 422):
        # Our own validation passed, so this is about the model's own limits (context length, a
        # parameter the model does not take): the client's to fix, but the text stays upstream.
        return InvalidRequest(f"the upstream model service rejected the request (status {status})",
                              code="upstream_rejected")
    if status in (408, 504):
        return UpstreamTimeout()
    if 300 <= status < 400:
        return UpstreamError(f"the upstream model service answered with a redirect (status {status}); "
                             + "redirects are not followed", code="upstream_redirect")
    return UpstreamError(f"the upstream model service failed (status {status})")


def check_completion(body) -> dict:
    """Refuse a completion body we could not turn into replies."""
    try:
        choices = body["choices"]
        if not isinstance(choices, list) or not choices:
            raise TypeError
        for choice in choices:
            message = choice["message"]
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError
            if content is None and not message.get("tool_calls"):
                raise TypeError
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamBadResponse() from None
    return body


def check_embeddings(body, count: int) -> dict:
    """Refuse an embeddings body that does not hold one vector (floats or base64) per input."""
    try:
        data = body["data"]
        if not isinstance(data, list) or len(data) != count:
            raise TypeError
        for item in data:
            vector = item["embedding"]
            if not isinstance(item.get("index"), int) or not (
                    isinstance(vector, str) or (isinstance(vector, list)
                                                and all(isinstance(x, (int, float)) for x in vector))):
                raise TypeError
    except (KeyError, TypeError):
        raise UpstreamBadResponse() from None
    return body


class NoUpstream:
    """Stands in for the client when no upstream is configured: every call is a 503."""

    def _refuse(self, *_args, **_kwargs):
        raise ServiceUnavailable("no upstream is configured", code="upstream_not_configured")

    chat = chat_stream = embeddings = moderate = _refuse
