// Drives /docs (Swagger UI) in Debian's headless Chromium against live chatgate servers.
// Run by tests/e2e/test_browser.py with BASE_URL (AUTH_MODE=open), KEYS_URL and API_KEY (AUTH_MODE=keys)
// and ARTIFACTS. No screenshot is taken once a key has been typed: Swagger UI shows it in clear.
import assert from 'node:assert/strict';
import { TIMEOUT, checkAxe, run, shot, step, watch } from './lib.mjs';

const { BASE_URL, KEYS_URL, API_KEY } = process.env;
for (const name of ['BASE_URL', 'KEYS_URL', 'API_KEY']) {
  if (!process.env[name]) throw new Error(`${name} is not set`);
}

async function openDocs(page, base) {
  await page.goto(`${base}/docs`, { waitUntil: 'networkidle' });
  await page.waitForSelector('body[data-state="ready"]', { timeout: TIMEOUT });
}

/** Expand POST /chat, press "Try it out", send `body`; the live response's status and body text. */
async function tryChat(page, body) {
  const op = page.locator('#operations-chat-chat');
  if (!(await op.evaluate((el) => el.classList.contains('is-open')))) {
    await op.locator('.opblock-summary-control').click();
    await op.locator('.opblock-body').waitFor();
  }
  if (!(await op.locator('textarea.body-param__text').count())) {
    await op.getByRole('button', { name: 'Try it out' }).click();
  }
  await op.locator('textarea.body-param__text').fill(JSON.stringify(body));
  const answered = page.waitForResponse((resp) => new URL(resp.url()).pathname === '/chat');
  await op.locator('button.execute').click();
  const response = await answered;
  // Swagger UI renders the answer once it has read it; wait for that rather than for a time.
  await page.waitForFunction((status) => {
    const cell = document.querySelector('#operations-chat-chat .live-responses-table tbody .response-col_status');
    return cell && cell.textContent.trim().startsWith(String(status));
  }, response.status());
  const text = await op.locator('.live-responses-table tbody .response-col_description').innerText();
  return { status: response.status(), request: response.request(), text };
}

async function checkDocs(browser, problems) {
  step('/docs is Swagger UI from local files, under the strict page CSP, describing this server');
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watch(page, problems);
  const assets = [];
  page.on('request', (req) => assets.push(new URL(req.url()).pathname));
  await openDocs(page, BASE_URL);
  assert.equal(await page.title(), 'chatgate API docs');
  for (const path of ['/docs/assets/swagger-ui-bundle.js', '/docs/assets/swagger-ui.css', '/static/swagger-init.js',
    '/openapi.json']) assert.ok(assets.includes(path), `${path} was loaded`);
  const csp = (await page.request.get(`${BASE_URL}/docs`)).headers()['content-security-policy'];
  assert.match(csp, /script-src 'self';/, 'no inline script allowed, and none needed');
  assert.ok(await page.locator('#operations-chat-chat').isVisible(), 'POST /chat is documented');
  assert.ok(await page.locator('#operations-conversations-listConversations').isVisible());
  assert.ok(await page.locator('button.authorize').first().isVisible(), 'the bearer scheme offers "Authorize"');
  await shot(page, 'docs.png');

  step('"Try it out" on POST /chat answers 200 with a reply, from the same server');
  const { status, request, text } = await tryChat(page, { prompt: 'echo: hello from the docs' });
  assert.equal(status, 200);
  assert.equal(new URL(request.url()).origin, BASE_URL);
  assert.match(text, /"reply": "hello from the docs"/);
  await page.locator('#operations-chat-chat').scrollIntoViewIfNeeded();
  await shot(page, 'docs-try.png', { fullPage: true });

  step('axe finds nothing serious on /docs with every operation open');
  const closed = await page.locator('.opblock:not(.is-open)').evaluateAll((all) => all.map((op) => op.id));
  assert.ok(closed.length > 5, `every other operation: ${closed}`);
  for (const id of closed) {
    await page.locator(`#${id} .opblock-summary-control`).click();
    await page.locator(`#${id} .opblock-body`).waitFor();
  }
  await checkAxe(page, '/docs');
  assert.deepEqual(problems, []);
  await context.close();
}

async function checkDocsWithKey(browser, problems) {
  step('with AUTH_MODE=keys: 401 until a key is entered through "Authorize" (bearer); then 200');
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  watch(page, problems, { expected: (resp) => resp.status() === 401 && new URL(resp.url()).pathname === '/chat' });
  await openDocs(page, KEYS_URL);
  const refused = await tryChat(page, { prompt: 'echo: no key yet' });
  assert.equal(refused.status, 401);
  assert.equal(refused.request.headers().authorization, undefined);

  await page.locator('.auth-wrapper button.authorize').click();
  const dialog = page.locator('.modal-ux');
  await dialog.locator('input#auth-bearer-value').waitFor();
  await checkAxe(page, '/docs "Authorize" dialog');
  await dialog.locator('input#auth-bearer-value').fill(API_KEY);
  await dialog.locator('button.modal-btn.authorize').click();
  await dialog.locator('button.btn-done').click();
  await dialog.waitFor({ state: 'detached' });
  const answered = await tryChat(page, { prompt: 'echo: the docs have a key' });
  assert.equal(answered.status, 200);
  assert.equal(answered.request.headers().authorization, `Bearer ${API_KEY}`);
  assert.match(answered.text, /"reply": "the docs have a key"/);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(API_KEY), 'the key is kept in the page, not in storage');
  // Swagger UI's own 401 log line is the one console error this step causes on purpose.
  const unexpected = problems.filter((p) => !/status of 401/.test(p));
  assert.deepEqual(unexpected, []);
  await context.close();
}

await run('docs page browser test', async (browser) => {
  await checkDocs(browser, []);
  await checkDocsWithKey(browser, []);
});
