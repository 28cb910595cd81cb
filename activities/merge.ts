// Merges every outcome into the outputs in input order without sorting in memory:
//  1. per original shard, pick each line's last outcome and write them in shard order to `final/`
//     (merge-finalize.ts);
//  2. k-way merge of the shards by input line number, with one small read buffer per shard
//     (merge-kway.ts).
// Both steps work on bytes, never a string per line: the string version took 33x `cat` at 1M lines
// (bench/README.md, Merge). Each step writes to temporary names and renames, and step 1 skips
// shards already finalized, so a retried merge resumes where the last attempt stopped.
import fs from 'node:fs';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { JobPaths, MergeSummary } from '../common/job-types.ts';
import { ByteWriter } from './byte-writer.ts';
import type { LineError } from './classify.ts';
import type { ActivityDeps } from './deps.ts';
import { failIfDamaged } from './disk-errors.ts';
import { withHeartbeat } from './heartbeat.ts';
import { ManifestError } from '../storage/manifest.ts';
import { countNewlines } from './lines.ts';
import { finalizeShard, READ_CHUNK, type Arena, type JobEnd } from './merge-finalize.ts';
import { mergeShards } from './merge-kway.ts';
import { writeFileAtomic } from '../storage/atomic-file.ts';
import { clearWorkDir, outputFile, rejectedFile, roundManifestFile, workDirOf } from '../storage/layout.ts';

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

export function mergeActivities(deps: ActivityDeps) {
  async function merge(input: MergeInput): Promise<MergeSummary> {
    const { workDir, outDir } = input.paths;
    const ctx = Context.current();
    const budget = deps.mergeShardBudgetBytes ?? DEFAULT_SHARD_BUDGET;
    const arena: Arena = { buf: undefined };
    try {
      for (let s = 0; s < input.shardLines.length; s++) {
        const reason = input.lineFailures?.byShard?.[String(s)] ?? input.lineFailures?.job;
        await finalizeShard(workDir, s, input.shardLines[s]!, input.jobStatus, budget, arena, reason);
        ctx.heartbeat({ finalized: s + 1 });
      }
      const summary: MergeSummary = {
        succeeded: 0,
        failed: 0,
        rejected: 0,
        usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
        usageByModel: {},
      };
      const { results, errors } = await mergeShards(
        workDir,
        outDir,
        input.shardLines.length,
        budget,
        summary,
        (n) => ctx.heartbeat({ merged: n }),
      );
      try {
        summary.rejected = await copyCounting(rejectedFile(workDir), outputFile(outDir, 'rejected'));
        await copyCounting(roundManifestFile(workDir, 1), outputFile(outDir, 'manifest'));
        await results.commit();
        await errors.commit();
      } catch (err) {
        await Promise.all([results.abort(), errors.abort()]);
        throw err;
      }
      return summary;
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return failOnDisk(err, outDir);
    }
  }

  return {
    /** Writes results.jsonl, errors.jsonl, rejected.jsonl and manifest.json into the output folder. */
    async mergeJob(input: MergeInput): Promise<MergeSummary> {
      return withHeartbeat(() => merge(input));
    },

    /** Writes summary.json last, so its presence means the outputs are complete. */
    async writeSummary(input: { outDir: string; summary: unknown; removeWorkDir: boolean }): Promise<void> {
      const text = JSON.stringify(input.summary, null, 2) + '\n';
      await writeFileAtomic(outputFile(input.outDir, 'summary'), text, 'durable').catch((err: unknown) =>
        failOnDisk(err, input.outDir),
      );
      if (input.removeWorkDir) await clearWorkDir(workDirOf(input.outDir), true);
    },
  };
}
