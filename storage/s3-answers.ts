// The answer store in the job storage's bucket, for fleets without a shared disk: answers collected
// by one worker are reused by a plan on any other. Answers are packed, one segment per writer (a
// collected unit's answers), because an object per answer would cost a PUT per answer to store and
// a remote GET per hit:
//
//   <root>/seg/<name>   the writer's answers concatenated, each `<meta JSON>\n<result line>` as a
//                       local answer file (so parseAnswer and its length check apply)
//   <root>/idx/<name>   its index (storage/answer-index.ts), written AFTER the segment: a listed
//                       index always has its segment
//
// `<name>` is `<ms>-<rand>-<segment bytes>-<jobTag>`: a listing alone tells a plan and eviction the
// age, the size and which job stored it. Both objects are written once under a fresh name
// (commit-once), so nothing is ever replaced and a cached copy never goes stale.
//
// Before a plan, `prepare` lists idx/, mirrors the segments and indexes the worker lacks into a
// cache folder under its scratch root, drops cached ones no longer listed, and merges the indexes
// into one local index with a key filter (MergedAnswers): lookups are then local and synchronous.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  ANSWERS_DIR_NAME,
  answerRecord,
  customIdRange,
  DEFAULT_ANSWERS_FILTER_BYTES,
  DEFAULT_ANSWERS_MAX_BYTES,
  jobTag,
  type AnswerSource,
  type AnswerStore,
  type AnswerWriter,
  type StoredAnswer,
} from './answers.ts';
import { encodeSegmentIndex, MergedAnswers, type LocalSegment, type SegmentEntry } from './answer-index.ts';
import type { KeyFilter } from './key-filter.ts';
import { isNotFound, keyPrefix, ObjectStore, parseS3Uri, type S3Location } from './s3.ts';

/** An eviction pass brings the store down to this fraction of its bound. */
const EVICT_TO = 0.8;
/** A segment with no index this much older than now was left by a writer that died between them. */
const ORPHAN_AFTER_MS = 60 * 60_000;
/** A cache temporary file this old belongs to no live writer or download. */
const STALE_TMP_MS = 24 * 60 * 60_000;
/** Downloads at once while mirroring. */
const MIRROR_CONCURRENCY = 8;

const NAME = /^(\d+)-([0-9a-f]+)-(\d+)-([0-9a-f]{16})$/;

/** One stored segment as its index object's listing shows it. */
export interface ListedSegment {
  name: string;
  ms: number;
  /** The segment's bytes plus its index's. */
  bytes: number;
  segmentBytes: number;
  tag: string;
}

export interface S3AnswerStoreOptions {
  objects: ObjectStore;
  /** Where the store lives: a bucket and a key prefix ending in `/` (`<storage prefix>/.batchpilot-answers/`). */
  root: S3Location;
  /** The local cache folder (under the worker's scratch root); may vanish, then is rebuilt. */
  cacheDir: string;
  /** Size bound in bytes of what is listed; eviction brings it back under. */
  maxBytes?: number;
  /** Memory bound of a plan's key filter. */
  filterBytes?: number;
}

/** The answer store on object storage (layout above). Safe for any number of workers at once. */
export class S3AnswerStore implements AnswerStore {
  readonly maxBytes: number;
  readonly filterBytes: number;
  private readonly objects: ObjectStore;
  private readonly root: S3Location;
  private readonly cacheDir: string;

  constructor(opts: S3AnswerStoreOptions) {
    this.objects = opts.objects;
    this.root = { bucket: opts.root.bucket, key: keyPrefix(opts.root.key) };
    this.cacheDir = opts.cacheDir;
    this.maxBytes = opts.maxBytes ?? DEFAULT_ANSWERS_MAX_BYTES;
    this.filterBytes = opts.filterBytes ?? DEFAULT_ANSWERS_FILTER_BYTES;
  }

  private at(kind: 'seg' | 'idx', name = ''): S3Location {
    return { bucket: this.root.bucket, key: `${this.root.key}${kind}/${name}` };
  }

  private cached(kind: 'seg' | 'idx' | 'tmp', name = ''): string {
    return path.join(this.cacheDir, kind, name);
  }

  /** Every listed index, oldest first. */
  async list(): Promise<ListedSegment[]> {
    const out: ListedSegment[] = [];
    const prefix = this.at('idx').key;
    for await (const o of this.objects.list(this.at('idx'))) {
      const name = o.key.slice(prefix.length);
      const m = NAME.exec(name);
      if (!m) continue;
      const segmentBytes = Number(m[3]);
      out.push({ name, ms: Number(m[1]), bytes: segmentBytes + o.size, segmentBytes, tag: m[4]! });
    }
    return out.sort((a, b) => a.ms - b.ms || (a.name < b.name ? -1 : 1));
  }

