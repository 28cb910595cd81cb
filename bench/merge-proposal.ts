// A prototype, for the merge benchmark only: the merge of activities/merge.ts (same layout, same two
// steps, same outputs byte for byte, same summary) done on bytes instead of strings, to measure
// what the change proposed for the activity would give. Not used by the job.
//  - step 1 indexes each outcome line by parsing `{"i":<n>,` from the bytes (no string per line)
//    and writes the shard's final file by copying byte ranges into a 1 MiB buffer (one awaited
//    write per MiB, not two awaited writes per line);
//  - step 2 reads each final file through a refilled buffer, reads `"k":"ok"` and `"u":[…]` from
//    the header bytes (JSON.parse only for the rare failed line) and copies the result bytes after
//    the tab straight into the results buffer.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { MergeSummary } from '../common/job-types.ts';
import { encodeOutcome, type OutcomeHeader } from '../activities/outcome.ts';
import { finalFile, lineNumbersFile, outcomeDir, roundDir, unitFile } from '../activities/work-dir.ts';
import type { MergeInput } from '../activities/merge.ts';

const CHUNK = 1 << 20;
const READ = 256 * 1024;
const NL = 10;
const TAB = 9;

/**
 * Writes to `<file>.tmp-…` in 1 MiB writes, double-buffered: one write runs while the next buffer
 * fills. commit fsyncs and renames.
 */
class ByteWriter {
  private readonly tmp: string;
  private buf = Buffer.allocUnsafe(CHUNK);
  private spare = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private inFlight: Promise<unknown> | undefined;
  private fh: fsp.FileHandle | undefined;
  readonly file: string;
  constructor(file: string) {
    this.file = file;
    this.tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  }
  private async flush(): Promise<void> {
    this.fh ??= await fsp.open(this.tmp, 'w');
    await this.inFlight;
    if (this.used === 0) return;
    this.inFlight = this.fh.write(this.buf, 0, this.used);
    [this.buf, this.spare] = [this.spare, this.buf];
    this.used = 0;
  }
  /** Appends src[start, end) and a newline; awaits only when the buffer is full. */
  line(src: Buffer, start: number, end: number): Promise<void> | undefined {
    const len = end - start + 1;
    if (this.used + len > CHUNK) return this.lineSlow(src, start, end);
    src.copy(this.buf, this.used, start, end);
    this.used += len - 1;
    this.buf[this.used++] = NL;
    return undefined;
  }
  private async lineSlow(src: Buffer, start: number, end: number): Promise<void> {
    await this.flush();
    if (end - start + 1 > CHUNK) {
      await this.inFlight;
      await this.fh!.write(src.subarray(start, end));
      await this.fh!.write(Buffer.from('\n'));
    } else {
      src.copy(this.buf, 0, start, end);
      this.used = end - start;
      this.buf[this.used++] = NL;
    }
  }
  /** Appends bytes as they are. */
  async raw(data: Buffer): Promise<void> {
    await this.flush();
    await this.inFlight;
    await this.fh!.write(data);
  }
  text(s: string): Promise<void> | undefined {
    const b = Buffer.from(s);
    return this.line(b, 0, b.length);
  }
  async commit(): Promise<void> {
    await this.flush();
    await this.inFlight;
    await this.fh!.sync();
    await this.fh!.close();
    await fsp.rename(this.tmp, this.file);
  }
}

/** `{"i":<n>,…`: the line index, read from the bytes. */
function indexAt(buf: Buffer, at: number): number {
  let p = at + 5;
  let n = 0;
  for (let c = buf[p]!; c >= 48 && c <= 57; c = buf[++p]!) n = n * 10 + (c - 48);
  if (p === at + 5) throw new Error(`malformed outcome record at byte ${at}`);
  return n;
}

