// Merges every outcome into the outputs in input order without sorting in memory:
//  1. per original shard, pick each line's last outcome and write them in shard order to
//     `final/` (memory is bounded by the shard's size, which --max-lines and --max-bytes bound,
//     and by mergeShardBudgetBytes for what is read whole); a shard whose one outcome file is
//     already complete and in order is hard-linked instead of copied;
//  2. k-way merge of the shards by input line number (each shard is already in input order), with
//     one small read buffer per shard.
// Both steps work on bytes: the line index, `"k":"ok"` and the usage are read from the outcome
// header's bytes and result bytes are copied as they are (JSON.parse only for failed lines), since
// strings per line cost ten times the I/O (bench/README.md, Merge).
// Each step writes to temporary names and renames, and step 1 skips shards already finalized, so
// a retried merge resumes where the last attempt stopped. `final/` files are not fsynced (they are
// rebuilt from the outcomes, which are): one is reused only if it holds exactly its shard's lines.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { JobPaths, MergeSummary } from '../common/job-types.ts';
import { ByteWriter } from './byte-writer.ts';
import type { ActivityDeps } from './deps.ts';
import { withHeartbeat } from './heartbeat.ts';
import { AtomicWriter, customIdOf, readJson, readLines, type Line } from './lines.ts';
import { encodeOutcome, type OutcomeHeader } from './outcome.ts';
import { finalFile, lineNumbersFile, outcomeDir, roundDir, unitFile, workDirOf } from './work-dir.ts';
export interface MergeInput {
  paths: JobPaths;
  shardLines: number[];
  /** How lines that never got an outcome are reported. */
  jobStatus: 'completed' | 'cancelled' | 'failed';
}

const DEFAULT_SHARD_BUDGET = 64 * 1024 * 1024;
const READ_CHUNK = 1 << 20;
/** Step 2's read buffer per shard: large for speed, smaller when there are many shards. */
function mergeReadBuffer(shards: number, budget: number): number {
  return Math.max(16 * 1024, Math.min(256 * 1024, Math.floor(budget / Math.max(1, shards))));
}
const NL = 10;
const TAB = 9;

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

/** `{"i":<n>,…` at `at`: the line index, read from the bytes (outcome.ts writes `i` first). */
function indexAt(buf: Uint8Array, at: number, end: number): number {
  let p = at + 5;
  let n = 0;
  for (let c = buf[p]!; p < end && c >= 48 && c <= 57; c = buf[++p]!) n = n * 10 + (c - 48);
  if (p === at + 5 || buf[at + 1] !== 0x22 || buf[at + 2] !== 0x69) {
    throw new Error(
      `malformed outcome record: ${Buffer.from(buf.subarray(at, Math.min(end, at + 80))).toString()}`,
    );
  }
  return n;
}

type OnLine = (buf: Buffer, start: number, end: number, fileOffset: number) => void;

/** Calls `onLine` for each non-empty line of buf[0, end) ending in a newline; returns where the rest starts. */
function eachLine(buf: Buffer, end: number, base: number, onLine: OnLine): number {
  let start = 0;
  for (let nl = buf.indexOf(NL, start); nl !== -1 && nl < end; nl = buf.indexOf(NL, start)) {
    if (nl > start) onLine(buf, start, nl, base + start);
    start = nl + 1;
  }
  return start;
}

/** Calls `onLine` for each non-empty line of a file, reading it in chunks. */
async function forEachLine(file: string, onLine: OnLine): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(READ_CHUNK);
    let have = 0;
    let base = 0;
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, have, buf.length - have, base + have);
      have += bytesRead;
      const start = eachLine(buf, have, base, onLine);
      if (bytesRead === 0) {
        if (have > start) onLine(buf, start, have, base + start);
        return;
      }
      buf.copy(buf, 0, start, have);
      have -= start;
      base += start;
    }
  } finally {
    await fh.close();
  }
}

/** One buffer for every shard's outcome files, so step 1 leaves no garbage per shard. */
interface Arena {
  buf: Buffer | undefined;
}

