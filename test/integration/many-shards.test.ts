// Hundreds of shards in one job: the job continues-as-new many times (the test server suggests it
// at 60 events) while keeping every line, and the progress query still sees every shard.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROGRESS_QUERY } from '../../common/definitions.ts';
import type { JobProgress } from '../../common/job-types.ts';
import { startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

describe('a job of hundreds of shards', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ faults: { seed: 1, validatingMs: 0, perLineMs: 0, finalizingMs: 0 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('completes every shard across many continue-as-new runs', { timeout: 600_000 }, async () => {
    const input = writeChatInput(h.dataDir, 'wide.jsonl', 400, ['qwen-plus', 'qwen-flash']);
    const id = `wide-${Date.now()}`;
    const summary = await h.runJob(
      input,
      'out-wide',
      {
        limits: { maxLines: 2, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
        maxInFlight: 40,
        pollIntervalMs: 100,
      },
      id,
    );
    expect(summary.shards).toBe(200);
    expect(summary.batches).toBe(200);
    expect(summary.lines.succeeded).toBe(400);
    await expectInvariant(h, path.join(h.dataDir, 'out-wide'), 400);
    const progress = await h.client.workflow.getHandle(id).query<JobProgress>(PROGRESS_QUERY);
    expect(progress.shards.filter((s) => s.status === 'done')).toHaveLength(200);
    // Count the runs of the job's continue-as-new chain.
    let runs = 0;
    for await (const _ of h.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs++;
    expect(runs).toBeGreaterThan(3);
  });
});
