// Merges every outcome into the outputs in input order without sorting in memory:
//  1. per original shard, pick each line's last outcome and write them in shard order to `final/`
//     (merge-finalize.ts);
//  2. k-way merge of the shards by input line number, with one small read buffer per shard
//     (merge-kway.ts); on object storage with many shards, in passes through intermediate runs
//     so that the read buffers stay within the budget.
// Both steps work on bytes, never a string per line: the string version took 33x `cat` at 1M lines
// (bench/README.md, Merge). Each step writes to temporary names and renames, and step 1 skips
// shards already finalized, so a retried merge resumes where the last attempt stopped.
import fs from 'node:fs';
import { Transform } from 'node:stream';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { JobPaths, MergeSummary } from '../common/job-types.ts';
import { ByteWriter } from './byte-writer.ts';
import type { LineError } from './classify.ts';
import type { ActivityDeps } from './deps.ts';
import { failIfDamaged } from './disk-errors.ts';
import { logFor } from './log.ts';
import { withHeartbeat } from './heartbeat.ts';
import { ManifestError } from '../storage/manifest.ts';
import { countNewlines } from './lines.ts';
import { finalizeShard, READ_CHUNK, type Arena, type JobEnd } from './merge-finalize.ts';
import { emptyCounts, mergeIoOf, mergeShards } from './merge-kway.ts';
import { storesOf } from './stores.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import {
  clearWorkDir,
  OUTPUT_NAMES,
  outputFile,
  WORK_DIR_NAME,
  workDirOf,
  workKey,
  type OutputName,
} from '../storage/layout.ts';
import { workLocationOf } from '../storage/location.ts';
import { readText } from '../storage/store.ts';
import { clearWork, withWorkspace, type Workspace } from '../storage/workspace.ts';

export interface MergeInput {
  paths: JobPaths;
  shardLines: number[];
  /** How lines that never got an outcome are reported. */
  jobStatus: JobEnd;
  /**
   * Why lines that never got an outcome have none: the failure of their round-1 shard (keyed by
   * shard index), else the job's. Absent: "the job ended before this line was processed".
   */
  lineFailures?: { byShard?: Record<string, LineError>; job?: LineError };
}

const DEFAULT_SHARD_BUDGET = 64 * 1024 * 1024;

/** Copies a round-1 file into the outputs; returns its line count. */
async function copyCounting(from: string, to: string): Promise<number> {
  const w = new ByteWriter(to, 'durable');
  let lines = 0;
  try {
    for await (const chunk of fs.createReadStream(from, { highWaterMark: READ_CHUNK })) {
      const b = chunk as Buffer;
      lines += countNewlines(b);
      await w.raw(b);
    }
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  }
  return lines;
}

/**
 * Copies the work file `key` to the output `name`; returns its line count. On object storage it is
 * streamed from its object to the output's, never through scratch.
 */
async function copyOutput(ws: Workspace, key: string, name: OutputName): Promise<number> {
  if (!ws.remote) return copyCounting(ws.local(key), outputFile(ws.outDir, name));
  let lines = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      lines += countNewlines(chunk);
      done(null, chunk);
    },
  });
  const source = await ws.store.read(`${WORK_DIR_NAME}/${key}`);
  // A failed read fails the upload, which then commits nothing.
  source.on('error', (err) => counted.destroy(err));
  await ws.store.write(OUTPUT_NAMES[name], source.pipe(counted));
  return lines;
}

function failOnDisk(err: unknown, outDir: string): never {
  if (err instanceof ManifestError) failIfDamaged(err);
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EACCES' || code === 'EROFS' || code === 'ENOSPC' || code === 'EPERM') {
    throw ApplicationFailure.nonRetryable(
      `cannot write the outputs in ${outDir} (${code}): free space or fix permissions, then run the job again with the same --id to finish the merge without resubmitting`,
      'OutputNotWritable',
    );
  }
  throw err as Error;
}

/**
 * summary.json in object storage, written once: a retry of this job's writeSummary after it
 * committed keeps the committed object (the same job's summary, whose bytes could differ only in
 * timing fields); a summary of another job (an earlier run of the folder, before --force) is
 * replaced.
 */
async function commitSummary(ws: Workspace, text: string, workflowId: string | undefined): Promise<void> {
  if (await ws.store.write(OUTPUT_NAMES.summary, text, { ifAbsent: true })) return;
  const committed = await readText(ws.store, OUTPUT_NAMES.summary);
  const owner = (() => {
    try {
      return (JSON.parse(committed ?? '') as { workflowId?: string }).workflowId;
    } catch {
      return undefined;
    }
  })();
  if (owner !== undefined && owner === workflowId) return;
  await ws.store.write(OUTPUT_NAMES.summary, text);
}

