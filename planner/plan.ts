// The planner's main thread: a chunk source reads the input into slots of a shared memory, the
// scan threads (or this thread, for small inputs) check them, then in input order this decides
// uniqueness of custom_id, packs accepted lines into shards and writes shards, sidecars,
// rejected.jsonl and manifest.json. Each of those is a unit of its own; this only orchestrates.
//
// Memory is set by configuration, not by the input (README.md, Memory bound): 2 to 5 chunk
// slots of max(4 MiB, max line bytes + 64 KiB), ≤ 16 open shard files, the custom_id table (≤ 128 MiB,
// ~7 bytes per distinct id) and a line index of at most 1M entries. Accepted lines are copied into
// a 256 KiB buffer per open shard and written from there (writer.ts says why not from the slots).
import fs from 'node:fs';
import {
  F_HAS_ID,
  F_REJECTED,
  F_REWRITTEN,
  REC,
  R_DELTA,
  R_FLAGS,
  R_LEN,
  R_OUT,
  R_REF,
  R_START,
  FOUND_NONE,
  FOUND_UNREAD,
  parseGroupKey,
  type ChunkPart,
} from './chunk.ts';
import { KEY_BYTES } from '../common/request-key.ts';
import type { CsvOptions } from './csv.ts';
import { InputError } from './errors.ts';
import { Groups } from './groups.ts';
import { IdRegistry } from './id-registry.ts';
import { IdTableFullError } from './ids.ts';
import { estimateLines, statInput } from './input.ts';
import { FileBytes, type InputBytes } from './input-bytes.ts';
import type { LineRules } from './line.ts';
import { shardInfos, writeManifest } from './manifest.ts';
import { layOutMemory } from './memory.ts';
import { ScanPool } from './pool.ts';
import { ProgressThrottle } from './progress.ts';
import { RejectedSink } from './rejected.ts';
import { ShardPacker } from './shards.ts';
import { compileScanModule, scanFnsFor, scanMemory } from './simd.ts';
import { ChunkSlots, type ChunkMeta, type ChunkSource, type ReadChunk } from './source.ts';
import { CsvSource } from './source-csv.ts';
import { JsonlSource } from './source-jsonl.ts';
import type { LineFacts, PlanOptions, PlanReport, PlanTuning } from './types.ts';
import { ShardFiles, syncInBackground } from './writer.ts';

const MiB = 1024 * 1024;
/** Finished shards that may wait for onShardDone while planning goes on. */
const SHIP_AHEAD = 1;

