// The package as a user installs it: `npm pack`, installed into an empty prefix from the tarball
// (dependencies from the registry), then its `batchpilot` binary run from node_modules, where Node
// refuses to strip types, so this proves the built JavaScript is what runs.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTemporalCli } from '../../worker/temporal-cli.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

describe('the npm package', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-pack-'));
  const prefix = path.join(tmp, 'prefix');
  let bin: string;
  let files: string[] = [];

  beforeAll(() => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' }),
    ) as { filename: string; files: { path: string }[] }[];
    files = packed[0]!.files.map((f) => f.path);
    fs.mkdirSync(prefix);
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        path.join(tmp, packed[0]!.filename),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    bin = path.join(prefix, 'node_modules', '.bin', 'batchpilot');
  }, 600_000);

  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function batchpilot(args: string[], cwd = tmp) {
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_CLI_PATH: findTemporalCli() };
    for (const k of ['TEMPORAL_ADDRESS', 'BATCHPILOT_DATA_DIR', 'BATCHPILOT_PROVIDER', 'BATCHPILOT_API_KEY'])
      delete env[k];
    const r = spawnSync(bin, args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('ships the built JavaScript and no TypeScript sources or tests', () => {
    expect(files).toContain('dist/bin/batchpilot.js');
    expect(files).toContain('dist/workflows/index.js');
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('node_modules/'))).toEqual([]);
    expect(fs.realpathSync(bin)).toContain(`${path.sep}node_modules${path.sep}batchpilot${path.sep}dist`);
  });

  it('prints its version and its help', () => {
    const v = batchpilot(['--version']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(`batchpilot ${VERSION}`);
    const h = batchpilot(['--help']);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^\s+run\s/m);
    expect(h.stdout).toMatch(/^\s+codec-server\s/m);
  });

  it('runs a small job on the embedded default', () => {
    const work = path.join(tmp, 'work');
    fs.mkdirSync(work);
    const lines = fs.readFileSync(path.join(ROOT, 'examples', 'chat-small.jsonl'), 'utf8').split('\n');
    fs.writeFileSync(path.join(work, 'three.jsonl'), lines.slice(0, 3).join('\n') + '\n');
    const r = batchpilot(['run', 'three.jsonl', '--out', 'out'], work);
    expect(r.stderr).toContain('embedded Temporal dev server');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('3 succeeded');
    const summary = JSON.parse(fs.readFileSync(path.join(work, 'out', 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ status: 'completed', lines: { total: 3, succeeded: 3, failed: 0 } });
    const ids = fs
      .readFileSync(path.join(work, 'out', 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(ids).toEqual(['example-001', 'example-002', 'example-003']);
  });
});
