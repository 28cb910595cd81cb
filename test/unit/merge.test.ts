// The merge activity on a small work directory built by hand in the layout collection leaves
// (storage/layout.ts): input order across shards, each line's last outcome winning, lines
// with no outcome, usage per model, the hard-link path for complete in-order shards, the
// over-budget path, reuse or rebuild of `final/` files left by an earlier attempt, and the object
// path's ranged reads, streamed outputs and merge in passes (over a local store, which serves
// ranges as S3 does).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteWriter } from '../../activities/byte-writer.ts';
import { mergeActivities, type MergeInput } from '../../activities/merge.ts';
import { emptyCounts, mergeShards, type MergeIo } from '../../activities/merge-kway.ts';
import { ObjectSink, ObjectSource } from '../../storage/byte-io.ts';
import { LocalStore, type JobStore } from '../../storage/store.ts';
import type { MergeSummary } from '../../common/job-types.ts';
import type { PlanManifest } from '../../storage/manifest.ts';
import {
  finalFile,
  lineNumbersFile,
  outcomeFile,
  rejectedFile,
  roundDir,
  roundManifestFile,
  unitFile,
  workDirOf,
  workKey,
} from '../../storage/layout.ts';
import { encodeOutcome, type OutcomeRecord } from '../../storage/outcome-record.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface ShardSpec {
  model: string;
  /** Input line numbers (1-based) of the shard's lines, in shard order. */
  inputLines: number[];
}

const result = (cid: string, content: string) =>
  JSON.stringify({
    id: `r-${cid}`,
    custom_id: cid,
    response: { status_code: 200, body: { choices: [{ message: { content } }] } },
  });
const ok = (line: number, customId: string, attempt = 1, usage: [number, number, number] = [3, 4, 7]) =>
  encodeOutcome(
    { line, kind: 'ok', attempt, customId, usage },
    result(customId, `answer ${customId} round ${attempt}`),
  );
const failed = (line: number, customId: string, attempt: number) => {
  const record: OutcomeRecord = {
    line,
    kind: 'permanent',
    attempt,
    customId,
    error: { code: 'invalid_request', message: 'bad request', status_code: 400 },
  };
  return encodeOutcome(
    record,
    JSON.stringify({ custom_id: customId, response: { status_code: 400, body: {} } }),
  );
};
const retry = (line: number, customId: string, attempt: number) =>
  encodeOutcome(
    {
      line,
      kind: 'retry',
      attempt,
      customId,
      error: { code: 'rate_limited', message: '429', status_code: 429 },
    },
    '',
  );

/** Writes a job's work dir: round-1 units and sidecars, manifest, rejected lines. */
function layout(shards: ShardSpec[], rejected: string[] = []) {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-merge-'));
  dirs.push(outDir);
  const workDir = workDirOf(outDir);
  fs.mkdirSync(roundDir(workDir, 1), { recursive: true });
  shards.forEach((s, n) => {
    const lines = s.inputLines.map((ln) => JSON.stringify({ custom_id: `c${ln}`, body: { model: s.model } }));
    fs.writeFileSync(unitFile(workDir, 1, n), lines.join('\n') + '\n');
    const nums = Buffer.alloc(4 * s.inputLines.length);
    s.inputLines.forEach((ln, i) => nums.writeUInt32LE(ln, 4 * i));
    fs.writeFileSync(lineNumbersFile(workDir, n), nums);
  });
  const manifest: PlanManifest = {
    shards: shards.map((s, index) => ({
      index,
      file: path.basename(unitFile(workDir, 1, index)),
      model: s.model,
      thinking: null,
      lines: s.inputLines.length,
      bytes: fs.statSync(unitFile(workDir, 1, index)).size,
      sha256: '',
    })),
    limits: { maxLines: 50_000, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
    endpoint: '/v1/chat/completions',
    input: 'in.jsonl',
  };
  fs.writeFileSync(roundManifestFile(workDir, 1), JSON.stringify(manifest));
  fs.writeFileSync(rejectedFile(workDir), rejected.map((r) => r + '\n').join(''));
  const outcomes = (shard: number, round: number, unit: number, lines: string[]) => {
    const f = outcomeFile(workDir, shard, round, unit);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, lines.map((l) => l + '\n').join(''));
  };
  const input = (jobStatus: MergeInput['jobStatus'] = 'completed'): MergeInput => ({
    paths: { input: path.join(outDir, 'in.jsonl'), outDir, workDir },
    shardLines: shards.map((s) => s.inputLines.length),
    jobStatus,
  });
  return { outDir, workDir, outcomes, input };
}

