// The bad-input corpus (test/fixtures/bad-input): each kind of broken line gets its code,
// its line number and a message naming the fix, and nothing else is lost.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../planner/index.ts';
import { LIMITS, plan, readPlan, requestLines, tmpDir } from './helpers.ts';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'bad-input');

interface Expected {
  limits?: Partial<typeof LIMITS>;
  lines: number;
  valid: number;
  rejected: number;
  problems: { line: number; code: string; match: string }[];
  warnings?: { line: number; code: string; match: string }[];
  groups?: number;
  custom_ids?: Record<string, string>;
}
const expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as Record<
  string,
  Expected
>;
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('bad-input corpus', () => {
  it('has at least 25 kinds', () => {
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(25);
  });

  for (const [name, exp] of Object.entries(expected)) {
    it(`${name}: code, line and fix for each bad line; the good lines all in shards`, async () => {
      const input = path.join(DIR, name);
      const outDir = path.join(work, name);
      const limits = { ...LIMITS, ...exp.limits };
      const report = await plan(input, outDir, { limits });
      expect({ lines: report.lines, valid: report.valid, rejected: report.rejected }).toEqual({
        lines: exp.lines,
        valid: exp.valid,
        rejected: exp.rejected,
      });
      expect(report.problems.map((p) => ({ line: p.line, code: p.code }))).toEqual(
        exp.problems.map((p) => ({ line: p.line, code: p.code })),
      );
      exp.problems.forEach((p, k) =>
        expect(report.problems[k]!.message).toMatch(
          new RegExp(p.match.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
        ),
      );
      for (const [line, id] of Object.entries(exp.custom_ids ?? {})) {
        expect(report.problems.find((p) => p.line === Number(line))?.custom_id).toBe(id);
      }
      expect(report.warnings.map((w) => ({ line: w.line, code: w.code }))).toEqual(
        (exp.warnings ?? []).map((w) => ({ line: w.line, code: w.code })),
      );
      (exp.warnings ?? []).forEach((w, k) => expect(report.warnings[k]!.message).toContain(w.match));
      if (exp.groups !== undefined) expect(report.groups).toHaveLength(exp.groups);

      // On disk: rejected.jsonl has the rejected lines; the shards hold every other line, byte for byte.
      const onDisk = readPlan(outDir);
      expect(onDisk.rejected.map((r) => r.line)).toEqual(
        report.problems.filter((p) => p.line > 0).map((p) => p.line),
      );
      const rejectedLines = new Set(onDisk.rejected.map((r) => r.line));
      const kept = requestLines(fs.readFileSync(input)).filter((l) => !rejectedLines.has(l.line));
      const inShards = onDisk.shards.flatMap((s) => s.lines.map((text, k) => ({ line: s.nums[k]!, text })));
      inShards.sort((a, b) => a.line - b.line);
      expect(inShards).toEqual(kept.map((l) => ({ line: l.line, text: l.bytes.toString('utf8') })));
    });
  }

  it('a directory is refused with a clear error', async () => {
    await expect(plan(path.join(DIR, 'a-directory'), undefined)).rejects.toThrow(InputError);
    await expect(plan(path.join(DIR, 'a-directory'), undefined)).rejects.toThrow(/is a directory/);
  });

  it('a missing path is refused with a clear error', async () => {
    await expect(plan(path.join(DIR, 'no-such-file.jsonl'), undefined)).rejects.toThrow(/does not exist/);
  });
});