  async hasJob(jobId: string): Promise<boolean> {
    const tag = jobTag(jobId);
    return (await this.list()).some((s) => s.tag === tag);
  }

  /**
   * Mirrors the listed segments (`fromJob`'s only, when given) and merges their indexes for one
   * plan. A segment that vanished before it was mirrored (evicted meanwhile) is left out: its keys
   * miss. The returned source must be released after the plan.
   */
  async prepare(fromJob: string | undefined): Promise<AnswerSource> {
    const listed = await this.list();
    await this.dropUnlisted(listed);
    const tag = fromJob === undefined ? undefined : jobTag(fromJob);
    const wanted = listed.filter((s) => tag === undefined || s.tag === tag);
    const segments: LocalSegment[] = [];
    const queue = [...wanted].reverse(); // newest first: of a key stored twice, the newest answer
    const mirrored = new Set<string>();
    await Promise.all(
      Array.from({ length: MIRROR_CONCURRENCY }, async () => {
        for (let s = queue.shift(); s; s = queue.shift()) if (await this.mirror(s)) mirrored.add(s.name);
      }),
    );
    for (const s of [...wanted].reverse())
      if (mirrored.has(s.name))
        segments.push({ index: this.cached('idx', s.name), segment: this.cached('seg', s.name) });
    return MergedAnswers.build({ segments, tmpDir: this.cached('tmp'), filterBytes: this.filterBytes });
  }

  /** Brings one segment and its index into the cache; false when the segment is gone. */
  private async mirror(s: ListedSegment): Promise<boolean> {
    const seg = this.cached('seg', s.name);
    const idx = this.cached('idx', s.name);
    if (fs.statSync(seg, { throwIfNoEntry: false })?.size !== s.segmentBytes)
      if (!(await this.download(this.at('seg', s.name), seg, s.segmentBytes))) return false;
    const indexBytes = s.bytes - s.segmentBytes;
    if (fs.statSync(idx, { throwIfNoEntry: false })?.size !== indexBytes)
      if (!(await this.download(this.at('idx', s.name), idx, indexBytes))) return false;
    return true;
  }

  /**
   * Copies an object into `file` through a temporary name, so the cache never holds part of one;
   * false when the object is gone or not `bytes` long.
   */
  private async download(from: S3Location, file: string, bytes: number): Promise<boolean> {
    const tmp = this.cached('tmp', `${path.basename(file)}-${randomBytes(4).toString('hex')}`);
    await fsp.mkdir(path.dirname(tmp), { recursive: true });
    await fsp.mkdir(path.dirname(file), { recursive: true });
    try {
      await pipeline(await this.objects.read(from), fs.createWriteStream(tmp));
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      // Deleted by an eviction after it was listed.
      if (isNotFound(err)) return false;
      throw err;
    }
    if ((await fsp.stat(tmp)).size !== bytes) {
      await fsp.rm(tmp, { force: true });
      return false;
    }
    await fsp.rename(tmp, file);
    return true;
  }

