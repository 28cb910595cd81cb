// The scanner's checks of single JSON tokens: a string's escapes and what ends it badly, and the
// scalars true, false, null and numbers. Each returns where the token ends, or -1 with the error's
// kind and position set in the scan result.
import { E_CONTROL, E_ESCAPE, E_NUL, E_NUMBER, E_TRUNCATED, E_UNEXPECTED, type Scan } from './scan-result.ts';
import { ESCAPED, isSimpleEscape } from './escaped.ts';
import type { ScanFns } from './simd.ts';

const isHex = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** Decodes the JSON string literal whose contents are u8[start, end). */
export function decodeJsonString(u8: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(u8.buffer, u8.byteOffset + start, end - start).toString('utf8');
  return JSON.parse(`"${text}"`) as string;
}

/** 1 for bytes that cannot end or change a string (not `"`, `\\`, or < 0x20). */
export const PLAIN = new Uint8Array(256).fill(1).fill(0, 0, 0x20);
PLAIN[0x22] = 0;
PLAIN[0x5c] = 0;

/**
 * The rest of a string from `j`, where its plain contents stopped at a byte that is not the closing
 * quote (an escape, a control byte, or the end; the scanner skips plain contents itself): returns
 * the index of the closing quote, plus ESCAPED when the string holds escapes (`esc`: it did before
 * `j`); or -1 (error in `s`).
 */
export function stringTail(
  u8: Uint8Array,
  str: ScanFns['str'],
  s: Scan,
  j: number,
  end: number,
  esc: boolean,
): number {
  let d = 0;
  for (;;) {
    if (j >= end) return fail(s, E_TRUNCATED, end);
    d = u8[j]!;
    if (d === 0x22) break;
    if (d !== 0x5c) return fail(s, d === 0 ? E_NUL : E_CONTROL, j);
    esc = true;
    if (j + 1 >= end) return fail(s, E_TRUNCATED, end);
    const e = u8[j + 1]!;
    if (e === 0x75) {
      for (let h = j + 2; h < j + 6; h++) {
        if (h >= end) return fail(s, E_TRUNCATED, end);
        if (!isHex(u8[h]!)) return fail(s, E_ESCAPE, j);
      }
      j += 6;
    } else if (isSimpleEscape(e)) {
      j += 2;
    } else {
      return fail(s, E_ESCAPE, j);
    }
    j = str(j, end);
    if (j >= ESCAPED) j -= ESCAPED;
  }
  return esc ? j + ESCAPED : j;
}

function fail(s: Scan, err: number, at: number): number {
  s.err = err;
  s.errPos = at;
  return -1;
}

const TRUE = Uint8Array.from([0x74, 0x72, 0x75, 0x65]);
const FALSE = Uint8Array.from([0x66, 0x61, 0x6c, 0x73, 0x65]);
const NULL = Uint8Array.from([0x6e, 0x75, 0x6c, 0x6c]);

/** Checks the scalar starting with byte `c` at `i`: returns the index after it, or -1 (error in `s`). */
export function scalarEnd(u8: Uint8Array, s: Scan, c: number, i: number, end: number): number {
  if (c === 0x74 || c === 0x66 || c === 0x6e) {
    const word = c === 0x74 ? TRUE : c === 0x66 ? FALSE : NULL;
    for (let k = 0; k < word.length; k++, i++) {
      if (i >= end) return fail(s, E_TRUNCATED, end);
      if (u8[i] !== word[k]) return fail(s, E_UNEXPECTED, i);
    }
    return i;
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    const bad = number(u8, i, end);
    if (bad < 0) return -bad - 1;
    return fail(s, bad >= end ? E_TRUNCATED : E_NUMBER, bad);
  }
  return fail(s, c === 0 ? E_NUL : E_UNEXPECTED, i);
}

/** Checks the number at u8[i]: returns -(end + 1) when valid, else the index of the bad byte. */
function number(u8: Uint8Array, i: number, end: number): number {
  if (u8[i] === 0x2d) i++;
  if (i >= end) return end;
  const d = u8[i]!;
  if (d === 0x30) i++;
  else if (d >= 0x31 && d <= 0x39) {
    while (i < end && u8[i]! >= 0x30 && u8[i]! <= 0x39) i++;
  } else return i;
  if (i < end && u8[i] === 0x2e) {
    i++;
    const digits = i;
    while (i < end && u8[i]! >= 0x30 && u8[i]! <= 0x39) i++;
    if (i === digits) return i;
  }
  if (i < end && (u8[i] === 0x65 || u8[i] === 0x45)) {
    i++;
    if (i < end && (u8[i] === 0x2b || u8[i] === 0x2d)) i++;
    const digits = i;
    while (i < end && u8[i]! >= 0x30 && u8[i]! <= 0x39) i++;
    if (i === digits) return i;
  }
  return -(i + 1);
}
