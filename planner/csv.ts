// CSV input (RFC 4180: quoted fields, doubled quotes, commas and newlines inside quotes), read as a
// stream of records and turned into request lines the way the providers' own converter does: one
// chat request per row, custom_id from the id column, the prompt as the user message, an optional
// system message, the model from the command line.
import { InputError } from './errors.ts';

export interface CsvOptions {
  /**
   * False: the file has no header row (the providers' own CSV: custom_id in column 1, content in
   * column 2) and the columns are 1-based positions. True or absent: the first row names them.
   */
  header?: boolean;
  idColumn: string;
  promptColumn: string;
  model: string;
  system?: string;
}

export interface CsvRecord {
  /** 1-based physical line where the record starts. */
  line: number;
  /** Byte offset where the record starts. */
  offset: number;
  /** Field texts, or undefined when the record is not valid UTF-8. */
  fields: string[] | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Fills buf[off, off + len) with the input's bytes from `pos`: the count, short only at the end. */
export type ReadBytes = (buf: Uint8Array, off: number, len: number, pos: number) => number;

/** Reads records one by one through `read`, from `offset` (a record start) on. Memory: one record. */
export class CsvReader {
  private readonly read: ReadBytes;
  private readonly buf = Buffer.allocUnsafe(1 << 16);
  private bufLen = 0;
  private bufPos = 0;
  private filePos: number;
  private line: number;
  private readonly maxRecordBytes: number;
  private acc = new Uint8Array(1 << 12);

  constructor(read: ReadBytes, offset = 0, line = 1, maxRecordBytes = 64 << 20) {
    this.read = read;
    this.filePos = offset;
    this.line = line;
    this.maxRecordBytes = maxRecordBytes;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.filePos - (this.bufLen - this.bufPos);
  }

  private byte(): number {
    if (this.bufPos === this.bufLen) {
      this.bufLen = this.read(this.buf, 0, this.buf.length, this.filePos);
      this.filePos += this.bufLen;
      this.bufPos = 0;
      if (this.bufLen === 0) return -1;
    }
    return this.buf[this.bufPos++]!;
  }

  private peek(): number {
    const c = this.byte();
    if (c >= 0) this.bufPos--;
    return c;
  }

  next(): CsvRecord | undefined {
    for (;;) {
      const offset = this.position;
      const line = this.line;
      if (offset === 0 && this.peekBom()) continue;
      const bounds: number[] = [];
      let n = 0;
      let c = this.byte();
      if (c < 0) return undefined;
      if (c === 0x0a || (c === 0x0d && this.peek() === 0x0a)) {
        if (c === 0x0d) this.byte();
        this.line++;
        continue; // a blank line is no record
      }
      let quoted = false;
      let fieldStart = true;
      for (;;) {
        if (c < 0) break;
        if (quoted) {
          if (c === 0x22) {
            if (this.peek() === 0x22) {
              this.byte();
              n = this.put(n, 0x22);
            } else quoted = false;
          } else {
            if (c === 0x0a) this.line++;
            n = this.put(n, c);
          }
        } else if (c === 0x22 && fieldStart) {
          quoted = true;
          fieldStart = false;
        } else if (c === 0x2c) {
          bounds.push(n);
          fieldStart = true;
        } else if (c === 0x0a || (c === 0x0d && this.peek() === 0x0a)) {
          if (c === 0x0d) this.byte();
          this.line++;
          break;
        } else {
          n = this.put(n, c);
          fieldStart = false;
        }
        c = this.byte();
      }
      if (quoted && c < 0) {
        throw new InputError(
          `CSV record starting at line ${line} has a quote that never closes: check the quoting near that line`,
        );
      }
      bounds.push(n);
      let fields: string[] | undefined = [];
      try {
        let a = 0;
        for (const b of bounds) {
          fields.push(utf8.decode(this.acc.subarray(a, b)));
          a = b;
        }
      } catch {
        fields = undefined;
      }
      return { line, offset, fields };
    }
  }

  private peekBom(): boolean {
    if (this.peek() !== 0xef) return false;
    const save = this.bufPos;
    if (this.byte() === 0xef && this.byte() === 0xbb && this.byte() === 0xbf) return true;
    this.bufPos = save;
    return false;
  }

  private put(n: number, c: number): number {
    if (n === this.acc.length) {
      if (n >= this.maxRecordBytes) {
        throw new InputError(
          `CSV record starting at line ${this.line} is over ${this.maxRecordBytes} bytes: an unclosed quote?`,
        );
      }
      const bigger = new Uint8Array(n * 2);
      bigger.set(this.acc);
      this.acc = bigger;
    }
    this.acc[n] = c;
    return n + 1;
  }
}

/** Column indexes (0-based) from the 1-based positions of a CSV without a header. */
export function csvPositions(opts: CsvOptions, file: string): { id: number; prompt: number } {
  const at = (text: string, flag: string): number => {
    if (!/^[1-9]\d*$/.test(text))
      throw new InputError(
        `${file}: ${flag} "${text}" must be a column position (1, 2, …) when the CSV has no header`,
      );
    return Number(text) - 1;
  };
  return { id: at(opts.idColumn, '--id-column'), prompt: at(opts.promptColumn, '--prompt-column') };
}

/** Column positions of the id and prompt columns, or an error naming the header it found. */
export function csvColumns(
  header: string[] | undefined,
  opts: CsvOptions,
  file: string,
): { id: number; prompt: number } {
  if (!header) throw new InputError(`${file}: the CSV header is not valid UTF-8`);
  const find = (name: string, flag: string): number => {
    const at = header.findIndex((h) => h.trim() === name);
    if (at < 0) {
      throw new InputError(
        `${file}: no CSV column "${name}" (${flag}); the header has: ${header.map((h) => JSON.stringify(h)).join(', ')}`,
      );
    }
    return at;
  };
  return { id: find(opts.idColumn, '--id-column'), prompt: find(opts.promptColumn, '--prompt-column') };
}

/** The request line for one CSV row (without newline). */
export function csvRequestLine(id: string, prompt: string, opts: CsvOptions, endpoint: string): string {
  const messages: { role: string; content: string }[] = [];
  if (opts.system !== undefined && opts.system !== '')
    messages.push({ role: 'system', content: opts.system });
  messages.push({ role: 'user', content: prompt });
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: endpoint,
    body: { model: opts.model, messages },
  });
}
