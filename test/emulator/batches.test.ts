// Batches API through the real openai client: the status machine, the result envelope and its
// deterministic content, create-time 400s, list paging and DashScope's filters, cancel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatFile,
  chatLine,
  createBatch,
  download,
  harness,
  stats,
  statusOf,
  upload,
  waitFor,
  type Harness,
} from './helpers.ts';

describe('a batch from create to completed', () => {
  let h: Harness;
  beforeAll(async () => {
    // Each state lasts 150 ms or more, so polling every 10 ms sees every one even on a busy machine.
    h = await harness({ faults: { validatingMs: 150, perLineMs: 5, finalizingMs: 250 } });
  });
  afterAll(() => h.close());

  it('moves validating → in_progress → finalizing → completed and keeps the metadata', async () => {
    const metadata = {
      ds_name: 'nightly run',
      ds_description: 'shard 0',
      'batchpilot-key': 'job/shard-0/round-0',
    };
    const created = await createBatch(h.client, chatFile(40), { metadata });
    expect(created).toMatchObject({
      object: 'batch',
      status: 'validating',
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata,
      errors: null,
      output_file_id: null,
      error_file_id: null,
      in_progress_at: null,
      completed_at: null,
    });
    expect(created.expires_at).toBe(created.created_at + 24 * 3600);
    const seen: string[] = [];
    let b = created;
    while (!['completed', 'failed'].includes(b.status)) {
      if (seen.at(-1) !== b.status) seen.push(b.status);
      await new Promise((r) => setTimeout(r, 10));
      b = await h.client.batches.retrieve(created.id);
    }
    seen.push(b.status);
    expect(seen).toEqual(['validating', 'in_progress', 'finalizing', 'completed']);
    expect(b.request_counts).toEqual({ total: 40, completed: 40, failed: 0 });
    for (const t of ['in_progress_at', 'finalizing_at', 'completed_at'] as const)
      expect(b[t]).toBeGreaterThan(0);
    expect(b.output_file_id).toMatch(/^file-batch_output-/);
    expect(b.error_file_id).toBeNull();
    expect(b.metadata).toEqual(metadata);
  });

  it('writes every line once in the provider envelope, with a deterministic echo and usage', async () => {
    const input = [
      chatLine('a', 'What is the capital of France?'),
      JSON.stringify({
        custom_id: 'b',
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'qwen-plus',
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'first' },
            { role: 'assistant', content: 'ok' },
            { role: 'user', content: [{ type: 'text', text: 'second question' }] },
          ],
        },
      }),
    ].join('\n');
    const first = await waitFor(h.client, (await createBatch(h.client, input)).id);
    const second = await waitFor(h.client, (await createBatch(h.client, input)).id);
    const [one, two] = [
      await download(h.client, first.output_file_id),
      await download(h.client, second.output_file_id),
    ];
    expect(one.map((l) => l.custom_id).sort()).toEqual(['a', 'b']);
    const a = one.find((l) => l.custom_id === 'a')!;
    expect(a.id).toMatch(/^batch_req_/);
    expect(a.error).toBeNull();
    expect(a.response!.status_code).toBe(200);
    expect(typeof a.response!.request_id).toBe('string');
    expect(a.response!.body).toMatchObject({
      object: 'chat.completion',
      model: 'qwen-plus',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'echo: What is the capital of France?' } },
      ],
    });
    // About one token per four characters: 30 prompt characters, 36 of answer.
    expect(a.response!.body.usage).toEqual({ prompt_tokens: 8, completion_tokens: 9, total_tokens: 17 });
    const b = one.find((l) => l.custom_id === 'b')!;
    expect(b.response!.body.choices[0]!.message.content).toBe('echo: second question');
    const content = (lines: typeof one) =>
      Object.fromEntries(lines.map((l) => [l.custom_id, l.response!.body.choices[0]!.message.content]));
    expect(content(two)).toEqual(content(one));
  });

  it('answers thinking models with reasoning content billed as output', async () => {
    const input = chatLine('t', 'think about this', { model: 'qwen3.6-plus' });
    const b = await waitFor(h.client, (await createBatch(h.client, input)).id);
    const [line] = await download(h.client, b.output_file_id);
    const body = line!.response!.body;
    expect(body.choices[0]!.message.reasoning_content).toContain('think about this');
    expect(body.usage.completion_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(body.usage.completion_tokens).toBeGreaterThan(
      body.usage.completion_tokens_details.reasoning_tokens,
    );
  });
});

