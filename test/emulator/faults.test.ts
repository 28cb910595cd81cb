// Seeded faults: HTTP errors by route, line failures that depend only on seed, custom_id and
// attempt, expiry, whole-batch failure, the DashScope quirks, run-time settings and the stats.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import {
  FAST,
  chatFile,
  chatLine,
  clientFor,
  createBatch,
  download,
  harness,
  faultsOf,
  raw,
  stats,
  statusOf,
  upload,
  waitFor,
  type Harness,
  type ResultLine,
} from './helpers.ts';

const open: Harness[] = [];
async function emulator(faults: FaultSettings, more: Parameters<typeof harness>[0] = {}): Promise<Harness> {
  const h = await harness({ faults: { ...FAST, ...faults }, ...more });
  open.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

/** custom_id → what happened to it: a status code, or the error code of a non-HTTP failure. */
async function outcomes(h: Harness, batchId: string): Promise<Record<string, string>> {
  const b = await waitFor(h.client, batchId);
  const lines = [
    ...(await download(h.client, b.output_file_id)),
    ...(await download(h.client, b.error_file_id)),
  ];
  return Object.fromEntries(lines.map((l) => [l.custom_id, describeLine(l)]));
}
function describeLine(l: ResultLine): string {
  if (l.response) return String(l.response.status_code);
  return String(l.error?.code ?? l.error?.error_code);
}
const counts = (o: Record<string, string>) =>
  Object.values(o).reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {});

