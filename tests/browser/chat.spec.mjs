// Drives the chat page in Debian's headless Chromium against live chatgate servers.
// Run by tests/e2e/test_browser.py with:
//   BASE_URL   a server on the offline model, AUTH_MODE=open
//   KEYS_URL   a server with AUTH_MODE=keys, and API_KEY, a key it accepts
//   MOCK_CHAT  a server in front of the mock upstream at MOCK_URL, allowing gpt-4o-mini and gpt-4o
//   ARTIFACTS  where screenshots go
import assert from 'node:assert/strict';
import { TIMEOUT, checkAxe, run, shot, step, watch } from './lib.mjs';

const { BASE_URL, KEYS_URL, API_KEY, MOCK_CHAT, MOCK_URL } = process.env;
const EMAIL_PROMPT = 'echo: write to me at jane.doe@example.com';
// Model output a browser must never act on: markup, script, a javascript: link and an entity.
const HOSTILE = '<img src=x onerror=alert(1)> <script>alert(2)</script> [click me](javascript:alert(3)) '
  + '&lt;b&gt;not bold&lt;/b&gt; &amp; done';
const CODE = 'def greet(name):\n    return f"hello {name}"  # <not a tag>';
const MARKDOWN = [
  '## Steps', '', 'Use **bold**, *emphasis* and `inline code`; see [the docs](https://example.com/docs).', '',
  '- first point', '- second point', '  1. nested one', '', '```python', CODE, '```', '', 'That is all.',
].join('\n');

for (const name of ['BASE_URL', 'KEYS_URL', 'API_KEY', 'MOCK_CHAT', 'MOCK_URL']) {
  if (!process.env[name]) throw new Error(`${name} is not set`);
}

const replies = (page) => page.locator('.msg-assistant');
const lastReply = (page) => replies(page).last();
const conversationItem = (page, title) => page.locator('.conversation', {
  has: page.locator('.conversation-title', { hasText: title }),
});

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

/** The JSON bodies of POST /chat requests made while `action` runs. */
async function chatBodies(page, action) {
  const sent = [];
  const listener = (request) => {
    if (new URL(request.url()).pathname === '/chat' && request.method() === 'POST') sent.push(request.postDataJSON());
  };
  page.on('request', listener);
  try {
    await action();
  } finally {
    page.off('request', listener);
  }
  return sent;
}

/** Wait until the sidebar's requests (the list and usage refresh after a reply) are answered. */
async function settle(page) {
  await page.waitForFunction(() => document.getElementById('sidebar').getAttribute('aria-busy') === 'false');
}

function sse(...events) {
  return `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`;
}

async function stubChatOnce(page, body) {
  await page.route('**/chat', (route) => route.fulfill({
    status: 200, headers: { 'Content-Type': 'text/event-stream' }, body,
  }), { times: 1 });
}

// --- the page and its first reply ------------------------------------------------------------

async function checkLoadsCleanly(page, problems) {
  step('the page loads with no console errors, CSP violations or failed requests; controls are labelled');
  await page.goto(`${BASE_URL}/`, { waitUntil: 'networkidle' });
  assert.equal(await page.title(), 'chatgate');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt', 'the message box has focus');
  assert.equal(await page.getByLabel('Message', { exact: true }).count(), 1, 'the message box has a label');
  assert.equal(await page.getByLabel('Model', { exact: true }).count(), 1, 'the model picker has a label');
  assert.equal(await page.locator('#log').getAttribute('aria-live'), 'polite');
  await page.waitForSelector('#usage-chart[data-state="ready"]');
  assert.deepEqual(problems, []);
}

