// `validate` and `plan` report how many lines a job would answer from stored answers, found as the
// worker finds them (beside BATCHPILOT_DATA_DIR, the provider from the environment); --no-reuse and
// --reuse-from change the count, and the plan's shards still hold every line.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { providerScope, requestKeyOfLine } from '../../common/request-key.ts';
import { ANSWERS_DIR_NAME } from '../../storage/answers.ts';
import { LocalAnswerStore } from '../../storage/local-answers.ts';
import { ENDPOINT, tmpDir } from './helpers.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'batchpilot.ts');
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, BATCHPILOT_DATA_DIR: work };
  for (const k of [
    'BATCHPILOT_PROVIDER',
    'BATCHPILOT_API_KEY',
    'DASHSCOPE_API_KEY',
    'OPENAI_API_KEY',
    'BATCHPILOT_ANSWERS_DIR',
    'BATCHPILOT_BASE_URL',
  ])
    delete env[k];
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', BIN, ...args], {
    encoding: 'utf8',
    env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = ['a', 'b', 'c'].map((id) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: ENDPOINT,
    body: { model: 'qwen-plus', messages: [{ role: 'user', content: id }] },
  }),
);
const input = path.join(work, 'in.jsonl');
fs.writeFileSync(input, lines.join('\n') + '\n');

// An earlier job (no API key: the emulator's scope) answered a and b.
const store = new LocalAnswerStore({ root: path.join(work, ANSWERS_DIR_NAME) });
const w = store.writer('earlier-job');
for (const [i, id] of ['a', 'b'].entries()) {
  const result = Buffer.from(
    JSON.stringify({ id: `r${i}`, custom_id: id, response: { status_code: 200, body: {} } }),
  );
  w.put(requestKeyOfLine(providerScope('emulator', undefined), lines[i]!), {
    model: 'qwen-plus',
    usage: [5, 5, 10],
    customId: id,
    result,
  });
}
w.close();

describe('validate and plan with stored answers', () => {
  it('count the lines that would be reused, and their tokens', () => {
    const r = cli('validate', input, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      valid: number;
      reused?: { lines: number; usageByModel: Record<string, { total_tokens: number }> };
    };
    expect(report.valid).toBe(3);
    expect(report.reused?.lines).toBe(2);
    expect(report.reused?.usageByModel['qwen-plus']?.total_tokens).toBe(20);
    expect(cli('validate', input).stdout).toContain('reused: 2 lines would be answered');
  });

  it('--no-reuse counts none; another provider has no answers', () => {
    expect(
      (JSON.parse(cli('validate', input, '--json', '--no-reuse').stdout) as { reused?: unknown }).reused,
    ).toBeUndefined();
    const other = JSON.parse(cli('validate', input, '--json', '--profile', 'openai').stdout) as {
      reused?: { lines: number };
    };
    expect(other.reused?.lines).toBe(0);
  });

  it('plan still writes every line into its shards; --reuse-from a job without answers is a usage error', () => {
    const out = path.join(work, 'plan-out');
    const r = cli('plan', input, '--out', out, '--json');
    expect(r.code).toBe(0);
    expect(
      (JSON.parse(r.stdout) as { reused: { lines: number }; shardList: { lines: number }[] }).shardList[0]!
        .lines,
    ).toBe(3);
    expect(cli('validate', input, '--json', '--reuse-from', 'earlier-job').stdout).toContain('"lines":2');
    const refused = cli('validate', input, '--reuse-from', 'nobody');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('no answers of job nobody are stored');
  });
});
