// Drives the chat page in Debian's headless Chromium against a live chatgate server.
// Run by tests/e2e/test_browser.py with BASE_URL (the server) and ARTIFACTS (where screenshots go).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL;
// A second server with AUTH_MODE=keys and a key it accepts.
const KEYS_URL = process.env.KEYS_URL;
const API_KEY = process.env.API_KEY;
const ARTIFACTS = process.env.ARTIFACTS || 'artifacts';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT = 15000;
const EMAIL_PROMPT = 'echo: write to me at jane.doe@example.com';

if (!BASE_URL) throw new Error('BASE_URL is not set');
mkdirSync(ARTIFACTS, { recursive: true });

function step(name) {
  console.log(`- ${name}`);
}

const replies = (page) => page.locator('.msg-assistant');
const lastReply = (page) => replies(page).last();

async function waitForReply(page, count) {
  await page.waitForFunction((n) => {
    const items = document.querySelectorAll('.msg-assistant');
    return items.length === n && ['done', 'error'].includes(items[n - 1].dataset.state);
  }, count, { timeout: TIMEOUT });
}

async function sendWithEnter(page, text) {
  await page.locator('#prompt').fill(text);
  await page.locator('#prompt').press('Enter');
}

async function checkLoadsCleanly(page, problems) {
  step('the page loads with no console errors, CSP violations or failed requests');
  await page.goto(`${BASE_URL}/`, { waitUntil: 'networkidle' });
  assert.equal(await page.title(), 'chatgate');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt', 'the message box has focus');
  assert.equal(await page.getByLabel('Message').count(), 1, 'the message box has a label');
  assert.equal(await page.locator('#log').getAttribute('aria-live'), 'polite');
  assert.deepEqual(problems, []);
}

async function checkStreamedRedaction(page) {
  step('Enter sends; the reply streams in and the e-mail shows as a placeholder');
  // Count text changes inside the reply while it streams: more than one means it arrived in pieces.
  await page.evaluate(() => {
    window.__mutations = 0;
    new MutationObserver((records) => {
      for (const r of records) if (r.target.closest && r.target.closest('.msg-assistant .text')) window.__mutations += 1;
    }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
  });
  await sendWithEnter(page, EMAIL_PROMPT);
  assert.equal(await page.locator('#prompt').inputValue(), '', 'the box is cleared after sending');
  await waitForReply(page, 1);
  const reply = lastReply(page);
  assert.equal(await reply.getAttribute('data-state'), 'done');
  const text = await reply.locator('.text').innerText();
  assert.equal(text, 'write to me at [EMAIL]');
  assert.ok(!text.includes('jane.doe'), 'the address never reaches the page');
  assert.equal(await reply.locator('mark.placeholder').innerText(), '[EMAIL]');
  assert.equal(await reply.locator('.badge-redacted').innerText(), 'redacted: email ×1');
  assert.equal(await page.locator('.msg-user .text').first().innerText(), EMAIL_PROMPT);
  assert.ok(await page.evaluate(() => window.__mutations) > 1, 'the reply arrived in several pieces');
  assert.equal(await page.locator('#log').getAttribute('aria-busy'), 'false');
}

async function checkConversationContinues(page) {
  step('a second prompt continues the conversation');
  const sent = [];
  const listener = (request) => {
    if (request.url().endsWith('/chat') && request.method() === 'POST') sent.push(request.postDataJSON());
  };
  page.on('request', listener);
  const firstId = await page.evaluate(() => document.getElementById('conversation-state').textContent);
  await sendWithEnter(page, 'Tell me about the rings of Saturn');
  await waitForReply(page, 2);
  page.off('request', listener);
  assert.equal(await page.locator('.msg').count(), 4, 'both turns stay on the page');
  const reply = await lastReply(page).locator('.text').innerText();
  assert.match(reply, /Saturn/);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].stream, true);
  if (firstId.startsWith('Conversation ')) {
    // The server keeps conversations: the page sends the id back and the model sees turn two.
    assert.equal(sent[0].conversation_id, firstId.slice('Conversation '.length));
    assert.match(reply, /message 2 in our conversation/);
  } else {
    assert.equal(sent[0].conversation_id, undefined, 'no id is invented when the server gives none');
  }
}

