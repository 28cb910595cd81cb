// Appends lines to a file that is itself a checkpoint (read back when an activity resumes), from
// several concurrent tasks. Every append is a promise the caller awaits, through a FileHandle: a
// failed write (ENOSPC, EIO, a folder made read-only) rejects the append that made it instead of
// coming as an 'error' event that nobody listens to (which kills the whole worker process), and no
// caller gets ahead of the disk, so memory holds at most one line per caller. Appends run one at a
// time, so lines never interleave. Written, not fsynced: a crashed worker loses nothing the kernel
// has; a crashed machine loses the last lines, which the resumed activity produces again.
import fsp from 'node:fs/promises';

export class LineAppender {
  readonly file: string;
  private readonly fh: fsp.FileHandle;
  /** The last append queued: the next one starts when it ends. */
  private tail: Promise<void> = Promise.resolve();
  /** The first failed write: every append after it fails the same way (the file may end mid-line). */
  private failure: unknown;
  private failed = false;

  private constructor(file: string, fh: fsp.FileHandle) {
    this.file = file;
    this.fh = fh;
  }

  /** Opens `file` for appending (creating it); rejects as the open does (EACCES, EPERM, EROFS…). */
  static async open(file: string): Promise<LineAppender> {
    return new LineAppender(file, await fsp.open(file, 'a'));
  }

  /** Appends `line` and a newline; resolves once the kernel has it. */
  append(line: string): Promise<void> {
    const data = Buffer.from(`${line}\n`);
    const write = this.tail.then(async () => {
      if (this.failed) throw this.failure;
      try {
        await this.fh.appendFile(data);
      } catch (err) {
        this.failed = true;
        this.failure = err;
        throw err;
      }
    });
    this.tail = write.catch(() => undefined);
    return write;
  }

  /** Waits for the queued appends and closes the file (whatever they did). */
  async close(): Promise<void> {
    await this.tail;
    await this.fh.close();
  }
}