/** Reads the files back to back into the arena (grown to `total` bytes): one view per file. */
function readWhole(files: string[], arena: Arena, total: number): Buffer[] {
  if (!arena.buf || arena.buf.length < total) {
    // Grown by half again at least, so shards of rising size do not each leave a buffer behind.
    arena.buf = Buffer.allocUnsafe(Math.max(total, Math.floor((arena.buf?.length ?? 0) * 1.5)));
  }
  const views: Buffer[] = [];
  let at = 0;
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      const start = at;
      for (let n; at < total && (n = fs.readSync(fd, arena.buf, at, total - at, null)) > 0;) at += n;
      views.push(arena.buf.subarray(start, at));
    } finally {
      fs.closeSync(fd);
    }
  }
  return views;
}

/** A `final/` file left by an earlier attempt is reused only if it holds exactly `lines` lines. */
async function isWholeFinal(file: string, lines: number): Promise<boolean> {
  let count = 0;
  let last = NL;
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: READ_CHUNK })) {
      const b = chunk as Buffer;
      for (let at = b.indexOf(NL); at !== -1; at = b.indexOf(NL, at + 1)) count++;
      if (b.length > 0) last = b[b.length - 1]!;
    }
  } catch {
    return false;
  }
  return count === lines && last === NL;
}

function missingOutcome(i: number, cid: string, jobStatus: MergeInput['jobStatus']): string {
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
  return encodeOutcome(header, '');
}

/**
 * Every line's only outcome, already in shard order: the outcome file is the final file, linked
 * rather than copied. False where the file system has no hard links (the caller copies).
 */
async function linkInPlace(from: string, to: string): Promise<boolean> {
  const tmp = `${to}.tmp-${process.pid}`;
  await fsp.rm(tmp, { force: true });
  try {
    await fsp.link(from, tmp);
  } catch {
    return false;
  }
  await fsp.rename(tmp, to);
  return true;
}

