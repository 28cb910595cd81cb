// The answer store and the request key: canonical keys (key order and whitespace do not matter,
// any change of method, url, body or provider does), answers re-addressed byte for byte, eviction
// oldest first within the bound, two processes writing at once, torn records read as misses, and
// a store of the earlier file-per-answer layout packed into segments.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson, providerScope, requestKeyOfLine } from '../../common/request-key.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  answerRecord,
  customIdRange,
  jobTag,
  reusedResult,
  type StoredAnswer,
} from '../../storage/answers.ts';
import { LocalAnswerStore } from '../../storage/local-answers.ts';

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

/** Looks keys up in a freshly prepared source of `store`, released after. */
async function lookUp<T>(
  store: LocalAnswerStore,
  fromJob: string | undefined,
  fn: (get: (k: string) => StoredAnswer | undefined) => T,
): Promise<T> {
  const source = await store.prepare(fromJob);
  try {
    return fn((k) => source.get(k));
  } finally {
    source.release?.();
  }
}

describe('LocalAnswerStore', () => {
  it('finds an answer by key (the newest of several), and by its job only with fromJob', async () => {
    const store = new LocalAnswerStore({ root: tmp() });
    const w = store.writer('job-a');
    expect(w.put(key(1), answer(1))).toBe(true);
    w.close();
    await sleep(5); // a later segment
    const w2 = store.writer('job-b');
    w2.put(key(1), answer(1));
    w2.put(key(2), answer(2));
    w2.close();
    await lookUp(store, undefined, (get) => {
      expect(get(key(1))?.meta.job).toBe('job-b');
      expect(get(key(2))?.meta.job).toBe('job-b');
      expect(get(key(3))).toBeUndefined();
    });
    await lookUp(store, 'job-a', (get) => {
      expect(get(key(1))?.meta.job).toBe('job-a');
      expect(get(key(2))).toBeUndefined();
    });
    expect(store.hasJob('job-a') && store.hasJob('job-b')).toBe(true);
    expect(store.hasJob('job-c')).toBe(false);
  });

  it('reads a torn record as a miss', async () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('j');
    w.put(key(6), answer(6));
    w.put(key(7), answer(7));
    w.close();
    const [seg] = fs.readdirSync(path.join(root, 'seg'));
    const file = path.join(root, 'seg', seg!);
    fs.truncateSync(file, fs.statSync(file).size - 5); // key 7's record, the last one
    await lookUp(store, undefined, (get) => {
      expect(get(key(6))?.meta.job).toBe('j');
      expect(get(key(7))).toBeUndefined();
    });
  });

  it('evicts the oldest segments first, down to the bound', async () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root, maxBytes: 20_000 });
    // 30 answers of ~430 bytes a writer: 13 KB a segment with its index.
    const w = store.writer('old');
    for (let i = 0; i < 30; i++) w.put(key(i), answer(i, 300));
    w.close();
    expect(store.list()).toHaveLength(1); // under the bound, nothing evicted
    await sleep(5);
    const w2 = store.writer('new');
    for (let i = 100; i < 130; i++) w2.put(key(i), answer(i, 300));
    w2.close(); // 26 KB: over, so the oldest go
    await lookUp(store, undefined, (get) => {
      for (let i = 0; i < 30; i++) expect(get(key(i))).toBeUndefined();
      for (let i = 100; i < 130; i++) expect(get(key(i))?.meta.job).toBe('new');
    });
    expect(store.bytes()).toBeLessThanOrEqual(16_000);
    expect(store.bytes()).toBeGreaterThan(10_000);
    expect(fs.readdirSync(path.join(root, 'seg'))).toHaveLength(1);
    expect(store.hasJob('old')).toBe(false);
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
    await lookUp(store, undefined, (get) => {
      for (let i = 0; i < 2000; i++) {
        const a = get(key(i));
        expect(a, `key ${i}`).toBeDefined();
        const parsed = JSON.parse(a!.result.toString()) as { response: { body: { job: string; i: number } } };
        expect(parsed.response.body.i).toBe(i);
        expect(parsed.response.body.job).toBe(a!.meta.job); // meta and bytes from one writer
        if (i < 500) expect(a!.meta.job).toBe('w1');
        if (i >= 1500) expect(a!.meta.job).toBe('w2');
      }
    });
    for (const job of ['w1', 'w2'])
      await lookUp(store, job, (get) => {
        for (const i of [500, 1000, 1499]) expect(get(key(i))?.meta.job).toBe(job);
      });
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });

  it('abandon drops what a writer put and its file', async () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('j');
    w.put(key(1), answer(1));
    expect(fs.readdirSync(path.join(root, 'tmp'))).toHaveLength(1);
    w.abandon();
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
    expect(store.list()).toEqual([]);
    await lookUp(store, undefined, (get) => expect(get(key(1))).toBeUndefined());
  });

  it('packs a store of the one-file-per-answer layout into segments, jobs kept apart', async () => {
    const root = tmp();
    // As the earlier layout left it: `<key>.<jobTag>` per job, the bare `<key>` a link to one.
    const put = (i: number, job: string, link: boolean) => {
      const dir = path.join(root, 'objects', key(i).slice(0, 2), key(i).slice(2, 4));
      fs.mkdirSync(dir, { recursive: true });
      const own = path.join(dir, `${key(i)}.${jobTag(job)}`);
      const a = answer(i);
      fs.writeFileSync(own, answerRecord(job, a, customIdRange(a.result, a.customId)!));
      if (link) fs.linkSync(own, path.join(dir, key(i)));
    };
    for (let i = 0; i < 20; i++) put(i, 'old-a', true);
    for (let i = 10; i < 30; i++) put(i, 'old-b', i >= 20);
    fs.mkdirSync(path.join(root, 'ledger'));
    fs.writeFileSync(path.join(root, 'keys-v1'), '');
    const store = new LocalAnswerStore({ root });
    await lookUp(store, undefined, (get) => {
      for (let i = 0; i < 30; i++) expect(get(key(i)), `key ${i}`).toBeDefined();
    });
    await lookUp(store, 'old-a', (get) => {
      expect(get(key(15))?.meta.job).toBe('old-a');
      expect(get(key(25))).toBeUndefined();
    });
    expect(store.hasJob('old-b')).toBe(true);
    expect(fs.readdirSync(root).sort()).toEqual(['idx', 'seg', 'tmp']);
  });
});
