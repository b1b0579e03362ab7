// The chat page: prompts to POST /chat with the reply streamed in and formatted as it arrives,
// models from /v1/models, and the sidebar (conversations.js, usage-chart.js).
// Plain browser modules, no build step; loaded under a CSP that forbids inline code.
import { describe, errorBody, jsonCaller, sseData } from './api.js';
import { conversationList } from './conversations.js';
import { $, el } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { usagePanel } from './usage-chart.js';

const KEY_STORE = 'chatgate.apiKey';

const ui = {
  log: $('log'), emptyHint: $('empty-hint'), form: $('composer'), prompt: $('prompt'),
  send: $('send'), stop: $('stop'), status: $('status'), newConversation: $('new-conversation'),
  conversationState: $('conversation-state'), keyPanel: $('key-panel'), key: $('api-key'),
  keyState: $('key-state'), forgetKey: $('forget-key'), model: $('model'), sidebar: $('sidebar'),
  sidebarToggle: $('sidebar-toggle'),
};

let conversationId = null;
let controller = null;
// The raw Markdown of each reply, re-rendered as pieces arrive.
const replyText = new WeakMap();

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

function keyHeader() {
  const key = ui.key.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The sidebar is what these calls fill: it is busy until the last one has answered.
const call = jsonCaller({
  headers: keyHeader,
  onBusy: (busy) => ui.sidebar.setAttribute('aria-busy', String(busy)),
});

// --- models -------------------------------------------------------------------------------

async function loadModels() {
  const result = await call('v1/models');
  if (!result.ok || !Array.isArray(result.data?.data)) return;
  const chosen = ui.model.value;
  while (ui.model.options.length > 1) ui.model.remove(1);
  for (const model of result.data.data) {
    // Embedding models are listed too; only chat models can answer here.
    if (typeof model.id === 'string' && model.kind !== 'embedding') ui.model.add(new Option(model.id, model.id));
  }
  ui.model.value = [...ui.model.options].some((o) => o.value === chosen) ? chosen : '';
}

// --- the sidebar ----------------------------------------------------------------------------

function showTranscript(id, { system, messages }) {
  if (controller) controller.abort();
  clearLog();
  if (system) {
    ui.emptyHint.hidden = true;
    const note = el('p', 'system-note');
    note.append(el('strong', null, 'System: '), system);
    ui.log.append(note);
  }
  for (const message of messages || []) {
    if (message.role === 'user') {
      addMessage('user', message.content);
    } else if (message.role === 'assistant') {
      const item = addMessage('assistant', '');
      // Stored replies are the filtered text the client saw, so placeholders in them are the filter's.
      setReply(item, message.content, { placeholders: true });
      item.dataset.state = 'done';
    }
  }
  rememberConversation(id);
  setSidebar(false);
  ui.prompt.focus();
}

const conversations = conversationList({
  call,
  current: () => conversationId,
  onOpen: showTranscript,
  onDeleted: (id) => { if (id === conversationId) startNewConversation({ focus: false }); },
  onListed: () => { if (conversationId) showConversationState(); },
});
const usageView = usagePanel({ call });

function refreshAll() {
  loadModels();
  conversations.load();
  usageView.load();
}

// --- the message log ------------------------------------------------------------------------

function addMessage(role, text) {
  ui.emptyHint.hidden = true;
  const item = el('article', `msg msg-${role}`);
  const who = el('p', 'who', role === 'user' ? 'You' : role === 'assistant' ? 'chatgate' : 'Problem');
  // Replies are formatted Markdown; what the user typed is shown exactly as typed.
  const body = el('div', role === 'assistant' ? 'text md' : 'text', role === 'assistant' ? undefined : text);
  item.append(who, body);
  ui.log.append(item);
  if (role === 'assistant' && text) setReply(item, text);
  item.scrollIntoView({ block: 'end' });
  return item;
}

function textOf(item) {
  return item.querySelector('.text');
}

function setReply(item, text, options = {}) {
  replyText.set(item, text);
  renderMarkdown(textOf(item), text, options);
}

function appendDelta(item, delta) {
  setReply(item, (replyText.get(item) || '') + delta);
  if (isNearBottom()) item.scrollIntoView({ block: 'end' });
}

function isNearBottom() {
  const doc = document.scrollingElement;
  return doc.scrollHeight - doc.scrollTop - doc.clientHeight < 120;
}

function clearLog() {
  for (const node of ui.log.querySelectorAll('.msg, .system-note')) node.remove();
  ui.emptyHint.hidden = false;
}

function badge(text, kind, title) {
  const node = el('span', `badge badge-${kind}`, text);
  if (title) node.title = title;
  return node;
}

function formatCost(usd) {
  const options = usd > 0 && usd < 0.01 ? { maximumSignificantDigits: 2 }
    : { minimumFractionDigits: 2, maximumFractionDigits: 4 };
  return usd.toLocaleString('en-US', { style: 'currency', currency: 'USD', ...options });
}

function finish(item, end) {
  const report = end.filter || { action: 'none', findings: [] };
  const text = replyText.get(item) || '';
  if (report.action === 'blocked' && !text.trim()) {
    setReply(item, 'The reply was withheld by the content filter.');
  } else {
    // Placeholders stand out only when the filter says it put them there.
    setReply(item, text, { placeholders: report.action === 'redacted' });
  }
  const meta = el('p', 'meta');
  if (end.model) meta.append(badge(end.model, 'model', 'Model'));
  const usage = end.usage || {};
  if (Number.isFinite(usage.total_tokens)) {
    meta.append(badge(`${usage.total_tokens.toLocaleString()} tokens`, 'tokens',
      `${usage.prompt_tokens ?? '?'} prompt + ${usage.completion_tokens ?? '?'} completion tokens`));
  }
  const findings = Array.isArray(report.findings) ? report.findings : [];
  if (report.action === 'redacted') {
    for (const f of findings) meta.append(badge(`redacted: ${f.type} ×${f.count}`, 'redacted'));
  } else if (report.action === 'blocked') {
    const types = findings.map((f) => f.type).filter(Boolean).join(', ');
    meta.append(badge(types ? `blocked: ${types}` : 'blocked', 'blocked'));
  } else {
    meta.append(badge(`filter: ${report.action || 'none'}`, 'filter'));
  }
  // Cost appears once the server reports it; until then there is nothing to show.
  if (typeof usage.cost_usd === 'number' && Number.isFinite(usage.cost_usd)) {
    meta.append(badge(formatCost(usage.cost_usd), 'cost', 'Cost of this reply'));
  }
  if (end.finish_reason === 'length') meta.append(badge('cut at max_tokens', 'note'));
  item.append(meta);
  if (isNearBottom()) item.scrollIntoView({ block: 'end' });
  // A finished turn changes the list (a new or newly active conversation) and the usage.
  conversations.load();
  usageView.load();
  item.dataset.state = 'done';
  item.dataset.filter = report.action;
}

function fail(item, problem) {
  item.dataset.state = 'error';
  const note = el('p', 'problem', problem.text);
  note.setAttribute('role', 'alert');
  if (problem.requestId) note.append(el('span', 'details', ` Request ID ${problem.requestId}.`));
  item.append(note);
  if (problem.lostConversation) resetConversation();
  if (problem.needsKey) {
    ui.keyPanel.open = true;
    ui.key.focus();
  }
}

// --- sending --------------------------------------------------------------------------------

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

function showConversationState() {
  ui.conversationState.textContent = conversations.titleFor(conversationId) || 'New conversation';
}

function rememberConversation(id) {
  if (!id) return;
  conversationId = id;
  ui.conversationState.dataset.id = id;
  showConversationState();
  conversations.render();
}

function resetConversation() {
  conversationId = null;
  delete ui.conversationState.dataset.id;
  ui.conversationState.textContent = '';
  conversations.render();
}

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.hidden = !busy;
  // While busy, screen readers hold the live region's changes and read the finished reply once.
  ui.log.setAttribute('aria-busy', String(busy));
  ui.status.textContent = busy ? 'Waiting for the reply…' : '';
}

