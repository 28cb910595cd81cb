// Reads a JSONL file line by line from a byte offset without ever holding more than one line (and
// never more than `maxLineBytes` of it): a 500 MB file or a 500 MB single line stays out of memory.
import fs from 'node:fs';

export interface Line {
  /** The line without its newline (and without a trailing `\r`); null when it exceeded the cap. */
  text: Buffer | null;
  /** Length in bytes without the newline. */
  bytes: number;
  /** Byte offset just after this line's newline: where a resumed read starts. */
  end: number;
}

export async function* readLines(
  file: string,
  opts: { start?: number; maxLineBytes?: number } = {},
): AsyncGenerator<Line> {
  const cap = opts.maxLineBytes ?? Number.MAX_SAFE_INTEGER;
  let offset = opts.start ?? 0;
  let parts: Buffer[] = [];
  let length = 0;
  let tooLong = false;
  const finish = (): Line => {
    let text = tooLong ? null : Buffer.concat(parts, length);
    let bytes = length;
    if (text && text.at(-1) === 0x0d) {
      text = text.subarray(0, -1);
      bytes -= 1;
    }
    parts = [];
    length = 0;
    tooLong = false;
    return { text, bytes, end: offset };
  };
  const take = (piece: Buffer): void => {
    length += piece.length;
    if (tooLong) return;
    if (length > cap) {
      tooLong = true;
      parts = [];
    } else {
      parts.push(piece);
    }
  };
  for await (const chunk of fs.createReadStream(file, { start: offset, highWaterMark: 256 * 1024 })) {
    const buf = chunk as Buffer;
    let from = 0;
    for (let nl = buf.indexOf(0x0a, from); nl !== -1; nl = buf.indexOf(0x0a, from)) {
      take(buf.subarray(from, nl));
      offset += nl - from + 1;
      from = nl + 1;
      yield finish();
    }
    if (from < buf.length) {
      // Copy: the stream may reuse its chunk buffers.
      take(Buffer.from(buf.subarray(from)));
      offset += buf.length - from;
    }
  }
  if (length > 0) yield finish();
}