describe('http faults', () => {
  it('hit only the listed routes with the listed statuses', async () => {
    const h = await emulator({ http: { rate: 1, statuses: [503], routes: ['retrieve', 'list'] } });
    const b = await createBatch(h.client, chatFile(2));
    expect(await statusOf(h.client.batches.retrieve(b.id))).toBe(503);
    expect(await statusOf(h.client.batches.list())).toBe(503);
    expect(await statusOf(h.client.files.list())).toBe('ok');
    expect(await statusOf(h.client.batches.cancel(b.id))).toBe('ok');
  });

  it('are the same sequence for the same seed, and another for another seed', async () => {
    const run = async (seed: number) => {
      const h = await emulator({ seed, http: { rate: 0.5, statuses: [429, 500, 503], routes: ['files'] } });
      const seen: (number | 'ok')[] = [];
      for (let i = 0; i < 24; i++) seen.push(await statusOf(h.client.files.list()));
      return seen;
    };
    const [a, b, c] = [await run(11), await run(11), await run(12)];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toContain('ok');
    expect(a.filter((s) => s !== 'ok').length).toBeGreaterThan(3);
    expect(new Set(a)).toEqual(new Set(['ok', 429, 500, 503]));
  });

  it('send Retry-After: 1 with some 429s and not others', async () => {
    const h = await emulator({ seed: 3, http: { rate: 1, statuses: [429], routes: ['list'] } });
    const headers: (string | null)[] = [];
    for (let i = 0; i < 16; i++) {
      const res = await raw(h.emu, 'GET', '/v1/batches');
      expect(res.status).toBe(429);
      expect(res.json).toMatchObject({ error: { type: 'rate_limit_error', code: 'injected_fault' } });
      headers.push(res.headers.get('retry-after'));
    }
    expect(new Set(headers)).toEqual(new Set(['1', null]));
  });

  it('a 429 on create creates nothing; a 5xx may lose the answer of a batch it did create', async () => {
    const h = await emulator({ seed: 5, http: { rate: 1, statuses: [429], routes: ['create'] } });
    const f = await upload(h.client, chatFile(1));
    const create = () =>
      h.client.batches.create({
        input_file_id: f.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
    for (let i = 0; i < 5; i++) expect(await statusOf(create())).toBe(429);
    expect((await stats(h.emu)).batchesCreated).toBe(0);
    await raw(h.emu, 'POST', '/_emulator/faults', {
      ...FAST,
      seed: 5,
      http: { rate: 1, statuses: [500], routes: ['create'] },
    });
    for (let i = 0; i < 12; i++) expect(await statusOf(create())).toBe(500);
    const created = (await stats(h.emu)).batchesCreated;
    expect(created).toBeGreaterThan(0);
    expect(created).toBeLessThan(12);
    const listed = await h.client.batches.list({ input_file_ids: f.id } as never);
    expect(listed.data).toHaveLength(created);
  });

  it('is retried by a client that retries: the call then succeeds', async () => {
    // Seed 3 fails the first request on the route and lets the second through.
    const h = await emulator({ seed: 3, http: { rate: 0.5, statuses: [503], routes: ['files'] } });
    const retrying = clientFor(h.emu.url, 'k', 2);
    expect(await statusOf(retrying.files.list())).toBe('ok');
    expect((await stats(h.emu)).requests.files).toBe(2);
  });
});

describe('line faults', () => {
  const LINE_FAULTS = { seed: 7, lineRetryableRate: 0.3, linePermanentRate: 0.2 };

  it('fail the same lines the same way on two emulators with the same seed', async () => {
    const [a, b] = [await emulator(LINE_FAULTS), await emulator(LINE_FAULTS)];
    const input = chatFile(60);
    const [oa, ob] = [
      await outcomes(a, (await createBatch(a.client, input)).id),
      await outcomes(b, (await createBatch(b.client, input)).id),
    ];
    expect(Object.keys(oa)).toHaveLength(60);
    expect(oa).toEqual(ob);
    const c = counts(oa);
    expect(c['200']).toBeGreaterThan(15);
    expect(c['400']).toBeGreaterThan(3);
    expect((c['429'] ?? 0) + (c['500'] ?? 0) + (c['503'] ?? 0) + (c.request_timeout ?? 0)).toBeGreaterThan(5);
    const other = await emulator({ ...LINE_FAULTS, seed: 8 });
    expect(await outcomes(other, (await createBatch(other.client, input)).id)).not.toEqual(oa);
  });

  it('writes failures to the error file: 4xx/5xx with response.body.error, timeouts with error.code', async () => {
    const h = await emulator(LINE_FAULTS);
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(60))).id);
    const out = await download(h.client, b.output_file_id);
    const errors = await download(h.client, b.error_file_id);
    expect(out.every((l) => l.response?.status_code === 200 && l.error === null)).toBe(true);
    expect(b.request_counts).toEqual({ total: 60, completed: out.length, failed: errors.length });
    for (const l of errors) {
      if (l.response) {
        expect(l.response.status_code).toBeGreaterThanOrEqual(400);
        expect(l.response.body.error.code).toMatch(
          /^(InvalidParameter|DataInspectionFailed|Throttling|InternalError|ServiceUnavailable)$/,
        );
        expect(l.error).toBeNull();
      } else {
        expect(l.error).toMatchObject({ code: 'request_timeout' });
      }
    }
  });

  it('change with each resubmission of a custom_id, the same way on every emulator', async () => {
    const [a, b] = [await emulator(LINE_FAULTS), await emulator(LINE_FAULTS)];
    const input = chatFile(40);
    const a1 = await outcomes(a, (await createBatch(a.client, input)).id);
    const a2 = await outcomes(a, (await createBatch(a.client, input)).id);
    const b1 = await outcomes(b, (await createBatch(b.client, input)).id);
    const b2 = await outcomes(b, (await createBatch(b.client, input)).id);
    expect(a2).not.toEqual(a1);
    expect(b1).toEqual(a1);
    expect(b2).toEqual(a2);
    // Only the failed ids in a new file: their second attempt is what a2 said about them.
    const failed = Object.keys(a1).filter((id) => a1[id] !== '200');
    const c = await emulator(LINE_FAULTS);
    await outcomes(c, (await createBatch(c.client, input)).id);
    const retryInput = chatFile(40)
      .split('\n')
      .filter((l) => l && failed.includes(JSON.parse(l).custom_id))
      .join('\n');
    const c2 = await outcomes(c, (await createBatch(c.client, retryInput)).id);
    expect(c2).toEqual(Object.fromEntries(failed.map((id) => [id, a2[id]])));
  });
});

