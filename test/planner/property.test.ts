// Property-style checks on random inputs and random limits: every valid line lands in exactly one
// shard, byte for byte; every shard respects every limit and holds one (model, thinking) group in
// input order; sidecars name the right input lines; lines = valid + rejected.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rng } from '../../bench/gen-chat.ts';
import { ENDPOINT, oracle, plan, readPlan, requestLines, tmpDir } from './helpers.ts';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const MODELS = ['qwen-plus', 'qwen-flash', 'qwen3.6-plus'];
const MORE_MODELS = [...MODELS, 'qwen-max', 'qwen-turbo', 'deepseek-v3'];

/** A random input: mostly valid requests, some broken, duplicates, blank lines, CRLF, a BOM. */
function randomInput(
  rand: () => number,
  lines: number,
  maxLineBytes: number,
  hugeEvery: number,
  models = MODELS,
): Buffer {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const parts: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < lines; i++) {
    const roll = rand();
    if (roll < 0.05) {
      parts.push(pick(['', '   ', '\t']));
      continue;
    }
    let id = `id-${Math.floor(rand() * 1e9)}`;
    if (ids.length > 0 && rand() < 0.05) id = pick(ids);
    ids.push(id);
    const size =
      rand() < 1 / hugeEvery ? maxLineBytes + 70_000 : Math.floor(rand() * rand() * maxLineBytes * 1.2);
    let content = '';
    while (content.length < size) content += pick(['word ', 'é ', '中文 ', '"q" ', '\\ ', '\n', '😀 ']);
    const body: Record<string, unknown> = {
      model: pick(models),
      messages: [{ role: 'user', content }],
    };
    const t = rand();
    if (t < 0.3) body.enable_thinking = true;
    else if (t < 0.5) body.enable_thinking = false;
    const req: Record<string, unknown> = { custom_id: id, method: 'POST', url: ENDPOINT, body };
    let line = JSON.stringify(req);
    if (roll < 0.1) {
      // Truncated, unless over the limit: the planner refuses a line longer than its read slot
      // without reading past its first 64 KiB, so it counts the custom_id it finds there whether
      // or not the rest would parse; the oracle, which parses whole lines, cannot agree there.
      const cut = Math.floor(rand() * line.length);
      if (Buffer.byteLength(line) <= maxLineBytes) line = line.slice(0, cut);
    } else if (roll < 0.13) line = JSON.stringify({ ...req, url: '/v1/embeddings' });
    else if (roll < 0.15) line = JSON.stringify([req]);
    else if (roll < 0.17) line = JSON.stringify({ ...req, body: { ...body, stream: true } });
    parts.push(line + (rand() < 0.1 ? '\r' : ''));
  }
  let text = parts.join('\n');
  if (rand() < 0.7) text += '\n';
  const bom = rand() < 0.2 ? '\ufeff' : '';
  return Buffer.from(bom + text, 'utf8');
}

/**
 * `wide`: six models with at most two shard files open at once (buffers handed from shard to shard)
 * and lines up to 600 KB (past the 256 KiB write buffer of a shard). `mask`: keep only these bits
 * of each custom_id hash (forces collisions, each confirmed by re-reading the earlier line).
 */
