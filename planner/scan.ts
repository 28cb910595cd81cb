// A validating JSON scanner over raw bytes: it checks the whole grammar of one line (what JSON.parse
// would accept) without building objects, and records where the few fields the planner reads are.
// Building full objects with JSON.parse costs ~5 s per GB; this costs a fraction, because string
// contents (most of a chat line) are skipped 16 bytes at a time by `find` (simd.ts).
import { ESCAPED, type ScanFns } from './simd.ts';

// Fields recorded, by path. Top level: custom_id, method, url, body. In body: model, stream,
// enable_thinking, thinking_budget, extra_body. In body.extra_body: enable_thinking.
export const F_CUSTOM_ID = 0,
  F_METHOD = 1,
  F_URL = 2,
  F_BODY = 3,
  F_MODEL = 4,
  F_STREAM = 5,
  F_THINK = 6,
  F_BUDGET = 7,
  F_EXTRA = 8,
  F_EXTRA_THINK = 9,
  N_FIELDS = 10;

export const FIELD_PATHS = [
  'custom_id',
  'method',
  'url',
  'body',
  'body.model',
  'body.stream',
  'body.enable_thinking',
  'body.thinking_budget',
  'body.extra_body',
  'body.extra_body.enable_thinking',
] as const;

// Value types.
export const T_NONE = 0,
  T_STRING = 1,
  T_NUMBER = 2,
  T_TRUE = 3,
  T_FALSE = 4,
  T_NULL = 5,
  T_OBJECT = 6,
  T_ARRAY = 7;

export const TYPE_NAMES = [
  'nothing',
  'a string',
  'a number',
  'true',
  'false',
  'null',
  'an object',
  'an array',
];

// Errors.
export const E_NONE = 0,
  E_UNEXPECTED = 1,
  E_TRUNCATED = 2,
  E_CONTROL = 3,
  E_NUL = 4,
  E_ESCAPE = 5,
  E_NUMBER = 6,
  E_TRAILING = 7,
  E_DEPTH = 8;

/** Deeper nesting than this is refused (the providers' JSON readers stop near 1,000 too). */
export const MAX_DEPTH = 1000;

/** What one scan found. Reused from line to line: read it before the next scan. */
export interface Scan {
  err: number;
  /** Byte index of the error (absolute, like start/end). */
  errPos: number;
  rootType: number;
  /** Per field: value type, and span. Strings: inside the quotes; others: the whole value. */
  type: Int32Array;
  start: Int32Array;
  end: Int32Array;
  /** Per string field: 1 when it holds escapes (so its bytes are not its text). */
  esc: Uint8Array;
  /** A recorded field whose key appeared twice in one object, or -1. */
  dupKey: number;
}

export function newScan(): Scan {
  return {
    err: 0,
    errPos: 0,
    rootType: 0,
    type: new Int32Array(N_FIELDS),
    start: new Int32Array(N_FIELDS),
    end: new Int32Array(N_FIELDS),
    esc: new Uint8Array(N_FIELDS),
    dupKey: -1,
  };
}

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

/** 1 for bytes that cannot end or change a string (not `"`, `\\`, or < 0x20). */
const PLAIN = new Uint8Array(256).fill(1).fill(0, 0, 0x20);
PLAIN[0x22] = 0;
PLAIN[0x5c] = 0;

const isHex = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** Decodes the JSON string literal whose contents are u8[start, end). */
export function decodeJsonString(u8: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(u8.buffer, u8.byteOffset + start, end - start).toString('utf8');
  return JSON.parse(`"${text}"`) as string;
}

/**
 * A scanner bound to one byte array; `scan(s, start, end)` checks u8[start, end). Values no rule
 * reads are skipped by `fns.skip` (wasm) when there is one; `exact` scans everything here.
 */
