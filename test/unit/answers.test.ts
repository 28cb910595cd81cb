// The answer store and the request key: canonical keys (key order and whitespace do not matter,
// any change of method, url, body or provider does), answers re-addressed byte for byte, eviction
// oldest first within the bound, two processes writing at once, and torn files read as misses.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson, providerScope, requestKeyOfLine } from '../../common/request-key.ts';
import { LocalAnswerStore, customIdRange, jobTag, reusedResult } from '../../storage/answers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'answers-'));
  dirs.push(d);
  return d;
};

const line = (id: string, body: unknown) =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body });

describe('request key', () => {
  const scope = providerScope('dashscope-intl', 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1');
  const body = { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }], temperature: 0.5 };

  it('ignores key order, whitespace and the custom_id', () => {
    const a = requestKeyOfLine(scope, line('a', body));
    const reordered = `{ "url" : "/v1/chat/completions", "body": {"temperature":0.5,
      "messages":[ {"content":"hi","role":"user"} ], "model":"qwen-plus"}, "method":"POST", "custom_id":"zzz" }`;
    expect(requestKeyOfLine(scope, reordered)).toBe(a);
    expect(a).toMatch(/^[0-9a-f]{32}$/);
  });

  it('changes with any field of the body, the url, the method or the provider', () => {
    const a = requestKeyOfLine(scope, line('a', body));
    expect(requestKeyOfLine(scope, line('a', { ...body, temperature: 0.6 }))).not.toBe(a);
    expect(
      requestKeyOfLine(scope, line('a', { ...body, messages: [{ role: 'user', content: 'hi ' }] })),
    ).not.toBe(a);
    const other = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/embeddings', body });
    expect(requestKeyOfLine(scope, other)).not.toBe(a);
    expect(requestKeyOfLine(providerScope('openai', 'https://api.openai.com/v1'), line('a', body))).not.toBe(
      a,
    );
    // The emulator's scope ignores its port, which changes from run to run.
    expect(providerScope('emulator', 'http://127.0.0.1:1/v1')).toBe(
      providerScope('emulator', 'http://x:2/v1'),
    );
  });

  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: [2, { d: 1, c: 2 }], a: 1.0 })).toBe('{"a":1,"b":[2,{"c":2,"d":1}]}');
    expect(canonicalJson([3, 1])).not.toBe(canonicalJson([1, 3]));
  });
});

describe('reused result', () => {
  it('replaces only the top-level custom_id and marks the line, every other byte kept', () => {
    const result = Buffer.from(
      '{"id":"batch_req_1","custom_id":"old","response":{"status_code":200,"body":{"custom_id":"old","x":"\\u00e9"}},"error":null}',
    );
    const at = customIdRange(result, 'old')!;
    const out = reusedResult(
      { meta: { job: 'j', model: 'm', usage: null, at, n: result.length }, result },
      'new"id',
    );
    expect(out.toString()).toBe(
      '{"id":"batch_req_1","custom_id":"new\\"id","batchpilot_reused":true,"response":{"status_code":200,"body":{"custom_id":"old","x":"\\u00e9"}},"error":null}',
    );
    // A custom_id nested before the top-level one is not taken for it.
    const nestedFirst = Buffer.from('{"response":{"custom_id":"old"},"custom_id":"old"}');
    const r = customIdRange(nestedFirst, 'old')!;
    expect(nestedFirst.toString('utf8', 0, r[0])).toBe('{"response":{"custom_id":"old"},"custom_id":');
  });
});

const answer = (i: number, bytes = 100) => {
  const result = Buffer.from(JSON.stringify({ custom_id: `c${i}`, pad: 'x'.repeat(bytes) }));
  return { model: 'm', usage: [1, 2, 3] as [number, number, number], customId: `c${i}`, result };
};
const key = (i: number) => i.toString(16).padStart(32, '0');

