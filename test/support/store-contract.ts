// What every JobStore (storage/store.ts) must do, as one test body run over each implementation:
// the local folder in test/unit/store.test.ts, S3-compatible storage (versitygw) in
// test/fleet/job-store.test.ts.
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import type { JobStore } from '../../storage/store.ts';

const chunks = (...parts: string[]): Readable => Readable.from(parts.map((p) => Buffer.from(p)));

async function keysOf(store: JobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

/** `open` gives a store over a fresh, empty root each time. */
export function storeContract(name: string, open: () => JobStore): void {
  describe(`${name}: the JobStore contract`, () => {
    it('writes whole strings, buffers and streams and reads them back, whole and by range', async () => {
      const store = open();
      expect(await store.write('a.json', '{"x":1}\n')).toBe(true);
      expect(await store.write('.batchpilot/round-1/shard-00000.lines', Buffer.from([1, 0, 0, 0]))).toBe(
        true,
      );
      expect(await store.write('results.jsonl', chunks('line one\n', 'line two\n'))).toBe(true);
      expect((await store.readBytes('a.json'))?.toString()).toBe('{"x":1}\n');
      expect([...(await store.readBytes('.batchpilot/round-1/shard-00000.lines'))!]).toEqual([1, 0, 0, 0]);
      expect((await buffer(await store.read('results.jsonl'))).toString()).toBe('line one\nline two\n');
      expect((await buffer(await store.read('results.jsonl', { start: 5, end: 7 }))).toString()).toBe('one');
      expect((await buffer(await store.read('results.jsonl', { start: 9 }))).toString()).toBe('line two\n');
      expect(await store.size('results.jsonl')).toBe(18);
      const st = await store.stat('results.jsonl');
      expect(st?.size).toBe(18);
      expect(st?.mtimeMs).toBeGreaterThan(0);
    });

    it('says absent for what is not there, and a read of it fails naming it', async () => {
      const store = open();
      expect(await store.size('nothing.json')).toBeUndefined();
      expect(await store.stat('nothing.json')).toBeUndefined();
      expect(await store.readBytes('nothing.json')).toBeUndefined();
      await expect(store.read('nothing.json')).rejects.toThrow(/nothing\.json/);
    });

    it('writes once with ifAbsent: a second write, even of other bytes, leaves the first', async () => {
      const store = open();
      expect(
        await store.write('.batchpilot/outcomes/collected/r1-u0.json', 'first\n', { ifAbsent: true }),
      ).toBe(true);
      expect(
        await store.write('.batchpilot/outcomes/collected/r1-u0.json', 'second\n', { ifAbsent: true }),
      ).toBe(false);
      expect(
        await store.write('.batchpilot/outcomes/collected/r1-u0.json', chunks('third\n'), { ifAbsent: true }),
      ).toBe(false);
      expect((await store.readBytes('.batchpilot/outcomes/collected/r1-u0.json'))?.toString()).toBe(
        'first\n',
      );
      // A plain write replaces.
      await store.write('.batchpilot/outcomes/collected/r1-u0.json', 'replaced\n');
      expect((await store.readBytes('.batchpilot/outcomes/collected/r1-u0.json'))?.toString()).toBe(
        'replaced\n',
      );
    });

    it('lists by prefix in key order with keys relative to the root, and deletes by prefix', async () => {
      const store = open();
      for (const k of [
        '.batchpilot/outcomes/shard-00001/r1-u1.jsonl',
        '.batchpilot/outcomes/shard-00000/r2-u0.jsonl',
        '.batchpilot/outcomes/shard-00000/r1-u0.jsonl',
        '.batchpilot/outcomes/collected/r1-u0.json',
        '.batchpilot/job.json',
        '.batchpilot/run/lock',
        'results.jsonl',
      ])
        await store.write(k, k);
      expect(await keysOf(store, '.batchpilot/outcomes/shard-00000/')).toEqual([
        '.batchpilot/outcomes/shard-00000/r1-u0.jsonl',
        '.batchpilot/outcomes/shard-00000/r2-u0.jsonl',
      ]);
      expect(await keysOf(store, '.batchpilot/outcomes/shard-')).toHaveLength(3);
      const sizes: number[] = [];
      for await (const o of store.list('.batchpilot/job')) sizes.push(o.size);
      expect(sizes).toEqual(['.batchpilot/job.json'.length]);
      await store.deletePrefix(
        '.batchpilot/',
        (k) => k === '.batchpilot/job.json' || k.startsWith('.batchpilot/run/'),
      );
      expect(await keysOf(store, '.batchpilot/')).toEqual(['.batchpilot/job.json', '.batchpilot/run/lock']);
      expect(await keysOf(store, '')).toContain('results.jsonl');
      await store.delete('results.jsonl');
      expect(await store.size('results.jsonl')).toBeUndefined();
    });
  });
}
