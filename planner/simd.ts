// The scanner's hot loops: "skip string content to the next byte that matters" and "find the end
// of the line". Chat lines are ~90% string content, so these decide the planner's speed. They are
// WebAssembly SIMD functions (16 bytes at a time), assembled here from their opcodes so the project
// needs no wasm toolchain; `scanFnsJs` does the same in plain JS (the fallback where a runtime has
// no wasm SIMD, and the reference the tests compare against).

// The few WebAssembly APIs used here, typed locally (the project's TS libs have no DOM types).
/** A wasm linear memory; shared (SharedArrayBuffer) when worker threads read it. */
export interface ScanMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
export interface WasmModule {
  readonly __module: unique symbol;
}
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => ScanMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: object) => { exports: Record<string, unknown> };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Bit set in `str`'s answer when the string held escapes; indexes stay below it (memory < 1 GiB). */
export const ESCAPED = 0x40000000;

export interface ScanFns {
  /**
   * Skips string content from `p`: returns the index of the first `"`, of a `\` not followed by one
   * of `"\/bfnrt`, of a byte < 0x20, or `end`; plus ESCAPED when it stepped over an escape.
   */
  str: (p: number, end: number) => number;
  /** The index of the first `\n` in [p, end), or `end`. */
  nl: (p: number, end: number) => number;
  /**
   * Skips one whole JSON value (any nesting up to 60) starting at `p` (whitespace first): returns
   * the index after it, or -1 when it is not valid JSON or nests deeper (the caller then scans the
   * line itself, for the exact error). Absent in the JS fallback.
   */
  skip?: (p: number, end: number) => number;
}

export function scanFnsJs(u8: Uint8Array): ScanFns {
  return {
    str(p, end) {
      let f = 0;
      for (; p < end; p++) {
        const c = u8[p]!;
        if (c === 0x22 || c < 0x20) return p | f;
        if (c === 0x5c) {
          const e = u8[p + 1];
          if (
            p + 1 >= end ||
            !(
              e === 0x22 ||
              e === 0x5c ||
              e === 0x2f ||
              e === 0x62 ||
              e === 0x66 ||
              e === 0x6e ||
              e === 0x72 ||
              e === 0x74
            )
          )
            return p | f;
          f = ESCAPED;
          p++;
        }
      }
      return end | f;
    },
    nl(p, end) {
      for (; p < end; p++) if (u8[p] === 0x0a) return p;
      return end;
    },
  };
}

const u32 = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];
const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

// Opcodes used below (WebAssembly core + SIMD).
const BLOCK = 0x02,
  LOOP = 0x03,
  IF = 0x04,
  END = 0x0b,
  BR = 0x0c,
  BR_IF = 0x0d,
  RETURN = 0x0f,
  VOID = 0x40;
const GET = 0x20,
  SET = 0x21,
  TEE = 0x22;
const I32_CONST = 0x41,
  I32_LOAD8_U = 0x2d,
  I32_EQ = 0x46,
  I32_LT_U = 0x49,
  I32_GT_U = 0x4b,
  I32_GE_U = 0x4f,
  I32_CTZ = 0x68,
  I32_ADD = 0x6a,
  I32_OR = 0x72;
const SIMD = 0xfd,
  V128_LOAD = 0x00,
  V128_CONST = 0x0c,
  I8X16_EQ = 0x23,
  I8X16_LT_U = 0x26,
  V128_OR = 0x50,
  I8X16_BITMASK = 0x64;
const I32 = 0x7f,
  V128 = 0x7b;

const splat = (b: number): number[] => [SIMD, V128_CONST, ...new Array<number>(16).fill(b)];

// Per-function bodies. Locals: 0 $p, 1 $end (params), 2 $m i32, 3 $f i32, 4 $v v128.
const P = 0,
  END_ = 1,
  M = 2,
  F = 3,
  V = 4;
const LOCALS = [2, 2, I32, 1, V128];
const mask16 = (...bytes: number[]): number[] => {
  // (v == b0) | (v == b1) ... as an i8x16 bitmask of the 16 bytes at $p (v kept in $v).
  const out = [GET, P, SIMD, V128_LOAD, 0, 0, TEE, V];
  bytes.forEach((b, k) => {
    if (k > 0) out.push(GET, V);
    if (b < 0) out.push(...splat(-b), SIMD, I8X16_LT_U);
    else out.push(...splat(b), SIMD, I8X16_EQ);
    if (k > 0) out.push(SIMD, V128_OR);
  });
  out.push(SIMD, I8X16_BITMASK);
  return out;
};
const isByte = (b: number): number[] =>
  b < 0 ? [GET, M, I32_CONST, ...sleb(-b), I32_LT_U] : [GET, M, I32_CONST, ...sleb(b), I32_EQ];
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const anyOf = (bytes: number[]): number[] =>
  bytes.flatMap((b, k) => [...isByte(b), ...(k > 0 ? [I32_OR] : [])]);

