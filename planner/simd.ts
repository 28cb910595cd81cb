// The scanner's hot loops: "skip string content to the next byte that matters" and "find the end
// of the line". Chat lines are ~90% string content, so these decide the planner's speed. They are
// WebAssembly SIMD functions (16 bytes at a time), assembled here from their opcodes (simd-asm.ts;
// `skip` in simd-skip.ts) so the project needs no wasm toolchain; `scanFnsJs` does the same in plain JS (the fallback where a runtime has
// no wasm SIMD, and the reference the tests compare against).
import {
  BLOCK,
  BR,
  BR_IF,
  END,
  END_,
  F,
  GET,
  I32,
  I32_ADD,
  I32_CONST,
  I32_CTZ,
  I32_EQ,
  I32_GE_U,
  I32_GT_U,
  I32_LOAD8_U,
  I32_LT_U,
  I32_OR,
  IF,
  LOCALS,
  LOOP,
  M,
  P,
  RETURN,
  SET,
  SIMPLE_ESCAPES,
  SPECIAL,
  TEE,
  VOID,
  anyOf,
  mask16,
  name,
  section,
  sleb,
  u32,
} from './simd-asm.ts';
import { ESCAPED, isSimpleEscape } from './escaped.ts';
import { SKIP_BODY } from './simd-skip.ts';

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
          if (p + 1 >= end || !isSimpleEscape(e)) return p | f;
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
