// `batchpilot validate` and `batchpilot plan` as a user runs them: exit codes, --json, files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENDPOINT, tmpDir } from './helpers.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'batchpilot.ts');
const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'bad-input');
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, BATCHPILOT_PROVIDER: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const good = path.join(work, 'good.jsonl');
fs.writeFileSync(
  good,
  ['a', 'b', 'c']
    .map((id) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: ENDPOINT,
        body: { model: 'qwen-plus', messages: [] },
      }),
    )
    .join('\n') + '\n',
);

describe('batchpilot validate', () => {
  it('exits 0 on a valid input and prints the groups and shards', () => {
    const r = cli('validate', good);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('3 request lines, 3 valid, 0 rejected');
    expect(r.stdout).toContain('qwen-plus, thinking unset: 3 lines');
  });

  it('--json prints the report and exits 1 when lines are rejected', () => {
    const r = cli('validate', path.join(FIXTURES, 'duplicate-custom-id.jsonl'), '--json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(report)).toEqual([
      'lines',
      'valid',
      'rejected',
      'groups',
      'shards',
      'problems',
      'warnings',
      'estimatedInputTokens',
    ]);
    const groupBytes = (report.groups as { bytes: number }[])[0]!.bytes;
    expect(report.estimatedInputTokens).toEqual({
      total: Math.ceil(groupBytes / 4),
      byModel: { 'qwen-plus': Math.ceil(groupBytes / 4) },
    });
    expect(report).toMatchObject({
      lines: 4,
      valid: 2,
      rejected: 2,
      shards: 1,
      groups: [{ model: 'qwen-plus', thinking: null, lines: 2 }],
      problems: [
        { line: 3, code: 'duplicate_custom_id', custom_id: 'same' },
        { line: 4, code: 'duplicate_custom_id', custom_id: 'same' },
      ],
    });
  });

  it('lists every problem with its line number in the human output', () => {
    const r = cli('validate', path.join(FIXTURES, 'csv-as-jsonl.jsonl'));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/line 1: \[invalid_json\].*--prompt-column/);
    expect(r.stdout).toMatch(/line 3: \[invalid_json\]/);
  });

  it('exits 2 for a missing file, a directory, a bad flag, and CSV without --model', () => {
    expect(cli('validate', path.join(work, 'nope.jsonl')).code).toBe(2);
    const dir = cli('validate', path.join(FIXTURES, 'a-directory'));
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain('is a directory');
    const flag = cli('validate', good, '--max-lines', 'lots');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--max-lines');
    const csv = path.join(work, 'in.csv');
    fs.writeFileSync(csv, 'custom_id,prompt\n1,hi\n');
    expect(cli('validate', csv).stderr).toContain('--model is required');
    expect(cli('validate', csv, '--model', 'qwen-plus').code).toBe(0);
  });

  it('an empty file exits 1 with a clear problem', () => {
    const r = cli('validate', path.join(FIXTURES, 'empty.jsonl'));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('empty');
  });
});

describe('batchpilot plan', () => {
  it('writes shards, sidecars, manifest.json and rejected.jsonl', () => {
    const out = path.join(work, 'plan-out');
    const r = cli('plan', path.join(FIXTURES, 'mixed-thinking.jsonl'), '--out', out, '--max-lines', '1');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual([
      'manifest.json',
      'rejected.jsonl',
      'shard-00000.jsonl',
      'shard-00000.lines',
      'shard-00001.jsonl',
      'shard-00001.lines',
      'shard-00002.jsonl',
      'shard-00002.lines',
    ]);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      shards: { thinking: boolean; lines: number }[];
      limits: { maxLines: number };
    };
    expect(manifest.shards.map((s) => s.thinking)).toEqual([true, false, true]);
    expect(manifest.limits.maxLines).toBe(1);
  });

  it('--dry-run caps the limits at the test model and rewrites the lines', () => {
    const out = path.join(work, 'dry-out');
    const r = cli('plan', good, '--out', out, '--dry-run', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { shardList: { model: string }[] };
    expect(report.shardList[0]!.model).toBe('batch-test-model');
    expect(fs.readFileSync(path.join(out, 'shard-00000.jsonl'), 'utf8')).toContain(
      '"url":"/v1/chat/ds-test"',
    );
  });

  it('requires --out', () => {
    const r = cli('plan', good);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--out');
  });
});

