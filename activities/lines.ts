// Streaming line I/O with bounded memory: a reader that yields each line with its byte offset, and
// a writer that writes to a temporary name and renames on close, so a crash never leaves a half
// file that looks whole (inputs and outputs can be many gigabytes).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';

export interface Line {
  /** Line content without the trailing newline (or CR LF). */
  text: string;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Bytes of the line including its newline. */
  length: number;
}

/** A line as bytes: a view into the chunk it came in, valid until the next line is taken. */
export interface ByteLine {
  /** Line content without the trailing newline (or CR LF). */
  bytes: Buffer;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Bytes of the line including its newline. */
  length: number;
}

/** Yields the non-empty lines of a file in order. */
export function readLines(file: string, highWaterMark = 1 << 20): AsyncGenerator<Line> {
  return splitLines(fs.createReadStream(file, { highWaterMark }));
}

/** Yields the non-empty lines of a file in order, as bytes. */
export function readByteLines(file: string, highWaterMark = 1 << 20): AsyncGenerator<ByteLine> {
  return splitByteLines(fs.createReadStream(file, { highWaterMark }));
}

/** Splits a byte stream into non-empty lines (LF or CRLF), tracking byte offsets. */
export async function* splitLines(source: AsyncIterable<Uint8Array>): AsyncGenerator<Line> {
  for await (const l of splitByteLines(source)) {
    yield { text: l.bytes.toString('utf8'), offset: l.offset, length: l.length };
  }
}

/**
 * Splits a byte stream into non-empty lines (LF or CRLF) without decoding them: for the hot paths
 * that keep a line's bytes as they came (collection writes ~1M provider lines a job).
 */
export async function* splitByteLines(source: AsyncIterable<Uint8Array>): AsyncGenerator<ByteLine> {
  let carry: Buffer | null = null;
  let carryOffset = 0;
  let position = 0;
  for await (const raw of source) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const base = carry ? carryOffset : position;
    position += chunk.length;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl;
      if (end > start)
        yield { bytes: buf.subarray(start, end), offset: base + start, length: nl + 1 - start };
      start = nl + 1;
    }
    carry = start < buf.length ? buf.subarray(start) : null;
    carryOffset = base + start;
  }
  if (carry && carry.length > 0) {
    const end = carry[carry.length - 1] === 13 ? carry.length - 1 : carry.length;
    if (end > 0) yield { bytes: carry.subarray(0, end), offset: carryOffset, length: carry.length };
  }
}

/** How many newlines `b` holds: a line count for files that end in one. */
export function countNewlines(b: Buffer): number {
  let n = 0;
  for (let at = b.indexOf(10); at !== -1; at = b.indexOf(10, at + 1)) n++;
  return n;
}

const ID_PREFIX = Buffer.from('{"custom_id":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The custom_id of a request line the planner accepted. Read straight from the bytes when the line
 * starts with it and it has no escapes (the planner refuses a line that names custom_id twice, so
 * that is the one); parsed otherwise. Collection reads every line of a unit this way, and parsing
 * ~1 KB of JSON per line for one field cost more than the rest of collection.
 */
export function customIdOf(line: Buffer): string {
  const from = ID_PREFIX.length;
  if (line.length > from && line.compare(ID_PREFIX, 0, from, 0, from) === 0) {
    const end = line.indexOf(QUOTE, from);
    if (end !== -1 && line.subarray(from, end).indexOf(BACKSLASH) === -1) {
      return line.toString('utf8', from, end);
    }
  }
  return (JSON.parse(line.toString('utf8')) as { custom_id: string }).custom_id;
}

/** A file written under `<name>.tmp-<pid>` and renamed into place by `commit()`. */
export class AtomicWriter {
  readonly file: string;
  private readonly tmp: string;
  private readonly stream: fs.WriteStream;
  bytes = 0;
  lines = 0;
  private failure: Error | undefined;

  constructor(file: string) {
    this.file = file;
    this.tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
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

  /** Flushes, fsyncs and renames the file into place. */
  async commit(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) => {
      this.stream.on('error', reject);
      this.stream.end(() => resolve());
    });
    const fh = await fsp.open(this.tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(this.tmp, this.file);
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

/** Writes a small JSON file atomically. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const w = new AtomicWriter(file);
  await w.write(JSON.stringify(value, null, 2) + '\n');
  await w.commit();
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
}
