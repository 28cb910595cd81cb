// Merge step 2 (merge.ts): a k-way merge of the shards' final files by input line number (each is
// in input order already, with its `.lines` sidecar of input line numbers) into results.jsonl and
// errors.jsonl. Works on bytes: whether a line succeeded and its usage are read from the outcome
// record by its scanners (storage/outcome-record.ts) and the result bytes copied as they are; JSON
// is parsed only for failed lines.
import fs from 'node:fs';
import type { MergeSummary } from '../common/job-types.ts';
import { finalFile, lineNumbersFile, outputFile, reusedFile, reusedLinesFile } from '../storage/layout.ts';
import { readPlanManifest } from '../storage/manifest.ts';
import {
  decodeOutcomeHead,
  outcomeHeadEnd,
  outcomeIsOk,
  outcomeLineEnd,
  outcomeUsage,
} from '../storage/outcome-record.ts';
import { ByteWriter } from './byte-writer.ts';

const NL = 10;

/** The read buffer per shard: large for speed, smaller when there are many shards. */
function mergeReadBuffer(shards: number, budget: number): number {
  return Math.max(16 * 1024, Math.min(256 * 1024, Math.floor(budget / Math.max(1, shards))));
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

function addUsage(to: MergeSummary['usage'], u: number[]): void {
  to.prompt_tokens += u[0]!;
  to.completion_tokens += u[1]!;
  to.total_tokens += u[2]!;
}

/** Step 2: the k-way merge into results.jsonl and errors.jsonl. */
export async function mergeShards(
  workDir: string,
  outDir: string,
  shards: number,
  budget: number,
  summary: MergeSummary,
  heartbeat: (merged: number) => void,
): Promise<{ results: ByteWriter; errors: ByteWriter }> {
  // Usage per model: each original shard has one model (manifest.json of round 1).
  const manifest = await readPlanManifest(workDir);
  const models = new Map(manifest.shards.map((m) => [m.index, m.model]));
  const results = new ByteWriter(outputFile(outDir, 'results'), 'durable');
  const errors = new ByteWriter(outputFile(outDir, 'errors'), 'durable');
  const readers: ShardReader[] = [];
  // Lines answered from earlier jobs are one more sorted input, already in final form.
  const reused = fs.existsSync(reusedFile(workDir)) ? shards : -1;
  const inputs = shards + (reused >= 0 ? 1 : 0);
  if (reused >= 0) summary.reused = 0;
  const bufferBytes = mergeReadBuffer(inputs, budget);
  const heap = new ShardHeap(inputs);
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
    if (reused >= 0) {
      readers.push(new ShardReader(reusedFile(workDir), reusedLinesFile(workDir), bufferBytes));
      advance(reused);
    }
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
