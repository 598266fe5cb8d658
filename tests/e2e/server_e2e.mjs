// End-to-end checks of `mlx-serving serve` over real HTTP, run by server_e2e_test.cc:
//   node server_e2e.mjs SECTION BASE_URL SERVER_PID [API_KEY]
// Exits 0 when every check of SECTION passes; prints the failing check otherwise.
import assert from 'node:assert/strict';
import net from 'node:net';
import { createRequire } from 'node:module';

const [section, base, pidText, apiKey] = process.argv.slice(2);
const pid = Number(pidText);
const url = new URL(base);
const MODEL = 'default';

async function post(path, body, headers = {}) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* SSE or text */ }
  return { status: res.status, headers: res.headers, text, json };
}

async function get(path, headers = {}) {
  const res = await fetch(base + path, { headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* text */ }
  return { status: res.status, text, json, headers: res.headers };
}

// SSE text -> [{event, data}] (data parsed unless it is [DONE]).
function parseSse(text) {
  const events = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    let event = null; let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    events.push({ event, data: data === '[DONE]' ? data : JSON.parse(data) });
  }
  return events;
}

async function metric(name) {
  const { text } = await get('/metrics');
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(' ').pop());
}

async function waitFor(what, predicate, limitMs = 20000) {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`condition never became true: ${what}`);
}

function checkUsage(usage) {
  assert.equal(typeof usage.prompt_tokens, 'number');
  assert.equal(typeof usage.completion_tokens, 'number');
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

const chatBody = (extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content: 'Call me Ishmael.' }], max_tokens: 8, ...extra });

// The tools of the tool sections, and a validator of the JSON Schema subset they use (type,
// properties, required, additionalProperties: false, enum, integer bounds).
const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'London', 'Tokyo'] }, unit: { type: 'string', enum: ['c', 'f'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const timeSchema = {
  type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'London'] } }, required: ['city'], additionalProperties: false,
};
function checkSchema(value, schema, at) {
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : Number.isInteger(value) && schema.type === 'integer' ? 'integer' : typeof value;
  if (schema.type) assert.equal(type, schema.type, `${at}: type`);
  if (schema.enum) assert.ok(schema.enum.includes(value), `${at}: ${JSON.stringify(value)} not in enum`);
  if (schema.minimum !== undefined) assert.ok(value >= schema.minimum, `${at}: below minimum`);
  if (schema.maximum !== undefined) assert.ok(value <= schema.maximum, `${at}: above maximum`);
  if (schema.type === 'object') {
    for (const key of schema.required ?? []) assert.ok(key in value, `${at}: ${key} is required`);
    for (const [key, v] of Object.entries(value)) {
      if (schema.properties?.[key]) checkSchema(v, schema.properties[key], `${at}.${key}`);
      else assert.notEqual(schema.additionalProperties, false, `${at}: unexpected ${key}`);
    }
  }
}

