// How an activity works on a job's files wherever they live. The activities' code reads and writes
// local files (byte scanners, positioned reads, sidecars); a Workspace gives it a local work folder:
//
//   - local storage: the job's own `<out>/.batchpilot`; pulls and pushes do nothing, so a local
//     job behaves (and its bytes are) exactly as without a store;
//   - object storage: a fresh folder under the worker's scratch root, filled on demand by `pull`
//     (objects are the truth, scratch a cache), committed by `push`, and removed by `release` at the
//     activity's end. Scratch may be lost at any time: every activity pulls what it needs at its start
//     and commits what it produced before it returns, so a retry on another worker starts from the
//     objects alone.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { clearWorkDir, JOB_RECORD_NAME, RUN_DIR_NAME, WORK_DIR_NAME } from './layout.ts';
import { isS3Uri, outLocationOf, workLocationOf } from './location.ts';
import { ObjectInput } from './object-input.ts';
import { ObjectStore, parseS3Uri, type ObjectStoreOptions } from './s3.ts';
import { fileBody, LocalStore, S3Store, type JobStore } from './store.ts';

const WORK = `${WORK_DIR_NAME}/`;

export interface StoresOptions {
  /** BATCHPILOT_SCRATCH_DIR: where workers keep their per-activity scratch folders. */
  scratchDir?: string;
  /** Options of the S3 client (normally the environment's AWS_* decide). */
  s3?: ObjectStoreOptions;
}

export const defaultScratchDir = (): string => path.join(os.tmpdir(), 'batchpilot-scratch');

/**
 * The stores of one process: one S3 client for all (its socket pool is shared, and sized for a
 * merge's fan-in), made on first use so that a local-only worker never builds one.
 */
export class Stores {
  private objects: ObjectStore | undefined;
  readonly scratchDir: string;
  private readonly opts: StoresOptions;

  constructor(opts: StoresOptions = {}) {
    this.opts = opts;
    this.scratchDir = opts.scratchDir ?? defaultScratchDir();
  }

  objectStore(): ObjectStore {
    return (this.objects ??= new ObjectStore(this.opts.s3));
  }

  /**
   * The object `uri` (of `size` bytes) as the planner's input, read in place through this process's
   * S3 settings.
   */
  objectInput(uri: string, size: number): ObjectInput {
    return new ObjectInput(parseS3Uri(uri), size, this.opts.s3);
  }

  /** The store rooted at an output location (a local folder or an `s3://` prefix). */
  forOut(out: string): JobStore {
    return isS3Uri(out) ? new S3Store(this.objectStore(), parseS3Uri(out)) : new LocalStore(out);
  }

  /** A single file or object (a job's input): its store and key. */
  forFile(file: string): { store: JobStore; key: string } {
    if (!isS3Uri(file)) return { store: new LocalStore(path.dirname(file)), key: path.basename(file) };
    const loc = parseS3Uri(file);
    return { store: new S3Store(this.objectStore(), { bucket: loc.bucket, key: '' }), key: loc.key };
  }

