// Dry run and --thinking rewrite each line in place (model, url, body.enable_thinking,
// body.thinking_budget), keep everything else byte for byte, and group by the rewritten values.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DRY_RUN } from '../../common/profiles.ts';
import { ENDPOINT, plan, readPlan, tmpDir } from './helpers.ts';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const lines = [
  {
    custom_id: 'a',
    method: 'POST',
    url: ENDPOINT,
    body: { model: 'qwen3.6-plus', messages: [{ role: 'user', content: 'é "x"' }] },
  },
  {
    custom_id: 'b',
    method: 'POST',
    url: ENDPOINT,
    body: { model: 'qwen-plus', enable_thinking: false, thinking_budget: 5, messages: [] },
  },
  {
    url: ENDPOINT,
    body: { temperature: 0.5, model: 'qwen-flash', enable_thinking: true },
    custom_id: 'c',
    method: 'POST',
  },
];
const input = path.join(work, 'in.jsonl');
fs.writeFileSync(input, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');

describe('rewrites', () => {
  it('dry run: every line goes to the test model on its endpoint, one group per thinking mode', async () => {
    const outDir = path.join(work, 'dry');
    const report = await plan(input, outDir, {
      rewrite: { model: DRY_RUN.model, url: DRY_RUN.endpoint },
      limits: DRY_RUN.limits,
    });
    expect(report.valid).toBe(3);
    expect(report.groups.map((g) => [g.model, g.thinking])).toEqual([
      [DRY_RUN.model, null],
      [DRY_RUN.model, false],
      [DRY_RUN.model, true],
    ]);
    const got = readPlan(outDir);
    expect(got.manifest.endpoint).toBe(DRY_RUN.endpoint);
    const out = got.shards.flatMap((s) => s.lines.map((l) => JSON.parse(l) as (typeof lines)[number]));
    expect(out.map((o) => o.custom_id).sort()).toEqual(['a', 'b', 'c']);
    for (const o of out) {
      const orig = lines.find((l) => l.custom_id === o.custom_id)!;
      expect(o).toEqual({ ...orig, url: DRY_RUN.endpoint, body: { ...orig.body, model: DRY_RUN.model } });
    }
  });

  it('--thinking on with a budget sets both at the top level of body, replacing what was there', async () => {
    const outDir = path.join(work, 'think');
    const report = await plan(input, outDir, { rewrite: { thinking: 'on', thinkingBudget: 100 } });
    expect(report.groups.every((g) => g.thinking === true)).toBe(true);
    expect(report.warnings).toEqual([]);
    const out = readPlan(outDir).shards.flatMap((s) =>
      s.lines.map((l) => JSON.parse(l) as (typeof lines)[number]),
    );
    for (const o of out) {
      const orig = lines.find((l) => l.custom_id === o.custom_id)!;
      expect(o.body).toEqual({ ...orig.body, enable_thinking: true, thinking_budget: 100 });
    }
  });

  it('--thinking off turns the default-thinking warning off', async () => {
    const report = await plan(input, undefined, { rewrite: { thinking: 'off' } });
    expect(report.groups.map((g) => g.thinking)).toEqual([false, false, false]);
    expect(report.shardList.every((s) => s.sha256 === '')).toBe(true);
  });

  it('the size limit applies to the rewritten line', async () => {
    const size = Buffer.byteLength(JSON.stringify(lines[0]));
    const report = await plan(input, undefined, {
      rewrite: { model: 'a-much-longer-model-name-than-before' },
      limits: { maxLines: 10, maxBytes: 10_000, maxLineBytes: size + 5 },
    });
    expect(report.problems.map((p) => [p.line, p.code])).toContainEqual([1, 'line_too_large']);
  });
});