describe('create refuses bad requests at once and creates nothing', () => {
  let h: Harness;
  let fileId: string;
  beforeAll(async () => {
    h = await harness();
    fileId = (await upload(h.client, chatFile(2))).id;
  });
  afterAll(() => h.close());

  const create = (body: Record<string, unknown>) =>
    h.client.batches.create({
      input_file_id: fileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      ...body,
    } as never);

  it('takes DashScope windows from 24h to 336h in hours or days', async () => {
    for (const w of ['24h', '72h', '336h', '1d', '14d'])
      expect(await statusOf(create({ completion_window: w }))).toBe('ok');
    for (const w of ['23h', '337h', '15d', '24', '1w', '', 24]) {
      const err = await create({ completion_window: w }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400, param: 'completion_window' });
    }
  });

  it('refuses an unknown endpoint, bad metadata and a missing or unknown input file', async () => {
    const created = (await stats(h.emu)).batchesCreated;
    expect(await create({ endpoint: '/v1/responses' }).catch((e: unknown) => e)).toMatchObject({
      status: 400,
      param: 'endpoint',
    });
    expect(await create({ metadata: { n: 1 } }).catch((e: unknown) => e)).toMatchObject({
      status: 400,
      param: 'metadata',
    });
    expect(await create({ metadata: 'x' }).catch((e: unknown) => e)).toMatchObject({
      status: 400,
      param: 'metadata',
    });
    expect(await statusOf(create({ metadata: { ds_name: 'x'.repeat(101) } }))).toBe(400);
    expect(await statusOf(create({ metadata: { ds_description: 'x'.repeat(201) } }))).toBe(400);
    expect(await statusOf(create({ metadata: { other: 'x'.repeat(513) } }))).toBe(400);
    expect(await statusOf(create({ input_file_id: undefined }))).toBe(400);
    expect(await create({ input_file_id: 'file-batch-nope' }).catch((e: unknown) => e)).toMatchObject({
      status: 404,
      param: 'input_file_id',
    });
    expect((await stats(h.emu)).batchesCreated).toBe(created);
    // The longest names DashScope takes are fine.
    expect(
      await statusOf(create({ metadata: { ds_name: 'x'.repeat(100), ds_description: 'y'.repeat(200) } })),
    ).toBe('ok');
    expect((await stats(h.emu)).batchesCreated).toBe(created + 1);
  });

  it('answers 404 for an unknown batch', async () => {
    expect(await statusOf(h.client.batches.retrieve('batch_unknown'))).toBe(404);
    expect(await statusOf(h.client.batches.cancel('batch_unknown'))).toBe(404);
  });
});

describe('list', () => {
  let h: Harness;
  const ids: string[] = [];
  const files: string[] = [];
  beforeAll(async () => {
    h = await harness({ faults: { validatingMs: 50, perLineMs: 1, finalizingMs: 50 } });
    for (let i = 0; i < 5; i++) {
      const f = await upload(h.client, i === 4 ? '' : chatFile(2, `l${i}`));
      files.push(f.id);
      const b = await h.client.batches.create({
        input_file_id: f.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { ds_name: i % 2 === 0 ? `Daily-Report-${i}` : `weekly-${i}` },
      });
      ids.push(b.id);
    }
    await Promise.all(ids.map((id) => waitFor(h.client, id)));
  });
  afterAll(() => h.close());

  const list = async (q: Record<string, unknown>) =>
    (await h.client.batches.list(q as never)).data.map((b) => b.id);

  it('pages newest first with after, limit and has_more', async () => {
    const page = await h.client.batches.list({ limit: 2 });
    expect(page.data.map((b) => b.id)).toEqual([ids[4], ids[3]]);
    expect(page.has_more).toBe(true);
    expect(await list({ limit: 2, after: ids[3] })).toEqual([ids[2], ids[1]]);
    const last = await h.client.batches.list({ limit: 2, after: ids[1] });
    expect(last.data.map((b) => b.id)).toEqual([ids[0]]);
    expect(last.has_more).toBe(false);
    const all: string[] = [];
    for await (const b of h.client.batches.list({ limit: 2 })) all.push(b.id);
    expect(all).toEqual([...ids].reverse());
    expect(await statusOf(h.client.batches.list({ limit: 101 }))).toBe(400);
  });

  it('filters by ds_name (fuzzy), input_file_ids, status and creation time', async () => {
    expect(await list({ ds_name: 'daily-report' })).toEqual([ids[4], ids[2], ids[0]]);
    expect(await list({ ds_name: 'WEEKLY' })).toEqual([ids[3], ids[1]]);
    expect(await list({ input_file_ids: `${files[1]},${files[3]}` })).toEqual([ids[3], ids[1]]);
    expect(await list({ status: 'failed' })).toEqual([ids[4]]);
    expect(await list({ status: 'completed,expired' })).toEqual([ids[3], ids[2], ids[1], ids[0]]);
    expect(await list({ status: 'failed,completed', ds_name: 'weekly', input_file_ids: files[1] })).toEqual([
      ids[1],
    ]);
    const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
    const hourAgo = stamp(new Date(Date.now() - 3_600_000));
    const hourAhead = stamp(new Date(Date.now() + 3_600_000));
    expect(await list({ create_after: hourAgo, create_before: hourAhead })).toHaveLength(5);
    expect(await list({ create_after: hourAhead })).toEqual([]);
    expect(await list({ create_before: hourAgo })).toEqual([]);
  });

  it('refuses malformed filters', async () => {
    expect(await statusOf(h.client.batches.list({ status: 'done' } as never))).toBe(400);
    expect(await statusOf(h.client.batches.list({ create_after: '2024-01-01' } as never))).toBe(400);
    const many = Array.from({ length: 21 }, (_, i) => `file-${i}`).join(',');
    expect(await statusOf(h.client.batches.list({ input_file_ids: many } as never))).toBe(400);
  });
});

