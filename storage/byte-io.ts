// Byte sources and sinks for the merge, which reads many files at once and writes two large ones:
// a local file through its descriptor, or an object in a store read ahead in ranged chunks and
// written as one streamed (multipart) upload. Local files keep the synchronous reads the merge's hot
// loop was tuned for; an object's source answers synchronously from the chunk it holds and asks the
// caller to wait only when it has none.
import fs from 'node:fs';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { JobStore } from './store.ts';

/** Bytes read front to back. */
export interface ByteSource {
  /**
   * Copies up to `len` bytes into buf[off…): the count (0 at the end), or undefined when none are
   * at hand yet (then `ready()` resolves once some are).
   */
  readSync(buf: Buffer, off: number, len: number): number | undefined;
  ready(): Promise<void>;
  close(): void;
}

/** A local file through a descriptor: every read is answered at once. */
export class FileSource implements ByteSource {
  private readonly fd: number;
  private pos = 0;
  constructor(file: string) {
    this.fd = fs.openSync(file, 'r');
  }
  readSync(buf: Buffer, off: number, len: number): number {
    const n = fs.readSync(this.fd, buf, off, len, this.pos);
    this.pos += n;
    return n;
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

const FETCH_ATTEMPTS = 3;

/**
 * The bytes the merge's read buffers hold in this process right now and at most since the last
 * `resetPeak`: an object source's chunks (the one it hands out and the one in flight, counted from
 * when its GET is asked) and the merge's own line buffers. The merge sizes these to its budget;
 * this is how a test (or an operator's debugger) can see that it does.
 */
export const readBuffers = {
  held: 0,
  peak: 0,
  hold(bytes: number): void {
    this.held += bytes;
    if (this.held > this.peak) this.peak = this.held;
  },
  release(bytes: number): void {
    this.held -= bytes;
  },
  resetPeak(): void {
    this.peak = this.held;
  },
};

/**
 * An object read in ranged GETs of `chunk` bytes, at most one in flight: the first is fetched at
 * once; the second when the first is used up (a shard in the merge reads one line, then may wait
 * long for its turn: meanwhile it holds one chunk and no socket); from then on each next one as soon
 * as the one before it is handed out, so a reader moving through the object rarely waits. A ranged GET is short, so no connection idles for the length
 * of a merge, and a failed one is asked again without starting the object over.
 */
export class ObjectSource implements ByteSource {
  private readonly store: JobStore;
  private readonly key: string;
  private readonly size: number;
  private readonly chunk: number;
  private current: Buffer | undefined;
  private at = 0;
  /** Where the next chunk to fetch starts. */
  private next = 0;
  private pending: Promise<Buffer> | undefined;
  /** The size of the chunk in flight, counted in readBuffers until it is handed out or dropped. */
  private pendingBytes = 0;
  private closed = false;
  private taken = 0;
  private failure: Error | undefined;

  private constructor(store: JobStore, key: string, size: number, chunk: number) {
    this.store = store;
    this.key = key;
    this.size = size;
    this.chunk = chunk;
    this.fetchNext();
  }

  static async open(store: JobStore, key: string, chunk: number): Promise<ObjectSource> {
    const size = await store.size(key);
    if (size === undefined) throw new Error(`${store.describe(key)} is missing`);
    return new ObjectSource(store, key, size, chunk);
  }

  private fetchNext(): void {
    if (this.pending || this.next >= this.size) return;
    const start = this.next;
    const end = Math.min(this.size, start + this.chunk) - 1;
    this.next = end + 1;
    this.pendingBytes = end - start + 1;
    readBuffers.hold(this.pendingBytes);
    this.pending = this.fetch(start, end);
    // Kept until awaited; a failure is reported by the read that needs the chunk.
    this.pending.catch((err: Error) => {
      this.failure ??= err;
    });
  }

  private async fetch(start: number, end: number): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const parts: Buffer[] = [];
        for await (const b of await this.store.read(this.key, { start, end })) parts.push(b as Buffer);
        const got = Buffer.concat(parts);
        if (got.length !== end - start + 1)
          throw new Error(
            `${this.store.describe(this.key)}: ${got.length} bytes at ${start}, not ${end - start + 1}`,
          );
        return got;
      } catch (err) {
        if (attempt >= FETCH_ATTEMPTS) throw err;
      }
    }
  }

  readSync(buf: Buffer, off: number, len: number): number | undefined {
    if (this.failure) throw this.failure;
    if (!this.current || this.at === this.current.length) {
      if (!this.pending && this.next < this.size) this.fetchNext();
      return this.pending ? undefined : 0;
    }
    const n = this.current.copy(buf, off, this.at, Math.min(this.current.length, this.at + len));
    this.at += n;
    return n;
  }

  async ready(): Promise<void> {
    if (this.current && this.at < this.current.length) return;
    if (!this.pending) return;
    const got = await this.pending;
    if (this.closed) return;
    // The chunk used up is dropped; the one in flight is now the one held (counted already).
    if (this.current) readBuffers.release(this.current.length);
    this.current = got;
    this.at = 0;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (++this.taken > 1) this.fetchNext();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.current) readBuffers.release(this.current.length);
    this.current = undefined;
    // A chunk still in flight is counted until its GET ends.
    const inFlight = this.pendingBytes;
    if (this.pending)
      void this.pending.then(
        () => readBuffers.release(inFlight),
        () => readBuffers.release(inFlight),
      );
    this.pending = undefined;
  }
}

/** Bytes written front to back and committed whole, or dropped. */
export interface ByteSink {
  /** Takes `data`; the caller may reuse its buffer once the promise resolves. */
  write(data: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * An object written as it is produced: one streamed upload (multipart past one part), which the
 * store commits only when the stream ends. Aborted, the upload is dropped and nothing appears under
 * the key; a process killed mid-write leaves only an incomplete multipart upload, which no reader
 * sees (docs/fleet.md: the bucket's lifecycle rule removes it).
 */
export class ObjectSink implements ByteSink {
  private readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<boolean>;
  private failure: Error | undefined;

  constructor(store: JobStore, key: string) {
    this.done = store.write(key, this.stream);
    this.done.catch((err: Error) => {
      this.failure ??= err;
    });
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    // Copied: the stream keeps what it is given until the upload reads it, and the writer reuses
    // its buffers.
    if (this.stream.write(Buffer.from(data))) return;
    await Promise.race([
      once(this.stream, 'drain'),
      this.done.then(() => {
        throw new Error('the upload ended before its stream');
      }),
    ]);
  }

  async commit(): Promise<void> {
    if (this.failure) throw this.failure;
    this.stream.end();
    await this.done;
  }

  async abort(): Promise<void> {
    this.stream.destroy(new Error('the merge stopped before this output was whole'));
    await this.done.catch(() => undefined);
  }
}
