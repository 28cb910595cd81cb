// A whole job on S3-compatible storage: the real Temporal dev server, the emulator over HTTP, a
// worker with BATCHPILOT_STORAGE=s3://… and its own scratch folder, versitygw as the store. The
// input is an object and the outputs are objects; every line ends in exactly one output, and the
// answers are those of the same job on a local folder. A merge of more shards than its budget
// reads at once takes passes through runs, with its read buffers within the budget.
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import { startObjectTestBed, type ObjectTestBed } from '../support/object-server.ts';
import {
  emptyCounts,
  mergeIoOf,
  mergeShards,
  MIN_OBJECT_CHUNK,
  objectInputBytes,
} from '../../activities/merge-kway.ts';
import { ByteWriter } from '../../activities/byte-writer.ts';
import type { MergeSummary } from '../../common/job-types.ts';
import { readBuffers, ObjectSink } from '../../storage/byte-io.ts';
import { workKey } from '../../storage/layout.ts';
import { ObjectStore } from '../../storage/s3.ts';
import { Stores } from '../../storage/workspace.ts';
import type { DevServer } from '../../worker/dev-server.ts';
import { readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';

const BUCKET = 'batchpilot-jobs';
const LIMITS = { maxLines: 40, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

interface Line {
  custom_id: string;
  response?: { body?: { choices?: { message?: { content?: string } }[] } };
  error?: { code?: string };
}

/**
 * Samples a worker's scratch folder every few milliseconds, recording per step (a step's folders
 * are named `<step>-<random>`, storage/workspace.ts) the most bytes its folder ever held. The
 * worker runs in this process, so samples fall between its I/O steps, where scratch changes.
 */
function watchScratch(root: string): { peak: Map<string, number>; stop: () => void } {
  const peak = new Map<string, number>();
  const bytesUnder = (dir: string): number => {
    let total = 0;
    for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      try {
        total += fs.statSync(path.join(e.parentPath, e.name)).size;
      } catch {
        // Removed between the listing and the stat.
      }
    }
    return total;
  };
  const timer = setInterval(() => {
    for (const name of fs.existsSync(root) ? fs.readdirSync(root) : []) {
      const step = name.replace(/-[0-9a-f]{12}$/, '');
      let bytes: number;
      try {
        bytes = bytesUnder(path.join(root, name));
      } catch {
        continue;
      }
      peak.set(step, Math.max(peak.get(step) ?? 0, bytes));
    }
  }, 2);
  return { peak, stop: () => clearInterval(timer) };
}

describe('a job on S3-compatible storage', () => {
  let bed: ObjectTestBed;
  let dir: string;
  let temporal: DevServer;
  let bundlePath: string;
  let objects: ObjectStore;

  beforeAll(async () => {
    bed = await startObjectTestBed('s3job', BUCKET);
    ({ dir, temporal, bundlePath } = bed);
    objects = new ObjectStore();
  });
  afterAll(async () => {
    objects?.close();
    await bed?.close();
  });

  const harness = (scratch: string, faults?: FaultSettings, mergeShardBudgetBytes?: number) =>
    startHarness({
      temporalAddress: temporal.address,
      workflowBundlePath: bundlePath,
      storage: `s3://${BUCKET}/jobs`,
      scratchDir: scratch,
      ...(faults ? { faults } : {}),
      ...(mergeShardBudgetBytes ? { mergeShardBudgetBytes } : {}),
    });

  const object = async (key: string): Promise<Buffer> => buffer(await objects.read({ bucket: BUCKET, key }));
  /** The sizes of the objects under `prefix`, by the rest of their key. */
  const sizesUnder = async (prefix: string): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    for await (const o of objects.list({ bucket: BUCKET, key: prefix }))
      out.set(o.key.slice(prefix.length), o.size);
    return out;
  };
  /**
   * The scratch a step may hold at once: the most bytes one round-1 shard has (its request lines
   * plus its final outcomes), twice, and the round-1 manifest (~200 bytes a shard), which both the
   * merge and retry packing read.
   */
  const scratchBound = async (work: string): Promise<{ shard: number; bound: number }> => {
    const round1 = await sizesUnder(`${work}/round-1/`);
    const finals = await sizesUnder(`${work}/final/`);
    expect(finals.size).toBeGreaterThan(0);
    const shard = Math.max(...[...finals].map(([name, bytes]) => bytes + (round1.get(name) ?? 0)));
    return { shard, bound: 2 * shard + round1.get('manifest.json')! };
  };
  const objectLines = async <T>(key: string): Promise<T[]> =>
    (await object(key))
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as T);

  it('reads an s3:// input, writes outputs under an s3:// --out, and answers as the same job on disk', async () => {
    const scratch = path.join(dir, 'scratch-a');
    const h: Harness = await harness(scratch);
    try {
      const name = writeChatInput(h.dataDir, 'in.jsonl', 150, ['qwen-plus', 'qwen-flash']);
      // A duplicate custom_id: rejected on both.
      fs.appendFileSync(
        path.join(h.dataDir, name),
        JSON.stringify({
          custom_id: 'req-3',
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'qwen-plus', messages: [] },
        }) + '\n',
      );
      const input = fs.readFileSync(path.join(h.dataDir, name));
      await objects.write({ bucket: BUCKET, key: 'inputs/in.jsonl' }, input);

      // Input given as an s3:// URI, --out relative: under BATCHPILOT_STORAGE's prefix.
      const onS3 = await h.runJob(`s3://${BUCKET}/inputs/in.jsonl`, 'out-s3', { limits: LIMITS });
      // The same job with absolute local paths, which stay on the local data root.
      const local = path.join(fs.realpathSync(h.dataDir), 'out-local');
      const onDisk = await h.runJob(path.join(fs.realpathSync(h.dataDir), name), local, { limits: LIMITS });

      expect(onS3.status).toBe('completed');
      expect(onS3.lines).toEqual({ total: 151, succeeded: 150, failed: 0, rejected: 1 });
      expect(onS3.lines).toEqual(onDisk.lines);
      expect(onS3.shards).toBe(onDisk.shards);
      expect(onS3.shards).toBe(4);

      const results = await objectLines<Line>('jobs/out-s3/results.jsonl');
      const localResults = readJsonl<Line>(path.join(local, 'results.jsonl'));
      expect(results.map((r) => r.custom_id)).toEqual(localResults.map((r) => r.custom_id));
      expect(results.map((r) => r.response?.body?.choices?.[0]?.message?.content)).toEqual(
        localResults.map((r) => r.response?.body?.choices?.[0]?.message?.content),
      );
      expect(await object('jobs/out-s3/rejected.jsonl')).toEqual(
        fs.readFileSync(path.join(local, 'rejected.jsonl')),
      );
      expect(await object('jobs/out-s3/errors.jsonl')).toEqual(
        fs.readFileSync(path.join(local, 'errors.jsonl')),
      );
      const manifest = JSON.parse((await object('jobs/out-s3/manifest.json')).toString()) as {
        input: string;
        shards: unknown[];
      };
      const localManifest = JSON.parse(fs.readFileSync(path.join(local, 'manifest.json'), 'utf8')) as {
        input: string;
        shards: unknown[];
      };
      expect(manifest.input).toBe(`s3://${BUCKET}/inputs/in.jsonl`);
      expect(manifest.shards).toEqual(localManifest.shards);
      const summary = JSON.parse((await object('jobs/out-s3/summary.json')).toString()) as {
        status: string;
        lines: unknown;
      };
      expect(summary.lines).toEqual(onS3.lines);

      // Nothing of the job on the worker's disk: no output folder on the data root, scratch emptied;
      // the work objects are cleared after success but the job record, as on disk.
      expect(fs.existsSync(path.join(h.dataDir, 'out-s3'))).toBe(false);
      expect(fs.readdirSync(scratch)).toEqual([]);
      const left: string[] = [];
      for await (const o of objects.list({ bucket: BUCKET, key: 'jobs/out-s3/.batchpilot/' }))
        left.push(o.key);
      expect(left).toEqual(['jobs/out-s3/.batchpilot/job.json']);

      // An input object that is not there fails the job at once (no retry), naming the object.
      const uri = `s3://${BUCKET}/inputs/missing.jsonl`;
      const failed = await h.runJob(uri, 'out-missing', { limits: LIMITS }).catch((e: unknown) => e);
      let cause: unknown = failed;
      while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('InputMissing');
      expect((cause as ApplicationFailure).nonRetryable).toBe(true);
      expect((cause as ApplicationFailure).message).toContain(uri);
    } finally {
      await h.close();
    }
  });

  it('runs retry rounds through the store: every line ends in exactly one output', async () => {
    const scratch = path.join(dir, 'scratch-b');
    const h = await harness(scratch, {
      seed: 11,
      validatingMs: 50,
      perLineMs: 0,
      finalizingMs: 50,
      lineRetryableRate: 0.2,
      linePermanentRate: 0.05,
    });
    try {
      const name = writeChatInput(h.dataDir, 'faulty.jsonl', 120);
      await objects.write(
        { bucket: BUCKET, key: 'jobs/faulty.jsonl' },
        fs.readFileSync(path.join(h.dataDir, name)),
      );
      // Both relative: the input and the outputs under BATCHPILOT_STORAGE's prefix.
      const s = await h.runJob('faulty.jsonl', 'out-faulty', { limits: LIMITS, keepWorkDir: true });
      expect(s.status).toBe('completed');
      expect(s.rounds).toBeGreaterThan(1);
      const results = await objectLines<Line>('jobs/out-faulty/results.jsonl');
      const errors = await objectLines<Line>('jobs/out-faulty/errors.jsonl');
      const ids = [...results, ...errors].map((l) => l.custom_id).sort();
      expect(ids).toEqual(Array.from({ length: 120 }, (_, i) => `req-${i}`).sort());
      expect(results.length).toBe(s.lines.succeeded);
      expect(errors.length).toBe(s.lines.failed);
      expect(errors.length).toBeGreaterThan(0);
      // The retry rounds' units are objects too (kept with keepWorkDir).
      const round2: string[] = [];
      for await (const o of objects.list({ bucket: BUCKET, key: 'jobs/out-faulty/.batchpilot/round-2/' }))
        round2.push(o.key.split('/').pop()!);
      expect(round2).toContain('manifest.json');
      expect(round2.some((k) => k.endsWith('.origin'))).toBe(true);
      const stats = await h.stats();
      // One batch per (shard, round): never a second batch for a unit's file.
      expect(Object.values(stats.batchesByInputFile).every((b) => b === 1)).toBe(true);
      expect(stats.batchesCreated).toBeGreaterThan(s.shards);
      expect(fs.readdirSync(scratch)).toEqual([]);
    } finally {
      await h.close();
    }
  });
  /**
   * The scratch planning may hold at once: the shards being written (one per model: `models`) and
   * at most two finished ones being committed, each with its sidecar; or, at its end, the round's
   * manifest and the plan summary; with the job record and the answers setting (under 1 KiB).
   */
  const planBound = async (work: string, models: number): Promise<number> => {
    const round1 = await sizesUnder(`${work}/round-1/`);
    const shards = [...round1].filter(([k]) => /^shard-\d+\.jsonl$/.test(k));
    expect(shards.length).toBeGreaterThan(0);
    const shard = Math.max(...shards.map(([k, b]) => b + round1.get(k.replace(/\.jsonl$/, '.lines'))!));
    const plan = (await sizesUnder(`${work}/plan.json`)).get('')!;
    return Math.max((models + 2) * shard, round1.get('manifest.json')! + plan) + 1024;
  };

  it("keeps a worker's scratch to a few shards in the plan and about one in the merge, and the merge's read buffers within its budget, whatever the job's size", async () => {
    // Three inputs a merge at this budget: 25 shards take runs of runs, the same bytes as one pass.
    // In one pass they would hold 25 inputs' buffers, several times the budget.
    const budget = 3 * 1024 * 1024;
    const scratch = path.join(dir, 'scratch-c');
    const h = await harness(scratch, undefined, budget);
    const watch = watchScratch(scratch);
    const stores = new Stores({ scratchDir: path.join(dir, 'scratch-c-direct') });
    try {
      const name = writeChatInput(h.dataDir, 'many.jsonl', 300, ['qwen-plus', 'qwen-flash']);
      await objects.write(
        { bucket: BUCKET, key: 'jobs/many.jsonl' },
        fs.readFileSync(path.join(h.dataDir, name)),
      );
      const limits = { ...LIMITS, maxLines: 12 };
      readBuffers.resetPeak();
      const onS3 = await h.runJob('many.jsonl', 'out-many', { limits, keepWorkDir: true });
      const inJob = readBuffers.peak;
      watch.stop();
      const local = path.join(fs.realpathSync(h.dataDir), 'out-many-local');
      const onDisk = await h.runJob(path.join(fs.realpathSync(h.dataDir), name), local, { limits });
      expect(onS3.status).toBe('completed');
      expect(onS3.lines).toEqual({ total: 300, succeeded: 300, failed: 0, rejected: 0 });
      expect(onS3.shards).toBe(onDisk.shards);
      expect(onS3.shards).toBeGreaterThanOrEqual(25);

      // The answers are those of the same job on disk (ids and timestamps are the provider's own).
      const results = await objectLines<Line>('jobs/out-many/results.jsonl');
      const localResults = readJsonl<Line>(path.join(local, 'results.jsonl'));
      expect(results.map((r) => [r.custom_id, r.response?.body?.choices?.[0]?.message?.content])).toEqual(
        localResults.map((r) => [r.custom_id, r.response?.body?.choices?.[0]?.message?.content]),
      );
      expect(await object('jobs/out-many/errors.jsonl')).toEqual(
        fs.readFileSync(path.join(local, 'errors.jsonl')),
      );

      // The outputs are many shards' worth; the merge's scratch never held more than two shards.
      const { bound } = await scratchBound('jobs/out-many/.batchpilot');
      const outputs = (await sizesUnder('jobs/out-many/')).get('results.jsonl')!;
      expect(outputs).toBeGreaterThan(3 * bound);
      const merge = watch.peak.get('merge');
      expect(merge).toBeGreaterThan(0);
      expect(merge).toBeLessThanOrEqual(bound);

      // The input was read where it lies, and each finished shard committed and dropped at once:
      // planning held a few shards, not the input (several times larger), nor a copy of it.
      const input = (await sizesUnder('jobs/many.jsonl')).get('')!;
      const plan = await planBound('jobs/out-many/.batchpilot', 2);
      expect(input).toBeGreaterThan(3 * plan);
      expect(watch.peak.get('plan')).toBeGreaterThan(0);
      expect(watch.peak.get('plan')).toBeLessThanOrEqual(plan);
      expect(fs.readdirSync(scratch)).toEqual([]);

      // The merge's read buffers stayed within its budget; its runs are gone once it committed.
      expect(onS3.shards * objectInputBytes(MIN_OBJECT_CHUNK)).toBeGreaterThan(3 * budget);
      expect(inJob).toBeGreaterThan(0);
      expect(inJob).toBeLessThanOrEqual(budget);
      const work = 'jobs/out-many/.batchpilot';
      expect((await sizesUnder(`${work}/merge/`)).size).toBe(0);

      // The same finals merged again from the objects alone, as a retry on another worker would:
      // in one pass (the default budget), and in passes after an attempt that left one run without
      // its completion record.
      const merged = async (mergeBudget: number, out: string) => {
        const ws = await stores.workspace(`s3://${BUCKET}/${work}`, 'merge');
        try {
          await ws.pull(workKey.roundManifest(1));
          const io = {
            ...mergeIoOf(ws),
            output: (n: 'results' | 'errors') =>
              new ByteWriter(new ObjectSink(ws.store, `${out}/${n}.jsonl`)),
          };
          const summary: MergeSummary = emptyCounts();
          readBuffers.resetPeak();
          const m = await mergeShards(ws.dir, io, onS3.shards, mergeBudget, summary, () => {});
          await m.results.commit();
          await m.errors.commit();
          for (const f of ['results.jsonl', 'errors.jsonl'])
            expect(await object(`jobs/out-many/${out}/${f}`)).toEqual(await object(`jobs/out-many/${f}`));
          expect(summary.succeeded).toBe(300);
          expect(Object.keys(summary.usageByModel)).toEqual(['qwen-flash', 'qwen-plus']);
          return { ...m.passes, peak: readBuffers.peak, usage: summary.usageByModel };
        } finally {
          await ws.release();
        }
      };
      const one = await merged(64 * 1024 * 1024, 'one-pass');
      expect(one.passes).toBe(1);
      // One pass at this shard count holds more than the small budget: the measure can tell.
      expect(one.peak).toBeGreaterThan(budget);

      const first = await merged(budget, 'passes-1');
      const runs = Math.ceil(onS3.shards / 3) + Math.ceil(Math.ceil(onS3.shards / 3) / 3);
      expect(first).toMatchObject({ passes: 3, runsBuilt: runs, runsReused: 0 });
      expect(first.peak).toBeLessThanOrEqual(budget);
      expect(first.usage).toEqual(one.usage);
      const run = workKey.mergeRun(3, 1, 4);
      await objects.delete({ bucket: BUCKET, key: `${work}/${run.done}` });
      const retried = await merged(budget, 'passes-2');
      expect(retried).toMatchObject({ passes: 3, runsBuilt: 1, runsReused: runs - 1 });
    } finally {
      watch.stop();
      stores.close();
      await h.close();
    }
  });

  it("keeps a worker's scratch to about one shard when it packs a large retry round", async () => {
    const scratch = path.join(dir, 'scratch-d');
    const h = await harness(scratch, {
      seed: 5,
      validatingMs: 20,
      perLineMs: 0,
      finalizingMs: 20,
      lineRetryableRate: 0.5,
      linePermanentRate: 0,
    });
    const watch = watchScratch(scratch);
    try {
      // Long questions: a retry round's units, not its outcomes, are what packing holds.
      const input = Array.from({ length: 400 }, (_, i) =>
        JSON.stringify({
          custom_id: `req-${i}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            model: 'qwen-plus',
            messages: [{ role: 'user', content: `question ${i} ${'?'.repeat(2000)}` }],
          },
        }),
      );
      await objects.write({ bucket: BUCKET, key: 'jobs/retries.jsonl' }, input.join('\n') + '\n');
      const limits = { ...LIMITS, maxLines: 20 };
      const s = await h.runJob('retries.jsonl', 'out-retries', { limits, keepWorkDir: true });
      watch.stop();
      expect(s.status).toBe('completed');
      expect(s.rounds).toBeGreaterThan(1);
      const results = await objectLines<Line>('jobs/out-retries/results.jsonl');
      const errors = await objectLines<Line>('jobs/out-retries/errors.jsonl');
      const ids = [...results, ...errors].map((l) => l.custom_id).sort();
      expect(ids).toEqual(Array.from({ length: 400 }, (_, i) => `req-${i}`).sort());

      // Round 2 is several shards' worth of lines; packing it held about one shard in scratch.
      const work = 'jobs/out-retries/.batchpilot';
      const { bound } = await scratchBound(work);
      const round2 = await sizesUnder(`${work}/round-2/`);
      const round2Units = [...round2].filter(([k]) => k.endsWith('.jsonl')).reduce((a, [, b]) => a + b, 0);
      expect(round2Units).toBeGreaterThan(3 * bound);
      const packing = watch.peak.get('retry-round');
      expect(packing).toBeGreaterThan(0);
      expect(packing).toBeLessThanOrEqual(bound);
      expect(watch.peak.get('merge')).toBeLessThanOrEqual(bound);
      const stats = await h.stats();
      expect(Object.values(stats.batchesByInputFile).every((b) => b === 1)).toBe(true);
      expect(fs.readdirSync(scratch)).toEqual([]);
    } finally {
      watch.stop();
      await h.close();
    }
  });
});
