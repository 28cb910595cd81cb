// A validating JSON scanner over raw bytes: it checks the whole grammar of one line (what JSON.parse
// would accept) without building objects, and records where the few fields the planner reads are
// (scan-result.ts). Building full objects with JSON.parse costs ~5 s per GB; this costs a fraction,
// because string contents (most of a chat line) are skipped 16 bytes at a time by `str` (simd.ts).
import {
  E_DEPTH,
  E_NONE,
  E_TRAILING,
  E_TRUNCATED,
  E_UNEXPECTED,
  F_BODY,
  F_BUDGET,
  F_CUSTOM_ID,
  F_EXTRA,
  F_EXTRA_THINK,
  F_METHOD,
  F_MODEL,
  F_STREAM,
  F_THINK,
  F_URL,
  MAX_DEPTH,
  N_FIELDS,
  T_ARRAY,
  T_FALSE,
  T_NONE,
  T_NULL,
  T_NUMBER,
  T_OBJECT,
  T_STRING,
  T_TRUE,
  type Scan,
} from './scan-result.ts';
import { PLAIN, decodeJsonString, scalarEnd, stringTail } from './scan-values.ts';
import { ESCAPED } from './escaped.ts';
import type { ScanFns } from './simd.ts';

const CTX_OTHER = 0,
  CTX_TOP = 1,
  CTX_BODY = 2,
  CTX_EXTRA = 3;
const K_OBJ = 1,
  K_ARR = 2;

const KEY_BYTES: [ctx: number, key: string, field: number][] = [
  [CTX_TOP, 'custom_id', F_CUSTOM_ID],
  [CTX_TOP, 'method', F_METHOD],
  [CTX_TOP, 'url', F_URL],
  [CTX_TOP, 'body', F_BODY],
  [CTX_BODY, 'model', F_MODEL],
  [CTX_BODY, 'stream', F_STREAM],
  [CTX_BODY, 'enable_thinking', F_THINK],
  [CTX_BODY, 'thinking_budget', F_BUDGET],
  [CTX_BODY, 'extra_body', F_EXTRA],
  [CTX_EXTRA, 'enable_thinking', F_EXTRA_THINK],
];
const KEYS = KEY_BYTES.map(([ctx, key, field]) => ({
  ctx,
  key,
  field,
  bytes: Uint8Array.from(key, (c) => c.charCodeAt(0)),
}));

/** The recorded field a key u8[ks, ke) names in context `cx`, or -1: a lookup, then a byte compare. */
function makeKeyField(u8: Uint8Array): (cx: number, ks: number, ke: number, escaped: boolean) => number {
  // The one recorded key a (context, length, first byte) can be.
  const candidate = new Int8Array(4 * 4096).fill(-1);
  KEYS.forEach((k, n) => (candidate[k.ctx * 4096 + k.bytes.length * 256 + k.bytes[0]!] = n));
  return (cx, ks, ke, escaped) => {
    if (escaped) {
      const text = decodeJsonString(u8, ks, ke);
      for (const k of KEYS) if (k.ctx === cx && k.key === text) return k.field;
      return -1;
    }
    const len = ke - ks;
    if (len > 15) return -1;
    const n = candidate[cx * 4096 + len * 256 + u8[ks]!]!;
    if (n < 0) return -1;
    const k = KEYS[n]!;
    const bytes = k.bytes;
    for (let j = 1; j < len; j++) if (u8[ks + j] !== bytes[j]) return -1;
    return k.field;
  };
}

/**
 * A scanner bound to one byte array; `scan(s, start, end)` checks u8[start, end). Values no rule
 * reads are skipped by `fns.skip` (wasm) when there is one; `exact` scans everything here. Long
 * only because the scan function it returns is (why, at that function).
 */