/**
 * `find`: (p, end) → first index in [p, end) of one of `bytes` (a negative entry -b means "any byte
 * < b"), else end. Used for line ends: bytes [0x0a].
 */
function findBody(bytes: number[]): number[] {
  return [
    ...LOCALS,
    BLOCK, VOID, LOOP, VOID, //                          16 at a time while they fit
    GET, P, I32_CONST, 16, I32_ADD, GET, END_, I32_GT_U, BR_IF, 1,
    ...mask16(...bytes), TEE, M,
    IF, VOID, GET, P, GET, M, I32_CTZ, I32_ADD, RETURN, END,
    GET, P, I32_CONST, 16, I32_ADD, SET, P, BR, 0,
    END, END,
    BLOCK, VOID, LOOP, VOID, //                          then one at a time
    GET, P, GET, END_, I32_GE_U, BR_IF, 1,
    GET, P, I32_LOAD8_U, 0, 0, SET, M, ...anyOf(bytes),
    IF, VOID, GET, P, RETURN, END,
    GET, P, I32_CONST, 1, I32_ADD, SET, P, BR, 0,
    END, END,
    GET, END_, END,
  ]; // prettier-ignore
}

const SPECIAL = [0x22, 0x5c, -0x20];
const SIMPLE_ESCAPES = [0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74];

/**
 * `str`: (p, end) → skips string content from p: stops at `"`, at a `\` that is not a one-letter
 * escape (\u is left to the caller), at a byte < 0x20, or at end; adds ESCAPED (bit 30) to the
 * index when it passed an escape on the way.
 */
const STR_BODY = [
  ...LOCALS,
  LOOP, VOID, //                                         $outer
  BLOCK, VOID, //                                          $found
  BLOCK, VOID, //                                            $tail
  LOOP, VOID, //                                               $L: 16 at a time
  GET, P, I32_CONST, 16, I32_ADD, GET, END_, I32_GT_U, BR_IF, 1,
  ...mask16(...SPECIAL), TEE, M,
  IF, VOID, GET, P, GET, M, I32_CTZ, I32_ADD, SET, P, BR, 3, END,
  GET, P, I32_CONST, 16, I32_ADD, SET, P, BR, 0,
  END, END, //                                               end $L, end $tail
  LOOP, VOID, //                                             one at a time
  GET, P, GET, END_, I32_GE_U, IF, VOID, GET, P, GET, F, I32_OR, RETURN, END,
  GET, P, I32_LOAD8_U, 0, 0, SET, M, ...anyOf(SPECIAL), BR_IF, 1,
  GET, P, I32_CONST, 1, I32_ADD, SET, P, BR, 0,
  END,
  END, //                                                  end $found: p < end, at a special byte
  GET, P, I32_LOAD8_U, 0, 0, I32_CONST, ...sleb(0x5c), I32_EQ,
  IF, VOID,
  GET, P, I32_CONST, 1, I32_ADD, GET, END_, I32_LT_U,
  IF, VOID,
  GET, P, I32_LOAD8_U, 0, 1, SET, M, ...anyOf(SIMPLE_ESCAPES),
  IF, VOID,
  I32_CONST, ...sleb(ESCAPED), SET, F,
  GET, P, I32_CONST, 2, I32_ADD, SET, P, BR, 3,
  END, END, END,
  GET, P, GET, F, I32_OR, RETURN,
  END,
  GET, P, END,
]; // prettier-ignore

// A small structured assembler for the longer function below: blocks, loops and ifs by label name,
// branch depths computed here. `when(cond, ...body)`: cond leaves an i32 on the stack.
type Op =
  | number
  | Op[]
  | { block: string; body: Op[] }
  | { loop: string; body: Op[] }
  | { then: Op[] }
  | { br: string }
  | { brIf: string };

