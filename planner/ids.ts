// Uniqueness of custom_id across the whole input in bounded memory. Ten million ids as JS strings
// need over 1 GB; here each id costs one slot of 6 bytes in an open-addressing table (linear
// probing, typed arrays): a 16-bit fingerprint from a second hash (0 marks an empty slot, so a probe
// reads only the fingerprints) and the 1-based line that holds the id (Uint32). The slot index
// comes from the first hash's top bits. A match (same probe run, same fingerprint) is only a
// suspicion: the caller confirms it by re-reading the earlier line (`sameId`), so a collision never
// rejects a line; a few lookups in 65,536 need that re-read.
//
// Memory: 6 bytes × capacity at load ≤ 0.85, about 7 bytes per distinct id (71 MB at 10M ids). The
// first segment is sized from the input's estimated line count; when it fills, another segment of a
// quarter of the ids so far is added (lookups then probe each segment), never passing `maxBytes`
// (default 128 MiB, 18M ids). Past that, IdTableFullError: the planner stops with a clear error
// rather than pass its memory bound (splitting the id space into passes is not done).

/** Thrown when the ids would pass the table's configured memory cap. */
export class IdTableFullError extends Error {
  override name = 'IdTableFullError';
}

const MAX_LOAD = 0.85;
const SLOT_BYTES = 6;

interface Segment {
  cap: number;
  count: number;
  lines: Uint32Array;
  fps: Uint16Array;
}

export class IdTable {
  private readonly segments: Segment[] = [];
  private readonly maxBytes: number;
  private bytesUsed = 0;
  /** How many matches needed a re-read (collisions plus true duplicates). */
  verifications = 0;

  constructor(expectedIds: number, maxBytes: number) {
    this.maxBytes = maxBytes;
    this.addSegment(expectedIds);
  }

  get count(): number {
    return this.segments.reduce((n, s) => n + s.count, 0);
  }

  get bytes(): number {
    return this.bytesUsed;
  }

  private addSegment(ids: number): void {
    const room = Math.floor((this.maxBytes - this.bytesUsed) / SLOT_BYTES);
    const cap = Math.min(room, Math.max(1024, Math.ceil(ids / MAX_LOAD) + 16));
    if (cap < 1024) {
      throw new IdTableFullError(
        `more distinct custom_ids than a ${this.maxBytes}-byte id table holds (about ${Math.floor((this.maxBytes / SLOT_BYTES) * MAX_LOAD)})`,
      );
    }
    this.segments.push({ cap, count: 0, lines: new Uint32Array(cap), fps: new Uint16Array(cap) });
    this.bytesUsed += cap * SLOT_BYTES;
  }

  /**
   * Records the id with hashes (h1, h2) found on `line`, unless an earlier line holds the same id:
   * then returns that line (and records nothing). `sameId(earlierLine)` confirms a match.
   */
  add(h1: number, h2: number, line: number, sameId: (earlierLine: number) => boolean): number {
    const fp = h2 & 0xffff || 1;
    const segs = this.segments;
    for (let k = 0; k < segs.length; k++) {
      const seg = segs[k]!;
      const lines = seg.lines;
      const fps = seg.fps;
      const cap = seg.cap;
      let i = Math.min(cap - 1, Math.floor((h1 / 4294967296) * cap));
      for (;;) {
        const f = fps[i]!;
        if (f === 0) break;
        if (f === fp) {
          this.verifications++;
          const at = lines[i]!;
          if (sameId(at)) return at;
        }
        if (++i === cap) i = 0;
      }
      if (k === segs.length - 1) {
        if (seg.count + 1 > cap * MAX_LOAD) {
          this.addSegment(Math.max(this.count / 4, 1024));
          continue; // the new segment is probed (empty) and takes the id
        }
        lines[i] = line;
        fps[i] = fp;
        seg.count++;
        return 0;
      }
    }
    return 0;
  }
}

/**
 * Where lines start in the input, every `step`-th request line: enough to re-read any earlier line
 * with one short read. At most `maxEntries` entries (the step doubles when full), so it stays small
 * (16 bytes an entry) whatever the input's size.
 */
export class LineIndex {
  private lines: Float64Array;
  private offsets: Float64Array;
  private size = 0;
  private step = 32;
  private n = 0;
  private readonly maxEntries: number;

  /** `expected` entries are allocated at once (it grows past them, up to `maxEntries`). */
  constructor(expected = 1024, maxEntries = 1 << 20) {
    this.maxEntries = maxEntries;
    const cap = Math.max(16, Math.min(expected, maxEntries));
    this.lines = new Float64Array(cap);
    this.offsets = new Float64Array(cap);
  }

  /** Called for every request line, in input order. */
  note(line: number, offset: number): void {
    if (this.n++ % this.step !== 0) return;
    if (this.size === this.lines.length) {
      if (this.size >= this.maxEntries) {
        // Keep every other entry: twice the step, same memory.
        for (let k = 0; k < this.size / 2; k++) {
          this.lines[k] = this.lines[2 * k]!;
          this.offsets[k] = this.offsets[2 * k]!;
        }
        this.size = Math.floor(this.size / 2);
        this.step *= 2;
        if ((this.n - 1) % this.step !== 0) return;
      } else {
        const cap = Math.min(this.maxEntries, this.size * 2);
        const lines = new Float64Array(cap);
        const offsets = new Float64Array(cap);
        lines.set(this.lines);
        offsets.set(this.offsets);
        this.lines = lines;
        this.offsets = offsets;
      }
    }
    this.lines[this.size] = line;
    this.offsets[this.size] = offset;
    this.size++;
  }

  /** The last noted line at or before `line`, and where it starts. */
  seek(line: number): { line: number; offset: number } {
    let lo = 0;
    let hi = this.size - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lines[mid]! <= line) lo = mid;
      else hi = mid - 1;
    }
    return this.size === 0 ? { line: 1, offset: 0 } : { line: this.lines[lo]!, offset: this.offsets[lo]! };
  }
}