async function checkStreamedRedaction(page) {
  step('Enter sends; the reply streams in and the e-mail shows as a placeholder');
  // Count text changes inside the reply while it streams: more than one means it arrived in pieces.
  await page.evaluate(() => {
    window.__mutations = 0;
    new MutationObserver((records) => {
      for (const r of records) {
        const target = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        if (target && target.closest('.msg-assistant .text')) window.__mutations += 1;
      }
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
  assert.equal(await reply.locator('.badge-model').innerText(), 'gpt-4o-mini');
  assert.match(await reply.locator('.badge-tokens').innerText(), /^\d+ tokens$/);
  // Every reply is priced now (the offline model answers as gpt-4o-mini, which has a price).
  assert.match(await reply.locator('.badge-cost').innerText(), /^\$\d/, 'the cost badge shows usage.cost_usd');
  assert.equal(await page.locator('.msg-user .text').first().innerText(), EMAIL_PROMPT);
  assert.ok(await page.evaluate(() => window.__mutations) > 1, 'the reply arrived in several pieces');
  assert.equal(await page.locator('#log').getAttribute('aria-busy'), 'false');
}

async function checkConversationContinues(page) {
  step('a second prompt continues the conversation');
  const sent = await chatBodies(page, async () => {
    await sendWithEnter(page, 'Tell me about the rings of Saturn');
    await waitForReply(page, 2);
  });
  assert.equal(await page.locator('.msg').count(), 4, 'both turns stay on the page');
  const reply = await lastReply(page).locator('.text').innerText();
  assert.match(reply, /Saturn/);
  assert.match(reply, /message 2 in our conversation/, 'the model saw the first turn');
  assert.equal(sent.length, 1);
  assert.equal(sent[0].stream, true);
  assert.equal(sent[0].model, undefined, '"Server default" sends no model');
  const id = await page.locator('#conversation-state').getAttribute('data-id');
  assert.ok(id, 'the page knows the conversation id');
  assert.equal(sent[0].conversation_id, id);
}

// --- formatted replies ---------------------------------------------------------------------

async function checkMarkdownWhileStreaming(page) {
  step('a Markdown reply is formatted while it streams: heading, emphasis, code, link, lists, code block');
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const item = [...document.querySelectorAll('.msg-assistant')].pop();
      if (!item || item.dataset.state !== 'streaming') return;
      for (const sel of ['h4', 'strong', 'em', 'li', 'pre code', 'a[href]']) {
        if (item.querySelector(sel) && !window.__seen.includes(sel)) window.__seen.push(sel);
      }
    }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
  });
  const count = await replies(page).count();
  await sendWithEnter(page, `echo: ${MARKDOWN}`);
  await waitForReply(page, count + 1);
  const seen = await page.evaluate(() => window.__seen);
  for (const sel of ['h4', 'strong', 'li', 'pre code']) assert.ok(seen.includes(sel), `${sel} appeared mid-stream: ${seen}`);
  const reply = lastReply(page);
  assert.equal(await reply.locator('h4').innerText(), 'Steps');
  assert.equal(await reply.locator('strong').innerText(), 'bold');
  assert.equal(await reply.locator('em').innerText(), 'emphasis');
  assert.equal(await reply.locator(':not(pre) > code').innerText(), 'inline code');
  const link = reply.locator('a');
  assert.equal(await link.count(), 1);
  assert.equal(await link.getAttribute('href'), 'https://example.com/docs');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.deepEqual(await reply.locator('.md > ul > li').evaluateAll((items) => items.map((li) => li.firstChild.textContent)),
    ['first point', 'second point']);
  assert.equal(await reply.locator('ul ol > li').innerText(), 'nested one');
  assert.equal(await reply.locator('pre code').textContent(), CODE);
  assert.equal(await reply.locator('pre code').getAttribute('data-lang'), 'python');
  assert.equal(await reply.locator('.code-lang').innerText(), 'python');
  assert.equal(await reply.locator('.md > p').last().innerText(), 'That is all.');
  await shot(page, 'chat-markdown.png', { fullPage: true });
}

async function checkCodeCopy(page) {
  step('the code block\'s Copy button, pressed from the keyboard, puts the code on the clipboard');
  const button = lastReply(page).locator('.copy-code');
  assert.equal(await button.textContent(), 'Copy python code', 'its name says what it copies');
  await button.focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Code copied to the clipboard.');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), CODE);
}

async function checkInertOutput(page, problems) {
  step('model output stays inert: markup, script, a javascript: link and an entity show as text');
  const requests = [];
  const listener = (request) => requests.push(`${request.method()} ${new URL(request.url()).pathname}`);
  await page.locator('#new-conversation').click();
  page.on('request', listener);
  await sendWithEnter(page, `echo: ${HOSTILE}`);
  await waitForReply(page, 1);
  // The list refresh that follows a reply is part of what may be fetched.
  await settle(page);
  await conversationItem(page, 'echo: <img').first().waitFor();
  page.off('request', listener);
  const reply = lastReply(page);
  assert.equal(await reply.locator('.text').innerText(), HOSTILE, 'shown exactly as the model wrote it');
  assert.equal(await page.locator('img').count(), 0, 'no image element anywhere on the page');
  assert.equal(await page.locator('script').count(), 1, 'only the page\'s own module script');
  assert.equal(await reply.locator('a').count(), 0, 'no link from a javascript: URL');
  assert.equal(await page.locator('a[href^="javascript" i]').count(), 0);
  assert.equal(await reply.locator('b').count(), 0, 'entities are not decoded into markup');
  // The sidebar shows the same prompt as its title, as text too.
  assert.ok((await conversationItem(page, 'echo: <img').first().innerText()).includes('<img src=x'));
  const allowed = /^(POST \/chat|GET \/conversations|GET \/usage)$/;
  assert.deepEqual(requests.filter((r) => !allowed.test(r)), [], 'nothing but the API was requested');
  assert.deepEqual(problems.filter((p) => p.startsWith('dialog')), [], 'no dialog opened');
  await shot(page, 'chat-inert.png', { fullPage: true });
}

async function checkRenderer(page) {
  step('markdown.js, case by case: safe links only, nothing decoded, CommonMark-like emphasis and lists');
  const results = await page.evaluate(async () => {
    const { markdownFragment, renderMarkdown } = await import('./static/markdown.js');
    const html = (source, options) => {
      const holder = document.createElement('div');
      holder.append(markdownFragment(source, options));
      return holder.innerHTML;
    };
    const link = (href, text) => `<a href="${href}" target="_blank" rel="noopener noreferrer">${text}</a>`;
    const cases = [
      ['**bold**, *em*, _em_ and ~~gone~~', '<p><strong>bold</strong>, <em>em</em>, <em>em</em> and <del>gone</del></p>'],
      ['***both*** and **a *nested* em**', '<p><strong><em>both</em></strong> and <strong>a <em>nested</em> em</strong></p>'],
      ['snake_case_name and 2 * 3 * 4', '<p>snake_case_name and 2 * 3 * 4</p>'],
      ['\\*not em\\* and a lone * star', '<p>*not em* and a lone * star</p>'],
      ['`<b>` and `` a ` b ``', '<p><code>&lt;b&gt;</code> and <code>a ` b</code></p>'],
      ['&amp; &#x3C;b&#x3E; &lt;', '<p>&amp;amp; &amp;#x3C;b&amp;#x3E; &amp;lt;</p>'],
      ['<b onclick=alert(1)>x</b>', '<p>&lt;b onclick=alert(1)&gt;x&lt;/b&gt;</p>'],
      ['[x](JaVaScRiPt:alert(1))', '<p>[x](JaVaScRiPt:alert(1))</p>'],
      ['[x](  javascript:alert(1))', '<p>[x](  javascript:alert(1))</p>'],
      ['[x](java\tscript:alert(1))', '<p>[x](java    script:alert(1))</p>'],
      ['[x](data:text/html,<b>hi</b>)', '<p>[x](data:text/html,&lt;b&gt;hi&lt;/b&gt;)</p>'],
      ['[x](vbscript:msgbox)', '<p>[x](vbscript:msgbox)</p>'],
      ['[x](/relative/path)', '<p>[x](/relative/path)</p>'],
      ['![pic](https://example.com/p.png)', `<p>!${link('https://example.com/p.png', 'pic')}</p>`],
      ['[a *b*](https://example.com/a_(b) "title")', `<p>${link('https://example.com/a_(b)', 'a <em>b</em>')}</p>`],
      ['see https://example.com/path. or (http://example.org/x)',
        `<p>see ${link('https://example.com/path', 'https://example.com/path')}. or (${link('http://example.org/x', 'http://example.org/x')})</p>`],
      ['<https://example.com/?q=1&r=2>', `<p>${link('https://example.com/?q=1&amp;r=2', 'https://example.com/?q=1&amp;r=2')}</p>`],
      ['# One\n###### Six\n#hashtag', '<h3 class="md-heading">One</h3><h6 class="md-heading">Six</h6><p>#hashtag</p>'],
      ['line one\nline two', '<p>line one<br>line two</p>'],
      ['intro\n- a\n- b\n\n3. c\n4. d', '<p>intro</p><ul><li><p>a</p></li><li><p>b</p></li></ul><ol start="3"><li><p>c</p></li><li><p>d</p></li></ol>'],
      ['In 1999. It ended', '<p>In 1999. It ended</p>'],
      ['> quoted *text*\n\n---', '<blockquote><p>quoted <em>text</em></p></blockquote><hr>'],
      ['Mail [EMAIL] now', '<p>Mail <mark class="placeholder" title="redacted email">[EMAIL]</mark> now</p>', { placeholders: true }],
      ['Mail [EMAIL] now', '<p>Mail [EMAIL] now</p>'],
    ];
    const failures = [];
    for (const [source, expected, options] of cases) {
      const got = html(source, options);
      if (got !== expected) failures.push({ source, expected, got });
    }
    // A code block still streaming (no closing fence) is a code block already.
    const open = document.createElement('div');
    open.append(markdownFragment('```js\nlet a = "<i>";'));
    const code = open.querySelector('.code-block pre code');
    if (!code || code.textContent !== 'let a = "<i>";' || open.querySelector('i')) failures.push({ source: 'open fence' });
    // Thousands of delimiters that never close render as the text they are.
    const junk = '*a _b [c ~~d '.repeat(4000).trim();
    if (markdownFragment(junk).textContent !== junk) failures.push({ source: 'unmatched delimiters' });
    // Re-rendering a growing reply keeps the nodes of blocks that did not change.
    const box = document.createElement('div');
    renderMarkdown(box, 'first\n\nsec');
    const first = box.firstChild;
    renderMarkdown(box, 'first\n\nsecond');
    if (box.firstChild !== first || box.lastChild.textContent !== 'second') failures.push({ source: 'block reuse' });
    return { count: cases.length, failures };
  });
  assert.deepEqual(results.failures, [], 'renderer cases');
  assert.ok(results.count > 20);
}

// --- badges --------------------------------------------------------------------------------

async function checkBadges(page) {
  step('badges: model, tokens, filter with finding types, and cost only when usage.cost_usd is a number');
  const end = (extra) => ({
    id: 'x', model: 'gpt-4o-mini', finish_reason: 'stop', conversation_id: null,
    usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, filter: { action: 'none', findings: [] }, ...extra,
  });
  const cases = [
    { event: end({ usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: 0.00042 },
      filter: { action: 'redacted', findings: [{ type: 'email', count: 1 }, { type: 'phone', count: 2 }] } }),
      badges: ['gpt-4o-mini', '7 tokens', 'redacted: email ×1', 'redacted: phone ×2', '$0.00042'] },
    { event: end({ usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: 1.5 } }),
      badges: ['gpt-4o-mini', '7 tokens', 'filter: none', '$1.50'] },
    { event: end({ usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cost_usd: null } }),
      badges: ['gpt-4o-mini', '7 tokens', 'filter: none'] },
    { event: end({ finish_reason: 'content_filter', filter: { action: 'blocked', findings: [{ type: 'blocklist', count: 1 }] } }),
      badges: ['gpt-4o-mini', '7 tokens', 'blocked: blocklist'], noDelta: true },
  ];
  for (const c of cases) {
    await stubChatOnce(page, c.noDelta ? sse(c.event) : sse({ delta: 'A priced reply.' }, c.event));
    const count = await replies(page).count();
    await sendWithEnter(page, 'badges please');
    await waitForReply(page, count + 1);
    const badges = await lastReply(page).locator('.badge').evaluateAll((all) => all.map((b) => b.innerText));
    assert.deepEqual(badges, c.badges);
    if (c.noDelta) {
      assert.equal(await lastReply(page).locator('.text').innerText(), 'The reply was withheld by the content filter.');
    }
  }
}