function asm(ops: Op[], labels: string[] = []): number[] {
  const out: number[] = [];
  const depth = (name: string): number => {
    const d = labels.indexOf(name);
    if (d < 0) throw new Error(`no label ${name}`);
    return d;
  };
  for (const op of ops) {
    if (typeof op === 'number') out.push(op);
    else if (Array.isArray(op)) out.push(...asm(op, labels));
    else if ('block' in op) out.push(BLOCK, VOID, ...asm(op.body, [op.block, ...labels]), END);
    else if ('loop' in op) out.push(LOOP, VOID, ...asm(op.body, [op.loop, ...labels]), END);
    else if ('then' in op) out.push(IF, VOID, ...asm(op.then, ['', ...labels]), END);
    else if ('br' in op) out.push(BR, depth(op.br));
    else out.push(BR_IF, depth(op.brIf));
  }
  return out;
}
const when = (cond: Op[], ...body: Op[]): Op => [...cond, { then: body }];

const I32_LOAD = 0x28,
  I32_EQZ = 0x45,
  I32_NE = 0x47,
  I32_SUB = 0x6b,
  I32_AND = 0x71,
  I32_SHL = 0x74,
  I64_CONST = 0x42,
  I64_EQZ = 0x50,
  I64_AND = 0x83,
  I64_OR = 0x84,
  I64_SHL = 0x86,
  I64_SHR_U = 0x88,
  I32_WRAP_I64 = 0xa7,
  I64_EXTEND_I32_U = 0xad,
  I64 = 0x7e;
// skip's locals: 2 $m, 3 $f, 4 $v (as in the others), 5 $depth, 6 $stack (i64), 7 $mode, 8 $c, 9 $s.
// $stack holds one bit per open container (1: object); $mode: 0 a value, 1 after a value, 2 a key.
const DEPTH = 5,
  STACK = 6,
  MODE = 7,
  C = 8,
  S = 9;
const c32 = (n: number): number[] => [I32_CONST, ...sleb(n)];
const get = (x: number): number[] => [GET, x];
const set = (x: number, ...value: number[]): number[] => [...value, SET, x];
const byteAt = (x: number, offset = 0): number[] => [GET, x, I32_LOAD8_U, 0, offset];
const fail: number[] = [...c32(-1), RETURN];
const incP = (n = 1): number[] => set(P, GET, P, ...c32(n), I32_ADD);
const atEnd: number[] = [GET, P, GET, END_, I32_GE_U];
const beforeEnd: number[] = [GET, P, GET, END_, I32_LT_U];
const eq = (x: number, b: number): number[] => [...get(x), ...c32(b), I32_EQ];
const isWs = (x: number): number[] => [
  ...eq(x, 0x20),
  ...eq(x, 0x09),
  I32_OR,
  ...eq(x, 0x0d),
  I32_OR,
  ...eq(x, 0x0a),
  I32_OR,
];
/** Skips whitespace, leaving the byte at p in $x; fails at the end. */
const skipWs = (name: string, x: number): Op => ({
  loop: name,
  body: [when(atEnd, fail), set(x, ...byteAt(P)), when(isWs(x), incP(), { br: name })],
});
const topIsObject: number[] = [...get(STACK), I64_CONST, 1, I64_AND, I32_WRAP_I64];
const pop: number[] = [
  ...set(STACK, ...get(STACK), I64_CONST, 1, I64_SHR_U),
  ...set(DEPTH, ...get(DEPTH), ...c32(1), I32_SUB),
];
const isDigit = (x: number[]): number[] => [...x, ...c32(0x30), I32_SUB, ...c32(10), I32_LT_U];
const digits = (name: string): Op => ({
  loop: name,
  body: [when(beforeEnd, when(isDigit(byteAt(P)), incP(), { br: name }))],
});
const isHexAt = (offset: number): number[] => [
  ...isDigit(byteAt(P, offset)),
  ...byteAt(P, offset), ...c32(0x20), I32_OR, ...c32(0x61), I32_SUB, ...c32(6), I32_LT_U, I32_OR,
]; // prettier-ignore
/** true / null: 4 bytes at p; false: 'f' then "alse" at p + 1. */
const word = (text: string): Op => {
  const at = text.length - 4;
  const value = [...text.slice(at)].reduce((acc, ch, k) => acc + ch.charCodeAt(0) * 256 ** k, 0) | 0;
  return when(
    eq(C, text.charCodeAt(0)),
    when([GET, P, ...c32(text.length), I32_ADD, GET, END_, I32_GT_U], fail),
    when([GET, P, I32_LOAD, 0, at, ...c32(value), I32_NE], fail),
    incP(text.length),
    set(MODE, ...c32(1)),
    { br: 'main' },
  );
};

