// The synchronous Batch Chat API, embeddings batches, and DashScope's dry-run test model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  createBatch,
  download,
  harness,
  raw,
  stats,
  statusOf,
  waitFor,
  type Harness,
  type ResultBody,
} from './helpers.ts';

describe('Batch Chat (synchronous)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ faults: { chatDelayMs: 200 } });
  });
  afterAll(() => h.close());

  it('holds the request for the queueing delay, then answers like a chat completion', async () => {
    const started = Date.now();
    const res = await h.client.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(res.choices[0]!.message.content).toBe('echo: Hello there');
    expect(res.usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    const again = await h.client.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'Hello there' }],
    });
    expect(again.choices[0]!.message.content).toBe(res.choices[0]!.message.content);
  });

  it('answers 404 for an unknown model and 400 without messages', async () => {
    expect(
      await statusOf(
        h.client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      ),
    ).toBe(404);
    expect(await statusOf(h.client.chat.completions.create({ model: 'qwen-plus' } as never))).toBe(400);
  });

  it('is subject to http faults on route chat', async () => {
    await raw(h.emu, 'POST', '/_emulator/faults', {
      chatDelayMs: 0,
      http: { rate: 1, statuses: [503], routes: ['chat'] },
    });
    expect(
      await statusOf(
        h.client.chat.completions.create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'x' }] }),
      ),
    ).toBe(503);
    expect(await statusOf(h.client.files.list())).toBe('ok');
    await raw(h.emu, 'POST', '/_emulator/faults', { chatDelayMs: 200 });
    expect((await stats(h.emu)).requests.chat).toBe(5);
  });

  it('serves the test model synchronously on /v1/chat/ds-test', async () => {
    const res = await fetch(`${h.emu.url}/chat/ds-test`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'batch-test-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = (await res.json()) as ResultBody;
    expect(body.choices[0]!.message.content).toBe('This is a test result.');
  });
});

describe('embeddings batch', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(() => h.close());

  it('returns a fixed-length unit vector per input, the same for the same text', async () => {
    const line = (id: string, input: unknown) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-v4', input },
      });
    const content = [line('a', 'hello'), line('b', 'world'), line('c', ['hello', 'again'])].join('\n');
    const b = await waitFor(
      h.client,
      (await createBatch(h.client, content, { endpoint: '/v1/embeddings' })).id,
    );
    expect(b.status).toBe('completed');
    const out = Object.fromEntries(
      (await download(h.client, b.output_file_id)).map((l) => [l.custom_id, l.response!.body]),
    );
    const vec = (id: string, i = 0): number[] => out[id]!.data[i]!.embedding;
    for (const v of [vec('a'), vec('b'), vec('c', 0), vec('c', 1)]) {
      expect(v).toHaveLength(16);
      expect(Math.hypot(...v)).toBeCloseTo(1, 4);
    }
    expect(vec('c', 0)).toEqual(vec('a'));
    expect(vec('b')).not.toEqual(vec('a'));
    expect(out.a!.object).toBe('list');
    expect(out.a!.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    const sync = await h.client.embeddings.create({
      model: 'text-embedding-v4',
      input: 'hello',
      encoding_format: 'float',
    });
    expect(sync.data[0]!.embedding).toEqual(vec('a'));
  });
});

describe('dry run with batch-test-model', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(() => h.close());

  const testLines = (url: string) =>
    [1, 2, 3].map((i) => chatLine(`d${i}`, `q${i}`, { model: 'batch-test-model', url })).join('\n');

  it('answers "This is a test result." with usage {20, 6, 26} on /v1/chat/ds-test', async () => {
    const b = await waitFor(
      h.client,
      (await createBatch(h.client, testLines('/v1/chat/ds-test'), { endpoint: '/v1/chat/ds-test' })).id,
    );
    expect(b.status).toBe('completed');
    const out = await download(h.client, b.output_file_id);
    expect(out).toHaveLength(3);
    for (const l of out) {
      expect(l.response!.body.choices[0]!.message.content).toBe('This is a test result.');
      expect(l.response!.body.usage).toEqual({ prompt_tokens: 20, completion_tokens: 6, total_tokens: 26 });
    }
  });

  it('fails every line with mismatched_test_url on /v1/chat/completions, and the batch completes', async () => {
    const b = await waitFor(h.client, (await createBatch(h.client, testLines('/v1/chat/completions'))).id);
    expect(b.status).toBe('completed');
    expect(b.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
    const errors = await download(h.client, b.error_file_id);
    expect(errors).toHaveLength(3);
    for (const l of errors) {
      expect(l.response!.status_code).toBe(400);
      expect(l.response!.body.error.code).toBe('mismatched_test_url');
    }
  });
});
