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
interface WasmModule {
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

/** The wasm module importing a memory of `pages` 64 KiB pages (`shared` for worker threads). */
export function scanModule(pages: number, shared: boolean): WasmModule {
  const nl = findBody([0x0a]);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, I32, I32, 1, I32]),
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, shared ? 0x03 : 0x01, ...u32(pages), ...u32(pages)]),
    ...section(3, [2, 0, 0]),
    ...section(7, [2, ...name('str'), 0x00, 0, ...name('nl'), 0x00, 1]),
    ...section(10, [2, ...u32(STR_BODY.length), ...STR_BODY, ...u32(nl.length), ...nl]),
  ]; // prettier-ignore
  return new WA.Module(new Uint8Array(bytes));
}

/** A 64 KiB-page memory for the scanner (under 1 GiB): shared when worker threads read it. */
export function scanMemory(bytes: number, shared: boolean): ScanMemory {
  const pages = Math.ceil(bytes / 65536);
  if (pages * 65536 >= ESCAPED) throw new Error('scan memory must stay under 1 GiB');
  return new WA.Memory({ initial: pages, maximum: pages, shared });
}

/** The SIMD functions over `memory`, or the JS ones where this runtime has no wasm SIMD. */
export function scanFnsFor(memory: ScanMemory): ScanFns {
  const pages = memory.buffer.byteLength / 65536;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  try {
    const instance = new WA.Instance(scanModule(pages, shared), { env: { mem: memory } });
    return instance.exports as unknown as ScanFns;
  } catch {
    return scanFnsJs(new Uint8Array(memory.buffer));
  }
}
