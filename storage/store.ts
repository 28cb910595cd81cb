// Where a job's files live, as one interface with two implementations: a local folder (the
// embedded default) and S3-compatible object storage. A store is rooted at a job's output location
// (`<out>`); keys are `/`-separated and relative to it: the outputs by their names (`results.jsonl`),
// work files as `.batchpilot/<workKey>` (layout.ts). docs/on-disk.md, "Storage", describes both.
//
// Every write is whole or nothing under its key: the local folder renames a finished temporary
// file into place (atomic-file.ts, durably), an object store commits a PUT or a multipart upload
// in one step. `ifAbsent` writes only where nothing exists yet, so a retried step never replaces
// what an earlier attempt committed.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AtomicWriter, writeFileAtomic, writeFileIfAbsent } from './atomic-file.ts';
import { isNotFound, ObjectExistsError, s3Uri, type ObjectStore, type S3Location } from './s3.ts';

export interface StoredObject {
  /** Relative to the store's root. */
  key: string;
  size: number;
}

export interface JobStore {
  /** The root as a user writes it: a local folder's path or `s3://bucket/prefix`. */
  readonly root: string;
  readonly kind: 'local' | 's3';
  /** Where `key` is, for messages. */
  describe(key: string): string;
  /** The size in bytes, or undefined when there is nothing under `key`. */
  size(key: string): Promise<number | undefined>;
  /** Size and last modification time, or undefined when there is nothing under `key`. */
  stat(key: string): Promise<{ size: number; mtimeMs: number } | undefined>;
  /** The bytes under `key` as a stream; `range` is inclusive on both ends. Fails when absent. */
  read(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  /** A small object's bytes, or undefined when absent. */
  readBytes(key: string): Promise<Buffer | undefined>;
  /** Writes `body` under `key` whole; with `ifAbsent`, false (and nothing written) when one exists. */
  write(key: string, body: Readable | Buffer | string, opts?: { ifAbsent?: boolean }): Promise<boolean>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncGenerator<StoredObject>;
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix` whose key `keep` does not claim. */
  deletePrefix(prefix: string, keep?: (key: string) => boolean): Promise<void>;
}

const isTemporary = (name: string): boolean => /\.tmp-\d+-[a-z0-9]+$/.test(name) || name.endsWith('.tmp');

async function toBuffer(body: Readable | Buffer | string): Promise<Buffer | string> {
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** A local folder: keys are paths under it; writes are atomic and durable (atomic-file.ts). */
export class LocalStore implements JobStore {
  readonly kind = 'local';
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  fileOf(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  describe(key: string): string {
    return this.fileOf(key);
  }

  async size(key: string): Promise<number | undefined> {
    return (await this.stat(key))?.size;
  }

  async stat(key: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    const st = await fsp.stat(this.fileOf(key)).catch(() => undefined);
    return st?.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : undefined;
  }

  async read(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const file = this.fileOf(key);
    // Opened before returning, so that a missing file fails here rather than in the reader.
    const fh = await fsp.open(file, 'r');
    return fh.createReadStream({
      ...(range ? { start: range.start, ...(range.end !== undefined ? { end: range.end } : {}) } : {}),
      highWaterMark: 1 << 20,
    });
  }

  async readBytes(key: string): Promise<Buffer | undefined> {
    return fsp.readFile(this.fileOf(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async write(
    key: string,
    body: Readable | Buffer | string,
    opts: { ifAbsent?: boolean } = {},
  ): Promise<boolean> {
    const file = this.fileOf(key);
    // Conditional writes are for markers and summaries, which are small: link() needs the whole
    // file under its temporary name first.
    if (opts.ifAbsent) return writeFileIfAbsent(file, await toBuffer(body));
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      await writeFileAtomic(file, body, 'durable');
      return true;
    }
    const w = new AtomicWriter(file, 'durable');
    try {
      for await (const chunk of body) await w.write(chunk as Buffer);
      await w.commit();
    } catch (err) {
      await w.abort();
      throw err;
    }
    return true;
  }

  async *list(prefix: string): AsyncGenerator<StoredObject> {
    // Listed from the deepest folder the prefix names, then filtered by the whole prefix.
    const cut = prefix.lastIndexOf('/');
    const base = cut === -1 ? '' : prefix.slice(0, cut);
    const dir = this.fileOf(base);
    const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    const found: StoredObject[] = [];
    for (const e of entries) {
      if (!e.isFile() || isTemporary(e.name)) continue;
      const file = path.join(e.parentPath, e.name);
      const key = path.relative(this.root, file).split(path.sep).join('/');
      if (key.startsWith(prefix)) found.push({ key, size: fs.statSync(file).size });
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.fileOf(key), { force: true });
  }

  async deletePrefix(prefix: string, keep?: (key: string) => boolean): Promise<void> {
    for await (const o of this.list(prefix)) if (!keep?.(o.key)) await this.delete(o.key);
  }
}

/** S3-compatible object storage under `s3://bucket/prefix`. */
export class S3Store implements JobStore {
  readonly kind = 's3';
  readonly root: string;
  private readonly prefix: string;
  private readonly objects: ObjectStore;
  private readonly base: S3Location;

  constructor(objects: ObjectStore, base: S3Location) {
    this.objects = objects;
    this.base = base;
    this.prefix = base.key === '' || base.key.endsWith('/') ? base.key : `${base.key}/`;
    this.root = s3Uri({ bucket: base.bucket, key: this.prefix }).replace(/\/$/, '');
  }

  private at(key: string): S3Location {
    return { bucket: this.base.bucket, key: this.prefix + key };
  }

  describe(key: string): string {
    return s3Uri(this.at(key));
  }

  size(key: string): Promise<number | undefined> {
    return this.objects.size(this.at(key));
  }

  stat(key: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    return this.objects.stat(this.at(key));
  }

  read(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    return this.objects.read(this.at(key), range);
  }

  async readBytes(key: string): Promise<Buffer | undefined> {
    let stream: Readable;
    try {
      stream = await this.objects.read(this.at(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return (await toBuffer(stream)) as Buffer;
  }

  async write(
    key: string,
    body: Readable | Buffer | string,
    opts: { ifAbsent?: boolean } = {},
  ): Promise<boolean> {
    try {
      await this.objects.write(this.at(key), body, opts);
      return true;
    } catch (err) {
      if (err instanceof ObjectExistsError) return false;
      throw err;
    }
  }

  async *list(prefix: string): AsyncGenerator<StoredObject> {
    for await (const o of this.objects.list(this.at(prefix)))
      yield { key: o.key.slice(this.prefix.length), size: o.size };
  }

  delete(key: string): Promise<void> {
    return this.objects.delete(this.at(key));
  }

  async deletePrefix(prefix: string, keep?: (key: string) => boolean): Promise<void> {
    const doomed: string[] = [];
    for await (const o of this.list(prefix)) if (!keep?.(o.key)) doomed.push(o.key);
    // A few deletes at a time: a work folder holds thousands of objects.
    for (let i = 0; i < doomed.length; i += 32)
      await Promise.all(doomed.slice(i, i + 32).map((k) => this.delete(k)));
  }
}

/** A stream of a local file, for writing it to a store. */
export const fileBody = (file: string): Readable => fs.createReadStream(file, { highWaterMark: 1 << 20 });

/** Reads `key` into a buffer of its text, or undefined. */
export async function readText(store: JobStore, key: string): Promise<string | undefined> {
  return (await store.readBytes(key))?.toString('utf8');
}
