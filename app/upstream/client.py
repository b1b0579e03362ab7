"""The thin client for an OpenAI-compatible chat-completions API.

One pooled ``requests.Session`` per process, ``(connect, read)`` timeouts on
every call, retries with backoff only where a retry can help, and upstream
failures mapped onto our error hierarchy. The base URL, key and headers come
from configuration only, never from a request.
"""
from __future__ import annotations

import json
import logging
import time
from time import perf_counter
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict

from ..errors import ServiceUnavailable, UpstreamBadResponse, UpstreamTimeout, translate
from ..ops.metrics import NULL
from ..ops.record import current
from . import retry
from .answers import check_completion, check_embeddings, outcome, status_error, transport_error
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
    """Calls one upstream's chat-completions API with retries and error mapping.

    Every call may carry a ``deadline`` (a ``time.monotonic()`` instant): no
    attempt's timeouts reach past it, and no retry starts that would.
    """

    def __init__(self, session: requests.Session, base_url: str, api_key: str | None,
                 connect_timeout: float, read_timeout: float, max_retries: int, *, name: str = "default",
                 metrics=NULL, max_stream_seconds: float = DEFAULT_MAX_STREAM_SECONDS, auth: str = "bearer",
                 query: tuple[tuple[str, str], ...] = ()):
        self._session = session
        self.name = name  # bounded: it labels metrics and log lines
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        # Fixed query parameters (Azure's api-version), the same on every call.
        self._query = "?" + urlencode(query) if query else ""
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            if auth == "api-key":
                self._headers["api-key"] = api_key
            else:
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
        return f"<UpstreamClient {self.name} {self.base_url} retries={self.max_retries}>"

    def chat(self, payload: dict, deadline: float | None = None) -> dict:
        """One non-streamed completion, validated enough to use."""
        return check_completion(self._json("/chat/completions", payload, deadline))

    def chat_stream(self, payload: dict, deadline: float | None = None) -> ChatStream:
        """Open a streamed completion; failures before the first byte raise here."""
        resp = self._send("/chat/completions", payload, deadline)
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            resp.close()
            raise UpstreamBadResponse("the upstream model service did not answer with a stream")
        return ChatStream(resp, self.timeout[1], self.max_stream_seconds, record=current())

    def embeddings(self, payload: dict, deadline: float | None = None) -> dict:
        """One embeddings call, its body checked enough to relay."""
        body = self._json("/embeddings", payload, deadline, MAX_EMBEDDINGS_BYTES)
        return check_embeddings(body, len(payload["input"]) if isinstance(payload["input"], list) else 1)

    def moderate(self, text: str) -> bool:
        """True when the upstream moderation endpoint flags ``text``."""
        body = self._json("/moderations", {"input": text})
        try:
            return bool(body["results"][0]["flagged"])
        except (KeyError, IndexError, TypeError):
            raise UpstreamBadResponse() from None

    def models(self, timeout: float) -> int:
        """How many models ``GET /models`` lists (one attempt, for the operator's check); raises APIError."""
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url = "GET", self.base_url + "/models" + self._query
        prepared.headers = self._sent_headers.copy()
        prepared.headers.pop("Content-Type", None)
        prepared.hooks = {"response": []}
        prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]  # what requests' own path sets
        try:
            resp = self._session.send(prepared, stream=True, timeout=(min(self.timeout[0], timeout), timeout),
                                      verify=self._session.verify, proxies={}, allow_redirects=False)
            try:
                if resp.status_code >= 300:
                    raise status_error(resp.status_code, resp.headers, self.name)
                body = json.loads(read_bounded(resp, MAX_BODY_BYTES))
            finally:
                resp.close()
        except (requests.RequestException, OSError) as err:
            raise transport_error(err, self.name) from None
        except ValueError:
            raise UpstreamBadResponse() from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise UpstreamBadResponse("the upstream's model list is not a list")
        return len(data)

    def _json(self, path: str, payload: dict, deadline: float | None = None, limit: int = MAX_BODY_BYTES):
        """The JSON body of a non-streamed call, read to at most ``limit`` bytes."""
        resp = self._send(path, payload, deadline)
        record, started = current(), perf_counter()
        try:
            raw = read_bounded(resp, limit)
        except (requests.RequestException, OSError) as err:
            raise transport_error(err, self.name) from None
        finally:
            resp.close()
            if record is not None:
                record.upstream_s += perf_counter() - started  # reading the reply is upstream time too
        try:
            return json.loads(raw)
        except ValueError:
            raise UpstreamBadResponse() from None

    def _send(self, path: str, payload: dict, deadline: float | None) -> requests.Response:
        # Every second spent here (connecting, waiting, backing off) is upstream time, not chatgate's.
        record = current()
        started = perf_counter()
        try:
            return self._attempts(path, payload, deadline)
        finally:
            if record is not None:
                record.upstream_s += perf_counter() - started

    def _post(self, url: str, body: bytes, timeout: tuple[float, float]) -> requests.Response:
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
        return self._session.send(prepared, stream=True, timeout=timeout, verify=self._session.verify,
                                  cert=self._session.cert, proxies={}, allow_redirects=False)

    def _timeouts(self, deadline: float | None) -> tuple[float, float]:
        """This attempt's (connect, read) timeouts, cut to what is left before the deadline."""
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            log.warning("upstream call not made: the call's deadline passed, upstream %s", self.name)
            raise UpstreamTimeout("the upstream model service did not answer within the call's deadline")
        return min(self.timeout[0], left), min(self.timeout[1], left)

    def _time_for(self, delay: float, deadline: float | None) -> bool:
        """Whether a retry after ``delay`` seconds still starts before the deadline."""
        return deadline is None or time.monotonic() + delay < deadline

    def _attempts(self, path: str, payload: dict, deadline: float | None) -> requests.Response:
        url = self.base_url + path + self._query
        try:
            # As requests encodes json=: NaN and infinities are refused, not sent.
            body = json.dumps(payload, allow_nan=False).encode("utf-8")
        except ValueError as err:
            raise transport_error(requests.exceptions.InvalidJSONError(str(err)), self.name) from None
        attempt = 0
        count, name = self.metrics.upstream_attempt, self.name
        while True:
            try:
                resp = self._post(url, body, self._timeouts(deadline))
            except requests.ConnectionError as err:
                count("timeout" if isinstance(translate(err), UpstreamTimeout) else "unreachable", name)
                # ConnectTimeout is a ConnectionError too: nothing reached the model, so retry.
                delay = retry.retry_delay(attempt)
                if attempt < self.max_retries and self._time_for(delay, deadline):
                    log.debug("retrying upstream call: %s, upstream %s", type(err).__name__, name)
                    retry.sleep(delay)
                    attempt += 1
                    continue
                raise transport_error(err, name) from None
            except requests.RequestException as err:
                count("timeout" if isinstance(translate(err), UpstreamTimeout) else "unreachable", name)
                raise transport_error(err, name) from None
            count(outcome(resp.status_code), name)
            if resp.status_code < 300:
                return resp
            if attempt < self.max_retries and retry.should_retry(resp.status_code, resp.headers):
                delay = retry.retry_delay(attempt, resp.headers)
                if self._time_for(delay, deadline):
                    log.debug("retrying upstream call: status %s, waiting %.2f s, upstream %s", resp.status_code, delay,
                              name)
                    resp.close()
                    retry.sleep(delay)
                    attempt += 1
                    continue
            resp.close()
            raise status_error(resp.status_code, resp.headers, name)


class NoUpstream:
    """Stands in for the client when no upstream is configured: every call is a 503."""

    def _refuse(self, *_args, **_kwargs):
        raise ServiceUnavailable("no upstream is configured", code="upstream_not_configured")

    chat = chat_stream = embeddings = moderate = _refuse
