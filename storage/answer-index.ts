// Sorted key → (segment, offset, length) indexes of packed answers, as both answer stores keep
// them (storage/answer-segments.ts):
//
//   - a segment's index: fixed-width entries sorted by key, one per answer of that segment
//     (key 16 | offset 8 | length 4 bytes, little-endian);
//   - a plan's merged index: the k-way merge of the segments' indexes into one local file (key 16 |
//     segment 4 | offset 8 | length 4), a key kept once, with a sparse fence of every FENCE_EVERY-th
//     key in memory, so a lookup is a binary search in memory, one pread of a block of the index
//     and one pread in the segment.
//
// Memory is the fence (16 bytes every 64 keys: a quarter of a byte a key) and the key filter
// (bounded on its own), not the store's size; the merge reads each input through a small buffer it
// refills by opening the file, so a store of many segments costs no descriptors.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { KEY_BYTES } from '../common/request-key.ts';
import { parseAnswer, type AnswerLookup, type AnswerSource, type StoredAnswer } from './answers.ts';
import { KeyFilter } from './key-filter.ts';

/** Bytes of a segment index entry: key, offset, length. */
export const SEGMENT_ENTRY = KEY_BYTES + 8 + 4;
/** Bytes of a merged index entry: key, segment number, offset, length. */
const MERGED_ENTRY = KEY_BYTES + 4 + 8 + 4;
/** One fence key a block of this many entries: a lookup reads one block (2 KiB). */
const FENCE_EVERY = 64;
/** Merge steps between two yields to the event loop. */
const YIELD_EVERY = 65_536;
/** Bytes a merge input reads at a time. */
const INPUT_BUFFER = SEGMENT_ENTRY * 512;
/**
 * Segment files a merged index opens for all its readers (the newest first); a lookup in a segment
 * past these opens and closes it per read.
 */
const OPEN_SEGMENTS = 256;

/** One answer's place in its segment. */
export interface SegmentEntry {
  key: Buffer;
  offset: number;
  length: number;
}

/** A segment's index: its entries sorted by key, a key kept once (the first put). */
export function encodeSegmentIndex(entries: SegmentEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.key, b.key));
  const out = Buffer.alloc(sorted.length * SEGMENT_ENTRY);
  let n = 0;
  let last: Buffer | undefined;
  for (const e of sorted) {
    if (last && last.equals(e.key)) continue;
    const at = n * SEGMENT_ENTRY;
    e.key.copy(out, at);
    out.writeUIntLE(e.offset, at + KEY_BYTES, 6);
    out.writeUInt32LE(e.length, at + KEY_BYTES + 8);
    last = e.key;
    n++;
  }
  return out.subarray(0, n * SEGMENT_ENTRY);
}

/** One segment as a plan reads it: its index and its records, both local files. */
export interface LocalSegment {
  index: string;
  segment: string;
}

/** A segment index read in key order through a small buffer (opened per refill). */
class IndexCursor {
  readonly seg: number;
  private readonly file: string;
  private readonly buf = Buffer.allocUnsafe(INPUT_BUFFER);
  private filePos = 0;
  private n = 0;
  /** Offset of the current entry in buf. */
  at = 0;

  constructor(file: string, seg: number) {
    this.file = file;
    this.seg = seg;
  }

  get buffer(): Buffer {
    return this.buf;
  }

  /** Moves to the next entry; false at the end (a torn tail of less than an entry is ignored). */
  next(first = false): boolean {
    if (!first) this.at += SEGMENT_ENTRY;
    if (this.at + SEGMENT_ENTRY <= this.n) return true;
    const fd = fs.openSync(this.file, 'r');
    try {
      this.n = fs.readSync(fd, this.buf, 0, this.buf.length, this.filePos);
    } finally {
      fs.closeSync(fd);
    }
    this.n -= this.n % SEGMENT_ENTRY;
    this.filePos += this.n;
    this.at = 0;
    return this.n > 0;
  }

  compare(other: IndexCursor): number {
    return (
      this.buf.compare(other.buf, other.at, other.at + KEY_BYTES, this.at, this.at + KEY_BYTES) ||
      this.seg - other.seg
    );
  }
}

/** A binary min-heap of cursors by their current key (ties: the lower segment number first). */
class CursorHeap {
  private readonly items: IndexCursor[] = [];

  get size(): number {
    return this.items.length;
  }

  push(c: IndexCursor): void {
    const a = this.items;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.compare(a[i]!) <= 0) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  peek(): IndexCursor {
    return this.items[0]!;
  }

