// The custom_id of an input line read back from the file (the planner keeps no ids, only hashes):
// to confirm a hash match against an earlier line, and to report a line too long to scan. Both
// agree with what the line rules count for the same line (line-fields.ts): the top-level "custom_id" string
// of an object line.
import { MAX_CUSTOM_ID_CHARS } from './line-fields.ts';

const isJsonSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** The index of the `"` closing the JSON string whose content starts at `i`, or -1. */
function stringEnd(text: string, i: number): number {
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i;
    if (c === 0x5c) i++;
  }
  return -1;
}

/**
 * The custom_id of a line too long to scan, read from its start (the first 64 KiB), as the scanner
 * would count it: the string value of the top-level key "custom_id" of an object, non-empty and at
 * most 256 characters. Anything else (an array, a nested key, a cut-off value) gives none.
 */
export function idFromPrefix(text: string): string | undefined {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < text.length && isJsonSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x22) {
      const end = stringEnd(text, i + 1);
      if (end < 0) return undefined;
      let k = end + 1;
      while (k < text.length && isJsonSpace(text.charCodeAt(k))) k++;
      if (depth === 1 && text.charCodeAt(k) === 0x3a && text.slice(i + 1, end) === 'custom_id') {
        k++;
        while (k < text.length && isJsonSpace(text.charCodeAt(k))) k++;
        if (text.charCodeAt(k) !== 0x22) return undefined;
        const close = stringEnd(text, k + 1);
        if (close < 0) return undefined;
        try {
          const id = JSON.parse(text.slice(k, close + 1)) as string;
          return id !== '' && [...id].length <= MAX_CUSTOM_ID_CHARS ? id : undefined;
        } catch {
          return undefined;
        }
      }
      i = end;
    }
  }
  return undefined;
}

/** The custom_id of a whole line (a BOM tolerated), or undefined when it is not a JSON object with one. */
export function customIdOf(line: Buffer): string | undefined {
  let text = line.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    const v = JSON.parse(text) as { custom_id?: unknown };
    return typeof v.custom_id === 'string' ? v.custom_id : undefined;
  } catch {
    return undefined;
  }
}
