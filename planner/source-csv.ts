// CSV input turned into chunks of request lines: each row becomes one chat request line (csv.ts)
// written into a slot, with the row's line number and offset kept beside it (a row may span
// several physical lines). Rows that cannot become a request (not UTF-8, missing the columns, too
// large) are refused here, before scanning, and reported in line order with the scanned ones.
import { formatBytes } from '../common/units.ts';
import {
  CsvReader,
  csvColumns,
  csvPositions,
  csvRequestLine,
  type CsvOptions,
  type CsvRecord,
} from './csv.ts';
import type { InputBytes } from './input-bytes.ts';
import type { ChunkMeta, ChunkSlots, ChunkSource, LineStart, ReadChunk } from './source.ts';

export class CsvSource implements ChunkSource {
  eof = false;
  /** Read front to back for the scan, and out of order to re-read earlier rows (idOnLine). */
  private readonly bytes: InputBytes;
  private readonly input: string;
  private readonly csv: CsvOptions;
  private readonly endpoint: string;
  private readonly slots: ChunkSlots;
  private readonly maxLineBytes: number;
  private readonly reader: CsvReader;
  private cols: { id: number; prompt: number } | undefined;
  /** A row read that did not fit the previous chunk: the next one starts with it. */
  private pendingRow: CsvRecord | undefined;
  private processedBytes = 0;

  /** `maxLineBytes` is named in a refused row's message. */
  readonly ready: (() => Promise<void>) | undefined;

  constructor(
    input: string,
    bytes: InputBytes,
    csv: CsvOptions,
    endpoint: string,
    slots: ChunkSlots,
    maxLineBytes: number,
  ) {
    this.input = input;
    this.bytes = bytes;
    this.csv = csv;
    this.endpoint = endpoint;
    this.slots = slots;
    this.maxLineBytes = maxLineBytes;
    this.reader = new CsvReader(bytes.readOn.bind(bytes), 0, 1, slots.bytes);
    // About a slot's worth of rows, awaited before a chunk is filled; a chunk that needs more (its
    // rows grow into longer request lines) reads the rest as it goes.
    const ready = bytes.ready?.bind(bytes);
    this.ready = ready && (() => ready(this.reader.position, this.slots.bytes));
  }

  get bytesRead(): number {
    return this.processedBytes;
  }

  /** Finds the id and prompt columns: from the header row, or from positions when there is none. */
  start(): void {
    if (this.csv.header === false) {
      this.cols = csvPositions(this.csv, this.input);
      return;
    }
    const header = this.reader.next();
    if (!header) {
      this.eof = true;
      return;
    }
    this.cols = csvColumns(header.fields, this.csv, this.input);
  }

  read(): ReadChunk | undefined {
    const { u8, buf } = this.slots;
    const slot = this.slots.take();
    const base = slot * this.slots.bytes;
    const cap = this.slots.bytes;
    const meta: ChunkMeta = { slot, base, fileOffset: 0, lineNos: [], offsets: [], extras: [], cursor: 0 };
    let len = 0;
    for (;;) {
      const row = this.pendingRow ?? this.reader.next();
      this.pendingRow = undefined;
      if (!row) {
        this.eof = true;
        break;
      }
      const text = this.requestLine(row, meta);
      if (text === undefined) continue;
      const bytes = Buffer.byteLength(text);
      if (len + bytes + 1 > cap) {
        this.pendingRow = row;
        break;
      }
      buf.write(text, base + len, 'utf8');
      len += bytes;
      u8[base + len++] = 0x0a;
      meta.lineNos!.push(row.line);
      meta.offsets!.push(row.offset);
    }
    this.processedBytes = this.reader.position;
    if (len === 0 && meta.extras!.length === 0) {
      this.slots.unused(slot);
      return undefined;
    }
    return { meta, len };
  }

  /** The request line for `row`, or undefined when the row is refused (added to meta.extras). */
  private requestLine(row: CsvRecord, meta: ChunkMeta): string | undefined {
    const cols = this.cols!;
    const csv = this.csv;
    const need = Math.max(cols.id, cols.prompt);
    const id = row.fields?.[cols.id];
    const refuse = (code: string, message: string): undefined => {
      meta.extras!.push({
        line: row.line,
        offset: row.offset,
        problem: { code, message, ...(id ? { customId: id } : {}) },
      });
      return undefined;
    };
    if (!row.fields) return refuse('invalid_utf8', 'row is not valid UTF-8 text: save the CSV as UTF-8');
    if (row.fields.length <= need) {
      return refuse(
        'csv_missing_field',
        `row has ${row.fields.length} fields but the ${row.fields.length <= cols.id ? `id column "${csv.idColumn}"` : `prompt column "${csv.promptColumn}"`} is field ${need + 1}: check the row's commas and quotes`,
      );
    }
    const text = csvRequestLine(row.fields[cols.id]!, row.fields[cols.prompt]!, csv, this.endpoint);
    if (Buffer.byteLength(text) + 1 > this.slots.bytes) {
      return refuse(
        'line_too_large',
        `row converts to a ${formatBytes(Buffer.byteLength(text))} request, over the limit of ${formatBytes(this.maxLineBytes)} per line (--max-line-bytes): shorten the prompt`,
      );
    }
    return text;
  }

  idOnLine(from: LineStart, line: number): string | undefined {
    const reader = new CsvReader(
      this.bytes.readAt.bind(this.bytes),
      from.offset,
      from.line,
      this.slots.bytes,
    );
    for (let row = reader.next(); row; row = reader.next()) {
      if (row.line === line) return row.fields?.[this.cols!.id];
      if (row.line > line) return undefined;
    }
    return undefined;
  }

  close(): void {
    this.bytes.close();
  }
}
