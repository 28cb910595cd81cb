// How a file appears under its final name: written under a temporary name beside it and renamed
// when complete, so a reader (or a crash) never finds half a file under the final name. What
// survives a power loss is a separate choice, made per file by its `Durability`:
//
//   'durable'      the data is fsynced before the rename, and the folder after it, so once the
//                  call returns the file is there with its bytes after a crash. For files that
//                  say something is done and are not rebuilt: commit markers (job.json,
//                  plan.json, a round's manifest.json, collected markers), the outcomes a marker
//                  vouches for, and the outputs users read.
//   'rebuildable'  rename only. For files rebuilt when found incomplete (the merge's final/ files
//                  are checked by their line count before reuse), where an fsync per file would
//                  only cost time.
//
// A commit marker is only as good as the files it covers: those are made durable first (the
// planner fsyncs each shard and sidecar before the round's manifest; collection commits the
// outcome files before the collected marker). docs/on-disk.md lists which file takes which.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';

export type Durability = 'durable' | 'rebuildable';

/** A fresh temporary name beside `file`: two writers of one file never share one. */
export function tempNameFor(file: string): string {
  return `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * fsyncs a file, or a folder (which makes its entries, a rename into it or a file created in it,
 * survive a crash).
 */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await fsp.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function syncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates `dir` and its missing parents; for durable files also the parents' entries of the
 * folders created, so that a durable file inside is reachable after a crash.
 */
export function ensureDirSync(dir: string, durability: Durability): void {
  const first = fs.mkdirSync(dir, { recursive: true });
  if (first === undefined || durability !== 'durable') return;
  for (let d = dir; ; d = path.dirname(d)) {
    syncDirSync(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
}

/** Renames the finished temporary file into place; `fh` is its open handle, closed here. */
export async function commitFile(
  fh: fsp.FileHandle,
  tmp: string,
  file: string,
  durability: Durability,
): Promise<void> {
  try {
    if (durability === 'durable') await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  if (durability === 'durable') await fsyncPath(path.dirname(file));
}

/** Writes a whole (small) file atomically. */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  durability: Durability,
): Promise<void> {
  ensureDirSync(path.dirname(file), durability);
  const tmp = tempNameFor(file);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data).catch(async (err: unknown) => {
      await fh.close();
      throw err;
    });
    await commitFile(fh, tmp, file, durability);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** The same, for the planner's synchronous main thread. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, durability: Durability): void {
  ensureDirSync(path.dirname(file), durability);
  const tmp = tempNameFor(file);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      if (durability === 'durable') fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (durability === 'durable') syncDirSync(path.dirname(file));
}

/**
 * Writes a whole file only if none is there yet (durably): false when one is. Two writers racing
 * for one name: exactly one wins, and neither sees the other's half file. Through link(), which
 * refuses to replace a name, unlike rename().
 */
export async function writeFileIfAbsent(file: string, data: string | Uint8Array): Promise<boolean> {
  ensureDirSync(path.dirname(file), 'durable');
  const tmp = tempNameFor(file);
  try {
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
  await fsyncPath(path.dirname(file));
  return true;
}

/** A small JSON file, written atomically (pretty, with a final newline). */
export function writeJsonAtomic(
  file: string,
  value: unknown,
  durability: Durability = 'durable',
): Promise<void> {
  return writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', durability);
}

/**
 * A streamed text file under a temporary name, renamed into place by `commit()`: for files written
 * line by line from strings (a retry round's units, results.csv). The merge's byte-level writer is
 * activities/byte-writer.ts, committed the same way.
 */
export class AtomicWriter {
  readonly file: string;
  private readonly tmp: string;
  private readonly durability: Durability;
  private readonly stream: fs.WriteStream;
  bytes = 0;
  lines = 0;
  private failure: Error | undefined;

  constructor(file: string, durability: Durability = 'durable') {
    this.file = file;
    this.durability = durability;
    this.tmp = tempNameFor(file);
    ensureDirSync(path.dirname(file), durability);
    this.stream = fs.createWriteStream(this.tmp, { highWaterMark: 1 << 20 });
    // An open or write failure (EACCES, EPERM, EROFS, ENOSPC) comes as an 'error' event, often
    // before anyone listens: kept here and thrown by the next write or commit, never left
    // unhandled (an unhandled 'error' event kills the whole worker process).
    this.stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  /** Writes one line (a newline is added); waits when the buffer is full. */
  async writeLine(text: string): Promise<void> {
    const data = text + '\n';
    this.bytes += Buffer.byteLength(data);
    this.lines++;
    await this.push(data);
  }

  async write(data: Buffer | string): Promise<void> {
    this.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    await this.push(data);
  }

  private async push(data: Buffer | string): Promise<void> {
    if (this.failure) throw this.failure;
    // `once` rejects if the stream fails while we wait for 'drain'.
    if (!this.stream.write(data)) await once(this.stream, 'drain');
  }

  /** Flushes, then renames the file into place as its durability asks. */
  async commit(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) => {
      this.stream.on('error', reject);
      this.stream.end(() => resolve());
    });
    await commitFile(await fsp.open(this.tmp, 'r'), this.tmp, this.file, this.durability);
  }

  /** Drops the temporary file (on failure). */
  async abort(): Promise<void> {
    // The stream opens its file asynchronously: wait until it is closed, or the open could create
    // the temporary file again after it was removed.
    if (!this.stream.closed) {
      const closed = once(this.stream, 'close').catch(() => undefined);
      this.stream.destroy();
      await closed;
    }
    await fsp.rm(this.tmp, { force: true });
  }
}
