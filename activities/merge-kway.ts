// Merge step 2 (merge.ts): a k-way merge of the shards' final files by input line number (each is
// in input order already, with its `.lines` sidecar of input line numbers) into results.jsonl and
// errors.jsonl. Works on bytes: whether a line succeeded and its usage are read from the outcome
// record by its scanners (storage/outcome-record.ts) and the result bytes copied as they are; JSON
// is parsed only for failed lines. On object storage a merge reads only as many inputs at once as
// its budget holds in ranged-read chunks; more shards are merged in passes through intermediate
// runs, objects in the format of a final file (docs/fleet.md has the bound and its cost).
import fs from 'node:fs';
import type { MergeSummary } from '../common/job-types.ts';
import { FileSource, ObjectSink, ObjectSource, readBuffers, type ByteSource } from '../storage/byte-io.ts';
import { OUTPUT_NAMES, outputFile, WORK_DIR_NAME, workKey } from '../storage/layout.ts';
import { readPlanManifest } from '../storage/manifest.ts';
import {
  decodeOutcomeHead,
  outcomeHeadEnd,
  outcomeIsOk,
  outcomeLineEnd,
  outcomeUsage,
} from '../storage/outcome-record.ts';
import { MAX_SOCKETS } from '../storage/s3.ts';
import { readText, type JobStore } from '../storage/store.ts';
import type { Workspace } from '../storage/workspace.ts';
import { ByteWriter } from './byte-writer.ts';

const NL = 10;

/** How one k-way merge reads its inputs. */
export interface ReadPlan {
  /** The most inputs one merge reads at once; more are merged in passes through runs. */
  fanIn: number;
  /** The read buffer (a local file) or ranged-read chunk (an object) of an input's lines. */
  buffer: number;
  /** The same for its `.lines` sidecar of input line numbers (4 bytes a line). */
  numbers: number;
}

/**
 * Local files: one pass whatever the shard count (a refill is a synchronous read from the page
 * cache, so small buffers cost little); the lines buffer large for speed, smaller when there are
 * many shards, and the line numbers' a quarter of it (at most 64 KiB: 16,384 lines a refill).
 */
export function fileReadPlan(inputs: number, budget: number): ReadPlan {
  const buffer = Math.max(16 * 1024, Math.min(256 * 1024, Math.floor(budget / Math.max(1, inputs))));
  return {
    fanIn: Infinity,
    buffer,
    numbers: Math.max(4 * 1024, Math.min(64 * 1024, Math.floor(buffer / 4))),
  };
}

/** An object's ranged reads: at least this much each, so a GET's latency is spread over enough bytes. */
export const MIN_OBJECT_CHUNK = 256 * 1024;
const MAX_OBJECT_CHUNK = 8 * 1024 * 1024;
/** The `.lines` sidecar's chunk: 16,384 line numbers a GET. */
const OBJECT_NUMBERS_CHUNK = 64 * 1024;

/**
 * The read memory of one object input with lines chunks of `chunk`: its source holds two chunks of
 * each file (one handed out, one in flight) and its reader a copy of each (storage/byte-io.ts).
 */
export const objectInputBytes = (chunk: number): number => 3 * chunk + 3 * OBJECT_NUMBERS_CHUNK;

/**
 * Objects: as many inputs at once as the budget holds at the smallest chunk, so that read memory
 * stays within the budget whatever the shard count (at least two inputs, the floor of a merge),
 * and at most half the S3 client's sockets less a few for the outputs' uploads: each input has up
 * to two GETs in flight (its lines and its line numbers), and each should find a socket. Fewer
 * inputs than that get larger chunks (fewer GETs).
 */
export function objectReadPlan(inputs: number, budget: number): ReadPlan {
  const fanIn = Math.max(
    2,
    Math.min(Math.floor((MAX_SOCKETS - 16) / 2), Math.floor(budget / objectInputBytes(MIN_OBJECT_CHUNK))),
  );
  const share = Math.floor(budget / Math.max(1, Math.min(inputs, fanIn)));
  const buffer = Math.max(
    MIN_OBJECT_CHUNK,
    Math.min(MAX_OBJECT_CHUNK, Math.floor((share - 3 * OBJECT_NUMBERS_CHUNK) / 3)),
  );
  return { fanIn, buffer, numbers: OBJECT_NUMBERS_CHUNK };
}

