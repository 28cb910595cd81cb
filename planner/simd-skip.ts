// The scanner's `skip` function as WebAssembly: it validates a whole JSON value no rule reads (a
// chat line's "messages") in one call, strings 16 bytes at a time. Assembled by simd-asm.ts.
import {
  END,
  END_,
  GET,
  I32,
  I32_ADD,
  I32_AND,
  I32_CONST,
  I32_CTZ,
  I32_EQ,
  I32_EQZ,
  I32_GE_U,
  I32_GT_U,
  I32_LOAD,
  I32_LOAD8_U,
  I32_LT_U,
  I32_NE,
  I32_OR,
  I32_SHL,
  I32_SUB,
  I32_WRAP_I64,
  I64,
  I64_AND,
  I64_CONST,
  I64_EQZ,
  I64_EXTEND_I32_U,
  I64_OR,
  I64_SHL,
  I64_SHR_U,
  M,
  P,
  RETURN,
  SET,
  SIMPLE_ESCAPES,
  SPECIAL,
  TEE,
  V128,
  anyOf,
  asm,
  mask16,
  sleb,
  when,
  type Op,
} from './simd-asm.ts';

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

/**
 * `skip`: (p, end) → skips one whole JSON value from p (whitespace first), nesting up to 60: the
 * index after it, or -1 when it is not valid JSON or nests deeper (the caller then scans the line
 * itself, for the exact error).
 */
export const SKIP_BODY = [
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
