// The fleet paces itself by the provider's published limits: against an emulator enforcing
// DashScope's figures (create, retrieve, cancel 1,000/min, list 100/min, upload 180/min, other file
// calls 600/min), a job of many small shards polled every second asks for more than the limits
// allow, and with pacing on at most 1% of its provider calls are answered 429. Without
// pacing the same job is throttled far more often (the baseline, same emulator settings).
import { afterEach, describe, expect, it } from 'vitest';
import type { RouteName } from '../../emulator/routes.ts';
import { DASHSCOPE_RATE_LIMITS } from '../../common/rate-limits.ts';
import {
  FAST_FAULTS,
  startHarness,
  writeChatInput,
  type EmulatorStats,
  type Harness,
} from '../support/harness.ts';

const SHARDS = 40;
const LINES_PER_SHARD = 2;
// Batches stay unfinished for ~20 s, longer than the uploads of all shards take at 3 a second, so
// the 40 shards poll together at 1 s while the last ones upload. Unpaced, most 429s are uploads
// (all shards upload at once against 3 a second), then content downloads and file deletes.
const FAULTS = { ...FAST_FAULTS, validatingMs: 15_000, finalizingMs: 5000, rateLimits: 'published' as const };

/** Provider calls (every route but the emulator's own) and those answered 429. */
function callsAndThrottled(stats: EmulatorStats): { calls: number; throttled: number } {
  const own: string[] = ['stats', 'faults'] satisfies RouteName[];
  const calls = Object.entries(stats.requests)
    .filter(([route]) => !own.includes(route))
    .reduce((a, [, n]) => a + n, 0);
  const throttled = Object.values(stats.throttled ?? {}).reduce((a, n) => a + n, 0);
  return { calls, throttled };
}

interface Counts {
  calls: number;
  throttled: number;
  retrieves: number;
  throttledBy: Record<string, number>;
}

async function runJob(h: Harness): Promise<Counts> {
  const input = writeChatInput(h.dataDir, 'many.jsonl', SHARDS * LINES_PER_SHARD);
  const summary = await h.runJob(input, 'out', {
    limits: { maxLines: LINES_PER_SHARD, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
    pollIntervalMs: 1000,
  });
  expect(summary.shards).toBe(SHARDS);
  expect(summary.batches).toBe(SHARDS);
  expect(summary.lines.succeeded).toBe(SHARDS * LINES_PER_SHARD);
  const stats = await h.stats();
  expect(stats.batchesCreated, 'exactly one batch per shard').toBe(SHARDS);
  return {
    ...callsAndThrottled(stats),
    retrieves: stats.requests.retrieve ?? 0,
    throttledBy: stats.throttled ?? {},
  };
}

describe('pacing by the published rate limits', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('keeps 429s at or under 1% of provider calls', { timeout: 300_000 }, async () => {
    h = await startHarness({ faults: FAULTS, rateLimits: DASHSCOPE_RATE_LIMITS });
    const { calls, throttled, retrieves, throttledBy } = await runJob(h);
    console.log(`paced: ${throttled} of ${calls} calls answered 429 (${retrieves} retrieves)`, throttledBy);
    // The emulator can list, so the task queue's watcher polls every batch by listing.
    expect(retrieves, 'no batch polled alone').toBe(0);
    expect(throttled / calls).toBeLessThanOrEqual(0.01);
  });

  it('without pacing the same job is throttled (the baseline)', { timeout: 300_000 }, async () => {
    h = await startHarness({ faults: FAULTS });
    const { calls, throttled, throttledBy } = await runJob(h);
    console.log(`unpaced: ${throttled} of ${calls} calls answered 429`, throttledBy);
    expect(throttled / calls).toBeGreaterThan(0.01);
  });
});