describe('batch faults', () => {
  it('expire a batch part way: partial output, the rest batch_expired in the error file', async () => {
    const h = await emulator({ expireRate: 1, expireAfterFraction: 0.5 });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(20))).id);
    expect(b.status).toBe('expired');
    expect(b.expired_at).toBeGreaterThan(0);
    expect(b.completed_at).toBeNull();
    const out = await download(h.client, b.output_file_id);
    const errors = await download(h.client, b.error_file_id);
    expect(out).toHaveLength(10);
    expect(errors).toHaveLength(10);
    expect(errors.every((l) => l.response === null && l.error?.code === 'batch_expired')).toBe(true);
    const ids = [...out, ...errors].map((l) => l.custom_id).sort();
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => `r-${i + 1}`).sort());
    expect(b.request_counts).toEqual({ total: 20, completed: 10, failed: 10 });
  });

  it('expire only the drawn share of batches', async () => {
    const h = await emulator({ seed: 2, expireRate: 0.5, expireAfterFraction: 0 });
    const statuses = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await waitFor(h.client, (await createBatch(h.client, chatFile(2, `e${i}`))).id)).status);
    expect(new Set(statuses)).toEqual(new Set(['completed', 'expired']));
  });

  it('fail a batch at validation with token_limit_exceeded', async () => {
    const h = await emulator({ failBatchRate: 1 });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(3))).id);
    expect(b.status).toBe('failed');
    expect(b.errors!.data).toEqual([
      { code: 'token_limit_exceeded', message: expect.any(String), param: null, line: null },
    ]);
  });
});

describe('enqueued-token limit', () => {
  // Ten lines of "question number n" are 5 tokens each as usage counts them: 50 a file.
  const tenLines = (prefix: string, model = 'qwen-plus') =>
    Array.from({ length: 10 }, (_, i) =>
      chatLine(`${prefix}-${i + 1}`, `question number ${i + 1}`, { model }),
    ).join('\n') + '\n';

  it("refuses a batch that would take its model's enqueued tokens over the limit, as OpenAI does", async () => {
    // Slow lines keep the first batches in progress while the third is validated.
    const h = await emulator({ perLineMs: 100, enqueuedTokenLimit: { 'qwen-plus': 120 } });
    const a = await createBatch(h.client, tenLines('a'));
    await waitFor(h.client, a.id, ['in_progress']);
    const b = await createBatch(h.client, tenLines('b'));
    await waitFor(h.client, b.id, ['in_progress']);
    const other = await createBatch(h.client, tenLines('m', 'qwen-max'));
    const c = await createBatch(h.client, tenLines('c'));
    const refused = await waitFor(h.client, c.id);
    expect(refused.status).toBe('failed');
    expect(refused.errors!.data).toEqual([
      { code: 'token_limit_exceeded', message: expect.any(String), param: null, line: null },
    ]);
    expect(refused.errors!.data![0]!.message).toMatch(
      /^Enqueued token limit reached for qwen-plus\. Limit: 120 enqueued tokens; 100 are enqueued and this batch has 50\./,
    );
    // A model without a limit is not held back by another's.
    expect((await waitFor(h.client, other.id)).status).toBe('completed');
    expect((await waitFor(h.client, a.id)).status).toBe('completed');
    expect((await waitFor(h.client, b.id)).status).toBe('completed');
    // Once the enqueued batches have ended, the same file is accepted.
    const again = await h.client.batches.create({
      input_file_id: c.input_file_id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect((await waitFor(h.client, again.id)).status).toBe('completed');
    const s = await stats(h.emu);
    expect(s.tokenLimitRefusals).toBe(1);
    expect(s.peakEnqueuedTokens['qwen-plus']).toBe(100);
    // a and b running, qwen-max's and c itself being validated when c was created.
    expect(s.peakUnfinishedBatches).toBe(4);
    expect(s.batchesByInputFile[c.input_file_id]).toBe(2);
  });

  it('refuses a batch larger than the limit even with nothing enqueued; a number limits every model', async () => {
    const h = await emulator({ enqueuedTokenLimit: 40 });
    const b = await waitFor(h.client, (await createBatch(h.client, tenLines('big', 'qwen-max'))).id);
    expect(b.status).toBe('failed');
    expect(b.errors!.data![0]!.code).toBe('token_limit_exceeded');
    expect(b.errors!.data![0]!.message).toMatch(/for qwen-max\. Limit: 40 enqueued tokens; 0 are enqueued/);
    const small = await waitFor(h.client, (await createBatch(h.client, chatFile(8))).id);
    expect(small.status).toBe('completed');
    expect((await stats(h.emu)).tokenLimitRefusals).toBe(1);
  });

  it('refuses a malformed limit with the field named', async () => {
    const h = await emulator({});
    const r = await raw(h.emu, 'POST', '/_emulator/faults', { enqueuedTokenLimit: { 'qwen-plus': -1 } });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.json)).toContain('enqueuedTokenLimit');
  });
});