async function checkShiftEnter(page) {
  step('Shift+Enter adds a new line instead of sending');
  const before = await page.locator('.msg').count();
  const box = page.locator('#prompt');
  await box.focus();
  await page.keyboard.type('line one');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('line two');
  assert.equal(await box.inputValue(), 'line one\nline two');
  assert.equal(await page.locator('.msg').count(), before, 'nothing was sent');
  await box.fill('');
}

async function checkErrors(page) {
  step('errors read as sentences: 429 with Retry-After, 503, 401 opens the key field');
  const cases = [
    { status: 429, headers: { 'Retry-After': '7' }, type: 'rate_limit_error', code: 'rate_limit_exceeded',
      expect: 'Rate limited — try again in 7 s.' },
    { status: 503, headers: {}, type: 'service_unavailable', code: 'upstream_not_configured',
      expect: 'The model service is unavailable' },
    { status: 401, headers: {}, type: 'authentication_error', code: 'invalid_api_key',
      expect: 'Paste a valid API key' },
  ];
  for (const c of cases) {
    await page.route('**/chat', (route) => route.fulfill({
      status: c.status,
      headers: { 'Content-Type': 'application/json', 'X-Request-ID': 'req-test', ...c.headers },
      body: JSON.stringify({ error: { message: 'from the test', type: c.type, param: null, code: c.code } }),
    }), { times: 1 });
    const count = await replies(page).count();
    await sendWithEnter(page, `trigger ${c.status}`);
    await waitForReply(page, count + 1);
    const alert = lastReply(page).locator('[role="alert"]');
    assert.ok((await alert.innerText()).includes(c.expect), `${c.status}: ${await alert.innerText()}`);
    assert.ok((await alert.innerText()).includes('req-test'), 'the request id is shown for support');
  }
  assert.equal(await page.locator('#key-panel').getAttribute('open'), '', 'the key panel opened on 401');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'api-key', 'focus moved to the key field');

  step('a stream that fails midway says so');
  await page.route('**/chat', (route) => route.fulfill({
    status: 200, headers: { 'Content-Type': 'text/event-stream' },
    body: 'data: {"delta":"Partial"}\n\ndata: {"error":{"message":"the upstream model service timed out",'
      + '"type":"timeout","param":null,"code":"upstream_timeout"}}\n\n',
  }), { times: 1 });
  const count = await replies(page).count();
  await sendWithEnter(page, 'trigger a mid-stream failure');
  await waitForReply(page, count + 1);
  assert.equal(await lastReply(page).locator('.text').innerText(), 'Partial');
  assert.match(await lastReply(page).locator('[role="alert"]').innerText(), /model service is unavailable/);
}

async function checkKey(page) {
  step('a pasted key is kept in sessionStorage and sent as a bearer token');
  await page.locator('#api-key').fill('cg_test_key_123');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('chatgate.apiKey')), 'cg_test_key_123');
  assert.equal(await page.locator('#key-state').innerText(), 'set for this tab');
  let auth = null;
  await page.route('**/chat', (route) => {
    auth = route.request().headers().authorization;
    return route.fulfill({
      status: 200, headers: { 'Content-Type': 'text/event-stream' },
      body: 'data: {"delta":"ok"}\n\ndata: {"id":"x","model":"m","finish_reason":"stop","usage":'
        + '{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"filter":{"action":"none","findings":[]},'
        + '"conversation_id":null}\n\ndata: [DONE]\n\n',
    });
  }, { times: 1 });
  const count = await replies(page).count();
  await sendWithEnter(page, 'with a key');
  await waitForReply(page, count + 1);
  assert.equal(auth, 'Bearer cg_test_key_123');
  await page.reload({ waitUntil: 'networkidle' });
  assert.equal(await page.locator('#api-key').inputValue(), 'cg_test_key_123', 'the key survives a reload');
  assert.equal(await page.locator('#key-state').innerText(), 'set for this tab');
  await page.locator('#key-panel summary').press('Enter');
  await page.locator('#forget-key').click();
  assert.equal(await page.locator('#api-key').inputValue(), '');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('chatgate.apiKey')), null);
}

