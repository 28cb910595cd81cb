// Provider weather, all at once on one job: 20% of control-plane calls answered 429 (half with
// Retry-After) or 5xx (on create and upload half of them after the work was done), slow answers
// (every answer delayed, one create answer held past the activity's timeout), 10% retryable line
// failures, expired batches, a failed batch, batches stuck in `finalizing` for a long time, and
// DashScope's quirks (failed lines in the output file with request_counts.failed = 0, a completed
// batch without an output file, error_code/error_message fields). The job must end as an
// undisturbed run (same seeded line and batch faults, no weather, no quirks) would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import { activityRetries, longestGaps } from './histories.ts';
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

const STUCK_MS = envInt('WEATHER_STUCK_FINALIZING_MS', 30_000);
/** Longer than the provider activities' 30 s start-to-close timeout. */
const HELD_CREATE_MS = envInt('WEATHER_HELD_CREATE_MS', 35_000);
const FAULTS: FaultSettings = {
  seed: 41,
  validatingMs: 300,
  perLineMs: 10,
  finalizingMs: 300,
  lineRetryableRate: 0.1,
  linePermanentRate: 0.02,
  expireRate: 0.15,
  expireAfterFraction: 0.5,
  failBatchRate: 0.1,
};
const WEATHER: FaultSettings = {
  ...FAULTS,
  http: { rate: 0.2, statuses: [429, 429, 500, 502, 503] },
  quirks: ['failed-lines-in-output', 'completed-without-output-file', 'error-code-fields'],
};
// batch-test-model lines fail one and all at the provider (mismatched_test_url): their batch
// completes with every line failed, which the quirk turns into `output_file_id: null`.
const SPEC: InputSpec = {
  lines: 200,
  models: ['qwen-plus', 'qwen-turbo'],
  badEvery: 100,
  testModelLines: 20,
};
const OPTIONS = jobOptions({
  limits: { maxLines: 25, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
  maxInFlight: 9,
  pollIntervalMs: 500,
});

interface BatchRow {
  id: string;
  status: string;
  output_file_id: string | null;
  request_counts: { total: number; completed: number; failed: number };
}

/** Every batch the emulator holds (read with the weather switched off). */
async function allBatches(rig: Rig): Promise<BatchRow[]> {
  const rows: BatchRow[] = [];
  let after: string | undefined;
  for (;;) {
    const url = `${rig.emulatorUrl}/batches?limit=100${after ? `&after=${after}` : ''}`;
    let page: { data: BatchRow[]; has_more: boolean } | undefined;
    // The weather hits this list too: ask again until it answers.
    for (let i = 0; !page; i++) {
      const res = await fetch(url);
      if (res.ok) page = (await res.json()) as { data: BatchRow[]; has_more: boolean };
      else if (i > 50) throw new Error(`listing batches: ${res.status}`);
      else await sleep(100);
    }
    rows.push(...page.data);
    if (!page.has_more || page.data.length === 0) return rows;
    after = page.data.at(-1)!.id;
  }
}

describe('provider weather', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({
      name: 'weather',
      // Finalizing lasts "forever" until the test decides it has been stuck long enough.
      faults: { ...WEATHER, finalizingMs: 3_600_000 },
      proxy: { seed: 7, minDelayMs: 20, maxDelayMs: 600, holdCreate: { nth: 3, ms: HELD_CREATE_MS } },
    });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('ends as an undisturbed run with one batch per (shard, round)', async () => {
    const t0 = Date.now();
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const { input, total } = writeInput(rig.dataDir, 'in.jsonl', SPEC);
    rig.spawnWorker('worker');
    const jobId = `weather-${Date.now()}`;
    const handle = await rig.startJob(input, 'out', OPTIONS, jobId);

    // The first batch to reach `finalizing` stays there (with every other one that gets there
    // meanwhile) for STUCK_MS while the shards keep polling it; then finalizing takes 300 ms again.
    await waitFor(
      'a batch in finalizing',
      async () => (await allBatches(rig)).some((b) => b.status === 'finalizing'),
      300_000,
      200,
    );
    const stuck = (await allBatches(rig)).filter((b) => b.status === 'finalizing').length;
    const polls = async () => pollsIn(await rig.stats());
    const pollsBefore = await polls();
    log('weather', `${at()}: ${stuck} batch(es) stuck in finalizing for ${STUCK_MS} ms`);
    await sleep(STUCK_MS);
    const pollsWhileStuck = (await polls()) - pollsBefore;
    await waitFor('the weather settings', async () => {
      await rig.setFaults(WEATHER);
      return true;
    });
    log('weather', `${at()}: finalizing released after ${pollsWhileStuck} polls`);

    const summary = await jobResult(handle);
    const seconds = (Date.now() - t0) / 1000;
    expect(summary.status).toBe('completed');
    // The stuck batch kept being polled: a count well above a few polls, not a rate (a loaded
    // machine polls less often than the interval says).
    expect(pollsWhileStuck).toBeGreaterThanOrEqual(STUCK_MS / OPTIONS.pollIntervalMs! / 6);

    // The weather really happened.
    await rig.setFaults({});
    const batches = await allBatches(rig);
    const byStatus: Record<string, number> = {};
    for (const b of batches) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
    const withoutOutput = batches.filter((b) => b.status === 'completed' && b.output_file_id === null).length;
    const hiddenFailures = batches.filter(
      (b) => b.status === 'completed' && b.output_file_id !== null && b.request_counts.failed === 0,
    ).length;
    const proxy = rig.proxy!.counts;
    const retries = await activityRetries(rig.client, jobId);
    log('weather', `longest waits:\n  ${(await longestGaps(rig.client, jobId)).join('\n  ')}`);
    log(
      'weather',
      `batches by status ${JSON.stringify(byStatus)}, completed without output file: ${withoutOutput}; ` +
        `proxy ${JSON.stringify(proxy)}; retried activities ${JSON.stringify(retries)}`,
    );
    expect(byStatus.expired ?? 0, 'an expired batch').toBeGreaterThan(0);
    expect(byStatus.failed ?? 0, 'a failed batch').toBeGreaterThan(0);
    expect(withoutOutput, 'a completed batch without an output file').toBeGreaterThan(0);
    expect(hiddenFailures, 'completed batches reporting failed = 0').toBeGreaterThan(0);
    // Batches refused for the enqueued-token limit were waited out and sent again, not failed.
    expect(summary.tokenLimitWaits ?? 0, 'a batch refused for the token limit').toBeGreaterThan(0);
    expect(proxy.throttledWithRetryAfter, '429 with Retry-After').toBeGreaterThan(0);
    expect(proxy.throttled - proxy.throttledWithRetryAfter, '429 without Retry-After').toBeGreaterThan(0);
    // The create answer held past the activity's 30 s start-to-close: that attempt timed out, and
    // the retry's lookup found the batch the provider had made (one batch per (shard, round) below).
    expect(proxy.held).toBe(1);
    expect(retries.createBatch?.executions ?? 0).toBeGreaterThan(0);

    const baseline = await runBaseline(rig, SPEC, FAULTS, OPTIONS);
    const figures = await expectSurvived(rig, 'out', total, baseline);
    log(
      'weather',
      `FIGURES seconds=${seconds} batches=${figures.batches} expected=${baseline.stats.batchesCreated} ` +
        `rounds=${summary.rounds} lines=${JSON.stringify(summary.lines)} stuckBatches=${stuck} ` +
        `pollsWhileStuck=${pollsWhileStuck} proxyRequests=${proxy.requests} throttled=${proxy.throttled}`,
    );
  });
});
