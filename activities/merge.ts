// Merges every outcome into the outputs in input order without sorting in memory:
//  1. per original shard, pick each line's last outcome and write them in shard order (memory is
//     bounded by the shard's size, which --max-lines and --max-bytes bound);
//  2. k-way merge of the shards by input line number (each shard is already in input order), with
//     one small read buffer per shard.
// Each step writes to temporary names and renames, and step 1 skips shards already finalized, so
// a retried merge resumes where the last attempt stopped.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { JobPaths, MergeSummary } from '../common/job-types.ts';
import type { ActivityDeps } from './deps.ts';
import { withHeartbeat } from './heartbeat.ts';
import { AtomicWriter, readJson, readLines, type Line } from './lines.ts';
import { decodeOutcome, encodeOutcome, outcomeIndex, type OutcomeHeader } from './outcome.ts';
import { finalFile, lineNumbersFile, outcomeDir, roundDir, unitFile, workDirOf } from './work-dir.ts';

export interface MergeInput {
  paths: JobPaths;
  shardLines: number[];
  /** How lines that never got an outcome are reported. */
  jobStatus: 'completed' | 'cancelled' | 'failed';
}

const DEFAULT_SHARD_BUDGET = 64 * 1024 * 1024;
const MERGE_READ_BUFFER = 64 * 1024;

function outcomeFilesInOrder(names: string[]): string[] {
  const key = (n: string) => {
    const m = /^r(\d+)-u(\d+)\.jsonl$/.exec(n);
    return m ? [Number(m[1]), Number(m[2])] : [Infinity, Infinity];
  };
  return names
    .filter((n) => n.endsWith('.jsonl'))
    .sort((a, b) => {
      const [ra, ua] = key(a);
      const [rb, ub] = key(b);
      return ra! - rb! || ua! - ub!;
    });
}