export function makeScanner(
  u8: Uint8Array,
  fns: ScanFns,
): (s: Scan, start: number, end: number, exact?: boolean) => void {
  const str = fns.str;
  const skip = fns.skip;
  const keyField = makeKeyField(u8);
  const kind = new Uint8Array(MAX_DEPTH + 1);
  const ctx = new Uint8Array(MAX_DEPTH + 1);
  const fieldOf = new Int8Array(MAX_DEPTH + 1);

  // One loop over a state machine (expect a value, after a value, expect a key) whose state (i, sp,
  // want, state) lives in locals: it runs once per byte that is not string content, ~1M lines a
  // plan, and splitting the states into functions would move that state into an object on the hot
  // path. The tokens are checked by scan-values.ts.
  return function scan(s: Scan, start: number, end: number, exact = false): void {
    s.err = E_NONE;
    s.errPos = 0;
    s.rootType = T_NONE;
    s.dupKey = -1;
    const types = s.type;
    for (let f = 0; f < N_FIELDS; f++) types[f] = T_NONE;
    let i = start;
    let sp = 0;
    let want = -1;
    // 0: expect a value, 1: after a value, 2: expect a key
    let state = 0;

    for (;;) {
      let c = u8[i]!;
      while (i < end && (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a)) c = u8[++i]!;
      if (i >= end) {
        if (state === 1 && sp === 0) return;
        s.err = E_TRUNCATED;
        s.errPos = end;
        return;
      }
      if (state === 1) {
        if (sp === 0) {
          s.err = E_TRAILING;
          s.errPos = i;
          return;
        }
        const k = kind[sp - 1]!;
        if (c === 0x2c) {
          i++;
          state = k === K_OBJ ? 2 : 0;
          want = -1;
        } else if ((c === 0x7d && k === K_OBJ) || (c === 0x5d && k === K_ARR)) {
          sp--;
          const f = fieldOf[sp]!;
          if (f >= 0) s.end[f] = i + 1;
          i++;
        } else {
          s.err = E_UNEXPECTED;
          s.errPos = i;
          return;
        }
        continue;
      }
      if (c === 0x22) {
        // A string, key or value: plain contents here (short ones in JS, long ones by `str`, SIMD),
        // inline because most strings end there; escapes and errors by stringTail.
        let j = i + 1;
        let esc = false;
        const lim = j + 32 < end ? j + 32 : end;
        while (j < lim && PLAIN[u8[j]!] === 1) j++;
        if (j === lim && j < end) {
          j = str(j, end);
          if (j >= ESCAPED) {
            esc = true;
            j -= ESCAPED;
          }
        }
        if (j >= end || u8[j] !== 0x22) {
          j = stringTail(u8, str, s, j, end, esc);
          if (j < 0) return;
          esc = j >= ESCAPED;
          if (esc) j -= ESCAPED;
        }
        // j: the closing quote
        if (state === 2) {
          const cx = ctx[sp - 1]!;
          want = cx === CTX_OTHER ? -1 : keyField(cx, i + 1, j, esc);
          i = j + 1;
          c = u8[i]!;
          while (i < end && (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a)) c = u8[++i]!;
          if (i >= end) {
            s.err = E_TRUNCATED;
            s.errPos = end;
            return;
          }
          if (c !== 0x3a) {
            s.err = E_UNEXPECTED;
            s.errPos = i;
            return;
          }
          i++;
          state = 0;
          continue;
        }
        if (sp === 0) s.rootType = T_STRING;
        if (want >= 0) {
          record(s, want, T_STRING, i + 1, j);
          s.esc[want] = esc ? 1 : 0;
        }
        i = j + 1;
        state = 1;
        continue;
      }
      if (state === 2) {
        s.err = E_UNEXPECTED;
        s.errPos = i;
        return;
      }
      // state 0: a value other than a string
      if ((c === 0x7b || c === 0x5b) && want < 0 && sp > 0 && skip !== undefined && !exact) {
        // A value nothing is read from (e.g. "messages"): validated whole by wasm. On an error, the
        // line is scanned again here, for the error's kind and position.
        const after = skip(i, end);
        if (after < 0) return scan(s, start, end, true);
        i = after;
        state = 1;
        continue;
      }
      if (c === 0x7b || c === 0x5b) {
        if (sp >= MAX_DEPTH) {
          s.err = E_DEPTH;
          s.errPos = i;
          return;
        }
        const obj = c === 0x7b;
        if (sp === 0) s.rootType = obj ? T_OBJECT : T_ARRAY;
        kind[sp] = obj ? K_OBJ : K_ARR;
        ctx[sp] = !obj
          ? CTX_OTHER
          : sp === 0
            ? CTX_TOP
            : want === F_BODY
              ? CTX_BODY
              : want === F_EXTRA
                ? CTX_EXTRA
                : CTX_OTHER;
        fieldOf[sp] = want;
        if (want >= 0) record(s, want, obj ? T_OBJECT : T_ARRAY, i, i + 1);
        sp++;
        i++;
        want = -1;
        c = u8[i]!;
        while (i < end && (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a)) c = u8[++i]!;
        if (i < end && c === (obj ? 0x7d : 0x5d)) {
          sp--;
          const f = fieldOf[sp]!;
          if (f >= 0) s.end[f] = i + 1;
          i++;
          state = 1;
        } else {
          state = obj ? 2 : 0;
        }
        continue;
      }
      const from = i;
      i = scalarEnd(u8, s, c, i, end);
      if (i < 0) return;
      const type = c === 0x74 ? T_TRUE : c === 0x66 ? T_FALSE : c === 0x6e ? T_NULL : T_NUMBER;
      if (sp === 0) s.rootType = type;
      if (want >= 0) record(s, want, type, from, i);
      state = 1;
    }
  };
}

function record(s: Scan, field: number, type: number, from: number, to: number): void {
  if (s.type[field] !== T_NONE && s.dupKey < 0) s.dupKey = field;
  s.type[field] = type;
  s.start[field] = from;
  s.end[field] = to;
}
