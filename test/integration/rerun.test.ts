// Re-running a job with the same id reuses the units it already collected (nothing is sent
// twice); another job writing to the same output folder starts from a clean work directory.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonl, startHarness, writeChatInput, type Harness } from '../support/harness.ts';
import { expectInvariant } from '../support/invariant.ts';

describe('re-running a job', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('with the same id resubmits nothing; with another id starts afresh', async () => {
    const input = writeChatInput(h.dataDir, 'rerun.jsonl', 60);
    const options = {
      limits: { maxLines: 20, maxBytes: 500_000_000, maxLineBytes: 6_000_000 },
      keepWorkDir: true,
    };
    const first = await h.runJob(input, 'out-rerun', options, 'rerun-job');
    expect((await h.stats()).batchesCreated).toBe(3);
    const again = await h.runJob(input, 'out-rerun', options, 'rerun-job');
    expect((await h.stats()).batchesCreated).toBe(3);
    expect(again.lines).toEqual(first.lines);
    // The re-run reports the batches the units really used.
    expect(again.batches).toBe(3);
    expect(again.batches).toBe(first.batches);
    await expectInvariant(h, path.join(h.dataDir, 'out-rerun'), 60);
    expect(readJsonl(path.join(h.dataDir, 'out-rerun', 'results.jsonl'))).toHaveLength(60);

    const other = await h.runJob(input, 'out-rerun', options, 'rerun-other-job');
    expect(other.lines.succeeded).toBe(60);
    expect((await h.stats()).batchesCreated).toBe(6);
  });
});