  /**
   * Removes cached segments and indexes no longer listed (evicted), and temporary files a crashed
   * process left: the cache holds at most what the store lists.
   */
  private async dropUnlisted(listed: ListedSegment[]): Promise<void> {
    const names = new Set(listed.map((s) => s.name));
    for (const kind of ['seg', 'idx'] as const)
      for (const name of await readdirOrEmpty(this.cached(kind)))
        if (!names.has(name)) await fsp.rm(this.cached(kind, name), { force: true });
    for (const name of await readdirOrEmpty(this.cached('tmp'))) {
      const file = this.cached('tmp', name);
      const st = await fsp.stat(file).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_TMP_MS) await fsp.rm(file, { force: true });
    }
  }

  get(): StoredAnswer | undefined {
    throw new Error('the object-storage answer store is read through the source prepare() returns');
  }

  keyFilter(): KeyFilter | undefined {
    throw new Error('the object-storage answer store is read through the source prepare() returns');
  }

  /**
   * A writer buffering one unit's answers in a scratch file (never in memory: only their 28-byte
   * index entries are), committed as a segment and its index by close.
   */
  writer(jobId: string): AnswerWriter {
    const tag = jobTag(jobId);
    const rand = randomBytes(6).toString('hex');
    const tmp = this.cached('tmp', `${rand}.seg`);
    let fd: number | undefined;
    let offset = 0;
    const entries: SegmentEntry[] = [];
    const discard = () => {
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
      fs.rmSync(tmp, { force: true });
    };
    return {
      put: (key, answer) => {
        const at = customIdRange(answer.result, answer.customId);
        if (!at) return false;
        if (fd === undefined) {
          fs.mkdirSync(path.dirname(tmp), { recursive: true });
          fd = fs.openSync(tmp, 'w');
        }
        const bytes = answerRecord(jobId, answer, at);
        fs.writeSync(fd, bytes);
        entries.push({ key: Buffer.from(key, 'hex'), offset, length: bytes.length });
        offset += bytes.length;
        return true;
      },
      close: async () => {
        if (fd === undefined) return;
        fs.closeSync(fd);
        fd = undefined;
        try {
          // Named when committed: its age is that of its commit, which the orphan sweep goes by.
          const name = `${String(Date.now()).padStart(13, '0')}-${rand}-${offset}-${tag}`;
          if (entries.length > 0) await this.commit(name, tmp, encodeSegmentIndex(entries));
        } finally {
          discard();
        }
        entries.length = 0;
        await this.evictIfOver();
      },
    };
  }

  /** The segment, then its index (so a listed index always has its segment), then a cached copy. */
  private async commit(name: string, segmentFile: string, index: Buffer): Promise<void> {
    await this.objects.write(this.at('seg', name), fs.createReadStream(segmentFile), { ifAbsent: true });
    await this.objects.write(this.at('idx', name), index, { ifAbsent: true });
    // This worker's own answers need no download before its next plan.
    try {
      await fsp.mkdir(this.cached('seg'), { recursive: true });
      await fsp.mkdir(this.cached('idx'), { recursive: true });
      const tmp = this.cached('tmp', `${name}.idx`);
      await fsp.writeFile(tmp, index);
      await fsp.rename(tmp, this.cached('idx', name));
      await fsp.rename(segmentFile, this.cached('seg', name));
    } catch {
      // The cache is an optimisation: a plan downloads what it lacks.
    }
  }

  /** Evicts when the listed bytes pass the bound; the cache keeps only what stays listed. */
  private async evictIfOver(): Promise<void> {
    const listed = await this.list();
    if (listed.reduce((sum, s) => sum + s.bytes, 0) > this.maxBytes) await this.evict(listed);
  }

  /**
   * Deletes the oldest segments (index first, then segment: never a listed index without its
   * segment) until the listed bytes are at most EVICT_TO of the bound, and segments whose writer
   * died before their index. Deletes are idempotent: two evictors at once remove a little more.
   */
  async evict(listed?: ListedSegment[]): Promise<{ before: number; after: number; removed: number }> {
    const all = listed ?? (await this.list());
    const before = all.reduce((sum, s) => sum + s.bytes, 0);
    let after = before;
    let removed = 0;
    const target = this.maxBytes * EVICT_TO;
    const kept = new Set(all.map((s) => s.name));
    for (const s of all) {
      if (after <= target) break;
      await this.objects.delete(this.at('idx', s.name));
      await this.objects.delete(this.at('seg', s.name));
      kept.delete(s.name);
      after -= s.bytes;
      removed++;
    }
    const prefix = this.at('seg').key;
    for await (const o of this.objects.list(this.at('seg'))) {
      const name = o.key.slice(prefix.length);
      const ms = Number(NAME.exec(name)?.[1] ?? 0);
      if (!kept.has(name) && Date.now() - ms > ORPHAN_AFTER_MS)
        await this.objects.delete(this.at('seg', name));
    }
    await this.dropUnlisted(all.filter((s) => kept.has(s.name)));
    return { before, after, removed };
  }
}

/**
 * The answer store of the job storage `storage` (an `s3://bucket/prefix`), as every worker and the
 * client's `validate` / `plan` find it: under `<prefix>/.batchpilot-answers/` (the local store's
 * folder name, so no `--out` a user picks lands in it), mirrored into `<scratch root>/answers-cache`.
 */
export function bucketAnswerStore(
  storage: string,
  scratchRoot: string,
  bounds: { maxBytes?: number; filterBytes?: number } = {},
): S3AnswerStore {
  const loc = parseS3Uri(storage);
  return new S3AnswerStore({
    objects: new ObjectStore(),
    root: {
      bucket: loc.bucket,
      key: `${keyPrefix(loc.key)}${ANSWERS_DIR_NAME}/`,
    },
    cacheDir: path.join(scratchRoot, 'answers-cache'),
    ...bounds,
  });
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch {
    return [];
  }
}
