// What the browser specs share: Chromium, problem watching, steps, screenshots and axe-core.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const ARTIFACTS = process.env.ARTIFACTS || 'artifacts';
export const TIMEOUT = 15000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

mkdirSync(ARTIFACTS, { recursive: true });

let currentStep = '';

export function step(name) {
  currentStep = name;
  console.log(`- ${name}`);
}

export function launch() {
  // The machine has no network: nothing Chromium would fetch for itself may be tried.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export function shot(page, name, options = {}) {
  return page.screenshot({ path: join(ARTIFACTS, name), ...options });
}

/**
 * Collect what must never happen on a page: console errors (CSP refusals among them), page errors,
 * failed requests, dialogs, requests to other origins, and error statuses outside `expected`.
 */
export function watch(page, problems, { expected = () => false } = {}) {
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText}) `
    + `during "${currentStep}"`));
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('request', (req) => {
    // Every server under test listens on 127.0.0.1; data: and blob: URLs never leave the page.
    const url = new URL(req.url());
    if (['http:', 'https:'].includes(url.protocol) && url.hostname !== '127.0.0.1') {
      problems.push(`outside request: ${req.url()}`);
    }
  });
  page.on('response', (resp) => {
    if (resp.status() >= 400 && !expected(resp)) problems.push(`${resp.status()} ${resp.request().method()} ${resp.url()}`);
  });
}

/** Run axe-core over the page as it is now; fail on any serious or critical violation. */
export async function checkAxe(page, label) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (an injected
  // <script> would be refused, as it should be).
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const summary = results.violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}) `
    + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '));
  for (const line of summary) console.log(`  axe ${label}: ${line}`);
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => v.id), [], `${label}: serious or critical accessibility violations`);
}

export async function run(name, body) {
  const browser = await launch();
  try {
    await body(browser);
    console.log(`${name} passed`);
  } finally {
    await browser.close();
  }
}
