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

/** Reads only the line index, without parsing the (possibly large) result. */
export function outcomeIndex(line: string): number {
  const m = /^\{"i":(\d+),/.exec(line);
  if (!m) throw new Error(`malformed outcome record: ${line.slice(0, 80)}`);
  return Number(m[1]);
}
