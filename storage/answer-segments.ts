// Segments of packed answers, as both answer stores keep them (storage/local-answers.ts on a disk,
// storage/s3-answers.ts in a bucket):
//
//   seg/<name>   one writer's answers concatenated (a collected unit's), each `<meta JSON>\n<result
//                line>` (storage/answers.ts: answerRecord; parseAnswer checks its length)
//   idx/<name>   its index of sorted keys (storage/answer-index.ts), written AFTER the segment: a
//                listed index always has its segment
//
// `<name>` is `<ms>-<rand>-<segment bytes>-<jobTag>`: a listing alone tells a plan and eviction the
// age, the size and which job stored it. Both files are written once under a fresh name
// (commit-once): nothing is ever replaced, so any number of writers and readers need no lock, and
// a copy of one (a worker's mirror of the bucket) never goes stale.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { encodeSegmentIndex, type SegmentEntry } from './answer-index.ts';
import { answerRecord, customIdRange, type NewAnswer } from './answers.ts';

/** An eviction pass brings the store down to this fraction of its bound, so passes stay rare. */
export const EVICT_TO = 0.8;
/** A segment with no index this much older than its name was left by a writer that died between them. */
export const ORPHAN_AFTER_MS = 60 * 60_000;
/** A temporary file this old belongs to no live writer. */
export const STALE_TMP_MS = 24 * 60 * 60_000;

const NAME = /^(\d+)-([0-9a-f]+)-(\d+)-([0-9a-f]{16})$/;

/** One stored segment as its index's listing shows it. */
export interface ListedSegment {
  name: string;
  /** When it was committed (epoch ms). */
  ms: number;
  /** The segment's bytes plus its index's. */
  bytes: number;
  segmentBytes: number;
  /** The jobTag of the job that stored it. */
  tag: string;
}

/** A listed index's segment, from its name and the index's own size; undefined for a foreign name. */
export function listedSegment(name: string, indexBytes: number): ListedSegment | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const segmentBytes = Number(m[3]);
  return { name, ms: Number(m[1]), bytes: segmentBytes + indexBytes, segmentBytes, tag: m[4]! };
}

/** When a segment's name says it was committed (0 for a foreign name). */
export function committedAt(name: string): number {
  return Number(NAME.exec(name)?.[1] ?? 0);
}

/** Oldest first (ties by name), the order eviction takes them in. */
export function byAge(a: ListedSegment, b: ListedSegment): number {
  return a.ms - b.ms || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * The segments to evict, oldest first, so that what stays is at most EVICT_TO of `maxBytes`.
 * `listed` is oldest first.
 */
export function segmentsToEvict(
  listed: ListedSegment[],
  maxBytes: number,
): { evict: ListedSegment[]; before: number; after: number } {
  const before = listed.reduce((sum, s) => sum + s.bytes, 0);
  let after = before;
  const evict: ListedSegment[] = [];
  for (const s of listed) {
    if (after <= maxBytes * EVICT_TO) break;
    evict.push(s);
    after -= s.bytes;
  }
  return { evict, before, after };
}

/** A finished segment: its file (still under the writer's temporary name) and its index. */
export interface FinishedSegment {
  name: string;
  file: string;
  index: Buffer;
}

/**
 * One segment being written: records appended to a temporary file (never held in memory: only
 * their 28-byte index entries are), finished into a name and an index for the store to commit.
 */
export class SegmentWriter {
  private readonly tag: string;
  private readonly rand = randomBytes(6).toString('hex');
  readonly file: string;
  private fd: number | undefined;
  private offset = 0;
  private readonly entries: SegmentEntry[] = [];

  constructor(tag: string, tmpDir: string) {
    this.tag = tag;
    this.file = path.join(tmpDir, `${this.rand}.seg`);
  }

  /** Records stored so far. */
  get count(): number {
    return this.entries.length;
  }

  /** Appends `jobId`'s answer under `key` (hex); false for a result without its custom_id where expected. */
  putAnswer(key: string, jobId: string, answer: NewAnswer): boolean {
    const at = customIdRange(answer.result, answer.customId);
    if (!at) return false;
    this.put(key, answerRecord(jobId, answer, at));
    return true;
  }

  /** Appends one record (an answerRecord) under `key` (hex). */
  put(key: string, record: Buffer): void {
    if (this.fd === undefined) {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = fs.openSync(this.file, 'w');
    }
    let done = 0;
    while (done < record.length) done += fs.writeSync(this.fd, record, done, record.length - done);
    this.entries.push({ key: Buffer.from(key, 'hex'), offset: this.offset, length: record.length });
    this.offset += record.length;
  }

  /**
   * Closes the file and names the segment (its age is that of this call, which the orphan sweep
   * goes by); undefined when nothing was put. The store commits it, then calls `abandon`.
   */
  finish(): FinishedSegment | undefined {
    if (this.fd === undefined) return undefined;
    fs.closeSync(this.fd);
    this.fd = undefined;
    if (this.entries.length === 0) return undefined;
    const name = `${String(Date.now()).padStart(13, '0')}-${this.rand}-${this.offset}-${this.tag}`;
    const index = encodeSegmentIndex(this.entries);
    this.entries.length = 0;
    return { name, file: this.file, index };
  }

  /** Closes and removes the temporary file (whatever was not committed is dropped). */
  abandon(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    this.entries.length = 0;
    fs.rmSync(this.file, { force: true });
  }
}
