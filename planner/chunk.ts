// Checks every line of one chunk of the input (whole lines, in the scan memory) and packs the
// verdicts into a compact record array: what the thread that orders, dedups and writes needs, and
// nothing it does not (no per-line objects, no strings except for rejected lines).
import { isUtf8 } from 'node:buffer';
import { KEY_BYTES, RequestKeyer } from '../common/request-key.ts';
import { AnswerReader } from '../storage/answer-index.ts';
import { THINK_NULL, makeLineChecker, newVerdict, type LineRules, type LineVerdict } from './line.ts';
import type { ScanFns } from './simd.ts';

/** Int32 slots per record. */
export const REC = 10;
// Record fields.
export const R_START = 0, // line start, relative to the chunk's base (after a BOM)
  R_LEN = 1, // bytes as the line goes out, without newline
  R_FLAGS = 2,
  R_REF = 3, // group index (accepted) or problem index (rejected)
  R_HASH = 4,
  R_ID_START = 5, // custom_id bytes, relative to the chunk's base
  R_ID_END = 6,
  R_DELTA = 7, // physical lines since the previous record, this one included
  R_OUT = 8, // offset of the rewritten bytes in `out`
  R_HASH2 = 9;
// Flags.
export const F_OK = 1,
  F_REJECTED = 2,
  F_HAS_ID = 4,
  F_ID_ESC = 8,
  F_REWRITTEN = 16;

export interface Problem {
  code: string;
  message: string;
  customId?: string;
}

/** One batch of records, in line order; a chunk gives one or more (`last` ends it). */
export interface ChunkPart {
  seq: number;
  last: boolean;
  recs: Int32Array;
  n: number;
  /** Blank lines after the last record of this part. */
  trailing: number;
  /** Group keys of this part: `model \0 thinking` (thinking 0 unset, 1 on, 2 off). */
  groups: string[];
  problems: Problem[];
  /** Rewritten line bytes (dry run, --thinking), when any. */
  out: Uint8Array | undefined;
  /**
   * With `keyScope` in the rules: record k's request key (common/request-key.ts) at
   * keys[k * KEY_BYTES, (k + 1) * KEY_BYTES) for each accepted record (zeros for a rejected one).
   */
  keys: Uint8Array | undefined;
  /**
   * With `answers` in the rules: per record, [offset, length] in `answers` of the stored answer's
   * file its key found, length FOUND_NONE when none is stored, FOUND_UNREAD when not looked up
   * (rejected, or past the part's ANSWER_BYTES).
   */
  found: Int32Array | undefined;
  answers: Uint8Array | undefined;
}

export const FOUND_NONE = -1,
  FOUND_UNREAD = -2;
/** Bytes of stored answers one part carries at most; lines past it are looked up by the planner. */
const ANSWER_BYTES = 8 << 20;

export const groupKey = (model: string, thinking: number): string => `${model}\u0000${thinking}`;

export function parseGroupKey(key: string): { model: string; thinking: boolean | null } {
  const at = key.lastIndexOf('\u0000');
  const t = Number(key.slice(at + 1));
  return { model: key.slice(0, at), thinking: t === THINK_NULL ? null : t === 1 };
}

/** The records of the part being built, and the groups, problems and rewritten bytes they point to. */
class PartBuilder {
  recs: Int32Array;
  n = 0;
  /** Physical lines since the last record. */
  delta = 0;
  private groups: string[] = [];
  private groupIndex = new Map<string, number>();
  // Model and thinking mode of each group of this part, by index.
  private groupModel: string[] = [];
  private groupThinking: number[] = [];
  private problems: Problem[] = [];
  private out: Uint8Array | undefined;
  private outLen = 0;
  private keys: Uint8Array | undefined;
  private readonly keyer: RequestKeyer | undefined;
  private readonly reader: AnswerReader | undefined;
  private found: Int32Array | undefined;
  private answers: Uint8Array | undefined;
  private answersLen = 0;

  constructor(recs: Int32Array, keyer: RequestKeyer | undefined, reader: AnswerReader | undefined) {
    this.recs = recs;
    this.keyer = keyer;
    this.reader = reader;
    this.fresh();
  }

  /** New per-part arrays for keys and found answers (handed over with the part, so not reused). */
  private fresh(): void {
    const records = this.recs.length / REC;
    if (this.keyer) this.keys = new Uint8Array(records * KEY_BYTES);
    if (this.reader) this.found = new Int32Array(records * 2).fill(FOUND_UNREAD);
    this.answers = undefined;
    this.answersLen = 0;
  }

  /** Looks the key of record n up in the store; its file's bytes go into the part's `answers`. */
  private lookUp(n: number): void {
    if (this.answersLen >= ANSWER_BYTES) return;
    const bytes = this.reader!.read(this.keys!, n * KEY_BYTES);
    if (!bytes) {
      this.found![n * 2 + 1] = FOUND_NONE;
      return;
    }
    const at = this.answersLen;
    if (!this.answers || this.answers.length < at + bytes.length) {
      const bigger = new Uint8Array(Math.max(1 << 16, (at + bytes.length) * 2));
      if (this.answers) bigger.set(this.answers.subarray(0, at));
      this.answers = bigger;
    }
    this.answers.set(bytes, at);
    this.answersLen += bytes.length;
    this.found![n * 2] = at;
    this.found![n * 2 + 1] = bytes.length;
  }