  /** Re-places the top after it moved on, or drops it when it ended. */
  settleTop(ended: boolean): void {
    const a = this.items;
    if (ended) {
      const last = a.pop()!;
      if (a.length === 0) return;
      a[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.compare(a[m]!) < 0) m = l;
      if (r < a.length && a[r]!.compare(a[m]!) < 0) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

export interface MergeOptions {
  segments: LocalSegment[];
  /** A folder for the merged index while it is written (it is unlinked once open). */
  tmpDir: string;
  /** Memory bound of the key filter. */
  filterBytes: number;
}

/**
 * Plain data: what any thread needs to read a merged index. The descriptor is the process's, so
 * valid on every thread; the fence is in shared memory.
 */
export interface MergedIndexSpec {
  fd: number;
  fence: Uint8Array;
  entries: number;
  /** The segments' files, by the number the index's entries carry. */
  segments: string[];
  /** Their descriptors, opened once for every thread (-1: opened per read, or gone). */
  segmentFds: number[];
}

/**
 * Finds records by key in a merged index, on whichever thread holds it: a binary search in the
 * fence, one pread of a block of the index and one in the segment.
 */
export class MergedIndexReader {
  private readonly spec: MergedIndexSpec;
  private readonly fence: Buffer;
  private readonly block = Buffer.allocUnsafe(FENCE_EVERY * MERGED_ENTRY);

  constructor(spec: MergedIndexSpec) {
    this.spec = spec;
    this.fence = Buffer.from(spec.fence.buffer, spec.fence.byteOffset, spec.fence.byteLength);
  }

  /** The record stored under key[at, at + 16), or undefined (not indexed, or its segment is gone). */
  find(key: Uint8Array, at: number): Buffer | undefined {
    const entries = this.spec.entries;
    if (entries === 0) return undefined;
    const fence = this.fence;
    // The last block whose first key is <= the key.
    if (fence.compare(key, at, at + KEY_BYTES, 0, KEY_BYTES) > 0) return undefined;
    let lo = 0;
    let hi = fence.length / KEY_BYTES - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (fence.compare(key, at, at + KEY_BYTES, mid * KEY_BYTES, (mid + 1) * KEY_BYTES) <= 0) lo = mid;
      else hi = mid - 1;
    }
    const first = lo * FENCE_EVERY;
    const count = Math.min(FENCE_EVERY, entries - first);
    fs.readSync(this.spec.fd, this.block, 0, count * MERGED_ENTRY, first * MERGED_ENTRY);
    let a = 0;
    let b = count - 1;
    while (a <= b) {
      const m = (a + b) >> 1;
      const c = this.block.compare(key, at, at + KEY_BYTES, m * MERGED_ENTRY, m * MERGED_ENTRY + KEY_BYTES);
      if (c === 0) return this.record(m * MERGED_ENTRY);
      if (c < 0) a = m + 1;
      else b = m - 1;
    }
    return undefined;
  }

  /** The bytes an entry of the block points at (possibly short: the caller checks the length). */
  private record(at: number): Buffer | undefined {
    const seg = this.block.readUInt32LE(at + KEY_BYTES);
    const offset = this.block.readUIntLE(at + KEY_BYTES + 4, 6);
    const length = this.block.readUInt32LE(at + KEY_BYTES + 12);
    const shared = this.spec.segmentFds[seg] ?? -1;
    const fd = shared >= 0 ? shared : openOrUndefined(this.spec.segments[seg]!);
    if (fd === undefined) return undefined;
    try {
      const bytes = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, bytes, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return bytes.subarray(0, got);
    } finally {
      if (shared < 0) fs.closeSync(fd);
    }
  }
}

function openOrUndefined(file: string): number | undefined {
  try {
    return fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
}

/**
 * Reads stored answers on a planner scan thread (what AnswerSource.lookup handed it): a key the
 * filter rules out is a miss with no system call, any other is looked up in the merged index.
 */
export class AnswerReader {
  private readonly filter: KeyFilter | undefined;
  private readonly index: MergedIndexReader;

  constructor(spec: AnswerLookup) {
    this.filter = spec.filter && KeyFilter.fromShared(spec.filter);
    this.index = new MergedIndexReader(spec.index);
  }

  /** The stored record of key[at, at + 16), or undefined. */
  read(key: Uint8Array, at: number): Buffer | undefined {
    if (this.filter && !this.filter.mayHold(key, at)) return undefined;
    return this.index.find(key, at);
  }
}

/**
 * The merged index of `segments` and its key filter, as an AnswerSource. A segment whose files are
 * gone (evicted, or dropped from a mirror) reads as misses.
 */
export class MergedAnswers implements AnswerSource {
  private readonly spec: MergedIndexSpec;
  private readonly reader: MergedIndexReader;
  private readonly filter: KeyFilter;
  private readonly probe = Buffer.allocUnsafe(KEY_BYTES);

  private constructor(spec: MergedIndexSpec, filter: KeyFilter) {
    this.spec = spec;
    this.filter = filter;
    this.reader = new MergedIndexReader(spec);
  }

  /** Merges `opts.segments` (newest first: of a key in several, the first listed wins). */
  static async build(opts: MergeOptions): Promise<MergedAnswers> {
    let upperBound = 0;
    const heap = new CursorHeap();
    opts.segments.forEach((s, i) => {
      const size = fs.statSync(s.index, { throwIfNoEntry: false })?.size;
      if (size === undefined) return;
      upperBound += Math.floor(size / SEGMENT_ENTRY);
      const c = new IndexCursor(s.index, i);
      if (c.next(true)) heap.push(c);
    });
    const filter = new KeyFilter(upperBound, opts.filterBytes);
    fs.mkdirSync(opts.tmpDir, { recursive: true });
    const file = path.join(opts.tmpDir, `merged-${process.pid}-${randomBytes(6).toString('hex')}`);
    const fd = fs.openSync(file, 'w+');
    // Unlinked while open: the index lives as long as this source, and a crash leaves nothing.
    fs.rmSync(file);
    const out = Buffer.allocUnsafe(MERGED_ENTRY * 16_384);
    const fence: Buffer[] = [];
    let n = 0;
    let pending = 0;
    let filePos = 0;
    const last = Buffer.alloc(KEY_BYTES);
    let steps = 0;
    try {
      while (heap.size > 0) {
        // Millions of keys take seconds: let the plan activity's heartbeat through now and then.
        if (++steps % YIELD_EVERY === 0) await yieldToLoop();
        const c = heap.peek();
        const buf = c.buffer;
        const at = c.at;
        if (n === 0 || buf.compare(last, 0, KEY_BYTES, at, at + KEY_BYTES) !== 0) {
          buf.copy(last, 0, at, at + KEY_BYTES);
          const o = pending * MERGED_ENTRY;
          buf.copy(out, o, at, at + KEY_BYTES);
          out.writeUInt32LE(c.seg, o + KEY_BYTES);
          buf.copy(out, o + KEY_BYTES + 4, at + KEY_BYTES, at + SEGMENT_ENTRY);
          filter.add(last);
          if (n % FENCE_EVERY === 0) fence.push(Buffer.from(last));
          n++;
          if (++pending * MERGED_ENTRY === out.length) {
            filePos += fs.writeSync(fd, out, 0, pending * MERGED_ENTRY, filePos);
            pending = 0;
          }
        }
        heap.settleTop(!c.next());
      }
      if (pending > 0) fs.writeSync(fd, out, 0, pending * MERGED_ENTRY, filePos);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    // In shared memory, so that scan threads read the same fence without a copy each.
    const shared = new Uint8Array(new SharedArrayBuffer(fence.length * KEY_BYTES));
    fence.forEach((k, i) => shared.set(k, i * KEY_BYTES));
    // Opened here, closed by release: scan threads have no end of plan to close their own at.
    const segmentFds = opts.segments.map((s, i) =>
      i < OPEN_SEGMENTS ? (openOrUndefined(s.segment) ?? -1) : -1,
    );
    return new MergedAnswers(
      { fd, fence: shared, entries: n, segments: opts.segments.map((s) => s.segment), segmentFds },
      filter,
    );
  }

  /** Keys in the merged index. */
  get size(): number {
    return this.spec.entries;
  }

  keyFilter(): KeyFilter {
    return this.filter;
  }

  get(key: string): StoredAnswer | undefined {
    this.probe.write(key, 0, 'hex');
    const bytes = this.reader.find(this.probe, 0);
    // A segment shorter than its index says (torn) is a miss; so is a record whose length is off.
    return bytes && parseAnswer(bytes);
  }

  lookup(filter: KeyFilter | undefined): AnswerLookup {
    return { index: this.spec, ...(filter ? { filter: filter.shared() } : {}) };
  }

  release(): void {
    for (const fd of [this.spec.fd, ...this.spec.segmentFds])
      if (fd >= 0)
        try {
          fs.closeSync(fd);
        } catch {
          // released twice
        }
    this.spec.segmentFds.fill(-1);
    this.spec.fd = -1;
  }
}
