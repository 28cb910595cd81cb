// Many jobs at once on one worker share the provider: each keeps to its own --max-in-flight, and
// the account-wide cap BATCHPILOT_MAX_IN_FLIGHT holds across all of them.
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_FLIGHT_STATUSES } from '../../activities/in-flight-cap.ts';
import { FAST_FAULTS, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

const CAP = 4;

describe('many concurrent jobs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      faults: { ...FAST_FAULTS, validatingMs: 200, perLineMs: 40, finalizingMs: 200 },
      maxInFlight: CAP,
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('never has more than the cap of batches in flight, and every job completes', async () => {
    const openai = new OpenAI({ baseURL: h.emulator.url, apiKey: 'x', maxRetries: 3 });
    let maxSeen = 0;
    const perJobMax = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const page = await openai.batches.list({
          status: IN_FLIGHT_STATUSES.join(','),
          limit: 100,
        } as OpenAI.Batches.BatchListParams);
        maxSeen = Math.max(maxSeen, page.data.length);
        const byJob = new Map<string, number>();
        for (const b of page.data) {
          const job = b.metadata?.batchpilot_job ?? '';
          byJob.set(job, (byJob.get(job) ?? 0) + 1);
        }
        for (const [job, n] of byJob) perJobMax.set(job, Math.max(perJobMax.get(job) ?? 0, n));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const jobs = Array.from({ length: 10 }, (_, j) => {
      const input = writeChatInput(h.dataDir, `many-${j}.jsonl`, 30);
      return h.runJob(
        input,
        `out-many-${j}`,
        { limits: { maxLines: 10, maxBytes: 500_000_000, maxLineBytes: 6_000_000 }, maxInFlight: 2 },
        `many-${j}-${Date.now()}`,
      );
    });
    const summaries = await Promise.all(jobs);
    sampling = false;
    await sampler;
    for (const [j, s] of summaries.entries()) {
      expect(s.status).toBe('completed');
      expect(s.lines.succeeded).toBe(30);
      await expectInvariant(h, path.join(h.dataDir, `out-many-${j}`), 30);
    }
    expect((await h.stats()).batchesCreated).toBe(30);
    expect(maxSeen).toBeGreaterThan(1);
    expect(maxSeen).toBeLessThanOrEqual(CAP);
    for (const n of perJobMax.values()) expect(n).toBeLessThanOrEqual(2);
  });
});