async function checkNewConversation(page) {
  step('"New conversation" clears the page and puts focus back in the message box');
  await page.locator('#new-conversation').click();
  assert.equal(await page.locator('.msg').count(), 0);
  assert.equal(await page.locator('#conversation-state').innerText(), '');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt');
}

async function checkNarrowScreen(browser, problems) {
  step('on a narrow screen nothing scrolls sideways');
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2 });
  const page = await context.newPage();
  watch(page, problems);
  await page.goto(`${BASE_URL}/`, { waitUntil: 'networkidle' });
  await sendWithEnter(page, EMAIL_PROMPT);
  await waitForReply(page, 1);
  await sendWithEnter(page, 'Tell me about the rings of Saturn');
  await waitForReply(page, 2);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  const send = await page.locator('#send').boundingBox();
  assert.ok(send && send.x + send.width <= 360, 'the Send button is on screen');
  // What a phone shows: the newest reply above the message box.
  await page.screenshot({ path: join(ARTIFACTS, 'chat-narrow.png') });
  await context.close();
}

async function checkDocsPage(browser, problems) {
  step('the docs page renders /openapi.json from local assets');
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  watch(page, problems);
  await page.goto(`${BASE_URL}/docs`, { waitUntil: 'networkidle' });
  await page.waitForSelector('body[data-state="ready"]', { timeout: TIMEOUT });
  assert.ok(await page.locator('#op-post-chat').isVisible(), 'POST /chat is documented');
  assert.ok(await page.locator('#schema-ChatRequest').isVisible(), 'ChatRequest is documented');
  await page.screenshot({ path: join(ARTIFACTS, 'docs.png') });
  await context.close();
}

async function checkPastedKey(browser) {
  step('with AUTH_MODE=keys: a 401 asks for the key; once pasted, the reply comes');
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const page = await context.newPage();
  await page.goto(`${KEYS_URL}/`, { waitUntil: 'networkidle' });
  await sendWithEnter(page, 'Hello there');
  await waitForReply(page, 1);
  assert.match(await lastReply(page).locator('[role="alert"]').innerText(), /Paste a valid API key/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'api-key');
  await page.keyboard.type(API_KEY);
  await page.locator('#prompt').focus();
  await sendWithEnter(page, 'echo: the key works');
  await waitForReply(page, 2);
  assert.equal(await lastReply(page).getAttribute('data-state'), 'done');
  assert.equal(await lastReply(page).locator('.text').innerText(), 'the key works');
  await page.screenshot({ path: join(ARTIFACTS, 'chat-keys.png') });
  await context.close();
}

function watch(page, problems) {
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
  page.on('response', (resp) => {
    // The error cases below are simulated on purpose; anything else answering 4xx/5xx is a bug.
    if (resp.status() >= 400 && !resp.request().url().endsWith('/chat')) problems.push(`${resp.status()} ${resp.url()}`);
  });
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  watch(page, problems);
  await checkLoadsCleanly(page, problems);
  await checkStreamedRedaction(page);
  await checkConversationContinues(page);
  await page.screenshot({ path: join(ARTIFACTS, 'chat.png'), fullPage: true });
  await checkShiftEnter(page);
  await checkErrors(page);
  await page.screenshot({ path: join(ARTIFACTS, 'chat-errors.png'), fullPage: true });
  await checkKey(page);
  await checkNewConversation(page);
  await checkNarrowScreen(browser, problems);
  await checkDocsPage(browser, problems);
  if (KEYS_URL) await checkPastedKey(browser);
  // Simulated errors log "Failed to load resource" for their own status; nothing else may.
  const unexpected = problems.filter((p) => !/Failed to load resource: the server responded with a status of (401|429|503)/.test(p));
  assert.deepEqual(unexpected, []);
  console.log('browser test passed');
} catch (err) {
  if (page) await page.screenshot({ path: join(ARTIFACTS, 'chat-failure.png'), fullPage: true }).catch(() => {});
  throw err;
} finally {
  await browser.close();
}
