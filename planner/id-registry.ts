// Which custom_ids the plan has seen, decided in input order: the id table (ids.ts) holds a hash
// of each id and its line, the line index where lines start; a hash match is confirmed by reading
// the earlier line's id back from the input (the chunk source knows how), so a collision never
// rejects a line.
import {
  F_ID_ESC,
  F_REJECTED,
  R_HASH,
  R_HASH2,
  R_ID_END,
  R_ID_START,
  R_FLAGS,
  R_REF,
  type ChunkPart,
} from './chunk.ts';
import { IdTable, LineIndex } from './ids.ts';
import { SEED2, hashString } from './id-hash.ts';
import { decodeJsonString } from './scan-values.ts';
import type { LineStart } from './source.ts';

/** Reads the custom_id on `line` back from the input, from the indexed line `from` before it. */
export type IdReader = (from: LineStart, line: number) => string | undefined;

export class IdRegistry {
  private readonly ids: IdTable;
  private readonly lineIndex: LineIndex;
  private readonly hashMask: number;
  private readonly u8: Uint8Array;
  private readonly buf: Buffer;
  private readonly readId: IdReader;
  /** The record being decided, for the id check's callback (no closure per line). */
  private readonly cur: { part: ChunkPart | undefined; base: number; r: number; id: string | undefined } = {
    part: undefined,
    base: 0,
    r: 0,
    id: undefined,
  };
  private readonly sameAsCurrent = (earlier: number): boolean => this.idAt(earlier) === this.currentId();

  /**
   * An id table for about `expectedLines` ids within `maxBytes` (IdTableFullError when even that
   * cannot be had); `u8`/`buf` is the scan memory the records point into.
   */
  constructor(
    expectedLines: number,
    maxBytes: number,
    hashMask: number,
    memory: { u8: Uint8Array; buf: Buffer },
    readId: IdReader,
  ) {
    this.hashMask = hashMask;
    this.u8 = memory.u8;
    this.buf = memory.buf;
    this.readId = readId;
    this.ids = new IdTable(expectedLines, maxBytes);
    this.lineIndex = new LineIndex(Math.ceil(expectedLines / 32) + 1024);
  }

  /** Called for every request line, in input order: where it starts, for re-reading it later. */
  note(line: number, offset: number): void {
    this.lineIndex.note(line, offset);
  }

  /**
   * Records the id of record `r` of `part` (chunk at `base`), on `line`: returns the earlier line
   * holding the same id, or 0. Until the next call, `currentId()` gives that record's id.
   */
  addRecord(part: ChunkPart, base: number, r: number, line: number): number {
    const cur = this.cur;
    cur.part = part;
    cur.base = base;
    cur.r = r;
    cur.id = undefined;
    const recs = part.recs;
    return this.ids.add(recs[r + R_HASH]! >>> 0, recs[r + R_HASH2]!, line, this.sameAsCurrent);
  }

  /** The custom_id of the record last given to addRecord, decoded once. */
  currentId(): string {
    const c = this.cur;
    if (c.id === undefined) {
      const part = c.part!;
      const recs = part.recs;
      const flags = recs[c.r + R_FLAGS]!;
      const problem = flags & F_REJECTED ? part.problems[recs[c.r + R_REF]!] : undefined;
      if (problem?.customId !== undefined) c.id = problem.customId;
      else {
        const a = c.base + recs[c.r + R_ID_START]!;
        const b = c.base + recs[c.r + R_ID_END]!;
        c.id = flags & F_ID_ESC ? decodeJsonString(this.u8, a, b) : this.buf.toString('utf8', a, b);
      }
    }
    return c.id;
  }

  /** Records `id` found on `line` (a row refused before scanning): the earlier line with it, or 0. */
  addId(id: string, line: number): number {
    return this.ids.add(
      hashString(id) & this.hashMask,
      hashString(id, SEED2) & this.hashMask,
      line,
      (e) => this.idAt(e) === id,
    );
  }

  /** The custom_id on an earlier line, re-read from the input (only when hashes match). */
  private idAt(line: number): string | undefined {
    return this.readId(this.lineIndex.seek(line), line);
  }
}