const SKIP_BODY = [
  5, 2, I32, 1, V128, 1, I32, 1, I64, 3, I32,
  ...asm([
    {
      loop: 'main',
      body: [
        // A complete value at depth 0: done (what follows is the caller's).
        when([...eq(MODE, 1), ...get(DEPTH), I32_EQZ, I32_AND], GET, P, RETURN),
        skipWs('ws', C),
        // After a value inside a container: ',' or the closer that matches.
        when(
          eq(MODE, 1),
          when(eq(C, 0x2c), incP(), set(MODE, ...topIsObject, ...c32(1), I32_SHL), { br: 'main' }),
          when(
            [...eq(C, 0x7d), ...topIsObject, I32_AND, ...eq(C, 0x5d), ...get(STACK), I64_CONST, 1, I64_AND, I64_EQZ, I32_AND, I32_OR],
            pop, incP(), { br: 'main' },
          ),
          fail,
        ),
        // A string: a value, or a key followed by ':'.
        when(
          eq(C, 0x22),
          incP(),
          {
            block: 'strdone',
            body: [
              {
                loop: 'str',
                body: [
                  {
                    block: 'special',
                    body: [
                      {
                        block: 'tail',
                        body: [
                          {
                            loop: 'L',
                            body: [
                              GET, P, ...c32(16), I32_ADD, GET, END_, I32_GT_U, { brIf: 'tail' },
                              when([...mask16(...SPECIAL), TEE, M], set(P, GET, P, GET, M, I32_CTZ, I32_ADD), { br: 'special' }),
                              incP(16), { br: 'L' },
                            ],
                          },
                        ],
                      },
                      {
                        loop: 'T',
                        body: [when(atEnd, fail), set(M, ...byteAt(P)), anyOf(SPECIAL), { brIf: 'special' }, incP(), { br: 'T' }],
                      },
                    ],
                  },
                  // p < end, at '"', a backslash or a control byte.
                  set(M, ...byteAt(P)),
                  when(eq(M, 0x22), incP(), { br: 'strdone' }),
                  when([...get(M), ...c32(0x5c), I32_NE], fail),
                  when([GET, P, ...c32(1), I32_ADD, GET, END_, I32_GE_U], fail),
                  set(M, ...byteAt(P, 1)),
                  when(anyOf(SIMPLE_ESCAPES), incP(2), { br: 'str' }),
                  when([...get(M), ...c32(0x75), I32_NE], fail),
                  when([GET, P, ...c32(6), I32_ADD, GET, END_, I32_GT_U], fail),
                  when([...isHexAt(2), ...isHexAt(3), I32_AND, ...isHexAt(4), I32_AND, ...isHexAt(5), I32_AND], incP(6), { br: 'str' }),
                  fail,
                ],
              },
            ],
          },
          when(eq(MODE, 2), skipWs('kws', C), when([...get(C), ...c32(0x3a), I32_NE], fail), incP(), set(MODE, ...c32(0)), { br: 'main' }),
          set(MODE, ...c32(1)),
          { br: 'main' },
        ),
        when(eq(MODE, 2), fail),
        // '{' or '['.
        when(
          [...eq(C, 0x7b), ...eq(C, 0x5b), I32_OR],
          when([...get(DEPTH), ...c32(60), I32_GE_U], fail),
          set(STACK, ...get(STACK), I64_CONST, 1, I64_SHL, ...eq(C, 0x7b), I64_EXTEND_I32_U, I64_OR),
          set(DEPTH, ...get(DEPTH), ...c32(1), I32_ADD),
          incP(),
          skipWs('ews', S),
          when([...get(S), ...get(C), ...c32(2), I32_ADD, I32_EQ], pop, incP(), set(MODE, ...c32(1)), { br: 'main' }),
          set(MODE, ...eq(C, 0x7b), ...c32(1), I32_SHL),
          { br: 'main' },
        ),
        word('true'),
        word('null'),
        word('false'),
        // A number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        when(eq(C, 0x2d), incP(), when(atEnd, fail), set(C, ...byteAt(P))),
        {
          block: 'int',
          body: [
            when(eq(C, 0x30), incP(), { br: 'int' }),
            when([...get(C), ...c32(0x31), I32_SUB, ...c32(9), I32_LT_U, I32_EQZ], fail),
            incP(),
            digits('d1'),
          ],
        },
        when(beforeEnd, when([...byteAt(P), ...c32(0x2e), I32_EQ], incP(), set(S, ...get(P)), digits('d2'), when([...get(P), ...get(S), I32_EQ], fail))),
        when(
          beforeEnd,
          when(
            [...byteAt(P), ...c32(0x20), I32_OR, ...c32(0x65), I32_EQ],
            incP(),
            when(beforeEnd, when([...set(M, ...byteAt(P)), ...eq(M, 0x2b), ...eq(M, 0x2d), I32_OR], incP())),
            set(S, ...get(P)),
            digits('d3'),
            when([...get(P), ...get(S), I32_EQ], fail),
          ),
        ),
        set(MODE, ...c32(1)),
        { br: 'main' },
      ],
    },
  ]),
  ...c32(-1), END,
]; // prettier-ignore