/** planInput's body: see index.ts. */
export async function runPlan(opts: PlanOptions, tuning: PlanTuning = {}): Promise<PlanReport> {
  const bytes: InputBytes = opts.inputBytes ?? new FileBytes(opts.input, statInput(opts.input).size);
  let planner: Planner;
  try {
    const csv = /\.csv$/i.test(opts.input);
    if (csv && !opts.csv) {
      throw new InputError(
        `${opts.input} is CSV: pass --model (and --prompt-column / --id-column when not "prompt" / "custom_id") to convert it`,
      );
    }
    // The first MiB sizes the id table (estimateLines); from an object it is the read's start.
    await bytes.ready?.(0, Math.min(bytes.size, MiB));
    planner = new Planner(opts, tuning, bytes, csv ? opts.csv : undefined);
  } catch (err) {
    bytes.close();
    throw err;
  }
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

/** What every line is checked against, from the plan's options. */
function lineRules(opts: PlanOptions, tuning: PlanTuning): LineRules {
  const answers = opts.reuse?.answerLookup?.();
  // A line must also fit a shard with its newline.
  const maxLineBytes = Math.min(opts.limits.maxLineBytes, opts.limits.maxBytes - 1);
  return {
    endpoint: opts.endpoint,
    maxLineBytes,
    ...(opts.rewrite?.model !== undefined ? { model: opts.rewrite.model } : {}),
    ...(opts.rewrite?.url !== undefined ? { url: opts.rewrite.url } : {}),
    ...(opts.rewrite?.thinking !== undefined ? { thinking: opts.rewrite.thinking } : {}),
    ...(opts.rewrite?.thinkingBudget !== undefined ? { thinkingBudget: opts.rewrite.thinkingBudget } : {}),
    ...(tuning.idHashMask !== undefined ? { idHashMask: tuning.idHashMask } : {}),
    ...(opts.reuse ? { keyScope: opts.reuse.scope } : {}),
    ...(answers ? { answers } : {}),
  };
}

class Planner {
  private readonly opts: PlanOptions;
  private readonly size: number;
  private readonly csv: boolean;
  private readonly slots: ChunkSlots;
  private readonly source: ChunkSource;
  private readonly pool: ScanPool;
  /** Chunks read and not yet decided, by sequence number. */
  private readonly chunks = new Map<number, ChunkMeta>();
  private readonly ids: IdRegistry;
  private readonly groups = new Groups();
  private readonly packer: ShardPacker;
  private readonly files: ShardFiles | undefined;
  private readonly hashes = new Map<number, Promise<string>>();
  /** fsyncs of finished shards and sidecars, run on the thread pool while planning goes on. */
  private readonly syncs: Promise<void>[] = [];
  /** Finished shards handed to `onShardDone` and not yet taken (it commits them elsewhere). */
  private readonly shipping = new Set<Promise<void>>();
  private shipFailure: Error | undefined;
  private readonly rejected: RejectedSink;
  private readonly progress: ProgressThrottle;
  private readonly cpuReport: PlanTuning['cpuReport'];
  /** What reuse asks of the line being decided, computed only when it is reused. */
  private readonly facts = new DecidedLine(() => this.ids.currentId());

  private seq = 0;
  private inflight = 0;
  /** JSONL: the physical line the last decided record is on. */
  private lineNo = 0;
  private requests = 0;
  private valid = 0;

  constructor(opts: PlanOptions, tuning: PlanTuning, bytes: InputBytes, csv: CsvOptions | undefined) {
    const size = bytes.size;
    this.opts = opts;
    this.size = size;
    this.csv = csv !== undefined;
    this.cpuReport = tuning.cpuReport;
    this.progress = new ProgressThrottle(opts.onProgress);
    const hashMask = tuning.idHashMask ?? 0xffffffff;
    const rules = lineRules(opts, tuning);
    const expected = estimateLines(bytes);
    const mem = layOutMemory(
      size,
      expected,
      rules.maxLineBytes,
      opts.limits.maxLineBytes,
      !!opts.outDir,
      tuning,
      rules.keyScope !== undefined,
    );
    const memory = scanMemory(mem.slots * mem.slotBytes + mem.arenaBytes, mem.threads > 0);
    const u8 = new Uint8Array(memory.buffer);
    this.slots = new ChunkSlots(u8, Buffer.from(memory.buffer), mem.slotBytes, mem.slots);
    const module = compileScanModule(memory);
    this.ids = new IdRegistry(
      expected,
      tuning.idTableBytes ?? 128 * MiB,
      hashMask,
      this.slots,
      (from, line) => this.source.idOnLine(from, line),
    );
    this.packer = new ShardPacker(opts.limits);
    if (opts.outDir) {
      fs.mkdirSync(opts.outDir, { recursive: true });
      ShardFiles.clean(opts.outDir);
      this.files = new ShardFiles(
        opts.outDir,
        { u8, base: mem.slots * mem.slotBytes, copy: scanFnsFor(memory, module).copy },
        (index, file, lineNumbers) => {
          const hashed = this.pool.hash(index, file);
          const synced = [file, lineNumbers].map(syncInBackground);
          this.hashes.set(index, hashed);
          this.syncs.push(...synced);
          const done = opts.onShardDone;
          if (done) this.ship(Promise.all([hashed, ...synced]).then(() => done([file, lineNumbers])));
        },
        mem.maxOpen,
      );
    }
    this.rejected = new RejectedSink(opts.maxProblems ?? 1000, opts.outDir);
    this.source = csv
      ? new CsvSource(opts.input, bytes, csv, opts.endpoint, this.slots, rules.maxLineBytes)
      : new JsonlSource(bytes, this.slots, rules.maxLineBytes, hashMask);
    this.pool = new ScanPool(memory, module, rules, mem.threads, tuning.partRecords ?? 1 << 13);
  }

  async close(): Promise<void> {
    if (this.cpuReport) {
      this.cpuReport({ main: process.threadCpuUsage(), scan: await this.pool.threadCpu() });
    }
    this.files?.abandon();
    this.rejected.close();
    this.source.close();
    await this.pool.close();
  }

  async run(): Promise<PlanReport> {
    this.source.start();
    for (;;) {
      while (this.slots.available && !this.source.eof) {
        if (this.source.ready) await this.source.ready();
        const chunk = this.source.read();
        if (chunk) this.dispatch(chunk);
      }
      if (this.inflight === 0) break;
      const part = await this.pool.take();
      // A part stops early while too many finished shards wait for onShardDone (see decide).
      for (let k = this.decide(part, 0); k < part.n; k = this.decide(part, k)) await this.shipped(SHIP_AHEAD);
      this.pool.recycle(part);
      if (part.last) {
        const meta = this.chunks.get(part.seq)!;
        this.chunks.delete(part.seq);
        if (meta.slot >= 0) this.slots.release(meta.slot);
        this.inflight--;
      }
    }
    return this.finish();
  }

  private dispatch(chunk: ReadChunk): void {
    const seq = this.seq++;
    this.chunks.set(seq, chunk.meta);
    this.inflight++;
    if (chunk.refused) {
      const { recs, problem } = chunk.refused;
      this.pool.put({ ...emptyPart(seq), recs, n: 1, problems: [problem] });
    } else if (chunk.len > 0) this.pool.scan(seq, chunk.meta.base, chunk.len);
    else this.pool.put(emptyPart(seq));
  }

  /** Hands a finished shard on; a failure fails the plan at its next wait. */
  private ship(p: Promise<void>): void {
    const tracked: Promise<void> = p.then(
      () => void this.shipping.delete(tracked),
      (err: unknown) => {
        this.shipping.delete(tracked);
        this.shipFailure ??= err instanceof Error ? err : new Error(String(err));
      },
    );
    this.shipping.add(tracked);
  }

  /** Waits until at most `ahead` finished shards are still being handed on. */
  private async shipped(ahead: number): Promise<void> {
    while (this.shipping.size > ahead) await Promise.race(this.shipping);
    if (this.shipFailure) throw this.shipFailure;
  }

  /**
   * Decides the records of one part from record `from` on, in input order: unique or not, then
   * refused or packed. Returns where it stopped: `part.n` when done, earlier when a shard finished
   * while more than SHIP_AHEAD wait to be handed on (only with onShardDone): the caller waits for
   * them and goes on from there, so that finished shards never pile up on the local disk.
   */
  private decide(part: ChunkPart, from: number): number {
    const meta = this.chunks.get(part.seq)!;
    const recs = part.recs;
    const local: number[] = [];
    const csvLines = meta.lineNos;
    const files = this.files;
    const packer = this.packer;
    const groups = this.groups.list;
    const reuse = this.opts.reuse;
    for (let k = from; k < part.n; k++) {
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
      this.ids.note(line, offset);
      const flags = recs[r + R_FLAGS]!;
      const dupOf = flags & F_HAS_ID ? this.ids.addRecord(part, meta.base, r, line) : 0;
      if (flags & F_REJECTED || dupOf) {
        const problem = flags & F_REJECTED ? part.problems[recs[r + R_REF]!] : undefined;
        this.rejected.reject(
          line,
          problem,
          dupOf,
          flags & F_HAS_ID ? this.ids.currentId() : problem?.customId,
        );
        continue;
      }
      const ref = recs[r + R_REF]!;
      if (reuse && part.keys) {
        this.facts.set(part, ref);
        if (reuse.take(line, part.keys, k * KEY_BYTES, this.facts, storedOf(part, k))) {
          this.valid++;
          continue;
        }
      }
      let g = local[ref];
      if (g === undefined) g = local[ref] = this.groups.numberOf(part.groups[ref]!, line);
      const len = recs[r + R_LEN]!;
      const group = groups[g]!;
      group.lines++;
      group.bytes += len + 1;
      this.valid++;
      const shard = packer.add(g, len + 1);
      if (files) {
        const closed = packer.closed;
        if (closed) files.close(closed.index);
        if (flags & F_REWRITTEN) files.append(shard.index, part.out!, recs[r + R_OUT]!, len, line);
        else files.append(shard.index, this.slots.u8, meta.base + recs[r + R_START]!, len, line);
        if (closed && this.shipping.size > SHIP_AHEAD && k + 1 < part.n) return k + 1;
      }
    }
    if (!csvLines) this.lineNo += part.trailing;
    if (part.last && meta.extras) this.flushExtras(meta, Infinity);
    this.reportProgress(false);
    return part.n;
  }

  /** CSV rows refused before scanning, reported in line order among the others. */
  private flushExtras(meta: ChunkMeta, before: number): void {
    const extras = meta.extras!;
    while (extras.length > 0 && extras[0]!.line < before) {
      const x = extras.shift()!;
      this.requests++;
      this.ids.note(x.line, x.offset);
      const id = x.problem.customId;
      const dupOf = id !== undefined ? this.ids.addId(id, x.line) : 0;
      this.rejected.reject(x.line, x.problem, dupOf, id);
    }
  }

  private reportProgress(final: boolean): void {
    this.progress.report(final, () => ({
      bytesRead: final ? this.size : this.source.bytesRead,
      linesRead: this.csv ? this.requests : this.lineNo,
    }));
  }

  private async finish(): Promise<PlanReport> {
    if (this.files) {
      for (const s of this.packer.openShards().sort((a, b) => a.index - b.index)) this.files.close(s.index);
    }
    const shas = new Map<number, string>();
    for (const [index, p] of this.hashes) shas.set(index, await p);
    await Promise.all(this.syncs);
    await this.shipped(0);
    const shardList = shardInfos(this.packer.shards, this.groups.list, shas);
    const problems = this.rejected.problems;
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
    const warnings = this.groups.warnings();
    const reused = this.opts.reuse?.finish();
    if (this.opts.outDir) {
      // Shards and sidecars are fsynced (awaited above) and rejected.jsonl is committed before the
      // manifest, which is written last and durably: it marks the folder complete.
      this.rejected.commit();
      writeManifest(this.opts.outDir, shardList, this.opts);
    }
    this.reportProgress(true);
    return {
      lines: this.requests,
      valid: this.valid,
      rejected: this.rejected.count,
      groups: this.groups.summary(),
      shards: shardList.length,
      shardList,
      problems,
      warnings,
      ...(reused ? { reused } : {}),
    };
  }
}

/** What the scan thread found stored for record k of `part` (LineReuse.take's `stored`). */
function storedOf(part: ChunkPart, k: number): Uint8Array | undefined | null {
  const found = part.found;
  if (!found) return null;
  const len = found[k * 2 + 1]!;
  if (len === FOUND_UNREAD) return null;
  if (len === FOUND_NONE) return undefined;
  const at = found[k * 2]!;
  return part.answers!.subarray(at, at + len);
}

/** The custom_id and model of the valid line being decided (LineFacts), read on demand. */
class DecidedLine implements LineFacts {
  private part: ChunkPart | undefined;
  private ref = 0;
  private readonly id: () => string;

  constructor(id: () => string) {
    this.id = id;
  }

  set(part: ChunkPart, ref: number): void {
    this.part = part;
    this.ref = ref;
  }

  customId(): string {
    return this.id();
  }

  model(): string {
    return parseGroupKey(this.part!.groups[this.ref]!).model;
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
    keys: undefined,
    found: undefined,
    answers: undefined,
  };
}
