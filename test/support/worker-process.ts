// A worker in its own process, started the way users start one (`batchpilot worker`, configured by
// environment), for tests that kill it. Shared by the integration harness and the reliability rig.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';

const ROOT = path.join(import.meta.dirname, '..', '..');

export interface WorkerProcessOptions {
  temporalAddress: string;
  taskQueue: string;
  /** The provider the worker calls (the emulator, or a proxy in front of it). */
  baseUrl: string;
  dataDir: string;
  /** The workflow bundle the global setup wrote, so each worker skips bundling. */
  workflowBundle: string;
  apiKey?: string;
  extraEnv?: Record<string, string>;
}

export function spawnWorkerProcess(o: WorkerProcessOptions): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [path.join(ROOT, 'bin', 'batchpilot.ts'), 'worker'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: o.temporalAddress,
      BATCHPILOT_TASK_QUEUE: o.taskQueue,
      BATCHPILOT_PROVIDER: 'emulator',
      BATCHPILOT_BASE_URL: o.baseUrl,
      BATCHPILOT_DATA_DIR: o.dataDir,
      BATCHPILOT_WORKFLOW_BUNDLE: o.workflowBundle,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      // As the in-process test worker: no answers kept, so a test that sends an input twice buys
      // twice. Reuse is tested with a store of its own (extraEnv, or the harness's `answers`).
      BATCHPILOT_ANSWERS_DIR: 'off',
      ...(o.apiKey ? { BATCHPILOT_API_KEY: o.apiKey } : {}),
      ...o.extraEnv,
    },
  });
}
