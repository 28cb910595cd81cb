// Merge step 2 (merge.ts): a k-way merge of the shards' final files by input line number (each is
// in input order already, with its `.lines` sidecar of input line numbers) into results.jsonl and
// errors.jsonl. Works on bytes: whether a line succeeded and its usage are read from the outcome
// record by its scanners (storage/outcome-record.ts) and the result bytes copied as they are; JSON
// is parsed only for failed lines.
import fs from 'node:fs';
import type { MergeSummary } from '../common/job-types.ts';
import { FileSource, ObjectSink, ObjectSource, type ByteSource } from '../storage/byte-io.ts';
import { OUTPUT_NAMES, outputFile, WORK_DIR_NAME, workKey } from '../storage/layout.ts';
import { readPlanManifest } from '../storage/manifest.ts';
import {
  decodeOutcomeHead,
  outcomeHeadEnd,
  outcomeIsOk,
  outcomeLineEnd,
  outcomeUsage,
} from '../storage/outcome-record.ts';
import type { Workspace } from '../storage/workspace.ts';
import { ByteWriter } from './byte-writer.ts';

const NL = 10;

/** The read buffer per local shard file: large for speed, smaller when there are many shards. */
function fileReadBuffer(shards: number, budget: number): number {
  return Math.max(16 * 1024, Math.min(256 * 1024, Math.floor(budget / Math.max(1, shards))));
}

/**
 * The chunk of a ranged read per shard object: a shard reading holds two (one read, one in flight),
 * a shard waiting its turn one; at least 256 KiB so that a GET's latency is spread over enough bytes.
 */
function objectReadChunk(shards: number, budget: number): number {
  return Math.max(256 * 1024, Math.min(8 * 1024 * 1024, Math.floor(budget / Math.max(1, shards) / 2)));
}

/** Where the merge reads its inputs (work files by key) and writes its two outputs. */
export interface MergeIo {
  has(key: string): Promise<boolean>;
  open(key: string, bufferBytes: number): Promise<ByteSource>;
  output(name: 'results' | 'errors'): ByteWriter;
  readBuffer(shards: number, budget: number): number;
}

/**
 * The merge's files in a workspace: on a local folder its own files, read synchronously; on object
 * storage the committed objects, read in ranged chunks, and the outputs streamed to their objects.
 */
export function mergeIoOf(ws: Workspace): MergeIo {
  if (!ws.remote)
    return {
      has: (key) => Promise.resolve(fs.existsSync(ws.local(key))),
      open: (key) => Promise.resolve(new FileSource(ws.local(key))),
      output: (name) => new ByteWriter(outputFile(ws.outDir, name), 'durable'),
      readBuffer: fileReadBuffer,
    };
  return {
    has: (key) => ws.has(key),
    open: (key, chunk) => ObjectSource.open(ws.store, `${WORK_DIR_NAME}/${key}`, chunk),
    output: (name) => new ByteWriter(new ObjectSink(ws.store, OUTPUT_NAMES[name])),
    readBuffer: objectReadChunk,
  };
}

/**
 * One shard's final file through a refilled buffer, with its `.lines` input line numbers. Local
 * files are read synchronously: from the page cache a refill takes microseconds, where an awaited
 * thread-pool read per refill kept the k-way merge waiting; the merge still yields at every MiB it
 * writes. `next()` returns a promise only when a source has no bytes at hand (an object's next chunk).
 */
class ShardReader {
  buf: Buffer;
  /** The current line is buf[lineStart, lineEnd). */
  lineStart = 0;
  lineEnd = 0;
  /** The input line number of the current line. */
  number = 0;
  private start = 0;
  private end = 0;
  private eof = false;
  private readonly lines: ByteSource;
  private readonly nums: ByteSource;
  private readonly numBuf = Buffer.allocUnsafe(64 * 1024);
  private numHave = 0;
  private numAt = 0;

  constructor(lines: ByteSource, nums: ByteSource, bufferBytes: number) {
    this.buf = Buffer.allocUnsafe(bufferBytes);
    this.lines = lines;
    this.nums = nums;
  }

  /** Moves to the next line and its number: true, false at the end, or a promise of either. */
  next(): boolean | Promise<boolean> {
    const got = this.take() || this.refill();
    if (got === true) return this.numbered();
    if (got === false) return false;
    return got.then((ok) => ok && this.numbered());
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

  private refill(): boolean | Promise<boolean> {
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
      const bytesRead = this.lines.readSync(this.buf, this.end, this.buf.length - this.end);
      if (bytesRead === undefined) return this.lines.ready().then(() => this.refill());
      this.end += bytesRead;
      if (bytesRead === 0) this.eof = true;
      if (this.take()) return true;
    }
  }

