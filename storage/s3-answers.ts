// The answer store in the job storage's bucket, for fleets without a shared disk: answers collected
// by one worker are reused by a plan on any other. Answers are packed in the segment layout of
// storage/answer-segments.ts under `<root>/seg/` and `<root>/idx/`, because an object per answer
// would cost a PUT per answer to store and a remote GET per hit.
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
  DEFAULT_ANSWERS_FILTER_BYTES,
  DEFAULT_ANSWERS_MAX_BYTES,
  jobTag,
  type AnswerSource,
  type AnswerStore,
  type AnswerWriter,
} from './answers.ts';
import { MergedAnswers, type LocalSegment } from './answer-index.ts';
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
import { isNotFound, keyPrefix, ObjectStore, parseS3Uri, type S3Location } from './s3.ts';

/** Downloads at once while mirroring. */
const MIRROR_CONCURRENCY = 8;

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
      const s = listedSegment(o.key.slice(prefix.length), o.size);
      if (s) out.push(s);
    }
    return out.sort(byAge);
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

  /** A writer of one unit's answers into a scratch file, committed as a segment and its index by close. */
  writer(jobId: string): AnswerWriter {
    const segment = new SegmentWriter(jobTag(jobId), this.cached('tmp'));
    return {
      put: (key, answer) => segment.putAnswer(key, jobId, answer),
      close: async () => {
        let done: FinishedSegment | undefined;
        try {
          done = segment.finish();
          if (done) await this.commit(done);
        } finally {
          segment.abandon();
        }
        if (done) await this.evictIfOver();
      },
      abandon: () => segment.abandon(),
    };
  }

  /** The segment, then its index (so a listed index always has its segment), then a cached copy. */
  private async commit({ name, file: segmentFile, index }: FinishedSegment): Promise<void> {
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
    const { evict, before, after } = segmentsToEvict(all, this.maxBytes);
    for (const s of evict) {
      await this.objects.delete(this.at('idx', s.name));
      await this.objects.delete(this.at('seg', s.name));
    }
    const gone = new Set(evict.map((s) => s.name));
    const kept = all.filter((s) => !gone.has(s.name));
    const indexed = new Set(all.map((s) => s.name));
    const prefix = this.at('seg').key;
    for await (const o of this.objects.list(this.at('seg'))) {
      const name = o.key.slice(prefix.length);
      if (!indexed.has(name) && Date.now() - committedAt(name) > ORPHAN_AFTER_MS)
        await this.objects.delete(this.at('seg', name));
    }
    await this.dropUnlisted(kept);
    return { before, after, removed: evict.length };
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
