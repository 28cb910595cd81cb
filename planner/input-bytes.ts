// The input's bytes as the planner reads them: front to back for the scan, and now and then out of
// order (an earlier line's custom_id, when two ids' hashes meet). Both reads are synchronous, as the
// planner's loop is; a source that must wait for its bytes (an object in a store) says so through
// `ready`, which the planner awaits between chunks, so that a read rarely blocks.
import fs from 'node:fs';

export interface InputBytes {
  readonly size: number;
  /**
   * Fills buf[off, off + len) with the bytes from `pos` of a front-to-back read (the next call
   * asks for what follows, so a source may read ahead): the count, short only at the end.
   */
  readOn(buf: Uint8Array, off: number, len: number, pos: number): number;
  /** As readOn, for bytes out of order: it never disturbs what is read ahead. */
  readAt(buf: Uint8Array, off: number, len: number, pos: number): number;
  /** Resolves once bytes [pos, pos + len) of the front-to-back read are at hand; absent: always. */
  ready?(pos: number, len: number): Promise<void>;
  close(): void;
}

/** A local file: positioned reads through two descriptors, every read answered at once. */
export class FileBytes implements InputBytes {
  readonly size: number;
  private readonly fd: number;
  /** A second descriptor for out-of-order reads, independent of the scan's. */
  private readonly atFd: number;
  private closed = false;

  constructor(file: string, size: number) {
    this.size = size;
    this.fd = fs.openSync(file, 'r');
    try {
      this.atFd = fs.openSync(file, 'r');
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
  }

  readOn(buf: Uint8Array, off: number, len: number, pos: number): number {
    return fs.readSync(this.fd, buf, off, len, pos);
  }

  readAt(buf: Uint8Array, off: number, len: number, pos: number): number {
    return fs.readSync(this.atFd, buf, off, len, pos);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
    fs.closeSync(this.atFd);
  }
}