describe('batchpilot plan --prices', () => {
  const mixed = path.join(work, 'mixed-models.jsonl');
  fs.writeFileSync(
    mixed,
    [
      ['a', 'qwen-plus'],
      ['b', 'qwen-plus'],
      ['c', 'qwen-max'],
      ['d', 'qwen-flash'],
    ]
      .map(([id, model]) =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: ENDPOINT,
          body: { model, messages: [{ role: 'user', content: `say something about ${id}` }] },
        }),
      )
      .join('\n') + '\n',
  );
  const prices = path.join(work, 'prices.json');
  fs.writeFileSync(
    prices,
    JSON.stringify({
      currency: 'USD',
      batchDiscount: 0.5,
      models: {
        'qwen-plus': { input: 400_000, output: 1_200_000 },
        'qwen-max': { input: 1_600_000, output: 0 },
      },
    }),
  );

  it('prints the cost per model at the batch price and the synchronous worst case, from the shards it wrote', () => {
    const out = path.join(work, 'priced');
    const r = cli('plan', mixed, '--out', out, '--prices', prices, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      estimatedCost: {
        batch: { total: number; byModel: Record<string, number>; unpriced: string[] };
        synchronous: { total: number; byModel: Record<string, number> };
      };
    };
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      shards: { model: string; bytes: number; inputTokens: number }[];
    };
    const tokens = (model: string) =>
      manifest.shards.filter((s) => s.model === model).reduce((n, s) => n + s.inputTokens, 0);
    for (const s of manifest.shards) expect(s.inputTokens).toBe(Math.ceil(s.bytes / 4));
    // Prices are per million tokens: 400,000 per million is 0.4 a token, half of it at the batch price.
    const { batch, synchronous } = report.estimatedCost;
    expect(batch.byModel['qwen-plus']).toBeCloseTo(tokens('qwen-plus') * 0.4 * 0.5, 6);
    expect(batch.byModel['qwen-max']).toBeCloseTo(tokens('qwen-max') * 1.6 * 0.5, 6);
    expect(synchronous.byModel['qwen-plus']).toBeCloseTo(tokens('qwen-plus') * 0.4, 6);
    expect(synchronous.total).toBeCloseTo(2 * batch.total, 6);
    expect(batch.unpriced).toEqual(['qwen-flash']);

    const text = cli('plan', mixed, '--out', out, '--prices', prices, '--output-tokens', '10');
    expect(text.code).toBe(0);
    const plusBatch = (tokens('qwen-plus') * 0.4 + 2 * 10 * 1.2) * 0.5;
    expect(text.stdout).toContain('estimated cost in USD, input tokens and 10 output tokens a line:');
    expect(text.stdout).toContain(
      `qwen-plus: ${plusBatch.toFixed(2)} at the batch price, ${(2 * plusBatch).toFixed(2)} if sent synchronously`,
    );
    expect(text.stdout).toContain('not priced (add them to the prices file): qwen-flash');
  });

  it('refuses a malformed or missing prices file before writing anything', () => {
    const bad = path.join(work, 'bad-prices.json');
    fs.writeFileSync(bad, JSON.stringify({ currency: 'USD', models: { 'qwen-plus': { input: 'cheap' } } }));
    const out = path.join(work, 'never');
    const r = cli('plan', mixed, '--out', out, '--prices', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--prices .*bad-prices\.json: .*"models\.qwen-plus" needs non-negative numbers/);
    expect(fs.existsSync(out)).toBe(false);
    const missing = cli('plan', mixed, '--out', out, '--prices', path.join(work, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--prices: cannot read .*nope\.json/);
    const orphan = cli('plan', mixed, '--out', out, '--output-tokens', '10');
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toContain(
      '--output-tokens prices the answers: give --prices <prices.json> with it',
    );
  });
});