describe('quirks', () => {
  it('failed-lines-in-output: failures in the output file and request_counts.failed = 0', async () => {
    const h = await emulator({ seed: 4, linePermanentRate: 0.5, quirks: ['failed-lines-in-output'] });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(20))).id);
    const out = await download(h.client, b.output_file_id);
    expect(b.status).toBe('completed');
    expect(b.error_file_id).toBeNull();
    expect(out).toHaveLength(20);
    expect(out.some((l) => l.response!.status_code === 400)).toBe(true);
    expect(b.request_counts).toEqual({ total: 20, completed: 20, failed: 0 });
  });

  it('completed-without-output-file: no output file when every line failed', async () => {
    const h = await emulator({ linePermanentRate: 1, quirks: ['completed-without-output-file'] });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(5))).id);
    expect(b).toMatchObject({ status: 'completed', output_file_id: null });
    expect(await download(h.client, b.error_file_id)).toHaveLength(5);
    // Without the quirk the provider still gives an (empty) output file.
    const plain = await emulator({ linePermanentRate: 1 });
    const p = await waitFor(plain.client, (await createBatch(plain.client, chatFile(5))).id);
    expect(p.output_file_id).not.toBeNull();
    expect(await download(plain.client, p.output_file_id)).toEqual([]);
  });

  it('no-list-routes: GET /v1/files is 404 and GET /v1/batches 405 with a framework body; the rest works', async () => {
    const h = await emulator({ quirks: ['no-list-routes'] });
    const list = await raw(h.emu, 'GET', '/v1/files');
    expect(list).toMatchObject({ status: 404, json: { detail: 'Not Found' } });
    expect(await raw(h.emu, 'GET', '/v1/batches?limit=100')).toMatchObject({
      status: 405,
      json: { detail: 'Method Not Allowed' },
    });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(3))).id);
    expect(b.status).toBe('completed');
    const out = await download(h.client, b.output_file_id);
    // OpenAI's result shape: an id and `error: null` on every answered line.
    for (const l of out) expect(l).toMatchObject({ id: expect.stringMatching(/^batch_req_/), error: null });
    expect(await statusOf(h.client.files.retrieve(b.input_file_id))).toBe('ok');
  });

  it('batch-error-line: a failing batch completes with one error line naming none of its lines', async () => {
    const h = await emulator({ failBatchRate: 1, quirks: ['batch-error-line'] });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(4))).id);
    expect(b).toMatchObject({ status: 'completed', errors: null });
    expect(b.request_counts).toEqual({ total: 4, completed: 0, failed: 4 });
    expect(await download(h.client, b.output_file_id)).toEqual([]);
    const errors = await download(h.client, b.error_file_id);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      custom_id: 'turn',
      response: null,
      error: { code: 'token_limit_exceeded' },
    });
  });

  it('error-code-fields: errors carry error_code and error_message', async () => {
    const h = await emulator({
      expireRate: 1,
      expireAfterFraction: 0.5,
      linePermanentRate: 1,
      quirks: ['error-code-fields'],
    });
    const b = await waitFor(h.client, (await createBatch(h.client, chatFile(4))).id);
    const errors = await download(h.client, b.error_file_id);
    const expired = errors.filter((l) => l.response === null);
    const http = errors.filter((l) => l.response !== null);
    expect(expired).toHaveLength(2);
    expect(expired[0]!.error).toEqual({ error_code: 'batch_expired', error_message: expect.any(String) });
    expect(http).toHaveLength(2);
    expect(http[0]!.response!.body.error).toMatchObject({
      error_code: expect.any(String),
      error_message: expect.any(String),
    });
    expect(http[0]!.response!.body.error.code).toBeUndefined();
  });
});

