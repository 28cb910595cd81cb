// The answer store on object storage against a real S3-compatible server (versitygw): answers
// written by two workers are found by a third with an empty cache, `fromJob` restricts what a plan
// sees, eviction removes the oldest segments, and every way the store can be damaged (a cache
// deleted, a segment evicted under a listing, a torn record) reads as misses, never as a wrong answer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptionsOf, startTestObjectServer, type Server } from '../support/object-server.ts';
import { answerRecord, customIdRange, jobTag, type AnswerSource } from '../../storage/answers.ts';
import { encodeSegmentIndex } from '../../storage/answer-index.ts';
import { S3AnswerStore } from '../../storage/s3-answers.ts';
import { ObjectStore } from '../../storage/s3.ts';

const BUCKET = 'batchpilot-answers';

const keyOf = (i: number): string => i.toString(16).padStart(32, '0');
const resultOf = (job: string, i: number): Buffer =>
  Buffer.from(
    JSON.stringify({ id: `r-${i}`, custom_id: `c-${i}`, response: { status_code: 200, body: { job, i } } }),
  );

/** The body a stored answer carries (which job's, which line), or undefined on a miss. */
function bodyOf(source: AnswerSource, i: number): { job: string; i: number } | undefined {
  const a = source.get(keyOf(i));
  if (!a) return undefined;
  return (JSON.parse(a.result.toString()) as { response: { body: { job: string; i: number } } }).response
    .body;
}

