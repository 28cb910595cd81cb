// One classified line as stored between collection and merge: a small JSON header, a tab, and the
// provider's result line (JSON.stringify output never holds a raw tab, so the split is safe).
import type { LineClass, LineError } from './classify.ts';

export interface OutcomeHeader {
  /** Line index within the original shard. */
  i: number;
  k: LineClass;
  /** Attempts so far: the round this outcome came from. */
  a: number;
  cid: string;
  u?: [number, number, number];
  e?: LineError;
}

export function encodeOutcome(header: OutcomeHeader, resultJson: string): string {
  return `${outcomeHead(header)}${resultJson}`;
}

/** The record up to its result: the header and the tab. */
export function outcomeHead(header: OutcomeHeader): string {
  return `${JSON.stringify(header)}\t`;
}

export function decodeOutcome(line: string): { header: OutcomeHeader; result: string } {
  const tab = line.indexOf('\t');
  if (tab === -1) return { header: JSON.parse(line) as OutcomeHeader, result: '' };
  return { header: JSON.parse(line.slice(0, tab)) as OutcomeHeader, result: line.slice(tab + 1) };
}

const INDEX_PREFIX = Buffer.from('{"i":');
const COMMA = 0x2c;

/**
 * Where the digits of the record's leading `{"i":<n>,` end (at the comma), read from buf[at, end)
 * without parsing the rest (outcomeHead writes `i` first); throws on a record that does not start so.
 */
export function outcomeIndexEnd(buf: Uint8Array, at: number, end: number): number {
  const from = at + INDEX_PREFIX.length;
  let p = from;
  while (p < end && buf[p]! >= 48 && buf[p]! <= 57) p++;
  let ok = p > from && p < end && buf[p] === COMMA;
  for (let k = 0; ok && k < INDEX_PREFIX.length; k++) ok = buf[at + k] === INDEX_PREFIX[k];
  if (!ok) {
    const text = Buffer.from(buf.subarray(at, Math.min(end, at + 80))).toString();
    throw new Error(`malformed outcome record: ${text}`);
  }
  return p;
}

/** The line index of the record at buf[at, end), without parsing the (possibly large) result. */
export function outcomeIndexAt(buf: Uint8Array, at: number, end: number): number {
  const stop = outcomeIndexEnd(buf, at, end);
  let n = 0;
  for (let p = at + INDEX_PREFIX.length; p < stop; p++) n = n * 10 + (buf[p]! - 48);
  return n;
}
