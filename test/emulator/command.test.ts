// `batchpilot emulator` as a process: it announces its URL, serves until SIGTERM and exits 0; a
// bad flag or faults file is a usage error; state written before a hard kill is picked up again.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../../emulator/index.ts';
import { chatFile, clientFor, createBatch, download, tempDir, waitFor } from './helpers.ts';

const ENTRY = path.join(import.meta.dirname, 'command-entry.ts');
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function launch(args: string[]): {
  child: ChildProcess;
  url: Promise<string>;
  exit: Promise<number | null>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [ENTRY, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+?),/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(`exited before listening: ${out}${err}`)));
  });
  url.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url, exit, stderr: () => err };
}

describe('batchpilot emulator', () => {
  it('serves on the given port with the faults file until SIGTERM, then exits 0', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const faults = path.join(dir, 'faults.json');
    fs.writeFileSync(faults, JSON.stringify({ validatingMs: 20, perLineMs: 0, finalizingMs: 20 }));
    const run = launch([
      '--port',
      '0',
      '--data-dir',
      path.join(dir, 'state'),
      '--api-key',
      'sk-1',
      '--faults',
      faults,
    ]);
    const url = await run.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const client = clientFor(url, 'sk-1');
    const b = await waitFor(client, (await createBatch(client, chatFile(3))).id, undefined, 5000);
    expect(b.status).toBe('completed');
    expect((await fetch(`${url}/files`)).status).toBe(401);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(fs.existsSync(path.join(dir, 'state', 'batches', `${b.id}.json`))).toBe(true);
  });

  it('refuses a bad port, profile or faults file with exit code 2', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ lineRetryableRate: 3 }));
    for (const args of [
      ['--port', 'x'],
      ['--profile', 'azure'],
      ['--faults', bad],
      ['--faults', path.join(dir, 'none.json')],
    ]) {
      const run = launch([...args, '--data-dir', dir]);
      expect(await run.exit).toBe(2);
      expect(run.stderr()).toMatch(/--(port|profile|faults)/);
    }
  });

  it('loses no line and repeats none after a hard kill mid-batch', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const faults = path.join(dir, 'faults.json');
    fs.writeFileSync(faults, JSON.stringify({ validatingMs: 20, perLineMs: 3, finalizingMs: 20 }));
    const state = path.join(dir, 'state');
    const run = launch(['--port', '0', '--data-dir', state, '--faults', faults]);
    const client = clientFor(await run.url);
    const created = await createBatch(client, chatFile(400));
    let b = await waitFor(client, created.id, ['in_progress'], 5000);
    while (b.request_counts!.completed < 100) b = await client.batches.retrieve(created.id);
    run.child.kill('SIGKILL');
    await run.exit;
    const emu = await startEmulator({
      port: 0,
      dataDir: state,
      faults: { validatingMs: 20, perLineMs: 0, finalizingMs: 20 },
    });
    try {
      const again = clientFor(emu.url);
      const done = await waitFor(again, created.id);
      expect(done.status).toBe('completed');
      const ids = (await download(again, done.output_file_id)).map((l) => l.custom_id);
      expect(ids).toHaveLength(400);
      expect(new Set(ids).size).toBe(400);
      expect(done.request_counts).toEqual({ total: 400, completed: 400, failed: 0 });
    } finally {
      await emu.close();
    }
  });
});
