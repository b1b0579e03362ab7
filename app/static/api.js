// Talking to chatgate from the chat page: JSON calls, server-sent events over fetch, and errors in
// words a person can act on.

const UNAVAILABLE = new Set(['upstream_error', 'service_unavailable', 'timeout']);

/** Yield the data of each server-sent event in `stream` (EventSource cannot POST, so fetch it is). */
export async function* sseData(stream) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      // A CR at the end of a chunk may be the first half of a CRLF: keep it for the next one.
      const held = !done && buffer.endsWith('\r') ? '\r' : '';
      const lines = (held ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
      buffer = done ? '' : lines.pop() + held;
      for (const line of lines) {
        if (line === '') {
          if (data.length) yield data.join('\n');
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
      }
      if (done) {
        if (data.length) yield data.join('\n');
        return;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function retrySeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

/** What went wrong, as {text, requestId, needsKey?, lostConversation?}. */
export function describe(status, error, headers) {
  const err = error || {};
  const said = err.message ? ` (${err.message})` : '';
  const requestId = headers ? headers.get('X-Request-ID') : null;
  const out = (text, extra = {}) => ({ text, requestId, ...extra });
  if (status === 401 || err.type === 'authentication_error') {
    return out('Paste a valid API key: this server needs one (open "API key" above).', { needsKey: true });
  }
  if (status === 429 || err.type === 'rate_limit_error') {
    const wait = retrySeconds(headers ? headers.get('Retry-After') : null);
    return out(wait ? `Rate limited — try again in ${wait} s.` : 'Rate limited — try again shortly.');
  }
  if ([502, 503, 504].includes(status) || UNAVAILABLE.has(err.type)) {
    return out(`The model service is unavailable${said}. Try again in a moment.`);
  }
  if (err.code === 'conversation_not_found') {
    return out('That conversation is no longer available, so a new one has started. Send your message again.',
      { lostConversation: true });
  }
  if (status === 413 || err.code === 'too_long') return out(`That message is too long${said}.`);
  if (err.code === 'prompt_blocked' || err.code === 'prompt_flagged') {
    return out('The gateway refused this prompt under its content policy.');
  }
  if (status >= 400 && status < 500) return out(`The request was refused${said}.`);
  return out(`Something went wrong (HTTP ${status})${said}.`);
}

/** The `error` object of a failed response, or null when the body is not one. */
export async function errorBody(response) {
  try {
    return (await response.json()).error;
  } catch (_) {
    return null;
  }
}

/**
 * A JSON caller: `call(path, init)` resolves to {ok, status, data}, where data is the body, or the
 * error object on failure (status 0: the server could not be reached). `headers()` gives the
 * headers of each call (the key); `onBusy(true|false)` says whether any call is still unanswered.
 */
export function jsonCaller({ headers, onBusy }) {
  let pending = 0;
  return async function call(path, init = {}) {
    pending += 1;
    onBusy(true);
    try {
      const response = await fetch(path, { ...init, headers: { Accept: 'application/json', ...headers() } });
      const data = response.ok ? await response.json() : await errorBody(response);
      return { ok: response.ok, status: response.status, data };
    } catch (_) {
      return { ok: false, status: 0, data: null };
    } finally {
      pending -= 1;
      if (!pending) onBusy(false);
    }
  };
}

/** Why `what` could not be shown, from a failed call's result. */
export function unavailable(what, result) {
  if (result.status === 401) return `Paste your API key (above) to see ${what}.`;
  if (result.status === 0) return `Cannot reach chatgate to load ${what}.`;
  return `Could not load ${what} (HTTP ${result.status}).`;
}
