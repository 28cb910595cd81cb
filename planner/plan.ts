// The planner's main thread: reads the input into chunks of a shared memory, has them checked (by
// scan threads, or inline), then in input order decides uniqueness of custom_id, packs accepted
// lines into shards and writes shards, sidecars, rejected.jsonl and manifest.json.
//
// Memory is set by configuration, not by the input (README.md, Memory bound): 2 to 5 chunk
// slots of max(4 MiB, max line bytes + 64 KiB), ≤ 16 open shard files, the custom_id table (≤ 128 MiB,
// ~7 bytes per distinct id) and a line index of at most 1M entries. Accepted lines are copied into
// a 256 KiB buffer per open shard and written from there (writer.ts says why not from the slots).
import fs from 'node:fs';
import os from 'node:os';
import { formatBytes } from '../common/units.ts';
import { estimateTokens } from '../common/tokens.ts';
import { fsyncPath } from '../storage/atomic-file.ts';
import { roundFiles, shardFileName } from '../storage/layout.ts';
import { writePlanManifestSync } from '../storage/manifest.ts';
import {
  F_HAS_ID,
  F_ID_ESC,
  F_REJECTED,
  F_REWRITTEN,
  REC,
  R_DELTA,
  R_FLAGS,
  R_HASH,
  R_HASH2,
  R_ID_END,
  R_ID_START,
  R_LEN,
  R_OUT,
  R_REF,
  R_START,
  parseGroupKey,
  type ChunkPart,
  type Problem,
} from './chunk.ts';
import { CsvReader, csvColumns, csvPositions, csvRequestLine, type CsvOptions } from './csv.ts';
import { InputError } from './errors.ts';
import { IdTable, IdTableFullError, LineIndex } from './ids.ts';
import { customIdOf, idFromPrefix } from './line-id.ts';
import { SEED2, hashString, thinksByDefault, type LineRules } from './line.ts';
import { ScanPool } from './pool.ts';
import { decodeJsonString } from './scan.ts';
import { ShardPacker } from './shards.ts';
import { compileScanModule, scanFnsFor, scanMemory, type ScanMemory } from './simd.ts';
import type { PlanOptions, PlanProblem, PlanReport, PlanTuning, PlanWarning, ShardInfo } from './types.ts';
import { ShardFiles } from './writer.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 64 * KiB;

interface ChunkMeta {
  slot: number;
  base: number;
  /** File offset of the chunk's first byte (JSONL). */
  fileOffset: number;
  /** CSV: line number and file offset of each generated line, and rows refused before scanning. */
  lineNos?: number[];
  offsets?: number[];
  extras?: Extra[];
  cursor: number;
}

interface Extra {
  line: number;
  offset: number;
  problem: Problem;
}

interface Group {
  model: string;
  thinking: boolean | null;
  lines: number;
  bytes: number;
  firstLine: number;
}

/** Starts an fsync; its failure is kept for whoever awaits it, never left unhandled meanwhile. */
function syncInBackground(file: string): Promise<void> {
  const p = fsyncPath(file);
  p.catch(() => undefined);
  return p;
}

function statInput(file: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ENOENT'
        ? `input ${file} does not exist`
        : `cannot read input ${file}: ${(err as Error).message}`,
    );
  }
  if (st.isDirectory())
    throw new InputError(`input ${file} is a directory: give the path of a .jsonl or .csv file`);
  return st;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Request lines to expect, from the line length in the first MiB (sizes the id table once). */
