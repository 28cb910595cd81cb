// The answer store: successful answers of earlier jobs, keyed by their request's canonical hash
// (common/request-key.ts), so that a later job hands them out instead of paying for them again.
// `AnswerStore` is what the planner's lookups and the collection's writes need; `LocalAnswerStore`
// keeps it in a folder beside the data root, `S3AnswerStore` (storage/s3-answers.ts) in the job
// storage's bucket, read through a local mirror that `prepare` brings up to date before a plan.
//
// Layout (one file per answer; docs/reuse.md says why here, and why segments on object storage):
//   objects/<k0k1>/<k2k3>/<key>           the answer: first job to store that key wins the name
//   objects/<k0k1>/<k2k3>/<key>.<jobTag>  the same answer as that job stored it (often a hard link
//                                         to the name above: one inode, no extra bytes)
//   jobs/<jobTag>.json                    {jobId}: this job stored answers here (for --reuse-from)
//   ledger/<ms>-<pid>-<rand>-<bytes>      bytes written since the last eviction pass (in the name)
//                                         and the keys written (the content, 16 bytes a key), one
//                                         file per writer: no read-modify-write race
//   keys-v1                               present when every answer's key is in some ledger entry,
//                                         so the planner may trust a filter built from them
//   tmp/                                  ledger entries being written
//   evicting/                             held (mkdir) while one process evicts
//
// A file is `<meta JSON>\n<result line>`; it appears by rename of a whole temporary file, and a
// reader checks the result's length against the meta, so a torn file (a crash before the data
// reached the disk) reads as a miss, never as a wrong answer.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KEY_BYTES } from '../common/request-key.ts';
import { KeyFilter, addKeyList, type SharedKeyFilter } from './key-filter.ts';

/** What is kept beside an answer's bytes. */
export interface AnswerMeta {
  /** The workflow id of the job that stored it. */
  job: string;
  /** The request's model (for tokens and cost saved by model). */
  model: string;
  /** prompt, completion, total tokens the provider reported, if any. */
  usage: [number, number, number] | null;
  /** Byte range of the custom_id's JSON string in the result line: where a new one goes. */
  at: [number, number];
  /** Bytes of the result line (a shorter file is torn and ignored). */
  n: number;
}

export interface StoredAnswer {
  meta: AnswerMeta;
  /** The provider's result line as stored (no newline). */
  result: Buffer;
}

export interface NewAnswer {
  model: string;
  usage: [number, number, number] | null;
  customId: string;
  /** The provider's result line (no newline). */
  result: Uint8Array;
}

/** What one plan's lookups read. Synchronous: the planner looks up in its decide loop. */
export interface AnswerSource {
  /**
   * The answer stored under `key` (only one that `fromJob` stored, when given), or undefined.
   * `likely`: a filter said it may be stored, so a miss is rare (a cheaper path for hits).
   */
  get(key: string, fromJob?: string, likely?: boolean): StoredAnswer | undefined;
  /**
   * A filter of the keys stored now, for one plan's lookups: a key it says no to is not stored
   * (a key stored after it was made may be missed). Undefined when the store has none: every
   * lookup then asks `get`.
   */
  keyFilter(): KeyFilter | undefined;
  /**
   * What other threads need to read answers of this store (`fromJob`'s only, when given) with an
   * AnswerReader, `filter` (from keyFilter) shared with them; absent where only the thread
   * holding the store can look up (then the planner's main thread calls `get`).
   */
  lookup?(fromJob: string | undefined, filter: KeyFilter | undefined): AnswerLookup;
  /** Frees what a source made by `prepare` holds (descriptors, its merged index), after the plan. */
  release?(): void;
}

/** Where answers are stored and found. */
export interface AnswerStore extends AnswerSource {
  /**
   * Makes ready what one plan's synchronous lookups need (`fromJob`'s answers only, when given)
   * and returns the source to look up in; absent where the store is read in place.
   */
  prepare?(fromJob: string | undefined): Promise<AnswerSource>;
  /** Whether `jobId` stored any answer here. */
  hasJob(jobId: string): boolean | Promise<boolean>;
  /** A writer for the answers of `jobId`; close it to account its bytes (and maybe evict). */
  writer(jobId: string): AnswerWriter;
}

/** Plain data (sent to threads as is): where answer files are and the store's shared key filter. */
export interface AnswerLookup {
  /** The store's objects folder. */
  objects: string;
  /** Only this job's answers: the jobTag suffix of their names. */
  tag?: string;
  filter?: SharedKeyFilter;
}

