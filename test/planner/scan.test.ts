// The byte scanner agrees with JSON.parse on what is JSON, and the SIMD search agrees with its
// plain-JS twin, on random and mutated inputs.
import { describe, expect, it } from 'vitest';
import { rng } from '../../bench/gen-chat.ts';
import {
  F_CUSTOM_ID,
  F_EXTRA_THINK,
  F_MODEL,
  F_THINK,
  T_FALSE,
  T_TRUE,
  newScan,
} from '../../planner/scan-result.ts';
import { makeScanner } from '../../planner/scan.ts';
import { ESCAPED } from '../../planner/escaped.ts';
import { compileScanModule, copyJs, scanFnsFor, scanFnsJs, scanMemory } from '../../planner/simd.ts';

const memory = scanMemory(1 << 20, false);
const u8 = new Uint8Array(memory.buffer);
const simd = scanFnsFor(memory, compileScanModule(memory));
const js = scanFnsJs(u8);

/** Bytes JSON cares about, and a few it must refuse, for mutating valid texts. */
const NOISE = [...'{}[]:,"\\ 0123456789.eE+-tfnrul\t', '\u0000', '\u0001', 'é'];

/** Up to three random deletions, insertions of NOISE or truncations of `text`. */
function mutate(text: string, rand: () => number): string {
  for (let m = Math.floor(rand() * 4); m > 0; m--) {
    const at = Math.floor(rand() * (text.length + 1));
    const op = rand();
    if (op < 0.4) text = text.slice(0, at) + text.slice(at + 1);
    else if (op < 0.8) text = text.slice(0, at) + NOISE[Math.floor(rand() * NOISE.length)]! + text.slice(at);
    else text = text.slice(0, at);
  }
  return text;
}

describe('SIMD search', () => {
  it('is compiled here (not the fallback)', () => {
    expect(String(simd.str)).toContain('native code');
  });

  it('finds the same bytes as the JS version', () => {
    const rand = rng(3);
    const special = [0x22, 0x5c, 0x00, 0x1f, 0x80, 0xff, 0x0a, 0x75, 0x6e, 0x2f];
    for (let t = 0; t < 20_000; t++) {
      const n = 1 + Math.floor(rand() * 120);
      const start = Math.floor(rand() * 1000);
      for (let i = 0; i < n + 32; i++) {
        u8[start + i] = rand() < 0.06 ? special[Math.floor(rand() * special.length)]! : 0x61 + (i % 26);
      }
      const from = start + Math.floor(rand() * n);
      expect(simd.str(from, start + n)).toBe(js.str(from, start + n));
      expect(simd.nl(from, start + n)).toBe(js.nl(from, start + n));
    }
    expect(ESCAPED).toBe(0x40000000);
  });
});

describe('line copy', () => {
  it('copies a line and its newline as the JS version does, at any alignment and length', () => {
    const rand = rng(11);
    const twin = scanMemory(1 << 20, false);
    const u8b = new Uint8Array(twin.buffer);
    const jsCopy = copyJs(u8b);
    expect(String(simd.copy)).toContain('native code');
    for (let i = 0; i < 40_000; i++) u8[i] = u8b[i] = Math.floor(rand() * 256);
    for (let t = 0; t < 2_000; t++) {
      for (let i = 0; i < 40_000; i += 1 + Math.floor(rand() * 300))
        u8[i] = u8b[i] = Math.floor(rand() * 256);
      const src = Math.floor(rand() * 20_000);
      const len = Math.floor(rand() * (t % 10 === 0 ? 10_000 : 100));
      const dst = 20_000 + Math.floor(rand() * 9_000);
      const line = Buffer.from(u8.subarray(src, src + len));
      const end = simd.copy(dst, src, len);
      expect(end).toBe(dst + len + 1);
      expect(jsCopy(dst, src, len)).toBe(end);
      expect(u8[dst + len]).toBe(0x0a);
      expect(Buffer.from(u8.subarray(dst, dst + len)).equals(line)).toBe(true);
      expect(Buffer.from(u8.subarray(0, 40_000)).equals(Buffer.from(u8b.subarray(0, 40_000)))).toBe(true);
    }
  });
});

