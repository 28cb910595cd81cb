// What one scan of a line finds (scan.ts): the fields recorded and their paths, value types, error
// kinds, and the reusable result object the line rules read (line.ts and its rule modules).

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
