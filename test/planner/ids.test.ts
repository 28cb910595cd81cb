// custom_id uniqueness in bounded memory: the hash table, and collisions (forced by keeping only a
// few bits of each hash) that must never reject a line whose id is in fact new.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IdTable, IdTableFullError, LineIndex } from '../../planner/ids.ts';
import { idFromPrefix } from '../../planner/line-id.ts';
import { ENDPOINT, plan, readPlan, tmpDir } from './helpers.ts';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const line = (id: string): string =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: ENDPOINT,
    body: { model: 'qwen-plus', messages: [] },
  });

describe('IdTable', () => {
  it('finds earlier lines only when the caller confirms them', () => {
    const t = new IdTable(10, 1 << 20);
    expect(t.add(5, 7, 1, () => true)).toBe(0);
    expect(t.add(5, 7, 2, () => false)).toBe(0); // same hashes, another id: recorded too
    expect(t.add(5, 7, 3, (l) => l === 2)).toBe(2);
    expect(t.count).toBe(2);
  });

  it('adds segments past its first guess, and refuses past its memory cap', () => {
    const t = new IdTable(1000, 64 * 1024);
    let line = 0;
    expect(() => {
      for (let i = 0; i < 20_000; i++) t.add((i * 2654435761) >>> 0, i, ++line, () => false);
    }).toThrow(IdTableFullError);
    expect(t.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(t.count).toBeGreaterThan(5000);
  });
});

describe('hash collisions', () => {
  for (const [name, tuning] of [
    ['main thread', { workers: 0, idHashMask: 0x3 }],
    ['scan threads', { workers: 2, idHashMask: 0x3, chunkBytes: 1 << 16 }],
  ] as const) {
    it(`${name}: with 2-bit hashes, only true duplicates are rejected`, async () => {
      const ids: string[] = [];
      for (let i = 0; i < 600; i++) ids.push(i % 7 === 6 ? `id-${i - 3}` : `id-${i}`);
      ids.push('\u00e9t\u00e9', 'A"1', 'é\\té');
      const text =
        ids.map(line).join('\n') +
        '\n' +
        line('\u00e9t\u00e9') +
        '\n' +
        '{"custom_id":"\\u00e9t\\u00e9","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n';
      const input = path.join(work, `collide-${tuning.workers}.jsonl`);
      fs.writeFileSync(input, text);
      const outDir = path.join(work, `collide-${tuning.workers}`);
      const report = await plan(input, outDir, {}, tuning);
      const expectedDups = ids.flatMap((id, k) => (ids.indexOf(id) < k ? [k + 1] : []));
      expectedDups.push(ids.length + 1, ids.length + 2);
      expect(report.problems.map((p) => p.line)).toEqual(expectedDups);
      for (const p of report.problems) {
        expect(p.code).toBe('duplicate_custom_id');
        const first = ids.indexOf(p.custom_id!) + 1;
        expect(p.message).toContain(`line ${first}`);
      }
      expect(report.valid).toBe(new Set(ids).size);
      expect(readPlan(outDir).shards.flatMap((s) => s.nums)).toHaveLength(report.valid);
    });
  }
});

describe('duplicates past long lines', () => {
  for (const workers of [0, 2]) {
    it(`finds the first occurrence across lines longer than a read block or a slot (${workers} scan threads)`, async () => {
      // The slot is 128 KiB here: a 300 KB line is refused unscanned (its id read from its start),
      // a 100 KB one is scanned and refused for its size; both ids still count.
      const big = (id: string, bytes: number): string =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: ENDPOINT,
          body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'x'.repeat(bytes) }] },
        });
      const lines = [
        big('huge', 300_000),
        line('a'),
        big('large', 100_000),
        line('b'),
        line('a'),
        line('huge'),
        line('large'),
        line('b'),
      ];
      const input = path.join(work, `long-${workers}.jsonl`);
      fs.writeFileSync(input, lines.join('\n') + '\n');
      const report = await plan(
        input,
        path.join(work, `long-${workers}`),
        { limits: { maxLines: 100, maxBytes: 1_000_000, maxLineBytes: 50_000 } },
        { workers, chunkBytes: 1 << 16 },
      );
      expect(report.problems.map((p) => [p.line, p.code, p.custom_id])).toEqual([
        [1, 'line_too_large', 'huge'],
        [3, 'line_too_large', 'large'],
        [5, 'duplicate_custom_id', 'a'],
        [6, 'duplicate_custom_id', 'huge'],
        [7, 'duplicate_custom_id', 'large'],
        [8, 'duplicate_custom_id', 'b'],
      ]);
      expect(report.problems[2]!.message).toContain('line 2');
      expect(report.problems[3]!.message).toContain('line 1');
      expect(report.valid).toBe(2);
    });
  }
});

describe('the custom_id of a line too long to scan', () => {
  it('is the top-level key of an object, as the scanner counts it', () => {
    expect(idFromPrefix('\ufeff {"body":{"custom_id":"nested"},"custom_id" : "top","x":"')).toBe('top');
    expect(idFromPrefix('{"a":"say \\"custom_id\\":\\"no\\"","custom_id":"caf\\u00e9"')).toBe('café');
    expect(idFromPrefix('[{"custom_id":"in-an-array"}')).toBeUndefined();
    expect(idFromPrefix('{"body":{"custom_id":"nested","x":"')).toBeUndefined();
    expect(idFromPrefix('{"custom_id":"cut-o')).toBeUndefined();
    expect(idFromPrefix('{"custom_id":""}')).toBeUndefined();
    expect(idFromPrefix(`{"custom_id":"${'x'.repeat(257)}"}`)).toBeUndefined();
    expect(idFromPrefix('{"custom_id":7}')).toBeUndefined();
  });

  it('counts for uniqueness only when it is that key (an array line does not reserve its id)', async () => {
    const huge = (text: string): string => text.replace('"PAD"', `"${'x'.repeat(300_000)}"`);
    const lines = [
      huge(
        '[{"custom_id":"arr","method":"POST","url":"/v1/chat/completions","body":{"model":"m","pad":"PAD"}}]',
      ),
      huge('{"body":{"custom_id":"inner"},"custom_id":"outer","method":"POST","pad":"PAD"}'),
      line('arr'),
      line('inner'),
      line('outer'),
    ];
    const input = path.join(work, 'prefix-ids.jsonl');
    fs.writeFileSync(input, lines.join('\n') + '\n');
    const report = await plan(
      input,
      path.join(work, 'prefix-ids'),
      { limits: { maxLines: 100, maxBytes: 1_000_000, maxLineBytes: 50_000 } },
      { workers: 0, chunkBytes: 1 << 16 },
    );
    expect(report.problems.map((p) => [p.line, p.code, p.custom_id])).toEqual([
      [1, 'line_too_large', undefined],
      [2, 'line_too_large', 'outer'],
      [5, 'duplicate_custom_id', 'outer'],
    ]);
    expect(report.valid).toBe(2);
  });
});

describe('LineIndex', () => {
  it('finds where any line starts from, within its entry cap', () => {
    const index = new LineIndex(4, 64);
    for (let line = 1; line <= 100_000; line++) index.note(line, line * 10);
    for (const line of [1, 2, 33, 5000, 99_999, 100_000]) {
      const at = index.seek(line);
      expect(at.line).toBeLessThanOrEqual(line);
      expect(at.offset).toBe(at.line * 10);
      expect(line - at.line).toBeLessThan(100_000 / 16);
    }
  });
});