  /**
   * A workspace on the job whose work folder is `workDir` (a path or an `s3://` URI). `step` names
   * its scratch folder (`<step>-<random>`), so that an operator (or a test) can tell which step
   * holds how much of a worker's scratch.
   */
  async workspace(workDir: string, step = 'a'): Promise<Workspace> {
    const out = outLocationOf(workDir);
    const store = this.forOut(out);
    if (store.kind === 'local') return new Workspace(store, workDir, out, undefined);
    const scratch = path.join(this.scratchDir, `${step}-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(scratch, { recursive: true });
    return new Workspace(store, path.join(scratch, WORK_DIR_NAME), path.join(scratch, 'out'), scratch);
  }

  close(): void {
    this.objects?.close();
    this.objects = undefined;
  }
}

/** Runs `fn` on a workspace and releases its scratch, however `fn` ends. */
export async function withWorkspace<T>(
  stores: Stores,
  workDir: string,
  fn: (ws: Workspace) => Promise<T>,
  step?: string,
): Promise<T> {
  const ws = await stores.workspace(workDir, step);
  try {
    return await fn(ws);
  } finally {
    await ws.release();
  }
}

export class Workspace {
  /** The store rooted at the job's output location. */
  readonly store: JobStore;
  /** The local work folder the activity reads and writes (layout.ts's paths go under it). */
  readonly dir: string;
  /** The local folder of the outputs: the job's own `<out>` on local storage (unused on objects). */
  readonly outDir: string;
  private readonly scratch: string | undefined;

  constructor(store: JobStore, dir: string, outDir: string, scratch: string | undefined) {
    this.store = store;
    this.dir = dir;
    this.outDir = outDir;
    this.scratch = scratch;
  }

  /** True when files live in object storage and this workspace is a scratch copy. */
  get remote(): boolean {
    return this.scratch !== undefined;
  }

  /** The job's work location as it travels in workflow inputs. */
  get workLocation(): string {
    return workLocationOf(this.store.root);
  }

  local(key: string): string {
    return path.join(this.dir, ...key.split('/'));
  }

  /**
   * Makes the work file `key` present locally (when it exists in the store) and returns its local
   * path. A copy already in scratch with the object's size is kept.
   */
  async pull(key: string): Promise<string> {
    const file = this.local(key);
    if (!this.remote) return file;
    const size = await this.store.size(WORK + key);
    if (size === undefined) return file;
    const have = await fsp.stat(file).catch(() => undefined);
    if (have?.size === size) return file;
    await this.download(WORK + key, file);
    return file;
  }

  /** Pulls every work file under `prefix` that `want` accepts (all by default). */
  async pullPrefix(prefix: string, want: (key: string) => boolean = () => true): Promise<void> {
    if (!this.remote) return;
    const keys: string[] = [];
    for await (const o of this.store.list(WORK + prefix)) {
      const key = o.key.slice(WORK.length);
      if (want(key)) keys.push(key);
    }
    for (let i = 0; i < keys.length; i += 16)
      await Promise.all(keys.slice(i, i + 16).map((k) => this.pull(k)));
  }

  private async download(storeKey: string, file: string): Promise<void> {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.pull-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(await this.store.read(storeKey), fs.createWriteStream(tmp));
      await fsp.rename(tmp, file);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Commits the local work file `key` to the store (streamed; multipart when large). With
   * `ifAbsent`, an object already there is kept and false returned.
   */
  async push(key: string, opts: { ifAbsent?: boolean } = {}): Promise<boolean> {
    if (!this.remote) return true;
    return this.store.write(WORK + key, fileBody(this.local(key)), opts);
  }

  /**
   * Commits a finished local file under the work key `key` and drops it from scratch, for a step
   * that writes many files it does not read again: scratch then holds only those still being written.
   */
  async pushAndDrop(key: string, file: string): Promise<void> {
    if (!this.remote) return;
    await this.store.write(WORK + key, fileBody(file));
    await fsp.rm(file, { force: true });
  }

  /** Pushes every local work file under `prefix`, the keys `last` accepts after all others. */
  async pushPrefix(prefix: string, last: (key: string) => boolean = () => false): Promise<void> {
    if (!this.remote) return;
    const root = this.local(prefix);
    const names = await fsp.readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
    const keys = names
      .filter((e) => e.isFile())
      .map((e) => path.relative(this.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    const first = keys.filter((k) => !last(k));
    for (let i = 0; i < first.length; i += 8)
      await Promise.all(first.slice(i, i + 8).map((k) => this.push(k)));
    for (const k of keys.filter(last)) await this.push(k);
  }

  /** Whether the work file `key` exists (in the store: the truth, not scratch). */
  async has(key: string): Promise<boolean> {
    if (!this.remote) return fs.existsSync(this.local(key));
    return (await this.store.size(WORK + key)) !== undefined;
  }

  /** Removes a work file, or a folder of them, from the store (and scratch). */
  async remove(key: string): Promise<void> {
    await fsp.rm(this.local(key), { recursive: true, force: true });
    if (!this.remote) return;
    await this.store.delete(WORK + key);
    await this.store.deletePrefix(`${WORK}${key}/`);
  }

  /** Drops scratch copies no longer needed, keeping scratch to what the current step uses. */
  async evict(...keys: string[]): Promise<void> {
    if (!this.remote) return;
    for (const k of keys) await fsp.rm(this.local(k), { recursive: true, force: true });
  }

  async release(): Promise<void> {
    if (this.scratch) await fsp.rm(this.scratch, { recursive: true, force: true });
  }
}

/**
 * Removes the job's intermediate files, as layout.ts's clearWorkDir does for a local folder: `run/`
 * stays, and the job record with `keepRecord`.
 */
export async function clearWork(ws: Workspace, keepRecord: boolean): Promise<void> {
  if (!ws.remote) return clearWorkDir(ws.dir, keepRecord);
  const keep = (key: string): boolean =>
    key.startsWith(`${WORK}${RUN_DIR_NAME}/`) || (keepRecord && key === WORK + JOB_RECORD_NAME);
  await ws.store.deletePrefix(WORK, keep);
}