export interface AnswerWriter {
  /** Stores one answer under `key`; a result without its custom_id where expected is skipped. */
  put(key: string, answer: NewAnswer): boolean;
  /** Commits what was put (where the store commits at the end) and accounts its bytes. */
  close(): void | Promise<void>;
}

/** A writer whose close is done when it returns (a local store's). */
export interface LocalAnswerWriter extends AnswerWriter {
  close(): void;
}

/** Default size bound of a store: answers past it are evicted oldest first. */
export const DEFAULT_ANSWERS_MAX_BYTES = 4 * 1000 ** 3;
/** Default memory bound of a plan's key filter (64 MiB: ~33M keys at 0.05%, ~56M at 1%). */
export const DEFAULT_ANSWERS_FILTER_BYTES = 64 * 1024 ** 2;
/** The folder under the data root where answers live by default. */
export const ANSWERS_DIR_NAME = '.batchpilot-answers';
/** An eviction pass brings the store down to this fraction of its bound, so passes stay rare. */
const EVICT_TO = 0.8;
/** An eviction lock older than this is taken to be a crashed evictor's. */
const STALE_LOCK_MS = 30 * 60_000;

/** A short, name-safe tag of a job id (ids may hold `/` and be 1,000 characters long). */
export function jobTag(jobId: string): string {
  return createHash('sha256').update(jobId).digest('hex').slice(0, 16);
}

/** Where the custom_id's JSON string sits in a result line, checked by parsing the result. */
export function customIdRange(result: Uint8Array, customId: string): [number, number] | undefined {
  const buf = Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  const value = Buffer.from(JSON.stringify(customId));
  const key = Buffer.from('"custom_id"');
  for (let from = 0; ;) {
    const k = buf.indexOf(key, from);
    if (k < 0) return undefined;
    let p = k + key.length;
    while (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === 0x0a || buf[p] === 0x0d) p++;
    if (buf[p] === 0x3a) {
      p++;
      while (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === 0x0a || buf[p] === 0x0d) p++;
      if (buf.compare(value, 0, value.length, p, p + value.length) === 0) {
        // The top-level custom_id, not one nested in the response: replacing it must show there.
        const probe = Buffer.concat([
          buf.subarray(0, p),
          Buffer.from('"\\u0000probe"'),
          buf.subarray(p + value.length),
        ]);
        try {
          if ((JSON.parse(probe.toString('utf8')) as { custom_id?: unknown }).custom_id === '\u0000probe')
            return [p, p + value.length];
        } catch {
          // not this occurrence
        }
      }
    }
    from = k + 1;
  }
}

/**
 * The stored result line re-addressed to `customId` and marked as reused: the custom_id's value
 * replaced, `"batchpilot_reused":true` right after it, every other byte as the provider sent it.
 */
export function reusedResult(answer: StoredAnswer, customId: string): Buffer {
  const [a, b] = answer.meta.at;
  return Buffer.concat([
    answer.result.subarray(0, a),
    Buffer.from(`${JSON.stringify(customId)},"batchpilot_reused":true`),
    answer.result.subarray(b),
  ]);
}

export interface LocalAnswerStoreOptions {
  /** The store's folder (created when first written). */
  root: string;
  /** Size bound in bytes; eviction brings it back under. */
  maxBytes?: number;
  /** Memory bound of the key filter a plan builds (keyFilter). */
  filterBytes?: number;
}

/** The answer store in a local folder (layout above). Safe for many processes at once. */
export class LocalAnswerStore implements AnswerStore {
  readonly root: string;
  readonly maxBytes: number;
  readonly filterBytes: number;
  private readonly made = new Set<string>();
  private reader: { fromJob: string | undefined; reader: AnswerReader } | undefined;

  constructor(opts: LocalAnswerStoreOptions) {
    this.root = path.resolve(opts.root);
    this.maxBytes = opts.maxBytes ?? DEFAULT_ANSWERS_MAX_BYTES;
    this.filterBytes = opts.filterBytes ?? DEFAULT_ANSWERS_FILTER_BYTES;
  }

  private get keysMark(): string {
    return path.join(this.root, 'keys-v1');
  }

