// Official client libraries against a live chatgate, as their users write them: OpenAI's Node SDK, the
// Vercel AI SDK's default OpenAI model (which speaks the Responses API), and OpenAI's Node SDK inside a
// Chromium page served from another origin. Driven from tests/e2e/test_node_sdks.py; exits non-zero on failure.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, jsonSchema } from 'ai';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;            // chatgate, open mode, CORS_ORIGINS = ALLOWED_PAGE's origin
const ALLOWED_PAGE = process.env.ALLOWED_PAGE; // the cross-origin page, on an origin chatgate allows
const OTHER_PAGE = process.env.OTHER_PAGE;     // the same page on an origin it does not allow
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const passed = [];

async function check(name, body) {
  await body();
  passed.push(name);
}

const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'unused-in-open-mode', maxRetries: 0 });

await check('node sdk: chat with the developer role', async () => {
  const done = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'developer', content: 'Answer briefly.' }, { role: 'user', content: 'Tell me about Mars' }],
  });
  assert.match(done.choices[0].message.content, /following your system instructions/);
});

await check('node sdk: chat with newly accepted fields', async () => {
  const done = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'echo: ok' }], parallel_tool_calls: false,
    tools: [{ type: 'function', function: { name: 'noop' } }], store: false, metadata: { feature: 'faq' },
    reasoning_effort: 'low', verbosity: 'low', logprobs: true, top_logprobs: 1, prompt_cache_key: 'k',
    safety_identifier: 'h', service_tier: 'auto', max_completion_tokens: 50,
  });
  assert.equal(done.choices[0].message.content, 'ok');
});

await check('node sdk: responses.create', async () => {
  const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'echo: mail jane.doe@example.com' });
  assert.equal(response.status, 'completed');
  assert.equal(response.output_text, 'mail [EMAIL]');
});

await check('node sdk: responses streamed', async () => {
  const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'Tell me about Jupiter', stream: true });
  const kinds = [];
  let text = '';
  for await (const event of stream) {
    kinds.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
  }
  assert.equal(kinds[0], 'response.created');
  assert.equal(kinds.at(-1), 'response.completed');
  assert.match(text, /^\[offline model\] You asked about Jupiter/);
});

await check('node sdk: responses with a function tool', async () => {
  const response = await client.responses.create({
    model: 'gpt-4o-mini', input: 'call: get_weather {"city": "Paris"}',
    tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} }, strict: false }],
  });
  const call = response.output.find((item) => item.type === 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
});

await check('node sdk: embeddings (base64, decoded by the SDK)', async () => {
  const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'], dimensions: 8 });
  assert.equal(result.data.length, 2);
  assert.equal(result.data[0].embedding.length, 8);
  const norm = Math.sqrt(result.data[0].embedding.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5);
});

// The Vercel AI SDK: `openai('gpt-4o-mini')` is its default model, which calls POST /v1/responses.
const openai = createOpenAI({ baseURL: `${BASE}/v1`, apiKey: 'unused-in-open-mode' });

await check('vercel ai sdk: generateText with the default model', async () => {
  const { text, finishReason } = await generateText({ model: openai('gpt-4o-mini'), prompt: 'echo: hi bob@example.org' });
  assert.equal(text, 'hi [EMAIL]');
  assert.equal(finishReason, 'stop');
});

await check('vercel ai sdk: streamText with the default model', async () => {
  const result = streamText({ model: openai('gpt-4o-mini'), prompt: 'Tell me about Venus' });
  let text = '';
  for await (const piece of result.textStream) text += piece;
  assert.match(text, /^\[offline model\] You asked about Venus/);
  assert.ok((await result.usage).totalTokens > 0);
});

await check('vercel ai sdk: a tool call', async () => {
  const result = await generateText({
    model: openai('gpt-4o-mini'), prompt: 'call: get_weather {"city": "Rome"}',
    tools: { get_weather: tool({ description: 'Weather in a city', inputSchema: jsonSchema({ type: 'object',
      properties: { city: { type: 'string' } } }) }) },
  });
  assert.equal(result.toolCalls.length, 1);
  assert.equal(result.toolCalls[0].toolName, 'get_weather');
  assert.deepEqual(result.toolCalls[0].input, { city: 'Rome' });
});

// OpenAI's Node SDK in a browser page on another origin (dangerouslyAllowBrowser), through CORS.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });

  await check('browser sdk: chat, a stream, responses and embeddings from an allowed origin', async () => {
    await page.goto(`${ALLOWED_PAGE}?base=${encodeURIComponent(BASE)}`);
    await page.waitForFunction(() => window.results || window.failure, null, { timeout: 30000 });
    const failure = await page.evaluate(() => window.failure);
    assert.equal(failure, undefined, `page failed: ${failure}`);
    const results = await page.evaluate(() => window.results);
    assert.match(results.chat, /^\[offline model\]/);
    assert.equal(results.stream, results.chat);
    assert.equal(results.response, 'mail [EMAIL]');
    assert.equal(results.embedding, 8);
    assert.ok(results.requestId.length > 0, 'X-Request-ID is readable cross-origin');
    assert.deepEqual(consoleErrors, []);
  });

  await check('browser sdk: an origin chatgate does not list is refused by the browser', async () => {
    const other = await browser.newPage();
    await other.goto(`${OTHER_PAGE}?base=${encodeURIComponent(BASE)}`);
    await other.waitForFunction(() => window.results || window.failure, null, { timeout: 30000 });
    const failure = await other.evaluate(() => window.failure);
    assert.match(String(failure), /Connection error|Failed to fetch/);
  });
} finally {
  await browser.close();
}

console.log(JSON.stringify({ passed }));
