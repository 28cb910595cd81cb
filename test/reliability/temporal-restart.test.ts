// Temporal server restart: the scenario's own dev server, persisted with --db-filename, is stopped
// and started on the same port mid-run, twice (once with SIGTERM, once SIGKILLed like a crash),
// while a `batchpilot worker` process runs the job. The job must end as an undisturbed run would,
// with exactly one batch per (shard, round).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import { freePort, startDevServer, type DevServer } from '../../worker/dev-server.ts';
import {
  envInt,
  jobOptions,
  jobResult,
  log,
  sleep,
  startRig,
  waitFor,
  writeInput,
  type InputSpec,
  type Rig,
  type WorkerProcess,
} from './rig.ts';
import { expectSurvived, runBaseline } from './survival.ts';

const DOWN_MS = envInt('TEMPORAL_DOWN_MS', 8_000);
const FAULTS: FaultSettings = {
  seed: 21,
  validatingMs: 300,
  perLineMs: 40,
  finalizingMs: 300,
  lineRetryableRate: 0.1,
  linePermanentRate: 0.02,
};
const SPEC: InputSpec = { lines: 240, models: ['qwen-plus', 'qwen-turbo'], badEvery: 60 };
const OPTIONS = jobOptions({
  limits: { maxLines: 30, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
  maxInFlight: 4,
  pollIntervalMs: 500,
});

describe('Temporal server restarted mid-run', () => {
  let dir: string | undefined;
  let port: number;
  let uiPort: number;
  let server: DevServer | undefined;
  let rig: Rig;
  const boot = async () => {
    server = await startDevServer({
      port,
      uiPort,
      dbFilename: path.join(dir!, 'temporal.db'),
      headless: true,
      dynamicConfig: ['limit.historyCount.suggestContinueAsNew=60'],
    });
  };
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchpilot-rel-temporal-db-'));
    port = await freePort();
    uiPort = await freePort();
    await boot();
    rig = await startRig({ name: 'temporal', faults: FAULTS, temporalAddress: server!.address });
  });
  afterAll(async () => {
    await rig?.close();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('survives two restarts of the server with the same answers and one batch per (shard, round)', async () => {
    const t0 = Date.now();
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const { input, total } = writeInput(rig.dataDir, 'in.jsonl', SPEC);
    let worker: WorkerProcess = rig.spawnWorker('worker-1');
    const handle = await rig.startJob(input, 'out', OPTIONS, `temporal-restart-${Date.now()}`);
    const restarts: { at: string; how: string; batches: number; workerSurvived: boolean }[] = [];
    let workerRestarts = 0;

    const restart = async (how: 'SIGTERM' | 'SIGKILL') => {
      const batches = (await rig.stats()).batchesCreated;
      log('temporal', `${at()}: stopping the server (${how}) with ${batches} batches created`);
      const s = server!;
      server = undefined;
      if (how === 'SIGTERM') await s.stop();
      else {
        s.process.kill('SIGKILL');
        await new Promise((r) => s.process.once('exit', r));
      }
      await sleep(DOWN_MS);
      const aliveWhileDown = worker.alive();
      await boot();
      log('temporal', `${at()}: server back on port ${port} (worker alive while down: ${aliveWhileDown})`);
      // Give the worker the time its pollers need to reconnect, then look.
      await sleep(3000);
      const survived = worker.alive();
      if (!survived) {
        // What an operator (or systemd, or Kubernetes) does with a worker that exited: start it again.
        log(
          'temporal',
          `worker exited (${JSON.stringify(await worker.exited)}): ${worker.output().slice(-600)}`,
        );
        worker = rig.spawnWorker(`worker-${++workerRestarts + 1}`);
      }
      restarts.push({ at: at(), how, batches, workerSurvived: survived });
    };

    await waitFor('two batches polling', async () => (await rig.stats()).batchesCreated >= 2);
    await restart('SIGTERM');
    await waitFor('every round-1 batch created', async () => (await rig.stats()).batchesCreated >= 8);
    await restart('SIGKILL');
    const summary = await jobResult(handle);
    const seconds = (Date.now() - t0) / 1000;
    expect(summary.status).toBe('completed');

    const baseline = await runBaseline(rig, SPEC, FAULTS, OPTIONS);
    const figures = await expectSurvived(rig, 'out', total, baseline);
    log(
      'temporal',
      `FIGURES restarts=${JSON.stringify(restarts)} workerRestarts=${workerRestarts} seconds=${seconds} ` +
        `batches=${figures.batches} expected=${baseline.stats.batchesCreated} rounds=${summary.rounds} ` +
        `lines=${JSON.stringify(summary.lines)} baselineSeconds=${baseline.seconds}`,
    );
    expect(restarts).toHaveLength(2);
  });
});
