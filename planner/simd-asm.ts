// A small WebAssembly assembler for the scanner's functions (simd.ts, simd-skip.ts): the binary
// encodings, the opcodes used, the locals every scanner function shares, a few SIMD building blocks,
// and a structured assembler (blocks, loops and ifs by label name) for the longer bodies.

export const u32 = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
export const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];
export const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

// Opcodes the scanner's functions use (WebAssembly core + SIMD).
export const BLOCK = 0x02,
  LOOP = 0x03,
  IF = 0x04,
  END = 0x0b,
  BR = 0x0c,
  BR_IF = 0x0d,
  RETURN = 0x0f,
  VOID = 0x40;
export const GET = 0x20,
  SET = 0x21,
  TEE = 0x22;
export const I32_CONST = 0x41,
  I32_LOAD8_U = 0x2d,
  I32_EQ = 0x46,
  I32_LT_U = 0x49,
  I32_GT_U = 0x4b,
  I32_GE_U = 0x4f,
  I32_CTZ = 0x68,
  I32_ADD = 0x6a,
  I32_OR = 0x72;
export const SIMD = 0xfd,
  V128_LOAD = 0x00,
  V128_CONST = 0x0c,
  I8X16_EQ = 0x23,
  I8X16_LT_U = 0x26,
  V128_OR = 0x50,
  I8X16_BITMASK = 0x64;
export const I32 = 0x7f,
  V128 = 0x7b;

export const splat = (b: number): number[] => [SIMD, V128_CONST, ...new Array<number>(16).fill(b)];

// Locals every scanner function starts with: 0 $p, 1 $end (params), 2 $m i32, 3 $f i32, 4 $v v128.
export const P = 0,
  END_ = 1,
  M = 2,
  F = 3,
  V = 4;
export const LOCALS = [2, 2, I32, 1, V128];
export const mask16 = (...bytes: number[]): number[] => {
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
export const isByte = (b: number): number[] =>
  b < 0 ? [GET, M, I32_CONST, ...sleb(-b), I32_LT_U] : [GET, M, I32_CONST, ...sleb(b), I32_EQ];
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
export const anyOf = (bytes: number[]): number[] =>
  bytes.flatMap((b, k) => [...isByte(b), ...(k > 0 ? [I32_OR] : [])]);

// Bytes that stop a string skip (a negative entry -b: any byte < b), and the one-letter escapes
// (escaped.ts: the scanner's JS paths read the same list).
export const SPECIAL = [0x22, 0x5c, -0x20];
export { SIMPLE_ESCAPES } from './escaped.ts';

// A small structured assembler for the longer bodies (simd-skip.ts): blocks, loops and ifs by label name,
// branch depths computed here. `when(cond, ...body)`: cond leaves an i32 on the stack.
export type Op =
  | number
  | Op[]
  | { block: string; body: Op[] }
  | { loop: string; body: Op[] }
  | { then: Op[] }
  | { br: string }
  | { brIf: string };

export function asm(ops: Op[], labels: string[] = []): number[] {
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
export const when = (cond: Op[], ...body: Op[]): Op => [...cond, { then: body }];

export const I32_LOAD = 0x28,
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