/** Where the merge reads its inputs (work files by key) and writes its two outputs. */
export interface MergeIo {
  has(key: string): Promise<boolean>;
  open(key: string, bufferBytes: number): Promise<ByteSource>;
  output(name: 'results' | 'errors'): ByteWriter;
  readPlan(inputs: number, budget: number): ReadPlan;
  /**
   * The store of the merge's intermediate runs and the prefix of work keys in it; the runs are
   * read back through `open`.
   */
  runs: { store: JobStore; prefix: string };
}

/**
 * The merge's files in a workspace: on a local folder its own files, read synchronously; on object
 * storage the committed objects, read in ranged chunks, and the outputs streamed to their objects.
 */
export function mergeIoOf(ws: Workspace): MergeIo {
  const runs = { store: ws.store, prefix: `${WORK_DIR_NAME}/` };
  if (!ws.remote)
    return {
      has: (key) => Promise.resolve(fs.existsSync(ws.local(key))),
      open: (key) => Promise.resolve(new FileSource(ws.local(key))),
      output: (name) => new ByteWriter(outputFile(ws.outDir, name), 'durable'),
      readPlan: fileReadPlan,
      runs,
    };
  return {
    has: (key) => ws.has(key),
    open: (key, chunk) => ObjectSource.open(ws.store, `${WORK_DIR_NAME}/${key}`, chunk),
    output: (name) => new ByteWriter(new ObjectSink(ws.store, OUTPUT_NAMES[name])),
    readPlan: objectReadPlan,
    runs,
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
  private readonly numBuf: Buffer;
  private numHave = 0;
  private numAt = 0;

  constructor(lines: ByteSource, nums: ByteSource, plan: ReadPlan) {
    this.buf = Buffer.allocUnsafe(plan.buffer);
    this.numBuf = Buffer.allocUnsafe(plan.numbers);
    readBuffers.hold(this.buf.length + this.numBuf.length);
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
        readBuffers.hold(this.buf.length);
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
    readBuffers.release(this.buf.length + this.numBuf.length);
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

function addUsage(to: MergeSummary['usage'], u: readonly number[]): void {
  to.prompt_tokens += u[0]!;
  to.completion_tokens += u[1]!;
  to.total_tokens += u[2]!;
}

/** A sorted input of a k-way merge: a shard's final file, the reused lines, or a run of a pass. */
interface SortedInput {
  lines: string;
  numbers: string;
  /** An original input's lines are counted as they are merged: its model (a shard's) … */
  model?: string;
  /** … or whether they are lines answered by earlier jobs (no usage of this job). */
  reused?: boolean;
  /** A run's lines were counted when it was built: these are its counts. */
  counts?: MergeSummary;
}

/** A merge's counts before its first line. */
export const emptyCounts = (): MergeSummary => ({
  succeeded: 0,
  failed: 0,
  rejected: 0,
  usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  usageByModel: {},
});

const usageOf = (to: MergeSummary, model: string): MergeSummary['usage'] =>
  (to.usageByModel[model] ??= { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });

function addModelUsage(to: MergeSummary, model: string, u: readonly number[]): void {
  addUsage(to.usage, u);
  addUsage(usageOf(to, model), u);
}

const usageArray = (u: MergeSummary['usage']): number[] => [
  u.prompt_tokens,
  u.completion_tokens,
  u.total_tokens,
];

/** Adds a run's counts to `to`. */
function addCounts(to: MergeSummary, from: MergeSummary): void {
  to.succeeded += from.succeeded;
  to.failed += from.failed;
  if (from.reused !== undefined) to.reused = (to.reused ?? 0) + from.reused;
  addUsage(to.usage, usageArray(from.usage));
  for (const [model, u] of Object.entries(from.usageByModel)) addUsage(usageOf(to, model), usageArray(u));
}

/** The models in name order: the same summary whether the merge took one pass or several. */
function sortModels(s: MergeSummary): void {
  s.usageByModel = Object.fromEntries(
    Object.entries(s.usageByModel).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/**
 * Merges `inputs` by input line number, calling `onLine` with each line's input and reader in
 * turn (the reader's current line is the one to take). Every input is opened at once: an
 * object's first chunk is fetched while the others are opened.
 */
async function kway(
  io: MergeIo,
  inputs: readonly SortedInput[],
  plan: ReadPlan,
  onLine: (input: SortedInput, r: ShardReader) => Promise<void> | undefined,
): Promise<void> {
  const readers: ShardReader[] = [];
  const heap = new ShardHeap(inputs.length);
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
  const open = async (input: SortedInput): Promise<ShardReader> => {
    const [l, n] = await Promise.all([
      io.open(input.lines, plan.buffer),
      io.open(input.numbers, plan.numbers),
    ]);
    return new ShardReader(l, n, plan);
  };
  const opened = inputs.map(open);
  try {
    for (const r of await Promise.all(opened)) readers.push(r);
    for (let s = 0; s < inputs.length; s++) await advance(s);
    while (heap.size > 0) {
      const s = heap.top;
      const w = onLine(inputs[s]!, readers[s]!);
      if (w) await w;
      heap.pop();
      const wait = advance(s);
      if (wait) await wait;
    }
  } finally {
    // Readers opened after a failure are closed too.
    for (const r of await Promise.allSettled(opened)) if (r.status === 'fulfilled') r.value.close();
  }
}

/**
 * Counts the current line of an original input, whose outcome head ends at `headEnd`, into `to`;
 * returns whether it succeeded. `u` receives its usage (so the hot loop allocates nothing).
 */
function countLine(
  to: MergeSummary,
  input: SortedInput,
  r: ShardReader,
  headEnd: number,
  u: number[],
): boolean {
  const { buf, lineStart: ls } = r;
  const p = outcomeLineEnd(buf, ls, headEnd);
  const ok = outcomeIsOk(buf, p);
  if (!ok) to.failed++;
  else {
    to.succeeded++;
    if (input.reused) to.reused = (to.reused ?? 0) + 1;
    else if (outcomeUsage(buf, p, headEnd, u)) addModelUsage(to, input.model ?? 'unknown', u);
  }
  return ok;
}

/** What a run's `.json` holds: written after its lines and line numbers are committed. */
interface RunDone {
  lines: number;
  bytes: number;
  counts: MergeSummary;
}

/**
 * A run left by an earlier attempt, when it is whole: its `.json` is written only after both its
 * objects are committed (each whole or absent), and their sizes must be those it records. A run's
 * inputs never change once the merge runs (a resumed job removes `merge/` with `final/`) and its
 * name holds the fan-in that grouped them, so a whole run holds exactly what rebuilding it would.
 */
async function wholeRun(io: MergeIo, run: ReturnType<typeof workKey.mergeRun>): Promise<RunDone | undefined> {
  const { store, prefix } = io.runs;
  const text = await readText(store, prefix + run.done);
  if (text === undefined) return undefined;
  let done: RunDone;
  try {
    done = JSON.parse(text) as RunDone;
  } catch {
    return undefined;
  }
  const [bytes, numbers] = await Promise.all([
    store.size(prefix + run.lines),
    store.size(prefix + run.numbers),
  ]);
  return bytes === done.bytes && numbers === 4 * done.lines ? done : undefined;
}

/** Merges `group` into the run `run`: its outcome records as they are, and their line numbers. */
async function buildRun(
  io: MergeIo,
  group: readonly SortedInput[],
  run: ReturnType<typeof workKey.mergeRun>,
  budget: number,
  merged: () => void,
): Promise<RunDone> {
  const { store, prefix } = io.runs;
  const lines = new ByteWriter(new ObjectSink(store, prefix + run.lines));
  const numbers = new ObjectSink(store, prefix + run.numbers);
  const counts = emptyCounts();
  const u = [0, 0, 0];
  const numBuf = Buffer.allocUnsafe(64 * 1024);
  let numAt = 0;
  let n = 0;
  try {
    await kway(io, group, io.readPlan(group.length, budget), (input, r) => {
      if (input.counts === undefined)
        countLine(counts, input, r, outcomeHeadEnd(r.buf, r.lineStart, r.lineEnd), u);
      n++;
      merged();
      numBuf.writeUInt32LE(r.number, numAt);
      numAt += 4;
      const w = lines.line(r.buf, r.lineStart, r.lineEnd);
      if (numAt < numBuf.length) return w;
      numAt = 0;
      return Promise.all([w, numbers.write(numBuf)]).then(() => undefined);
    });
    for (const input of group) if (input.counts) addCounts(counts, input.counts);
    if (numAt > 0) await numbers.write(numBuf.subarray(0, numAt));
    await Promise.all([lines.commit(), numbers.commit()]);
  } catch (err) {
    await Promise.all([lines.abort(), numbers.abort()]);
    throw err;
  }
  const done: RunDone = { lines: n, bytes: lines.bytes, counts };
  await store.write(prefix + run.done, JSON.stringify(done));
  return done;
}

/** What the merge did: how many passes, and how many intermediate runs it built or found whole. */
export interface MergePasses {
  passes: number;
  runsBuilt: number;
  runsReused: number;
}

/**
 * Step 2: the k-way merge into results.jsonl and errors.jsonl. When the inputs are more than one
 * merge reads at once within the budget (objects, many shards), groups of them are first merged
 * into runs, pass after pass, until the last pass reads few enough; every pass orders by input
 * line number, which is unique, so the outputs are the same bytes however many passes it took.
 */
export async function mergeShards(
  workDir: string,
  io: MergeIo,
  shards: number,
  budget: number,
  summary: MergeSummary,
  heartbeat: (merged: number) => void,
): Promise<{ results: ByteWriter; errors: ByteWriter; passes: MergePasses }> {
  // Usage per model: each original shard has one model (manifest.json of round 1).
  const manifest = await readPlanManifest(workDir);
  const models = new Map(manifest.shards.map((m) => [m.index, m.model]));
  let inputs: SortedInput[] = Array.from({ length: shards }, (_, s) => ({
    lines: workKey.finalShard(s),
    numbers: workKey.lineNumbers(s),
    model: models.get(s) ?? 'unknown',
  }));
  // Lines answered from earlier jobs are one more sorted input, already in final form.
  if (await io.has(workKey.reused())) {
    summary.reused = 0;
    inputs.push({ lines: workKey.reused(), numbers: workKey.reusedLines(), reused: true });
  }
  let n = 0;
  const merged = (): void => {
    if (++n % 20000 === 0) heartbeat(n);
  };
  // Two at least: a pass of single inputs would never end.
  const fanIn = Math.max(2, io.readPlan(inputs.length, budget).fanIn);
  const passes: MergePasses = { passes: 1, runsBuilt: 0, runsReused: 0 };
  while (inputs.length > fanIn) {
    const next: SortedInput[] = [];
    for (let g = 0; g * fanIn < inputs.length; g++) {
      const run = workKey.mergeRun(fanIn, passes.passes, g);
      let done = await wholeRun(io, run);
      if (done) passes.runsReused++;
      else {
        done = await buildRun(io, inputs.slice(g * fanIn, (g + 1) * fanIn), run, budget, merged);
        passes.runsBuilt++;
      }
      next.push({ lines: run.lines, numbers: run.numbers, counts: done.counts });
    }
    inputs = next;
    passes.passes++;
  }

  const results = io.output('results');
  const errors = io.output('errors');
  const u = [0, 0, 0];
  try {
    await kway(io, inputs, io.readPlan(inputs.length, budget), (input, r) => {
      const { buf, lineStart: ls, lineEnd: le } = r;
      const headEnd = outcomeHeadEnd(buf, ls, le);
      merged();
      if (
        input.counts === undefined
          ? countLine(summary, input, r, headEnd, u)
          : outcomeIsOk(buf, outcomeLineEnd(buf, ls, headEnd))
      )
        return results.line(buf, headEnd + 1, le);
      const rec = decodeOutcomeHead(buf, ls, headEnd);
      const result = headEnd < le ? buf.toString('utf8', headEnd + 1, le) : '';
      const response = result ? ((JSON.parse(result) as { response?: unknown }).response ?? null) : null;
      return errors.text(
        JSON.stringify({
          custom_id: rec.customId,
          attempts: rec.attempt,
          error: rec.error ?? null,
          response,
        }),
      );
    });
    for (const input of inputs) if (input.counts) addCounts(summary, input.counts);
    sortModels(summary);
  } catch (err) {
    await Promise.all([results.abort(), errors.abort()]);
    throw err;
  }
  return { results, errors, passes };
}