export function makeScanner(
  u8: Uint8Array,
  fns: ScanFns,
): (s: Scan, start: number, end: number, exact?: boolean) => void {
  const str = fns.str;
  const skip = fns.skip;
  const kind = new Uint8Array(MAX_DEPTH + 1);
  const ctx = new Uint8Array(MAX_DEPTH + 1);
  const fieldOf = new Int8Array(MAX_DEPTH + 1);

  // The one recorded key a (context, length, first byte) can be, then a byte compare.
  // The one recorded key a (context, length, first byte) can be, then a byte compare.
  const candidate = new Int8Array(4 * 4096).fill(-1);
  KEYS.forEach((k, n) => (candidate[k.ctx * 4096 + k.bytes.length * 256 + k.bytes[0]!] = n));

  function keyField(cx: number, ks: number, ke: number, escaped: boolean): number {
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
  }

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
        // A string, key or value: short ones in JS, long ones by `find` (SIMD).
        let j = i + 1;
        let esc = false;
        const lim = j + 32 < end ? j + 32 : end;
        let d = 0;
        while (j < lim && PLAIN[u8[j]!] === 1) j++;
        if (j === lim && j < end) {
          j = str(j, end);
          if (j >= ESCAPED) {
            esc = true;
            j -= ESCAPED;
          }
        }
        for (;;) {
          if (j >= end) {
            s.err = E_TRUNCATED;
            s.errPos = end;
            return;
          }
          d = u8[j]!;
          if (d === 0x22) break;
          if (d !== 0x5c) {
            s.err = d === 0 ? E_NUL : E_CONTROL;
            s.errPos = j;
            return;
          }
          esc = true;
          if (j + 1 >= end) {
            s.err = E_TRUNCATED;
            s.errPos = end;
            return;
          }
          const e = u8[j + 1]!;
          if (e === 0x75) {
            for (let h = j + 2; h < j + 6; h++) {
              if (h >= end) {
                s.err = E_TRUNCATED;
                s.errPos = end;
                return;
              }
              if (!isHex(u8[h]!)) {
                s.err = E_ESCAPE;
                s.errPos = j;
                return;
              }
            }
            j += 6;
          } else if (
            e === 0x22 ||
            e === 0x5c ||
            e === 0x2f ||
            e === 0x62 ||
            e === 0x66 ||
            e === 0x6e ||
            e === 0x72 ||
            e === 0x74
          ) {
            j += 2;
          } else {
            s.err = E_ESCAPE;
            s.errPos = j;
            return;
          }
          j = str(j, end);
          if (j >= ESCAPED) j -= ESCAPED;
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
      let type: number;
      if (c === 0x74 || c === 0x66 || c === 0x6e) {
        const word = c === 0x74 ? TRUE : c === 0x66 ? FALSE : NULL;
        type = c === 0x74 ? T_TRUE : c === 0x66 ? T_FALSE : T_NULL;
        for (let k = 0; k < word.length; k++, i++) {
          if (i >= end) {
            s.err = E_TRUNCATED;
            s.errPos = end;
            return;
          }
          if (u8[i] !== word[k]) {
            s.err = E_UNEXPECTED;
            s.errPos = i;
            return;
          }
        }
      } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        type = T_NUMBER;
        const bad = number(u8, i, end);
        if (bad < 0) i = -bad - 1;
        else {
          s.err = bad >= end ? E_TRUNCATED : E_NUMBER;
          s.errPos = bad;
          return;
        }
      } else {
        s.err = c === 0 ? E_NUL : E_UNEXPECTED;
        s.errPos = i;
        return;
      }
      if (sp === 0) s.rootType = type;
      if (want >= 0) record(s, want, type, from, i);
      state = 1;
    }
  };
}

const TRUE = Uint8Array.from([0x74, 0x72, 0x75, 0x65]);
const FALSE = Uint8Array.from([0x66, 0x61, 0x6c, 0x73, 0x65]);
const NULL = Uint8Array.from([0x6e, 0x75, 0x6c, 0x6c]);

function record(s: Scan, field: number, type: number, from: number, to: number): void {
  if (s.type[field] !== T_NONE && s.dupKey < 0) s.dupKey = field;
  s.type[field] = type;
  s.start[field] = from;
  s.end[field] = to;
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
