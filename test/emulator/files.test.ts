// Files API through the real openai client: upload, retrieve, list, delete, content, the size
// limit, and the bearer check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatFile, clientFor, harness, raw, stats, statusOf, upload, type Harness } from './helpers.ts';

describe('files', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ limitsOverride: { maxFileBytes: 1000 } });
  });
  afterAll(() => h.close());

  it('uploads, retrieves and streams back the exact bytes', async () => {
    const content = chatFile(3);
    const f = await upload(h.client, content, 'shard-0.jsonl');
    expect(f).toMatchObject({
      object: 'file',
      bytes: Buffer.byteLength(content),
      filename: 'shard-0.jsonl',
      purpose: 'batch',
    });
    expect(f.id).toMatch(/^file-batch-[0-9a-f]+$/);
    expect(typeof f.created_at).toBe('number');
    expect(await h.client.files.retrieve(f.id)).toEqual(f);
    expect(await (await h.client.files.content(f.id)).text()).toBe(content);
  });

  it('lists newest first and pages with after/limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(h.client, chatFile(1, `p${i}`))).id);
    const first = await h.client.files.list({ limit: 2 });
    expect(first.data.map((f) => f.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await h.client.files.list({ limit: 2, after: ids[1] });
    expect(second.data[0]!.id).toBe(ids[0]);
    const all: string[] = [];
    for await (const f of h.client.files.list({ limit: 1 })) all.push(f.id);
    expect(all.slice(0, 3)).toEqual([ids[2], ids[1], ids[0]]);
    expect(new Set(all).size).toBe(all.length);
  });

  it('deletes: the file is gone from retrieve, content, list and the stats', async () => {
    const f = await upload(h.client, chatFile(2));
    const before = await stats(h.emu);
    expect(await h.client.files.delete(f.id)).toEqual({ id: f.id, object: 'file', deleted: true });
    expect(await statusOf(h.client.files.retrieve(f.id))).toBe(404);
    expect(await statusOf(h.client.files.content(f.id))).toBe(404);
    expect(await statusOf(h.client.files.delete(f.id))).toBe(404);
    const ids: string[] = [];
    for await (const x of h.client.files.list()) ids.push(x.id);
    expect(ids).not.toContain(f.id);
    const after = await stats(h.emu);
    expect(after.files).toBe(before.files - 1);
    expect(after.bytesStored).toBe(before.bytesStored - f.bytes);
  });

  it('refuses an upload over the size limit with 400 BadRequest.TooLarge and keeps nothing', async () => {
    const before = (await stats(h.emu)).files;
    const err = await upload(h.client, 'x'.repeat(1001)).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: 'BadRequest.TooLarge' });
    expect((await stats(h.emu)).files).toBe(before);
    const exact = await upload(h.client, 'x'.repeat(1000));
    expect(exact.bytes).toBe(1000);
  });

  it('refuses uploads past the file count allowed until files are deleted', async () => {
    const small = await harness({ limitsOverride: { maxFiles: 2 } });
    try {
      const a = await upload(small.client, chatFile(1));
      await upload(small.client, chatFile(1));
      const err = await upload(small.client, chatFile(1)).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400, code: 'BadRequest.TooManyFiles' });
      await small.client.files.delete(a.id);
      expect(await statusOf(upload(small.client, chatFile(1)))).toBe('ok');
    } finally {
      await small.close();
    }
  });

  it('needs purpose=batch', async () => {
    const form = new FormData();
    form.append('file', new Blob(['{}\n']), 'a.jsonl');
    const res = await fetch(`${h.emu.url}/files`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe('purpose');
  });
});

describe('the bearer check', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ apiKey: 'sk-right' });
  });
  afterAll(() => h.close());

  it('answers 401 with an OpenAI error body to any other key, /_emulator included', async () => {
    const wrong = clientFor(h.emu.url, 'sk-wrong');
    const err = await wrong.files.list().catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'authentication_error' });
    expect(await statusOf(wrong.batches.retrieve('batch_x'))).toBe(401);
    expect((await raw(h.emu, 'GET', '/_emulator/stats', undefined, 'sk-wrong')).status).toBe(401);
    expect((await raw(h.emu, 'POST', '/_emulator/faults', {}, 'sk-wrong')).status).toBe(401);
    expect((await fetch(`${h.emu.url}/files`)).status).toBe(401);
  });

  it('serves the right key', async () => {
    expect(await statusOf(h.client.files.list())).toBe('ok');
    expect((await raw(h.emu, 'GET', '/_emulator/stats', undefined, 'sk-right')).status).toBe(200);
  });
});

describe('the openai profile', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ profile: 'openai' });
  });
  afterAll(() => h.close());

  it('does not hand back the content of batch input files', async () => {
    const f = await upload(h.client, chatFile(1));
    expect(await statusOf(h.client.files.content(f.id))).toBe(400);
  });
});