  /** Reads the current line's input line number (Uint32LE, one per line, in shard order). */
  private numbered(): true | Promise<true> {
    while (this.numAt + 4 > this.numHave) {
      this.numBuf.copy(this.numBuf, 0, this.numAt, this.numHave);
      this.numHave -= this.numAt;
      this.numAt = 0;
      const n = this.nums.readSync(this.numBuf, this.numHave, this.numBuf.length - this.numHave);
      if (n === undefined) return this.nums.ready().then(() => this.numbered());
      if (n === 0) throw new Error('line-number sidecar ended early');
      this.numHave += n;
    }
    this.number = this.numBuf.readUInt32LE(this.numAt);
    this.numAt += 4;
    return true;
  }

  close(): void {
    this.lines.close();
    this.nums.close();
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

function addUsage(to: MergeSummary['usage'], u: number[]): void {
  to.prompt_tokens += u[0]!;
  to.completion_tokens += u[1]!;
  to.total_tokens += u[2]!;
}

/** Step 2: the k-way merge into results.jsonl and errors.jsonl. */
export async function mergeShards(
  workDir: string,
  io: MergeIo,
  shards: number,
  budget: number,
  summary: MergeSummary,
  heartbeat: (merged: number) => void,
): Promise<{ results: ByteWriter; errors: ByteWriter }> {
  // Usage per model: each original shard has one model (manifest.json of round 1).
  const manifest = await readPlanManifest(workDir);
  const models = new Map(manifest.shards.map((m) => [m.index, m.model]));
  const results = io.output('results');
  const errors = io.output('errors');
  const readers: ShardReader[] = [];
  // Lines answered from earlier jobs are one more sorted input, already in final form.
  const reused = (await io.has(workKey.reused())) ? shards : -1;
  const inputs = shards + (reused >= 0 ? 1 : 0);
  if (reused >= 0) summary.reused = 0;
  const bufferBytes = io.readBuffer(inputs, budget);
  const heap = new ShardHeap(inputs);
  const advance = (s: number): Promise<void> | undefined => {
    const r = readers[s]!;
    const got = r.next();
    if (got === true) heap.push(s, r.number);
    else if (got !== false)
      return got.then((ok) => {
        if (ok) heap.push(s, r.number);
      });
    return undefined;
  };
  const u = [0, 0, 0];
  const opened: Promise<ShardReader>[] = [];
  const open = async (lines: string, nums: string): Promise<ShardReader> => {
    const [l, n] = await Promise.all([io.open(lines, bufferBytes), io.open(nums, 64 * 1024)]);
    return new ShardReader(l, n, bufferBytes);
  };
  try {
    // Every input opened at once: an object's first chunk is fetched while the others are opened.
    for (let s = 0; s < shards; s++) opened.push(open(workKey.finalShard(s), workKey.lineNumbers(s)));
    if (reused >= 0) opened.push(open(workKey.reused(), workKey.reusedLines()));
    for (const r of await Promise.all(opened)) readers.push(r);
    for (let s = 0; s < inputs; s++) await advance(s);
    let n = 0;
    while (heap.size > 0) {
      const s = heap.top;
      const { buf, lineStart: ls, lineEnd: le } = readers[s]!;
      const headEnd = outcomeHeadEnd(buf, ls, le);
      const p = outcomeLineEnd(buf, ls, headEnd);
      if (outcomeIsOk(buf, p)) {
        const w = results.line(buf, headEnd + 1, le);
        if (w) await w;
        summary.succeeded++;
        if (s === reused) summary.reused!++;
        else if (outcomeUsage(buf, p, headEnd, u)) {
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
        const r = decodeOutcomeHead(buf, ls, headEnd);
        const result = headEnd < le ? buf.toString('utf8', headEnd + 1, le) : '';
        const response = result ? ((JSON.parse(result) as { response?: unknown }).response ?? null) : null;
        const w = errors.text(
          JSON.stringify({ custom_id: r.customId, attempts: r.attempt, error: r.error ?? null, response }),
        );
        if (w) await w;
        summary.failed++;
      }
      if (++n % 20000 === 0) heartbeat(n);
      heap.pop();
      const wait = advance(s);
      if (wait) await wait;
    }
  } catch (err) {
    await Promise.all([results.abort(), errors.abort()]);
    throw err;
  } finally {
    // Readers opened after a failure are closed too.
    for (const r of await Promise.allSettled(opened)) if (r.status === 'fulfilled') r.value.close();
  }
  return { results, errors };
}
