// The answer store in a local folder (beside the data root by default), in the segment layout of
// storage/answer-segments.ts:
//
//   seg/<name>, idx/<name>   a collected unit's answers and their index, renamed in whole from tmp/
//                            (the segment first, so a listed index always has its segment)
//   tmp/                     segments and indexes being written
//
// Any number of processes may write and read at once: names are fresh, files are never rewritten,
// and eviction only deletes (a plan that already opened a segment keeps reading it; one that had
// not reads its keys as misses). A store of the earlier one-file-per-answer layout (`objects/`) is
// packed into segments by the first plan that finds it, and its files removed.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { MergedAnswers } from './answer-index.ts';
import {
  byAge,
  committedAt,
  listedSegment,
  ORPHAN_AFTER_MS,
  SegmentWriter,
  segmentsToEvict,
  STALE_TMP_MS,
  type FinishedSegment,
  type ListedSegment,
} from './answer-segments.ts';
import {
  DEFAULT_ANSWERS_FILTER_BYTES,
  DEFAULT_ANSWERS_MAX_BYTES,
  jobTag,
  parseAnswer,
  type AnswerSource,
  type AnswerStore,
  type AnswerWriter,
} from './answers.ts';

export interface LocalAnswerStoreOptions {
  /** The store's folder (created when first written). */
  root: string;
  /** Size bound in bytes; eviction brings it back under. */
  maxBytes?: number;
  /** Memory bound of the key filter a plan builds. */
  filterBytes?: number;
}

/** A writer whose commit is done when close returns. */
export interface LocalAnswerWriter extends AnswerWriter {
  close(): void;
}

/** Legacy answers packed into one segment at most this many at a time (their index is in memory). */
const LEGACY_PACK_BATCH = 200_000;

/** The answer store in a local folder (layout above). */
export class LocalAnswerStore implements AnswerStore {
  readonly root: string;
  readonly maxBytes: number;
  readonly filterBytes: number;

  constructor(opts: LocalAnswerStoreOptions) {
    this.root = path.resolve(opts.root);
    this.maxBytes = opts.maxBytes ?? DEFAULT_ANSWERS_MAX_BYTES;
    this.filterBytes = opts.filterBytes ?? DEFAULT_ANSWERS_FILTER_BYTES;
  }

  private at(kind: 'seg' | 'idx' | 'tmp', name = ''): string {
    return path.join(this.root, kind, name);
  }

  /** Every committed segment, oldest first. */
  list(): ListedSegment[] {
    const out: ListedSegment[] = [];
    for (const name of readdirOrEmpty(this.at('idx'))) {
      const size = fs.statSync(this.at('idx', name), { throwIfNoEntry: false })?.size;
      const s = size === undefined ? undefined : listedSegment(name, size);
      if (s) out.push(s);
    }
    return out.sort(byAge);
  }

  /** The bytes the store holds, as its listing tells them. */
  bytes(): number {
    return this.list().reduce((sum, s) => sum + s.bytes, 0);
  }

  hasJob(jobId: string): boolean {
    const tag = jobTag(jobId);
    return this.list().some((s) => s.tag === tag);
  }

  /** Merges the indexes of the store's segments (`fromJob`'s only, when given), newest first. */
  async prepare(fromJob: string | undefined): Promise<AnswerSource> {
    await this.packLegacy();
    const tag = fromJob === undefined ? undefined : jobTag(fromJob);
    const segments = this.list()
      .filter((s) => tag === undefined || s.tag === tag)
      .reverse() // of a key stored twice, the newest answer
      .map((s) => ({ index: this.at('idx', s.name), segment: this.at('seg', s.name) }));
    return MergedAnswers.build({ segments, tmpDir: this.at('tmp'), filterBytes: this.filterBytes });
  }

  writer(jobId: string): LocalAnswerWriter {
    const segment = new SegmentWriter(jobTag(jobId), this.at('tmp'));
    return {
      put: (key, answer) => segment.putAnswer(key, jobId, answer),
      close: () => {
        let done: FinishedSegment | undefined;
        try {
          done = segment.finish();
          if (done) this.commit(done);
        } finally {
          segment.abandon();
        }
        if (done) this.evictIfOver();
      },
      abandon: () => segment.abandon(),
    };
  }

