// Chaos soak: a job of at least 20 shards while a driver SIGKILLs `batchpilot worker` processes at
// random (seeded) moments and starts them again, with a second worker on the same task queue part
// of the time. The job must end as an undisturbed run would, with exactly one batch per (shard,
// round). Sizes: SOAK_KILLS (default 20), SOAK_SEED, SOAK_LINES (default scales with the kills),
// SOAK_MIN_GAP_MS / SOAK_MAX_GAP_MS (time between kills).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../../bench/gen-chat.ts';
import type { FaultSettings } from '../../emulator/index.ts';
import {
  envInt,
  jobOptions,
  jobResult,
  log,
  sleep,
  startRig,
  writeInput,
  type InputSpec,
  type Rig,
  type WorkerProcess,
} from './rig.ts';
import { expectSurvived, runBaseline } from './survival.ts';

const KILLS = envInt('SOAK_KILLS', 20);
const SEED = envInt('SOAK_SEED', 1);
const MIN_GAP_MS = envInt('SOAK_MIN_GAP_MS', 1_500);
const MAX_GAP_MS = Math.max(MIN_GAP_MS, envInt('SOAK_MAX_GAP_MS', 6_000));
const LINES = envInt('SOAK_LINES', Math.max(600, KILLS * 30));
const MAX_LINES = 25;
const FAULTS: FaultSettings = {
  seed: 51,
  validatingMs: 400,
  perLineMs: 40,
  finalizingMs: 400,
  lineRetryableRate: 0.05,
  linePermanentRate: 0.01,
};
/** The same faults with batches that make no progress: in progress until let go. */
const FROZEN: FaultSettings = {
  ...FAULTS,
  validatingMs: 3_600_000,
  perLineMs: 3_600_000,
  finalizingMs: 3_600_000,
};
const SPEC: InputSpec = { lines: LINES, models: ['qwen-plus', 'qwen-turbo'], badEvery: 150 };
const OPTIONS = jobOptions({
  limits: { maxLines: MAX_LINES, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
  maxInFlight: 6,
  pollIntervalMs: 500,
});

describe('chaos soak', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({ name: 'soak', faults: FAULTS });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it(`survives ${KILLS} SIGKILLs of its workers`, async () => {
    const t0 = Date.now();
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const rnd = rng(SEED);
    const { input, total } = writeInput(rig.dataDir, 'in.jsonl', SPEC);
    const shards = Math.ceil(LINES / MAX_LINES);
    expect(shards).toBeGreaterThanOrEqual(20);
    let spawned = 0;
    const spawn = () => rig.spawnWorker(`worker-${++spawned}`);
    // Slot a always has a worker (restarted at once after a kill); slot b comes and goes.
    const slots: { a: WorkerProcess; b: WorkerProcess | undefined } = { a: spawn(), b: undefined };
    const jobId = `soak-${Date.now()}`;
    const handle = await rig.startJob(input, 'out', OPTIONS, jobId);
    let done = false;
    const result = jobResult(handle).finally(() => {
      done = true;
    });

    let kills = 0;
    let twoWorkersMs = 0;
    const kinds = { a: 0, b: 0 };
    let last = Date.now();
    const tick = () => {
      const now = Date.now();
      if (slots.a.alive() && slots.b?.alive()) twoWorkersMs += now - last;
      last = now;
    };
    // Until the last kill, the job must not be able to finish, whatever the machine's speed: once
    // the first round's batches all exist (the last one needs seconds to run), the provider stops
    // progressing them (its per-line time made endless) and the kills go on against polls; after
    // the last kill it is let go.
    let frozen = false;
    let killing = true;
    const freezer = (async () => {
      while (killing && !done) {
        if ((await rig.stats()).batchesCreated >= shards) {
          await rig.setFaults(FROZEN);
          frozen = true;
          log('soak', `${at()}: every first-round batch exists: the provider holds them until the last kill`);
          return;
        }
        await sleep(100);
      }
    })();
    while (kills < KILLS && !done) {
      // The second worker joins at the start and then comes and goes.
      if (!slots.b && (kills === 0 || rnd() < 0.4)) slots.b = spawn();
      const gap = MIN_GAP_MS + Math.floor(rnd() * (MAX_GAP_MS - MIN_GAP_MS + 1));
      await Promise.race([sleep(gap), result.catch(() => undefined)]);
      tick();
      if (done) break;
      const victim: 'a' | 'b' = slots.b && rnd() < 0.5 ? 'b' : 'a';
      const stats = await rig.stats();
      await slots[victim]!.kill();
      kills++;
      kinds[victim]++;
      log(
        'soak',
        `${at()}: kill ${kills} (${slots[victim]!.name}, slot ${victim}) at ${stats.batchesCreated} batches, ` +
          `${stats.requests.retrieve ?? 0} polls`,
      );
      if (victim === 'a') slots.a = spawn();
      else slots.b = rnd() < 0.5 ? spawn() : undefined;
    }
    killing = false;
    await freezer;
    if (frozen) await rig.setFaults(FAULTS);
    const killPhase = (Date.now() - t0) / 1000;
    expect(kills, `the job ended after ${kills} kills`).toBe(KILLS);
    const summary = await result;
    tick();
    const seconds = (Date.now() - t0) / 1000;
    expect(summary.status).toBe('completed');
    expect(summary.shards).toBeGreaterThanOrEqual(20);
    expect(twoWorkersMs).toBeGreaterThan(0);

    const baseline = await runBaseline(rig, SPEC, FAULTS, OPTIONS);
    const figures = await expectSurvived(rig, 'out', total, baseline);
    log(
      'soak',
      `FIGURES kills=${kills} (slot a ${kinds.a}, slot b ${kinds.b}) workersStarted=${spawned} ` +
        `twoWorkersSeconds=${(twoWorkersMs / 1000).toFixed(1)} killPhaseSeconds=${killPhase} seconds=${seconds} ` +
        `shards=${summary.shards} rounds=${summary.rounds} batches=${figures.batches} ` +
        `expected=${baseline.stats.batchesCreated} lines=${JSON.stringify(summary.lines)} seed=${SEED}`,
    );
  });
});