function estimateLines(file: string, size: number): number {
  const sample = Buffer.allocUnsafe(Math.min(size, MiB));
  const fd = fs.openSync(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, sample, 0, sample.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  let lines = 0;
  for (let at = sample.indexOf(10); at >= 0 && at < n; at = sample.indexOf(10, at + 1)) lines++;
  return Math.ceil((size / Math.max(1, n)) * Math.max(1, lines));
}

/** planInput's body: see index.ts. */
export async function runPlan(opts: PlanOptions, tuning: PlanTuning = {}): Promise<PlanReport> {
  const st = statInput(opts.input);
  const csv = /\.csv$/i.test(opts.input);
  if (csv && !opts.csv) {
    throw new InputError(
      `${opts.input} is CSV: pass --model (and --prompt-column / --id-column when not "prompt" / "custom_id") to convert it`,
    );
  }
  const planner = new Planner(opts, tuning, st.size, csv ? opts.csv : undefined);
  try {
    return await planner.run();
  } catch (err) {
    if (err instanceof IdTableFullError) {
      throw new InputError(
        `${opts.input} has more distinct custom_ids than one plan checks in its memory bound (${err.message}): split the input into files of at most 15 million lines`,
      );
    }
    throw err;
  } finally {
    await planner.close();
  }
}

class Planner {
  private readonly opts: PlanOptions;
  private readonly size: number;
  private readonly csv: CsvOptions | undefined;
  private readonly rules: LineRules;
  private readonly memory: ScanMemory;
  private readonly u8: Uint8Array;
  private readonly buf: Buffer;
  private readonly slotBytes: number;
  private readonly free: number[] = [];
  private readonly pool: ScanPool;
  private readonly fd: number;
  private readonly verifyFd: number;
  private readonly chunks = new Map<number, ChunkMeta>();
  private readonly ids: IdTable;
  private readonly lineIndex: LineIndex;
  private readonly packer: ShardPacker;
  private readonly files: ShardFiles | undefined;
  private readonly hashes = new Map<number, Promise<string>>();
  /** fsyncs of finished shards and sidecars, run on the thread pool while planning goes on. */
  private readonly syncs: Promise<void>[] = [];
  private readonly groups: Group[] = [];
  private readonly groupIds = new Map<string, number>();
  private readonly problems: PlanProblem[] = [];
  private readonly maxProblems: number;
  private readonly hashMask: number;
  private readonly cpuReport: PlanTuning['cpuReport'];
  private rejectedFd: number | undefined;
  private rejectedText: string[] = [];
  private rejectedBytes = 0;

  private seq = 0;
  private inflight = 0;
  private eof = false;
  private filePos = 0;
  private carryFrom = 0;
  private carryLen = 0;
  private lineNo = 0;
  private requests = 0;
  private valid = 0;
  private rejected = 0;
  private processedBytes = 0;
  private lastProgress = 0;
  private csvReader: CsvReader | undefined;
  private csvCols: { id: number; prompt: number } | undefined;
  private pendingRow: ReturnType<CsvReader['next']>;
  private verifyBlock: { offset: number; data: Buffer } | undefined;

  constructor(opts: PlanOptions, tuning: PlanTuning, size: number, csv: CsvOptions | undefined) {
    this.opts = opts;
    this.size = size;
    this.csv = csv;
    this.maxProblems = opts.maxProblems ?? 1000;
    this.hashMask = tuning.idHashMask ?? 0xffffffff;
    this.cpuReport = tuning.cpuReport;
    const limits = opts.limits;
    // A line must also fit a shard with its newline.
    const maxLineBytes = Math.min(limits.maxLineBytes, limits.maxBytes - 1);
    this.rules = {
      endpoint: opts.endpoint,
      maxLineBytes,
      ...(opts.rewrite?.model !== undefined ? { model: opts.rewrite.model } : {}),
      ...(opts.rewrite?.url !== undefined ? { url: opts.rewrite.url } : {}),
      ...(opts.rewrite?.thinking !== undefined ? { thinking: opts.rewrite.thinking } : {}),
      ...(opts.rewrite?.thinkingBudget !== undefined ? { thinkingBudget: opts.rewrite.thinkingBudget } : {}),
      ...(tuning.idHashMask !== undefined ? { idHashMask: tuning.idHashMask } : {}),
    };
    const expected = estimateLines(opts.input, size);
    // Scan threads for inputs worth them; one only past 2.5M lines, where the id table needs the room
    // (peak RSS stays under 256 MB at 10M lines).
    const threads =
      tuning.workers ??
      (size <= 16 * MiB ? 0 : Math.max(1, Math.min(expected > 2_500_000 ? 1 : 2, os.availableParallelism())));
    // A slot holds a chunk and must hold any line that may be accepted (plus CR, BOM, newline).
    this.slotBytes = roundUp(Math.max(tuning.chunkBytes ?? 4 * MiB, maxLineBytes + PAGE), PAGE);
    // Spare slots let the scan threads run ahead of the main thread; with one scan thread (large
    // inputs) the memory goes to the id table instead.
    let slots = threads >= 2 ? threads + 3 : Math.max(2, threads + 1);
    // After the slots, the open shards' write buffers (writer.ts).
    const maxOpen = tuning.maxOpenShards ?? 16;
    const arenaBytes = opts.outDir ? ShardFiles.arenaBytes(maxOpen) : 0;
    const fits = (): boolean => slots * this.slotBytes + arenaBytes < 1024 * MiB;
    while (slots > 2 && !fits()) slots--;
    if (!fits()) {
      throw new InputError(
        `--max-line-bytes ${formatBytes(limits.maxLineBytes)} is over what one plan can hold (about 500 MB)`,
      );
    }
    for (let k = 0; k < slots; k++) this.free.push(k);
    this.memory = scanMemory(slots * this.slotBytes + arenaBytes, threads > 0);
    this.u8 = new Uint8Array(this.memory.buffer);
    this.buf = Buffer.from(this.memory.buffer);
    const module = compileScanModule(this.memory);
    this.ids = new IdTable(expected, tuning.idTableBytes ?? 128 * MiB);
    this.lineIndex = new LineIndex(Math.ceil(expected / 32) + 1024);
    this.packer = new ShardPacker(limits);
    if (opts.outDir) {
      fs.mkdirSync(opts.outDir, { recursive: true });
      ShardFiles.clean(opts.outDir);
      this.files = new ShardFiles(
        opts.outDir,
        { u8: this.u8, base: slots * this.slotBytes, copy: scanFnsFor(this.memory, module).copy },
        (index, file, lineNumbers) => {
          this.hashes.set(index, this.pool.hash(index, file));
          this.syncs.push(...[file, lineNumbers].map(syncInBackground));
        },
        maxOpen,
      );
      this.rejectedFd = fs.openSync(`${roundFiles(opts.outDir).rejected()}.tmp`, 'w');
    }
    this.fd = fs.openSync(opts.input, 'r');
    this.verifyFd = fs.openSync(opts.input, 'r');
    this.pool = new ScanPool(this.memory, module, this.rules, threads, tuning.partRecords ?? 1 << 13);
  }

  async close(): Promise<void> {
    if (this.cpuReport) {
      this.cpuReport({ main: process.threadCpuUsage(), scan: await this.pool.threadCpu() });
    }
    this.files?.abandon();
    if (this.rejectedFd !== undefined) fs.closeSync(this.rejectedFd);
    this.rejectedFd = undefined;
    fs.closeSync(this.fd);
    fs.closeSync(this.verifyFd);
    await this.pool.close();
  }

  async run(): Promise<PlanReport> {
    if (this.csv) this.startCsv(this.csv);
    for (;;) {
      while (this.free.length > 0 && !this.eof) {
        if (this.csv) this.readCsvChunk(this.csv);
        else this.readJsonlChunk();
      }
      if (this.inflight === 0) break;
      const part = await this.pool.take();
      this.process(part);
      this.pool.recycle(part);
      if (part.last) {
        const meta = this.chunks.get(part.seq)!;
        this.chunks.delete(part.seq);
        if (meta.slot >= 0) this.free.push(meta.slot);
        this.inflight--;
      }
    }
    return this.finish();
  }

  // ---- reading -------------------------------------------------------------------------------

  private dispatch(meta: ChunkMeta, len: number): void {
    this.chunks.set(this.seq, meta);
    this.inflight++;
    if (len > 0) this.pool.scan(this.seq, meta.base, len);
    else this.pool.put(emptyPart(this.seq));
    this.seq++;
  }

  private readJsonlChunk(): void {
    const slot = this.free.shift()!;
    const base = slot * this.slotBytes;
    const cap = this.slotBytes;
    if (this.carryLen > 0) this.u8.copyWithin(base, this.carryFrom, this.carryFrom + this.carryLen);
    let len = this.carryLen;
    const fileOffset = this.filePos - this.carryLen;
    while (len < cap) {
      const n = fs.readSync(this.fd, this.u8, base + len, cap - len, this.filePos);
      if (n === 0) {
        this.eof = true;
        break;
      }
      this.filePos += n;
      len += n;
    }
    this.carryLen = 0;
    if (len === 0) {
      this.free.unshift(slot);
      return;
    }
    let cut = len;
    if (!this.eof) {
      const lastNl = this.buf.lastIndexOf(10, base + len - 1);
      if (lastNl < base) {
        this.skipLongLine(slot, base, len, fileOffset);
        return;
      }
      cut = lastNl + 1 - base;
    }
    this.carryFrom = base + cut;
    this.carryLen = len - cut;
    this.dispatch({ slot, base, fileOffset, cursor: 0 }, cut);
  }

  /** A line longer than a slot: over the limit for sure. Reported without scanning, then skipped. */
  private skipLongLine(slot: number, base: number, len: number, lineStart: number): void {
    const id = idFromPrefix(this.buf.toString('utf8', base, base + Math.min(len, 64 * KiB)));
    let total = len;
    for (;;) {
      const n = fs.readSync(this.fd, this.u8, base, this.slotBytes, this.filePos);
      if (n === 0) {
        this.eof = true;
        break;
      }
      this.filePos += n;
      const nl = this.buf.indexOf(10, base);
      if (nl >= 0 && nl < base + n) {
        total += nl - base;
        this.carryFrom = nl + 1;
        this.carryLen = base + n - (nl + 1);
        break;
      }
      total += n;
    }
    this.free.unshift(slot);
    const recs = new Int32Array(REC);
    recs[R_FLAGS] = F_REJECTED | (id !== undefined ? F_HAS_ID : 0);
    recs[R_HASH] = id !== undefined ? hashString(id) & this.hashMask : 0;
    recs[R_HASH2] = id !== undefined ? hashString(id, SEED2) & this.hashMask : 0;
    recs[R_DELTA] = 1;
    const problem: Problem = {
      code: 'line_too_large',
      message: `line is ${formatBytes(total)} (${total} bytes), over the limit of ${formatBytes(this.rules.maxLineBytes)} per line (--max-line-bytes): shorten the request`,
      ...(id !== undefined ? { customId: id } : {}),
    };
    this.chunks.set(this.seq, { slot: -1, base: 0, fileOffset: lineStart, cursor: 0 });
    this.inflight++;
    this.pool.put({ ...emptyPart(this.seq), recs, n: 1, problems: [problem] });
    this.seq++;
  }

  private startCsv(csv: CsvOptions): void {
    this.csvReader = new CsvReader(this.fd, 0, 1, this.slotBytes);
    if (csv.header === false) {
      this.csvCols = csvPositions(csv, this.opts.input);
      return;
    }
    const header = this.csvReader.next();
    if (!header) {
      this.eof = true;
      return;
    }
    this.csvCols = csvColumns(header.fields, csv, this.opts.input);
  }

  private readCsvChunk(csv: CsvOptions): void {
    const reader = this.csvReader!;
    const cols = this.csvCols!;
    const slot = this.free.shift()!;
    const base = slot * this.slotBytes;
    const cap = this.slotBytes;
    const meta: ChunkMeta = { slot, base, fileOffset: 0, lineNos: [], offsets: [], extras: [], cursor: 0 };
    let len = 0;
    for (;;) {
      const row = this.pendingRow ?? reader.next();
      this.pendingRow = undefined;
      if (!row) {
        this.eof = true;
        break;
      }
      const need = Math.max(cols.id, cols.prompt);
      const id = row.fields?.[cols.id];
      const extra = (code: string, message: string): void => {
        meta.extras!.push({
          line: row.line,
          offset: row.offset,
          problem: { code, message, ...(id ? { customId: id } : {}) },
        });
      };
      if (!row.fields) {
        extra('invalid_utf8', 'row is not valid UTF-8 text: save the CSV as UTF-8');
        continue;
      }
      if (row.fields.length <= need) {
        extra(
          'csv_missing_field',
          `row has ${row.fields.length} fields but the ${row.fields.length <= cols.id ? `id column "${csv.idColumn}"` : `prompt column "${csv.promptColumn}"`} is field ${need + 1}: check the row's commas and quotes`,
        );
        continue;
      }
      const text = csvRequestLine(row.fields[cols.id]!, row.fields[cols.prompt]!, csv, this.opts.endpoint);
      const bytes = Buffer.byteLength(text);
      if (bytes + 1 > cap) {
        extra(
          'line_too_large',
          `row converts to a ${formatBytes(bytes)} request, over the limit of ${formatBytes(this.rules.maxLineBytes)} per line (--max-line-bytes): shorten the prompt`,
        );
        continue;
      }
      if (len + bytes + 1 > cap) {
        this.pendingRow = row;
        break;
      }
      this.buf.write(text, base + len, 'utf8');
      len += bytes;
      this.u8[base + len++] = 0x0a;
      meta.lineNos!.push(row.line);
      meta.offsets!.push(row.offset);
    }
    this.processedBytes = reader.position;
    if (len === 0 && meta.extras!.length === 0) {
      this.free.unshift(slot);
      return;
    }
    this.dispatch(meta, len);
  }

  // ---- deciding, in input order ----------------------------------------------------------------

  private process(part: ChunkPart): void {
    const meta = this.chunks.get(part.seq)!;
    const recs = part.recs;
    const local: number[] = [];
    const csvLines = meta.lineNos;
    const files = this.files;
    const packer = this.packer;
    const groups = this.groups;
    for (let k = 0; k < part.n; k++) {
      const r = k * REC;
      let line: number;
      let offset: number;
      if (csvLines) {
        line = csvLines[meta.cursor]!;
        offset = meta.offsets![meta.cursor]!;
        meta.cursor++;
        this.flushExtras(meta, line);
      } else {
        this.lineNo += recs[r + R_DELTA]!;
        line = this.lineNo;
        offset = meta.fileOffset + recs[r + R_START]!;
      }
      this.requests++;
      this.lineIndex.note(line, offset);
      const flags = recs[r + R_FLAGS]!;
      let dupOf = 0;
      if (flags & F_HAS_ID) {
        const cur = this.cur;
        cur.part = part;
        cur.meta = meta;
        cur.r = r;
        cur.id = undefined;
        dupOf = this.ids.add(recs[r + R_HASH]! >>> 0, recs[r + R_HASH2]!, line, this.sameAsCurrent);
      }
      if (flags & F_REJECTED || dupOf) {
        const problem = flags & F_REJECTED ? part.problems[recs[r + R_REF]!] : undefined;
        this.reject(line, problem, dupOf, flags & F_HAS_ID ? this.currentId() : problem?.customId);
        continue;
      }
      const ref = recs[r + R_REF]!;
      let g = local[ref];
      if (g === undefined) g = local[ref] = this.groupOf(part.groups[ref]!, line);
      const len = recs[r + R_LEN]!;
      const group = groups[g]!;
      group.lines++;
      group.bytes += len + 1;
      this.valid++;
      const shard = packer.add(g, len + 1);
      if (files) {
        if (packer.closed) files.close(packer.closed.index);
        if (flags & F_REWRITTEN) files.append(shard.index, part.out!, recs[r + R_OUT]!, len, line);
        else files.append(shard.index, this.u8, meta.base + recs[r + R_START]!, len, line);
      }
    }
    if (!csvLines) this.lineNo += part.trailing;
    if (part.last && meta.extras) this.flushExtras(meta, Infinity);
    this.progress(false);
  }

  /** The record being decided, for the id check's callback (no closure per line). */
  private readonly cur: { part: ChunkPart; meta: ChunkMeta; r: number; id: string | undefined } = {
    part: emptyPart(0),
    meta: { slot: -1, base: 0, fileOffset: 0, cursor: 0 },
    r: 0,
    id: undefined,
  };
  private readonly sameAsCurrent = (earlier: number): boolean => this.idAt(earlier) === this.currentId();

  private currentId(): string {
    const c = this.cur;
    if (c.id === undefined) {
      const recs = c.part.recs;
      const flags = recs[c.r + R_FLAGS]!;
      const problem = flags & F_REJECTED ? c.part.problems[recs[c.r + R_REF]!] : undefined;
      if (problem?.customId !== undefined) c.id = problem.customId;
      else {
        const a = c.meta.base + recs[c.r + R_ID_START]!;
        const b = c.meta.base + recs[c.r + R_ID_END]!;
        c.id = flags & F_ID_ESC ? decodeJsonString(this.u8, a, b) : this.buf.toString('utf8', a, b);
      }
    }
    return c.id;
  }

  /** CSV rows refused before scanning, reported in line order among the others. */
  private flushExtras(meta: ChunkMeta, before: number): void {
    const extras = meta.extras!;
    while (extras.length > 0 && extras[0]!.line < before) {
      const x = extras.shift()!;
      this.requests++;
      this.lineIndex.note(x.line, x.offset);
      const id = x.problem.customId;
      const dupOf =
        id !== undefined
          ? this.ids.add(
              hashString(id) & this.hashMask,
              hashString(id, SEED2) & this.hashMask,
              x.line,
              (e) => this.idAt(e) === id,
            )
          : 0;
      this.reject(x.line, x.problem, dupOf, id);
    }
  }

  private groupOf(key: string, line: number): number {
    let g = this.groupIds.get(key);
    if (g === undefined) {
      g = this.groups.length;
      this.groupIds.set(key, g);
      this.groups.push({ ...parseGroupKey(key), lines: 0, bytes: 0, firstLine: line });
    }
    return g;
  }

  private reject(
    line: number,
    problem: Problem | undefined,
    dupOf: number,
    customId: string | undefined,
  ): void {
    this.rejected++;
    const dup =
      dupOf > 0
        ? `custom_id ${JSON.stringify(customId)} already appears on line ${dupOf} (only the first occurrence is sent): give this request its own custom_id`
        : '';
    const entry: PlanProblem = {
      line,
      code: problem?.code ?? 'duplicate_custom_id',
      message: problem ? (dup ? `${problem.message}; ${dup}` : problem.message) : dup,
      ...(customId !== undefined ? { custom_id: customId } : {}),
    };
    if (this.problems.length < this.maxProblems) this.problems.push(entry);
    if (this.rejectedFd !== undefined) {
      const text = JSON.stringify(entry) + '\n';
      this.rejectedText.push(text);
      this.rejectedBytes += text.length;
      if (this.rejectedBytes > MiB) this.flushRejected();
    }
  }

  private flushRejected(): void {
    if (this.rejectedFd === undefined || this.rejectedText.length === 0) return;
    fs.writeSync(this.rejectedFd, this.rejectedText.join(''));
    this.rejectedText = [];
    this.rejectedBytes = 0;
  }

  /** The custom_id on an earlier line, re-read from the input (only when hashes match). */
  private idAt(line: number): string | undefined {
    const at = this.lineIndex.seek(line);
    if (this.csv) {
      const reader = new CsvReader(this.verifyFd, at.offset, at.line, this.slotBytes);
      for (let row = reader.next(); row; row = reader.next()) {
        if (row.line === line) return row.fields?.[this.csvCols!.id];
        if (row.line > line) return undefined;
      }
      return undefined;
    }
    // Walk from the indexed line to `line`, over lines of any length (a refused one may be longer
    // than a slot).
    let pos = at.offset;
    for (let current = at.line; current < line; current++) {
      for (;;) {
        const block = this.readBlock(pos);
        if (block.length === 0) return undefined;
        const nl = block.indexOf(10);
        if (nl >= 0) {
          pos += nl + 1;
          break;
        }
        pos += block.length;
      }
    }
    const block = this.readBlock(pos);
    const nl = block.indexOf(10);
    if (nl >= 0) return customIdOf(block.subarray(0, nl));
    // Longer than a block: read it whole, up to a slot; a longer line was refused without being
    // scanned, and its id taken from its start (skipLongLine): the same here.
    const whole = Buffer.allocUnsafe(this.slotBytes);
    const n = fs.readSync(this.verifyFd, whole, 0, whole.length, pos);
    const end = whole.subarray(0, n).indexOf(10);
    if (end >= 0 || n < whole.length) return customIdOf(whole.subarray(0, end < 0 ? n : end));
    return idFromPrefix(whole.toString('utf8', 0, 64 * KiB));
  }

  /** Up to 64 KiB of the input from `offset`, from a one-block cache (duplicates come in runs). */
  private readBlock(offset: number): Buffer {
    const b = this.verifyBlock;
    if (b && offset >= b.offset && offset < b.offset + b.data.length) {
      const view = b.data.subarray(offset - b.offset);
      if (view.indexOf(10) >= 0 || b.data.length < 64 * KiB) return view;
    }
    const data = Buffer.allocUnsafe(64 * KiB);
    const n = fs.readSync(this.verifyFd, data, 0, data.length, offset);
    this.verifyBlock = { offset, data: data.subarray(0, n) };
    return this.verifyBlock.data;
  }

  private progress(final: boolean): void {
    const cb = this.opts.onProgress;
    if (!cb) return;
    const now = Date.now();
    if (!final && now - this.lastProgress < 1000) return;
    this.lastProgress = now;
    const bytesRead = final ? this.size : this.csv ? this.processedBytes : Math.min(this.filePos, this.size);
    cb({ bytesRead, linesRead: this.csv ? this.requests : this.lineNo });
  }

  // ---- the end ---------------------------------------------------------------------------------

  private async finish(): Promise<PlanReport> {
    if (this.files) {
      for (const s of this.packer.openShards().sort((a, b) => a.index - b.index)) this.files.close(s.index);
    }
    const shas = new Map<number, string>();
    for (const [index, p] of this.hashes) shas.set(index, await p);
    await Promise.all(this.syncs);
    const shardList: ShardInfo[] = this.packer.shards.map((s) => {
      const g = this.groups[s.group]!;
      return {
        index: s.index,
        file: shardFileName(s.index),
        model: g.model,
        thinking: g.thinking,
        lines: s.lines,
        bytes: s.bytes,
        inputTokens: estimateTokens(s.bytes),
        sha256: shas.get(s.index) ?? '',
      };
    });
    const problems = this.problems;
    if (this.requests === 0) {
      problems.unshift({
        line: 0,
        code: 'empty_file',
        message:
          this.size === 0
            ? 'the input is empty (0 bytes): there is nothing to send'
            : 'the input has no request lines (only blank lines or a CSV header): there is nothing to send',
      });
    }
    const warnings: PlanWarning[] = [];
    for (const g of this.groups) {
      if (g.thinking === null && thinksByDefault(g.model)) {
        warnings.push({
          line: g.firstLine,
          code: 'thinking_unset',
          message: `${g.lines} line${g.lines === 1 ? '' : 's'} for ${g.model} leave${g.lines === 1 ? 's' : ''} body.enable_thinking unset (first: line ${g.firstLine}): ${g.model} thinks by default and thinking tokens are billed as output; set "enable_thinking" in body, or pass --thinking on|off`,
        });
      }
    }
    const outDir = this.opts.outDir;
    if (outDir && this.rejectedFd !== undefined) {
      this.flushRejected();
      fs.fsyncSync(this.rejectedFd);
      fs.closeSync(this.rejectedFd);
      this.rejectedFd = undefined;
      const rejected = roundFiles(outDir).rejected();
      fs.renameSync(`${rejected}.tmp`, rejected);
      // The manifest is the folder's commit marker: written last and durably, once the shards and
      // sidecars (fsynced above) and rejected.jsonl are; its folder fsync also keeps their names.
      writePlanManifestSync(roundFiles(outDir).manifest(), {
        shards: shardList,
        limits: this.opts.limits,
        endpoint: this.opts.rewrite?.url ?? this.opts.endpoint,
        input: this.opts.input,
      });
    }
    this.progress(true);
    return {
      lines: this.requests,
      valid: this.valid,
      rejected: this.rejected,
      groups: this.groups.map(({ model, thinking, lines, bytes }) => ({ model, thinking, lines, bytes })),
      shards: shardList.length,
      shardList,
      problems,
      warnings,
    };
  }
}

function emptyPart(seq: number): ChunkPart {
  return {
    seq,
    last: true,
    recs: new Int32Array(0),
    n: 0,
    trailing: 0,
    groups: [],
    problems: [],
    out: undefined,
  };
}