/** Step 1: `final/shard-N.jsonl` with each line's last outcome, in shard order. */
async function finalizeShard(
  workDir: string,
  shard: number,
  lines: number,
  jobStatus: MergeInput['jobStatus'],
  budget: number,
): Promise<void> {
  const target = finalFile(workDir, shard);
  if (fs.existsSync(target)) return;
  const dir = outcomeDir(workDir, shard);
  const files = outcomeFilesInOrder(await fsp.readdir(dir).catch(() => [] as string[])).map((f) =>
    path.join(dir, f),
  );
  const fileOf = new Int32Array(lines).fill(-1);
  const offset = new Float64Array(lines);
  const length = new Int32Array(lines);
  let totalBytes = 0;
  for (let f = 0; f < files.length; f++) {
    totalBytes += (await fsp.stat(files[f]!)).size;
    for await (const line of readLines(files[f]!)) {
      const i = outcomeIndex(line.text);
      fileOf[i] = f;
      offset[i] = line.offset;
      length[i] = line.length - 1;
    }
  }
  // Later rounds overwrote earlier ones above, so each line now points at its last outcome.
  const inMemory = totalBytes <= budget ? await Promise.all(files.map((f) => fsp.readFile(f))) : null;
  const handles = inMemory ? [] : await Promise.all(files.map((f) => fsp.open(f, 'r')));
  let ids: AsyncGenerator<Line> | null = null;
  if (fileOf.includes(-1)) ids = readLines(unitFile(workDir, 1, shard));
  const writer = new AtomicWriter(target);
  try {
    for (let i = 0; i < lines; i++) {
      const idLine = ids ? ((await ids.next()).value as Line | undefined) : undefined;
      const f = fileOf[i]!;
      if (f >= 0) {
        let bytes: Buffer;
        if (inMemory) bytes = inMemory[f]!.subarray(offset[i], offset[i]! + length[i]!);
        else {
          bytes = Buffer.allocUnsafe(length[i]!);
          await handles[f]!.read(bytes, 0, length[i], offset[i]);
        }
        await writer.write(bytes);
        await writer.write('\n');
        continue;
      }
      const cid = idLine ? (JSON.parse(idLine.text) as { custom_id: string }).custom_id : '';
      const header: OutcomeHeader = {
        i,
        k: 'permanent',
        a: 0,
        cid,
        e:
          jobStatus === 'cancelled'
            ? {
                code: 'batch_cancelled',
                message: 'the job was cancelled before this line was submitted',
                status_code: null,
              }
            : {
                code: 'not_processed',
                message: 'the job ended before this line was processed',
                status_code: null,
              },
      };
      await writer.writeLine(encodeOutcome(header, ''));
    }
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
}

/** Reads Uint32LE input line numbers in small chunks. */
class LineNumbers {
  private readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(MERGE_READ_BUFFER);
  private have = 0;
  private at = 0;
  private pos = 0;
  constructor(file: string) {
    this.fd = fs.openSync(file, 'r');
  }
  next(): number {
    if (this.at + 4 > this.have) {
      this.have = fs.readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      this.pos += this.have;
      this.at = 0;
      if (this.have < 4) throw new Error('line-number sidecar ended early');
    }
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

interface Head {
  ln: number;
  text: string;
  shard: number;
}

/** A binary min-heap of shard heads by input line number. */
class HeadHeap {
  private readonly a: Head[] = [];
  get size(): number {
    return this.a.length;
  }
  push(h: Head): void {
    const a = this.a;
    a.push(h);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p]!.ln <= a[i]!.ln) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Head {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.ln < a[m]!.ln) m = l;
        if (r < a.length && a[r]!.ln < a[m]!.ln) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

function failOnDisk(err: unknown, outDir: string): never {
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
    try {
      for (let s = 0; s < input.shardLines.length; s++) {
        await finalizeShard(workDir, s, input.shardLines[s]!, input.jobStatus, budget);
        ctx.heartbeat({ finalized: s + 1 });
      }
      const results = new AtomicWriter(path.join(outDir, 'results.jsonl'));
      const errors = new AtomicWriter(path.join(outDir, 'errors.jsonl'));
      const summary: MergeSummary = {
        succeeded: 0,
        failed: 0,
        rejected: 0,
        usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
        usageByModel: {},
      };
      const heap = new HeadHeap();
      // Usage per model: each original shard has one model (manifest.json of round 1).
      const manifest = await readJson<{ shards: { index: number; model: string }[] }>(
        path.join(roundDir(workDir, 1), 'manifest.json'),
      );
      const models = new Map(manifest.shards.map((m) => [m.index, m.model]));
      const readers: { lines: AsyncGenerator<Line>; numbers: LineNumbers }[] = [];
      const advance = async (s: number) => {
        const r = readers[s]!;
        const next = await r.lines.next();
        if (!next.done) heap.push({ ln: r.numbers.next(), text: next.value.text, shard: s });
      };
      try {
        for (let s = 0; s < input.shardLines.length; s++) {
          readers.push({
            lines: readLines(finalFile(workDir, s), MERGE_READ_BUFFER),
            numbers: new LineNumbers(lineNumbersFile(workDir, s)),
          });
          await advance(s);
        }
        let n = 0;
        while (heap.size > 0) {
          const head = heap.pop();
          const { header, result } = decodeOutcome(head.text);
          if (header.k === 'ok') {
            await results.writeLine(result);
            summary.succeeded++;
            if (header.u) {
              summary.usage.prompt_tokens += header.u[0];
              summary.usage.completion_tokens += header.u[1];
              summary.usage.total_tokens += header.u[2];
              const model = (summary.usageByModel[models.get(head.shard) ?? 'unknown'] ??= {
                prompt_tokens: 0,
                completion_tokens: 0,
                total_tokens: 0,
              });
              model.prompt_tokens += header.u[0];
              model.completion_tokens += header.u[1];
              model.total_tokens += header.u[2];
            }
          } else {
            const response = result
              ? ((JSON.parse(result) as { response?: unknown }).response ?? null)
              : null;
            await errors.writeLine(
              JSON.stringify({
                custom_id: header.cid,
                attempts: header.a,
                error: header.e ?? null,
                response,
              }),
            );
            summary.failed++;
          }
          if (++n % 20000 === 0) ctx.heartbeat({ merged: n });
          await advance(head.shard);
        }
      } finally {
        for (const r of readers) r.numbers.close();
      }
      const round1 = roundDir(workDir, 1);
      for (const name of ['rejected.jsonl', 'manifest.json']) {
        const w = new AtomicWriter(path.join(outDir, name));
        for await (const chunk of fs.createReadStream(path.join(round1, name)))
          await w.write(chunk as Buffer);
        await w.commit();
      }
      let rejected = 0;
      for await (const _ of readLines(path.join(outDir, 'rejected.jsonl'))) rejected++;
      summary.rejected = rejected;
      await results.commit();
      await errors.commit();
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
      const w = new AtomicWriter(path.join(input.outDir, 'summary.json'));
      try {
        await w.write(JSON.stringify(input.summary, null, 2) + '\n');
        await w.commit();
      } catch (err) {
        await w.abort();
        failOnDisk(err, input.outDir);
      }
      if (input.removeWorkDir) await fsp.rm(workDirOf(input.outDir), { recursive: true, force: true });
    },
  };
}
