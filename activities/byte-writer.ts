// A file written from byte ranges, for the merge's hot loop: lines are copied into a 1 MiB buffer
// and written a MiB at a time, double-buffered (one write runs while the next buffer fills), so a
// line costs a memcpy, not a string, an encode and an awaited stream write. A local file is written
// under a temporary name and committed through storage/atomic-file.ts with the durability it needs;
// any other sink (an object's streamed upload, storage/byte-io.ts) commits as that sink does.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { commitFile, ensureDirSync, tempNameFor, type Durability } from '../storage/atomic-file.ts';
import type { ByteSink } from '../storage/byte-io.ts';

const CHUNK = 1 << 20;
const NL = 10;
/** Buffers of committed writers, reused: a merge opens a writer per shard. */
const spare: Buffer[] = [];
const MAX_SPARE = 8;
const take = (): Buffer => spare.pop() ?? Buffer.allocUnsafe(CHUNK);

/** A local file under a temporary name until commit. */
class FileSink implements ByteSink {
  private readonly file: string;
  private readonly tmp: string;
  private readonly durability: Durability;
  private fh: fsp.FileHandle | undefined;

  constructor(file: string, durability: Durability) {
    this.file = file;
    this.durability = durability;
    this.tmp = tempNameFor(file);
    ensureDirSync(path.dirname(file), durability);
  }

  async write(data: Uint8Array): Promise<void> {
    this.fh ??= await fsp.open(this.tmp, 'w');
    await this.fh.write(data);
  }

  async commit(): Promise<void> {
    this.fh ??= await fsp.open(this.tmp, 'w');
    const fh = this.fh;
    this.fh = undefined;
    await commitFile(fh, this.tmp, this.file, this.durability);
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    await fsp.rm(this.tmp, { force: true });
  }
}

export class ByteWriter {
  private readonly sink: ByteSink;
  private buf = take();
  private spare = take();
  private used = 0;
  private inFlight: Promise<void> | undefined;
  /** A failed background write (ENOSPC, EIO…), thrown by the next flush or commit. */
  private failure: Error | undefined;
  bytes = 0;

  /** A local file, committed with `durability`; or any sink. */
  constructor(file: string, durability: Durability);
  constructor(sink: ByteSink);
  constructor(to: string | ByteSink, durability?: Durability) {
    this.sink = typeof to === 'string' ? new FileSink(to, durability!) : to;
  }

  /** Appends src[start, end) and a newline. Returns a promise only when the caller must wait. */
  line(src: Uint8Array, start: number, end: number): Promise<void> | undefined {
    const len = end - start + 1;
    this.bytes += len;
    if (this.used + len > CHUNK) return this.lineSlow(src, start, end);
    this.buf.set(src.subarray(start, end), this.used);
    this.used += len - 1;
    this.buf[this.used++] = NL;
    return undefined;
  }

  /**
   * Appends a short string, then `src`, then a newline: an outcome record is a header written here
   * and the provider's line kept as bytes.
   */
  headed(head: string, src: Uint8Array): Promise<void> | undefined {
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    if (this.used + head.length * 3 + src.length + 1 > CHUNK) {
      const b = Buffer.concat([Buffer.from(head), src]);
      return this.line(b, 0, b.length);
    }
    const n = this.buf.write(head, this.used);
    this.buf.set(src, this.used + n);
    this.used += n + src.length;
    this.buf[this.used++] = NL;
    this.bytes += n + src.length + 1;
    return undefined;
  }

  /** Appends a string and a newline (rare lines: failures, placeholders). */
  text(s: string): Promise<void> | undefined {
    const b = Buffer.from(s);
    return this.line(b, 0, b.length);
  }

  /** Appends bytes as they are. */
  async raw(data: Uint8Array): Promise<void> {
    this.bytes += data.length;
    await this.flush();
    await this.settle();
    await this.sink.write(data);
  }

  private async lineSlow(src: Uint8Array, start: number, end: number): Promise<void> {
    await this.flush();
    if (end - start + 1 > CHUNK) {
      await this.settle();
      await this.sink.write(src.subarray(start, end));
      await this.sink.write(Buffer.from('\n'));
      return;
    }
    this.buf.set(src.subarray(start, end), 0);
    this.used = end - start;
    this.buf[this.used++] = NL;
  }

  private async settle(): Promise<void> {
    await this.inFlight;
    if (this.failure) throw this.failure;
  }

  private async flush(): Promise<void> {
    await this.settle();
    if (this.used === 0) return;
    this.inFlight = this.sink.write(this.buf.subarray(0, this.used)).then(
      () => undefined,
      (err: Error) => {
        this.failure ??= err;
      },
    );
    [this.buf, this.spare] = [this.spare, this.buf];
    this.used = 0;
  }

  /** Writes what is buffered and commits: a file is renamed into place as its durability asks. */
  async commit(): Promise<void> {
    await this.flush();
    await this.settle();
    this.release();
    await this.sink.commit();
  }

  /** Hands the (idle) buffers back for the next writer; this writer is done. */
  private release(): void {
    for (const b of [this.buf, this.spare]) if (b.length === CHUNK && spare.length < MAX_SPARE) spare.push(b);
    this.buf = this.spare = Buffer.alloc(0);
  }

  /** Drops what was written (on failure). */
  async abort(): Promise<void> {
    await this.inFlight;
    this.release();
    await this.sink.abort();
  }
}
