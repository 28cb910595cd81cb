// Where chunks come from. The planner's main thread reads the input into slots of the scan memory,
// one chunk per slot, and hands each to the scan threads; a slot is free again once its chunk is
// decided. A chunk source (source-jsonl.ts, source-csv.ts) knows one input format: how to cut it
// into chunks of whole request lines, and how to read an earlier line's custom_id back from the
// file (the planner keeps only hashes of the ids).
import type { Problem } from './chunk.ts';

/** A chunk in flight: where it lies in the scan memory and where its lines came from. */
export interface ChunkMeta {
  /** Its slot, or -1 when it holds no slot (a line refused without scanning). */
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

/** A CSV row refused before scanning, reported in line order among the scanned lines. */
export interface Extra {
  line: number;
  offset: number;
  problem: Problem;
}

/**
 * What a source read: `len` bytes of whole lines at `meta.base` to scan, or (`refused`) one line
 * judged without scanning (longer than a slot), as its record and problem.
 */
export interface ReadChunk {
  meta: ChunkMeta;
  len: number;
  refused?: { recs: Int32Array; problem: Problem };
}

/** An indexed line: the line number and its byte offset in the input (ids.ts, LineIndex). */
export interface LineStart {
  line: number;
  offset: number;
}

export interface ChunkSource {
  /** True once the whole input has been read. */
  readonly eof: boolean;
  /** Input bytes read so far, for progress. */
  readonly bytesRead: number;
  /** Reads what comes before the first chunk (a CSV header); may throw InputError. */
  start(): void;
  /**
   * Resolves once the next chunk can be read without waiting; absent where reads never wait (a
   * local file). The planner awaits it before each read.
   */
  readonly ready?: (() => Promise<void>) | undefined;
  /** Reads the next chunk into a free slot; undefined when nothing was left to read. */
  read(): ReadChunk | undefined;
  /** The custom_id on `line`, re-read from the input by walking from the indexed line `from`. */
  idOnLine(from: LineStart, line: number): string | undefined;
  close(): void;
}

/**
 * The chunk slots of the scan memory: `count` slots of `bytes` from offset 0. A slot taken and not
 * used goes back to the front (it is taken next); a slot whose chunk is decided goes to the back.
 */
export class ChunkSlots {
  readonly u8: Uint8Array;
  /** The same memory as a Buffer (indexOf, toString, write). */
  readonly buf: Buffer;
  readonly bytes: number;
  private readonly free: number[] = [];

  constructor(u8: Uint8Array, buf: Buffer, bytes: number, count: number) {
    this.u8 = u8;
    this.buf = buf;
    this.bytes = bytes;
    for (let k = 0; k < count; k++) this.free.push(k);
  }

  get available(): boolean {
    return this.free.length > 0;
  }

  take(): number {
    return this.free.shift()!;
  }

  /** Returns a slot that was taken but not filled. */
  unused(slot: number): void {
    this.free.unshift(slot);
  }

  /** Returns a slot whose chunk is decided. */
  release(slot: number): void {
    this.free.push(slot);
  }
}
