// The key filter a plan asks before looking an answer up on disk: no stored key is ever said to be
// absent (in memory, through the store's ledger, after two writers at once and after eviction),
// its memory stays within the bound however many keys there are, and a torn, missing or
// pre-existing ledger degrades to lookups on disk, never to a wrong "not stored".
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_BYTES } from '../../common/request-key.ts';
import { LocalAnswerStore, jobTag } from '../../storage/answers.ts';
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

describe('LocalAnswerStore key filter', () => {
  it('holds every stored key, through several writers, and answers most others no', () => {
    const store = new LocalAnswerStore({ root: tmp() });
    const a = store.writer('a');
    for (let i = 0; i < 300; i++) a.put(key(i), answer(i));
    a.close();
    const b = store.writer('b');
    for (let i = 200; i < 600; i++) b.put(key(i), answer(i));
    b.close();
    const filter = store.keyFilter()!;
    expect(filter).toBeDefined();
    expect(missed(filter, 0, 600)).toEqual([]);
    expect(missed(filter, 10_000, 20_000).length).toBeGreaterThan(9_900);
  });

  it('respects filterBytes however many keys are stored', () => {
    const store = new LocalAnswerStore({ root: tmp(), filterBytes: 128 });
    const w = store.writer('a');
    for (let i = 0; i < 2_000; i++) w.put(key(i), answer(i));
    w.close();
    const filter = store.keyFilter()!;
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
    expect(missed(new LocalAnswerStore({ root }).keyFilter()!, 0, 1_200)).toEqual([]);
  });

  it('after eviction holds every surviving key from one rebuilt ledger entry', () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root, maxBytes: 15_000 });
    const w = store.writer('old');
    for (let i = 0; i < 60; i++) w.put(key(i), answer(i));
    const dayAgo = new Date(Date.now() - 86_400_000);
    for (let i = 0; i < 60; i++)
      for (const name of [key(i), `${key(i)}.${jobTag('old')}`])
        fs.utimesSync(path.join(root, 'objects', '00', '00', name), dayAgo, dayAgo);
    w.close();
    const w2 = store.writer('new');
    for (let i = 1000; i < 1100; i++) w2.put(key(i), answer(i));
    w2.close(); // ~18 KB by the ledger, over the bound: the old answers go
    expect(store.get(key(0))).toBeUndefined();
    expect(store.get(key(1000))?.meta.job).toBe('new');
    const ledger = fs.readdirSync(path.join(root, 'ledger'));
    expect(ledger).toHaveLength(1);
    const survivors = fs.statSync(path.join(root, 'ledger', ledger[0]!)).size / KEY_BYTES;
    expect(survivors).toBe(100); // the new keys once each (shared and per-job names: one key)
    const filter = store.keyFilter()!;
    expect(missed(filter, 1000, 1100)).toEqual([]);
    expect(missed(filter, 0, 60).length).toBeGreaterThan(55); // evicted: answered no, mostly
  });

  it('keeps the whole keys of a torn ledger entry and ignores its tail', () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('a');
    for (let i = 0; i < 100; i++) w.put(key(i), answer(i));
    w.close();
    const [entry] = fs.readdirSync(path.join(root, 'ledger'));
    const file = path.join(root, 'ledger', entry!);
    fs.truncateSync(file, 50 * KEY_BYTES + 7);
    const filter = store.keyFilter()!;
    expect(missed(filter, 0, 50)).toEqual([]);
    // The torn-off keys are lost reuses (said absent), never a wrong answer: get still decides.
    expect(missed(filter, 50, 100).length).toBeGreaterThan(45);
    expect(store.get(key(99))?.meta.job).toBe('a');
  });

  it('has no filter for a store written before key lists, until a writer lists every key', () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('old');
    for (let i = 0; i < 100; i++) w.put(key(i), answer(i));
    w.close();
    // As an earlier version left it: empty ledger entries, no mark.
    for (const name of fs.readdirSync(path.join(root, 'ledger')))
      fs.truncateSync(path.join(root, 'ledger', name), 0);
    fs.rmSync(path.join(root, 'keys-v1'));
    expect(store.keyFilter()).toBeUndefined(); // every lookup goes to disk: no reuse lost
    const w2 = new LocalAnswerStore({ root }).writer('new');
    w2.put(key(500), answer(500));
    w2.close(); // finds no mark: walks the store once and lists every key
    expect(fs.existsSync(path.join(root, 'keys-v1'))).toBe(true);
    expect(missed(store.keyFilter()!, 0, 100)).toEqual([]);
    expect(missed(store.keyFilter()!, 500, 501)).toEqual([]);
  });

  it('leaves no temporary ledger entry behind, and a stale one does not count', () => {
    const root = tmp();
    const store = new LocalAnswerStore({ root });
    const w = store.writer('a');
    w.put(key(1), answer(1));
    w.close();
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
    // A crashed writer's half-written entry: not in the ledger, so neither read nor counted.
    fs.writeFileSync(path.join(root, 'tmp', '1-2-dead-999999'), keyBytes(7));
    expect(store.ledgerBytes()).toBeLessThan(999_999);
    expect(missed(store.keyFilter()!, 1, 2)).toEqual([]);
  });
});