  /**
   * A Bloom filter of every key in the ledger, within `filterBytes`; undefined when the store is
   * not marked as keeping key lists (a store written before they existed, until its first
   * eviction walk lists them) or when the ledger kept changing under the read.
   */
  keyFilter(): KeyFilter | undefined {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!fs.existsSync(this.keysMark)) return undefined;
      const filter = this.readLedgerKeys();
      if (filter) return filter;
    }
    return undefined;
  }

  /** The ledger's keys in a filter, or undefined when an entry vanished (an eviction replaced it). */
  private readLedgerKeys(): KeyFilter | undefined {
    const ledger = path.join(this.root, 'ledger');
    const entries: { file: string; size: number }[] = [];
    let keys = 0;
    for (const name of readdirOrEmpty(ledger)) {
      const file = path.join(ledger, name);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (!st) return undefined;
      entries.push({ file, size: st.size });
      keys += Math.floor(st.size / KEY_BYTES);
    }
    const filter = new KeyFilter(keys, this.filterBytes);
    const buf = Buffer.allocUnsafe(KEY_BYTES << 16);
    for (const { file } of entries) {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        return undefined;
      }
      try {
        // Whole keys only: an entry torn by a crash adds its whole keys and drops its tail.
        let carry = 0;
        for (;;) {
          const n = fs.readSync(fd, buf, carry, buf.length - carry, null);
          const have = carry + n;
          const whole = have - (have % KEY_BYTES);
          addKeyList(filter, buf, whole);
          carry = have - whole;
          if (carry > 0) buf.copy(buf, 0, whole, have);
          if (n === 0) break;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    return filter;
  }

  private dirOf(key: string): string {
    return objectDir(path.join(this.root, 'objects'), key);
  }

  get(key: string, fromJob?: string, likely = false): StoredAnswer | undefined {
    const bytes = this.readerFor(fromJob).readHex(key, likely);
    return bytes && parseAnswer(bytes);
  }

  private readerFor(fromJob: string | undefined): AnswerReader {
    if (!this.reader || this.reader.fromJob !== fromJob)
      this.reader = {
        fromJob,
        reader: new AnswerReader({
          objects: path.join(this.root, 'objects'),
          ...(fromJob !== undefined ? { tag: jobTag(fromJob) } : {}),
        }),
      };
    return this.reader.reader;
  }

  lookup(fromJob: string | undefined, filter: KeyFilter | undefined): AnswerLookup {
    return {
      objects: path.join(this.root, 'objects'),
      ...(fromJob !== undefined ? { tag: jobTag(fromJob) } : {}),
      ...(filter ? { filter: filter.shared() } : {}),
    };
  }

  hasJob(jobId: string): boolean {
    return fs.existsSync(path.join(this.root, 'jobs', `${jobTag(jobId)}.json`));
  }

  writer(jobId: string): LocalAnswerWriter {
    const tag = jobTag(jobId);
    let written = 0;
    let registered = false;
    let keys: Buffer[] = [];
    let legacy = false;
    return {
      put: (key, answer) => {
        const at = customIdRange(answer.result, answer.customId);
        if (!at) return false;
        if (!registered) {
          legacy = !this.markKeyed();
          this.registerJob(jobId, tag);
          registered = true;
        }
        const dir = this.dirOf(key);
        this.mkdir(dir);
        const own = path.join(dir, `${key}.${tag}`);
        const tmp = `${own}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
        const bytes = answerRecord(jobId, answer, at);
        fs.writeFileSync(tmp, bytes);
        fs.renameSync(tmp, own);
        written += bytes.length;
        keys.push(Buffer.from(key, 'hex'));
        try {
          // The shared name, if no job holds it yet: link() refuses to replace, so of two writers
          // exactly one wins and the name always points at one whole answer.
          fs.linkSync(own, path.join(dir, key));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        return true;
      },
      close: () => {
        if (written === 0) return;
        this.addLedgerEntry(`${Date.now()}-${process.pid}-${randomBytes(4).toString('hex')}-${written}`, [
          Buffer.concat(keys),
        ]);
        written = 0;
        keys = [];
        // A store written before key lists: one walk lists every key, then filters may be trusted.
        if (legacy || this.ledgerBytes() > this.maxBytes) this.evict();
      },
    };
  }

  /**
   * Marks a new store as keeping key lists (before its first answer, so that no answer of it can
   * lack one); false for a store that has answers and no mark (written before key lists existed).
   */
  private markKeyed(): boolean {
    if (fs.existsSync(this.keysMark)) return true;
    if (fs.existsSync(path.join(this.root, 'objects'))) return false;
    this.mkdir(this.root);
    try {
      fs.writeFileSync(this.keysMark, '', { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    return true;
  }

  /**
   * A ledger entry named `name` holding `parts` (key lists), written whole under tmp/ and renamed
   * in, so a reader never sees a half-written entry (short of a power loss, which at worst tears
   * its tail: keys missed are reuses lost, stray bytes are false positives).
   */
  private addLedgerEntry(name: string, parts: Buffer[]): void {
    const ledger = path.join(this.root, 'ledger');
    const tmpDir = path.join(this.root, 'tmp');
    this.mkdir(ledger);
    this.mkdir(tmpDir);
    const tmp = path.join(tmpDir, name);
    fs.writeFileSync(tmp, Buffer.concat(parts));
    fs.renameSync(tmp, path.join(ledger, name));
  }

  private registerJob(jobId: string, tag: string): void {
    const dir = path.join(this.root, 'jobs');
    this.mkdir(dir);
    try {
      fs.writeFileSync(path.join(dir, `${tag}.json`), JSON.stringify({ jobId }), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }

  private mkdir(dir: string): void {
    if (this.made.has(dir)) return;
    fs.mkdirSync(dir, { recursive: true });
    this.made.add(dir);
  }

  /** The store's size as the ledger tells it (an upper bound: overwritten answers count twice). */
  ledgerBytes(): number {
    let total = 0;
    for (const name of readdirOrEmpty(path.join(this.root, 'ledger')))
      total += Number(name.split('-').pop()) || 0;
    return total;
  }

  /**
   * Evicts the oldest answers until the store is at most EVICT_TO of its bound. Memory: one entry
   * per distinct minute of the answers' ages, not per answer. One process at a time; another
   * finding the lock held leaves the work to it.
   */
  evict(): { before: number; after: number; removed: number } | undefined {
    const lock = path.join(this.root, 'evicting');
    try {
      fs.mkdirSync(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age < STALE_LOCK_MS) return undefined;
      fs.rmSync(lock, { recursive: true, force: true });
      return this.evict();
    }
    try {
      const ledger = path.join(this.root, 'ledger');
      const accounted = readdirOrEmpty(ledger);
      // Pass 1: bytes by minute of last modification (a file's bytes shared by its links count once).
      const byMinute = new Map<number, number>();
      let before = 0;
      this.walk((_, st) => {
        const bytes = st.size / Math.max(1, st.nlink);
        const minute = Math.floor(st.mtimeMs / 60_000);
        byMinute.set(minute, (byMinute.get(minute) ?? 0) + bytes);
        before += bytes;
      });
      let after = before;
      let cutoff = -Infinity;
      const target = this.maxBytes * EVICT_TO;
      for (const minute of [...byMinute.keys()].sort((a, b) => a - b)) {
        if (after <= target) break;
        after -= byMinute.get(minute)!;
        cutoff = minute + 1;
      }
      // Pass 2: remove every name older than the cutoff minute, and list the keys that stay.
      let removed = 0;
      const keys = new KeyListFile(path.join(this.root, 'tmp'));
      try {
        this.walk((file, st) => {
          if (cutoff > -Infinity && Math.floor(st.mtimeMs / 60_000) < cutoff) {
            fs.rmSync(file, { force: true });
            removed++;
          } else keys.addName(path.basename(file));
        });
        // The new base entry goes in before the entries it replaces go out: a plan reading the
        // ledger meanwhile sees some keys twice, never none.
        this.mkdir(ledger);
        keys.commit(path.join(ledger, `${Date.now()}-${process.pid}-base-${Math.ceil(after)}`));
      } finally {
        keys.abandon();
      }
      for (const name of accounted) fs.rmSync(path.join(ledger, name), { force: true });
      try {
        fs.writeFileSync(this.keysMark, '', { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      this.removeStaleTmp();
      return { before: Math.ceil(before), after: Math.ceil(after), removed };
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }

  /** Ledger entries a crashed writer left half-written. */
  private removeStaleTmp(): void {
    const dir = path.join(this.root, 'tmp');
    for (const name of readdirOrEmpty(dir)) {
      const file = path.join(dir, name);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) fs.rmSync(file, { force: true });
    }
  }

  private walk(visit: (file: string, st: fs.Stats) => void): void {
    const objects = path.join(this.root, 'objects');
    for (const a of readdirOrEmpty(objects))
      for (const b of readdirOrEmpty(path.join(objects, a)))
        for (const name of readdirOrEmpty(path.join(objects, a, b)).sort()) {
          const file = path.join(objects, a, b, name);
          const st = fs.statSync(file, { throwIfNoEntry: false });
          if (st?.isFile()) visit(file, st);
        }
  }
}

/** A key list written as an eviction walk finds keys: a bounded buffer, flushed to a temporary file. */
class KeyListFile {
  private readonly tmp: string;
  private fd: number | undefined;
  private readonly buf = Buffer.allocUnsafe(KEY_BYTES << 16);
  private n = 0;
  private last = '';

  constructor(tmpDir: string) {
    fs.mkdirSync(tmpDir, { recursive: true });
    this.tmp = path.join(tmpDir, `base-${process.pid}-${randomBytes(4).toString('hex')}`);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  /**
   * The key of an object's file name (`<key>` or `<key>.<jobTag>`; a temporary file is none).
   * Names of one key sit in one folder, so skipping a repeat of the last key drops most repeats.
   */
  addName(name: string): void {
    const key = name.slice(0, KEY_BYTES * 2);
    if (name.length !== key.length && (name[key.length] !== '.' || name.includes('.tmp-'))) return;
    if (key === this.last || !/^[0-9a-f]{32}$/.test(key)) return;
    this.last = key;
    if (this.n + KEY_BYTES > this.buf.length) this.flush();
    this.buf.write(key, this.n, 'hex');
    this.n += KEY_BYTES;
  }

  private flush(): void {
    fs.writeSync(this.fd!, this.buf, 0, this.n);
    this.n = 0;
  }

  commit(to: string): void {
    this.flush();
    fs.closeSync(this.fd!);
    this.fd = undefined;
    fs.renameSync(this.tmp, to);
  }

  abandon(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.tmp, { force: true });
  }
}

const objectDir = (objects: string, key: string): string =>
  path.join(objects, key.slice(0, 2), key.slice(2, 4));

/**
 * Reads stored answers' files by key, on whichever thread holds it (the planner's scan threads
 * read the likely hits of their lines, so the main thread does not wait on the disk for them).
 */
export class AnswerReader {
  private readonly spec: AnswerLookup;
  private readonly filter: KeyFilter | undefined;
  private readonly buf = Buffer.allocUnsafe(64 * 1024);

  constructor(spec: AnswerLookup) {
    this.spec = spec;
    this.filter = spec.filter && KeyFilter.fromShared(spec.filter);
  }

  /** The file of key[at, at + 16), or undefined when the filter rules it out or none is stored. */
  read(key: Uint8Array, at: number): Buffer | undefined {
    if (this.filter && !this.filter.mayHold(key, at)) return undefined;
    const hex = Buffer.from(key.buffer, key.byteOffset + at, KEY_BYTES).toString('hex');
    return this.readHex(hex, this.filter !== undefined);
  }

  /**
   * The file of `key` (hex), or undefined. `likely`: a filter said it may be stored, so the open
   * alone is cheapest; otherwise half the lookups or more miss, and a stat that returns undefined
   * is far cheaper than the exception a failed open throws.
   */
  readHex(key: string, likely: boolean): Buffer | undefined {
    const base = path.join(objectDir(this.spec.objects, key), key);
    const file = this.spec.tag === undefined ? base : `${base}.${this.spec.tag}`;
    if (!likely && !fs.statSync(file, { throwIfNoEntry: false })) return undefined;
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      return this.readAll(fd);
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A file's bytes in as few system calls as its size allows (one read for most answers). */
  private readAll(fd: number): Buffer {
    let n = fs.readSync(fd, this.buf, 0, this.buf.length, 0);
    if (n < this.buf.length) return Buffer.from(this.buf.subarray(0, n));
    const out = Buffer.allocUnsafe(Math.max(fs.fstatSync(fd).size, n));
    this.buf.copy(out, 0, 0, n);
    while (n < out.length) {
      const got = fs.readSync(fd, out, n, out.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return out.subarray(0, n);
  }
}

/** An answer as stored: `<meta JSON>\n<result line>` (`at`: where its custom_id sits). */
export function answerRecord(jobId: string, answer: NewAnswer, at: [number, number]): Buffer {
  const meta: AnswerMeta = {
    job: jobId,
    model: answer.model,
    usage: answer.usage,
    at,
    n: answer.result.byteLength,
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(meta)}\n`), answer.result]);
}

/** A stored file's answer, or undefined when it is torn (shorter than its header says). */
export function parseAnswer(bytes: Buffer): StoredAnswer | undefined {
  const nl = bytes.indexOf(10);
  if (nl < 0) return undefined;
  try {
    const meta = JSON.parse(bytes.toString('utf8', 0, nl)) as AnswerMeta;
    if (bytes.length - nl - 1 !== meta.n) return undefined;
    return { meta, result: bytes.subarray(nl + 1) };
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
