// The key filter a plan asks before looking an answer up on disk: no stored key is ever said to be
// absent (in memory, through a prepared store's merged index, after two writers at once and after
// eviction), its memory stays within the bound however many keys there are, and a torn index
// loses only the keys of its torn tail, never to a wrong answer.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEY_BYTES } from '../../common/request-key.ts';
import { SEGMENT_ENTRY } from '../../storage/answer-index.ts';
import { jobTag } from '../../storage/answers.ts';
import { LocalAnswerStore } from '../../storage/local-answers.ts';
import { KeyFilter } from '../../storage/key-filter.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'key-filter-'));
  dirs.push(d);
  return d;
};

const key = (i: number) => i.toString(16).padStart(32, '0');
const keyBytes = (i: number) => Buffer.from(key(i), 'hex');
const answer = (i: number) => {
  const result = Buffer.from(JSON.stringify({ custom_id: `c${i}`, response: { body: { i } } }));
  return { model: 'm', usage: [1, 2, 3] as [number, number, number], customId: `c${i}`, result };
};

/** Keys i in [from, to) that the filter says are surely absent (should be none when stored). */
function missed(filter: { mayHold(k: Uint8Array, at: number): boolean }, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) if (!filter.mayHold(keyBytes(i), 0)) out.push(i);
  return out;
}

describe('KeyFilter', () => {
  it('holds every key added, and few others, at 16 bits a key', () => {
    const added = randomBytes(KEY_BYTES * 50_000);
    const filter = new KeyFilter(50_000, 64 * 1024 ** 2);
    for (let at = 0; at < added.length; at += KEY_BYTES) filter.add(added, at);
    for (let at = 0; at < added.length; at += KEY_BYTES) expect(filter.mayHold(added, at)).toBe(true);
    expect(filter.bits).toBeGreaterThanOrEqual(50_000 * 16);
    const others = randomBytes(KEY_BYTES * 100_000);
    let positives = 0;
    for (let at = 0; at < others.length; at += KEY_BYTES) if (filter.mayHold(others, at)) positives++;
    // Expected ~0.03% here; a filter whose probes were broken would pass nearly all.
    expect(filter.falsePositiveRate()).toBeLessThan(0.001);
    expect(positives / 100_000).toBeLessThan(0.003);
  });

  it('stays within its memory bound with more keys than it holds well, and still misses none', () => {
    const filter = new KeyFilter(200_000, 16 * 1024);
    expect(filter.bytes).toBeLessThanOrEqual(16 * 1024);
    const added = randomBytes(KEY_BYTES * 200_000);
    for (let at = 0; at < added.length; at += KEY_BYTES) filter.add(added, at);
    for (let at = 0; at < added.length; at += KEY_BYTES) expect(filter.mayHold(added, at)).toBe(true);
    // Overfull: most unknown keys pass, i.e. lookups go to disk as they would without a filter.
    expect(filter.falsePositiveRate()).toBeGreaterThan(0.5);
  });
});

describe('the key filter of a prepared local store', () => {
  const filterOf = async (store: LocalAnswerStore) => {
    const source = await store.prepare(undefined);
    source.release?.();
    return source.keyFilter()!;
  };

  it('holds every stored key, through several writers, and answers most others no', async () => {
    const store = new LocalAnswerStore({ root: tmp() });
    const a = store.writer('a');
    for (let i = 0; i < 300; i++) a.put(key(i), answer(i));
    a.close();
    const b = store.writer('b');
    for (let i = 200; i < 600; i++) b.put(key(i), answer(i));
    b.close();
    const filter = await filterOf(store);
    expect(missed(filter, 0, 600)).toEqual([]);
    expect(missed(filter, 10_000, 20_000).length).toBeGreaterThan(9_900);
  });

  it('respects filterBytes however many keys are stored', async () => {
    const store = new LocalAnswerStore({ root: tmp(), filterBytes: 128 });
    const w = store.writer('a');
    for (let i = 0; i < 2_000; i++) w.put(key(i), answer(i));
    w.close();
    const filter = await filterOf(store);
    expect(filter.bytes).toBeLessThanOrEqual(128);
    expect(missed(filter, 0, 2_000)).toEqual([]);
  });

  it('holds the keys of two processes writing at once', async () => {
    const root = tmp();
    const script = path.join(import.meta.dirname, '..', 'support', 'answers-writer.ts');
    const run = (job: string, from: number) =>
      new Promise<number>((resolve, reject) => {
        const p = spawn(process.execPath, [script, root, job, String(from), '800'], { stdio: 'inherit' });
        p.on('error', reject);
        p.on('exit', (code) => resolve(code ?? -1));
      });
    expect(await Promise.all([run('w1', 0), run('w2', 400)])).toEqual([0, 0]);
    expect(missed(await filterOf(new LocalAnswerStore({ root })), 0, 1_200)).toEqual([]);
  });

  it('after eviction holds every surviving key and few evicted ones', async () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root, maxBytes: 20_000 });
    const w = store.writer('old');
    for (let i = 0; i < 60; i++) w.put(key(i), answer(i));
    w.close();
    await sleep(5); // a later segment
    const w2 = store.writer('new');
    for (let i = 1000; i < 1100; i++) w2.put(key(i), answer(i));
    w2.close(); // over the bound: the old segment goes
    expect(store.list().map((s) => s.tag)).toEqual([jobTag('new')]);
    const filter = await filterOf(store);
    expect(missed(filter, 1000, 1100)).toEqual([]);
    expect(missed(filter, 0, 60).length).toBeGreaterThan(55); // evicted: answered no, mostly
  });

  it('keeps the whole entries of a torn index and ignores its tail', async () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('a');
    for (let i = 0; i < 100; i++) w.put(key(i), answer(i));
    w.close();
    const [entry] = fs.readdirSync(path.join(root, 'idx'));
    fs.truncateSync(path.join(root, 'idx', entry!), 50 * SEGMENT_ENTRY + 7);
    const source = await store.prepare(undefined);
    try {
      expect(missed(source.keyFilter()!, 0, 50)).toEqual([]);
      // The torn-off keys are lost reuses (said absent), never a wrong answer.
      expect(missed(source.keyFilter()!, 50, 100).length).toBeGreaterThan(45);
      expect(source.get(key(49))?.meta.job).toBe('a');
      expect(source.get(key(99))).toBeUndefined();
    } finally {
      source.release?.();
    }
  });
});
