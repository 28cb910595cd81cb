// Input "-": `validate` and `plan` read stdin; `run` and `start` refuse it with the way out, since a
// job's input is read by the workers from a file.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'batchpilot.ts');
const INPUT = [
  ...fs
    .readFileSync(path.join(ROOT, 'examples', 'chat-small.jsonl'), 'utf8')
    .split('\n')
    .slice(0, 2),
  '{"custom_id": "broken", "method": "POST"',
  '',
].join('\n');

function batchpilot(args: string[], input: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('input "-"', () => {
  it('validate reads stdin', () => {
    const r = batchpilot(['validate', '-'], INPUT);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('stdin: 3 request lines, 2 valid, 1 rejected');
    expect(r.stdout).toMatch(/line 3: \[/);
    const json = batchpilot(['validate', '-', '--json'], INPUT);
    expect(JSON.parse(json.stdout)).toMatchObject({ lines: 3, valid: 2, rejected: 1 });
  });

  it('plan reads stdin and writes the shards', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-stdin-'));
    const r = batchpilot(['plan', '-', '--out', out], INPUT);
    expect(r.code, r.stderr).toBe(1);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      shards: { lines: number }[];
    };
    expect(manifest.shards.reduce((n, s) => n + s.lines, 0)).toBe(2);
    expect(fs.readFileSync(path.join(out, 'rejected.jsonl'), 'utf8')).toContain('"line":3');
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('run and start refuse it and say what to do', () => {
    for (const cmd of ['run', 'start']) {
      const r = batchpilot([cmd, '-', '--out', 'o'], INPUT);
      expect(r.code, cmd).toBe(2);
      expect(r.stderr).toContain('works for validate and plan only');
      expect(r.stderr).toContain('BATCHPILOT_DATA_DIR');
    }
  });
});