async function finalizeShard(
  workDir: string,
  shard: number,
  lines: number,
  jobStatus: MergeInput['jobStatus'],
): Promise<{ commit: Promise<void> } | undefined> {
  const target = finalFile(workDir, shard);
  if (fs.existsSync(target)) return undefined;
  const dir = outcomeDir(workDir, shard);
  const key = (n: string) => {
    const m = /^r(\d+)-u(\d+)\.jsonl$/.exec(n);
    return m ? Number(m[1]) * 1e6 + Number(m[2]) : Infinity;
  };
  const names = (await fsp.readdir(dir).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.jsonl'))
    .sort((a, b) => key(a) - key(b));
  // The prototype keeps the activity's in-memory path only (a shard's outcomes within the budget).
  const bufs = await Promise.all(names.map((n) => fsp.readFile(path.join(dir, n))));
  const fileOf = new Int32Array(lines).fill(-1);
  const offset = new Uint32Array(lines);
  const length = new Uint32Array(lines);
  for (let f = 0; f < bufs.length; f++) {
    const buf = bufs[f]!;
    for (let at = 0; at < buf.length;) {
      let nl = buf.indexOf(NL, at);
      if (nl === -1) nl = buf.length;
      if (nl > at) {
        const i = indexAt(buf, at);
        fileOf[i] = f;
        offset[i] = at;
        length[i] = nl - at;
      }
      at = nl + 1;
    }
  }
  let ids: string[] | null = null;
  if (fileOf.includes(-1)) {
    ids = (await fsp.readFile(unitFile(workDir, 1, shard), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const w = new ByteWriter(target);
  for (let i = 0; i < lines; i++) {
    const f = fileOf[i]!;
    if (f >= 0) {
      const p = w.line(bufs[f]!, offset[i]!, offset[i]! + length[i]!);
      if (p) await p;
      continue;
    }
    const header: OutcomeHeader = {
      i,
      k: 'permanent',
      a: 0,
      cid: ids?.[i] ?? '',
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
    await w.text(encodeOutcome(header, ''));
  }
  // The fsync and rename run while the next shard is finalized; the merge waits for all of them.
  return { commit: w.commit() };
}

/** One shard's final file through a refilled buffer, with its `.lines` numbers. */
class ShardReader {
  buf = Buffer.allocUnsafe(READ);
  start = 0;
  end = 0;
  pos = 0;
  lineStart = 0;
  lineEnd = 0;
  eof = false;
  private readonly fd: number;
  private readonly nums: number;
  private readonly numBuf = Buffer.allocUnsafe(64 * 1024);
  private numHave = 0;
  private numAt = 0;
  private numPos = 0;
  constructor(file: string, numbers: string) {
    this.fd = fs.openSync(file, 'r');
    this.nums = fs.openSync(numbers, 'r');
  }
  /** Moves to the next line: true, false at the end, or a promise when the buffer needs a refill. */
  next(): boolean | Promise<boolean> {
    const nl = this.buf.indexOf(NL, this.start);
    if (nl !== -1 && nl < this.end) {
      this.lineStart = this.start;
      this.lineEnd = nl;
      this.start = nl + 1;
      return true;
    }
    return this.refill();
  }
  private async refill(): Promise<boolean> {
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
      const { bytesRead } = await new Promise<{ bytesRead: number }>((resolve, reject) =>
        fs.read(this.fd, this.buf, this.end, this.buf.length - this.end, this.pos, (err, bytesRead) =>
          err ? reject(err) : resolve({ bytesRead }),
        ),
      );
      this.pos += bytesRead;
      this.end += bytesRead;
      if (bytesRead === 0) this.eof = true;
      const nl = this.buf.indexOf(NL, this.start);
      if (nl !== -1 && nl < this.end) {
        this.lineStart = this.start;
        this.lineEnd = nl;
        this.start = nl + 1;
        return true;
      }
    }
  }
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

const OK = Buffer.from(',"k":"ok"');
const USAGE = Buffer.from(',"u":[');

/** `[a,b,c]` at `p` (after `"u":[`): the three numbers. */
function usageAt(buf: Buffer, p: number, out: number[]): void {
  for (let k = 0; k < 3; k++) {
    let n = 0;
    for (let c = buf[p]!; c >= 48 && c <= 57; c = buf[++p]!) n = n * 10 + (c - 48);
    out[k] = n;
    p++;
  }
}

export async function proposedMerge(input: MergeInput): Promise<MergeSummary> {
  const { workDir, outDir } = input.paths;
  const commits: Promise<void>[] = [];
  for (let s = 0; s < input.shardLines.length; s++) {
    const c = await finalizeShard(workDir, s, input.shardLines[s]!, input.jobStatus);
    if (c) {
      c.commit.catch(() => undefined); // awaited below; this only keeps an early failure unhandled-free
      commits.push(c.commit);
    }
    if (commits.length >= 4) await commits.shift();
  }
  await Promise.all(commits);
  const manifest = JSON.parse(
    await fsp.readFile(path.join(roundDir(workDir, 1), 'manifest.json'), 'utf8'),
  ) as { shards: { index: number; model: string }[] };
  const models = new Map(manifest.shards.map((m) => [m.index, m.model]));
  const summary: MergeSummary = {
    succeeded: 0,
    failed: 0,
    rejected: 0,
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    usageByModel: {},
  };
  const results = new ByteWriter(path.join(outDir, 'results.jsonl'));
  const errors = new ByteWriter(path.join(outDir, 'errors.jsonl'));
  const k = input.shardLines.length;
  const readers: ShardReader[] = [];
  // Binary min-heap of shard indexes by the input line number of their current line.
  const key = new Float64Array(k);
  const heap = new Int32Array(k);
  let size = 0;
  const push = (s: number) => {
    let i = size++;
    heap[i] = s;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (key[heap[p]!]! <= key[heap[i]!]!) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const popTop = () => {
    heap[0] = heap[--size]!;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && key[heap[l]!]! < key[heap[m]!]!) m = l;
      if (r < size && key[heap[r]!]! < key[heap[m]!]!) m = r;
      if (m === i) break;
      [heap[m], heap[i]] = [heap[i]!, heap[m]!];
      i = m;
    }
  };
  const advance = async (s: number) => {
    const r = readers[s]!;
    let more = r.next();
    if (typeof more !== 'boolean') more = await more;
    if (more) {
      key[s] = r.lineNumber();
      push(s);
    }
  };
  const u = [0, 0, 0];
  try {
    for (let s = 0; s < k; s++) {
      readers.push(new ShardReader(finalFile(workDir, s), lineNumbersFile(workDir, s)));
      await advance(s);
    }
    while (size > 0) {
      const s = heap[0]!;
      const r = readers[s]!;
      const { buf, lineStart: ls, lineEnd: le } = r;
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
          summary.usage.prompt_tokens += u[0]!;
          summary.usage.completion_tokens += u[1]!;
          summary.usage.total_tokens += u[2]!;
          const model = (summary.usageByModel[models.get(s) ?? 'unknown'] ??= {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
          });
          model.prompt_tokens += u[0]!;
          model.completion_tokens += u[1]!;
          model.total_tokens += u[2]!;
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
      popTop();
      await advance(s);
    }
  } finally {
    for (const r of readers) r.close();
  }
  const round1 = roundDir(workDir, 1);
  for (const name of ['rejected.jsonl', 'manifest.json']) {
    const data = await fsp.readFile(path.join(round1, name));
    const w = new ByteWriter(path.join(outDir, name));
    await w.raw(data);
    await w.commit();
    if (name === 'rejected.jsonl') for (const b of data) if (b === NL) summary.rejected++;
  }
  await results.commit();
  await errors.commit();
  return summary;
}
