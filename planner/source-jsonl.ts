// JSONL input cut into chunks of whole lines: each chunk fills a slot and ends at its last newline;
// the rest is carried to the front of the next slot. A line longer than a slot is over the line
// limit for sure: it is refused without being scanned (its custom_id taken from its start).
import { formatBytes } from '../common/units.ts';
import { F_HAS_ID, F_REJECTED, REC, R_DELTA, R_FLAGS, R_HASH, R_HASH2, type Problem } from './chunk.ts';
import { SEED2, hashString } from './id-hash.ts';
import { customIdOf, idFromPrefix } from './line-id.ts';
import type { InputBytes } from './input-bytes.ts';
import type { ChunkSlots, ChunkSource, LineStart, ReadChunk } from './source.ts';

const BLOCK = 64 * 1024;

export class JsonlSource implements ChunkSource {
  eof = false;
  /** Read front to back for the scan, and out of order to re-read earlier lines (idOnLine). */
  private readonly bytes: InputBytes;
  private readonly slots: ChunkSlots;
  private readonly size: number;
  private readonly maxLineBytes: number;
  private readonly hashMask: number;
  private filePos = 0;
  /** Bytes after the last newline of the previous chunk, still in its slot. */
  private carryFrom = 0;
  private carryLen = 0;
  private verifyBlock: { offset: number; data: Buffer } | undefined;

  /** `maxLineBytes` is named in a refused long line's message; `hashMask` masks its id's hashes. */
  readonly ready: (() => Promise<void>) | undefined;

  constructor(bytes: InputBytes, slots: ChunkSlots, maxLineBytes: number, hashMask: number) {
    this.bytes = bytes;
    this.size = bytes.size;
    this.slots = slots;
    this.maxLineBytes = maxLineBytes;
    this.hashMask = hashMask;
    // The next chunk's bytes, awaited before it is read: a slot's worth past what is carried.
    const ready = bytes.ready?.bind(bytes);
    this.ready = ready && (() => ready(this.filePos, this.slots.bytes - this.carryLen));
  }

  get bytesRead(): number {
    return Math.min(this.filePos, this.size);
  }

  start(): void {}

  read(): ReadChunk | undefined {
    const { u8, buf } = this.slots;
    const slot = this.slots.take();
    const base = slot * this.slots.bytes;
    const cap = this.slots.bytes;
    if (this.carryLen > 0) u8.copyWithin(base, this.carryFrom, this.carryFrom + this.carryLen);
    let len = this.carryLen;
    const fileOffset = this.filePos - this.carryLen;
    while (len < cap) {
      const n = this.bytes.readOn(u8, base + len, cap - len, this.filePos);
      if (n === 0) {
        this.eof = true;
        break;
      }
      this.filePos += n;
      len += n;
    }
    this.carryLen = 0;
    if (len === 0) {
      this.slots.unused(slot);
      return undefined;
    }
    let cut = len;
    if (!this.eof) {
      const lastNl = buf.lastIndexOf(10, base + len - 1);
      if (lastNl < base) return this.refuseLongLine(slot, base, len, fileOffset);
      cut = lastNl + 1 - base;
    }
    this.carryFrom = base + cut;
    this.carryLen = len - cut;
    return { meta: { slot, base, fileOffset, cursor: 0 }, len: cut };
  }

  /** A line longer than a slot: over the limit for sure. Reported without scanning, then skipped. */
  private refuseLongLine(slot: number, base: number, len: number, lineStart: number): ReadChunk {
    const { u8, buf } = this.slots;
    const id = idFromPrefix(buf.toString('utf8', base, base + Math.min(len, BLOCK)));
    let total = len;
    for (;;) {
      const n = this.bytes.readOn(u8, base, this.slots.bytes, this.filePos);
      if (n === 0) {
        this.eof = true;
        break;
      }
      this.filePos += n;
      const nl = buf.indexOf(10, base);
      if (nl >= 0 && nl < base + n) {
        total += nl - base;
        this.carryFrom = nl + 1;
        this.carryLen = base + n - (nl + 1);
        break;
      }
      total += n;
    }
    this.slots.unused(slot);
    const recs = new Int32Array(REC);
    recs[R_FLAGS] = F_REJECTED | (id !== undefined ? F_HAS_ID : 0);
    recs[R_HASH] = id !== undefined ? hashString(id) & this.hashMask : 0;
    recs[R_HASH2] = id !== undefined ? hashString(id, SEED2) & this.hashMask : 0;
    recs[R_DELTA] = 1;
    const problem: Problem = {
      code: 'line_too_large',
      message: `line is ${formatBytes(total)} (${total} bytes), over the limit of ${formatBytes(this.maxLineBytes)} per line (--max-line-bytes): shorten the request`,
      ...(id !== undefined ? { customId: id } : {}),
    };
    return {
      meta: { slot: -1, base: 0, fileOffset: lineStart, cursor: 0 },
      len: 0,
      refused: { recs, problem },
    };
  }

  idOnLine(from: LineStart, line: number): string | undefined {
    // Walk from the indexed line to `line`, over lines of any length (a refused one may be longer
    // than a slot).
    let pos = from.offset;
    for (let current = from.line; current < line; current++) {
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
    // scanned, and its id taken from its start (refuseLongLine): the same here.
    const whole = Buffer.allocUnsafe(this.slots.bytes);
    const n = this.bytes.readAt(whole, 0, whole.length, pos);
    const end = whole.subarray(0, n).indexOf(10);
    if (end >= 0 || n < whole.length) return customIdOf(whole.subarray(0, end < 0 ? n : end));
    return idFromPrefix(whole.toString('utf8', 0, BLOCK));
  }

  /** Up to 64 KiB of the input from `offset`, from a one-block cache (duplicates come in runs). */
  private readBlock(offset: number): Buffer {
    const b = this.verifyBlock;
    if (b && offset >= b.offset && offset < b.offset + b.data.length) {
      const view = b.data.subarray(offset - b.offset);
      if (view.indexOf(10) >= 0 || b.data.length < BLOCK) return view;
    }
    const data = Buffer.allocUnsafe(BLOCK);
    const n = this.bytes.readAt(data, 0, data.length, offset);
    this.verifyBlock = { offset, data: data.subarray(0, n) };
    return this.verifyBlock.data;
  }

  close(): void {
    this.bytes.close();
  }
}