/**
 * `copy`: (dst, src, len) → copies memory[src, src+len) to dst with `memory.copy`, writes a newline
 * after it and returns the index after the newline. Why in wasm: JavaScript copies out of shared
 * memory with V8's relaxed-atomic memmove (byte by byte when source and destination are not equally
 * aligned), which was ~9% of a 1M-line plan's CPU samples for ~900-byte lines.
 */
const COPY_BODY = [
  0, // no locals
  GET, 0, GET, 1, GET, 2, 0xfc, 10, 0, 0, //               memory.copy dst src len
  GET, 0, GET, 2, I32_ADD, TEE, 0, I32_CONST, 10, 0x3a, 0, 0, // i32.store8 dst+len '\n'
  GET, 0, I32_CONST, 1, I32_ADD, END,
]; // prettier-ignore

/** The compiled scanner module for a memory of `pages` 64 KiB pages (`shared` for worker threads). */
export function scanModule(pages: number, shared: boolean): WasmModule {
  const nl = findBody([0x0a]);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [2, 0x60, 2, I32, I32, 1, I32, 0x60, 3, I32, I32, I32, 1, I32]),
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, shared ? 0x03 : 0x01, ...u32(pages), ...u32(pages)]),
    ...section(3, [4, 0, 0, 0, 1]),
    ...section(7, [4, ...name('str'), 0x00, 0, ...name('nl'), 0x00, 1, ...name('skip'), 0x00, 2, ...name('copy'), 0x00, 3]),
    ...section(10, [
      4,
      ...u32(STR_BODY.length), ...STR_BODY,
      ...u32(nl.length), ...nl,
      ...u32(SKIP_BODY.length), ...SKIP_BODY,
      ...u32(COPY_BODY.length), ...COPY_BODY,
    ]),
  ]; // prettier-ignore
  return new WA.Module(new Uint8Array(bytes));
}

/** A 64 KiB-page memory for the scanner (under 1 GiB): shared when worker threads read it. */
export function scanMemory(bytes: number, shared: boolean): ScanMemory {
  const pages = Math.ceil(bytes / 65536);
  if (pages * 65536 >= ESCAPED) throw new Error('scan memory must stay under 1 GiB');
  return new WA.Memory({ initial: pages, maximum: pages, shared });
}

/**
 * The scanner module for `memory`, compiled once per plan and passed to the scan threads (they share
 * its compiled code, and the main thread uses its `copy`), or undefined where this runtime has no
 * wasm SIMD.
 */
export function compileScanModule(memory: ScanMemory): WasmModule | undefined {
  const pages = memory.buffer.byteLength / 65536;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  try {
    return scanModule(pages, shared);
  } catch {
    return undefined;
  }
}

/** The SIMD functions over `memory` from `module` (compileScanModule), or the JS ones without it. */
export function scanFnsFor(memory: ScanMemory, module: WasmModule | undefined): ScanFns & CopyFn {
  if (module) {
    try {
      return new WA.Instance(module, { env: { mem: memory } }).exports as unknown as ScanFns & CopyFn;
    } catch {
      // fall through to plain JavaScript
    }
  }
  const u8 = new Uint8Array(memory.buffer);
  return { ...scanFnsJs(u8), copy: copyJs(u8) };
}

export interface CopyFn {
  /** Copies memory[src, src+len) to dst, writes a newline after it; returns the index after it. */
  copy: (dst: number, src: number, len: number) => number;
}

export const copyJs =
  (u8: Uint8Array): CopyFn['copy'] =>
  (dst, src, len) => {
    u8.copyWithin(dst, src, src + len);
    u8[dst + len] = 0x0a;
    return dst + len + 1;
  };