async function send(prompt) {
  addMessage('user', prompt);
  const item = addMessage('assistant', '');
  item.dataset.state = 'streaming';
  const body = { prompt, stream: true };
  if (conversationId) body.conversation_id = conversationId;
  if (ui.model.value) body.model = ui.model.value;
  controller = new AbortController();
  setBusy(true);
  try {
    const response = await fetch('chat', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...keyHeader() },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) {
      fail(item, describe(response.status, await errorBody(response), response.headers));
      return;
    }
    if (!(response.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      const reply = await response.json();
      setReply(item, reply.reply || '');
      rememberConversation(reply.conversation_id);
      finish(item, reply);
      return;
    }
    const ended = await readStream(response, item);
    if (!ended) fail(item, { text: 'The reply was cut off before it finished. Try again.' });
  } catch (err) {
    if (err.name === 'AbortError') {
      item.dataset.state = 'stopped';
      item.append(el('p', 'meta', 'Stopped.'));
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

function startNewConversation({ focus = true } = {}) {
  if (controller) controller.abort();
  resetConversation();
  clearLog();
  ui.prompt.value = '';
  if (focus) ui.prompt.focus();
}

function setSidebar(open) {
  document.body.classList.toggle('sidebar-open', open);
  ui.sidebarToggle.setAttribute('aria-expanded', String(open));
}

// --- copying code ---------------------------------------------------------------------------

function copyBySelection(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  let copied = false;
  try { copied = document.execCommand('copy'); } catch (_) { copied = false; }
  selection.removeAllRanges();
  return copied;
}

async function copyCode(button) {
  const code = button.closest('.code-block').querySelector('code');
  let copied = false;
  try {
    await navigator.clipboard.writeText(code.textContent);
    copied = true;
  } catch (_) {
    // No clipboard permission (or an insecure origin): the older way still works in most browsers.
    copied = copyBySelection(code);
  }
  const label = button.querySelector('.copy-label');
  label.textContent = copied ? 'Copied' : 'Copy failed';
  ui.status.textContent = copied ? 'Code copied to the clipboard.' : 'Could not copy: select the code and copy it.';
  setTimeout(() => { label.textContent = 'Copy'; }, 2000);
}

// --- wiring ---------------------------------------------------------------------------------

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
  // Escape in the delete dialog closes the dialog; it must not also stop a reply.
  if (event.key === 'Escape' && controller && !document.querySelector('dialog[open]')) controller.abort();
});

ui.stop.addEventListener('click', () => { if (controller) controller.abort(); });
ui.newConversation.addEventListener('click', () => startNewConversation());

ui.log.addEventListener('click', (event) => {
  const button = event.target.closest('button.copy-code');
  if (button) copyCode(button);
});

ui.sidebarToggle.addEventListener('click', () => setSidebar(!document.body.classList.contains('sidebar-open')));

ui.key.addEventListener('input', () => storeKey(ui.key.value.trim()));
// A new key is a different client: its models, conversations and usage are its own.
ui.key.addEventListener('change', refreshAll);
ui.forgetKey.addEventListener('click', () => {
  ui.key.value = '';
  storeKey('');
  ui.key.focus();
  startNewConversation({ focus: false });
  refreshAll();
});

ui.key.value = storedKey();
storeKey(ui.key.value);
ui.prompt.focus();
refreshAll();
