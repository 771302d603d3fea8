// Streams a chat completion through a running tidegate gateway with the official `openai`
// client. The gateway's URL comes from TIDEGATE_URL (set by tests/integration/node_client_test.cc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.TIDEGATE_URL + '/v1';
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30000 });

test('streams a chat completion through the gateway', async () => {
  const stream = await client.chat.completions.create({
    model: 'lora-request',
    messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 8,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  let model = null;
  for await (const chunk of stream) {
    chunks += 1;
    model ??= chunk.model;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.ok(chunks >= 9, `expected a role chunk, 8 token chunks and usage, got ${chunks}`);
  assert.ok(text.length > 0);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 8);
  assert.match(model, /^(tweet-summary|sql-lora)/);
});

test('non-streaming completion and an OpenAI error', async () => {
  const r = await client.completions.create({ model: 'lora-request', prompt: 'x', max_tokens: 3 });
  assert.equal(r.usage.completion_tokens, 3);
  await assert.rejects(
    client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 3 }),
    (err) => err.status === 404 && err.error?.type === 'not_found_error',
  );
});