/**
 * The activities of the merge (mergeJob, writeSummary), built on the worker's dependencies. Long as a whole, not as a unit: each
 * inner function is one activity or one named step of one, sharing what this closure holds.
 */
export function mergeActivities(deps: ActivityDeps) {
  /**
   * On object storage scratch holds one shard at a time: its outcomes and lines are pulled, its
   * final file is written, committed as an object and dropped with them. The k-way merge then reads
   * the final objects and `.lines` sidecars by ranged reads and streams its outputs to their objects
   * (merge-kway.ts), so a worker's scratch peak is one shard's files, whatever the job's size.
   */
  async function finalizeAll(input: MergeInput, ws: Workspace): Promise<void> {
    const ctx = Context.current();
    const budget = deps.mergeShardBudgetBytes ?? DEFAULT_SHARD_BUDGET;
    const arena: Arena = { buf: undefined };
    for (let s = 0; s < input.shardLines.length; s++) {
      // A final object is only ever a whole upload of a finalized file (a store commits a write
      // whole or not at all), and the outcomes it was built from no longer change once the merge
      // runs: a retried merge keeps it.
      if (ws.remote && (await ws.has(workKey.finalShard(s)))) continue;
      const reason = input.lineFailures?.byShard?.[String(s)] ?? input.lineFailures?.job;
      await ws.pullPrefix(`${workKey.outcomes(s)}/`);
      await ws.pull(workKey.unit(1, s));
      await finalizeShard(ws.dir, s, input.shardLines[s]!, input.jobStatus, budget, arena, reason);
      await ws.push(workKey.finalShard(s));
      await ws.evict(workKey.outcomes(s), workKey.unit(1, s), workKey.finalShard(s));
      ctx.heartbeat({ finalized: s + 1 });
    }
  }

  async function merge(input: MergeInput, ws: Workspace): Promise<MergeSummary> {
    const workDir = ws.dir;
    const outDir = ws.outDir;
    const ctx = Context.current();
    const budget = deps.mergeShardBudgetBytes ?? DEFAULT_SHARD_BUDGET;
    try {
      await finalizeAll(input, ws);
      const summary: MergeSummary = emptyCounts();
      await ws.pull(workKey.roundManifest(1));
      const { results, errors, passes } = await mergeShards(
        workDir,
        mergeIoOf(ws),
        input.shardLines.length,
        budget,
        summary,
        (n) => ctx.heartbeat({ merged: n }),
      );
      try {
        summary.rejected = await copyOutput(ws, workKey.rejected(), 'rejected');
        await copyOutput(ws, workKey.roundManifest(1), 'manifest');
        await results.commit();
        await errors.commit();
      } catch (err) {
        await Promise.all([results.abort(), errors.abort()]);
        throw err;
      }
      // Passes cost a read and a write of the outcomes each: worth seeing in the logs.
      if (passes.passes > 1)
        logFor(deps).info({ shards: input.shardLines.length, ...passes }, 'merged in passes through runs');
      // The intermediate runs of a merge in passes (this attempt's or, with another fan-in, an
      // earlier one's) are of no use once the outputs are committed.
      await ws.remove(workKey.mergeRuns());
      return summary;
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return failOnDisk(err, outDir);
    }
  }

  return {
    /** Writes results.jsonl, errors.jsonl, rejected.jsonl and manifest.json into the output folder. */
    async mergeJob(input: MergeInput): Promise<MergeSummary> {
      return withHeartbeat(() =>
        withWorkspace(storesOf(deps), input.paths.workDir, (ws) => merge(input, ws), 'merge'),
      );
    },

    /** Writes summary.json last, so its presence means the outputs are complete. */
    async writeSummary(input: { outDir: string; summary: unknown; removeWorkDir: boolean }): Promise<void> {
      const text = JSON.stringify(input.summary, null, 2) + '\n';
      const ws = await storesOf(deps).workspace(workLocationOf(input.outDir));
      try {
        if (!ws.remote) {
          await writeFileAtomic(outputFile(input.outDir, 'summary'), text, 'durable').catch((err: unknown) =>
            failOnDisk(err, input.outDir),
          );
          if (input.removeWorkDir) await clearWorkDir(workDirOf(input.outDir), true);
          return;
        }
        await commitSummary(ws, text, (input.summary as { workflowId?: string }).workflowId);
        if (input.removeWorkDir) await clearWork(ws, true);
      } finally {
        await ws.release();
      }
    },
  };
}
