// anthropic_sdk.test.mjs: the official Anthropic SDK (1.x sends the key as
// Bearer, 0.x as x-api-key) through the gateway to the fake upstream.
// Run by tests/integ/sdk_test.sh with GW_URL and GW_KEY set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import Anthropic0 from 'anthropic-sdk-0';

const baseURL = process.env.GW_URL;
const apiKey = process.env.GW_KEY;
const model = 'claude-sonnet-4-5';
const tools = [{
  name: 'Bash',
  description: 'run a command',
  input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
}];

const clients = [
  ['sdk 1.14 (Bearer)', new Anthropic({ apiKey, baseURL, maxRetries: 0 })],
  ['sdk 0.137 (x-api-key)', new Anthropic0({ apiKey, baseURL, maxRetries: 0 })],
];

for (const [name, client] of clients) {
  test(`${name}: non-stream message`, async () => {
    const m = await client.messages.create({
      model, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.model, model);
    assert.match(m.content[0].text, /fake upstream/);
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
  });

  test(`${name}: stream with text and usage`, async () => {
    const stream = client.messages.stream({
      model, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }],
    });
    const types = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    const m = await stream.finalMessage();
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.match(m.content[0].text, /fake upstream/);
    assert.ok(m.usage.output_tokens > 0);
    assert.equal(m.stop_reason, 'end_turn');
  });

  test(`${name}: tool_use round trip (streamed)`, async () => {
    const messages = [{ role: 'user', content: 'TOOL_TEST run echo' }];
    const first = await client.messages.stream({ model, max_tokens: 64, tools, messages }).finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use, 'a tool_use block');
    assert.equal(use.name, 'Bash');
    assert.equal(typeof use.input.command, 'string');
    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'ok' }] });
    const second = await client.messages.create({ model, max_tokens: 64, tools, messages });
    assert.equal(second.stop_reason, 'end_turn');
    assert.ok(second.content.some((b) => b.type === 'text'));
  });

  test(`${name}: count_tokens`, async () => {
    const r = await client.messages.countTokens({
      model, messages: [{ role: 'user', content: 'hello there' }],
    });
    assert.ok(r.input_tokens > 0);
  });

  test(`${name}: a bad key gets an AuthenticationError`, async () => {
    const bad = new client.constructor({ apiKey: 'sk-wrong', baseURL, maxRetries: 0 });
    await assert.rejects(
      bad.messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e.status === 401 && e.error?.error?.type === 'authentication_error');
  });
}

// Sticky sessions: 50 SDK requests carrying one Claude Code session id
// (metadata.user_id in its JSON form) all reach one upstream account.
test('sdk 1.14: 50 requests of one session stay on one account', async () => {
  const stats = async () => (await (await fetch(`${process.env.FAKE_URL}/_fake/stats`)).json()).keys;
  const count = (k, key) => (k[key] ? k[key].total : 0);
  const client = clients[0][1];
  const userId = JSON.stringify({
    device_id: 'a'.repeat(64), account_uuid: '', session_id: '5f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5',
  });
  const before = await stats();
  for (let i = 0; i < 50; i++) {
    await client.messages.create({
      model, max_tokens: 16, metadata: { user_id: userId },
      messages: [{ role: 'user', content: `turn ${i}` }],
    });
  }
  const after = await stats();
  const moved = ['sk-up-a', 'sk-up-b'].map((k) => count(after, k) - count(before, k)).sort((x, y) => x - y);
  assert.deepEqual(moved, [0, 50]);
});