describe('settings at run time and stats', () => {
  it('POST /_emulator/faults acts on a running batch at once and lasts until the emulator stops', async () => {
    const h = await emulator({ perLineMs: 10 });
    const created = await createBatch(h.client, chatFile(100));
    let b = await waitFor(h.client, created.id, ['in_progress']);
    while (b.request_counts!.completed < 10) b = await h.client.batches.retrieve(created.id);
    const set = await raw(h.emu, 'POST', '/_emulator/faults', { ...FAST, linePermanentRate: 1 });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ linePermanentRate: 1, perLineMs: 1 });
    b = await waitFor(h.client, created.id);
    expect(b.request_counts!.completed).toBeGreaterThanOrEqual(10);
    expect(b.request_counts!.completed).toBeLessThan(100);
    expect(b.request_counts!.failed).toBe(100 - b.request_counts!.completed);
    expect((await faultsOf(h.emu)).linePermanentRate).toBe(1);
    await h.restart();
    expect(await faultsOf(h.emu)).toMatchObject({
      linePermanentRate: 0,
      perLineMs: 10,
    });
  });

  it('refuses bad settings with 400 and keeps the old ones', async () => {
    const h = await emulator({ seed: 9 });
    for (const bad of [
      { lineRetryableRate: 2 },
      { http: { routes: ['nope'] } },
      { sead: 1 },
      { quirks: ['x'] },
    ]) {
      const res = await raw(h.emu, 'POST', '/_emulator/faults', bad);
      expect(res.status).toBe(400);
    }
    expect((await faultsOf(h.emu)).seed).toBe(9);
  });

  it('counts requests by route, batches by input file, and stored files and bytes', async () => {
    const h = await emulator({});
    const f = await upload(h.client, chatFile(2));
    const g = await upload(h.client, chatFile(3));
    const create = (input_file_id: string, completion_window = '24h') =>
      h.client.batches.create({
        input_file_id,
        endpoint: '/v1/chat/completions',
        completion_window,
      } as never);
    const batches = [await create(f.id), await create(f.id), await create(g.id)];
    expect(await statusOf(create(g.id, '1h'))).toBe(400);
    // Every batch ended, so no result file appears between the stats and the list below.
    for (const b of batches) await waitFor(h.client, b.id);
    await h.client.batches.list();
    await h.client.files.retrieve(f.id);
    const s = await stats(h.emu);
    expect(s.batchesCreated).toBe(3);
    expect(s.batchesByInputFile).toEqual({ [f.id]: 2, [g.id]: 1 });
    expect(s.requests).toMatchObject({ upload: 2, create: 4, list: 1, files: 1, stats: 1 });
    expect(s.requests.retrieve).toBeGreaterThan(0);
    const files: { bytes: number }[] = [];
    for await (const x of h.client.files.list()) files.push(x);
    expect(s.files).toBe(files.length);
    expect(s.bytesStored).toBe(files.reduce((n, x) => n + x.bytes, 0));
  });
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});