// --- conversations ---------------------------------------------------------------------------

async function checkSidebarFlow(page) {
  step('sidebar: conversations newest first; open one, read it, continue it; delete one after confirming');
  await page.locator('#new-conversation').click();
  await sendWithEnter(page, 'echo: planets are round');
  await waitForReply(page, 1);
  await page.locator('#new-conversation').click();
  await sendWithEnter(page, 'echo: oceans are deep');
  await waitForReply(page, 1);
  await conversationItem(page, 'echo: oceans are deep').waitFor();
  const titles = await page.locator('.conversation-title').allInnerTexts();
  assert.ok(titles.indexOf('echo: oceans are deep') < titles.indexOf('echo: planets are round'), `newest first: ${titles}`);
  assert.equal(await conversationItem(page, 'echo: oceans are deep').locator('[aria-current="true"]').count(), 1,
    'the open conversation is marked current');

  // Open the older one from the keyboard.
  await page.locator('#new-conversation').click();
  assert.equal(await page.locator('.msg').count(), 0);
  const older = conversationItem(page, 'echo: planets are round');
  const id = await older.getAttribute('data-id');
  await older.locator('.conversation-open').focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.msg').length === 2);
  assert.equal(await page.locator('.msg-user .text').innerText(), 'echo: planets are round');
  assert.equal(await page.locator('.msg-assistant .text').innerText(), 'planets are round');
  assert.equal(await older.locator('.conversation-open').getAttribute('aria-current'), 'true');
  assert.equal(await page.locator('#conversation-state').innerText(), 'echo: planets are round');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt', 'typing can go on at once');

  // Continue it: the id goes with the prompt and the model sees the earlier turn.
  const sent = await chatBodies(page, async () => {
    await sendWithEnter(page, 'Tell me about the moons of Jupiter');
    await waitForReply(page, 2);
  });
  assert.equal(sent[0].conversation_id, id);
  assert.match(await lastReply(page).locator('.text').innerText(), /message 2 in our conversation/);
  await page.waitForFunction((want) => document.querySelector('.conversation')?.dataset.id === want, id,
    { timeout: TIMEOUT });
  assert.match(await older.locator('.conversation-meta').innerText(), /^2 turns/);
  await shot(page, 'chat-sidebar.png', { fullPage: true });

  // Delete: Escape cancels and nothing is sent; the second time it is confirmed.
  const deletes = [];
  const listener = (request) => { if (request.method() === 'DELETE') deletes.push(new URL(request.url()).pathname); };
  page.on('request', listener);
  await older.locator('.conversation-delete').click();
  const dialog = page.locator('#confirm-delete');
  assert.ok(await dialog.isVisible(), 'a confirmation is asked for');
  assert.match(await dialog.innerText(), /“echo: planets are round” and all its messages will be erased/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-cancel', 'the safe choice has focus');
  await shot(page, 'chat-delete.png');
  await page.keyboard.press('Escape');
  assert.ok(!(await dialog.isVisible()));
  assert.equal(await older.count(), 1, 'still listed after cancelling');
  assert.ok(await older.locator('.conversation-delete').evaluate((b) => b === document.activeElement),
    'focus returns to the delete button');
  await page.keyboard.press('Enter');
  assert.ok(await dialog.isVisible());
  await page.locator('#confirm-delete-button').click();
  await older.waitFor({ state: 'detached' });
  page.off('request', listener);
  assert.deepEqual(deletes, [`/conversations/${id}`]);
  assert.equal(await page.locator('.msg').count(), 0, 'the open conversation was the deleted one: the log is cleared');
  assert.equal(await page.locator('#conversation-state').innerText(), '');
  assert.equal(await page.locator('#conversations-note').innerText(), 'Conversation deleted.');
  const gone = await page.request.get(`${BASE_URL}/conversations/${id}`);
  assert.equal(gone.status(), 404, 'erased on the server');
}

// --- usage ---------------------------------------------------------------------------------

async function checkUsageChart(page) {
  step('the usage chart draws a bar for each day with traffic, summed over models');
  const today = await page.evaluate(() => new Date().toISOString().slice(0, 10));
  await page.locator('#usage-refresh').click();
  await page.waitForFunction((day) => document.querySelector(`#usage-chart rect.bar-requests[data-day="${day}"]`), today);
  const usage = await (await page.request.get(`${BASE_URL}/usage?days=14`)).json();
  const mine = usage.data.filter((r) => r.day === today);
  const sum = (key) => mine.reduce((n, r) => n + r[key], 0);
  const bars = (kind) => page.locator(`#usage-chart rect.bar-${kind}`)
    .evaluateAll((all) => all.map((r) => [r.dataset.day, Number(r.dataset.value)]));
  // The chart reads /usage when refreshed; the page's own replies are all today's traffic so far.
  await page.locator('#usage-refresh').click();
  await page.waitForFunction((want) => Number(document.querySelector('#usage-chart rect.bar-requests')?.dataset.value) === want,
    sum('requests'));
  assert.deepEqual(await bars('requests'), [[today, sum('requests')]]);
  assert.deepEqual(await bars('tokens'), [[today, sum('total_tokens')]]);

  const day = (back) => new Date(Date.parse(`${today}T00:00:00Z`) - back * 86400000).toISOString().slice(0, 10);
  const row = (d, model, requests, tokens) => ({ day: d, model, requests, prompt_tokens: tokens - 10,
    completion_tokens: 10, total_tokens: tokens });
  await page.route('**/usage?days=14', (route) => route.fulfill({ json: { days: 14, data: [
    row(day(13), 'gpt-4o-mini', 2, 300), row(day(5), 'gpt-4o', 1, 100), row(day(5), 'gpt-4o-mini', 4, 500),
    row(day(0), 'gpt-4o-mini', 1, 50), row(day(20), 'gpt-4o-mini', 9, 999),
  ] } }), { times: 1 });
  await page.locator('#usage-refresh').click();
  await page.waitForFunction(() => document.querySelectorAll('#usage-chart rect.bar-requests').length === 3);
  assert.deepEqual(await bars('requests'), [[day(13), 2], [day(5), 5], [day(0), 1]]);
  assert.deepEqual(await bars('tokens'), [[day(13), 300], [day(5), 600], [day(0), 50]]);
  const heights = await page.locator('#usage-chart rect.bar-tokens').evaluateAll((all) => all.map((r) => Number(r.getAttribute('height'))));
  assert.ok(heights[1] > heights[0] && heights[0] > heights[2] && heights[2] > 0, `bar heights follow tokens: ${heights}`);
  assert.equal(await page.locator('#usage-summary').innerText(), '8 requests, 950 tokens on 3 days.');
  assert.equal(await page.locator('#usage-rows tr').count(), 3, 'the same numbers as a table for screen readers');
  await shot(page, 'chat-usage.png', { fullPage: true });
}

// --- the rest of the page's behaviour ------------------------------------------------------------

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
  step('a pasted key is kept in sessionStorage and sent as a bearer token, to the chat and the lists');
  await page.locator('#api-key').fill('cg_test_key_123');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('chatgate.apiKey')), 'cg_test_key_123');
  assert.equal(await page.locator('#key-state').innerText(), 'set for this tab');
  let auth = null;
  await page.route('**/chat', (route) => {
    auth = route.request().headers().authorization;
    return route.fulfill({
      status: 200, headers: { 'Content-Type': 'text/event-stream' },
      body: sse({ delta: 'ok' }, { id: 'x', model: 'm', finish_reason: 'stop', conversation_id: null,
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }, filter: { action: 'none', findings: [] } }),
    });
  }, { times: 1 });
  const count = await replies(page).count();
  await sendWithEnter(page, 'with a key');
  await waitForReply(page, count + 1);
  assert.equal(auth, 'Bearer cg_test_key_123');
  await settle(page);
  await page.reload({ waitUntil: 'networkidle' });
  assert.equal(await page.locator('#api-key').inputValue(), 'cg_test_key_123', 'the key survives a reload');
  assert.equal(await page.locator('#key-state').innerText(), 'set for this tab');
  const listAuth = [];
  const listener = (request) => { if (request.url().includes('/conversations')) listAuth.push(request.headers().authorization); };
  page.on('request', listener);
  await page.locator('#key-panel summary').press('Enter');
  await page.locator('#forget-key').click();
  await settle(page);
  page.off('request', listener);
  assert.equal(await page.locator('#api-key').inputValue(), '');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('chatgate.apiKey')), null);
  assert.deepEqual(listAuth, [undefined], 'forgetting the key reloads the list without it');
}