  /** The segment, then its index: a listed index always has its segment. */
  private commit(done: FinishedSegment): void {
    fs.mkdirSync(this.at('seg'), { recursive: true });
    fs.mkdirSync(this.at('idx'), { recursive: true });
    fs.renameSync(done.file, this.at('seg', done.name));
    const tmp = this.at('tmp', `${done.name}.idx`);
    fs.writeFileSync(tmp, done.index);
    fs.renameSync(tmp, this.at('idx', done.name));
  }

  private evictIfOver(): void {
    const listed = this.list();
    if (listed.reduce((sum, s) => sum + s.bytes, 0) > this.maxBytes) this.evict(listed);
  }

  /**
   * Deletes the oldest segments (index first, then segment) until the store is at most EVICT_TO of
   * its bound, then segments whose writer died before their index, and stale temporary files.
   * Deletes are idempotent: two evictors at once remove a little more, nothing breaks.
   */
  evict(listed = this.list()): { before: number; after: number; removed: number } {
    const { evict, before, after } = segmentsToEvict(listed, this.maxBytes);
    for (const s of evict) {
      fs.rmSync(this.at('idx', s.name), { force: true });
      fs.rmSync(this.at('seg', s.name), { force: true });
    }
    const indexed = new Set(listed.map((s) => s.name));
    const now = Date.now();
    for (const name of readdirOrEmpty(this.at('seg')))
      if (!indexed.has(name) && now - committedAt(name) > ORPHAN_AFTER_MS)
        fs.rmSync(this.at('seg', name), { force: true });
    for (const name of readdirOrEmpty(this.at('tmp'))) {
      const st = fs.statSync(this.at('tmp', name), { throwIfNoEntry: false });
      if (st && now - st.mtimeMs > STALE_TMP_MS) fs.rmSync(this.at('tmp', name), { force: true });
    }
    return { before, after, removed: evict.length };
  }

  /**
   * Packs answers of the one-file-per-answer layout (`objects/<k0k1>/<k2k3>/<key>.<jobTag>`) into
   * segments of their jobs, then removes that layout. One process packs (it holds `packing/`);
   * another plan meanwhile goes on without those answers. A crash mid-way leaves committed
   * segments and the files; the next pack stores those answers once more (the newest copy wins).
   */
  private async packLegacy(): Promise<void> {
    const objects = path.join(this.root, 'objects');
    if (!fs.existsSync(objects)) return;
    const lock = path.join(this.root, 'packing');
    try {
      fs.mkdirSync(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age < STALE_TMP_MS) return;
    }
    const writers = new Map<string, SegmentWriter>();
    const flush = (tag: string, w: SegmentWriter) => {
      try {
        const done = w.finish();
        if (done) this.commit(done);
      } finally {
        w.abandon();
        writers.delete(tag);
      }
    };
    try {
      let seen = 0;
      for (const a of readdirOrEmpty(objects))
        for (const b of readdirOrEmpty(path.join(objects, a)))
          for (const name of readdirOrEmpty(path.join(objects, a, b))) {
            // `<key>.<jobTag>`: each job's own copy (the bare `<key>` is a link to one of them).
            const m = /^([0-9a-f]{32})\.([0-9a-f]{16})$/.exec(name);
            if (!m) continue;
            const bytes = readOrUndefined(path.join(objects, a, b, name));
            if (!bytes || !parseAnswer(bytes)) continue;
            const tag = m[2]!;
            let w = writers.get(tag);
            if (!w) writers.set(tag, (w = new SegmentWriter(tag, this.at('tmp'))));
            w.put(m[1]!, bytes);
            if (w.count >= LEGACY_PACK_BATCH) flush(tag, w);
            // A store of millions of files: let the activity's heartbeat through.
            if (++seen % 1000 === 0) await yieldToLoop();
          }
      for (const [tag, w] of [...writers]) flush(tag, w);
      for (const old of ['objects', 'ledger', 'jobs', 'keys-v1', 'evicting'])
        await fsp.rm(path.join(this.root, old), { recursive: true, force: true });
    } finally {
      for (const w of writers.values()) w.abandon();
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
}

function readOrUndefined(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