async function runMerge(input: MergeInput, budget?: number) {
  const deps = {
    openai: undefined as never,
    profile: undefined as never,
    dataDir: input.paths.outDir,
    logger: pino({ level: 'silent' }),
    ...(budget !== undefined ? { mergeShardBudgetBytes: budget } : {}),
  };
  const { mergeJob } = mergeActivities(deps);
  return new MockActivityEnvironment().run<[MergeInput], MergeSummary, typeof mergeJob>(mergeJob, input);
}

const readJsonl = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Two shards whose lines interleave in the input, with a retry round, a failure and a gap. */
function interleaved() {
  // Input lines 1..8: odd ones are model a (shard 0), even ones model b (shard 1).
  const job = layout(
    [
      { model: 'qwen-plus', inputLines: [1, 3, 5, 7] },
      { model: 'qwen-turbo', inputLines: [2, 4, 6, 8] },
    ],
    ['{"line":9,"code":"invalid_json"}'],
  );
  // Shard 0: line 1 retried then answered in round 2; line 2 failed for good; the output file came
  // back out of order.
  job.outcomes(0, 1, 0, [ok(3, 'c7'), ok(0, 'c1'), retry(1, 'c3', 1), failed(2, 'c5', 1)]);
  job.outcomes(0, 2, 0, [ok(1, 'c3', 2, [10, 20, 30])]);
  // Shard 1: line 3 (input 8) never got an outcome.
  job.outcomes(1, 1, 1, [ok(0, 'c2'), ok(1, 'c4'), ok(2, 'c6')]);
  return job;
}