async function checkNewConversation(page) {
  step('"New conversation" clears the page and puts focus back in the message box');
  await sendWithEnter(page, 'echo: something to clear');
  await waitForReply(page, 1);
  await page.locator('#new-conversation').click();
  assert.equal(await page.locator('.msg').count(), 0);
  assert.equal(await page.locator('#conversation-state').innerText(), '');
  assert.equal(await page.locator('.conversation-open[aria-current]').count(), 0);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt');
}

// --- other viewports, other servers ------------------------------------------------------------

async function checkNarrowScreen(browser, problems) {
  step('at 360 px nothing scrolls sideways; "History" folds the sidebar out and back');
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2 });
  const page = await context.newPage();
  watch(page, problems);
  await page.goto(`${BASE_URL}/`, { waitUntil: 'networkidle' });
  await sendWithEnter(page, EMAIL_PROMPT);
  await waitForReply(page, 1);
  await sendWithEnter(page, `echo: ${MARKDOWN}`);
  await waitForReply(page, 2);
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(await overflow() <= 0, `the page is ${await overflow()}px wider than the screen`);
  const send = await page.locator('#send').boundingBox();
  assert.ok(send && send.x + send.width <= 360, 'the Send button is on screen');
  assert.ok(!(await page.locator('#sidebar').isVisible()), 'the sidebar starts folded');
  // What a phone shows: the newest reply above the message box.
  await shot(page, 'chat-narrow.png');
  const toggle = page.locator('#sidebar-toggle');
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.ok(await page.locator('#sidebar').isVisible());
  assert.ok(await page.locator('#usage-chart rect.bar').count() > 0);
  assert.ok(await overflow() <= 0, 'the open sidebar fits too');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'chat-narrow-history.png');
  await page.locator('.conversation-open').first().click();
  await page.waitForFunction(() => !document.body.classList.contains('sidebar-open'));
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false', 'opening a conversation folds the sidebar');
  await settle(page);
  await context.close();
}

