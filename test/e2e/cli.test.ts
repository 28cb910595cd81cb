// The CLI as a user runs it: the README's first command end to end (embedded dev server, emulator,
// in-process worker), help, exit codes and configuration errors.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJsonl } from '../support/harness.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'batchpilot.ts');

function batchpilot(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const env = { ...process.env, ...opts.env };
  for (const k of [
    'TEMPORAL_ADDRESS',
    'BATCHPILOT_DATA_DIR',
    'BATCHPILOT_PROVIDER',
    'BATCHPILOT_API_KEY',
    'DASHSCOPE_API_KEY',
    'OPENAI_API_KEY',
  ]) {
    if (!(opts.env && k in opts.env)) delete env[k];
  }
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env,
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('batchpilot CLI', () => {
  it('runs the README job on the embedded default and writes the contract outputs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-e2e-'));
    fs.mkdirSync(path.join(dir, 'examples'));
    fs.copyFileSync(
      path.join(ROOT, 'examples', 'chat-small.jsonl'),
      path.join(dir, 'examples', 'chat-small.jsonl'),
    );
    const r = batchpilot(['run', 'examples/chat-small.jsonl', '--out', 'out/'], { cwd: dir });
    expect(r.stderr).toContain('embedded Temporal dev server');
    expect(r.stderr).toContain('using the local Batch API emulator');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('40 succeeded');
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({
      status: 'completed',
      lines: { total: 40, succeeded: 40, failed: 0, rejected: 0 },
      shards: 2,
      batches: 2,
      rounds: 1,
    });
    const results = readJsonl<{ custom_id: string }>(path.join(dir, 'out', 'results.jsonl'));
    expect(results.map((x) => x.custom_id)).toEqual(
      Array.from({ length: 40 }, (_, i) => `example-${String(i + 1).padStart(3, '0')}`),
    );
    expect(fs.readFileSync(path.join(dir, 'out', 'errors.jsonl'), 'utf8')).toBe('');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'out', 'manifest.json'), 'utf8')).shards).toHaveLength(
      2,
    );
  });

  it('lists every contract command in --help and gives each its own help', () => {
    const r = batchpilot(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of [
      'validate',
      'plan',
      'run',
      'start',
      'status',
      'watch',
      'cancel',
      'results',
      'worker',
      'dev',
      'emulator',
      'schedule',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\s`, 'm'));
      const h = batchpilot([cmd, '--help']);
      expect(h.code, cmd).toBe(0);
      expect(h.stdout, cmd).toContain(`usage: batchpilot ${cmd}`);
    }
  });

  it('exits 2 with the variable named on bad configuration, and says how to get a server', () => {
    const bad = batchpilot(['start', 'x.jsonl', '--out', 'o'], { env: { BATCHPILOT_MAX_IN_FLIGHT: 'lots' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('BATCHPILOT_MAX_IN_FLIGHT');
    const noServer = batchpilot(['status', 'some-job'], { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toContain('batchpilot dev');
    const usage = batchpilot(['run', 'x.jsonl']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--out');
    expect(batchpilot(['frobnicate']).code).toBe(2);
  });
});