describe('mergeJob', () => {
  it('writes every line once in input order, the last outcome winning', async () => {
    const job = interleaved();
    const summary = await runMerge(job.input());
    const results = readJsonl(path.join(job.outDir, 'results.jsonl'));
    expect(results.map((r) => r.custom_id)).toEqual(['c1', 'c2', 'c3', 'c4', 'c6', 'c7']);
    expect(JSON.stringify(results[2])).toContain('answer c3 round 2');
    const errors = readJsonl(path.join(job.outDir, 'errors.jsonl'));
    expect(errors.map((e) => [e.custom_id, (e.error as { code: string }).code, e.attempts])).toEqual([
      ['c5', 'invalid_request', 1],
      ['c8', 'not_processed', 0],
    ]);
    expect(errors[0]!.response).toEqual({ status_code: 400, body: {} });
    expect(summary.succeeded).toBe(6);
    expect(summary.failed).toBe(2);
    expect(summary.rejected).toBe(1);
    expect(summary.usage).toEqual({ prompt_tokens: 25, completion_tokens: 40, total_tokens: 65 });
    expect(summary.usageByModel).toEqual({
      'qwen-plus': { prompt_tokens: 16, completion_tokens: 28, total_tokens: 44 },
      'qwen-turbo': { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
    });
    expect(fs.readFileSync(path.join(job.outDir, 'rejected.jsonl'), 'utf8')).toBe(
      '{"line":9,"code":"invalid_json"}\n',
    );
    expect(JSON.parse(fs.readFileSync(path.join(job.outDir, 'manifest.json'), 'utf8'))).toHaveProperty(
      'shards',
    );
    // No temporary files left behind.
    expect(fs.readdirSync(job.outDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('marks lines that never got an outcome as cancelled when the job was cancelled', async () => {
    const job = interleaved();
    await runMerge(job.input('cancelled'));
    const errors = readJsonl(path.join(job.outDir, 'errors.jsonl'));
    expect(errors.find((e) => e.custom_id === 'c8')?.error).toMatchObject({ code: 'batch_cancelled' });
  });

  it('gives the same outputs when the shards exceed the in-memory budget', async () => {
    const a = interleaved();
    await runMerge(a.input());
    const b = interleaved();
    await runMerge(b.input(), 1);
    for (const f of ['results.jsonl', 'errors.jsonl', 'rejected.jsonl']) {
      expect(fs.readFileSync(path.join(b.outDir, f), 'utf8')).toBe(
        fs.readFileSync(path.join(a.outDir, f), 'utf8'),
      );
    }
  });

  it('merges the same bytes from objects read in ranged chunks of a few bytes, streaming its outputs', async () => {
    const a = interleaved();
    await runMerge(a.input());
    // The final files of that merge, read as objects through ranged reads of 7 bytes (lines and
    // Uint32 line numbers cut across chunks), the outputs written through streamed object writes.
    const work = new LocalStore(a.workDir);
    const outputs = new LocalStore(fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-merge-obj-')));
    dirs.push(outputs.root);
    const ranges: string[] = [];
    const counted: JobStore = Object.assign(Object.create(work) as LocalStore, {
      read: (key: string, range?: { start: number; end?: number }) => {
        ranges.push(key);
        return work.read(key, range);
      },
    });
    const io: MergeIo = {
      has: async (key) => (await work.size(key)) !== undefined,
      open: (key, chunk) => ObjectSource.open(counted, key, chunk),
      output: (name) => new ByteWriter(new ObjectSink(outputs, `${name}.jsonl`)),
      readPlan: () => ({ fanIn: Infinity, buffer: 7, numbers: 7 }),
      runs: { store: work, prefix: '' },
    };
    const summary: MergeSummary = emptyCounts();
    const { results, errors } = await mergeShards(a.workDir, io, 2, 1 << 20, summary, () => {});
    await results.commit();
    await errors.commit();
    for (const f of ['results.jsonl', 'errors.jsonl'])
      expect(fs.readFileSync(path.join(outputs.root, f), 'utf8')).toBe(
        fs.readFileSync(path.join(a.outDir, f), 'utf8'),
      );
    expect(summary.succeeded).toBe(6);
    expect(summary.failed).toBe(2);
    // Many ranged reads of one final file: it was never read whole.
    expect(ranges.filter((k) => k === 'final/shard-00000.jsonl').length).toBeGreaterThan(10);
  });

  it('merges in passes through runs the same bytes as in one, reusing whole runs and rebuilding the rest', async () => {
    // Seven shards whose lines interleave, two models, a failure per shard.
    const shardCount = 7;
    const job = layout(
      Array.from({ length: shardCount }, (_, s) => ({
        model: s % 2 ? 'qwen-turbo' : 'qwen-plus',
        inputLines: Array.from({ length: 5 }, (_, i) => 1 + i * shardCount + s),
      })),
    );
    for (let s = 0; s < shardCount; s++)
      job.outcomes(s, 1, s, [
        ...Array.from({ length: 4 }, (_, i) => ok(i, `c${1 + i * shardCount + s}`, 1, [s, i, s + i])),
        failed(4, `c${1 + 4 * shardCount + s}`, 1),
      ]);
    const single = await runMerge(job.input());
    const work = new LocalStore(job.workDir);
    const outputs = new LocalStore(fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-merge-obj-')));
    dirs.push(outputs.root);
    // Two inputs at once, three passes: 7 shards into 4 runs, those into 2, those into the outputs.
    const io: MergeIo = {
      has: async (key) => (await work.size(key)) !== undefined,
      open: (key, chunk) => ObjectSource.open(work, key, chunk),
      output: (name) => new ByteWriter(new ObjectSink(outputs, `${name}.jsonl`)),
      readPlan: () => ({ fanIn: 2, buffer: 64, numbers: 8 }),
      runs: { store: work, prefix: '' },
    };
    const inPasses = async () => {
      const summary: MergeSummary = emptyCounts();
      const { results, errors, passes } = await mergeShards(
        job.workDir,
        io,
        shardCount,
        1 << 20,
        summary,
        () => {},
      );
      await results.commit();
      await errors.commit();
      for (const f of ['results.jsonl', 'errors.jsonl'])
        expect(fs.readFileSync(path.join(outputs.root, f), 'utf8')).toBe(
          fs.readFileSync(path.join(job.outDir, f), 'utf8'),
        );
      expect({ ...summary, rejected: single.rejected }).toEqual(single);
      return passes;
    };
    expect(await inPasses()).toEqual({ passes: 3, runsBuilt: 6, runsReused: 0 });
    expect(single.usageByModel['qwen-turbo']!.total_tokens).toBeGreaterThan(0);

    // An attempt cut short: one run never got its completion record, another's object is short
    // (as a run from other inputs would be). Only those two are rebuilt.
    const run0 = workKey.mergeRun(2, 1, 0);
    const run1 = workKey.mergeRun(2, 1, 1);
    fs.rmSync(path.join(job.workDir, run0.done));
    fs.truncateSync(path.join(job.workDir, run1.lines), 10);
    expect(await inPasses()).toEqual({ passes: 3, runsBuilt: 2, runsReused: 4 });
    expect(fs.statSync(path.join(job.workDir, run1.lines)).size).toBeGreaterThan(10);
  });

  it('leaves no output when a streamed output is aborted', async () => {
    const store = new LocalStore(fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-merge-obj-')));
    dirs.push(store.root);
    const w = new ByteWriter(new ObjectSink(store, 'results.jsonl'));
    const line = Buffer.from('x'.repeat(1000));
    for (let i = 0; i < 5000; i++) await w.line(line, 0, line.length);
    await w.abort();
    expect(await store.size('results.jsonl')).toBeUndefined();
    expect(fs.readdirSync(store.root)).toEqual([]);
  });

  it('links a complete in-order shard instead of copying it', async () => {
    const job = layout([{ model: 'qwen-plus', inputLines: [1, 2, 3] }]);
    job.outcomes(0, 1, 0, [ok(0, 'c1'), ok(1, 'c2'), ok(2, 'c3')]);
    await runMerge(job.input());
    const outcome = fs.statSync(outcomeFile(job.workDir, 0, 1, 0));
    expect(fs.statSync(finalFile(job.workDir, 0)).ino).toBe(outcome.ino);
    const results = readJsonl(path.join(job.outDir, 'results.jsonl'));
    expect(results.map((r) => r.custom_id)).toEqual(['c1', 'c2', 'c3']);
  });

  it('reuses a whole final file from an earlier attempt and rebuilds a truncated one', async () => {
    const job = interleaved();
    await runMerge(job.input());
    const first = fs.readFileSync(path.join(job.outDir, 'results.jsonl'), 'utf8');
    // A crash before the page cache reached the disk can leave a final file short.
    const f0 = finalFile(job.workDir, 0);
    const whole = fs.readFileSync(f0);
    fs.writeFileSync(f0, whole.subarray(0, whole.indexOf(10) + 1));
    // A reused file is not rewritten: its inode stays.
    const f1 = finalFile(job.workDir, 1);
    const inode1 = fs.statSync(f1).ino;
    fs.rmSync(path.join(job.outDir, 'results.jsonl'));
    await runMerge(job.input());
    expect(fs.readFileSync(f0)).toEqual(whole);
    expect(fs.statSync(f1).ino).toBe(inode1);
    expect(fs.readFileSync(path.join(job.outDir, 'results.jsonl'), 'utf8')).toBe(first);
  });

  it('fails clearly on an outcome record it cannot read', async () => {
    const job = layout([{ model: 'qwen-plus', inputLines: [1] }]);
    job.outcomes(0, 1, 0, ['not an outcome']);
    await expect(runMerge(job.input())).rejects.toThrow(/malformed outcome record: not an outcome/);
  });

  it('fails the job at once, naming the file, when the plan manifest does not parse', async () => {
    const job = interleaved();
    const file = roundManifestFile(job.workDir, 1);
    fs.writeFileSync(file, JSON.stringify({ shards: [{ index: 0 }] }));
    const err = await runMerge(job.input()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toContain(`${file} is not a batchpilot manifest`);
  });
});