describe('LocalAnswerStore', () => {
  it('finds an answer by key, and by its job only with fromJob', () => {
    const store = new LocalAnswerStore({ root: tmp() });
    const w = store.writer('job-a');
    expect(w.put(key(1), answer(1))).toBe(true);
    w.close();
    const w2 = store.writer('job-b');
    w2.put(key(1), answer(1));
    w2.put(key(2), answer(2));
    w2.close();
    expect(store.get(key(1))?.meta.job).toBe('job-a'); // the first job to store it keeps the name
    expect(store.get(key(1), 'job-b')?.meta.job).toBe('job-b');
    expect(store.get(key(2), 'job-a')).toBeUndefined();
    expect(store.get(key(3))).toBeUndefined();
    expect(store.hasJob('job-a') && store.hasJob('job-b')).toBe(true);
    expect(store.hasJob('job-c')).toBe(false);
  });

  it('reads a torn file as a miss', () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('j');
    w.put(key(7), answer(7));
    w.close();
    const file = path.join(root, 'objects', '00', '00', key(7));
    fs.truncateSync(file, fs.statSync(file).size - 5);
    expect(store.get(key(7))).toBeUndefined();
    expect(store.get(key(7), 'j')).toBeUndefined(); // the same inode, torn through both names
  });

  it('evicts the oldest answers first, down to the bound', () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root, maxBytes: 20_000 });
    // 30 old answers (a day ago), then 30 new ones: ~430 bytes each, 13 KB a batch.
    const w = store.writer('old');
    for (let i = 0; i < 30; i++) w.put(key(i), answer(i, 300));
    const dayAgo = new Date(Date.now() - 86_400_000);
    for (let i = 0; i < 30; i++)
      for (const name of [key(i), `${key(i)}.${jobTag('old')}`])
        fs.utimesSync(
          path.join(root, 'objects', key(i).slice(0, 2), key(i).slice(2, 4), name),
          dayAgo,
          dayAgo,
        );
    w.close();
    expect(store.get(key(0))).toBeDefined(); // 13 KB: under the bound, nothing evicted
    const w2 = store.writer('new');
    for (let i = 100; i < 130; i++) w2.put(key(i), answer(i, 300));
    w2.close(); // 26 KB by the ledger: over, so the oldest go
    for (let i = 0; i < 30; i++) expect(store.get(key(i))).toBeUndefined();
    for (let i = 100; i < 130; i++) expect(store.get(key(i))?.meta.job).toBe('new');
    expect(store.ledgerBytes()).toBeLessThanOrEqual(16_000);
    expect(store.ledgerBytes()).toBeGreaterThan(10_000);
  });

  it('keeps every answer whole when two processes write the same keys at once', async () => {
    const root = tmp();
    const script = path.join(import.meta.dirname, '..', 'support', 'answers-writer.ts');
    const run = (job: string, from: number) =>
      new Promise<number>((resolve, reject) => {
        const p = spawn(process.execPath, [script, root, job, String(from), '1500'], { stdio: 'inherit' });
        p.on('error', reject);
        p.on('exit', (code) => resolve(code ?? -1));
      });
    // Keys 500..1499 are written by both at the same time.
    expect(await Promise.all([run('w1', 0), run('w2', 500)])).toEqual([0, 0]);
    const store = new LocalAnswerStore({ root });
    for (let i = 0; i < 2000; i++) {
      const a = store.get(key(i));
      expect(a, `key ${i}`).toBeDefined();
      const parsed = JSON.parse(a!.result.toString()) as { response: { body: { job: string; i: number } } };
      expect(parsed.response.body.i).toBe(i);
      expect(parsed.response.body.job).toBe(a!.meta.job); // name and bytes from one writer
      if (i < 500) expect(a!.meta.job).toBe('w1');
      if (i >= 1500) expect(a!.meta.job).toBe('w2');
      if (i >= 500 && i < 1500) {
        expect(store.get(key(i), 'w1')?.meta.job).toBe('w1');
        expect(store.get(key(i), 'w2')?.meta.job).toBe('w2');
      }
    }
    const leftovers = fs
      .readdirSync(path.join(root, 'objects'), { recursive: true })
      .filter((n) => String(n).includes('.tmp-'));
    expect(leftovers).toEqual([]);
  });
});
