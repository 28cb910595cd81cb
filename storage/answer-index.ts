// Sorted key → (segment, offset, length) indexes of packed answers, as the object-storage answer
// store keeps them (storage/s3-answers.ts):
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
import { KEY_BYTES } from '../common/request-key.ts';
import { parseAnswer, type AnswerSource, type StoredAnswer } from './answers.ts';
import { KeyFilter } from './key-filter.ts';

/** Bytes of a segment index entry: key, offset, length. */
export const SEGMENT_ENTRY = KEY_BYTES + 8 + 4;
/** Bytes of a merged index entry: key, segment number, offset, length. */
const MERGED_ENTRY = KEY_BYTES + 4 + 8 + 4;
/** One fence key a block of this many entries: a lookup reads one block (2 KiB). */
const FENCE_EVERY = 64;
/** Bytes a merge input reads at a time. */
const INPUT_BUFFER = SEGMENT_ENTRY * 512;
/**
 * Segment files kept open by one source: lookups in random order over up to this many segments
 * cost no open; past it, the least recently used one is closed.
 */
const OPEN_SEGMENTS = 128;

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
 * The merged index of `segments` and its key filter, as an AnswerSource. A segment whose files are
 * gone (dropped from the cache by another plan after an eviction) reads as misses.
 */
export class MergedAnswers implements AnswerSource {
  private readonly fd: number;
  private readonly fence: Buffer;
  private readonly entries: number;
  private readonly filter: KeyFilter;
  private readonly segments: LocalSegment[];
  private readonly open = new Map<number, number | null>();
  private readonly block = Buffer.allocUnsafe(FENCE_EVERY * MERGED_ENTRY);
  private readonly probe = Buffer.allocUnsafe(KEY_BYTES);

  private constructor(
    fd: number,
    fence: Buffer,
    entries: number,
    filter: KeyFilter,
    segments: LocalSegment[],
  ) {
    this.fd = fd;
    this.fence = fence;
    this.entries = entries;
    this.filter = filter;
    this.segments = segments;
  }

  static build(opts: MergeOptions): MergedAnswers {
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
    try {
      while (heap.size > 0) {
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
    return new MergedAnswers(fd, Buffer.concat(fence), n, filter, opts.segments);
  }

  /** Keys in the merged index. */
  get size(): number {
    return this.entries;
  }

  keyFilter(): KeyFilter {
    return this.filter;
  }

  get(key: string): StoredAnswer | undefined {
    if (this.entries === 0) return undefined;
    const k = this.probe;
    k.write(key, 0, 'hex');
    // The last block whose first key is <= k.
    let lo = 0;
    let hi = this.fence.length / KEY_BYTES - 1;
    if (this.fence.compare(k, 0, KEY_BYTES, 0, KEY_BYTES) > 0) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.fence.compare(k, 0, KEY_BYTES, mid * KEY_BYTES, (mid + 1) * KEY_BYTES) <= 0) lo = mid;
      else hi = mid - 1;
    }
    const first = lo * FENCE_EVERY;
    const count = Math.min(FENCE_EVERY, this.entries - first);
    fs.readSync(this.fd, this.block, 0, count * MERGED_ENTRY, first * MERGED_ENTRY);
    let a = 0;
    let b = count - 1;
    while (a <= b) {
      const m = (a + b) >> 1;
      const c = this.block.compare(k, 0, KEY_BYTES, m * MERGED_ENTRY, m * MERGED_ENTRY + KEY_BYTES);
      if (c === 0) return this.record(m * MERGED_ENTRY);
      if (c < 0) a = m + 1;
      else b = m - 1;
    }
    return undefined;
  }

  /** The answer an entry of the block points at, or undefined when its segment is gone or torn. */
  private record(at: number): StoredAnswer | undefined {
    const seg = this.block.readUInt32LE(at + KEY_BYTES);
    const offset = this.block.readUIntLE(at + KEY_BYTES + 4, 6);
    const length = this.block.readUInt32LE(at + KEY_BYTES + 12);
    const fd = this.segmentFd(seg);
    if (fd === null) return undefined;
    const bytes = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, bytes, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    // A segment shorter than its index says (torn) is a miss; so is a record whose length is off.
    return got === length ? parseAnswer(bytes) : undefined;
  }

  private segmentFd(seg: number): number | null {
    const known = this.open.get(seg);
    if (known !== undefined) {
      // Most recently used last.
      this.open.delete(seg);
      this.open.set(seg, known);
      return known;
    }
    let fd: number | null;
    try {
      fd = fs.openSync(this.segments[seg]!.segment, 'r');
    } catch {
      fd = null;
    }
    if (this.open.size >= OPEN_SEGMENTS) {
      const [oldest, ofd] = this.open.entries().next().value!;
      if (ofd !== null) fs.closeSync(ofd);
      this.open.delete(oldest);
    }
    this.open.set(seg, fd);
    return fd;
  }

  release(): void {
    for (const fd of this.open.values()) if (fd !== null) fs.closeSync(fd);
    this.open.clear();
    try {
      fs.closeSync(this.fd);
    } catch {
      // released twice
    }
  }
}