describe('answer store on object storage', () => {
  let dir: string;
  let server: Server;
  let objects: ObjectStore;
  let n = 0;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-s3answers-'));
    server = await startTestObjectServer(dir);
    objects = new ObjectStore(clientOptionsOf(server));
    await objects.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  afterAll(async () => {
    objects?.close();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A store as one worker sees it: its own cache folder, one prefix per test. */
  const storeOn = (prefix: string, worker: string, maxBytes?: number) =>
    new S3AnswerStore({
      objects,
      root: { bucket: BUCKET, key: `${prefix}/answers/` },
      cacheDir: path.join(dir, `cache-${prefix}-${worker}`),
      ...(maxBytes ? { maxBytes } : {}),
    });

  async function write(store: S3AnswerStore, job: string, from: number, count: number): Promise<void> {
    const w = store.writer(job);
    for (let i = from; i < from + count; i++)
      expect(
        w.put(keyOf(i), { model: 'm', usage: [1, 2, 3], customId: `c-${i}`, result: resultOf(job, i) }),
      ).toBe(true);
    await w.close();
  }

  const keysUnder = async (prefix: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const o of objects.list({ bucket: BUCKET, key: prefix })) out.push(o.key.slice(prefix.length));
    return out;
  };

  it("finds two writers' answers from a third worker with an empty cache; fromJob restricts", async () => {
    const p = `t${n++}`;
    await write(storeOn(p, 'a'), 'job-a', 0, 300);
    // Overlaps job-a's keys 250..299: either answer is a right one; fromJob picks its own.
    await write(storeOn(p, 'b'), 'job-b', 250, 300);
    expect(await keysUnder(`${p}/answers/idx/`)).toHaveLength(2);
    expect(await keysUnder(`${p}/answers/seg/`)).toHaveLength(2);

    const third = storeOn(p, 'c');
    expect(fs.existsSync(path.join(dir, `cache-${p}-c`))).toBe(false);
    expect(await third.hasJob('job-a')).toBe(true);
    expect(await third.hasJob('job-z')).toBe(false);
    const all = await third.prepare(undefined);
    try {
      for (const i of [0, 1, 149, 249]) expect(bodyOf(all, i)).toEqual({ job: 'job-a', i });
      for (const i of [300, 420, 549]) expect(bodyOf(all, i)).toEqual({ job: 'job-b', i });
      for (const i of [250, 299]) expect(bodyOf(all, i)?.i).toBe(i);
      // Keys never stored miss, below, between and above the stored ones.
      for (const i of [550, 10_000, 2 ** 40]) expect(all.get(keyOf(i))).toBeUndefined();
      const filter = all.keyFilter()!;
      expect(filter.mayHold(Buffer.from(keyOf(5), 'hex'))).toBe(true);
      // The stored answer keeps what the planner needs: its job, usage and where its custom_id is.
      const a = all.get(keyOf(7))!;
      expect(a.meta).toMatchObject({ job: 'job-a', model: 'm', usage: [1, 2, 3] });
      expect(a.result.subarray(a.meta.at[0], a.meta.at[1]).toString()).toBe('"c-7"');
    } finally {
      all.release?.();
    }
    const onlyA = await third.prepare('job-a');
    try {
      expect(bodyOf(onlyA, 260)).toEqual({ job: 'job-a', i: 260 });
      expect(bodyOf(onlyA, 300)).toBeUndefined();
    } finally {
      onlyA.release?.();
    }
    const onlyB = await third.prepare('job-b');
    try {
      expect(bodyOf(onlyB, 260)).toEqual({ job: 'job-b', i: 260 });
      expect(bodyOf(onlyB, 10)).toBeUndefined();
    } finally {
      onlyB.release?.();
    }
  });

  it('evicts the oldest segments past its bound; their keys then miss, and the cache drops them', async () => {
    const p = `t${n++}`;
    const one = storeOn(p, 'a', 1e12);
    for (let s = 0; s < 5; s++) await write(one, `job-${s}`, s * 100, 100);
    const listed = await one.list();
    expect(listed).toHaveLength(5);
    const segmentBytes = listed[0]!.bytes;
    // A bound of 3.5 segments: a sixth segment brings the store to 6 > 3.5, so eviction keeps
    // the newest 2 (at most 80% of the bound).
    const bounded = storeOn(p, 'a', Math.floor(segmentBytes * 3.5));
    const before = await bounded.prepare(undefined);
    before.release?.();
    expect(fs.readdirSync(path.join(dir, `cache-${p}-a`, 'seg'))).toHaveLength(5);
    await write(bounded, 'job-5', 500, 100);
    const left = await bounded.list();
    expect(left.map((s) => s.tag)).toEqual([jobTag('job-4'), jobTag('job-5')]);
    expect(await keysUnder(`${p}/answers/seg/`)).toHaveLength(2);
    expect(fs.readdirSync(path.join(dir, `cache-${p}-a`, 'seg'))).toHaveLength(2);
    expect(await bounded.hasJob('job-0')).toBe(false);
    const after = await storeOn(p, 'b').prepare(undefined);
    try {
      for (const i of [0, 150, 399]) expect(after.get(keyOf(i))).toBeUndefined();
      for (const i of [400, 599]) expect(bodyOf(after, i)?.i).toBe(i);
    } finally {
      after.release?.();
    }
  });

  it('rebuilds a deleted cache, and reads a segment gone or torn as misses', async () => {
    const p = `t${n++}`;
    const store = storeOn(p, 'a');
    await write(store, 'job-a', 0, 50);
    await write(store, 'job-b', 50, 50);
    const cache = path.join(dir, `cache-${p}-a`);
    fs.rmSync(cache, { recursive: true, force: true });
    const rebuilt = await store.prepare(undefined);
    try {
      expect(bodyOf(rebuilt, 10)).toEqual({ job: 'job-a', i: 10 });
      expect(bodyOf(rebuilt, 60)).toEqual({ job: 'job-b', i: 60 });
    } finally {
      rebuilt.release?.();
    }

    // job-b's segment deleted under its listed index (another worker evicting between the listing
    // and the mirror): a worker with an empty cache reads its keys as misses, job-a's still hit.
    const [, b] = await store.list();
    await objects.delete({ bucket: BUCKET, key: `${p}/answers/seg/${b!.name}` });
    const other = await storeOn(p, 'b').prepare(undefined);
    try {
      expect(bodyOf(other, 10)).toEqual({ job: 'job-a', i: 10 });
      expect(other.get(keyOf(60))).toBeUndefined();
    } finally {
      other.release?.();
    }

    // A segment whose records are shorter than their headers say (a writer's bytes torn before the
    // upload): those records miss, the whole ones around them hit.
    const records: Buffer[] = [];
    const entries = [];
    let offset = 0;
    for (const i of [200, 201, 202]) {
      const result = resultOf('job-t', i);
      let rec = answerRecord(
        'job-t',
        { model: 'm', usage: null, customId: `c-${i}`, result },
        customIdRange(result, `c-${i}`)!,
      );
      if (i === 201) rec = rec.subarray(0, rec.length - 5);
      records.push(rec);
      entries.push({ key: Buffer.from(keyOf(i), 'hex'), offset, length: rec.length });
      offset += rec.length;
    }
    const name = `${String(Date.now()).padStart(13, '0')}-0badc0de-${offset}-${jobTag('job-t')}`;
    await objects.write({ bucket: BUCKET, key: `${p}/answers/seg/${name}` }, Buffer.concat(records));
    await objects.write({ bucket: BUCKET, key: `${p}/answers/idx/${name}` }, encodeSegmentIndex(entries));
    const torn = await storeOn(p, 'c').prepare('job-t');
    try {
      expect(bodyOf(torn, 200)).toEqual({ job: 'job-t', i: 200 });
      expect(torn.get(keyOf(201))).toBeUndefined();
      expect(bodyOf(torn, 202)).toEqual({ job: 'job-t', i: 202 });
    } finally {
      torn.release?.();
    }
  });

  it('holds only its fence and filter in memory: lookups stay right across many blocks and segments', async () => {
    const p = `t${n++}`;
    const store = storeOn(p, 'a');
    // Interleaved keys over 12 segments: the merge must order them, every block boundary is crossed.
    for (let s = 0; s < 12; s++) {
      const w = store.writer(`job-${s}`);
      for (let i = s; i < 3000; i += 12)
        w.put(keyOf(i * 7919), {
          model: 'm',
          usage: null,
          customId: `c-${i}`,
          result: resultOf(`job-${s}`, i),
        });
      await w.close();
    }
    const src = await storeOn(p, 'b').prepare(undefined);
    try {
      for (let i = 0; i < 3000; i++) {
        const a = src.get(keyOf(i * 7919));
        expect(
          a && (JSON.parse(a.result.toString()) as { response: { body: { i: number } } }).response.body.i,
        ).toBe(i);
        expect(src.get(keyOf(i * 7919 + 1))).toBeUndefined();
      }
    } finally {
      src.release?.();
    }
  });
});