async function check(seed: number, workers: number, wide = false, mask?: number): Promise<void> {
  const rand = rng(seed);
  const maxLineBytes = wide ? 300_000 + Math.floor(rand() * 300_000) : 200 + Math.floor(rand() * 3000);
  const limits = {
    maxLineBytes,
    maxLines: 1 + Math.floor(rand() * 20),
    maxBytes: maxLineBytes + 1 + Math.floor(rand() * maxLineBytes * 5),
  };
  const input = path.join(work, `in-${seed}.jsonl`);
  const bytes = wide
    ? randomInput(rand, 40 + Math.floor(rand() * 40), maxLineBytes, 10, MORE_MODELS)
    : randomInput(rand, Math.floor(rand() * 300), maxLineBytes, 60);
  fs.writeFileSync(input, bytes);
  const outDir = path.join(work, `out-${seed}`);
  const report = await plan(
    input,
    outDir,
    { limits },
    {
      workers,
      chunkBytes: 1 << 16,
      ...(wide ? { maxOpenShards: 2 } : {}),
      ...(mask !== undefined ? { idHashMask: mask } : {}),
    },
  );

  // The oracle's verdict per request line, ids first come first kept.
  const seen = new Map<string, number>();
  const expectedKept: { line: number; text: string; group: string }[] = [];
  const expectedRejected: number[] = [];
  const reqs = requestLines(bytes);
  for (const r of reqs) {
    const v = oracle(r.bytes, limits.maxLineBytes);
    const dup = v.id !== undefined && seen.has(v.id);
    if (v.id !== undefined && !dup) seen.set(v.id, r.line);
    if (v.ok === true && !dup) {
      expectedKept.push({ line: r.line, text: r.bytes.toString('utf8'), group: `${v.model}/${v.thinking}` });
    } else expectedRejected.push(r.line);
  }
  expect(report.lines).toBe(reqs.length);
  expect(report.valid + report.rejected).toBe(report.lines);
  expect(report.valid).toBe(expectedKept.length);

  const onDisk = readPlan(outDir);
  expect(onDisk.rejected.map((x) => x.line)).toEqual(expectedRejected);
  const got: { line: number; text: string; group: string }[] = [];
  let lastFirst = 0;
  const lastOfGroup = new Map<string, { shard: number; bytes: number; lines: number }>();
  onDisk.manifest.shards.forEach((s, k) => {
    const shard = onDisk.shards[k]!;
    const group = `${s.model}/${s.thinking}`;
    expect(s.index).toBe(k);
    expect(shard.lines.length).toBe(s.lines);
    expect(shard.nums.length).toBe(s.lines);
    expect(shard.bytes).toBe(s.bytes);
    expect(s.lines).toBeLessThanOrEqual(limits.maxLines);
    expect(s.bytes).toBeLessThanOrEqual(limits.maxBytes);
    expect(
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(outDir, s.file)))
        .digest('hex'),
    ).toBe(s.sha256);
    // Indexes follow first lines; order is kept inside a shard.
    expect(shard.nums[0]!).toBeGreaterThan(lastFirst);
    lastFirst = shard.nums[0]!;
    for (let j = 1; j < shard.nums.length; j++) expect(shard.nums[j]!).toBeGreaterThan(shard.nums[j - 1]!);
    // A new shard of a group opens only when the next line did not fit the last one.
    const prev = lastOfGroup.get(group);
    if (prev) {
      const firstBytes = Buffer.byteLength(shard.lines[0]!) + 1;
      expect(prev.lines + 1 > limits.maxLines || prev.bytes + firstBytes > limits.maxBytes).toBe(true);
    }
    lastOfGroup.set(group, { shard: k, bytes: s.bytes, lines: s.lines });
    shard.lines.forEach((text, j) => got.push({ line: shard.nums[j]!, text, group }));
  });
  got.sort((a, b) => a.line - b.line);
  expect(got).toEqual(expectedKept);
}

describe('random inputs and limits', () => {
  for (let seed = 1; seed <= 40; seed++) {
    it(`seed ${seed}, main thread`, async () => check(seed, 0));
  }
  for (let seed = 101; seed <= 104; seed++) {
    it(`seed ${seed}, scan threads`, async () => check(seed, seed % 2 === 0 ? 2 : 1));
  }
  for (let seed = 201; seed <= 204; seed++) {
    it(`seed ${seed}, six models, two open shard files, lines past the write buffer`, async () =>
      check(seed, seed % 2 === 0 ? 2 : 0, true));
  }
  for (let seed = 301; seed <= 304; seed++) {
    it(`seed ${seed}, the same with 2-bit custom_id hashes`, async () =>
      check(seed, seed % 2 === 0 ? 2 : 0, true, 0x3));
  }
});

describe('report', () => {
  it('keeps maxProblems in the report, every problem in rejected.jsonl, and reports progress', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => (i % 2 ? `not json ${i}` : `{"custom_id":"x${i}"}`));
    const input = path.join(work, 'many-bad.jsonl');
    fs.writeFileSync(input, lines.join('\n') + '\n');
    const progress: { bytesRead: number; linesRead: number }[] = [];
    const outDir = path.join(work, 'many-bad');
    const report = await plan(input, outDir, { maxProblems: 5, onProgress: (p) => progress.push(p) });
    expect(report.rejected).toBe(50);
    expect(report.problems).toHaveLength(5);
    expect(readPlan(outDir).rejected).toHaveLength(50);
    expect(progress.at(-1)).toEqual({ bytesRead: fs.statSync(input).size, linesRead: 50 });
  });
});
