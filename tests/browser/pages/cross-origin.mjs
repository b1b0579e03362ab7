// A page the way a browser app would call chatgate: the official SDK, a key of the app's own, another origin.
import OpenAI from '../node_modules/openai/index.mjs';

const base = new URLSearchParams(location.search).get('base');
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'browser-demo-key', dangerouslyAllowBrowser: true,
                            maxRetries: 0 });

async function run() {
  const raw = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell me about Mars' }] })
    .withResponse();
  const chat = raw.data.choices[0].message.content;
  let stream = '';
  for await (const chunk of await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Tell me about Mars' }],
  })) {
    stream += chunk.choices[0]?.delta?.content || '';
  }
  const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'echo: mail jane.doe@example.com' });
  const embedded = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'a', dimensions: 8 });
  window.results = { chat, stream, response: response.output_text, embedding: embedded.data[0].embedding.length,
                     requestId: raw.response.headers.get('x-request-id') || '' };
  document.getElementById('out').textContent = JSON.stringify(window.results, null, 1);
}

run().catch((err) => { window.failure = `${err.name}: ${err.message}`; });