describe('SIMD value skipper', () => {
  it('accepts exactly the JSON values JSON.parse accepts, and stops right after them', () => {
    const rand = rng(8);
    const seeds = [
      '{"messages":[{"role":"user","content":"hi \\"x\\" \\u00e9 é \\n"}],"t":0.5,"n":null,"b":[true,false,-0,1e5,{}]}',
      '[1,2,{"a":null,"b":[[],{}]}]',
      ' -1.5e+10 ',
      '"s"',
    ];
    for (let t = 0; t < 50_000; t++) {
      const text = mutate(seeds[Math.floor(rand() * seeds.length)]!, rand);
      if (text.trim() === '') continue;
      const b = Buffer.from(text, 'utf8');
      u8.set(b, 100);
      const after = simd.skip!(100, 100 + b.length);
      let rest = after;
      while (rest >= 0 && rest < 100 + b.length && ' \t\r\n'.includes(String.fromCharCode(u8[rest]!))) rest++;
      let ok = true;
      try {
        JSON.parse(text);
      } catch {
        ok = false;
      }
      if ((after >= 0 && rest === 100 + b.length) !== ok) {
        throw new Error(`skip and JSON.parse disagree on ${JSON.stringify(text)}`);
      }
    }
  });

  it('leaves nesting past 60 to the scanner', () => {
    const text = '['.repeat(70) + ']'.repeat(70);
    u8.set(Buffer.from(text), 100);
    expect(simd.skip!(100, 100 + text.length)).toBe(-1);
  });
});

describe('scanner', () => {
  const scan = makeScanner(u8, simd);
  const s = newScan();
  const run = (text: string): void => {
    const b = Buffer.from(text, 'utf8');
    u8.set(b, 100);
    scan(s, 100, 100 + b.length);
  };
  const field = (f: number): string => Buffer.from(u8.subarray(s.start[f], s.end[f])).toString('utf8');

  it('accepts exactly what JSON.parse accepts', () => {
    const rand = rng(5);
    const seeds = [
      '{"custom_id":"a","body":{"model":"m","messages":[{"content":"hi \\"x\\" \\u00e9 é \\n"}],"enable_thinking":true}}',
      '[1,2,{"a":null,"b":[[],{}]}]',
      ' -1.5e+10 ',
      '"s"',
      '{"x":0.1,"y":-0,"z":1E5,"w":false}',
    ];
    for (let t = 0; t < 50_000; t++) {
      const text = mutate(seeds[Math.floor(rand() * seeds.length)]!, rand);
      if (text.trim() === '') continue;
      let ok = true;
      try {
        JSON.parse(text);
      } catch {
        ok = false;
      }
      run(text);
      if ((s.err === 0) !== ok) throw new Error(`scanner and JSON.parse disagree on ${JSON.stringify(text)}`);
    }
  });

  it('records the fields the planner reads, by path only', () => {
    run(
      '{"messages":[{"model":"no"}],"custom_id":"id-1","body":{"x":{"model":"no"},"model":"qwen","enable_thinking":false,"extra_body":{"enable_thinking":true}}}',
    );
    expect(s.err).toBe(0);
    expect(field(F_CUSTOM_ID)).toBe('id-1');
    expect(field(F_MODEL)).toBe('qwen');
    expect(s.type[F_THINK]).toBe(T_FALSE);
    expect(s.type[F_EXTRA_THINK]).toBe(T_TRUE);
  });

  it('refuses nesting deeper than the providers read', () => {
    run('['.repeat(1001) + ']'.repeat(1001));
    expect(s.err).not.toBe(0);
    run('['.repeat(999) + ']'.repeat(999));
    expect(s.err).toBe(0);
  });
});