async function checkDarkMode(browser, problems) {
  step('dark mode follows prefers-color-scheme, and passes axe there too');
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, colorScheme: 'dark' });
  const page = await context.newPage();
  watch(page, problems);
  await page.goto(`${BASE_URL}/`, { waitUntil: 'networkidle' });
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, 'rgb(18, 22, 29)');
  await sendWithEnter(page, `echo: ${MARKDOWN}`);
  await waitForReply(page, 1);
  await shot(page, 'chat-dark.png', { fullPage: true });
  await checkAxe(page, '/ (dark)');
  await settle(page);
  await context.close();
}

async function checkModelPicker(browser, problems) {
  step('the model picker lists /v1/models and the chosen model reaches the upstream');
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  watch(page, problems);
  await page.goto(`${MOCK_CHAT}/`, { waitUntil: 'networkidle' });
  const options = await page.locator('#model option').evaluateAll((all) => all.map((o) => [o.value, o.textContent]));
  assert.deepEqual(options, [['', 'Server default'], ['gpt-4o-mini', 'gpt-4o-mini'], ['gpt-4o', 'gpt-4o']]);
  const upstream = async (path, method = 'GET') => (await fetch(`${MOCK_URL}${path}`, { method })).json();
  await upstream('/_mock/reset', 'POST');
  await page.locator('#model').selectOption('gpt-4o');
  const sent = await chatBodies(page, async () => {
    await sendWithEnter(page, 'Which model answers?');
    await waitForReply(page, 1);
  });
  assert.equal(sent[0].model, 'gpt-4o');
  assert.deepEqual((await upstream('/_mock/stats')).models, { 'gpt-4o': 1 }, 'the upstream was asked for gpt-4o');
  assert.equal(await lastReply(page).locator('.badge-model').innerText(), 'gpt-4o');
  assert.match(await lastReply(page).locator('.text').innerText(), /^alpha bravo/);
  await shot(page, 'chat-model.png', { fullPage: true });
  await page.locator('#model').selectOption('');
  await sendWithEnter(page, 'And now?');
  await waitForReply(page, 2);
  assert.deepEqual((await upstream('/_mock/stats')).models, { 'gpt-4o': 1, 'gpt-4o-mini': 1 },
    'back on the server default');
  await settle(page);
  await context.close();
}

