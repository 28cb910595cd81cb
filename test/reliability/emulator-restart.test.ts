// Emulator restart: the provider goes away (the emulator is closed: connections refused) and comes
// back on the same port with the same state folder, three times: while shards upload, while they
// create their batches, and for a minute while they are polled. Batches that were running resume
// from their checkpoint. The job must end as an undisturbed run would, with exactly one batch per
// (shard, round), and the histories must show that upload, create and poll each met the outage.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import { activityRetries } from './histories.ts';
import {
  envInt,
  jobOptions,
  jobResult,
  log,
  pollsIn,
  sleep,
  startRig,
  waitFor,
  writeInput,
  type InputSpec,
  type Rig,
} from './rig.ts';
import { expectSurvived, runBaseline } from './survival.ts';

const SHORT_OUTAGE_MS = envInt('EMULATOR_OUTAGE_MS', 20_000);
const LONG_OUTAGE_MS = envInt('EMULATOR_LONG_OUTAGE_MS', 60_000);
const FAULTS: FaultSettings = {
  seed: 31,
  validatingMs: 500,
  perLineMs: 40,
  finalizingMs: 500,
  lineRetryableRate: 0.05,
  linePermanentRate: 0.02,
};
const SPEC: InputSpec = { lines: 240, models: ['qwen-plus', 'qwen-turbo'], badEvery: 80 };
const OPTIONS = jobOptions({
  limits: { maxLines: 30, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
  maxInFlight: 3,
  pollIntervalMs: 500,
});

/** Batches the emulator is running now (DashScope's `status` filter on the list). */
async function runningBatches(emulatorUrl: string): Promise<number> {
  const res = await fetch(`${emulatorUrl}/batches?status=in_progress&limit=100`);
  if (!res.ok) throw new Error(`listing batches: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: unknown[] }).data.length;
}

describe('provider (emulator) away and back', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({ name: 'emulator', faults: FAULTS });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('survives outages during upload, create and polling', async () => {
    const t0 = Date.now();
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const { input, total } = writeInput(rig.dataDir, 'in.jsonl', SPEC);
    rig.spawnWorker('worker');
    const jobId = `emulator-restart-${Date.now()}`;
    const handle = await rig.startJob(input, 'out', OPTIONS, jobId);
    const outages: { phase: string; at: string; ms: number; before: unknown }[] = [];

    const outage = async (phase: string, ms: number) => {
      const s = await rig.stats();
      const before = {
        uploads: s.requests.upload ?? 0,
        batches: s.batchesCreated,
        polls: pollsIn(s),
      };
      await rig.stopEmulator();
      log('emulator', `${at()}: provider away (${phase}) for ${ms} ms, ${JSON.stringify(before)}`);
      await sleep(ms);
      await rig.startEmulator();
      log('emulator', `${at()}: provider back on ${rig.emulatorUrl}`);
      outages.push({ phase, at: at(), ms, before });
      return before;
    };

    // 1. Upload: the plan is written (its manifest comes last), the shards are about to upload.
    //    An upload takes milliseconds here, so going away at the first upload would only catch
    //    the creates; going away between plan and upload makes the window's shards meet it.
    const manifest = path.join(rig.dataDir, 'out', '.batchpilot', 'round-1', 'manifest.json');
    await waitFor('the plan', () => fs.existsSync(manifest), 120_000, 5);
    const o1 = await outage('upload', SHORT_OUTAGE_MS);
    expect(o1.batches).toBe(0);

    // 2. Create: every create is answered 503 for a while (half of them after the batch was
    //    made, as when an answer is lost), so shards pile up between upload and create; then the
    //    provider goes away under them. It comes back with its normal settings.
    await waitFor('the window uploaded', async () => (await rig.stats()).batchesCreated >= 1, 120_000);
    await rig.setFaults({ ...FAULTS, http: { rate: 1, statuses: [503], routes: ['create'] } });
    const createsBefore = (await rig.stats()).requests.create ?? 0;
    await waitFor(
      'creates failing',
      async () => ((await rig.stats()).requests.create ?? 0) >= createsBefore + 3,
    );
    await outage('create', SHORT_OUTAGE_MS);

    // 3. Polling: batches are running and being polled; the provider is away for a minute. Lines
    //    are slowed first so that a batch is surely still running when the provider goes (with
    //    normal speed every running batch could finish between two polls and the outage would
    //    meet only collects and uploads); the provider comes back with its normal settings.
    await rig.setFaults({ ...FAULTS, perLineMs: 1500 });
    const pollCount = async () => pollsIn(await rig.stats());
    const polls = await pollCount();
    await waitFor('polling', async () => (await pollCount()) >= polls + 5);
    await waitFor('a running batch', async () => (await runningBatches(rig.emulatorUrl)) > 0);
    await outage('polling', LONG_OUTAGE_MS);

    const summary = await jobResult(handle);
    const seconds = (Date.now() - t0) / 1000;
    expect(summary.status).toBe('completed');
    const retries = await activityRetries(rig.client, jobId);
    log('emulator', `retried activities: ${JSON.stringify(retries)}`);
    // Each phase met the provider's absence and was retried (a refused connection is retryable).
    expect(retries.uploadUnit?.executions ?? 0).toBeGreaterThan(0);
    expect(retries.createBatch?.executions ?? 0).toBeGreaterThan(0);
    expect(retries.getBatch?.executions ?? 0).toBeGreaterThan(0);

    const baseline = await runBaseline(rig, SPEC, FAULTS, OPTIONS);
    const figures = await expectSurvived(rig, 'out', total, baseline);
    log(
      'emulator',
      `FIGURES outages=${JSON.stringify(outages)} seconds=${seconds} batches=${figures.batches} ` +
        `expected=${baseline.stats.batchesCreated} rounds=${summary.rounds} lines=${JSON.stringify(summary.lines)}`,
    );
  });
});