  /** Records line u8[start, ...) (`start` relative to the chunk's base) with its verdict `v`. */
  add(v: LineVerdict, rewritten: Uint8Array, u8: Uint8Array, start: number, base: number): void {
    const recs = this.recs;
    const r = this.n * REC;
    recs[r + R_START] = start;
    recs[r + R_LEN] = v.outLen;
    recs[r + R_DELTA] = this.delta;
    recs[r + R_HASH] = v.idHash | 0;
    recs[r + R_HASH2] = v.idHash2 | 0;
    recs[r + R_ID_START] = v.idStart - base;
    recs[r + R_ID_END] = v.idEnd - base;
    this.delta = 0;
    let flags = v.hasId ? F_HAS_ID : 0;
    if (v.idEsc) flags |= F_ID_ESC;
    if (v.ok) {
      flags |= F_OK;
      recs[r + R_REF] = this.group(v.model, v.thinking);
      if (v.rewritten) {
        flags |= F_REWRITTEN;
        recs[r + R_OUT] = this.keep(rewritten, v.outLen);
      }
      // The key of the request as it goes out (after any rewrite), so that the planner's main
      // thread only looks it up.
      if (this.keyer)
        this.keys!.set(
          v.rewritten
            ? this.keyer.keyOfBytes(rewritten, 0, v.outLen)
            : this.keyer.keyOfBytes(u8, start + base, v.outLen),
          this.n * KEY_BYTES,
        );
      if (this.reader) this.lookUp(this.n);
    } else {
      flags |= F_REJECTED;
      recs[r + R_REF] = this.problems.length;
      this.problems.push(
        v.customId !== undefined
          ? { code: v.code, message: v.message, customId: v.customId }
          : { code: v.code, message: v.message },
      );
    }
    recs[r + R_FLAGS] = flags;
    this.n++;
  }

  /**
   * The part's group of (model, thinking), found by the model string's identity (the checker
   * shares one string per model) before falling back to the key.
   */
  private group(model: string, thinking: number): number {
    const known = Math.min(this.groupModel.length, 16);
    for (let k = 0; k < known; k++) {
      if (this.groupModel[k] === model && this.groupThinking[k] === thinking) return k;
    }
    const key = groupKey(model, thinking);
    let g = this.groupIndex.get(key) ?? -1;
    if (g < 0) {
      g = this.groups.length;
      this.groups.push(key);
      this.groupIndex.set(key, g);
      this.groupModel.push(model);
      this.groupThinking.push(thinking);
    }
    return g;
  }

  /** Copies a rewritten line into the part's `out`; returns its offset there. */
  private keep(rewritten: Uint8Array, len: number): number {
    const outLen = this.outLen;
    if (!this.out || this.out.length < outLen + len) {
      const bigger = new Uint8Array(Math.max(1 << 16, (outLen + len) * 2));
      if (this.out) bigger.set(this.out.subarray(0, outLen));
      this.out = bigger;
    }
    this.out.set(rewritten.subarray(0, len), outLen);
    this.outLen += len;
    return outLen;
  }

  /** The part built so far, as part `seq` of its chunk; the builder starts over with `recs`. */
  take(seq: number, last: boolean, recs: Int32Array): ChunkPart {
    const part: ChunkPart = {
      seq,
      last,
      recs: this.recs,
      n: this.n,
      trailing: this.delta,
      groups: this.groups,
      problems: this.problems,
      out: this.out?.subarray(0, this.outLen),
      keys: this.keys,
      found: this.found,
      answers: this.answers?.subarray(0, this.answersLen),
    };
    this.recs = recs;
    this.n = 0;
    this.delta = 0;
    this.groups = [];
    this.groupIndex = new Map();
    this.problems = [];
    this.out = undefined;
    this.outLen = 0;
    this.groupModel = [];
    this.groupThinking = [];
    this.fresh();
    return part;
  }
}

/** Whether u8[s, e) holds only spaces, tabs and CRs. */
function isBlank(u8: Uint8Array, s: number, e: number): boolean {
  for (let k = s; k < e; k++) {
    const c = u8[k];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

/** A chunk checker over one memory; `scan` calls `emit` with each full part and the last one. */
export function makeChunkScanner(
  u8: Uint8Array,
  fns: ScanFns,
  rules: LineRules,
  partRecords = 1 << 13,
): {
  scan: (seq: number, base: number, len: number, emit: (part: ChunkPart) => void) => void;
  /** Gives a part's record array back for reuse (the thread that decided it is done with it). */
  recycle: (recs: Int32Array) => void;
} {
  const check = makeLineChecker(u8, fns, rules);
  const findNl = fns.nl;
  const v = newVerdict();
  const spare: Int32Array[] = [];
  const fresh = (): Int32Array => spare.pop() ?? new Int32Array(partRecords * REC);
  const keyer = rules.keyScope !== undefined ? new RequestKeyer(rules.keyScope) : undefined;
  const reader = keyer && rules.answers ? new AnswerReader(rules.answers) : undefined;

  function scanChunk(seq: number, base: number, len: number, emit: (part: ChunkPart) => void): void {
    const stop = base + len;
    const utf8Checked = isUtf8(u8.subarray(base, stop));
    const part = new PartBuilder(fresh(), keyer, reader);
    let p = base;
    while (p < stop) {
      const nl = findNl(p, stop);
      let s = p;
      let e = nl;
      p = nl + 1;
      part.delta++;
      if (e > s && u8[e - 1] === 0x0d) e--;
      if (e - s >= 3 && u8[s] === 0xef && u8[s + 1] === 0xbb && u8[s + 2] === 0xbf) s += 3;
      if (isBlank(u8, s, e)) continue;
      const rewritten = check(v, s, e, utf8Checked);
      part.add(v, rewritten, u8, s - base, base);
      if (part.n === partRecords) emit(part.take(seq, false, fresh()));
    }
    emit(part.take(seq, true, fresh()));
  }
  return {
    scan: scanChunk,
    recycle(recs) {
      if (recs.length === partRecords * REC && spare.length < 4) spare.push(recs);
    },
  };
}