describe('the openai profile', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ profile: 'openai' });
  });
  afterAll(() => h.close());

  it('takes only the 24h window and no ds-test endpoint, and ignores list filters', async () => {
    const f = await upload(h.client, chatFile(1));
    const create = (over: Record<string, unknown>) =>
      h.client.batches.create({
        input_file_id: f.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        ...over,
      } as never);
    expect(await statusOf(create({}))).toBe('ok');
    expect(await statusOf(create({ completion_window: '48h' }))).toBe(400);
    expect(await statusOf(create({ completion_window: '1d' }))).toBe(400);
    expect(await statusOf(create({ endpoint: '/v1/chat/ds-test' }))).toBe(400);
    const page = await h.client.batches.list({ status: 'failed', input_file_ids: 'file-none' } as never);
    expect(page.data).toHaveLength(1);
  });
});

describe('cancel', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ faults: { validatingMs: 50, perLineMs: 5, finalizingMs: 50 } });
  });
  afterAll(() => h.close());

  it('stops a running batch: cancelling, then cancelled with the lines done so far', async () => {
    const created = await createBatch(h.client, chatFile(300));
    let b = await waitFor(h.client, created.id, ['in_progress']);
    while (b.request_counts!.completed < 20) b = await h.client.batches.retrieve(created.id);
    const cancelling = await h.client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toBeGreaterThan(0);
    const done = await waitFor(h.client, created.id);
    expect(done.status).toBe('cancelled');
    expect(done.cancelled_at).toBeGreaterThan(0);
    expect(done.completed_at).toBeNull();
    const out = await download(h.client, done.output_file_id);
    expect(out.length).toBeGreaterThanOrEqual(20);
    expect(out.length).toBeLessThan(300);
    expect(done.request_counts).toEqual({ total: 300, completed: out.length, failed: 0 });
    expect(new Set(out.map((l) => l.custom_id)).size).toBe(out.length);
    // Cancelling a cancelled batch is accepted and changes nothing.
    expect(await h.client.batches.cancel(created.id)).toMatchObject({
      status: 'cancelled',
      cancelled_at: done.cancelled_at,
    });
  });

  it('cancels a batch still validating: no lines, no files', async () => {
    const created = await createBatch(h.client, chatFile(5));
    await h.client.batches.cancel(created.id);
    const done = await waitFor(h.client, created.id);
    expect(done).toMatchObject({
      status: 'cancelled',
      output_file_id: null,
      error_file_id: null,
      in_progress_at: null,
    });
  });

  it('answers 409 on a finished batch', async () => {
    const done = await waitFor(h.client, (await createBatch(h.client, chatFile(2))).id);
    expect(done.status).toBe('completed');
    const err = await h.client.batches.cancel(done.id).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 409 });
    expect((await h.client.batches.retrieve(done.id)).status).toBe('completed');
  });
});
