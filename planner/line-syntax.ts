// What to tell about a line that is not valid JSON (or not UTF-8, or holds a NUL byte): where it
// breaks and how to fix it, and a hint when the line looks like CSV given as JSONL.
import { isUtf8 } from 'node:buffer';
import type { LineProblems } from './line-problems.ts';
import {
  E_CONTROL,
  E_DEPTH,
  E_ESCAPE,
  E_NUL,
  E_NUMBER,
  E_TRAILING,
  E_TRUNCATED,
  MAX_DEPTH,
  type Scan,
} from './scan-result.ts';

/** A short printable view of a line's start, for messages about lines that are not JSON. */
function preview(u8: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(u8.buffer, u8.byteOffset + start, Math.min(end - start, 40)).toString('utf8');
  return JSON.stringify(text + (end - start > 40 ? '...' : ''));
}

const byteName = (c: number | undefined): string =>
  c === undefined
    ? 'end of line'
    : c >= 0x21 && c < 0x7f
      ? `'${String.fromCharCode(c)}'`
      : `byte 0x${c.toString(16).padStart(2, '0')}`;

function looksLikeCsv(u8: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && (u8[i] === 0x20 || u8[i] === 0x09)) i++;
  if (u8[i] === 0x7b || u8[i] === 0x5b) return false;
  for (let j = i; j < end; j++) if (u8[j] === 0x2c || u8[j] === 0x3b) return true;
  return false;
}

const CSV_HINT =
  'this looks like CSV, not JSONL: give the file a .csv extension and convert it with --prompt-column, --id-column and --model';

/** Adds the problem of line u8[start, end), whose scan `s` failed, to `problems`. */
export function syntaxProblem(
  problems: LineProblems,
  s: Scan,
  u8: Uint8Array,
  start: number,
  end: number,
  utf8Checked: boolean,
): void {
  const at = s.errPos - start + 1;
  if (s.err === E_NUL) {
    problems.add(
      'nul_byte',
      `line has a NUL byte at byte ${at}: the file looks binary or corrupted; remove NUL bytes`,
    );
    return;
  }
  const csv = looksLikeCsv(u8, start, end);
  if (!utf8Checked && !isUtf8(u8.subarray(start, end))) {
    problems.add(
      'invalid_utf8',
      'line is not valid UTF-8 text (the file looks binary): save the input as UTF-8 JSONL',
    );
    return;
  }
  if (s.err === E_TRUNCATED) {
    problems.add(
      'truncated_json',
      `line ends before its JSON does (after ${end - start} bytes): the line looks cut off; each request must be one complete JSON object on one line${csv ? `; ${CSV_HINT}` : ''}`,
    );
    return;
  }
  const what =
    s.err === E_CONTROL
      ? `a raw control character (${byteName(u8[s.errPos])}) inside a string at byte ${at}: escape it, e.g. \\n or \\t`
      : s.err === E_ESCAPE
        ? `a bad escape sequence at byte ${at}`
        : s.err === E_NUMBER
          ? `a malformed number at byte ${at}`
          : s.err === E_TRAILING
            ? `extra text after the JSON value at byte ${at} (${byteName(u8[s.errPos])}): put one request per line`
            : s.err === E_DEPTH
              ? `nesting deeper than ${MAX_DEPTH} levels`
              : `unexpected ${byteName(u8[s.errPos])} at byte ${at}`;
  problems.add(
    'invalid_json',
    `line is not valid JSON: ${what}${csv ? `; ${CSV_HINT}` : `; the line starts ${preview(u8, start, end)}`}`,
  );
}
