// Streaming line reads with bounded memory: a reader that yields each line with its byte offset
// (inputs and outputs can be many gigabytes). Files are written through storage/atomic-file.ts.
import fs from 'node:fs';
import fsp from 'node:fs/promises';

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

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
}
