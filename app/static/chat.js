// The chat page: sends prompts to POST /chat and streams the reply in.
// Plain browser JavaScript, no build step; loaded under a CSP that forbids inline code.
'use strict';

(() => {
  const KEY_STORE = 'chatgate.apiKey';
  // Typed placeholders the reply filter puts where personal data was.
  const PLACEHOLDER = /\[(?:EMAIL|PHONE|CARD|SSN|IBAN|IP|SECRET)\]/g;
  const UNAVAILABLE = new Set(['upstream_error', 'service_unavailable', 'timeout']);

  const $ = (id) => document.getElementById(id);
  const ui = {
    log: $('log'), emptyHint: $('empty-hint'), form: $('composer'), prompt: $('prompt'),
    send: $('send'), stop: $('stop'), status: $('status'), newConversation: $('new-conversation'),
    conversationState: $('conversation-state'), keyPanel: $('key-panel'), key: $('api-key'),
    keyState: $('key-state'), forgetKey: $('forget-key'),
  };

  let conversationId = null;
  let controller = null;

  // --- the API key --------------------------------------------------------------------------

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; }
  }

  function storeKey(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE);
    } catch (_) { /* storage disabled: the key still works for this page view */ }
    ui.keyState.textContent = value ? 'set for this tab' : 'not set';
  }

  function requestHeaders() {
    const headers = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
    const key = ui.key.value.trim();
    if (key) headers.Authorization = `Bearer ${key}`;
    return headers;
  }

  // --- the message log ----------------------------------------------------------------------

  function addMessage(role, text) {
    ui.emptyHint.hidden = true;
    const item = document.createElement('article');
    item.className = `msg msg-${role}`;
    const who = document.createElement('p');
    who.className = 'who';
    who.textContent = role === 'user' ? 'You' : role === 'assistant' ? 'chatgate' : 'Problem';
    const body = document.createElement('div');
    body.className = 'text';
    body.textContent = text;
    item.append(who, body);
    ui.log.append(item);
    item.scrollIntoView({ block: 'end' });
    return item;
  }

  function textOf(item) {
    return item.querySelector('.text');
  }

  function appendDelta(item, delta) {
    textOf(item).append(document.createTextNode(delta));
    if (isNearBottom()) item.scrollIntoView({ block: 'end' });
  }

  function isNearBottom() {
    const el = document.scrollingElement;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 120;
  }

  // Re-render the finished reply so placeholders stand out; the text itself is unchanged.
  function highlightPlaceholders(item) {
    const body = textOf(item);
    const text = body.textContent;
    body.textContent = '';
    let last = 0;
    for (const match of text.matchAll(PLACEHOLDER)) {
      body.append(text.slice(last, match.index));
      const mark = document.createElement('mark');
      mark.className = 'placeholder';
      mark.title = `redacted ${match[0].slice(1, -1).toLowerCase()}`;
      mark.textContent = match[0];
      body.append(mark);
      last = match.index + match[0].length;
    }
    body.append(text.slice(last));
  }

  function badge(text, kind) {
    const el = document.createElement('span');
    el.className = `badge badge-${kind}`;
    el.textContent = text;
    return el;
  }

  function finish(item, end) {
    const meta = document.createElement('p');
    meta.className = 'meta';
    const report = end.filter || { action: 'none', findings: [] };
    if (report.action === 'redacted') {
      for (const f of report.findings || []) meta.append(badge(`redacted: ${f.type} ×${f.count}`, 'redacted'));
      highlightPlaceholders(item);
    } else if (report.action === 'blocked') {
      meta.append(badge('blocked', 'blocked'));
      if (!textOf(item).textContent) textOf(item).textContent = 'The reply was withheld by the content filter.';
    }
    if (end.finish_reason === 'length') meta.append(badge('cut at max_tokens', 'note'));
    const details = [end.model, end.usage && `${end.usage.total_tokens} tokens`].filter(Boolean).join(' · ');
    if (details) {
      const span = document.createElement('span');
      span.className = 'details';
      span.textContent = details;
      meta.append(span);
    }
    item.append(meta);
    if (isNearBottom()) item.scrollIntoView({ block: 'end' });
    item.dataset.state = 'done';
    item.dataset.filter = report.action;
  }

  function fail(item, problem) {
    item.dataset.state = 'error';
    const note = document.createElement('p');
    note.className = 'problem';
    note.setAttribute('role', 'alert');
    note.textContent = problem.text;
    if (problem.requestId) {
      const rid = document.createElement('span');
      rid.className = 'details';
      rid.textContent = ` Request ID ${problem.requestId}.`;
      note.append(rid);
    }
    item.append(note);
    if (problem.needsKey) {
      ui.keyPanel.open = true;
      ui.key.focus();
    }
  }

  // --- errors, in words a person can act on ---------------------------------------------------

  function retrySeconds(value) {
    if (!value) return null;
    if (/^\d+$/.test(value.trim())) return Number(value.trim());
    const when = Date.parse(value);
    return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
  }

  function describe(status, error, headers) {
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
      resetConversation();
      return out('That conversation is no longer available, so a new one has started. Send your message again.');
    }
    if (status === 413 || err.code === 'too_long') return out(`That message is too long${said}.`);
    if (err.code === 'prompt_blocked' || err.code === 'prompt_flagged') {
      return out('The gateway refused this prompt under its content policy.');
    }
    if (status >= 400 && status < 500) return out(`The request was refused${said}.`);
    return out(`Something went wrong (HTTP ${status})${said}.`);
  }

  async function errorBody(response) {
    try { return (await response.json()).error; } catch (_) { return null; }
  }

  // --- server-sent events over fetch (EventSource cannot POST) -------------------------------

  async function* sseData(stream) {
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

  async function readStream(response, item) {
    for await (const data of sseData(response.body)) {
      if (data === '[DONE]') return true;
      const event = JSON.parse(data);
      if (event.error) {
        fail(item, describe(0, event.error, response.headers));
        return true;
      }
      if (typeof event.delta === 'string') {
        appendDelta(item, event.delta);
      } else if ('finish_reason' in event) {
        rememberConversation(event.conversation_id);
        finish(item, event);
      }
    }
    return false;
  }

  // --- sending ------------------------------------------------------------------------------

  function rememberConversation(id) {
    if (!id) return;
    conversationId = id;
    ui.conversationState.textContent = `Conversation ${id}`;
  }

  function resetConversation() {
    conversationId = null;
    ui.conversationState.textContent = '';
  }

  function setBusy(busy) {
    ui.send.disabled = busy;
    ui.stop.hidden = !busy;
    ui.log.setAttribute('aria-busy', String(busy));
    ui.status.textContent = busy ? 'Waiting for the reply…' : '';
  }

  async function send(prompt) {
    addMessage('user', prompt);
    const item = addMessage('assistant', '');
    item.dataset.state = 'streaming';
    const body = { prompt, stream: true };
    if (conversationId) body.conversation_id = conversationId;
    controller = new AbortController();
    setBusy(true);
    try {
      const response = await fetch('chat', {
        method: 'POST', headers: requestHeaders(), body: JSON.stringify(body), signal: controller.signal,
      });
      if (!response.ok) {
        fail(item, describe(response.status, await errorBody(response), response.headers));
        return;
      }
      if (!(response.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
        const reply = await response.json();
        textOf(item).textContent = reply.reply;
        rememberConversation(reply.conversation_id);
        finish(item, reply);
        return;
      }
      const ended = await readStream(response, item);
      if (!ended) fail(item, { text: 'The reply was cut off before it finished. Try again.' });
    } catch (err) {
      if (err.name === 'AbortError') {
        item.dataset.state = 'stopped';
        item.append(Object.assign(document.createElement('p'), { className: 'meta', textContent: 'Stopped.' }));
      } else if (err instanceof SyntaxError) {
        fail(item, { text: 'The server sent a reply this page could not read. Try again.' });
      } else {
        fail(item, { text: 'Cannot reach chatgate. Check that the server is running, then try again.' });
      }
    } finally {
      controller = null;
      setBusy(false);
      // After a 401 the key field keeps the focus it was given; otherwise typing goes on.
      if (document.activeElement !== ui.key) ui.prompt.focus();
    }
  }

  function submit() {
    const prompt = ui.prompt.value;
    if (!prompt.trim() || controller) return;
    ui.prompt.value = '';
    send(prompt);
  }

  // --- wiring -------------------------------------------------------------------------------

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });

  ui.prompt.addEventListener('keydown', (event) => {
    // Enter sends; Shift+Enter keeps the default (a new line); an IME composition is left alone.
    if (event.key === 'Enter' && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey
        && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });

  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && controller) controller.abort();
  });

  ui.stop.addEventListener('click', () => { if (controller) controller.abort(); });

  ui.newConversation.addEventListener('click', () => {
    if (controller) controller.abort();
    resetConversation();
    for (const item of ui.log.querySelectorAll('.msg')) item.remove();
    ui.emptyHint.hidden = false;
    ui.prompt.value = '';
    ui.prompt.focus();
  });

  ui.key.addEventListener('input', () => storeKey(ui.key.value.trim()));
  ui.forgetKey.addEventListener('click', () => {
    ui.key.value = '';
    storeKey('');
    ui.key.focus();
  });

  ui.key.value = storedKey();
  storeKey(ui.key.value);
  ui.prompt.focus();
})();