async function checkPastedKey(browser) {
  step('with AUTH_MODE=keys: the lists ask for a key, a 401 opens the key field; once pasted, all works');
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  await page.goto(`${KEYS_URL}/`, { waitUntil: 'networkidle' });
  assert.equal(await page.locator('#conversations-note').innerText(), 'Paste your API key (above) to see your conversations.');
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
  await conversationItem(page, 'echo: the key works').waitFor();
  assert.equal(await page.locator('#conversations-note').innerText(), '');
  // The key field is a password field: the screenshot shows dots, never the key.
  assert.equal(await page.locator('#api-key').getAttribute('type'), 'password');
  await shot(page, 'chat-keys.png');

  step('the page as the README shows it: a formatted reply with its badges, the list and the chart');
  await page.locator('#key-panel summary').click();
  await page.locator('#new-conversation').click();
  await sendWithEnter(page, 'echo: **Replies are formatted as they stream**, with `inline code`, lists and code:\n\n'
    + '- safe links only: [the docs](https://example.com/docs)\n- HTML stays text: <b>not bold</b>\n\n'
    + '```python\nprint("hello from chatgate")\n```');
  await waitForReply(page, 1);
  await settle(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  assert.equal(await page.locator('.conversation').count(), 2, 'this key\'s own conversations only');
  assert.equal(await page.locator('#usage-chart rect.bar-requests').getAttribute('data-value'), '2');
  await shot(page, 'chat-page.png');
  await context.close();
}

await run('chat page browser test', async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  // The error cases below are simulated on purpose, on /chat only.
  watch(page, problems, { expected: (resp) => new URL(resp.url()).pathname === '/chat' });
  try {
    await checkLoadsCleanly(page, problems);
    await checkStreamedRedaction(page);
    await checkConversationContinues(page);
    await shot(page, 'chat.png', { fullPage: true });
    await checkMarkdownWhileStreaming(page);
    await checkCodeCopy(page);
    await checkAxe(page, '/');
    await checkInertOutput(page, problems);
    await checkRenderer(page);
    await checkBadges(page);
    await checkShiftEnter(page);
    await checkErrors(page);
    await shot(page, 'chat-errors.png', { fullPage: true });
    await checkKey(page);
    await checkNewConversation(page);
    await checkSidebarFlow(page);
    await checkUsageChart(page);
    await checkNarrowScreen(browser, problems);
    await checkDarkMode(browser, problems);
    await checkModelPicker(browser, problems);
    await checkPastedKey(browser);
    // Simulated errors log "Failed to load resource" for their own status; nothing else may.
    const unexpected = problems.filter((p) => !/Failed to load resource: the server responded with a status of (401|429|503)/.test(p));
    assert.deepEqual(unexpected, []);
  } catch (err) {
    await shot(page, 'chat-failure.png', { fullPage: true }).catch(() => {});
    throw err;
  }
});
