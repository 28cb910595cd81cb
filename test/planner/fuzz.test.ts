// Fuzz: random mutations of valid lines (flipped, dropped and inserted bytes, cuts) never make the
// planner throw, and it keeps exactly the lines a JSON.parse-based oracle accepts: no valid line lost.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rng } from '../../bench/gen-chat.ts';
import { ENDPOINT, LIMITS, oracle, plan, readPlan, requestLines, tmpDir } from './helpers.ts';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const NOISE = [...'{}[]:,"\\ 0123456789.eE+-tfnrul\t\r', '\u0000', '\u0001', 'é', '\ufeff', '😀'];

function mutate(rand: () => number, line: string): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  let s = line;
  const n = Math.floor(rand() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (s.length + 1));
    const op = rand();
    if (op < 0.35) s = s.slice(0, at) + s.slice(at + 1);
    else if (op < 0.7) s = s.slice(0, at) + pick(NOISE) + s.slice(at);
    else if (op < 0.85) s = s.slice(0, at) + pick(NOISE) + s.slice(at + 1);
    else s = s.slice(0, at);
  }
  return s;
}

function validLine(rand: () => number, i: number): string {
  const body: Record<string, unknown> = {
    model: rand() < 0.5 ? 'qwen-plus' : 'qwen3.6-plus',
    messages: [{ role: 'user', content: `question ${i}: "why" \\ é ${'x'.repeat(Math.floor(rand() * 40))}` }],
    temperature: Math.round(rand() * 100) / 100,
  };
  if (rand() < 0.3) body.enable_thinking = rand() < 0.5;
  return JSON.stringify({ custom_id: `f-${i}`, method: 'POST', url: ENDPOINT, body });
}

describe('fuzz', () => {
  for (const seed of [11, 12, 13, 14, 15]) {
    it(`seed ${seed}: 3000 mutated lines, nothing thrown, every valid line kept`, async () => {
      const rand = rng(seed);
      const lines: string[] = [];
      for (let i = 0; i < 3000; i++)
        lines.push(rand() < 0.5 ? validLine(rand, i) : mutate(rand, validLine(rand, i)));
      const bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
      // Invalid UTF-8 too: a few lone continuation bytes.
      for (let k = 0; k < 20; k++) bytes[Math.floor(rand() * bytes.length)] = 0x80 + Math.floor(rand() * 64);
      const input = path.join(work, `fuzz-${seed}.jsonl`);
      fs.writeFileSync(input, bytes);
      const outDir = path.join(work, `fuzz-${seed}`);
      const report = await plan(input, outDir);

      const seen = new Set<string>();
      const kept: number[] = [];
      const unsure = new Set<number>();
      for (const r of requestLines(bytes)) {
        const v = oracle(r.bytes, LIMITS.maxLineBytes);
        const dup = v.id !== undefined && seen.has(v.id);
        if (v.id !== undefined) seen.add(v.id);
        if (v.ok === 'unsure') unsure.add(r.line);
        else if (v.ok && !dup) kept.push(r.line);
      }
      const onDisk = readPlan(outDir);
      const got = onDisk.shards.flatMap((s) => s.nums).sort((a, b) => a - b);
      expect(got.filter((l) => !unsure.has(l))).toEqual(kept);
      expect(report.valid + report.rejected).toBe(report.lines);
    });
  }
});
