// One classified line as stored between collection and merge, and the byte scanners that read it
// back, side by side: the merge reads millions of records without parsing them, and that holds
// only while the encoder below writes the keys in the order the scanners expect.
//
// A record is a JSON header, a tab, and the provider's result line as it came (possibly empty):
//   {"i":<line>,"k":"<kind>","a":<attempt>,"cid":"<custom_id>"[,"u":[p,c,t]][,"e":{…}]}\t<result>
// The short keys keep the header small (one per request line, often millions); the names below
// are what the code uses. A header never holds a raw tab or newline (JSON escapes them in
// strings), and a result holding a raw tab (JSON allows one between tokens) is re-encoded first
// (`resultBytes`), so the first tab ends the header.
import type { LineClass, LineError } from '../activities/classify.ts';

/** [prompt_tokens, completion_tokens, total_tokens]. */
export type Usage = [number, number, number];

export interface OutcomeRecord {
  /** Index of the line within its original (round-1) shard. */
  line: number;
  kind: LineClass;
  /** Attempts so far: the round this outcome came from; 0 when the line was never sent. */
  attempt: number;
  customId: string;
  usage?: Usage;
  error?: LineError;
}

/** The header keys on disk, by field. */
const KEY = { line: 'i', kind: 'k', attempt: 'a', customId: 'cid', usage: 'u', error: 'e' } as const;

const TAB = 9;
const COMMA = 0x2c;
const LINE_PREFIX = Buffer.from(`{"${KEY.line}":`);
const OK_KIND = Buffer.from(`,"${KEY.kind}":"ok"`);
const USAGE_PREFIX = Buffer.from(`,"${KEY.usage}":[`);

function isIndex(n: number): boolean {
  return Number.isInteger(n) && n >= 0;
}

/** The record up to its result: the header and the tab. Keys in the order the scanners read. */
export function encodeOutcomeHead(r: OutcomeRecord): string {
  if (!isIndex(r.line) || !isIndex(r.attempt)) {
    throw new Error(`outcome record needs whole, non-negative line and attempt: ${r.line}, ${r.attempt}`);
  }
  let head = `{"${KEY.line}":${r.line},"${KEY.kind}":${JSON.stringify(r.kind)},"${KEY.attempt}":${r.attempt},"${KEY.customId}":${JSON.stringify(r.customId)}`;
  if (r.usage) head += `,"${KEY.usage}":${JSON.stringify(r.usage)}`;
  if (r.error) head += `,"${KEY.error}":${JSON.stringify(r.error)}`;
  return `${head}}\t`;
}

/** A whole record as text (rare records: lines that never got a result; tests). */
export function encodeOutcome(r: OutcomeRecord, resultJson: string): string {
  return `${encodeOutcomeHead(r)}${resultJson}`;
}

/** The provider's line as stored: as it came, unless it holds a raw tab (then re-encoded). */
export function resultBytes(line: Buffer, parsed: unknown): Buffer {
  return line.includes(TAB) ? Buffer.from(JSON.stringify(parsed)) : line;
}

function malformed(text: string): Error {
  return new Error(`malformed outcome record: ${text.slice(0, 80)}`);
}

/** The header's JSON, with its short keys turned into names. */
function recordFrom(json: string): OutcomeRecord {
  const h = JSON.parse(json) as Record<string, unknown>;
  const line = h[KEY.line];
  const kind = h[KEY.kind];
  const attempt = h[KEY.attempt];
  const customId = h[KEY.customId];
  if (typeof line !== 'number' || typeof attempt !== 'number' || typeof customId !== 'string')
    throw malformed(json);
  if (kind !== 'ok' && kind !== 'retry' && kind !== 'permanent') throw malformed(json);
  const r: OutcomeRecord = { line, kind, attempt, customId };
  if (h[KEY.usage] !== undefined) r.usage = h[KEY.usage] as Usage;
  if (h[KEY.error] !== undefined) r.error = h[KEY.error] as LineError;
  return r;
}

/** A record read back from text: its fields and its result (the provider's line, or ''). */
export function decodeOutcome(text: string): { record: OutcomeRecord; result: string } {
  const tab = text.indexOf('\t');
  if (tab === -1) return { record: recordFrom(text), result: '' };
  return { record: recordFrom(text.slice(0, tab)), result: text.slice(tab + 1) };
}

// ---- byte scanners: buf[at, end) is one record without its newline ------------------------------

/** Where the header of the record at buf[at, end) ends: at its tab, or `end` when there is none. */
export function outcomeHeadEnd(buf: Uint8Array, at: number, end: number): number {
  const tab = buf.indexOf(TAB, at);
  return tab === -1 || tab > end ? end : tab;
}

/** The header of the record at buf[at, headEnd), parsed (the merge's slow path: failed lines). */
export function decodeOutcomeHead(buf: Buffer, at: number, headEnd: number): OutcomeRecord {
  return recordFrom(buf.toString('utf8', at, headEnd));
}

/**
 * Where the digits of the record's leading `{"i":<n>,` end (at the comma), without parsing the
 * rest; throws on a record that does not start so.
 */
export function outcomeLineEnd(buf: Uint8Array, at: number, end: number): number {
  const from = at + LINE_PREFIX.length;
  let p = from;
  while (p < end && buf[p]! >= 48 && buf[p]! <= 57) p++;
  let ok = p > from && p < end && buf[p] === COMMA;
  for (let k = 0; ok && k < LINE_PREFIX.length; k++) ok = buf[at + k] === LINE_PREFIX[k];
  if (!ok) throw malformed(Buffer.from(buf.subarray(at, Math.min(end, at + 80))).toString());
  return p;
}

/** The line index of the record at buf[at, end), without parsing the (possibly large) result. */
export function outcomeLineAt(buf: Uint8Array, at: number, end: number): number {
  const stop = outcomeLineEnd(buf, at, end);
  let n = 0;
  for (let p = at + LINE_PREFIX.length; p < stop; p++) n = n * 10 + (buf[p]! - 48);
  return n;
}

/** Whether the record succeeded; `lineEnd` is outcomeLineEnd's answer (the kind follows it). */
export function outcomeIsOk(buf: Buffer, lineEnd: number): boolean {
  return buf.compare(OK_KIND, 0, OK_KIND.length, lineEnd, lineEnd + OK_KIND.length) === 0;
}

/**
 * The record's usage into `out` (three token counts); false when it has none. Searches the header
 * only, buf[lineEnd, headEnd): the custom_id before it cannot hold the pattern (a quote in a JSON
 * string is escaped).
 */
export function outcomeUsage(buf: Buffer, lineEnd: number, headEnd: number, out: number[]): boolean {
  const at = buf.indexOf(USAGE_PREFIX, lineEnd);
  if (at === -1 || at >= headEnd) return false;
  let p = at + USAGE_PREFIX.length;
  for (let k = 0; k < 3; k++) {
    let n = 0;
    for (let c = buf[p]!; c >= 48 && c <= 57; c = buf[++p]!) n = n * 10 + (c - 48);
    out[k] = n;
    p++;
  }
  return true;
}
