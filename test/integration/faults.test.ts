// Provider weather: control-plane errors, line failures, expiry, failed batches and DashScope's
// quirks. Each ends with every line in exactly one output file and one batch per (shard, round).
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FaultSettings } from '../../emulator/index.ts';
import { FAST_FAULTS, readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

const LIMITS = { maxLines: 25, maxBytes: 500_000_000, maxLineBytes: 6_000_000 };

describe('job under provider faults', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function run(faults: FaultSettings, lines = 100, options = {}) {
    h = await startHarness({ faults: { ...FAST_FAULTS, ...faults } });
    const input = writeChatInput(h.dataDir, 'in.jsonl', lines);
    const summary = await h.runJob(input, 'out', { limits: LIMITS, ...options });
    const out = path.join(h.dataDir, 'out');
    await expectInvariant(h, out, lines);
    return { summary, out, h };
  }

  it('survives 30% control-plane 429/500/503 on every route', async () => {
    const { summary, h } = await run({
      http: { rate: 0.3, statuses: [429, 500, 503], routes: ['create', 'retrieve', 'upload', 'content'] },
    });
    expect(summary.lines.succeeded).toBe(100);
    const stats = await h.stats();
    expect(stats.batchesCreated).toBe(4);
  });

  it('resubmits retryable line failures in packed rounds and reports permanent ones', async () => {
    const { summary, out } = await run({ seed: 11, lineRetryableRate: 0.2, linePermanentRate: 0.05 });
    expect(summary.rounds).toBeGreaterThan(1);
    const errors = readJsonl<{
      custom_id: string;
      attempts: number;
      error: { code: string; status_code: number | null };
    }>(path.join(out, 'errors.jsonl'));
    expect(summary.lines.failed).toBe(errors.length);
    for (const e of errors) {
      expect(e.attempts).toBeGreaterThanOrEqual(1);
      expect(e.attempts).toBeLessThanOrEqual(3);
      expect(e.error.code).toBeTruthy();
    }
    // Retry lines of the four shards are packed: round 2 needs one batch, not four.
    expect(summary.batches).toBeLessThan(4 * summary.rounds);
  });

  it('resubmits the unprocessed lines of an expired batch', async () => {
    const { summary } = await run({ seed: 5, expireRate: 0.5, expireAfterFraction: 0.5 });
    expect(summary.rounds).toBeGreaterThan(1);
    expect(summary.lines.succeeded + summary.lines.failed).toBe(100);
  });

  it('classifies failed lines hidden in the output file (DashScope quirk) and completed batches without output', async () => {
    const { summary, out } = await run({
      seed: 3,
      linePermanentRate: 0.2,
      quirks: ['failed-lines-in-output', 'completed-without-output-file', 'error-code-fields'],
    });
    const errors = readJsonl<{ error: { code: string } }>(path.join(out, 'errors.jsonl'));
    expect(errors.length).toBe(summary.lines.failed);
    expect(summary.lines.failed).toBeGreaterThan(5);
    const results = readJsonl<{ response: { status_code: number } }>(path.join(out, 'results.jsonl'));
    for (const r of results) expect(r.response.status_code).toBe(200);
  });

  it('waits out batches refused for the enqueued-token limit and sends them again, failing no line', async () => {
    const { summary, h } = await run({ seed: 2, failBatchRate: 0.5 }, 100, { maxAttempts: 2 });
    expect(summary.tokenLimitWaits ?? 0).toBeGreaterThan(0);
    expect(summary.batchFailures).toBeUndefined();
    expect(summary.lines.succeeded).toBe(100);
    expect(summary.rounds).toBe(1);
    expect((await h.stats()).batchesCreated).toBe(4 + summary.tokenLimitWaits!);
  });

  it("surfaces a failed batch's errors.data in the summary once a refusal lasts", async () => {
    const { summary } = await run({ seed: 2, failBatchRate: 1 }, 100, { maxAttempts: 1 });
    // Each shard waited out five refusals, then its sixth batch failed as any failed batch does.
    expect(summary.tokenLimitWaits).toBe(4 * 5);
    expect(summary.batchFailures).toEqual({ token_limit_exceeded: 4 });
    expect(summary.lines.failed).toBe(100);
    const failure = summary.failures?.find((f) => f.code === 'token_limit_exceeded');
    expect(failure?.message).toMatch(/Enqueued token limit reached/);
    expect(failure?.unit).toMatch(/^shard-\d+\/round-\d+$/);
  });
});
