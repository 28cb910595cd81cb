// A worker says where it sends jobs and where its data root is; status and watch say when no
// worker polls the job's task queue, instead of waiting without a word.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { describe, expect, inject, it } from 'vitest';
import { JOB_WORKFLOW } from '../../common/definitions.ts';
import { jobOptions } from '../support/harness.ts';
import { BIN, cliEnv, startCli } from '../support/cli-process.ts';

describe('worker and client agree', () => {
  it('a worker without an API key says loudly that jobs go to the emulator, and where its data root is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-worker-'));
    const p = startCli(['worker'], {
      cwd: dir,
      env: cliEnv({
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        BATCHPILOT_TASK_QUEUE: `banner-${process.pid}`,
        BATCHPILOT_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
        LOG_LEVEL: 'silent',
      }),
    });
    try {
      await p.waitFor(/WARNING: no API key is set/);
      expect(p.stderr()).toContain('local Batch API emulator at http://127.0.0.1:8787/v1');
      expect(p.stderr()).toContain(`data root ${path.join(fs.realpathSync(dir), 'batchpilot-data')}`);
    } finally {
      p.signalGroup('SIGTERM');
      await p.exit;
    }
  });

  it('status says no worker polls the task queue of a running job', async () => {
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    const client = new Client({ connection });
    const taskQueue = `nobody-${process.pid}-${Date.now()}`;
    const id = `no-worker-${Date.now()}`;
    await client.workflow.start(JOB_WORKFLOW, {
      taskQueue,
      workflowId: id,
      args: [{ input: 'in.jsonl', outDir: 'out', options: jobOptions() }],
    });
    try {
      const env = cliEnv({ TEMPORAL_ADDRESS: inject('temporalAddress') });
      const r = spawnSync(process.execPath, [BIN, 'status', id], { env, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toContain(`no worker polls its task queue "${taskQueue}"`);
      const json = spawnSync(process.execPath, [BIN, 'status', id, '--json'], {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(JSON.parse(json.stdout)).toMatchObject({ status: 'RUNNING', workerPolling: false });
    } finally {
      await client.workflow.getHandle(id).terminate('test over');
      await connection.close();
    }
  });
});
