// `batchpilot dev`: a local Temporal dev server in the foreground with batchpilot's search
// attributes registered, persisted with --db-filename, stopped cleanly by SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../../common/definitions.ts';
import { freePort } from '../../worker/dev-server.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'batchpilot.ts');

describe('batchpilot dev', () => {
  it('serves Temporal with the search attributes and stops on SIGTERM', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    const db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bp-dev-')), 'temporal.db');
    const child = spawn(
      process.execPath,
      [
        BIN,
        'dev',
        '--port',
        String(port),
        '--ui-port',
        String(uiPort),
        '--db-filename',
        db,
        '--ui-codec-endpoint',
        'http://127.0.0.1:8888',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.resume();
    const deadline = Date.now() + 60_000;
    while (!out.includes('Temporal dev server on') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain(`Web UI http://127.0.0.1:${uiPort}`);
    const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    const res = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const a of Object.values(SEARCH_ATTRIBUTES))
      expect(Object.keys(res.customAttributes ?? {})).toContain(a.name);
    await connection.close();
    expect(fs.existsSync(db)).toBe(true);
    // The Web UI is told where the codec server is (batchpilot codec-server).
    const settings = (await (await fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`)).json()) as {
      Codec: { Endpoint: string };
    };
    expect(settings.Codec.Endpoint).toBe('http://127.0.0.1:8888');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