/** Step 1: `final/shard-N.jsonl` with each line's last outcome, in shard order. */
async function finalizeShard(
  workDir: string,
  shard: number,
  lines: number,
  jobStatus: MergeInput['jobStatus'],
  budget: number,
  arena: Arena,
): Promise<void> {
  const target = finalFile(workDir, shard);
  if (fs.existsSync(target)) {
    if (await isWholeFinal(target, lines)) return;
    await fsp.rm(target, { force: true });
  }
  const dir = outcomeDir(workDir, shard);
  const files = outcomeFilesInOrder(await fsp.readdir(dir).catch(() => [] as string[])).map((f) =>
    path.join(dir, f),
  );
  const fileOf = new Int32Array(lines).fill(-1);
  const offset = new Float64Array(lines);
  const length = new Int32Array(lines);
  let totalBytes = 0;
  for (const f of files) totalBytes += (await fsp.stat(f)).size;
  // Within the budget the outcome files are read once, whole; past it they are indexed in chunks
  // and each line is read back where it lies.
  const inMemory = totalBytes <= budget ? readWhole(files, arena, totalBytes) : null;
  let inOrder = files.length === 1;
  let seen = 0;
  for (let f = 0; f < files.length; f++) {
    const onLine: OnLine = (buf, start, end, at) => {
      const i = indexAt(buf, start, end);
      if (i >= lines) throw new Error(`outcome for line ${i} of shard ${shard}, which has ${lines} lines`);
      if (i !== seen++) inOrder = false;
      fileOf[i] = f;
      offset[i] = at;
      length[i] = end - start;
    };
    if (!inMemory) await forEachLine(files[f]!, onLine);
    else {
      const buf = inMemory[f]!;
      const rest = eachLine(buf, buf.length, 0, onLine);
      if (rest < buf.length) onLine(buf, rest, buf.length, rest);
    }
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (inOrder && seen === lines && (await linkInPlace(files[0]!, target))) return;
  // Later rounds overwrote earlier ones above, so each line now points at its last outcome.
  const handles = inMemory ? [] : await Promise.all(files.map((f) => fsp.open(f, 'r')));
  const ids = fileOf.includes(-1) ? readLines(unitFile(workDir, 1, shard)) : null;
  const w = new ByteWriter(target, { sync: false });
  let scratch = Buffer.allocUnsafe(64 * 1024);
  try {
    for (let i = 0; i < lines; i++) {
      const idLine = ids ? ((await ids.next()).value as Line | undefined) : undefined;
      const f = fileOf[i]!;
      let wait: Promise<void> | undefined;
      if (f < 0) {
        const cid = idLine ? customIdOf(idLine.text) : '';
        wait = w.text(missingOutcome(i, cid, jobStatus));
      } else if (inMemory) {
        wait = w.line(inMemory[f]!, offset[i]!, offset[i]! + length[i]!);
      } else {
        if (scratch.length < length[i]!) scratch = Buffer.allocUnsafe(length[i]!);
        await handles[f]!.read(scratch, 0, length[i], offset[i]);
        wait = w.line(scratch, 0, length[i]!);
      }
      if (wait) await wait;
    }
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
}

/**
 * One shard's final file through a refilled buffer, with its `.lines` input line numbers. Reads are
 * synchronous: from the page cache a refill takes microseconds, where an awaited thread-pool read
 * per refill kept the k-way merge waiting; the merge still yields at every MiB it writes.
 */
class ShardReader {
  buf: Buffer;
  /** The current line is buf[lineStart, lineEnd). */
  lineStart = 0;
  lineEnd = 0;
  private start = 0;
  private end = 0;
  private pos = 0;
  private eof = false;
  private readonly fd: number;
  private readonly nums: number;
  private readonly numBuf = Buffer.allocUnsafe(64 * 1024);
  private numHave = 0;
  private numAt = 0;
  private numPos = 0;

  constructor(file: string, numbers: string, bufferBytes: number) {
    this.buf = Buffer.allocUnsafe(bufferBytes);
    this.fd = fs.openSync(file, 'r');
    this.nums = fs.openSync(numbers, 'r');
  }

  /** Moves to the next line: true, or false at the end. */
  next(): boolean {
    return this.take() || this.refill();
  }

  /** Steps to the next whole line in the buffer, if there is one. */
  private take(): boolean {
    const nl = this.buf.indexOf(NL, this.start);
    if (nl === -1 || nl >= this.end) return false;
    this.lineStart = this.start;
    this.lineEnd = nl;
    this.start = nl + 1;
    return true;
  }

  private refill(): boolean {
    for (;;) {
      if (this.eof) return false;
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      if (this.end === this.buf.length) {
        const bigger = Buffer.allocUnsafe(this.buf.length * 2);
        this.buf.copy(bigger, 0, 0, this.end);
        this.buf = bigger;
      }
      const bytesRead = fs.readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.pos);
      this.pos += bytesRead;
      this.end += bytesRead;
      if (bytesRead === 0) this.eof = true;
      if (this.take()) return true;
    }
  }

  /** The input line number of the line just read (Uint32LE, one per line, in shard order). */
  lineNumber(): number {
    if (this.numAt + 4 > this.numHave) {
      this.numHave = fs.readSync(this.nums, this.numBuf, 0, this.numBuf.length, this.numPos);
      this.numPos += this.numHave;
      this.numAt = 0;
      if (this.numHave < 4) throw new Error('line-number sidecar ended early');
    }
    const v = this.numBuf.readUInt32LE(this.numAt);
    this.numAt += 4;
    return v;
  }

  close(): void {
    fs.closeSync(this.fd);
    fs.closeSync(this.nums);
  }
}

/** A binary min-heap of shard numbers keyed by the input line number of their current line. */
class ShardHeap {
  private readonly key: Float64Array;
  private readonly heap: Int32Array;
  size = 0;
  constructor(shards: number) {
    this.key = new Float64Array(shards);
    this.heap = new Int32Array(shards);
  }
  get top(): number {
    return this.heap[0]!;
  }
  push(shard: number, key: number): void {
    const { heap, key: k } = this;
    k[shard] = key;
    let i = this.size++;
    heap[i] = shard;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (k[heap[p]!]! <= k[heap[i]!]!) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  }
  pop(): void {
    const { heap, key: k } = this;
    heap[0] = heap[--this.size]!;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.size && k[heap[l]!]! < k[heap[m]!]!) m = l;
      if (r < this.size && k[heap[r]!]! < k[heap[m]!]!) m = r;
      if (m === i) break;
      [heap[m], heap[i]] = [heap[i]!, heap[m]!];
      i = m;
    }
  }
}

const OK = Buffer.from(',"k":"ok"');
const USAGE = Buffer.from(',"u":[');

/** `a,b,c]` at `p` (just after `"u":[`): the three token counts. */
function usageAt(buf: Buffer, p: number, out: number[]): void {
  for (let k = 0; k < 3; k++) {
    let n = 0;
    for (let c = buf[p]!; c >= 48 && c <= 57; c = buf[++p]!) n = n * 10 + (c - 48);
    out[k] = n;
    p++;
  }
}