const sections = {
  async routes() {
    let r = await get('/health');
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'healthy');
    // the KV pool of the model: blocks x block size tokens, sized at load
    assert.equal(r.json.kv_cache.length, 1);
    const pool = r.json.kv_cache[0];
    assert.equal(pool.model, MODEL);
    assert.equal(pool.block_size, 16);
    assert.ok(pool.blocks_total > 0 && pool.bytes > 0);
    assert.equal(pool.tokens_capacity, pool.blocks_total * pool.block_size);
    assert.equal(pool.blocks_used + pool.blocks_free, pool.blocks_total);
    assert.equal(await metric('mlxs_kv_blocks_total'), pool.blocks_total);
    assert.equal(await metric('mlxs_kv_cache_capacity_tokens'), pool.tokens_capacity);
    assert.equal(await metric('mlxs_kv_cache_size_bytes'), pool.bytes);
    r = await get('/v1/models');
    assert.equal(r.json.object, 'list');
    assert.deepEqual(r.json.data.map((m) => m.id), [MODEL]);
    assert.equal(r.json.data[0].object, 'model');
    assert.equal((await get('/v1/models/' + MODEL)).json.id, MODEL);
    assert.equal((await get('/v1/models/none')).status, 404);

    // chat, non-streaming, n = 2, seeded: the same seed gives the same choices
    r = await post('/v1/chat/completions', chatBody({ n: 2, seed: 7, temperature: 1 }));
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, /^chatcmpl-/);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(typeof r.json.created, 'number');
    assert.equal(r.json.model, MODEL);
    assert.equal(r.json.choices.length, 2);
    for (const [i, c] of r.json.choices.entries()) {
      assert.equal(c.index, i);
      assert.equal(c.message.role, 'assistant');
      assert.equal(typeof c.message.content, 'string');
      assert.ok(['stop', 'length'].includes(c.finish_reason));
    }
    checkUsage(r.json.usage);
    const again = await post('/v1/chat/completions', chatBody({ n: 2, seed: 7, temperature: 1 }));
    assert.deepEqual(again.json.choices.map((c) => c.message.content), r.json.choices.map((c) => c.message.content));

    // max_completion_tokens, stop, logprobs
    r = await post('/v1/chat/completions', chatBody({ max_tokens: null, max_completion_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.completion_tokens, 5);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    const content = r.json.choices[0].logprobs.content;
    assert.equal(content.length, 5);
    for (const t of content) {
      assert.equal(typeof t.token, 'string');
      assert.ok(t.logprob <= 0);
      assert.ok(Array.isArray(t.bytes));
      assert.equal(t.top_logprobs.length, 2);
    }
    const full = r.json.choices[0].message.content;
    const cut = full.trim().slice(1, 3);
    if (cut.length > 0) {
      const s = await post('/v1/chat/completions', chatBody({ max_tokens: 5, temperature: 0, stop: [cut] }));
      assert.equal(s.json.choices[0].finish_reason, 'stop', `stop ${JSON.stringify(cut)} in ${JSON.stringify(full)}`);
      assert.ok(!s.json.choices[0].message.content.includes(cut));
    }

    // chat, streaming with usage: every token is one event; the count matches usage
    r = await post('/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true }, max_tokens: 12 }));
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/event-stream/);
    let ev = parseSse(r.text);
    assert.equal(ev.at(-1).data, '[DONE]');
    const chunks = ev.slice(0, -1).map((e) => e.data);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
    const usage = chunks.at(-1).usage;
    assert.deepEqual(chunks.at(-1).choices, []);
    checkUsage(usage);
    const tokenEvents = chunks.filter((c) => c.choices.length && c.choices[0].delta.content !== undefined && !c.choices[0].delta.role);
    assert.equal(tokenEvents.length, usage.completion_tokens);
    assert.ok(['stop', 'length'].includes(chunks.at(-2).choices[0].finish_reason));

    // completions, non-streaming with legacy logprobs; streaming
    r = await post('/v1/completions', { model: MODEL, prompt: 'It was a dark', max_tokens: 4, logprobs: 2, temperature: 0 });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, /^cmpl-/);
    assert.equal(r.json.object, 'text_completion');
    const lp = r.json.choices[0].logprobs;
    assert.equal(lp.tokens.length, 4);
    assert.equal(lp.token_logprobs.length, 4);
    assert.equal(lp.top_logprobs.length, 4);
    assert.equal(lp.text_offset[0], 0);
    assert.equal(lp.tokens.join(''), r.json.choices[0].text);
    r = await post('/v1/completions', { model: MODEL, prompt: 'It was a dark', max_tokens: 4, temperature: 0, stream: true });
    ev = parseSse(r.text);
    assert.equal(ev.at(-1).data, '[DONE]');
    const streamed = ev.slice(0, -1).map((e) => e.data.choices[0].text).join('');
    assert.equal(streamed, lp.tokens.join(''));
    r = await post('/v1/completions', { model: MODEL, prompt: [0, 1132, 5290], max_tokens: 2 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.prompt_tokens, 3);

    // Anthropic messages, non-streaming and streaming (event order as Anthropic sends it)
    r = await post('/v1/messages', { model: MODEL, max_tokens: 6, system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }] }] });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, /^msg_/);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.role, 'assistant');
    assert.equal(r.json.content[0].type, 'text');
    assert.ok(['end_turn', 'max_tokens', 'stop_sequence'].includes(r.json.stop_reason));
    assert.equal(typeof r.json.usage.input_tokens, 'number');
    r = await post('/v1/messages', { model: MODEL, max_tokens: 6, stream: true, messages: [{ role: 'user', content: 'Hello' }] });
    ev = parseSse(r.text);
    const names = ev.map((e) => e.event);
    assert.deepEqual(names.slice(0, 3), ['message_start', 'content_block_start', 'ping']);
    assert.deepEqual(names.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    for (const e of ev) assert.equal(e.data.type, e.event);
    assert.equal(ev.at(-2).data.delta.stop_reason, 'max_tokens');
    assert.equal(ev.at(-2).data.usage.output_tokens, 6);
    // stop_sequences: the engine reports which one matched; the text ends right before it.
    const greedy = { model: MODEL, max_tokens: 16, temperature: 0, messages: [{ role: 'user', content: 'Call me Ishmael.' }] };
    r = await post('/v1/messages', greedy);
    const greedyText = r.json.content[0].text;
    assert.ok(greedyText.length >= 8, greedyText);
    const stop = greedyText.slice(4, 7);
    r = await post('/v1/messages', { ...greedy, stop_sequences: ['zz-never-zz', stop] });
    assert.equal(r.json.stop_reason, 'stop_sequence', r.text);
    assert.equal(r.json.stop_sequence, stop);
    assert.equal(r.json.content[0].text, greedyText.slice(0, greedyText.indexOf(stop)));

    // tokenizer routes round-trip
    r = await post('/tokenize', { model: MODEL, prompt: 'Hello world', add_special_tokens: false });
    assert.equal(r.json.count, r.json.tokens.length);
    const d = await post('/detokenize', { model: MODEL, tokens: r.json.tokens });
    assert.equal(d.json.prompt, 'Hello world');

    // metrics exposition has the families
    const m = (await get('/metrics')).text;
    for (const name of ['mlxs_num_requests_running', 'mlxs_num_requests_waiting', 'mlxs_kv_blocks_used',
      'mlxs_kv_blocks_total', 'mlxs_prefix_cache_hit_rate', 'mlxs_prompt_tokens_total', 'mlxs_generation_tokens_total',
      'mlxs_time_to_first_token_seconds_bucket', 'mlxs_inter_token_latency_seconds_bucket',
      'mlxs_e2e_request_latency_seconds_count', 'mlxs_http_requests_total', 'mlxs_request_errors_total']) {
      assert.ok(m.includes(name), `metrics lack ${name}`);
    }
    assert.ok(m.includes('mlxs_http_requests_total{route="/v1/chat/completions",status="200"}'));
  },

  async errors() {
    const bad = async (body, status, param, raw = false) => {
      const r = await post('/v1/chat/completions', raw ? body : body);
      assert.equal(r.status, status, r.text);
      assert.equal(typeof r.json.error.message, 'string');
      assert.ok('type' in r.json.error && 'param' in r.json.error && 'code' in r.json.error);
      if (param !== undefined) assert.equal(r.json.error.param, param, r.text);
      return r.json.error;
    };
    let e = await bad('{"model": "default", "messages": [', 400, null, true);
    assert.match(e.message, /not valid JSON/);
    e = await bad(chatBody({ temperature: 'hot' }), 400, 'temperature');
    assert.match(e.message, /Validation error on field 'temperature': expected number, got string/);
    e = await bad(chatBody({ temperature: 5 }), 400, 'temperature');
    assert.match(e.message, /must be >= 0 and <= 2, got 5/);
    await bad(chatBody({ max_tokens: 'ten' }), 400, 'max_tokens');
    await bad(chatBody({ n: 0 }), 400, 'n');
    await bad(chatBody({ messages: 'hi' }), 400, 'messages');
    await bad(chatBody({ messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages.0.role');
    e = await bad(chatBody({ frobnicate: 1 }), 400, 'frobnicate');
    assert.match(e.message, /unknown field/);
    await bad(chatBody({ tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }), 400, 'tools[0].function.parameters');
    await bad(chatBody({ tools: [{ type: 'retrieval' }] }), 400, 'tools[0].type');
    await bad(chatBody({ response_format: { type: 'json_schema', json_schema: {} } }), 400, 'response_format.json_schema.name');
    await bad(chatBody({ functions: [{ name: 'f' }] }), 400, 'functions');
    await bad(chatBody({ logit_bias: { 1: 5 } }), 400, 'logit_bias');
    e = await bad(chatBody({ model: 'nope' }), 404, 'model');
    assert.equal(e.code, 'model_not_found');
    // nulls and harmless fields are accepted
    let r = await post('/v1/chat/completions', chatBody({ temperature: null, top_p: null, user: 'u1', stream: false, n: 1, tools: [], tool_choice: 'none', response_format: { type: 'text' } }));
    assert.equal(r.status, 200, r.text);
    // invalid UTF-8 inside a JSON string
    const prefix = Buffer.from('{"model":"default","messages":[{"role":"user","content":"');
    r = await post('/v1/chat/completions', Buffer.concat([prefix, Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('"}]}')]));
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /UTF-8/);
    // a content array nested 300,000 deep (~600 KB) used to overflow the stack when copied
    const deep = '['.repeat(300000) + ']'.repeat(300000);
    e = await bad(`{"model":"default","messages":[{"role":"user","content":${deep}}]}`, 400, null, true);
    assert.match(e.message, /server.max_json_depth \(64\)/);
    // token ids were read with get<int32_t>(): 4294967361 came back as token 65
    r = await post('/detokenize', `{"model":"${MODEL}","tokens":[4294967361]}`);
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /<= 2147483647, got 4294967361/);
    // a body over server.max_body_bytes (set to 1 MiB by the test)
    r = await post('/v1/completions', JSON.stringify({ model: MODEL, prompt: 'a'.repeat(2 << 20) }));
    assert.equal(r.status, 413);
    // routes and methods
    r = await get('/v2/nothing');
    assert.equal(r.status, 404);
    r = await get('/v1/chat/completions');
    assert.equal(r.status, 405);
    // Anthropic error shape
    r = await post('/v1/messages', { model: MODEL, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, /max_tokens/);
    r = await post('/v1/messages', { model: 'nope', max_tokens: 3, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.type, 'not_found_error');
    // context overflow is a 400 naming the limit
    r = await post('/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 5000 });
    assert.equal(r.status, 400);
    // none of that hurt the server: a good request still works
    r = await post('/v1/chat/completions', chatBody());
    assert.equal(r.status, 200);
    // pipelining: two requests in one write are answered in order on one connection
    const both = await rawExchange(
      `POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"prompt":"one"}\n` +
      `GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const statuses = [...both.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200'], both);
    assert.ok(both.indexOf('"tokens"') < both.indexOf('"status"'));
    assert.ok((await metric('mlxs_request_errors_total')) >= 1);
  },

  async auth() {
    let r = await post('/v1/chat/completions', chatBody());
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
    r = await post('/v1/chat/completions', chatBody(), { authorization: 'Bearer wrong' });
    assert.equal(r.status, 401);
    r = await post('/v1/chat/completions', chatBody(), { authorization: `Bearer ${apiKey}` });
    assert.equal(r.status, 200);
    r = await post('/v1/messages', { model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }, { 'x-api-key': apiKey });
    assert.equal(r.status, 200);
    r = await post('/v1/messages', { model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.json.error.type, 'authentication_error');
    assert.equal((await get('/health')).status, 200);
  },

  async sdk() {
    const require = createRequire(process.env.MLXS_E2E_NODE_MODULES + '/');
    const OpenAI = require('openai');
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused' });
    const models = await client.models.list();
    assert.equal(models.data[0].id, MODEL);
    const chat = await client.chat.completions.create(chatBody({ max_tokens: 6 }));
    assert.equal(chat.choices[0].message.role, 'assistant');
    assert.equal(chat.usage.completion_tokens, 6);
    const stream = await client.chat.completions.create(chatBody({ max_tokens: 6, stream: true, stream_options: { include_usage: true } }));
    let text = ''; let usage = null; let finish = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(usage.completion_tokens, 6);
    assert.equal(finish, 'length');
    const done = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 4 });
    assert.equal(done.object, 'text_completion');
    await assert.rejects(client.chat.completions.create(chatBody({ temperature: 9 })),
      (err) => err.status === 400 && /temperature/.test(err.message));
    await assert.rejects(client.chat.completions.create(chatBody({ model: 'nope' })), (err) => err.status === 404);

    const Anthropic = require('@anthropic-ai/sdk');
    const claude = new Anthropic({ baseURL: base, apiKey: 'unused' });
    const msg = await claude.messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(msg.type, 'message');
    assert.equal(msg.usage.output_tokens, 5);
    const ms = claude.messages.stream({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
    let deltas = '';
    ms.on('text', (t) => { deltas += t; });
    const final = await ms.finalMessage();
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.content[0].text, deltas);
  },

  // Issue 21 item 6: what the current majors of the official clients trip on.
  async clients_current() {
    const require = createRequire(process.env.MLXS_E2E_NODE_MODULES + '/');
    const { OpenAI } = require('openai-current');
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused' });
    const chat = await client.chat.completions.create(chatBody({
      max_tokens: 3, prompt_cache_key: 'k', prompt_cache_retention: '24h', safety_identifier: 's',
      verbosity: null, store: false, metadata: { a: 'b' }, service_tier: 'auto',
    }));
    assert.equal(chat.usage.completion_tokens, 3);
    await assert.rejects(client.chat.completions.create(chatBody({ verbosity: 'low' })),
      (err) => err.status === 400 && err.param === 'verbosity');
    const long = 'hello '.repeat(5000);
    await assert.rejects(client.chat.completions.create(chatBody({ messages: [{ role: 'user', content: long }] })),
      (err) => err.status === 400 && err.code === 'context_length_exceeded');

    const { Anthropic } = require('anthropic-current');
    const claude = new Anthropic({ baseURL: base, apiKey: 'unused' });
    const counted = await claude.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }] });
    assert.ok(counted.input_tokens > 0, JSON.stringify(counted));
    const msg = await claude.messages.create({ model: MODEL, max_tokens: 3, thinking: { type: 'disabled' },
      service_tier: 'auto', metadata: { user_id: 'u' }, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(msg.usage.input_tokens, counted.input_tokens);
    const page = await claude.models.list();
    assert.equal(page.data[0].type, 'model');
    assert.equal(page.data[0].display_name, MODEL);
    assert.match(page.data[0].created_at, /^\d{4}-\d\d-\d\dT/);
    await assert.rejects(claude.messages.create({ model: MODEL, max_tokens: 3, messages: [{ role: 'user', content: long }] }),
      (err) => err.status === 400 && err.error.error.type === 'invalid_request_error' && /prompt is too long/.test(err.message));
    // an unknown path under /v1/messages answers in Anthropic's shape
    const r = await post('/v1/messages/batches', {});
    assert.equal(r.status, 404);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'not_found_error');
    // curl's Expect: 100-continue (sent with bodies over 1 MiB) gets its 100 at once
    const sock = net.connect(Number(url.port), url.hostname);
    const body = JSON.stringify(chatBody({ max_tokens: 1 }));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
    const first = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no 100 Continue within 500 ms')), 500);
      sock.once('data', (d) => { clearTimeout(timer); resolve(d.toString()); });
    });
    assert.match(first, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
    let rest = first.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
    sock.on('data', (d) => { rest += d.toString(); });
    sock.write(body);
    await new Promise((resolve) => sock.on('close', resolve));
    assert.match(rest, /^HTTP\/1\.1 200/);
  },

  // Issue 21 item 3: the Ollama API with the official ollama client.
  async ollama() {
    const require = createRequire(process.env.MLXS_E2E_NODE_MODULES + '/');
    const { Ollama } = require('ollama');
    const ollama = new Ollama({ host: base });
    const tags = await ollama.list();
    assert.equal(tags.models[0].name, MODEL);
    const shown = await ollama.show({ model: MODEL });
    assert.ok(shown.capabilities.includes('completion'));
    assert.equal((await ollama.ps()).models[0].model, MODEL);
    assert.equal(typeof (await ollama.version()).version, 'string');
    const messages = [{ role: 'user', content: 'Call me Ishmael.' }];
    const chat = await ollama.chat({ model: MODEL + ':latest', messages, stream: false, options: { num_predict: 5, temperature: 0, seed: 3 } });
    assert.equal(chat.done, true);
    assert.equal(chat.done_reason, 'length');
    assert.equal(chat.eval_count, 5);
    assert.equal(chat.message.role, 'assistant');
    let text = ''; let last = null; let parts = 0;
    for await (const part of await ollama.chat({ model: MODEL, messages, stream: true, options: { num_predict: 5, temperature: 0, seed: 3 } })) {
      text += part.message.content; last = part; parts += 1;
    }
    assert.equal(last.done, true);
    assert.equal(last.eval_count, 5);
    assert.ok(parts >= 2);
    assert.equal(text, chat.message.content);  // greedy: the same answer streamed or not
    const gen = await ollama.generate({ model: MODEL, prompt: 'Once upon a time', system: 'Be brief.', options: { num_predict: 4 } , stream: false });
    assert.equal(gen.eval_count, 4);
    assert.equal(typeof gen.response, 'string');
    let streamed = 0;
    for await (const part of await ollama.generate({ model: MODEL, prompt: 'Once upon a time', raw: true, options: { num_predict: 4 }, stream: true })) {
      if (!part.done) streamed += 1; else assert.equal(part.eval_count, 4);
    }
    assert.ok(streamed >= 1);
    const json = await ollama.chat({ model: MODEL, messages, format: 'json', stream: false, options: { num_predict: 64 } });
    if (json.done_reason === 'stop') assert.equal(typeof JSON.parse(json.message.content), 'object');
    await assert.rejects(ollama.chat({ model: MODEL, messages, options: { mirostat: 2 } }),
      (err) => err.status_code === 400 && /options\.mirostat/.test(err.error));
    await assert.rejects(ollama.generate({ model: MODEL, prompt: 'x', template: '{{ .Prompt }}' }),
      (err) => err.status_code === 400 && /template/.test(err.error));
    await assert.rejects(ollama.chat({ model: 'nope', messages }), (err) => err.status_code === 404);
    const unknown = await get('/api/pull');
    assert.equal(unknown.status, 404);
    assert.equal(typeof unknown.json.error, 'string');
    // NDJSON by default, without the client
    const raw = await post('/api/generate', { model: MODEL, prompt: 'Hi', options: { num_predict: 2 } });
    assert.match(raw.headers.get('content-type'), /application\/x-ndjson/);
    const lines = raw.text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.at(-1).done, true);
  },

  // Issue 21 item 3: the Responses API with the official openai client.
  async responses() {
    const require = createRequire(process.env.MLXS_E2E_NODE_MODULES + '/');
    const { OpenAI } = require('openai-current');
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused' });
    const first = await client.responses.create({ model: MODEL, instructions: 'Be brief.', input: 'Call me Ishmael.', max_output_tokens: 5, temperature: 0 });
    assert.equal(first.object, 'response');
    assert.equal(first.status, 'incomplete');
    assert.equal(first.incomplete_details.reason, 'max_output_tokens');
    assert.equal(first.usage.output_tokens, 5);
    assert.equal(typeof first.output_text, 'string');
    assert.equal(first.instructions, 'Be brief.');
    // streamed: the events in order, the deltas adding up to the final text
    const stream = await client.responses.create({ model: MODEL, input: [{ role: 'user', content: 'Call me Ishmael.' }], max_output_tokens: 5, temperature: 0, stream: true });
    const types = []; let deltas = ''; let done = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
      if (event.type === 'response.incomplete' || event.type === 'response.completed') done = event.response;
    }
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
    assert.equal(done.output[0].content[0].text, deltas);
    // previous_response_id continues the stored conversation; the store answers GET
    const second = await client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'And then?', max_output_tokens: 3 });
    assert.equal(second.previous_response_id, first.id);
    assert.ok(second.usage.input_tokens > first.usage.input_tokens);
    const again = await client.responses.retrieve(first.id);
    assert.equal(again.output_text, first.output_text);
    await assert.rejects(client.responses.create({ model: MODEL, previous_response_id: 'resp_nope', input: 'x' }),
      (err) => err.status === 400 && err.param === 'previous_response_id');
    await assert.rejects(client.responses.retrieve('resp_nope'), (err) => err.status === 404);
    // text.format json_schema goes through structured output
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
    const structured = await client.responses.create({ model: MODEL, input: 'Answer in JSON.', max_output_tokens: 100,
      text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } } });
    if (structured.status === 'completed') assert.equal(typeof JSON.parse(structured.output_text).ok, 'boolean');
    await assert.rejects(client.responses.create({ model: MODEL, input: 'x', reasoning: { effort: 'high' } }),
      (err) => err.status === 400 && /reasoning/.test(err.message));
  },

  // Run with server.responses_store_size: 1: the second response pushes the first out.
  async responses_store() {
    const body = { model: MODEL, input: 'Hi', max_output_tokens: 2 };
    const first = await post('/v1/responses', body);
    const second = await post('/v1/responses', body);
    assert.equal(second.status, 200);
    assert.equal((await get('/v1/responses/' + first.json.id)).status, 404);
    assert.equal((await get('/v1/responses/' + second.json.id)).status, 200);
    const gone = await post('/v1/responses', { ...body, previous_response_id: first.json.id });
    assert.equal(gone.status, 400);
    assert.equal(gone.json.error.code, 'previous_response_not_found');
    const kept = await post('/v1/responses', { ...body, previous_response_id: second.json.id, store: false });
    assert.equal(kept.status, 200);
    assert.equal((await get('/v1/responses/' + kept.json.id)).status, 404);  // store: false
  },

  // A full tool round trip with the official clients: the request forces a call (a named tool or
  // `required`), so the grammar makes even the tiny default model write a valid one; its
  // arguments are checked against the tool's schema; the result goes back; a final answer comes.
  // Needs the engine's constrained decoding (GeneratorParams.structured).
  async tools() {
    const require = createRequire(process.env.MLXS_E2E_NODE_MODULES + '/');
    const OpenAI = require('openai');
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused' });
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const tools = [
      { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherSchema } },
      { type: 'function', function: { name: 'get_time', description: 'The time in a city', parameters: timeSchema } },
    ];
    const named = { type: 'function', function: { name: 'get_weather' } };
    const forced = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: named, parallel_tool_calls: false, max_tokens: 200, temperature: 0 });
    const choice = forced.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice));
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, 'get_weather');
    checkSchema(JSON.parse(call.function.arguments), weatherSchema, 'arguments');

    // The result goes back; tool_choice none: the model answers in text.
    const followUp = [...messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 18}' }];
    const answer = await client.chat.completions.create({ model: MODEL, messages: followUp, tools, tool_choice: 'none', max_tokens: 8 });
    assert.equal(typeof answer.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(answer.choices[0].finish_reason));
    assert.equal(answer.choices[0].message.tool_calls, undefined);

    // required, streamed: deltas with the index, then the id and name, then the arguments. One
    // call (parallel_tool_calls false), so the grammar ends after it and the stop is certain.
    const stream = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, temperature: 0, stream: true });
    const calls = []; let finish = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        for (const d of c.delta.tool_calls ?? []) {
          if (d.id) calls[d.index] = { id: d.id, name: d.function.name, arguments: d.function.arguments ?? '' };
          else calls[d.index].arguments += d.function.arguments;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 1);
    assert.match(calls[0].id, /^call_/);
    assert.ok(['get_weather', 'get_time'].includes(calls[0].name), calls[0].name);
    checkSchema(JSON.parse(calls[0].arguments), calls[0].name === 'get_weather' ? weatherSchema : timeSchema, 'streamed arguments');

    const Anthropic = require('@anthropic-ai/sdk');
    const claude = new Anthropic({ baseURL: base, apiKey: 'unused' });
    const claudeTools = [{ name: 'get_weather', description: 'The weather in a city', input_schema: weatherSchema }];
    const use = await claude.messages.create({ model: MODEL, max_tokens: 200, temperature: 0, messages, tools: claudeTools, tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true } });
    assert.equal(use.stop_reason, 'tool_use', JSON.stringify(use));
    const block = use.content.find((b) => b.type === 'tool_use');
    assert.equal(block.name, 'get_weather');
    assert.match(block.id, /^toolu_/);
    checkSchema(block.input, weatherSchema, 'input');
    const final = await claude.messages.create({
      model: MODEL, max_tokens: 8, tools: claudeTools, tool_choice: { type: 'none' },
      messages: [...messages, { role: 'assistant', content: use.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: block.id, content: '18 degrees' }] }],
    });
    assert.equal(final.content[0].type, 'text');
    assert.ok(['end_turn', 'max_tokens'].includes(final.stop_reason));

    // Streamed: the SDK assembles the input from the input_json_delta events.
    const ms = claude.messages.stream({ model: MODEL, max_tokens: 200, temperature: 0, messages, tools: claudeTools, tool_choice: { type: 'any', disable_parallel_tool_use: true } });
    const streamed = await ms.finalMessage();
    assert.equal(streamed.stop_reason, 'tool_use');
    const sblock = streamed.content.find((b) => b.type === 'tool_use');
    checkSchema(sblock.input, weatherSchema, 'streamed input');
  },

  // What works without constrained decoding: tools offered with tool_choice auto (the default
  // model's template has no tools: the server's Hermes fallback), tool messages in the
  // conversation, and the validation errors.
  async tools_auto() {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: weatherSchema } }];
    let r = await post('/v1/chat/completions', chatBody({ tools, tool_choice: 'auto' }));
    assert.equal(r.status, 200, r.text);
    assert.ok(['stop', 'length', 'tool_calls'].includes(r.json.choices[0].finish_reason));
    r = await post('/v1/chat/completions', chatBody({
      tools,
      messages: [{ role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '18' }],
    }));
    assert.equal(r.status, 200, r.text);
    r = await post('/v1/chat/completions', chatBody({ tools: [{ type: 'function', function: { name: 'f', parameters: 3 } }] }));
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'tools[0].function.parameters');
    r = await post('/v1/messages', { model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'f' }] });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /tools\[0\]\.input_schema/);

    // Streams with tools offered, through the official clients: text blocks open as text comes.
    const require = createRequire(process.env.MLXS_E2E_NODE_MODULES + '/');
    const Anthropic = require('@anthropic-ai/sdk');
    const claude = new Anthropic({ baseURL: base, apiKey: 'unused' });
    const ms = claude.messages.stream({ model: MODEL, max_tokens: 6, messages: [{ role: 'user', content: 'Hi' }], tools: [{ name: 'get_weather', input_schema: weatherSchema }] });
    let deltas = '';
    ms.on('text', (t) => { deltas += t; });
    const final = await ms.finalMessage();
    const text = final.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    assert.equal(text, deltas);
    assert.ok(['max_tokens', 'end_turn', 'tool_use'].includes(final.stop_reason));
    const OpenAI = require('openai');
    const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused' });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], tools, max_tokens: 6, stream: true });
    let finish = null;
    for await (const chunk of stream) for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
    assert.ok(['length', 'stop', 'tool_calls'].includes(finish));
  },

  async disconnect() {
    const kvBefore = await metric('mlxs_kv_blocks_used');
    // streaming: read a few events, then vanish
    await abandonAfter({ model: MODEL, prompt: 'Call me Ishmael.', max_tokens: 1500, stream: true }, 3);
    await waitFor('running == 0 after a streaming disconnect', async () => (await metric('mlxs_num_requests_running')) === 0);
    await waitFor('KV blocks back to their level', async () => (await metric('mlxs_kv_blocks_used')) === kvBefore);
    // non-streaming: the server notices through its pending read
    await abandonAfter({ model: MODEL, prompt: 'Call me Ishmael.', max_tokens: 1500 }, 0);
    await waitFor('running == 0 after a non-streaming disconnect', async () => (await metric('mlxs_num_requests_running')) === 0);
    await waitFor('KV blocks back again', async () => (await metric('mlxs_kv_blocks_used')) === kvBefore);
    assert.equal(await metric('mlxs_active_streams'), 0);
    const m = (await get('/metrics')).text;
    assert.match(m, /mlxs_http_requests_total\{route="\/v1\/completions",status="499"\} 2/);
  },

  // The server runs with stream_registry.max_active_streams = 1: a second concurrent generation
  // is refused with 429 and Retry-After, in each API's error shape; the first is unaffected.
  async capacity() {
    const text = JSON.stringify({ model: MODEL, prompt: 'Call me Ishmael.', max_tokens: 1500, stream: true });
    let acc = '';
    const sock = net.connect(Number(url.port), url.hostname, () => {
      sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    });
    sock.on('data', (d) => { acc += d.toString(); });
    sock.on('error', () => {});
    await waitFor('the first stream is running', async () => (acc.match(/data: /g) || []).length >= 2);
    let r = await post('/v1/chat/completions', chatBody());
    assert.equal(r.status, 429, r.text);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.match(r.json.error.message, /max_active_streams/);
    r = await post('/v1/messages', { model: MODEL, max_tokens: 3, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const events = (acc.match(/data: /g) || []).length;
    await waitFor('the first stream goes on', async () => (acc.match(/data: /g) || []).length > events + 2);
    sock.destroy();
    await waitFor('the slot is free again', async () => (await metric('mlxs_active_streams')) === 0);
    r = await post('/v1/chat/completions', chatBody());
    assert.equal(r.status, 200, r.text);
  },

  async sigterm() {
    const events = [];
    const body = JSON.stringify({ model: MODEL, prompt: 'Call me Ishmael.', max_tokens: 1500, stream: true });
    const text = await new Promise((resolve, reject) => {
      let acc = ''; let killed = false;
      const sock = net.connect(Number(url.port), url.hostname, () => {
        sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
      sock.on('data', (d) => {
        acc += d.toString();
        if (!killed && (acc.match(/data: /g) || []).length >= 3) {
          killed = true;
          process.kill(pid, 'SIGTERM');
        }
      });
      sock.on('end', () => resolve(acc));
      sock.on('error', reject);
    });
    assert.ok(text.includes('data: [DONE]'), 'the stream ends with [DONE]');
    assert.ok(text.endsWith('0\r\n\r\n'), 'the chunked body is terminated');
    assert.match(text, /"finish_reason":"(cancelled|length|stop)"/);
    events.push(text.length);
  },
};

async function rawExchange(payload) {
  return new Promise((resolve, reject) => {
    let acc = '';
    const sock = net.connect(Number(url.port), url.hostname, () => sock.write(payload));
    sock.on('data', (d) => { acc += d.toString(); });
    sock.on('end', () => resolve(acc));
    sock.on('error', reject);
  });
}

// Sends `body` to /v1/completions, waits for `events` SSE events (0: for the request to reach
// the engine), then destroys the socket.
async function abandonAfter(body, events) {
  const text = JSON.stringify(body);
  const before = await metric('mlxs_requests_finished_total');
  await new Promise((resolve, reject) => {
    let acc = '';
    const sock = net.connect(Number(url.port), url.hostname, () => {
      sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
      if (events === 0) {
        waitFor('the request is running', async () => (await metric('mlxs_num_requests_running')) === 1)
          .then(() => { sock.destroy(); resolve(); }, reject);
      }
    });
    sock.on('data', (d) => {
      acc += d.toString();
      if (events > 0 && (acc.match(/data: /g) || []).length >= events) { sock.destroy(); resolve(); }
    });
    sock.on('error', () => {});
  });
  await waitFor('the abandoned request finished', async () => (await metric('mlxs_requests_finished_total')) > before);
}

const run = sections[section];
if (!run) { console.error(`unknown section ${section}`); process.exit(2); }
try {
  await run();
  console.log(`e2e ${section}: ok`);
} catch (err) {
  console.error(`e2e ${section}: FAILED\n`, err);
  process.exit(1);
}