function addUsage(to: MergeSummary['usage'], u: number[]): void {
  to.prompt_tokens += u[0]!;
  to.completion_tokens += u[1]!;
  to.total_tokens += u[2]!;
}

/** Copies a round-1 file into the outputs; returns its line count. */
async function copyCounting(from: string, to: string): Promise<number> {
  const w = new ByteWriter(to);
  let lines = 0;
  try {
    for await (const chunk of fs.createReadStream(from, { highWaterMark: READ_CHUNK })) {
      const b = chunk as Buffer;
      for (let at = b.indexOf(NL); at !== -1; at = b.indexOf(NL, at + 1)) lines++;
      await w.raw(b);
    }
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  }
  return lines;
}

/** Step 2: the k-way merge into results.jsonl and errors.jsonl. */
async function mergeShards(
  workDir: string,
  outDir: string,
  shards: number,
  budget: number,
  summary: MergeSummary,
  heartbeat: (merged: number) => void,
): Promise<{ results: ByteWriter; errors: ByteWriter }> {
  // Usage per model: each original shard has one model (manifest.json of round 1).
  const manifest = await readJson<{ shards: { index: number; model: string }[] }>(
    path.join(roundDir(workDir, 1), 'manifest.json'),
  );
  const models = new Map(manifest.shards.map((m) => [m.index, m.model]));
  const results = new ByteWriter(path.join(outDir, 'results.jsonl'));
  const errors = new ByteWriter(path.join(outDir, 'errors.jsonl'));
  const readers: ShardReader[] = [];
  const bufferBytes = mergeReadBuffer(shards, budget);
  const heap = new ShardHeap(shards);
  const advance = (s: number) => {
    const r = readers[s]!;
    if (r.next()) heap.push(s, r.lineNumber());
  };
  const u = [0, 0, 0];
  try {
    for (let s = 0; s < shards; s++) {
      readers.push(new ShardReader(finalFile(workDir, s), lineNumbersFile(workDir, s), bufferBytes));
      advance(s);
    }
    let n = 0;
    while (heap.size > 0) {
      const s = heap.top;
      const { buf, lineStart: ls, lineEnd: le } = readers[s]!;
      const tab = buf.indexOf(TAB, ls);
      const headEnd = tab === -1 || tab > le ? le : tab;
      let p = ls + 5;
      while (buf[p]! >= 48 && buf[p]! <= 57) p++;
      if (buf.compare(OK, 0, OK.length, p, p + OK.length) === 0) {
        const w = results.line(buf, headEnd + 1, le);
        if (w) await w;
        summary.succeeded++;
        const at = buf.indexOf(USAGE, p);
        if (at !== -1 && at < headEnd) {
          usageAt(buf, at + USAGE.length, u);
          addUsage(summary.usage, u);
          addUsage(
            (summary.usageByModel[models.get(s) ?? 'unknown'] ??= {
              prompt_tokens: 0,
              completion_tokens: 0,
              total_tokens: 0,
            }),
            u,
          );
        }
      } else {
        const header = JSON.parse(buf.toString('utf8', ls, headEnd)) as OutcomeHeader;
        const result = headEnd < le ? buf.toString('utf8', headEnd + 1, le) : '';
        const response = result ? ((JSON.parse(result) as { response?: unknown }).response ?? null) : null;
        const w = errors.text(
          JSON.stringify({ custom_id: header.cid, attempts: header.a, error: header.e ?? null, response }),
        );
        if (w) await w;
        summary.failed++;
      }
      if (++n % 20000 === 0) heartbeat(n);
      heap.pop();
      advance(s);
    }
  } catch (err) {
    await Promise.all([results.abort(), errors.abort()]);
    throw err;
  } finally {
    for (const r of readers) r.close();
  }
  return { results, errors };
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
    const arena: Arena = { buf: undefined };
    try {
      for (let s = 0; s < input.shardLines.length; s++) {
        await finalizeShard(workDir, s, input.shardLines[s]!, input.jobStatus, budget, arena);
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
        const round1 = roundDir(workDir, 1);
        summary.rejected = await copyCounting(
          path.join(round1, 'rejected.jsonl'),
          path.join(outDir, 'rejected.jsonl'),
        );
        await copyCounting(path.join(round1, 'manifest.json'), path.join(outDir, 'manifest.json'));
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
